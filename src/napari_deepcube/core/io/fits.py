"""FITS cubes as integral-field spectrographs (VLT/MUSE) write them: (λ, y, x).

The cube is the primary HDU when it holds 3-D data, else the extension named
DATA, else the first 3-D image extension; ``dataset=`` names another HDU (by
EXTNAME, or PRIMARY). The spectral coordinate comes from the WCS of the
spectral axis through astropy.wcs, whatever its algorithm (linear, ``-LOG``,
``-TAB``): wavelengths in Å, wavenumbers in cm-1, energies in keV. A DQ
extension of the same shape flags bad voxels: every voxel with DQ != 0
becomes NaN. A STAT (or VARIANCE) extension of the same shape holds the
variance of each voxel of the science cube: it travels with the cube
(:attr:`~..cube.Datacube.variance`, read lazily when the cube is), and the
flux features are whitened by it (:mod:`~..variance`). Needs astropy (the
``formats`` extra).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..cube import Datacube
from ..errors import InputError
from ..spectral import SpectralAxis
from ._build import build_cube, nan_where
from ._datasets import DatasetInfo, is_cube, no_companion_images, pick_dataset, resolve_axis
from ._errors import import_optional, reading
from ._lazy import lazy_rows, resolve_lazy

SUFFIXES = (".fits", ".fit", ".fts")
_WHAT = "a FITS file"
_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_FIX_HEADER = "correct it in the header (e.g. with astropy.io.fits.setval), or export the file again"
#: Extensions that hold the variance of each voxel of the science cube (VLT/MUSE: STAT).
VARIANCE_HDUS = ("STAT", "VARIANCE")


def _astropy(path: Path) -> tuple[ModuleType, type[Warning]]:
    """astropy.io.fits and its warning base class."""
    fits = import_optional(path, "astropy.io.fits", "astropy")
    exceptions = import_optional(path, "astropy.utils.exceptions", "astropy")
    return fits, exceptions.AstropyWarning


def _header_int(path: Path, name: str, header: Any, key: str) -> int:
    """The integer keyword ``key`` of HDU ``name``, which must be present and not negative."""
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problem = "is missing" if value is None else f"is {value!r}, not a count"
        raise InputError(
            f"{path.name}: in HDU {name}, the keyword {key} {problem}: the header is damaged; {_FIX_HEADER}"
        )
    return value


def _header_float(path: Path, name: str, header: Any, key: str, default: float) -> float:
    """The number under ``key`` in HDU ``name``'s header, or ``default`` when it is absent."""
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(
            f"{path.name}: in HDU {name}, the keyword {key} is {value!r}, not a number; {_FIX_HEADER}"
        )
    return float(value)


@contextmanager
def _parsing(path: Path, fits: ModuleType) -> Iterator[None]:
    """Turn astropy's errors while it parses headers into InputError naming the problem.

    astropy uses header values as it parses each HDU: a missing keyword raises
    KeyError, and a value of the wrong type (an axis length that is text)
    TypeError, from inside astropy.
    """
    try:
        with reading(path, _WHAT, extra=(fits.VerifyError,)):
            yield
    except KeyError as exc:
        raise InputError(
            f"{path.name}: the header keyword {exc.args[0]} is missing: the header is damaged; {_FIX_HEADER}"
        ) from exc
    except TypeError as exc:
        raise InputError(
            f"{path.name}: a header keyword has a value of the wrong type ({exc}): the header is "
            f"damaged; {_FIX_HEADER}"
        ) from exc


@contextmanager
def _opened(path: Path, fits: ModuleType) -> Iterator[Any]:
    """The open HDU list of ``path``, every HDU parsed (astropy parses each on first access).

    The file is opened here, not by astropy, because astropy leaves its own
    handle open when the first HDU of a damaged file fails to parse.
    """
    with reading(path, _WHAT):
        stream = open(path, "rb")
    with stream:
        with _parsing(path, fits):
            hdul = fits.open(stream, memmap=False)
        with hdul:
            with _parsing(path, fits):
                hdul.readall()
            yield hdul


def _images(path: Path, fits: ModuleType, hdul: Any) -> list[tuple[DatasetInfo, int]]:
    """Every image HDU with its index, named by EXTNAME (PRIMARY for the first)."""
    found = []
    for index, hdu in enumerate(hdul):
        header = hdu.header
        name = str(header.get("EXTNAME", "PRIMARY" if index == 0 else index)).strip().upper()
        if not hdu.is_image:
            continue
        if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
            raise InputError(
                f"{path.name}: HDU {name} says it is an image, but astropy cannot read it as one: "
                f"its header is damaged; {_FIX_HEADER}"
            )
        naxis = _header_int(path, name, header, "NAXIS")
        if naxis == 0:
            continue
        shape = tuple(_header_int(path, name, header, f"NAXIS{n}") for n in range(naxis, 0, -1))
        bitpix = header.get("BITPIX")
        if bitpix not in _BITPIX:
            raise InputError(
                f"{path.name}: in HDU {name}, BITPIX is {bitpix!r}, which is not a FITS data type "
                f"({', '.join(map(str, _BITPIX))}): the header is damaged; {_FIX_HEADER}"
            )
        dtype = np.dtype(_BITPIX[bitpix]).newbyteorder("=")
        found.append((DatasetInfo(name, shape, dtype.name), index))
    return found


companion_images = no_companion_images


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The 3-D image HDUs (DATA, STAT, DQ for a MUSE cube)."""
    fits, astropy_warning = _astropy(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", astropy_warning)
        with _opened(path, fits) as hdul, reading(path, _WHAT, extra=(fits.VerifyError,)):
            return [info for info, _ in _images(path, fits, hdul) if is_cube(info)]


def default_dataset(datasets: Sequence[DatasetInfo]) -> str | None:
    """The science cube, which stands for the file: the primary HDU if 3-D, else DATA, else the first.

    The other 3-D HDUs qualify it (a MUSE cube's STAT variances and DQ flags,
    often all zero and no image at all), so they are not cubes of their own.
    """
    cubes = [a for a in datasets if is_cube(a)]
    if not cubes:
        return None
    if cubes[0].name == "PRIMARY":
        return cubes[0].name
    return next((a.name for a in cubes if a.name == "DATA"), cubes[0].name)


def _choose(path: Path, images: list[DatasetInfo], dataset: str | None) -> DatasetInfo:
    """The user's HDU, else the science cube (:func:`default_dataset`)."""
    name = default_dataset(images) if dataset is None else dataset.upper()
    return pick_dataset(path, images, name)


#: FITS spectral coordinate types read, with the unit and label given to them.
_SPECTRAL_TYPES = {
    "WAVE": ("Å", "Wavelength"),
    "AWAV": ("Å", "Wavelength"),
    "WAVN": ("cm-1", "Wavenumber"),
    "ENER": ("keV", "Energy"),
}
#: astropy's spelling of our units.
_ASTROPY_UNITS = {"Å": "Angstrom", "cm-1": "1/cm", "keV": "keV"}


def _spectral(
    path: Path, name: str, hdul: Any, index: int, n: int, size: int
) -> tuple[SpectralAxis, dict[str, Any]] | None:
    """The spectral coordinate along FITS axis ``n`` of HDU ``index``, from its WCS through astropy.wcs.

    Every algorithm of the FITS standard: linear, ``-LOG``, ``-TAB`` (the
    coordinates in a table extension) and the rest, in Å for wavelengths.
    None where the axis is not a spectral one read here (a velocity, a
    frequency), so that the channels are numbered.
    """
    header = hdul[index].header
    ctype = str(header.get(f"CTYPE{n}", "")).strip().upper()
    if ctype[:4] not in _SPECTRAL_TYPES:
        return None
    unit, label = _SPECTRAL_TYPES[ctype[:4]]
    numeric = (f"CRVAL{n}", f"CRPIX{n}", f"CDELT{n}", f"CD{n}_{n}", f"PC{n}_{n}")
    for key in numeric:
        # astropy would drop a keyword that is no number with a warning, and calibrate without it.
        if key in header:
            _header_float(path, name, header, key, 0.0)
    wcs = import_optional(path, "astropy.wcs", "astropy")
    units = import_optional(path, "astropy.units", "astropy")
    try:
        # The whole HDU list goes along: a -TAB axis reads its coordinates from another HDU.
        axis = wcs.WCS(header, fobj=hdul).sub([n])
        values = np.asarray(axis.pixel_to_world_values(np.arange(size)), dtype=np.float64).ravel()
        stated = str(header.get(f"CUNIT{n}", "")).strip()
        if stated:
            # wcslib has turned the stated unit into SI (m, 1/m, J), except for tables.
            values = (values * units.Unit(axis.wcs.cunit[0])).to_value(
                _ASTROPY_UNITS[unit], equivalencies=units.spectral()
            )
        elif unit == "Å":
            # The standard's default is metres, but files that omit CUNIT usually mean Å:
            # a wavelength of light above a millimetre cannot be in metres.
            values = values * (1e10 if abs(values[0]) < 1e-3 else 1.0)
    except (ValueError, units.UnitsError, MemoryError) as exc:  # astropy's WcsError is a ValueError
        raise InputError(
            f"{path.name}: the spectral WCS of HDU {name} ({ctype}) cannot be evaluated ({exc}); "
            f"{_FIX_HEADER}"
        ) from exc
    if not np.all(np.isfinite(values)):
        raise InputError(
            f"{path.name}: the spectral WCS of HDU {name} ({ctype}) gives NaN or Inf coordinates; "
            f"{_FIX_HEADER}"
        )
    facts = {key: header[key] for key in (f"CTYPE{n}", f"CUNIT{n}", *numeric) if key in header}
    return SpectralAxis(values, unit, label), facts


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read the cube HDU, mask DQ-flagged voxels and calibrate the wavelength axis."""
    fits, astropy_warning = _astropy(path)
    with warnings.catch_warnings(record=True) as caught:
        # astropy warns about (and repairs) non-standard headers: keep what it said.
        warnings.simplefilter("always", astropy_warning)
        # astropy parses a card's value when it is first used: a damaged one fails there.
        with _opened(path, fits) as hdul, reading(path, _WHAT, extra=(fits.VerifyError,)):
            images = _images(path, fits, hdul)
            chosen = _choose(path, [info for info, _ in images], dataset)
            names = {i: info.name for info, i in images}
            index = next(i for i, name in names.items() if name == chosen.name)
            hdu = hdul[index]
            shape = chosen.shape
            axis = resolve_axis(path, shape, spectral_axis, default=0)
            calibration = _spectral(path, chosen.name, hdul, index, 3 - axis, shape[axis])
            dq = next((i for info, i in images if info.name == "DQ" and info.shape == shape), None)
            if dq == index:
                dq = None
            stat = _variance_hdu(images, chosen, index)
            # Read eagerly, the variances are loaded with the data.
            nbytes = sum(
                math.prod(shape) * np.dtype(info.dtype).itemsize
                for info, i in images
                if i in (index, stat)
            )
            # Scaled (BSCALE/BZERO) or tile-compressed data must be decoded by astropy.
            decoded = [i for i in (index, dq, stat) if i is not None]
            raw = not any(
                isinstance(hdul[i], fits.CompImageHDU) or _scaled(path, names[i], hdul[i].header)
                for i in decoded
            )
            use_lazy = resolve_lazy(
                path, nbytes, lazy, lazy_possible=raw, why="its data are scaled or compressed"
            )
            if use_lazy:
                data = _memmap(path, hdul, index, chosen, axis)
                flags = None if dq is None else _memmap(path, hdul, dq, chosen, axis)
                variance = None if stat is None else _memmap(path, hdul, stat, chosen, axis)
            else:
                data = np.asarray(hdu.data)
                flags = None if dq is None else np.asarray(hdul[dq].data)
                variance = None if stat is None else np.asarray(hdul[stat].data)
            unit = str(hdu.header.get("BUNIT", "")).strip()
    if flags is not None:
        data = nan_where(data, flags != 0)
    metadata: dict[str, Any] = {"hdu": chosen.name}
    if calibration is not None:
        metadata["wcs"] = calibration[1]
    if dq is not None:
        metadata["dq_masked"] = True
    if stat is not None:
        metadata["variance_hdu"] = names[stat]
    if unit:
        metadata["flux_unit"] = unit
    if caught:
        metadata["fits_warnings"] = [str(w.message) for w in caught]
    return build_cube(
        path,
        data,
        fmt="fits",
        spectral_axis=axis,
        spectral=None if calibration is None else calibration[0],
        metadata=metadata,
        variance=variance,
    )


def _variance_hdu(images: list[tuple[DatasetInfo, int]], chosen: DatasetInfo, index: int) -> int | None:
    """The HDU holding the variances of the cube read, when it is the file's science cube; else None.

    A STAT or VARIANCE extension of the cube's shape qualifies the science
    cube (:func:`default_dataset`); another HDU read on its own (STAT itself,
    a second cube) has no variances.
    """
    if chosen.name != default_dataset([info for info, _ in images]):
        return None
    return next(
        (i for info, i in images if info.name in VARIANCE_HDUS and info.shape == chosen.shape and i != index),
        None,
    )


def _scaled(path: Path, name: str, header: Any) -> bool:
    bscale = _header_float(path, name, header, "BSCALE", 1.0)
    return bscale != 1.0 or _header_float(path, name, header, "BZERO", 0.0) != 0.0


def _memmap(path: Path, hdul: Any, index: int, info: DatasetInfo, spectral_axis: int) -> Any:
    """The raw (big-endian, unscaled) data of HDU ``index``, memory-mapped and read lazily.

    ``info`` is the chosen cube's: HDU ``index`` (the cube or its DQ) has its shape.
    """
    dtype = np.dtype(_BITPIX[hdul[index].header["BITPIX"]])
    offset = int(hdul.fileinfo(index)["datLoc"])
    stored = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=info.shape)
    return lazy_rows(path, stored, spectral_axis, what=_WHAT)
