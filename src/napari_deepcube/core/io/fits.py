"""FITS cubes as integral-field spectrographs (VLT/MUSE) write them: (λ, y, x).

The cube is the primary HDU when it holds 3-D data, else the extension named
DATA, else the first 3-D image extension; ``dataset=`` names another HDU (by
EXTNAME, or PRIMARY). The wavelength comes from the linear WCS of the spectral
axis (CRVALn, CDn_n or CDELTn, CRPIXn, CUNITn, n being the FITS axis number)
and is given in Å. A DQ extension of the same shape flags bad voxels: every
voxel with DQ != 0 becomes NaN. Needs astropy (the ``formats`` extra).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..cube import Datacube
from ._common import (
    DatasetInfo,
    Spectral,
    build_cube,
    import_optional,
    is_cube,
    lazy_rows,
    pick_dataset,
    reading,
    resolve_axis,
    resolve_lazy,
)

SUFFIXES = (".fits", ".fit", ".fts")
_WHAT = "a FITS file"
_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_TO_ANGSTROM = {
    "m": 1e10,
    "cm": 1e8,
    "mm": 1e7,
    "um": 1e4,
    "µm": 1e4,
    "micron": 1e4,
    "nm": 10.0,
    "angstrom": 1.0,
    "å": 1.0,
}


def _astropy(path: Path) -> tuple[ModuleType, type[Warning], type[Exception]]:
    """astropy.io.fits, its warning base class and its verification error."""
    fits = import_optional(path, "astropy.io.fits", "astropy")
    exceptions = import_optional(path, "astropy.utils.exceptions", "astropy")
    return fits, exceptions.AstropyWarning, fits.VerifyError


def _images(hdul: Any) -> list[tuple[DatasetInfo, int]]:
    """Every image HDU with its index, named by EXTNAME (PRIMARY for the first)."""
    found = []
    for index, hdu in enumerate(hdul):
        naxis = int(hdu.header.get("NAXIS", 0))
        if not hdu.is_image or naxis == 0:
            continue
        header = hdu.header
        shape = tuple(int(header[f"NAXIS{n}"]) for n in range(naxis, 0, -1))
        name = str(header.get("EXTNAME", "PRIMARY" if index == 0 else index)).strip().upper()
        dtype = np.dtype(_BITPIX[int(header["BITPIX"])]).newbyteorder("=")
        found.append((DatasetInfo(name, shape, dtype.name), index))
    return found


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The 3-D image HDUs (DATA, STAT, DQ for a MUSE cube)."""
    fits, astropy_warning, verify_error = _astropy(path)
    with warnings.catch_warnings(), reading(path, _WHAT, extra=(verify_error,)):
        warnings.simplefilter("ignore", astropy_warning)
        with fits.open(path, memmap=False) as hdul:
            return [info for info, _ in _images(hdul) if is_cube(info)]


def _choose(path: Path, images: list[DatasetInfo], dataset: str | None) -> DatasetInfo:
    """The user's HDU, else the primary if 3-D, else DATA, else the first 3-D image."""
    cubes = [a for a in images if is_cube(a)]
    if dataset is not None or not cubes:
        return pick_dataset(path, images, None if dataset is None else dataset.upper())
    if cubes[0].name == "PRIMARY":
        return cubes[0]
    return next((a for a in cubes if a.name == "DATA"), cubes[0])


def _wavelength(header: Any, n: int, size: int) -> tuple[Spectral, dict[str, Any]] | None:
    """Wavelength in Å along FITS axis ``n``, when its WCS is a linear wavelength axis."""
    ctype = str(header.get(f"CTYPE{n}", "")).strip().upper()
    # "WAVE-LOG", "AWAV-TAB"...: non-linear algorithms are left as channel indices.
    if ctype not in ("WAVE", "AWAV") or f"CRVAL{n}" not in header:
        return None
    crval = float(header[f"CRVAL{n}"])
    step = float(header.get(f"CD{n}_{n}", header.get(f"CDELT{n}", 1.0) * header.get(f"PC{n}_{n}", 1.0)))
    unit = str(header.get(f"CUNIT{n}", "")).strip()
    if unit:
        factor = _TO_ANGSTROM.get(unit.lower())
        if factor is None:
            return None
    else:
        # The standard's default is metres, but files that omit CUNIT usually mean Å:
        # a wavelength of light above a millimetre cannot be in metres.
        factor = 1e10 if abs(crval) < 1e-3 else 1.0
    pixels = np.arange(size) + 1.0 - float(header.get(f"CRPIX{n}", 1.0))
    keys = (f"CTYPE{n}", f"CUNIT{n}", f"CRVAL{n}", f"CRPIX{n}", f"CDELT{n}", f"CD{n}_{n}", f"PC{n}_{n}")
    facts = {key: header[key] for key in keys if key in header}
    return Spectral((crval + pixels * step) * factor, "Å", "Wavelength"), facts


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read the cube HDU, mask DQ-flagged voxels and calibrate the wavelength axis."""
    fits, astropy_warning, verify_error = _astropy(path)
    with (
        warnings.catch_warnings(record=True) as caught,
        reading(path, _WHAT, extra=(verify_error,)),
    ):
        # astropy warns about (and repairs) non-standard headers: keep what it said.
        warnings.simplefilter("always", astropy_warning)
        with fits.open(path, memmap=False) as hdul:
            images = _images(hdul)
            chosen = _choose(path, [info for info, _ in images], dataset)
            index = {info.name: i for info, i in images}[chosen.name]
            hdu = hdul[index]
            shape = chosen.shape
            axis = resolve_axis(path, shape, spectral_axis, default=0)
            calibration = _wavelength(hdu.header, 3 - axis, shape[axis])
            dq = next((i for info, i in images if info.name == "DQ" and info.shape == shape), None)
            if dq == index:
                dq = None
            nbytes = int(np.prod(shape)) * np.dtype(chosen.dtype).itemsize
            # Scaled (BSCALE/BZERO) or tile-compressed data must be decoded by astropy.
            decoded = [hdul[i] for i in (index, dq) if i is not None]
            raw = not any(isinstance(h, fits.CompImageHDU) or _scaled(h.header) for h in decoded)
            use_lazy = resolve_lazy(
                path, nbytes, lazy, lazy_possible=raw, why="its data are scaled or compressed"
            )
            if use_lazy:
                data = lazy_rows(path, _memmap(path, hdul, index, shape), axis)
                flags = None if dq is None else lazy_rows(path, _memmap(path, hdul, dq, shape), axis)
            else:
                data = np.asarray(hdu.data)
                flags = None if dq is None else np.asarray(hdul[dq].data)
            unit = str(hdu.header.get("BUNIT", "")).strip()
    if flags is not None:
        data = _mask_flagged(data, flags)
    metadata: dict[str, Any] = {"hdu": chosen.name}
    if calibration is not None:
        metadata["wcs"] = calibration[1]
    if dq is not None:
        metadata["dq_masked"] = True
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
    )


def _scaled(header: Any) -> bool:
    return float(header.get("BSCALE", 1.0)) != 1.0 or float(header.get("BZERO", 0.0)) != 0.0


def _memmap(path: Path, hdul: Any, index: int, shape: tuple[int, ...]) -> np.ndarray:
    """The raw (big-endian, unscaled) data of HDU ``index``, memory-mapped."""
    dtype = np.dtype(_BITPIX[int(hdul[index].header["BITPIX"])])
    offset = int(hdul.fileinfo(index)["datLoc"])
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def _mask_flagged(data: Any, flags: Any) -> Any:
    """``data`` with NaN where ``flags`` != 0, as floating point (numpy or dask alike)."""
    return np.where(flags != 0, np.nan, data).astype(np.result_type(data.dtype, np.float32), copy=False)
