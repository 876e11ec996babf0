"""ENVI images: a text header (``.hdr``) beside a raw binary file.

The raw file has the header's name without ``.hdr`` (``scene`` or ``scene.img``
for ``scene.hdr`` / ``scene.img.hdr``) or one of the usual extensions
(.raw, .img, .dat, .bsq, .bil, .bip). The header gives the size (samples,
lines, bands), the data type code, the interleave (BSQ stores (bands,
lines, samples), BIL (lines, bands, samples), BIP (lines, samples, bands)),
the byte order, the header offset and the band wavelengths with their units.
Bands the bad band list (``bbl``) flags 0 are left out, and values equal to the
``data ignore value`` become NaN (no-data pixels are then left out). The raw
file is memory-mapped, then copied into memory unless read lazily.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ..cube import Datacube
from ..errors import InputError
from ..spectral import SpectralAxis, normalise_unit
from ._build import INPUT_FILES, build_cube, nan_where
from ._datasets import (
    DatasetInfo,
    dtype_name,
    is_cube,
    no_companion_images,
    no_default_dataset,
    refuse_dataset,
    resolve_axis,
)
from ._errors import reading
from ._lazy import lazy_rows, resolve_lazy

SUFFIXES = (".hdr", ".raw", ".img", ".dat")
#: Each cube in the file stands on its own: none is read for the whole file.
default_dataset = no_default_dataset
companion_images = no_companion_images
_DATA_SUFFIXES = ("", ".raw", ".img", ".dat", ".bsq", ".bil", ".bip")
#: ENVI "data type" codes; 6 and 9 (complex) have no place in a spectral cube.
_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}
_AXES = {
    "bsq": ("bands", "lines", "samples"),
    "bil": ("lines", "bands", "samples"),
    "bip": ("lines", "samples", "bands"),
}
_FIELD = re.compile(r"^[ \t]*([^=\n]+?)[ \t]*=[ \t]*(\{[^}]*\}|[^\n]*)", re.MULTILINE)


def header_for(path: Path) -> Path | None:
    """The header of an ENVI file given by its header or its raw file, or None."""
    if path.suffix.lower() == ".hdr":
        return path
    for header in (path.with_suffix(".hdr"), path.with_name(path.name + ".hdr")):
        if header.is_file():
            return header
    return None


def _raw_for(header: Path) -> Path:
    stem = header.with_suffix("")
    for suffix in _DATA_SUFFIXES:
        candidate = stem.with_name(stem.name + suffix)
        if candidate.is_file():
            return candidate
    raise InputError(
        f"{header.name}: the raw data file beside this header was not found (looked for "
        f"{stem.name} with {', '.join(s or 'no extension' for s in _DATA_SUFFIXES)}); "
        "put the raw file next to the header under the same name"
    )


def _fields(header: Path) -> dict[str, str]:
    """The header's ``key = value`` fields, keys in lower case, braces kept."""
    with reading(header, "an ENVI header"):
        text = header.read_text(encoding="latin-1")
    if not text.lstrip().startswith("ENVI"):
        raise InputError(
            f"{header.name} is not an ENVI header (it does not start with 'ENVI'); "
            "give the .hdr file written with the image"
        )
    return {key.strip().lower(): value.strip() for key, value in _FIELD.findall(text)}


def _items(value: str) -> list[str]:
    """The items of a ``{a, b, c}`` list value."""
    return [item.strip() for item in value.strip("{}").split(",") if item.strip()]


def _integer(header: Path, fields: dict[str, str], key: str, default: int | None = None) -> int:
    if key not in fields and default is not None:
        return default
    try:
        return int(fields[key])
    except (KeyError, ValueError) as exc:
        raise InputError(
            f"{header.name}: the header field {key!r} is missing or not an integer; "
            "fix the header (it needs samples, lines, bands and data type)"
        ) from exc


def _layout(header: Path, fields: dict[str, str]) -> tuple[tuple[int, ...], np.dtype, str, int]:
    """Shape as stored, dtype with byte order, interleave and header offset, each checked."""
    code = _integer(header, fields, "data type")
    if code not in _DTYPES:
        raise InputError(
            f"{header.name}: ENVI data type {code} is not supported (complex or unknown); "
            f"save the image with one of the real types {sorted(_DTYPES)}"
        )
    interleave = fields.get("interleave", "bsq").lower()
    if interleave not in _AXES:
        raise InputError(f"{header.name}: unknown interleave {interleave!r}; it must be bsq, bil or bip")
    sizes = {key: _integer(header, fields, key) for key in ("samples", "lines", "bands")}
    for key, size in sizes.items():
        if size < 1:
            raise InputError(
                f"{header.name}: the header gives {key} = {size}, but samples, lines and bands "
                "count the image's columns, rows and bands and must be at least 1; fix the header"
            )
    byte_order = _integer(header, fields, "byte order", 0)
    if byte_order not in (0, 1):
        raise InputError(
            f"{header.name}: the header gives byte order = {byte_order}, but it must be 0 "
            "(little-endian) or 1 (big-endian); fix the header"
        )
    dtype = np.dtype(_DTYPES[code]).newbyteorder(">" if byte_order == 1 else "<")
    offset = _integer(header, fields, "header offset", 0)
    if offset < 0:
        raise InputError(
            f"{header.name}: the header gives header offset = {offset}, but the offset counts "
            "the bytes before the image in the raw file and cannot be negative; fix the header"
        )
    return tuple(sizes[a] for a in _AXES[interleave]), dtype, interleave, offset


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The image as one entry, with its shape as stored."""
    header = header_for(path)
    if header is None:
        return []
    shape, dtype, _, _ = _layout(header, _fields(header))
    info = DatasetInfo("", shape, dtype_name(dtype))
    return [info] if is_cube(info) else []


def _numbers(header: Path, fields: dict[str, str], key: str, what: str) -> np.ndarray:
    """The numbers of the list field ``key`` (``what`` names it in the message)."""
    try:
        return np.array([float(v) for v in _items(fields[key])])
    except ValueError as exc:
        raise InputError(
            f"{header.name}: {what} holds something that is not a number; fix or remove the {key!r} field"
        ) from exc


def _wavelengths(header: Path, fields: dict[str, str]) -> SpectralAxis | None:
    if "wavelength" not in fields:
        return None
    values = _numbers(header, fields, "wavelength", "the wavelength list")
    units = fields.get("wavelength units", "").strip()
    unit = "unknown" if units.lower() in ("", "unknown") else normalise_unit(units)
    return SpectralAxis(values, unit, "Wavelength")


def _ignore_value(header: Path, fields: dict[str, str]) -> float | None:
    """The header's ``data ignore value`` (no-data), or None."""
    if "data ignore value" not in fields:
        return None
    try:
        value = float(fields["data ignore value"])
    except ValueError as exc:
        raise InputError(
            f"{header.name}: the data ignore value {fields['data ignore value']!r} is not a number; "
            "fix or remove the 'data ignore value' field"
        ) from exc
    return value if math.isfinite(value) else None  # NaN already reads as missing


def _good_bands(header: Path, fields: dict[str, str], n_bands: int) -> np.ndarray | None:
    """The header's bad band list ``bbl`` as a mask of the bands kept (1 = good), or None."""
    if "bbl" not in fields:
        return None
    flags = _numbers(header, fields, "bbl", "the bad band list (bbl)")
    if flags.size != n_bands:
        raise InputError(
            f"{header.name}: the bad band list (bbl) has {flags.size} entries for {n_bands} bands; "
            "give one 0 or 1 per band, or remove the field"
        )
    good = flags != 0
    if not good.any():
        raise InputError(
            f"{header.name}: the bad band list (bbl) marks every band bad; fix or remove the 'bbl' field"
        )
    return good


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read the image given by its header or raw file; memory-mapped when lazy.

    Bands the header's ``bbl`` marks bad (water vapour, dead detector rows)
    are left out, and values equal to its ``data ignore value`` become NaN,
    so that no-data pixels are left out of the segmentation.
    """
    refuse_dataset(path, dataset)
    header = header_for(path)
    if header is None:
        raise InputError(
            f"{path.name} has no ENVI header beside it ({path.with_suffix('.hdr').name}); "
            "put the .hdr file next to the raw file"
        )
    fields = _fields(header)
    shape, dtype, interleave, offset = _layout(header, fields)
    raw = _raw_for(header)
    # Python integers: numpy's product of three header values can overflow and pass the check.
    needed = offset + math.prod(shape) * dtype.itemsize
    size = raw.stat().st_size
    if size < needed:
        raise InputError(
            f"{raw.name} holds {size} bytes but {header.name} describes {needed} "
            f"({' x '.join(map(str, shape))} values of {dtype_name(dtype)} after a "
            f"{offset}-byte offset); the raw file is truncated or the header is wrong: copy the "
            "raw file again, or correct samples, lines, bands and data type in the header"
        )
    default = _AXES[interleave].index("bands")
    axis = resolve_axis(path, shape, spectral_axis, default)
    ignore = _ignore_value(header, fields)
    good = _good_bands(header, fields, shape[default])
    use_lazy = resolve_lazy(path, needed - offset, lazy)
    with reading(raw, "an ENVI raw file"):
        array: Any = np.memmap(raw, dtype=dtype, mode="r", offset=offset, shape=shape)
        if not use_lazy:
            array = np.array(array)
    if use_lazy and (ignore is not None or good is not None):
        # Selecting bands or flagging values of a memory map would load it: go through dask.
        array = lazy_rows(raw, array, axis, what="an ENVI raw file")
    spectral = _wavelengths(header, fields)
    if good is not None:
        array = array[(slice(None),) * default + (np.flatnonzero(good),)]
        if spectral is not None and spectral.values.size == good.size:  # else the cube says it is wrong
            spectral = replace(spectral, values=spectral.values[good])
    if ignore is not None:
        array = nan_where(array, array == ignore)
    metadata = {
        "interleave": interleave,
        "data_file": str(raw),
        "header_offset": offset,
        INPUT_FILES: [str(raw)],
    }
    metadata.update({k: fields[k] for k in ("description", "data ignore value") if k in fields})
    if good is not None:
        metadata["bad_bands_dropped"] = [int(i) for i in np.flatnonzero(~good)]
    return build_cube(
        header,
        array,
        fmt="envi",
        spectral_axis=axis,
        spectral=spectral if axis == default else None,
        metadata=metadata,
    )
