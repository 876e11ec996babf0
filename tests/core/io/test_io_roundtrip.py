"""write_cube then read_cube gives the same cube back, for every writable format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import WRITABLE_SUFFIXES, read_cube, write_cube
from napari_deepcube.core.io import npy as npy_module
from napari_deepcube.core.io._mapped import MappedArray

CALIBRATED = [".npz", ".tif", ".tiff", ".zarr"]


@pytest.mark.parametrize("suffix", WRITABLE_SUFFIXES)
def test_values_dtype_and_axis_order_round_trip(tmp_path: Path, cube: Datacube, suffix: str) -> None:
    path = tmp_path / f"scan{suffix}"
    write_cube(path, cube)
    back = read_cube(path)
    assert back.shape == cube.shape == (5, 7, 11)
    assert back.data.dtype == cube.data.dtype
    np.testing.assert_array_equal(np.asarray(back.data), np.asarray(cube.data))
    assert back.name == "scan"
    assert back.metadata["source"] == str(path)


@pytest.mark.parametrize("suffix", CALIBRATED)
def test_calibration_round_trips(tmp_path: Path, cube: Datacube, suffix: str) -> None:
    path = tmp_path / f"scan{suffix}"
    write_cube(path, cube)
    back = read_cube(path)
    np.testing.assert_array_equal(back.spectral_values, cube.spectral_values)
    assert (back.spectral_unit, back.spectral_label) == ("keV", "Energy")


def test_npy_keeps_the_array_alone(tmp_path: Path, cube: Datacube) -> None:
    path = tmp_path / "scan.npy"
    write_cube(path, cube)
    assert read_cube(path).spectral_unit == "channel"


@pytest.mark.parametrize("suffix", [".npy", ".zarr", ".tif"])
def test_lazy_cube_is_written_and_read_lazily(tmp_path: Path, cube: Datacube, suffix: str) -> None:
    first = tmp_path / "first.npy"
    write_cube(first, cube)
    lazy = read_cube(first, lazy=True)
    assert isinstance(lazy.data, MappedArray)
    path = tmp_path / f"second{suffix}"
    write_cube(path, lazy)
    again = read_cube(path, lazy=True)
    assert again.is_lazy or isinstance(again.data, MappedArray)
    np.testing.assert_array_equal(np.asarray(again.data), np.asarray(cube.data))
    np.testing.assert_array_equal(again.mask, cube.mask)


def test_float_cube_with_nan_round_trips(tmp_path: Path, array: np.ndarray) -> None:
    data = array.astype(np.float32)
    data[1, 2] = np.nan
    path = tmp_path / "nan.tif"
    write_cube(path, Datacube.from_array(data))
    back = read_cube(path)
    np.testing.assert_array_equal(np.asarray(back.data), data)
    assert not back.mask[1, 2]
    assert back.metadata["n_nonfinite_pixels"] == 1


@pytest.mark.parametrize("suffix", [".npy", ".zarr"])
def test_overwrite_replaces_the_old_file(tmp_path: Path, cube: Datacube, suffix: str) -> None:
    path = tmp_path / f"scan{suffix}"
    write_cube(path, Datacube.from_array(np.ones((2, 3, 4), np.uint8)))
    write_cube(path, cube)
    assert read_cube(path).shape == cube.shape
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, cube: Datacube, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "scan.npz"
    write_cube(path, cube)
    before = path.read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(npy_module.np, "savez", fail)
    with pytest.raises(InputError, match=r"scan\.npz.*free space"):
        write_cube(path, cube)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["scan.npz"]


def test_unknown_output_suffix_lists_the_writable_ones(tmp_path: Path, cube: Datacube) -> None:
    with pytest.raises(InputError, match=r"scan\.png.*\.npy.*\.zarr"):
        write_cube(tmp_path / "scan.png", cube)


def test_missing_output_folder_is_named(tmp_path: Path, cube: Datacube) -> None:
    with pytest.raises(InputError, match="does not exist; create it"):
        write_cube(tmp_path / "absent" / "scan.npy", cube)
