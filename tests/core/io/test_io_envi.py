"""ENVI header + raw files, written by hand in each interleave."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import can_read, list_datasets, read_cube
from napari_deepcube.core.io._mapped import MappedArray

#: The order each interleave stores an (H, W, C) = (lines, samples, bands) cube in.
_ORDER = {"bsq": (2, 0, 1), "bil": (0, 2, 1), "bip": (0, 1, 2)}


def _envi(
    folder: Path,
    array: np.ndarray,
    interleave: str,
    *,
    raw_suffix: str = ".img",
    dtype: str = "<u2",
    code: int = 12,
    byte_order: int = 0,
    offset: int = 0,
    extra: str = "",
) -> Path:
    lines, samples, bands = array.shape
    header = folder / "scene.hdr"
    header.write_text(
        "ENVI\n"
        "description = {hand-written\n  test scene}\n"
        f"samples = {samples}\nlines   = {lines}\nbands   = {bands}\n"
        f"header offset = {offset}\nfile type = ENVI Standard\n"
        f"data type = {code}\ninterleave = {interleave}\nbyte order = {byte_order}\n" + extra
    )
    stored = np.transpose(array, _ORDER[interleave]).astype(dtype)
    (folder / f"scene{raw_suffix}").write_bytes(b"\0" * offset + stored.tobytes())
    return header


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("lazy", [False, True])
def test_each_interleave(tmp_path: Path, array: np.ndarray, interleave: str, lazy: bool) -> None:
    header = _envi(tmp_path, array, interleave)
    cube = read_cube(header, lazy=lazy)
    np.testing.assert_array_equal(np.asarray(cube.data), array)
    assert isinstance(cube.data, MappedArray) is lazy
    assert cube.metadata["interleave"] == interleave
    assert can_read(header)


def test_wavelengths_big_endian_offset_and_the_raw_file_as_input(tmp_path: Path, array: np.ndarray) -> None:
    wavelengths = ", ".join(f"{400 + 10 * i:.1f}" for i in range(11))
    header = _envi(
        tmp_path,
        array.astype(np.float32) / 7,
        "bil",
        raw_suffix="",
        dtype=">f4",
        code=4,
        byte_order=1,
        offset=64,
        extra=f"wavelength units = Nanometers\nwavelength = {{\n {wavelengths}}}\n",
    )
    cube = read_cube(tmp_path / "scene")  # the raw file, found by its header beside it
    np.testing.assert_array_equal(cube.data, array.astype(np.float32) / 7)
    assert cube.data.dtype.isnative
    np.testing.assert_allclose(cube.spectral_values, 400 + 10 * np.arange(11))
    assert (cube.spectral_unit, cube.spectral_label) == ("nm", "Wavelength")
    assert list_datasets(header) == [("", (5, 11, 7), "float32")]


def test_raw_file_too_short(tmp_path: Path, array: np.ndarray) -> None:
    header = _envi(tmp_path, array, "bsq")
    raw = tmp_path / "scene.img"
    raw.write_bytes(raw.read_bytes()[:100])
    with pytest.raises(InputError, match=r"scene\.img holds 100 bytes but scene\.hdr describes 770"):
        read_cube(header)


def test_missing_raw_file(tmp_path: Path, array: np.ndarray) -> None:
    header = _envi(tmp_path, array, "bsq")
    (tmp_path / "scene.img").unlink()
    with pytest.raises(InputError, match=r"scene\.hdr: the raw data file .* was not found"):
        read_cube(header)


def test_raw_file_without_header(tmp_path: Path) -> None:
    raw = tmp_path / "orphan.raw"
    raw.write_bytes(b"\0" * 64)
    with pytest.raises(InputError, match=r"orphan\.raw has no ENVI header"):
        read_cube(raw)
    assert not can_read(raw)


def test_complex_data_type(tmp_path: Path, array: np.ndarray) -> None:
    header = _envi(tmp_path, array, "bsq", code=6)
    with pytest.raises(InputError, match=r"scene\.hdr: ENVI data type 6 is not supported"):
        read_cube(header)


def test_header_that_is_not_envi(tmp_path: Path) -> None:
    header = tmp_path / "notes.hdr"
    header.write_text("samples = 3\n")
    with pytest.raises(InputError, match=r"notes\.hdr is not an ENVI header"):
        read_cube(header)


def test_header_missing_a_size(tmp_path: Path) -> None:
    header = tmp_path / "partial.hdr"
    header.write_text("ENVI\nsamples = 3\nlines = 2\ndata type = 4\n")
    with pytest.raises(InputError, match=r"partial\.hdr: the header field 'bands' is missing"):
        read_cube(header)


@pytest.mark.parametrize("interleave", ["bsq", "bil", "bip"])
@pytest.mark.parametrize("lazy", [False, True])
def test_bad_bands_and_the_ignore_value_are_applied(
    tmp_path: Path, array: np.ndarray, interleave: str, lazy: bool
) -> None:
    """bbl drops bands 3 and 7; the no-data value 9999 fills row 0 (left out) and one voxel (read as 0)."""
    stored = array.copy()
    stored[0] = 9999
    stored[2, 3, 5] = 9999
    good = np.ones(11, dtype=int)
    good[[3, 7]] = 0
    wavelengths = ", ".join(f"{400 + 10 * i}" for i in range(11))
    extra = (
        f"data ignore value = 9999\nbbl = {{{', '.join(map(str, good))}}}\n"
        f"wavelength units = nm\nwavelength = {{{wavelengths}}}\n"
    )
    cube = read_cube(_envi(tmp_path, stored, interleave, extra=extra), lazy=lazy)
    kept = np.flatnonzero(good)
    assert cube.shape == (5, 7, 9) and cube.is_lazy is lazy
    np.testing.assert_allclose(cube.spectral_values, 400 + 10 * kept)
    data = np.asarray(cube.data)
    assert np.isnan(data[0]).all() and not cube.mask[0].any() and cube.mask[1:].all()
    assert np.isnan(data[2, 3, np.flatnonzero(kept == 5)[0]])
    expected = stored[1:][..., kept].astype(float)
    expected[expected == 9999] = np.nan
    np.testing.assert_array_equal(data[1:], expected)
    assert cube.metadata["bad_bands_dropped"] == [3, 7]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("bbl = {1, 0}\n", r"the bad band list \(bbl\) has 2 entries for 11 bands"),
        ("bbl = {" + ", ".join(["0"] * 11) + "}\n", r"the bad band list \(bbl\) marks every band bad"),
        ("bbl = {1, x}\n", r"the bad band list \(bbl\) holds something that is not a number"),
        ("data ignore value = none\n", r"the data ignore value 'none' is not a number"),
    ],
)
def test_bad_band_lists_and_ignore_values_that_make_no_sense(
    tmp_path: Path, array: np.ndarray, extra: str, message: str
) -> None:
    header = _envi(tmp_path, array, "bip", extra=extra)
    with pytest.raises(InputError, match=rf"scene\.hdr: {message}"):
        read_cube(header)


def _set_field(header: Path, field: str, value: object) -> None:
    header.write_text(re.sub(rf"^{field}\s*=.*$", f"{field} = {value}", header.read_text(), flags=re.M))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bands", -11, r"bands = -11, but .* must be at least 1"),
        ("samples", 0, r"samples = 0, but .* must be at least 1"),
        ("lines", -5, r"lines = -5, but .* must be at least 1"),
        ("header offset", -100, r"header offset = -100, but .* cannot be negative"),
        ("byte order", 2, r"byte order = 2, but it must be 0 \(little-endian\) or 1 \(big-endian\)"),
    ],
)
def test_impossible_header_values(
    tmp_path: Path, array: np.ndarray, field: str, value: int, message: str
) -> None:
    header = _envi(tmp_path, array, "bip")
    _set_field(header, field, value)
    for lazy in (False, True):
        with pytest.raises(InputError, match=rf"scene\.hdr: the header gives {message}; fix the header"):
            read_cube(header, lazy=lazy)
    assert not can_read(header)


def test_sizes_whose_product_overflows_numpy_are_a_short_raw_file(tmp_path: Path, array: np.ndarray) -> None:
    # 5 x 7 x 2**62 values wrap around in int64 to a negative byte count, which passed the
    # size check and reached np.memmap.
    header = _envi(tmp_path, array, "bip")
    _set_field(header, "bands", 2**62)
    with pytest.raises(InputError, match=r"scene\.img holds 770 bytes but scene\.hdr describes \d{20}"):
        read_cube(header)
