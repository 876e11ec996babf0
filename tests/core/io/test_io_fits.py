"""FITS cubes laid out as VLT/MUSE writes them: (λ, y, x) with DATA, STAT and DQ."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

fits = pytest.importorskip("astropy.io.fits")
wcs = pytest.importorskip("astropy.wcs")

from napari_deepcube.core.errors import InputError  # noqa: E402
from napari_deepcube.core.io import (  # noqa: E402
    can_read,
    default_dataset,
    list_datasets,
    read_cube,
    write_cube,
)


def _muse_header() -> object:
    axes = wcs.WCS(naxis=3)
    axes.wcs.ctype = ["RA---TAN", "DEC--TAN", "AWAV"]
    axes.wcs.cunit = ["deg", "deg", "Angstrom"]
    axes.wcs.crval = [150.0, 2.0, 4750.0]
    axes.wcs.cdelt = [-5.6e-5, 5.6e-5, 1.25]
    axes.wcs.crpix = [1.0, 1.0, 3.0]
    return axes.to_header()  # astropy writes the wavelength in metres


def _muse(path: Path, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A MUSE-like file: empty primary, then DATA, STAT and DQ (λ, y, x)."""
    data = np.moveaxis(array, -1, 0).astype(np.float32)
    dq = np.zeros(data.shape, np.int32)
    dq[4, 2, 3] = 1  # one bad voxel at λ index 4, y 2, x 3
    header = _muse_header()
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(data, header=header, name="DATA"),
            fits.ImageHDU(np.ones_like(data), header=header, name="STAT"),
            fits.ImageHDU(dq, header=header, name="DQ"),
        ]
    ).writeto(path)
    return data, dq


def test_muse_cube_wavelength_and_dq(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "muse.fits"
    _muse(path, array)
    cube = read_cube(path)
    assert cube.shape == (5, 7, 11)
    expected = array.astype(np.float32)
    expected[2, 3, 4] = np.nan
    np.testing.assert_array_equal(cube.data, expected)
    np.testing.assert_allclose(cube.spectral_values, 4750.0 + 1.25 * (np.arange(11) - 2))
    assert (cube.spectral_unit, cube.spectral_label) == ("Å", "Wavelength")
    assert cube.metadata["hdu"] == "DATA" and cube.metadata["dq_masked"]
    # One flagged voxel of 11 is read as zero; the pixel stays (see Datacube.mask).
    assert cube.mask.all() and cube.metadata["n_partly_nonfinite_pixels"] == 1
    assert [d.name for d in list_datasets(path)] == ["DATA", "STAT", "DQ"]
    assert can_read(path)


def test_the_science_cube_stands_for_the_file(tmp_path: Path, array: np.ndarray) -> None:
    # DATA among DATA, STAT and DQ; a 3-D primary HDU before any extension; and for
    # formats whose arrays are each a cube of their own, none.
    muse = tmp_path / "muse.fits"
    _muse(muse, array)
    assert default_dataset(muse, list_datasets(muse)) == "DATA"
    primary = tmp_path / "primary.fits"
    cube = np.moveaxis(array, -1, 0).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(cube), fits.ImageHDU(cube, name="DATA")]).writeto(primary)
    assert default_dataset(primary, list_datasets(primary)) == "PRIMARY"
    stack = tmp_path / "stack.zarr"
    write_cube(stack, read_cube(muse))
    assert default_dataset(stack, list_datasets(stack)) is None


def test_lazy_fits_matches_eager(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "muse.fits"
    _muse(path, array)
    lazy, eager = read_cube(path, lazy=True), read_cube(path)
    assert lazy.is_lazy and not eager.is_lazy
    np.testing.assert_array_equal(np.asarray(lazy.data), eager.data)
    np.testing.assert_array_equal(lazy.spectral_values, eager.spectral_values)


def test_other_hdu_by_name(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "muse.fits"
    _muse(path, array)
    stat = read_cube(path, dataset="stat")
    assert stat.metadata["hdu"] == "STAT"
    assert np.isnan(stat.data[2, 3, 4])
    with pytest.raises(InputError, match=r"muse\.fits has no dataset 'ERR'.*DATA.*STAT.*DQ"):
        read_cube(path, dataset="ERR")


def test_primary_cube_with_cd_matrix_in_nm(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "primary.fits"
    header = fits.Header()
    header.update(CTYPE3="WAVE", CUNIT3="nm", CRVAL3=500.0, CD3_3=0.5, CRPIX3=1.0)
    fits.PrimaryHDU(np.moveaxis(array, -1, 0).astype(np.int16), header=header).writeto(path)
    cube = read_cube(path)
    np.testing.assert_array_equal(cube.data, array)
    np.testing.assert_allclose(cube.spectral_values, 10 * (500.0 + 0.5 * np.arange(11)))
    assert cube.metadata["wcs"]["CD3_3"] == 0.5


def test_logarithmic_wavelength_axis(tmp_path: Path, array: np.ndarray) -> None:
    """WAVE-LOG (constant velocity steps, as many spectrographs resample): λ = CRVAL exp(CDELT p / CRVAL)."""
    path = tmp_path / "log.fits"
    header = fits.Header()
    header.update(CTYPE3="WAVE-LOG", CUNIT3="Angstrom", CRVAL3=4750.0, CDELT3=4750.0 * 1e-3, CRPIX3=1.0)
    fits.PrimaryHDU(np.moveaxis(array, -1, 0).astype(np.float32), header=header).writeto(path)
    cube = read_cube(path)
    np.testing.assert_allclose(cube.spectral_values, 4750.0 * np.exp(1e-3 * np.arange(11)), rtol=1e-9)
    assert (cube.spectral_unit, cube.spectral_label) == ("Å", "Wavelength")


def test_tabular_wavelength_axis(tmp_path: Path, array: np.ndarray) -> None:
    """WAVE-TAB: the wavelength of each channel listed in a binary-table extension (PS3_0, PS3_1)."""
    path = tmp_path / "tab.fits"
    wavelengths = 4750.0 + np.cumsum(np.arange(11.0))  # steps growing by 1 Å: no formula but the table
    column = fits.Column(name="WAVELENGTH", format="11D", dim="(1,11)", array=wavelengths.reshape(1, 11, 1))
    table = fits.BinTableHDU.from_columns([column], name="WCS-TAB")
    header = fits.Header()
    header.update(CTYPE3="WAVE-TAB", CUNIT3="Angstrom", CRVAL3=1.0, CDELT3=1.0, CRPIX3=1.0)
    header.update(PS3_0="WCS-TAB", PS3_1="WAVELENGTH")
    image = fits.PrimaryHDU(np.moveaxis(array, -1, 0).astype(np.float32), header=header)
    fits.HDUList([image, table]).writeto(path)
    cube = read_cube(path)
    np.testing.assert_allclose(cube.spectral_values, wavelengths)
    assert cube.spectral_unit == "Å"


def test_wavelength_in_metres_and_wavenumbers(tmp_path: Path, array: np.ndarray) -> None:
    metres = tmp_path / "metres.fits"
    header = fits.Header()
    header.update(CTYPE3="WAVE", CUNIT3="m", CRVAL3=5e-7, CDELT3=1e-10, CRPIX3=1.0)
    fits.PrimaryHDU(np.moveaxis(array, -1, 0).astype(np.float32), header=header).writeto(metres)
    np.testing.assert_allclose(read_cube(metres).spectral_values, 5000.0 + np.arange(11))
    raman = tmp_path / "raman.fits"
    header = fits.Header()
    header.update(CTYPE3="WAVN", CUNIT3="1/cm", CRVAL3=100.0, CDELT3=2.0, CRPIX3=1.0)
    fits.PrimaryHDU(np.moveaxis(array, -1, 0).astype(np.float32), header=header).writeto(raman)
    cube = read_cube(raman)
    np.testing.assert_allclose(cube.spectral_values, 100.0 + 2.0 * np.arange(11))
    assert (cube.spectral_unit, cube.spectral_label) == ("cm-1", "Wavenumber")


def test_without_wcs_gives_channels(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "plain.fits"
    fits.PrimaryHDU(np.moveaxis(array, -1, 0).astype(np.int32)).writeto(path)
    assert read_cube(path).spectral_unit == "channel"


def test_two_dimensional_image(tmp_path: Path) -> None:
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.ones((6, 8), np.float32)).writeto(path)
    with pytest.raises(InputError, match=r"image\.fits holds no 3-D.*PRIMARY \(6, 8\) float32"):
        read_cube(path)
    assert not can_read(path)


def test_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "broken.fits"
    path.write_bytes(b"SIMPLE  =                    T".ljust(80) + b"BITPIX = what" * 300)
    with pytest.raises(InputError, match=r"broken\.fits"):
        read_cube(path)
    assert not can_read(path)


def _replace_card(path: Path, keyword: str, card: str) -> None:
    """Overwrite the 80-character card of ``keyword`` in the DATA extension's header."""
    content = path.read_bytes()
    start = content.index(b"EXTNAME = 'DATA")
    start = start - start % 2880  # the header block holding it
    at = content.index(keyword.ljust(8).encode() + b"=", start)
    path.write_bytes(content[:at] + card.ljust(80).encode() + content[at + 80 :])


def test_bitpix_that_is_no_data_type(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "muse.fits"
    _muse(path, array)
    _replace_card(path, "BITPIX", "BITPIX  =                   17")
    assert not can_read(path)
    with pytest.raises(InputError, match=r"muse\.fits: in HDU DATA, BITPIX is 17, which is not a FITS data"):
        read_cube(path)


def test_missing_axis_length(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "muse.fits"
    _muse(path, array)
    _replace_card(path, "NAXIS3", "COMMENT lost")
    with pytest.raises(InputError, match=r"muse\.fits: the header keyword NAXIS3 is missing: the header is"):
        read_cube(path)


def test_wcs_value_that_is_not_a_number(tmp_path: Path, array: np.ndarray) -> None:
    path = tmp_path / "wcs.fits"
    header = fits.Header()
    header.update(CTYPE3="WAVE", CUNIT3="nm", CRVAL3=500.0, CDELT3="wide")
    fits.PrimaryHDU(np.moveaxis(array, -1, 0).astype(np.int16), header=header).writeto(path)
    with pytest.raises(InputError, match=r"wcs\.fits: in HDU PRIMARY, the keyword CDELT3 is 'wide', not a"):
        read_cube(path)


def test_damaged_first_header_leaves_no_file_open(tmp_path: Path, array: np.ndarray) -> None:
    # astropy left its file open when the primary header failed to parse (a ResourceWarning).
    path = tmp_path / "muse.fits"
    _muse(path, array)
    content = path.read_bytes()
    at = content.index(b"NAXIS   =")
    path.write_bytes(content[:at] + b"NAXIS   = 'two'".ljust(80) + content[at + 80 :])
    with pytest.raises(InputError, match=r"muse\.fits: a header keyword has a value of the wrong type"):
        read_cube(path)
    assert not can_read(path)
    gc.collect()  # an unclosed file warns when collected, which pytest makes an error
