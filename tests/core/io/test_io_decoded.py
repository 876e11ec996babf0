"""A lazy cube decoded once into a private temporary file: its values, its folder, when none is made."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io._decoded import decoded_once
from napari_deepcube.core.io._mapped import MappedArray

da = pytest.importorskip("dask.array")


@pytest.fixture
def temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder of this test alone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def _copies(root: Path) -> list[Path]:
    return sorted(root.glob("deepcube-decoded-*"))


def test_a_cube_of_many_chunks_is_copied_band_by_band_in_native_byte_order(temporary: Path) -> None:
    # 80 MB: more than one 64 MB band of rows.
    values = np.arange(40 * 1024 * 1024, dtype=">u2").reshape(40, 1024, 1024)
    copied = decoded_once(da.from_array(values, chunks=(3, 1024, 256)), Path("cube.pts"), "a test cube")
    assert isinstance(copied, MappedArray) and copied.dtype == np.dtype("=u2")
    np.testing.assert_array_equal(copied[...], values)
    (folder,) = _copies(temporary)
    del copied
    gc.collect()
    assert not folder.exists()


def test_a_failed_decode_is_one_input_error_and_leaves_no_folder(temporary: Path) -> None:
    def second_band_fails(block: np.ndarray, block_info: dict) -> np.ndarray:
        if block_info[0]["chunk-location"][0] == 1:
            raise ValueError("damaged events")
        return block

    cube = da.from_array(np.ones((6, 4, 8), dtype=np.uint16), chunks=(3, 4, 8)).map_blocks(
        second_band_fails, meta=np.empty((0, 0, 0), dtype=np.uint16)
    )
    with pytest.raises(InputError, match=r"cube\.pts could not be read as a test cube"):
        decoded_once(cube, Path("cube.pts"), "a test cube")
    assert _copies(temporary) == []


def _memory_mounts() -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return [line.split()[1] for line in mounts if line.split()[2] == "tmpfs"]


@pytest.mark.skipif(not Path("/proc/self/mounts").exists(), reason="needs Linux's mount table")
def test_no_copy_is_made_on_a_folder_held_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    if "/dev/shm" not in _memory_mounts():
        pytest.skip("no tmpfs at /dev/shm")
    shared = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        monkeypatch.setattr(tempfile, "tempdir", str(shared))
        cube = da.from_array(np.ones((6, 4, 8), dtype=np.uint16), chunks=(3, 4, 8))
        assert decoded_once(cube, Path("cube.pts"), "a test cube") is None
        assert list(shared.iterdir()) == []
    finally:
        os.rmdir(shared)


@pytest.mark.skipif(os.name != "posix", reason="process ids are checked on POSIX")
def test_a_copy_left_by_a_killed_process_goes_when_the_next_is_made(temporary: Path) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    abandoned = temporary / f"deepcube-decoded-{int(ended.stdout)}-x1"
    running = temporary / f"deepcube-decoded-{os.getppid()}-x2"
    for folder in (abandoned, running):
        folder.mkdir()
        (folder / "cube.raw").write_bytes(b"\0" * 16)
    copied = decoded_once(da.from_array(np.ones((6, 4, 8), dtype=np.uint16)), Path("cube.bcf"), "a test cube")
    assert copied is not None
    assert not abandoned.exists()
    assert (running / "cube.raw").exists()


@pytest.mark.skipif(os.name != "posix", reason="process ids are checked on POSIX")
def test_a_copy_gone_while_the_abandoned_ones_are_swept_is_passed_over(temporary: Path) -> None:
    # A name that no longer leads to a folder, as when another run removes it between listing and looking.
    (temporary / "deepcube-decoded-1-gone").symlink_to(temporary / "removed")
    copied = decoded_once(da.from_array(np.ones((6, 4, 8), dtype=np.uint16)), Path("cube.bcf"), "a test cube")
    assert copied is not None
