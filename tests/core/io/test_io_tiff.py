"""TIFF stacks (C, H, W), and the 2-D pictures napari should keep for itself."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import can_read, read_cube
from napari_deepcube.core.io._mapped import MappedArray


def test_stack_from_other_software_is_channels_first(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.moveaxis(array, -1, 0), imagej=True, metadata={"axes": "ZYX"})
    cube = read_cube(path)
    np.testing.assert_array_equal(cube.data, array)
    assert cube.spectral_unit == "channel"
    assert can_read(path)


def test_many_sample_page_is_height_width_channels(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "samples.tif"
    tifffile.imwrite(path, array, photometric="minisblack", planarconfig="contig")
    np.testing.assert_array_equal(read_cube(path).data, array)


def test_lazy_tiff_is_mapped(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.moveaxis(array, -1, 0), photometric="minisblack")
    lazy = read_cube(path, lazy=True)
    assert isinstance(lazy.data, MappedArray)
    np.testing.assert_array_equal(np.asarray(lazy.data), array)


def test_compressed_tiff_cannot_be_forced_lazy(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "packed.tif"
    tifffile.imwrite(path, np.moveaxis(array, -1, 0), photometric="minisblack", compression="zlib")
    np.testing.assert_array_equal(read_cube(path).data, array)
    with pytest.raises(InputError, match=r"packed\.tif cannot be read lazily.*compressed"):
        read_cube(path, lazy=True)


@pytest.mark.parametrize(
    ("image", "options"),
    [
        (np.zeros((6, 8), np.uint16), {}),
        (np.zeros((6, 8, 3), np.uint8), {"photometric": "rgb"}),
    ],
)
def test_plain_pictures_are_left_to_napari(
    tmp_path: Path, image: np.ndarray, options: dict[str, str]
) -> None:
    path = tmp_path / "picture.tif"
    tifffile.imwrite(path, image, **options)
    assert not can_read(path)
    with pytest.raises(InputError, match=r"picture\.tif"):
        read_cube(path)


def test_rgb_message_says_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "photo.tif"
    tifffile.imwrite(path, np.zeros((6, 8, 3), np.uint8), photometric="rgb")
    with pytest.raises(InputError, match=r"photo\.tif is a colour \(RGB\) picture"):
        read_cube(path)


def test_garbage_after_the_signature(tmp_path: Path) -> None:
    path = tmp_path / "garbage.tif"
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match=r"garbage\.tif"):
        read_cube(path)
    assert not can_read(path)


def test_truncated_stack(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, np.moveaxis(array, -1, 0), photometric="minisblack")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(InputError, match=r"cut\.tif is damaged or truncated"):
        read_cube(path)


def _retag(
    path: Path, page: int, code: int, *, value: int | None = None, new_code: int | None = None
) -> None:
    """Overwrite the (short) value of tag ``code`` of ``page``, or the tag's code itself."""
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[page].tags[code]
        where, number = (tag.valueoffset, value) if value is not None else (tag.offset, new_code)
    content = bytearray(path.read_bytes())
    content[where : where + 2] = struct.pack("<H", number)
    path.write_bytes(bytes(content))


def test_zero_width_in_a_shaped_stack(tmp_path: Path, array: np.ndarray) -> None:
    # tifffile divides the series' size by the first page's: ZeroDivisionError.
    path = tmp_path / "zero.tif"
    tifffile.imwrite(path, np.moveaxis(array, -1, 0), photometric="minisblack")
    _retag(path, 0, 256, value=0)
    assert not can_read(path)
    with pytest.raises(InputError, match=r"zero\.tif could not be read as a TIFF file \(integer division"):
        read_cube(path)


def test_first_page_without_strip_offsets(tmp_path: Path, array: np.ndarray) -> None:
    # The later pages no longer match the first: tifffile's "incompatible keyframe" RuntimeError.
    path = tmp_path / "keyframe.tif"
    tifffile.imwrite(path, np.moveaxis(array, -1, 0), photometric="minisblack")
    _retag(path, 0, 273, new_code=65000)
    assert not can_read(path)
    with pytest.raises(InputError, match=r"keyframe\.tif could not be read as a TIFF file \(incompatible"):
        read_cube(path)


def test_image_of_no_pixels_is_damaged(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "empty.tif"
    tifffile.imwrite(path, np.moveaxis(array, -1, 0), photometric="minisblack", metadata=None)
    _retag(path, 0, 256, value=0)
    _retag(path, 0, 257, value=0)
    with pytest.raises(InputError, match=r"empty\.tif is damaged or truncated \(its first image has shape"):
        read_cube(path)
