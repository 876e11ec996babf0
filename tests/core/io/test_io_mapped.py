"""MappedArray: raw arrays read slice by slice, without leaving the file's pages resident."""

from __future__ import annotations

import copy
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.io._mapped import MappedArray, unmapped


def _saved(tmp_path: Path, array: np.ndarray) -> np.memmap:
    path = tmp_path / "array.npy"
    np.save(path, array)
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("order", ["C", "F"])
def test_reads_match_numpy(tmp_path: Path, array: np.ndarray, order: str) -> None:
    stored = np.asfortranarray(array) if order == "F" else array
    mapped = MappedArray.of(_saved(tmp_path, stored))
    assert mapped is not None and mapped.order == order
    assert (mapped.shape, mapped.dtype, mapped.ndim, len(mapped)) == (array.shape, array.dtype, 3, 5)
    np.testing.assert_array_equal(mapped[1:3, ::2, 4], array[1:3, ::2, 4])
    np.testing.assert_array_equal(mapped[[0, 4], [1, 6]], array[[0, 4], [1, 6]])
    np.testing.assert_array_equal(np.asarray(mapped), array)
    moved = mapped.transpose(2, 0, 1)
    assert moved.shape == (11, 5, 7)
    np.testing.assert_array_equal(moved[3], array[..., 3])
    np.testing.assert_array_equal(moved.transpose([1, 2, 0])[2], array[2])
    assert isinstance(mapped[0], np.ndarray) and not isinstance(mapped[0], np.memmap)


def test_big_endian_values_come_back_native(tmp_path: Path, array: np.ndarray) -> None:
    mapped = MappedArray.of(_saved(tmp_path, array.astype(">u2")))
    assert mapped is not None and mapped.dtype == np.dtype("uint16")
    assert mapped[0].dtype.isnative
    np.testing.assert_array_equal(mapped[...], array)


def test_pickles_as_a_path_and_a_layout(tmp_path: Path, array: np.ndarray) -> None:
    mapped = MappedArray.of(_saved(tmp_path, array))
    again = pickle.loads(pickle.dumps(mapped.transpose(1, 0, 2)))
    np.testing.assert_array_equal(again[2], array[:, 2])
    assert len(pickle.dumps(mapped)) < 1000


def test_what_an_array_keeps_alive_goes_with_its_views_and_copies_and_is_never_pickled(
    tmp_path: Path, array: np.ndarray
) -> None:
    """A decoded copy's folder lives as long as any view or copy of the array; no process gets its path."""
    folder = object()
    mapped = MappedArray.of(_saved(tmp_path, array))
    kept = MappedArray(mapped.filename, mapped.dtype, mapped.shape, offset=mapped.offset, keep=folder)
    assert kept.transpose(1, 0, 2).keep is folder
    assert copy.copy(kept).keep is folder and copy.deepcopy(kept).keep is folder
    with pytest.raises(TypeError, match="read only in the process that made it"):
        pickle.dumps(kept.transpose(1, 0, 2))
    np.testing.assert_array_equal(kept.transpose(1, 0, 2)[2], array[:, 2])


def test_only_whole_maps_are_described(tmp_path: Path, array: np.ndarray) -> None:
    memmap = _saved(tmp_path, array)
    assert isinstance(unmapped(memmap.reshape(35, 11)), MappedArray)
    assert isinstance(unmapped(memmap[1:]), np.memmap)
    assert isinstance(unmapped(memmap[..., ::2]), np.memmap)
    plain = np.zeros(3)
    assert unmapped(plain) is plain


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_full_pass_leaves_little_resident(tmp_path: Path) -> None:
    """A pass over 64 MB raises the resident set by far less than a memory map does."""

    def resident_mb() -> float:
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024

    path = tmp_path / "big.npy"
    rows = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(256, 256, 512))
    rows[:] = 1
    rows.flush()
    del rows
    mapped = MappedArray.of(np.load(path, mmap_mode="r"))
    assert mapped is not None
    before = resident_mb()
    total = sum(int(mapped[r : r + 4].sum()) for r in range(0, 256, 4))
    assert total == 256 * 256 * 512
    assert resident_mb() - before < 16
