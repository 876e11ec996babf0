"""Zarr stores, format v2 and v3, arrays and groups."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from napari_deepcube.core.cube import Datacube  # noqa: E402
from napari_deepcube.core.errors import InputError  # noqa: E402
from napari_deepcube.core.io import _lazy, can_read, list_datasets, read_cube, write_cube  # noqa: E402


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


def _chunked(path: Path, array: np.ndarray, zarr_format: int) -> list[Path]:
    """A store of three chunks of two rows (the last one short); the chunk files."""
    store = zarr.create_array(
        str(path), shape=array.shape, chunks=(2, 7, 11), dtype=array.dtype, zarr_format=zarr_format
    )
    store[...] = array
    metadata = {"zarr.json", ".zarray", ".zattrs", ".zgroup"}
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name not in metadata)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("lazy", [False, True])
def test_corrupted_chunk(tmp_path: Path, array: np.ndarray, zarr_format: int, lazy: bool) -> None:
    path = tmp_path / "cube.zarr"
    chunk = _chunked(path, array, zarr_format)[1]
    chunk.write_bytes(b"\x28\xb5\x2f\xfd" + b"not zstd data" * 4)  # zstd's magic, then garbage
    with pytest.raises(InputError, match=r"cube\.zarr could not be read as a zarr store \(.*; check that"):
        read_cube(path, lazy=lazy)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_missing_chunk_is_refused_not_read_as_zeros(
    tmp_path: Path, array: np.ndarray, zarr_format: int
) -> None:
    path = tmp_path / "cube.zarr"
    _chunked(path, array, zarr_format)[1].unlink()
    for lazy in (False, True):
        with pytest.raises(InputError, match=r"cube\.zarr: 1 of the 3 chunks of the array are missing"):
            read_cube(path, lazy=lazy)


def test_written_store_keeps_its_all_zero_chunks(
    tmp_path: Path, array: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two rows a chunk; the first two rows all zero (left out of the mask, not of the store).
    monkeypatch.setattr(_lazy, "LAZY_CHUNK_BYTES", 2 * array[0].nbytes)
    array = array.copy()
    array[:2] = 0
    path = tmp_path / "zeros.zarr"
    write_cube(path, Datacube.from_array(array))
    assert zarr.open_array(str(path), mode="r").nchunks_initialized == 3
    np.testing.assert_array_equal(read_cube(path).data, array)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        # zarr's own parser raised KeyError and TypeError for these.
        (lambda meta: meta.pop("dtype"), r"could not be read as a zarr store \('dtype'\)"),
        (lambda meta: meta["shape"].__setitem__(1, "wide"), r"could not be read as a zarr store \(Expected"),
        (lambda meta: meta["chunks"].__setitem__(0, 0), r"gives chunks of shape \(0, 7, 11\), which hold no"),
    ],
    ids=["no dtype", "text shape", "empty chunks"],
)
def test_damaged_metadata(
    tmp_path: Path, array: np.ndarray, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    path = tmp_path / "cube.zarr"
    _chunked(path, array, zarr_format=2)
    metadata = json.loads((path / ".zarray").read_text())
    change(metadata)
    (path / ".zarray").write_text(json.dumps(metadata))
    with pytest.raises(InputError, match=rf"cube\.zarr.*{message}"):
        read_cube(path)
