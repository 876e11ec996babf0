import os
import stat

import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io.outputs import (
    TEMPORARY_SUFFIX,
    atomic_write,
    check_distinct,
    check_output,
    output_transaction,
)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(TEMPORARY_SUFFIX))


def test_a_file_output_is_written_whole(tmp_path):
    target = tmp_path / "a.txt"
    with atomic_write(target) as temporary:
        assert temporary.parent == tmp_path and not target.exists()
        temporary.write_text("new")
    assert target.read_text() == "new" and _leftovers(tmp_path) == []


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old" and _leftovers(tmp_path) == []


def test_an_existing_folder_is_refused_and_kept(tmp_path):
    folder = tmp_path / "results.tif"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep")
    with pytest.raises(InputError, match="existing folder"), atomic_write(folder) as temporary:
        temporary.write_text("x")
    assert (folder / "precious.txt").read_text() == "keep" and _leftovers(tmp_path) == []


def test_outputs_of_a_transaction_land_together_or_not_at_all(tmp_path):
    first, second = tmp_path / "labels.tif", tmp_path / "report.json"
    first.write_text("old labels")
    second.write_text("old report")
    with pytest.raises(InputError, match="does not exist"), output_transaction():
        with atomic_write(first) as temporary:
            temporary.write_text("new labels")
        assert first.read_text() == "old labels"  # not yet: the transaction has not committed
        with atomic_write(tmp_path / "missing" / "overview.png") as temporary:
            temporary.write_text("never")
    assert first.read_text() == "old labels" and second.read_text() == "old report"
    assert _leftovers(tmp_path) == []


def test_a_failed_commit_restores_every_target(tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    first.write_text("old a")
    with pytest.raises(InputError, match="no output was changed"), output_transaction():
        for target in (first, second):
            with atomic_write(target) as temporary:
                temporary.write_text("new")
        second.mkdir()  # a folder appears at a target after the checks: the commit fails there
        (second / "inside.txt").write_text("keep")
    assert first.read_text() == "old a"
    assert (second / "inside.txt").read_text() == "keep"
    assert _leftovers(tmp_path) == []


def test_a_folder_output_replaces_only_a_store_it_may_replace(tmp_path):
    store = tmp_path / "cube.zarr"
    store.mkdir()
    (store / "old").write_text("old")
    with atomic_write(store, directory=True, is_replaceable=lambda path: True) as temporary:
        (temporary / "new").write_text("new")
    assert sorted(p.name for p in store.iterdir()) == ["new"] and _leftovers(tmp_path) == []
    with (
        pytest.raises(InputError, match="left alone"),
        atomic_write(store, directory=True, is_replaceable=lambda path: False),
    ):
        pass
    assert (store / "new").exists()


def test_the_input_is_never_an_output_even_through_links(tmp_path):
    cube = tmp_path / "cube.tif"
    cube.write_text("cube")
    symlink, hardlink = tmp_path / "link.tif", tmp_path / "hard.tif"
    symlink.symlink_to(cube)
    os.link(cube, hardlink)
    for output in (cube, symlink, hardlink, tmp_path / "." / "cube.tif"):
        with pytest.raises(InputError, match="would be overwritten"):
            check_output(output, inputs=[cube])
    store = tmp_path / "cube.zarr"
    store.mkdir()
    with pytest.raises(InputError, match="lies inside the input"):
        check_output(store / "labels.tif", inputs=[store])
    with pytest.raises(InputError, match="would be overwritten"), output_transaction(inputs=[cube]):
        with atomic_write(symlink) as temporary:
            temporary.write_text("labels")
    assert cube.read_text() == "cube"


def test_two_outputs_may_not_be_one_file(tmp_path):
    with pytest.raises(InputError, match="same file"):
        check_distinct([tmp_path / "x.tif", tmp_path / "sub" / ".." / "x.tif"])
    with pytest.raises(InputError, match="same file"), output_transaction():
        for _ in range(2):
            with atomic_write(tmp_path / "x.json") as temporary:
                temporary.write_text("{}")
    assert not (tmp_path / "x.json").exists() and _leftovers(tmp_path) == []


@pytest.mark.parametrize("directory", [False, True])
def test_new_outputs_get_the_umask(tmp_path, directory):
    previous = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out", directory=directory, is_replaceable=None) as temporary:
            if not directory:
                temporary.write_text("x")
    finally:
        os.umask(previous)
    expected = 0o755 if directory else 0o644
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == expected


def test_a_folder_that_appears_during_the_run_is_never_replaced(tmp_path):
    store = tmp_path / "out.zarr"
    with pytest.raises(InputError, match="no output was changed"), output_transaction():
        with atomic_write(store, directory=True, is_replaceable=lambda path: False) as temporary:
            (temporary / "chunk").write_text("new")
        store.mkdir()  # someone's folder, created while the run was writing
        (store / "thesis.tex").write_text("keep")
    assert (store / "thesis.tex").read_text() == "keep" and _leftovers(tmp_path) == []


def test_an_input_inside_an_output_folder_is_refused(tmp_path):
    store = tmp_path / "outer.zarr"
    store.mkdir()
    raw = store / "raw.npy"
    raw.write_text("data")
    with pytest.raises(InputError, match="holds or lies inside the input"):
        check_output(store, inputs=[raw], directory=True, is_replaceable=lambda path: True)


def test_when_the_last_move_fails_every_output_is_restored(tmp_path, monkeypatch):
    import napari_deepcube.core.io.outputs as outputs

    first, second, third = (tmp_path / name for name in ("a.txt", "b.txt", "c.txt"))
    for path in (first, second, third):
        path.write_text(f"old {path.stem}")
    real_replace = os.replace
    calls = []

    def flaky_replace(source, target):
        calls.append((source, target))
        if len(calls) == 6:  # the third output's move onto its target: the disk is gone
            raise OSError(5, "Input/output error")
        return real_replace(source, target)

    monkeypatch.setattr(outputs.os, "replace", flaky_replace)
    with pytest.raises(InputError, match=r"c\.txt.*no output was changed"), output_transaction():
        for path in (first, second, third):
            with atomic_write(path) as temporary:
                temporary.write_text("new")
    monkeypatch.setattr(outputs.os, "replace", real_replace)
    assert [p.read_text() for p in (first, second, third)] == ["old a", "old b", "old c"]
    assert _leftovers(tmp_path) == []
