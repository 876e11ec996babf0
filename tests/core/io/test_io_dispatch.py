"""Choosing the reader: suffixes, magic bytes, and the errors before any reader runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import SUPPORTED_SUFFIXES, can_read, read_cube


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.npy"
    with pytest.raises(InputError, match=r"absent\.npy does not exist; check the path"):
        read_cube(path)
    assert not can_read(path)


def test_unknown_suffix_lists_the_supported(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError) as info:
        read_cube(path)
    message = str(info.value)
    assert "notes.txt" in message and "'.txt'" in message
    assert all(suffix in message for suffix in SUPPORTED_SUFFIXES)
    assert not can_read(path)


def test_content_wins_over_a_lying_suffix(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "really_numpy.tif"
    with open(path, "wb") as stream:
        np.save(stream, array)
    np.testing.assert_array_equal(read_cube(path).data, array)


def test_npz_saved_under_an_npy_name(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "archive.npy"
    with open(path, "wb") as stream:
        np.savez(stream, cube=array)
    np.testing.assert_array_equal(read_cube(path).data, array)


def test_dataset_for_a_single_image_format(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "cube.npy"
    np.save(path, array)
    with pytest.raises(InputError, match=r"cube\.npy holds a single image.*leave --dataset out"):
        read_cube(path, dataset="img")


def test_supported_suffixes_cover_every_family() -> None:
    for suffix in (".npy", ".npz", ".tif", ".h5", ".hspy", ".fits", ".hdr", ".mat", ".zarr"):
        assert suffix in SUPPORTED_SUFFIXES


def test_folder_named_like_a_file(tmp_path: Path) -> None:
    path = tmp_path / "cube.npy"
    path.mkdir()
    with pytest.raises(InputError, match=r"cube\.npy is a folder, not a \.npy file; give the path"):
        read_cube(path)
    assert not can_read(path)
