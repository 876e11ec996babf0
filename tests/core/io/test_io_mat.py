"""MATLAB files: v5 (scipy) and v7.3 (HDF5), cubes and unmixing matrices."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import can_read, list_datasets, read_cube


def _save_v73(path: Path, variables: dict[str, np.ndarray]) -> None:
    """A v7.3 file as MATLAB writes it: a 512-byte header, then HDF5, arrays transposed."""
    with h5py.File(path, "w", userblock_size=512) as file:
        for name, value in variables.items():
            file[name] = np.asarray(value).T
            file[name].attrs["MATLAB_class"] = np.bytes_("double" if value.dtype == np.float64 else "uint16")
    with open(path, "r+b") as stream:
        stream.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + b"\0" * 8 + b"\x00\x02IM")


def _unmixing(array: np.ndarray) -> np.ndarray:
    """(bands, pixels) with pixels in MATLAB's column-major order."""
    height, width, bands = array.shape
    return np.reshape(array, (height * width, bands), order="F").T


def test_v5_cube_with_wavelengths(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "scene.mat"
    scipy.io.savemat(path, {"cube": array, "wavelength_nm": np.arange(11.0) + 400, "note": "x"})
    cube = read_cube(path)
    np.testing.assert_array_equal(cube.data, array)
    np.testing.assert_array_equal(cube.spectral_values, np.arange(11.0) + 400)
    assert cube.metadata["format"] == "mat-v5"
    assert can_read(path)


def test_v5_unmixing_matrix_is_column_major(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "unmix.mat"
    scipy.io.savemat(path, {"Y": _unmixing(array), "nRow": 5.0, "nCol": 7.0})
    cube = read_cube(path)
    np.testing.assert_array_equal(cube.data, array)
    assert cube.metadata["pixel_order"] == "column-major"
    assert list_datasets(path) == [("Y", (5, 7, 11), "uint16")]


def test_v5_abundances_beside_the_spectra_must_be_chosen(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "unmix.mat"
    matrices = {"Y": _unmixing(array), "A": np.ones((3, 35))}
    scipy.io.savemat(path, {**matrices, "nRow": 5.0, "nCol": 7.0})
    with pytest.raises(InputError, match=r"unmix\.mat holds 2 3-D datasets: Y \(5, 7, 11\).*A \(5, 7, 3\)"):
        read_cube(path)
    np.testing.assert_array_equal(read_cube(path, dataset="Y").data, array)


def test_v5_pixels_by_bands_matrix(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "unmix.mat"
    scipy.io.savemat(path, {"V": _unmixing(array).T, "nRow": 5.0, "nCol": 7.0})
    np.testing.assert_array_equal(read_cube(path).data, array)


def test_v5_several_cubes(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"radiance": array, "reflectance": array / 2.0})
    with pytest.raises(InputError) as info:
        read_cube(path)
    message = str(info.value)
    assert "two.mat" in message and "radiance (5, 7, 11)" in message
    assert "reflectance (5, 7, 11) float64" in message and "--dataset" in message
    np.testing.assert_array_equal(read_cube(path, dataset="reflectance").data, array / 2.0)


@pytest.mark.parametrize("lazy", [False, True])
def test_v73_cube(tmp_path: Path, array: np.ndarray, lazy: bool) -> None:
    path = tmp_path / "big.mat"
    _save_v73(path, {"cube": array, "energy_keV": np.linspace(1, 2, 11)})
    cube = read_cube(path, lazy=lazy)
    assert cube.is_lazy is lazy
    np.testing.assert_array_equal(np.asarray(cube.data), array)
    assert cube.spectral_unit == "keV"
    assert cube.metadata["format"] == "mat-v7.3"
    assert list_datasets(path) == [("cube", (5, 7, 11), "uint16")]


def test_v73_unmixing_matrix(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "unmix73.mat"
    _save_v73(path, {"Y": _unmixing(array), "nRow": np.array([[5.0]]), "nCol": np.array([[7.0]])})
    np.testing.assert_array_equal(read_cube(path).data, array)


def test_not_matlab(tmp_path: Path) -> None:
    path = tmp_path / "fake.mat"
    path.write_bytes(b"\x01\x02 definitely not a MATLAB file " * 8)
    with pytest.raises(InputError, match=r"fake\.mat could not be read as a MATLAB file"):
        read_cube(path)
    assert not can_read(path)


def test_v5_two_dimensional_only(tmp_path: Path) -> None:
    path = tmp_path / "flat.mat"
    scipy.io.savemat(path, {"image": np.ones((4, 6))})
    with pytest.raises(InputError, match=r"flat\.mat holds no 3-D numeric dataset.*image \(4, 6\)"):
        read_cube(path)


def test_damaged_v73_file(tmp_path: Path, array: np.ndarray) -> None:
    # h5py raises RuntimeError when the root group's member table is damaged.
    path = tmp_path / "cube.mat"
    _save_v73(path, {"cube": array})
    content = path.read_bytes()
    path.write_bytes(content.replace(b"HEAP", b"JUNK"))
    assert not can_read(path)
    with pytest.raises(InputError, match=r"cube\.mat could not be read as a MATLAB file \(.*\); check"):
        read_cube(path)


def _values_tag(content: bytes, name: bytes) -> int:
    """Offset of the type of the values of the array named ``name`` (4 letters: a small element)."""
    return content.index(name) + 4


@pytest.mark.parametrize("compressed", [False, True])
def test_v5_values_of_an_unknown_type_are_refused_before_scipy_reads_them(
    tmp_path: Path, array: np.ndarray, compressed: bool
) -> None:
    # scipy looks the type up in a fixed table without checking it: the process crashed.
    path = tmp_path / "cube.mat"
    scipy.io.savemat(path, {"cube": array.astype(np.float64)})
    content = bytearray(path.read_bytes())
    content[_values_tag(content, b"cube")] = 200
    if compressed:  # as MATLAB saves by default: the variable as a zlib-compressed element
        element = zlib.compress(bytes(content[128:]))
        content = content[:128] + struct.pack("<II", 15, len(element)) + element
    path.write_bytes(content)
    assert not can_read(path)
    with pytest.raises(InputError, match=r"cube\.mat is damaged: the values of 'cube' have the unknown type"):
        read_cube(path)


def test_v5_complex_variables_are_not_loaded(tmp_path: Path, array: np.ndarray) -> None:
    # Only the type of their real part is checked before scipy reads them.
    path = tmp_path / "complex.mat"
    scipy.io.savemat(path, {"cube": array * 1j})
    with pytest.raises(InputError, match=r"complex\.mat: dataset 'cube' holds complex128 values, not"):
        read_cube(path, dataset="cube")
    scipy.io.savemat(path, {"cube": array, "wavelength_nm": np.arange(11.0) * (1 + 1j)})
    with pytest.raises(InputError, match=r"complex\.mat: the variable 'wavelength_nm' holds complex numbers"):
        read_cube(path)


@pytest.mark.parametrize("version", ["5", "7.3"])
def test_struct_and_text_variables_are_named_as_such(tmp_path: Path, version: str) -> None:
    path = tmp_path / "things.mat"
    if version == "5":
        scipy.io.savemat(path, {"info": {"a": 1.0}, "title": "scan"})
    else:
        with h5py.File(path, "w", userblock_size=512) as file:
            file.create_group("info").attrs["MATLAB_class"] = np.bytes_("struct")
            file["title"] = np.frombuffer(b"s\0c\0a\0n\0", np.uint16)
            file["title"].attrs["MATLAB_class"] = np.bytes_("char")
        with open(path, "r+b") as stream:
            stream.write(b"MATLAB 7.3 MAT-file".ljust(116) + b"\0" * 8 + b"\x00\x02IM")
    with pytest.raises(InputError, match=r"things\.mat: dataset 'info' holds a MATLAB struct, not numbers"):
        read_cube(path, dataset="info")
    with pytest.raises(InputError, match=r"things\.mat: dataset 'title' holds text, not numbers"):
        read_cube(path, dataset="title")
