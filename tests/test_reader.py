"""The napari reader adapter: which files it takes, and the layer data it makes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from napari_deepcube import _reader
from napari_deepcube._layer_records import cube_record, is_maps, labels_record
from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.io import _lazy, write_cube


@pytest.fixture
def cube_array() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.poisson(3.0, size=(12, 10, 32)).astype(np.float32)


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    messages: list[str] = []
    monkeypatch.setattr(_reader, "_notify_error", messages.append)
    return messages


def test_npy_cube_opens_as_one_spectral_first_layer(tmp_path, cube_array):
    path = tmp_path / "scan.npy"
    np.save(path, cube_array)

    reader = _reader.get_reader(str(path))
    assert reader is not None
    ((data, kwargs, kind),) = reader(str(path))

    assert kind == "image"
    assert data.shape == (32, 12, 10)
    np.testing.assert_array_equal(data, np.moveaxis(cube_array, -1, 0))
    assert kwargs["name"] == "scan"
    record = cube_record(kwargs["metadata"], 32)
    assert record is not None and record.axis.unit == "channel"
    np.testing.assert_array_equal(record.axis.values, np.arange(32))
    assert record.source == str(path) and record.format == "npy"
    low, high = kwargs["contrast_limits"]
    assert 0 <= low < high <= cube_array.max()


def test_calibrated_tiff_stack_keeps_its_energy_axis(tmp_path, cube_array):
    energies = np.linspace(0.0, 20.0, 32)
    cube = Datacube.from_array(cube_array, spectral_values=energies, spectral_unit="keV",
                               spectral_label="Energy")
    path = tmp_path / "scan.tif"
    write_cube(path, cube)

    ((data, kwargs, _),) = _reader.get_reader(str(path))(str(path))

    np.testing.assert_array_equal(data, np.moveaxis(cube_array, -1, 0))
    record = cube_record(kwargs["metadata"], 32)
    assert record is not None
    np.testing.assert_allclose(record.axis.values, energies)
    assert record.axis.title == "Energy (keV)"
    assert kwargs["axis_labels"] == ("Energy", "y", "x")


@pytest.mark.parametrize(
    "image", [np.zeros((20, 30), np.uint16), np.zeros((20, 30, 3), np.uint8)], ids=["grey", "rgb"]
)
def test_plain_pictures_are_left_to_napari(tmp_path, image):
    path = tmp_path / "picture.tif"
    tifffile.imwrite(path, image, photometric="rgb" if image.ndim == 3 else "minisblack")
    assert _reader.get_reader(str(path)) is None


def test_unknown_and_missing_files_are_declined(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a cube")
    assert _reader.get_reader(str(text)) is None
    assert _reader.get_reader(str(tmp_path / "missing.npy")) is None


def test_lazy_cube_stays_lazy(tmp_path, cube_array, monkeypatch):
    monkeypatch.setattr(_lazy, "LAZY_THRESHOLD_BYTES", 0)
    path = tmp_path / "big.h5"
    with h5py.File(path, "w") as file:
        file["img"] = cube_array

    ((data, _, _),) = _reader.read_cubes(str(path))

    assert not isinstance(data, np.ndarray)  # a dask array, read on demand
    assert data.shape == (32, 12, 10)
    np.testing.assert_array_equal(np.asarray(data[5]), cube_array[..., 5])


def test_a_container_with_several_cubes_gives_one_layer_each(tmp_path, cube_array):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as file:
        file["first"] = cube_array
        file["second"] = cube_array[:, :, :16]
        file["axis"] = np.arange(3)

    layers = _reader.read_cubes(str(path))

    assert [kwargs["name"] for _, kwargs, _ in layers] == ["two [first]", "two [second]"]
    assert [data.shape[0] for data, _, _ in layers] == [32, 16]


def test_a_damaged_file_is_a_message_not_a_traceback(tmp_path, shown, cube_array):
    path = tmp_path / "cut.npy"
    np.save(path, cube_array)
    path.write_bytes(path.read_bytes()[:400])

    assert _reader.read_cubes(str(path)) == [(None,)]
    assert len(shown) == 1 and "cut.npy" in shown[0]


def test_contrast_limits_come_from_percentiles_of_a_sample():
    values = np.resize(np.arange(1, 1001, dtype=np.float32), 64 * 64 * 10)
    cube = Datacube.from_array(values.reshape(64, 64, 10))
    low, high = _reader.contrast_limits(cube)
    assert 1.0 <= low < 20.0
    assert 980.0 < high <= 1000.0


def test_a_damaged_envi_header_is_taken_and_explained(tmp_path, shown, cube_array):
    # can_read is False for it, but napari must show why rather than "no reader found".
    header = tmp_path / "scene.hdr"
    header.write_text("ENVI\nsamples = 10\nlines = 12\nbands = -32\ndata type = 4\ninterleave = bip\n")
    (tmp_path / "scene.img").write_bytes(cube_array.tobytes())

    reader = _reader.get_reader(str(header))

    assert reader is not None
    assert reader(str(header)) == [(None,)]
    assert len(shown) == 1 and "scene.hdr" in shown[0] and "bands = -32" in shown[0]


def test_a_corrupted_zarr_chunk_is_a_message(tmp_path, shown, cube_array):
    zarr = pytest.importorskip("zarr")
    path = tmp_path / "scan.zarr"
    store = zarr.create_array(str(path), shape=cube_array.shape, chunks=(4, 10, 32), dtype="f4")
    store[...] = cube_array
    (path / "c" / "1" / "0" / "0").write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 8)

    reader = _reader.get_reader(str(path))

    assert reader is not None
    assert reader(str(path)) == [(None,)]
    assert len(shown) == 1 and "scan.zarr could not be read as a zarr store" in shown[0]


def test_folders_and_other_formats_are_still_declined(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    analyze = tmp_path / "brain.hdr"  # Analyze 7.5 pairs a binary .hdr with an .img
    analyze.write_bytes(b"\x5c\x01\x00\x00" + bytes(344))
    (tmp_path / "brain.img").write_bytes(bytes(64))

    assert _reader.get_reader(str(folder)) is None
    assert _reader.get_reader(str(analyze)) is None


def test_muse_fits_opens_its_data_cube_only(tmp_path, shown, cube_array):
    # STAT and DQ qualify the DATA cube; an all-zero DQ is no image, and made the file fail.
    fits = pytest.importorskip("astropy.io.fits")
    path = tmp_path / "muse.fits"
    data = np.moveaxis(cube_array, -1, 0)
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(data, name="DATA"),
            fits.ImageHDU(np.ones_like(data), name="STAT"),
            fits.ImageHDU(np.zeros(data.shape, np.int32), name="DQ"),
        ]
    ).writeto(path)

    ((layer, kwargs, _),) = _reader.get_reader(str(path))(str(path))

    assert not shown
    assert kwargs["name"] == "muse" and kwargs["metadata"]["file"]["hdu"] == "DATA"
    np.testing.assert_array_equal(layer, data)


def test_an_unreadable_array_does_not_hide_the_others(tmp_path, shown, cube_array):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as file:
        file["good"] = cube_array
        file["blank"] = np.zeros_like(cube_array)

    layers = _reader.read_cubes(str(path))

    assert [kwargs["name"] for _, kwargs, _ in layers] == ["two [good]"]
    assert len(shown) == 1 and "every pixel is empty" in shown[0]


def test_an_npz_cube_opens_with_its_label_map_and_abundances_hidden_below(tmp_path, cube_array):
    path = tmp_path / "scene.npz"
    rng = np.random.default_rng(1)
    labels = rng.integers(1, 4, size=(12, 10)).astype(np.uint8)
    abundances = rng.random((12, 10, 3)).astype(np.float32)
    electron_image = rng.integers(0, 4000, size=(12, 10)).astype(np.uint16)
    np.savez(
        path, cube=cube_array, labels=labels, abundances=abundances, image0=electron_image,
        class_names=np.array(["tree", "water", "dirt"]), endmembers=np.ones((3, 32)),
    )

    layers = _reader.read_cubes(str(path))

    (truth, truth_kwargs, truth_kind), (maps, maps_kwargs, maps_kind), (cube, cube_kwargs, _) = layers
    assert truth_kind == "labels" and not truth_kwargs["visible"]
    np.testing.assert_array_equal(truth, labels)
    assert labels_record(truth_kwargs["metadata"]).class_names == ("tree", "water", "dirt")
    assert maps_kind == "image" and not maps_kwargs["visible"] and maps.shape == (3, 12, 10)
    assert is_maps(maps_kwargs["metadata"]) and cube_record(maps_kwargs["metadata"], 3) is None
    assert cube.shape == (32, 12, 10) and cube_kwargs["name"] == "scene"
