"""Where a run keeps its per-pixel maps: in memory, or on disk for a cube read lazily.

The posteriors (k floats a pixel) and latents (D floats a pixel) of a 50 GB
scan of 25 million pixels take 1.4 GB with k = 6 and D = 8, more than the
rest of the run. For a cube read lazily they are written band by band, as the
pass over every pixel computes them, into zarr arrays in a temporary folder,
and read back as dask arrays: renumbering, dropping a cluster and showing a
map in napari then read them chunk by chunk. Each folder is deleted when no
array reading it is left (or at exit). :data:`MAPS_DIR_ENV` names where the
folders go; the default is the system's temporary folder, which on some
systems is held in memory: point it at a disk for cubes of that size.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .cube import DEFAULT_BLOCK_PIXELS, Datacube

if TYPE_CHECKING:
    import dask.array

#: A per-pixel map: in memory, or a dask array over an on-disk store.
PixelMap = Union[np.ndarray, "dask.array.Array"]

#: Environment variable naming the folder of on-disk maps.
MAPS_DIR_ENV = "DEEPCUBE_MAPS_DIR"
#: Pixels per band when a map is read band by band.
BAND_PIXELS = 2**20


def on_disk(cube: Datacube) -> bool:
    """Whether the maps of ``cube`` go to disk: it is read lazily, and zarr and dask are installed."""
    if not cube.is_lazy:
        return False
    try:
        import dask.array  # noqa: F401
        import zarr  # noqa: F401
    except ImportError:
        return False
    return True


def new_map(cube: Datacube, depth: int, fill: float, name: str) -> Any:
    """An (H, W, depth) float32 map filled with ``fill``, to be written band by band.

    A numpy array, or (see :func:`on_disk`) a zarr array whose chunks are the
    pass's bands of rows, so that each band writes whole chunks.
    """
    height, width = cube.image_shape
    if not on_disk(cube):
        return np.full((height, width, depth), fill, dtype=np.float32)
    import zarr

    folder = tempfile.mkdtemp(prefix=f"deepcube-{name}-", dir=os.environ.get(MAPS_DIR_ENV) or None)
    array = zarr.create_array(
        folder, shape=(height, width, depth), chunks=(_chunk_rows(width), width, depth), dtype="float32",
        fill_value=fill,
    )
    weakref.finalize(array, shutil.rmtree, folder, True)
    return array


def readable(written: Any) -> PixelMap:
    """A map filled by :func:`new_map`, for reading: numpy as it is, zarr as a dask array over it."""
    if isinstance(written, np.ndarray):
        return written
    import dask.array as da

    return da.from_zarr(written)



def bands(height: int, width: int) -> Iterator[slice]:
    """Bands of whole rows of about :data:`BAND_PIXELS`, each whole chunks of an on-disk map."""
    chunk = _chunk_rows(width)
    rows = chunk * max(1, BAND_PIXELS // (chunk * max(width, 1)))
    for top in range(0, height, rows):
        yield slice(top, min(top + rows, height))


def values_at(values: PixelMap, picks: np.ndarray) -> np.ndarray:
    """Rows (n, depth) of an (H, W, depth) map at the sorted flat indices ``picks``, band by band."""
    height, width, depth = values.shape
    parts = []
    for rows in bands(height, width):
        local = picks[(picks >= rows.start * width) & (picks < rows.stop * width)] - rows.start * width
        if local.size:
            parts.append(np.asarray(values[rows]).reshape(-1, depth)[local])
    return np.concatenate(parts)


def _chunk_rows(width: int) -> int:
    """Rows of a chunk of an on-disk map: the pass's band of rows."""
    return max(1, DEFAULT_BLOCK_PIXELS // max(width, 1))
