"""The command line never loses a user's data, and answers bad options with one line."""

import os
import pty
import select
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from napari_deepcube.cli import main
from napari_deepcube.core.io.outputs import TEMPORARY_SUFFIX
from napari_deepcube.core.synthetic import make_painting

FAST = ["--epochs", "2", "--n-train", "400", "--k-max", "4"]


def _run(argv, capsys):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _one_line(stderr):
    return stderr.startswith("deepcube: error:") and stderr.count("\n") == 1 and "Traceback" not in stderr


def _snapshot(folder):
    """Every file under ``folder`` with its bytes, to prove a refused run changed nothing."""
    return {
        path.relative_to(folder): (path.read_bytes() if path.is_file() else None)
        for path in sorted(folder.rglob("*"))
    }


def _temporaries(folder):
    return [p for p in folder.rglob("*") if p.name.endswith(TEMPORARY_SUFFIX)]


@pytest.fixture
def cube_tif(tmp_path):
    """A small (C, H, W) TIFF cube: a format whose name a label map could take."""
    path = tmp_path / "cube.tif"
    cube = np.random.default_rng(0).poisson(20, (16, 12, 12)).astype(np.uint16)
    tifffile.imwrite(path, cube)
    return path


def _refusals(tmp_path, cube):
    folder = tmp_path / "results.tif"
    link = tmp_path / "link.tif"
    link.symlink_to(cube)
    report = tmp_path / "r.json"
    return {
        "output is the input": (["-o", cube], "would be overwritten"),
        "output is a link to the input": (["-o", link], "would be overwritten"),
        "report is the input": (["-o", tmp_path / "l.tif", "--report", cube], "would be overwritten"),
        "spectra is the input": (["-o", tmp_path / "l.tif", "--spectra", cube], "would be overwritten"),
        "report is the output": (["-o", report.with_suffix(".tif"), "--report", report.with_suffix(".tif")],
                                 "same file"),
        "output is a folder": (["-o", folder], "existing folder"),
        "report is a folder": (["-o", tmp_path / "l.tif", "--report", folder], "existing folder"),
        "spectra is a folder": (["-o", tmp_path / "l.tif", "--spectra", folder], "existing folder"),
        "model is a folder": (["-o", tmp_path / "l.tif", "--save-model", tmp_path / "m.pt"],
                              "existing folder"),
        "model is the input": (["-o", tmp_path / "l.tif", "--save-model", tmp_path / "m.pt",
                                "--load-model", tmp_path / "m.pt"], "would be overwritten"),
        "output is no TIFF": (["-o", tmp_path / "labels.png"], "the label map: written as a .tif file"),
    }


@pytest.mark.parametrize(
    "case",
    ["output is the input", "output is a link to the input", "report is the input", "spectra is the input",
     "report is the output", "output is a folder", "report is a folder", "spectra is a folder",
     "model is a folder", "model is the input", "output is no TIFF"],
)
def test_an_output_that_would_destroy_data_is_refused_before_anything_runs(case, tmp_path, cube_tif, capsys):
    (tmp_path / "results.tif").mkdir()
    (tmp_path / "results.tif" / "precious.txt").write_text("a week of work")
    (tmp_path / "m.pt").mkdir()
    (tmp_path / "m.pt" / "inside").write_text("keep")
    argv, words = _refusals(tmp_path, cube_tif)[case]
    before = _snapshot(tmp_path)
    status, _, stderr = _run(["segment", cube_tif, *argv, *FAST], capsys)
    assert status == 2 and words in stderr and _one_line(stderr)
    assert _snapshot(tmp_path) == before


def test_a_run_writes_every_output_with_the_umask_and_a_late_failure_changes_none(
    tmp_path, cube_tif, capsys
):
    outputs = {
        "-o": tmp_path / "labels.tif",
        "--report": tmp_path / "report.json",
        "--spectra": tmp_path / "spectra.csv",
        "--overview": tmp_path / "overview.png",
        "--save-model": tmp_path / "model.pt",
    }
    argv = [item for pair in outputs.items() for item in pair]
    previous = os.umask(0o022)
    try:
        status, _, stderr = _run(["segment", cube_tif, *argv, "--k", "2", *FAST], capsys)
    finally:
        os.umask(previous)
    assert status == 0, stderr
    for path in outputs.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert _temporaries(tmp_path) == []

    # /proc accepts no new file: the report fails after the labels were written to a temporary.
    before = _snapshot(tmp_path)
    late = {**outputs, "--report": "/proc/deepcube-report.json"}
    argv = [item for pair in late.items() for item in pair]
    status, _, stderr = _run(["segment", cube_tif, *argv, "--k", "3", *FAST], capsys)
    assert status == 2 and _one_line(stderr) and "deepcube-report.json" in stderr
    assert _snapshot(tmp_path) == before


def _wait_for(master: int, words: bytes, timeout: float) -> bytes:
    """What a terminal shows until ``words`` appear on it."""
    shown, deadline = b"", time.monotonic() + timeout
    while words not in shown and time.monotonic() < deadline:
        if select.select([master], [], [], 1.0)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # Linux: the terminal's other end was closed, the process has ended
                break
            if not chunk:  # the same elsewhere
                break
            shown += chunk
    return shown


def test_sigterm_stops_a_run_and_leaves_no_temporary(tmp_path):
    cube = tmp_path / "cube.npy"
    # Structured data keeps training, and a fixed k of 12 builds every candidate up to it:
    # the run lasts well past the signal (pure noise stopped training, and the run, in 2 s).
    np.save(cube, np.asarray(make_painting(96, 96, 512, seed=0).cube.data).astype(np.uint16))
    labels = tmp_path / "labels.tif"
    labels.write_bytes(b"an earlier result")
    # On a terminal the run shows its stage: the signal goes once training has begun, whatever
    # the imports cost on a busy machine.
    master, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "napari_deepcube.cli", "segment", str(cube), "-o", str(labels),
             "--epochs", "500", "--k", "12"],
            stdout=terminal, stderr=terminal,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(terminal)  # the process holds its own
    try:
        shown = _wait_for(master, b"train", timeout=120)
        assert b"train" in shown, shown
        process.send_signal(signal.SIGTERM)
        # Read while it stops, so that a full terminal never holds it up.
        shown += _wait_for(master, b"interrupted", timeout=60)
        assert process.wait(timeout=30) == 1
    finally:
        process.kill()
        process.wait()
        os.close(master)
    assert b"interrupted" in shown and b"Traceback" not in shown
    assert labels.read_bytes() == b"an earlier result" and _temporaries(tmp_path) == []


def test_the_exit_status_stays_the_commands_after_an_interrupt_caught_inside_exec(tmp_path):
    # A signal during the imports can land in source run by exec (a dataclass's methods).
    # CPython then ended a `python -m` run by SIGINT (status 130) whatever main returned.
    runner = tmp_path / "runner"
    runner.mkdir()
    (runner / "__main__.py").write_text(
        "import sys\n"
        "from napari_deepcube.cli import main\n"
        "main(sys.argv[1:])  # every import the command makes, done: no exec runs after the interrupt\n"
        "try:\n"
        "    exec('raise KeyboardInterrupt')\n"
        "except KeyboardInterrupt:\n"
        "    pass\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "runner", "segment", "missing.npy", "-o", "labels.tif"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "missing.npy" in result.stderr


def test_ctrl_c_while_writing_removes_the_temporaries_and_keeps_old_outputs(tmp_path):
    from napari_deepcube.core.io.outputs import atomic_write, output_transaction

    first, second = tmp_path / "labels.tif", tmp_path / "report.json"
    first.write_text("old")
    with pytest.raises(KeyboardInterrupt), output_transaction():
        with atomic_write(first) as temporary:
            temporary.write_text("new")
        with atomic_write(second) as temporary:
            temporary.write_text("half")
            raise KeyboardInterrupt
    assert first.read_text() == "old" and not second.exists() and _temporaries(tmp_path) == []


def test_convert_refuses_to_write_over_its_source_or_a_folder_it_did_not_write(tmp_path, cube_tif, capsys):
    from napari_deepcube.core.io import read_cube, write_cube

    store = tmp_path / "cube.zarr"
    write_cube(store, read_cube(cube_tif))
    other = tmp_path / "notes.zarr"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    before = _snapshot(tmp_path)
    for target, words in ((store, "would be overwritten"), (other, "left alone")):
        status, _, stderr = _run(["convert", store, target], capsys)
        assert status == 2 and words in stderr and _one_line(stderr)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--seed", "-1"], "seed"),
        (["--seed", str(2**70)], "seed"),
        (["--spatial-weight", "inf"], "--spatial-weight"),
        (["--spatial-weight", "nan"], "--spatial-weight"),
        (["--scheduler", "nonsense"], "--scheduler 'nonsense'"),
        (["--k-min", "200", "--k-max", "210"], "valid pixels"),
    ],
)
def test_out_of_range_options_exit_2_with_one_line(options, words, tmp_path, cube_tif, capsys):
    out = tmp_path / "labels.tif"
    status, _, stderr = _run(["segment", cube_tif, "-o", out, "--epochs", "2", *options], capsys)
    assert status == 2 and words in stderr and _one_line(stderr)
    assert not out.exists()


def test_values_beyond_float32_are_refused_not_merged_into_one_cluster(tmp_path, capsys):
    cube = np.random.default_rng(0).uniform(1, 2, (8, 8, 16))
    cube[:4] *= 1e300
    path = tmp_path / "huge.npy"
    np.save(path, cube)
    status, _, stderr = _run(["segment", path, "-o", tmp_path / "l.tif", *FAST], capsys)
    assert status == 2 and "float32 range" in stderr and _one_line(stderr)


def test_a_three_by_three_cube_is_segmented_with_the_default_k_range_and_with_k_equal_to_its_pixels(
    tmp_path, capsys
):
    path = tmp_path / "tiny.npy"
    np.save(path, np.random.default_rng(0).poisson(5, (3, 3, 16)).astype(np.uint16))
    out = tmp_path / "l.tif"
    status, stdout, stderr = _run(["segment", path, "-o", out, "--epochs", "2"], capsys)
    assert status == 0, stderr
    k = int(stdout.split("k = ")[1].split()[0])
    assert 2 <= k <= 8 and np.unique(tifffile.imread(out)).size == k
    status, _, stderr = _run(["segment", path, "-o", out, "--epochs", "2", "--k", "9"], capsys)
    assert status == 0, stderr
    assert sorted(np.unique(tifffile.imread(out))) == list(range(1, 10))


def test_files_the_reader_opens_beside_the_input_are_inputs_too(tmp_path, capsys):
    from napari_deepcube.core.io import read_cube, write_cube

    cube = np.random.default_rng(0).poisson(20, (12, 12, 16)).astype(np.uint16)
    raw = tmp_path / "scene.img"
    raw.write_bytes(cube.tobytes())
    (tmp_path / "scene.hdr").write_text(
        "ENVI\nsamples = 12\nlines = 12\nbands = 16\nheader offset = 0\nfile type = ENVI Standard\n"
        "data type = 12\ninterleave = bip\nbyte order = 0\n"
    )
    store = tmp_path / "scene.zarr"
    write_cube(store, read_cube(tmp_path / "scene.hdr"))
    before = _snapshot(tmp_path)
    cases = [
        (tmp_path / "scene.hdr", ["--report", raw]),
        (store, ["--report", store / "zarr.json"]),
    ]
    for source, argv in cases:
        status, _, stderr = _run(["segment", source, "-o", tmp_path / "l.tif", *argv, *FAST], capsys)
        assert status == 2 and "would be overwritten" in stderr and _one_line(stderr), stderr
    assert _snapshot(tmp_path) == before


def test_outputs_are_checked_before_the_input_is_even_read(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "results.tif").mkdir()
    status, _, stderr = _run(["segment", corrupt, "-o", tmp_path / "results.tif"], capsys)
    assert status == 2 and "existing folder" in stderr and "corrupt.npy" not in stderr


def test_k_beyond_the_training_sample_is_refused(tmp_path, cube_tif, capsys):
    for options in (["--k", "50"], ["--k-min", "20", "--k-max", "30"]):
        status, _, stderr = _run(["segment", cube_tif, "-o", tmp_path / "l.tif", "--n-train", "16",
                                  "--epochs", "2", *options], capsys)
        assert status == 2 and "training sample of 16 pixels" in stderr and _one_line(stderr)


@pytest.mark.parametrize(
    ("options", "words"), [(["--seed", "-1"], "--seed"), (["--out", "FILE"], "is a file")]
)
def test_bad_demo_options_exit_2_with_one_line(options, words, tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    options = [str(afile) if item == "FILE" else item for item in options]
    status, _, stderr = _run(["demo", "--quiet", *options], capsys)
    assert status == 2 and words in stderr and _one_line(stderr)
    assert afile.read_text() == "keep"


def test_sigterm_while_writing_removes_the_temporaries(tmp_path):
    """SIGTERM in the middle of the outputs: the old file stays, no temporary is left."""
    target = tmp_path / "labels.tif"
    target.write_text("an earlier result")
    script = (
        "import sys, time\n"
        "from napari_deepcube.cli import sigterm_interrupts\n"
        "from napari_deepcube.core.io.outputs import atomic_write, output_transaction\n"
        "with sigterm_interrupts():\n"
        "    try:\n"
        "        with output_transaction(), atomic_write(sys.argv[1]) as temporary:\n"
        "            temporary.write_text('half')\n"
        "            print('writing', flush=True)\n"
        "            time.sleep(60)\n"
        "    except KeyboardInterrupt:\n"
        "        sys.exit(1)\n"
    )
    command = [sys.executable, "-c", script, str(target)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout.readline().strip() == "writing"
        assert len(_temporaries(tmp_path)) == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 1
    assert target.read_text() == "an earlier result" and _temporaries(tmp_path) == []
