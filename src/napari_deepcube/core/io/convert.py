"""Rechunk any readable cube into a chunked zarr store, streaming band by band.

A cube in a row-major file (.npy, ENVI BIP, HDF5 chunked by rows) is fast to
read a band of rows from and slow for anything else; a compressed TIFF, a
.npz or a MATLAB v5 file cannot be read lazily at all. :func:`convert_cube`
writes the cube as an (H, W, C) zarr array whose chunks hold whole spectra
(tiles of 16 x 64 pixels by default), compressed, with the spectral
calibration in its attributes, so that :func:`~napari_deepcube.core.io.read_cube`
reads it back lazily and a region's spectra cost only the chunks under it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..cube import Datacube
from ..errors import InputError
from ._build import input_files
from ._calibration import spectral_record
from ._dispatch import reader_for
from ._errors import import_optional, reading
from .outputs import atomic_write, check_output, output_transaction
from .zarr import is_own_store

#: Spatial pixels (whole spectra) in one chunk of the store.
DEFAULT_CHUNK_PIXELS = 1024

#: Width of a chunk in pixels; its height is ``chunk_pixels // TILE_COLUMNS``.
#: Tiles rather than full-width bands, so that a region's spectra (a drawn
#: shape in napari) cost only the chunks under it; short tiles, so that a
#: pass reading a few rows at a time decodes little it does not use.
TILE_COLUMNS = 64

#: Most bytes of the source held in memory at once: a band of chunk rows.
BAND_BYTES = 128 * 1024**2


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert_cube` wrote.

    Attributes
    ----------
    path
        The zarr store.
    shape
        (H, W, C) of the stored array.
    dtype
        Its dtype name (the source's, in native byte order).
    chunks
        (rows, columns, C) of one chunk.
    seconds
        Wall time of the conversion.
    """

    path: Path
    shape: tuple[int, int, int]
    dtype: str
    chunks: tuple[int, int, int]
    seconds: float

    @property
    def nbytes(self) -> int:
        """Uncompressed size of the cube."""
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


def chunk_shape(
    shape: tuple[int, int, int], itemsize: int, chunk_pixels: int = DEFAULT_CHUNK_PIXELS
) -> tuple[int, int, int]:
    """Chunks of whole spectra: a tile of about ``chunk_pixels`` pixels.

    Parameters
    ----------
    shape
        (H, W, C) of the cube.
    itemsize
        Bytes per value.
    chunk_pixels
        Target number of pixels in a chunk: :data:`TILE_COLUMNS` wide (or
        the image's width), as many rows as make up the count.

    Returns
    -------
    tuple of int
        (rows, columns, C); one row of chunks stays under :data:`BAND_BYTES`.
    """
    height, width, n_channels = shape
    cols = min(width, TILE_COLUMNS)
    rows = min(height, max(1, chunk_pixels // cols))
    return min(rows, _band_rows(shape, itemsize)), cols, n_channels


def _band_rows(shape: tuple[int, int, int], itemsize: int) -> int:
    """Rows of the cube in :data:`BAND_BYTES` (at least one)."""
    return max(1, BAND_BYTES // max(1, shape[1] * shape[2] * itemsize))


def _read_source(path: Path, dataset: str | None, spectral_axis: int | None) -> Datacube:
    """The source cube, lazily where its format allows.

    A format that must be decoded whole (compressed TIFF, .npz, MATLAB v5,
    scaled FITS) refuses ``lazy=True``; it is then read as the reader decides
    on its own, which loads it when it fits in memory and otherwise says so.
    """
    if not path.exists():
        raise InputError(f"{path} does not exist; check the path and the file name")
    reader = reader_for(path)
    try:
        return reader.read(path, dataset=dataset, spectral_axis=spectral_axis, lazy=True)
    except InputError:
        return reader.read(path, dataset=dataset, spectral_axis=spectral_axis, lazy=None)


def _check_target(source: Path, target: Path) -> None:
    if target.suffix.lower() != ".zarr":
        raise InputError(
            f"the converted cube is written as a zarr store, a folder named *.zarr; "
            f"got {target.name}, so name it e.g. {target.stem or 'cube'}.zarr"
        )
    check_output(target, inputs=[source], directory=True, is_replaceable=is_own_store)


def convert_cube(
    source_path: str | Path,
    target_path: str | Path,
    *,
    dataset: str | None = None,
    spectral_axis: int | None = None,
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
    progress: Callable[[int, int], None] | None = None,
) -> Conversion:
    """Write the cube of ``source_path`` as a chunked zarr store at ``target_path``.

    The source is read band by band (lazily where its format allows, see
    :func:`_read_source`), so memory stays near one band of chunk rows of at most
    :data:`BAND_BYTES`. The store is written in a temporary folder beside the
    target and renamed over it at the end: an interrupted conversion leaves
    no half-written store, and an existing store at ``target_path`` is
    replaced only when the new one is complete.

    Parameters
    ----------
    source_path
        Any file :func:`~napari_deepcube.core.io.read_cube` reads.
    target_path
        The zarr store to write, a folder whose name ends in ``.zarr``.
    dataset, spectral_axis
        As for :func:`~napari_deepcube.core.io.read_cube`.
    chunk_pixels
        Pixels (whole spectra) in one chunk: the default 1024 gives chunks of
        16 x 64 pixels by C channels.
    progress
        Called with (rows written, rows in all) after each band.

    Returns
    -------
    Conversion
        The store's path, shape, dtype and chunks, and the time taken.

    Raises
    ------
    InputError
        For an unreadable source, a target that is not a ``.zarr`` name, is
        an existing folder other than a store this package wrote or holds the
        source, or a folder that cannot be written.
    """
    start = time.perf_counter()
    source_path = Path(source_path).expanduser()
    target = Path(target_path).expanduser()
    if chunk_pixels < 1:
        raise InputError(f"chunk_pixels must be at least 1, got {chunk_pixels}")
    _check_target(source_path, target)
    zarr = import_optional(target, "zarr", "zarr")
    cube = _read_source(source_path, dataset, spectral_axis)
    dtype = np.dtype(cube.data.dtype).newbyteorder("=")
    shape = cube.shape
    chunks = chunk_shape(shape, dtype.itemsize, chunk_pixels)
    attributes = {
        **spectral_record(cube),
        "source": str(source_path),
        "source_format": cube.metadata.get("format"),
        **({} if dataset is None else {"source_dataset": dataset}),
    }
    with (
        output_transaction(inputs=[source_path, *input_files(cube)]),
        atomic_write(target, directory=True, is_replaceable=is_own_store) as temp,
    ):
        store = zarr.create_array(
            str(temp),
            shape=shape,
            dtype=dtype,
            chunks=chunks,
            # Byte shuffle + LZ4: decodes several times faster than zarr's default zstd and still
            # shrinks photon counts a few times; "fast access" is what the store is for.
            compressors=zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
            # Every chunk on disk, all-zero ones too: our reader refuses stores with missing chunks.
            config={"write_empty_chunks": True},
            overwrite=True,
        )
        _copy_bands(source_path, cube.data, store, dtype, progress)
        store.attrs.update(attributes)
    return Conversion(target, shape, dtype.name, chunks, time.perf_counter() - start)


def _copy_bands(
    source_path: Path,
    data: Any,
    store: Any,
    dtype: np.dtype,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Copy ``data`` into ``store`` band by band, holding one band in memory at a time."""
    height = data.shape[0]
    # Whole chunk rows per write, as many as fit in BAND_BYTES: fewer, larger writes.
    chunk_rows = store.chunks[0]
    band = max(1, _band_rows(tuple(data.shape), dtype.itemsize) // chunk_rows) * chunk_rows
    for first in range(0, height, band):
        rows = slice(first, min(first + band, height))
        with reading(source_path, "a cube"):
            values = np.asarray(data[rows], dtype=dtype)
        store[rows] = values
        del values  # free before the next band is read
        if progress is not None:
            progress(rows.stop, height)
