"""A stored array wrapped as a Datacube named after its file, with every file it was read from."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..cube import Datacube
from ..errors import InputError
from ..spectral import SpectralAxis
from ._datasets import check_array
from ._mapped import unmapped

#: Metadata key listing every file or folder a reader read besides ``source``
#: (an ENVI raw file, the zarr store around an array): outputs may overwrite none.
INPUT_FILES = "input_files"


def input_files(cube: Datacube) -> list[Path]:
    """Every file and folder the cube was read from: its source and what the reader listed."""
    named = [cube.metadata.get("source"), *cube.metadata.get(INPUT_FILES, ())]
    return [Path(name) for name in named if name]


def nan_where(data: Any, bad: Any) -> Any:
    """``data`` as floating point with NaN where ``bad`` is True (numpy or dask alike, lazily for dask).

    NaN is how a reader hands flagged voxels on: a pixel mostly NaN is left
    out, a lone NaN in a valid pixel is read as zero (see :class:`Datacube`).
    """
    return np.where(bad, np.nan, data).astype(np.result_type(data.dtype, np.float32), copy=False)


def _native(array: Any) -> Any:
    """``array`` in the machine's byte order, a memory map as stored.

    Big-endian data (FITS, some ENVI) would trip libraries such as torch later
    on; a memory map stays as stored, since converting it would load it.
    """
    if not np.dtype(array.dtype).isnative and not isinstance(array, np.memmap):
        return array.astype(np.dtype(array.dtype).newbyteorder("="))
    return array


def build_cube(
    path: Path,
    array: Any,
    *,
    fmt: str,
    spectral_axis: int,
    spectral: SpectralAxis | None = None,
    metadata: Mapping[str, Any] | None = None,
    mask: np.ndarray | None = None,
    variance: Any = None,
) -> Datacube:
    """Wrap a stored array as a Datacube named after the file.

    Parameters
    ----------
    path
        The file read.
    array
        The array as stored (eager, memmap or dask); a whole memory map is
        read through a :class:`~._mapped.MappedArray` so that reading it
        does not leave the file's pages resident.
    fmt
        Format name recorded in the metadata.
    spectral_axis
        The spectral axis of ``array``, already resolved.
    spectral
        Calibration of that axis, or None for channel indices.
    metadata
        Calibration facts from the file, merged after ``source`` and ``format``.
    mask
        Extra valid-pixel mask (H, W).
    variance
        The variance of every voxel, stored like ``array`` (same shape and
        axes), or None.
    """
    check_array(path, tuple(array.shape), array.dtype)
    array = _native(unmapped(array))
    if variance is not None:
        variance = _native(unmapped(variance))
    info: dict[str, Any] = {
        "source": str(path),
        "format": fmt,
        "stored_shape": tuple(array.shape),
        "stored_spectral_axis": spectral_axis,
        **(metadata or {}),
    }
    try:
        return Datacube.from_array(
            array,
            spectral_axis=spectral_axis,
            spectral_values=None if spectral is None else spectral.values,
            spectral_unit=None if spectral is None else spectral.unit,
            spectral_label=None if spectral is None else spectral.label,
            name=path.stem,
            metadata=info,
            mask=mask,
            variance=variance,
        )
    except InputError as exc:
        raise InputError(f"{path.name}: {exc}") from exc
