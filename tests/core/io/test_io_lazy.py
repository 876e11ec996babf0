"""Behaviour shared by every reader: when to read lazily, optional packages."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import _lazy, read_cube
from napari_deepcube.core.io._mapped import MappedArray


def test_large_cubes_are_read_lazily_by_default(
    tmp_path: Path, array: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, array)
    monkeypatch.setattr(_lazy, "LAZY_THRESHOLD_BYTES", array.nbytes - 1)
    assert isinstance(read_cube(path).data, MappedArray)
    assert not isinstance(read_cube(path, lazy=False).data, MappedArray)


def test_half_the_available_memory_caps_the_threshold(
    tmp_path: Path, array: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, array)
    monkeypatch.setattr(_lazy, "_available_memory", lambda: array.nbytes * 2)
    assert not isinstance(read_cube(path).data, MappedArray)
    monkeypatch.setattr(_lazy, "_available_memory", lambda: array.nbytes * 2 - 2)
    assert isinstance(read_cube(path).data, MappedArray)


def test_eager_only_format_larger_than_memory(
    tmp_path: Path, array: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.npz"
    np.savez(path, cube=array)
    monkeypatch.setattr(_lazy, "_available_memory", lambda: array.nbytes // 4)
    with pytest.raises(InputError, match=r"big\.npz holds .* GiB, more than the .* available"):
        read_cube(path)


def test_missing_optional_package_names_the_extra(
    tmp_path: Path, array: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cube.zarr"
    path.mkdir()
    (path / "zarr.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "zarr", None)  # makes `import zarr` fail
    with pytest.raises(InputError, match=r"cube\.zarr: .*'zarr'.*pip install napari-deepcube\[formats\]"):
        read_cube(path)
