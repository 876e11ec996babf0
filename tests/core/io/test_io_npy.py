"""NumPy .npy and .npz files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import can_read, list_datasets, read_cube
from napari_deepcube.core.io._mapped import MappedArray


def test_npy_is_height_width_channels(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, array)
    cube = read_cube(path)
    np.testing.assert_array_equal(cube.data, array)
    assert cube.metadata["format"] == "npy"
    assert (cube.spectral_unit, cube.spectral_label) == ("channel", "Channel")


def test_npy_lazy_is_mapped_with_the_same_values(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, array)
    lazy, eager = read_cube(path, lazy=True), read_cube(path, lazy=False)
    assert isinstance(lazy.data, MappedArray)
    assert not isinstance(eager.data, MappedArray)
    np.testing.assert_array_equal(np.asarray(lazy.data), eager.data)
    assert not isinstance(read_cube(path).data, MappedArray)  # small: eager by default


def test_spectral_axis_override(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, np.moveaxis(array, -1, 0))  # stored (C, H, W)
    cube = read_cube(path, spectral_axis=0)
    np.testing.assert_array_equal(cube.data, array)
    assert cube.metadata["stored_spectral_axis"] == 0


def test_spectral_axis_out_of_range(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, array)
    with pytest.raises(InputError, match=r"cube\.npy: spectral axis 3 does not exist.*0, 1 or 2"):
        read_cube(path, spectral_axis=3)


@pytest.mark.parametrize(
    ("key", "unit", "label"),
    [
        ("energy_keV", "keV", "Energy"),
        ("energy_loss_eV", "eV", "Energy loss"),
        ("wavelength_A", "Å", "Wavelength"),
        ("wavelength_nm", "nm", "Wavelength"),
    ],
)
def test_npz_calibration_keys(
    tmp_path: Path, array: np.ndarray, energies: np.ndarray, key: str, unit: str, label: str
) -> None:
    path = tmp_path / "scan.npz"
    np.savez(path, cube=array, **{key: energies}, labels=np.zeros((5, 7), np.uint8))
    cube = read_cube(path)
    np.testing.assert_array_equal(cube.data, array)
    np.testing.assert_array_equal(cube.spectral_values, energies)
    assert (cube.spectral_unit, cube.spectral_label) == (unit, label)


def test_npz_generic_calibration_and_scalar_facts(
    tmp_path: Path, array: np.ndarray, energies: np.ndarray
) -> None:
    path = tmp_path / "scan.npz"
    np.savez(path, data=array, spectral_values=energies, spectral_unit="nm", meta_json='{"a": 1}')
    cube = read_cube(path)  # the only 3-D array, even when not called "cube"
    assert (cube.spectral_unit, cube.spectral_label) == ("nm", "Wavelength")
    assert cube.metadata["meta_json"] == '{"a": 1}'
    assert cube.metadata["dataset"] == "data"


def test_npz_several_cubes_are_listed(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "two.npz"
    np.savez(path, first=array, second=array[:, :, :4], image=array[..., 0])
    with pytest.raises(InputError) as info:
        read_cube(path)
    message = str(info.value)
    assert "two.npz" in message and "first (5, 7, 11) uint16" in message
    assert "second (5, 7, 4)" in message and "--dataset" in message
    assert read_cube(path, dataset="second").shape == (5, 7, 4)
    assert [d.name for d in list_datasets(path)] == ["first", "second"]


def test_npz_missing_dataset_lists_the_available(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "one.npz"
    np.savez(path, cube=array)
    with pytest.raises(InputError, match=r"one\.npz has no dataset 'img'.*cube \(5, 7, 11\)"):
        read_cube(path, dataset="img")


def test_npz_without_a_cube(tmp_path: Path) -> None:
    path = tmp_path / "flat.npz"
    np.savez(path, image=np.ones((4, 4)))
    with pytest.raises(InputError, match=r"flat\.npz holds no 3-D numeric dataset.*image \(4, 4\)"):
        read_cube(path)
    assert not can_read(path)


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 5)])
def test_wrong_number_of_dimensions(tmp_path: Path, shape: tuple[int, ...]) -> None:
    path = tmp_path / "bad.npy"
    np.save(path, np.ones(shape, np.float32))
    with pytest.raises(InputError) as info:
        read_cube(path)
    message = str(info.value)
    assert "bad.npy" in message and str(shape) in message and f"{len(shape)}-D" in message
    assert "3-D" in message
    assert not can_read(path)


def test_pickled_object_array_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.npy"
    np.save(path, np.empty((2, 3, 4), dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"objects\.npy.*pickled object array.*numeric"):
        read_cube(path)


def test_pickled_cube_in_npz_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "objects.npz"
    np.savez(path, cube=np.empty((2, 3, 4), dtype=object))
    with pytest.raises(InputError, match=r"objects\.npz.*'cube'.*pickled"):
        read_cube(path)


def test_strings_are_not_numbers(tmp_path: Path) -> None:
    path = tmp_path / "text.npy"
    np.save(path, np.full((2, 3, 4), "a"))
    with pytest.raises(InputError, match=r"text\.npy: the array holds text, not numbers"):
        read_cube(path)


@pytest.mark.parametrize("lazy", [False, True])
def test_truncated_npy(tmp_path: Path, array: np.ndarray, lazy: bool) -> None:
    path = tmp_path / "cut.npy"
    np.save(path, array)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=r"cut\.npy is incomplete: its header describes 898 bytes but"):
        read_cube(path, lazy=lazy)


def test_npz_that_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip archive at all")
    with pytest.raises(InputError, match=r"junk\.npz could not be read as a NumPy"):
        read_cube(path)


def test_all_nan_and_empty_pixels_are_masked_not_errors(tmp_path: Path, array: np.ndarray) -> None:
    data = array.astype(np.float64)
    data[0, 0] = np.inf
    data[0, 1] = 0
    path = tmp_path / "holes.npy"
    np.save(path, data)
    cube = read_cube(path)
    assert cube.metadata["n_nonfinite_pixels"] == 1
    assert cube.metadata["n_empty_pixels"] == 1
    assert cube.n_valid == 5 * 7 - 2


def _edit_header(path: Path, old: bytes, new: bytes) -> None:
    """Replace ``old`` in an .npy header, keeping the header's length (its padding absorbs it)."""
    content = path.read_bytes()
    end = content.index(b"\n")
    header = content[:end].replace(old, new).rstrip(b" ").ljust(end, b" ")
    path.write_bytes(header + content[end:])


def test_header_that_numpy_cannot_tokenise(tmp_path: Path, array: np.ndarray) -> None:
    # An unclosed parenthesis: numpy's header parser let tokenize.TokenError through.
    path = tmp_path / "cube.npy"
    np.save(path, array)
    _edit_header(path, b"(5, 7, 11)", b"(5, 7, 11 ")
    with pytest.raises(InputError, match=r"cube\.npy could not be read as a NumPy \.npy file"):
        read_cube(path)
    assert not can_read(path)


def test_negative_size_in_the_header(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, array)
    _edit_header(path, b"(5, 7, 11)", b"(5, -7, 11)")
    with pytest.raises(InputError, match=r"cube\.npy has a damaged header \(shape \(5, -7, 11\)\)"):
        read_cube(path)


def test_header_promising_more_than_the_file_holds(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, array)
    _edit_header(path, b"(5, 7, 11)", b"(5, 7, 11000000000)")
    with pytest.raises(InputError, match=r"cube\.npy is incomplete: its header describes 770000000128 bytes"):
        read_cube(path)
