"""convert_cube: any readable cube -> a chunked zarr store read back lazily, calibrated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")

from napari_deepcube.core.cube import Datacube  # noqa: E402
from napari_deepcube.core.errors import InputError  # noqa: E402
from napari_deepcube.core.io import convert, convert_cube, read_cube, write_cube  # noqa: E402
from napari_deepcube.core.io.convert import chunk_shape  # noqa: E402


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".tif", ".zarr"])
def test_round_trip_keeps_values_and_calibration(tmp_path: Path, cube: Datacube, suffix: str) -> None:
    source = tmp_path / f"cube{suffix}"
    write_cube(source, cube)
    target = tmp_path / "out.zarr"
    result = convert_cube(source, target, chunk_pixels=14)
    assert result.path == target
    assert result.shape == cube.shape
    assert result.dtype == "uint16"
    assert result.chunks == (2, 7, cube.n_channels)  # 14 pixels: the full width 7, 2 rows
    back = read_cube(target, lazy=True)
    assert back.is_lazy
    np.testing.assert_array_equal(np.asarray(back.data), np.asarray(cube.data))
    if suffix != ".npy":  # a .npy holds the array alone, so channel indices
        np.testing.assert_allclose(back.spectral_values, cube.spectral_values)
        assert (back.spectral_unit, back.spectral_label) == ("keV", "Energy")
    assert zarr.open_array(str(target), mode="r").chunks == result.chunks
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_spectral_axis_and_dataset_are_applied(tmp_path: Path, array: np.ndarray) -> None:
    h5py = pytest.importorskip("h5py")
    source = tmp_path / "scan.h5"
    stored = np.moveaxis(array, -1, 0)  # (C, H, W)
    with h5py.File(source, "w") as handle:
        handle["a/cube"] = stored
        handle["b/other"] = stored + 1
    target = tmp_path / "scan.zarr"
    convert_cube(source, target, dataset="a/cube", spectral_axis=0)
    back = read_cube(target)
    np.testing.assert_array_equal(np.asarray(back.data), array)
    attributes = zarr.open_array(str(target), mode="r").attrs
    assert attributes["source_dataset"] == "a/cube"
    assert attributes["source_format"] == "hdf5"


def test_memory_is_bounded_by_one_band(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cube: Datacube
) -> None:
    """Bands of rows are read one at a time and their size follows BAND_BYTES."""
    source = tmp_path / "cube.npy"
    write_cube(source, cube)
    row_bytes = cube.shape[1] * cube.shape[2] * 2
    monkeypatch.setattr(convert, "BAND_BYTES", 2 * row_bytes)
    seen: list[tuple[int, int]] = []
    result = convert_cube(
        source, tmp_path / "out.zarr", progress=lambda done, total: seen.append((done, total))
    )
    assert result.chunks[0] == 2  # the chunk height shrinks to fit a band
    assert seen == [(2, 5), (4, 5), (5, 5)]


def test_chunk_shape_is_tiles_of_whole_spectra() -> None:
    assert chunk_shape((2000, 1000, 2048), 2) == (16, 64, 2048)
    assert chunk_shape((2000, 2000, 4096), 2) == (8, 64, 4096)  # 16 rows would pass BAND_BYTES
    assert chunk_shape((10, 30, 100), 4) == (10, 30, 100)
    # a very wide cube: a single row of chunks would exceed BAND_BYTES
    assert chunk_shape((100, 100_000, 4096), 2)[0] == 1


def test_existing_store_is_replaced_only_when_complete(tmp_path: Path, cube: Datacube) -> None:
    source = tmp_path / "cube.npy"
    write_cube(source, cube)
    target = tmp_path / "out.zarr"
    convert_cube(source, target)
    doubled = Datacube.from_array(np.asarray(cube.data) * 2)
    write_cube(source, doubled)
    convert_cube(source, target)
    np.testing.assert_array_equal(np.asarray(read_cube(target).data), np.asarray(doubled.data))


def test_a_failed_conversion_leaves_nothing(tmp_path: Path, cube: Datacube) -> None:
    source = tmp_path / "cube.npy"
    write_cube(source, cube)
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])  # truncated
    target = tmp_path / "out.zarr"
    with pytest.raises(InputError, match=r"cube\.npy"):
        convert_cube(source, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cube.npy"]


@pytest.mark.parametrize(
    ("name", "match"),
    [("out.h5", r"zarr store.*out\.zarr"), ("folder.zarr", "it is left alone")],
)
def test_bad_targets_are_refused(tmp_path: Path, cube: Datacube, name: str, match: str) -> None:
    source = tmp_path / "cube.npy"
    write_cube(source, cube)
    (tmp_path / "folder.zarr").mkdir()
    (tmp_path / "folder.zarr" / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match=match):
        convert_cube(source, tmp_path / name)
    assert (tmp_path / "folder.zarr" / "precious.txt").read_text() == "keep me"


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        convert_cube(tmp_path / "nothing.npy", tmp_path / "out.zarr")
