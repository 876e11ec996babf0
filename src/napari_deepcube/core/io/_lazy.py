"""Reading large cubes lazily: when to, and dask arrays over stored rows whose errors stay InputErrors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ._errors import import_optional, reading
from ._mapped import unmapped

#: Above this size a cube is read lazily when the caller leaves ``lazy=None``
#: (also capped at half the memory available, see :func:`resolve_lazy`). Low, so
#: that a run's peak memory stays near this plus the libraries' own (torch alone
#: takes several hundred MB) whatever the cube's size: a lazy pass over a cube
#: in the file cache is hardly slower than one over memory.
LAZY_THRESHOLD_BYTES = 512 * 1024**2


#: Target size of one chunk (a band of whole rows) of a lazy array.
LAZY_CHUNK_BYTES = 64 * 1024**2


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def resolve_lazy(
    path: Path, nbytes: int, lazy: bool | None, *, lazy_possible: bool = True, why: str = ""
) -> bool:
    """Whether to read lazily, following ``lazy`` or, when None, the cube's size.

    Parameters
    ----------
    path
        The file, for messages.
    nbytes
        Size of the stored cube.
    lazy
        True or False force the choice; None reads lazily above
        :data:`LAZY_THRESHOLD_BYTES` or half the available memory.
    lazy_possible
        False for storage that must be decoded whole (compressed npz, MATLAB v5).
    why
        Why lazy reading is impossible, for the message.

    Raises
    ------
    InputError
        If lazy reading is forced but impossible, or the cube must be loaded
        whole and is larger than the available memory.
    """
    available = _available_memory()
    if lazy is None:
        threshold = LAZY_THRESHOLD_BYTES if available is None else min(LAZY_THRESHOLD_BYTES, available // 2)
        lazy = nbytes > threshold and lazy_possible
    if lazy and not lazy_possible:
        raise InputError(
            f"{path.name} cannot be read lazily ({why}); read it eagerly, or save the cube "
            "as .zarr or .npy, which can be read lazily"
        )
    if not lazy and available is not None and nbytes > available:
        raise InputError(
            f"{path.name} holds {nbytes / 1024**3:.2f} GiB, more than the "
            f"{available / 1024**3:.1f} GiB of memory available; read it lazily, or "
            "save the cube as .zarr or .npy first if this format cannot be read lazily"
        )
    return lazy


def _rows_per_chunk(shape: tuple[int, ...], itemsize: int, row_axis: int) -> int:
    """Rows of ``row_axis`` in one chunk of about :data:`LAZY_CHUNK_BYTES`."""
    row_bytes = itemsize * int(np.prod(shape)) // max(shape[row_axis], 1)
    return max(1, LAZY_CHUNK_BYTES // max(row_bytes, 1))


class GuardedArray:
    """A lazy array whose reads turn the storage library's errors into InputError.

    A lazy cube is read long after the reader returned (the mask pass, napari's
    slider, a segmentation pass): a chunk damaged on disk must give the same
    one-line message then as a damaged header gives when the file is opened.
    It is picklable when the source is, so dask workers can read through it.

    Parameters
    ----------
    source
        The array as stored (h5py dataset, zarr array, memory map).
    path, what, errors
        As for :func:`reading`: the file, its format and the library's own
        exception types.
    """

    def __init__(
        self, source: Any, path: Path, what: str, errors: tuple[type[BaseException], ...] = ()
    ) -> None:
        self.source = source
        self.path = path
        self.what = what
        self.errors = errors
        self.shape = tuple(source.shape)
        self.dtype = np.dtype(source.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> Any:
        with reading(self.path, self.what, extra=self.errors):
            return self.source[key]


def lazy_rows(
    path: Path,
    source: Any,
    spectral_axis: int,
    *,
    what: str,
    errors: tuple[type[BaseException], ...] = (),
    align: int = 1,
) -> Any:
    """A dask array over ``source`` in chunks of whole image rows.

    Chunks span every axis but the first spatial one, so that reading a band
    of rows of the (H, W, C) cube touches few chunks. ``align`` makes the rows
    of a chunk a multiple of the storage's own chunk rows (zarr, HDF5), so
    that no stored chunk is decoded for two dask chunks. Reads go through a
    :class:`GuardedArray` (``what`` and ``errors`` as for :func:`reading`).
    """
    da = import_optional(path, "dask.array", "dask")
    source = unmapped(source)
    shape = tuple(source.shape)
    row_axis = 1 if spectral_axis == 0 else 0
    rows = _rows_per_chunk(shape, np.dtype(source.dtype).itemsize, row_axis)
    rows = max(align, rows // align * align)
    chunks = tuple(min(rows, n) if axis == row_axis else n for axis, n in enumerate(shape))
    return da.from_array(GuardedArray(source, path, what, errors), chunks=chunks, name=False)


def row_blocks(shape: tuple[int, ...], itemsize: int) -> list[slice]:
    """Slices of whole rows covering axis 0, each about :data:`LAZY_CHUNK_BYTES`."""
    rows = _rows_per_chunk(shape, itemsize, 0)
    return [slice(start, min(start + rows, shape[0])) for start in range(0, shape[0], rows)]
