"""HDF5 files, including HyperSpy's .hspy."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import can_read, list_datasets, read_cube


def test_paper_layout_img_is_height_width_channels(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "paper.h5"
    with h5py.File(path, "w") as file:
        file["img"] = array
        file["meta/name"] = "painting"
    cube = read_cube(path)
    np.testing.assert_array_equal(cube.data, array)
    assert cube.metadata["dataset"] == "img"
    assert can_read(path)


@pytest.mark.parametrize("lazy", [True, None])
def test_lazy_hdf5_is_dask_with_the_same_values(tmp_path: Path, array: np.ndarray, lazy: bool | None) -> None:
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("group/cube", data=array, chunks=(1, 7, 11))
    cube = read_cube(path, lazy=lazy)
    assert cube.is_lazy is bool(lazy)
    np.testing.assert_array_equal(np.asarray(cube.data), array)
    np.testing.assert_array_equal(cube.spectra(np.array([4, 0]), np.array([6, 1])), array[[4, 0], [6, 1]])


def test_calibration_from_attributes_or_a_sibling(
    tmp_path: Path, array: np.ndarray, energies: np.ndarray
) -> None:
    path = tmp_path / "calibrated.h5"
    with h5py.File(path, "w") as file:
        file["a/cube"] = array
        file["a/cube"].attrs.update(spectral_values=energies, spectral_unit="nm")
        file["b/cube"] = array
        file["b/energy_keV"] = energies
    by_attrs = read_cube(path, dataset="a/cube")
    assert (by_attrs.spectral_unit, by_attrs.spectral_label) == ("nm", "Wavelength")
    by_sibling = read_cube(path, dataset="/b/cube")
    np.testing.assert_array_equal(by_sibling.spectral_values, energies)
    assert by_sibling.spectral_unit == "keV"


def test_several_cubes_are_listed_with_shapes(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "many.h5"
    with h5py.File(path, "w") as file:
        file["raw"] = array
        file["processed/cube"] = array.astype(np.float32)
        file["mask"] = np.ones((5, 7), bool)
    assert list_datasets(path) == [
        ("processed/cube", (5, 7, 11), "float32"),
        ("raw", (5, 7, 11), "uint16"),
    ]
    with pytest.raises(InputError) as info:
        read_cube(path)
    message = str(info.value)
    for part in ("many.h5", "2 3-D datasets", "raw (5, 7, 11) uint16", "processed/cube", "--dataset"):
        assert part in message
    with pytest.raises(InputError, match=r"many\.h5 has no dataset 'cube'.*raw \(5, 7, 11\)"):
        read_cube(path, dataset="cube")
    with pytest.raises(InputError, match=r"many\.h5: dataset 'mask' has shape \(5, 7\) \(2-D\)"):
        read_cube(path, dataset="mask")


def test_four_dimensional_only(tmp_path: Path) -> None:
    path = tmp_path / "series.h5"
    with h5py.File(path, "w") as file:
        file["t"] = np.ones((2, 3, 4, 5))
    with pytest.raises(InputError, match=r"series\.h5 holds no 3-D numeric dataset.*t \(2, 3, 4, 5\)"):
        read_cube(path)
    assert not can_read(path)


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "fake.h5"
    path.write_bytes(b"this is text, not HDF5\n" * 10)
    with pytest.raises(InputError, match=r"fake\.h5 could not be read as an HDF5 file"):
        read_cube(path)
    assert not can_read(path)


def _hyperspy(path: Path, data: np.ndarray, axes: list[dict[str, object]]) -> None:
    with h5py.File(path, "w") as file:
        file.attrs.update(file_format="HyperSpy", file_format_version="3.0")
        signal = file.create_group("Experiments/stack")
        signal["data"] = data
        for i, attrs in enumerate(axes):
            signal.create_group(f"axis-{i}").attrs.update(attrs)


def test_hyperspy_image_stack_uses_the_navigation_axis(tmp_path: Path, array: np.ndarray) -> None:
    # An energy-filtered image series: energy navigates, the images are the signal.
    path = tmp_path / "efstem.hspy"
    stored = np.moveaxis(array, -1, 0)
    spatial = {"navigate": False, "scale": 0.5, "offset": 0.0, "units": "nm"}
    _hyperspy(
        path,
        stored,
        [
            {
                "name": "Energy loss",
                "navigate": True,
                "scale": 2.0,
                "offset": 100.0,
                "size": 11,
                "units": "eV",
            },
            {**spatial, "name": "y", "size": 5},
            {**spatial, "name": "x", "size": 7},
        ],
    )
    cube = read_cube(path)
    np.testing.assert_array_equal(cube.data, array)
    np.testing.assert_allclose(cube.spectral_values, 100 + 2 * np.arange(11))
    assert (cube.spectral_unit, cube.spectral_label) == ("eV", "Energy loss")
    assert cube.metadata["format"] == "hyperspy"
    # Every axis is calibrated, so an override still gets real coordinates.
    sideways = read_cube(path, spectral_axis=2)
    np.testing.assert_allclose(sideways.spectral_values, 0.5 * np.arange(7))
    assert sideways.spectral_label == "x"


def test_hyperspy_non_uniform_axis_lists_its_coordinates(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "nonuniform.hspy"
    energies = np.geomspace(1.0, 20.0, 11)
    navigation = {"navigate": True, "scale": 1.0, "offset": 0.0, "units": "µm"}
    _hyperspy(
        path,
        array,
        [
            {**navigation, "name": "y", "size": 5},
            {**navigation, "name": "x", "size": 7},
            {"name": "Energy", "navigate": False, "axis": energies, "units": "keV"},
        ],
    )
    cube = read_cube(path)
    np.testing.assert_allclose(cube.spectral_values, energies)
    assert (cube.spectral_unit, cube.spectral_label) == ("keV", "Energy")
    assert cube.metadata["axes"][2]["axis"] == pytest.approx(energies.tolist())


def _damage_group_table(path: Path) -> None:
    """Break the signature of the root group's local heap, where member names are kept."""
    content = path.read_bytes()
    assert content.count(b"HEAP") == 1
    path.write_bytes(content.replace(b"HEAP", b"JUNK"))


@pytest.mark.parametrize("suffix", [".h5", ".hspy"])
def test_damaged_group_table(tmp_path: Path, array: np.ndarray, suffix: str) -> None:
    # h5py raises RuntimeError ("Object visitation failed") while listing the datasets.
    path = tmp_path / f"cube{suffix}"
    with h5py.File(path, "w") as file:
        file["img"] = array
    _damage_group_table(path)
    assert not can_read(path)
    message = rf"cube\{suffix} could not be read as an HDF5 file \(Object visitation failed"
    with pytest.raises(InputError, match=message):
        read_cube(path)


def test_damaged_chunk_of_a_lazy_cube(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "cube.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("img", data=array, chunks=(1, 7, 11), compression="gzip")
        offset = file["img"].id.get_chunk_info(2).byte_offset
    with open(path, "r+b") as stream:
        stream.seek(offset)
        stream.write(b"\xff" * 16)
    with pytest.raises(InputError, match=r"cube\.h5 could not be read as an HDF5 file"):
        read_cube(path, lazy=True)


def test_empty_dataspace_is_named_as_such(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as file:
        file["img"] = h5py.Empty("f4")
    with pytest.raises(InputError, match=r"empty\.h5: dataset 'img' holds no values \(an empty HDF5"):
        read_cube(path, dataset="img")
    with pytest.raises(InputError, match=r"empty\.h5 holds no 3-D numeric dataset; it holds img \(\) no val"):
        read_cube(path)


def test_text_dataset_is_text_not_a_pickle(tmp_path: Path) -> None:
    path = tmp_path / "names.h5"
    with h5py.File(path, "w") as file:
        file.create_dataset("names", data=np.full((2, 3, 4), "a", dtype=object), dtype=h5py.string_dtype())
    with pytest.raises(InputError, match=r"names\.h5: dataset 'names' holds text, not numbers") as error:
        read_cube(path, dataset="names")
    assert "pickle" not in str(error.value)


def test_damaged_hyperspy_calibration(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "bad.hspy"
    navigation = {"navigate": True, "scale": 1.0, "offset": 0.0}
    _hyperspy(
        path,
        array,
        [navigation, navigation, {"navigate": False, "scale": "wide", "offset": 0.0, "units": "eV"}],
    )
    with pytest.raises(InputError, match=r"bad\.hspy: the calibration of axis 2 .* is not numeric"):
        read_cube(path)
    # Another spectral axis does not need the damaged calibration.
    assert read_cube(path, spectral_axis=1).spectral_values.tolist() == [0, 1, 2, 3, 4, 5, 6]
