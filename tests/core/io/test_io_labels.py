"""Label-map TIFFs: exact round trip, palette, metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import read_labels_tiff, write_labels_tiff


def _labels(top: int) -> np.ndarray:
    labels = np.arange(6 * 9).reshape(6, 9) % (top + 1)
    labels[0, 0] = top
    return labels


@pytest.mark.parametrize(("top", "dtype"), [(5, np.uint8), (255, np.uint8), (300, np.uint16)])
def test_round_trip_is_exact(tmp_path: Path, top: int, dtype: type) -> None:
    path = tmp_path / "labels.tif"
    labels = _labels(top)
    meta = {"k": top, "class_names": [f"c{i}" for i in range(top)], "spectral_unit": "keV"}
    write_labels_tiff(path, labels, metadata=meta)
    back, metadata = read_labels_tiff(path)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, labels)
    assert {k: metadata[k] for k in meta} == meta
    assert metadata["software"].startswith("napari-deepcube ")


def test_uint8_palette_from_napari_colours(tmp_path: Path) -> None:
    path = tmp_path / "labels.tif"
    colours = np.array([[0, 0, 0, 0], [1, 0, 0, 1], [0, 0.5, 1, 1]], dtype=np.float32)
    write_labels_tiff(path, _labels(2), colors=colours, metadata={"k": 2})
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.photometric == tifffile.PHOTOMETRIC.PALETTE
        palette = page.colormap
    assert palette.shape == (3, 256) and palette.dtype == np.uint16
    np.testing.assert_array_equal(palette[:, 1], [65535, 0, 0])
    np.testing.assert_array_equal(palette[:, 2], [0, 128 * 257, 65535])
    back, metadata = read_labels_tiff(path)
    np.testing.assert_array_equal(back, _labels(2))
    np.testing.assert_array_equal(metadata["colors"], [[0, 0, 0], [255, 0, 0], [0, 128, 255]])


def test_uint16_keeps_its_colours_in_the_metadata(tmp_path: Path) -> None:
    path = tmp_path / "labels.tif"
    colours = np.zeros((301, 3), np.uint8)
    colours[300] = (1, 2, 3)
    write_labels_tiff(path, _labels(300), colors=colours)
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].photometric == tifffile.PHOTOMETRIC.MINISBLACK
    _, metadata = read_labels_tiff(path)
    np.testing.assert_array_equal(metadata["colors"][300], [1, 2, 3])


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros((2, 3, 4), np.uint8), "2-D integer"),
        (np.zeros((2, 3), np.float32), "2-D integer"),
        (np.full((2, 3), -1), "negative"),
        (np.full((2, 3), 70000), "16 bits"),
    ],
)
def test_bad_label_maps(tmp_path: Path, labels: np.ndarray, message: str) -> None:
    path = tmp_path / "labels.tif"
    with pytest.raises(InputError, match=rf"cannot write labels\.tif: .*{message}"):
        write_labels_tiff(path, labels)
    assert not path.exists()


def test_colours_of_the_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot write labels\.tif: colours must have shape"):
        write_labels_tiff(tmp_path / "labels.tif", _labels(2), colors=np.zeros((3, 2)))


def test_reading_a_stack_or_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_labels_tiff(tmp_path / "absent.tif")
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((3, 4, 5), np.uint8), photometric="minisblack")
    with pytest.raises(InputError, match=r"stack\.tif holds an image of shape \(3, 4, 5\)"):
        read_labels_tiff(path)
