"""Zarr stores, format v2 and v3, arrays and groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from napari_deepcube.core.errors import InputError  # noqa: E402
from napari_deepcube.core.io import can_read, list_datasets, read_cube  # noqa: E402


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_array_store_with_attributes(
    tmp_path: Path, array: np.ndarray, energies: np.ndarray, zarr_format: int
) -> None:
    path = tmp_path / f"v{zarr_format}.zarr"
    store = zarr.open_array(
        str(path),
        mode="w",
        shape=array.shape,
        dtype=array.dtype,
        chunks=(2, 7, 11),
        zarr_format=zarr_format,
    )
    store[...] = array
    store.attrs.update(spectral_values=energies.tolist(), spectral_unit="Angstrom")
    for lazy in (False, True):
        cube = read_cube(path, lazy=lazy)
        assert cube.is_lazy is lazy
        np.testing.assert_array_equal(np.asarray(cube.data), array)
        np.testing.assert_array_equal(cube.spectral_values, energies)
        assert (cube.spectral_unit, cube.spectral_label) == ("Å", "Wavelength")
    assert can_read(path)


def test_group_with_one_cube_and_a_sibling_calibration(
    tmp_path: Path, array: np.ndarray, energies: np.ndarray
) -> None:
    path = tmp_path / "group.zarr"
    root = zarr.open_group(str(path), mode="w")
    root.create_array("scan/data", shape=array.shape, dtype=array.dtype)[...] = array
    root.create_array("scan/energy_keV", shape=energies.shape, dtype=energies.dtype)[...] = energies
    root.create_array("overview", shape=(5, 7), dtype="f4")
    assert list_datasets(path) == [("scan/data", (5, 7, 11), "uint16")]
    cube = read_cube(path)
    np.testing.assert_array_equal(cube.data, array)
    np.testing.assert_array_equal(cube.spectral_values, energies)
    assert cube.metadata["dataset"] == "scan/data"


def test_group_with_several_cubes(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "many.zarr"
    root = zarr.open_group(str(path), mode="w")
    for name in ("a", "b"):
        root.create_array(name, shape=array.shape, dtype=array.dtype)[...] = array
    with pytest.raises(InputError, match=r"many\.zarr holds 2 3-D datasets: a \(5, 7, 11\).*--dataset"):
        read_cube(path)
    assert read_cube(path, dataset="b").shape == (5, 7, 11)


def test_folder_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "empty.zarr"
    path.mkdir()
    (path / "0.0.0").write_bytes(b"\0")
    with pytest.raises(InputError, match=r"empty\.zarr is not a zarr store: it has no zarr\.json"):
        read_cube(path)
    assert not can_read(path)
