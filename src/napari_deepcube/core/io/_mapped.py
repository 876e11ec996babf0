"""A raw array in a file that is memory-mapped only while a slice of it is read.

A numpy memory map keeps every page it has touched in the process's resident
memory until the map is closed: one pass over an 8 GB cube leaves 8 GB
resident. Those pages are the kernel's file cache and can be reclaimed, but
they count in the resident set size that users, ``top`` and cluster
schedulers (which kill jobs over their memory request) go by.
:class:`MappedArray` maps the file afresh for each read and drops the map once
the slice is copied out, so resident memory follows the slices in use, not
the cube.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np


class MappedArray:
    """A read-only, lazily read array stored raw (C or Fortran order) in a file.

    It offers what the core, dask and napari use of an array: ``shape``,
    ``dtype``, ``ndim``, numpy indexing (each read returns a new numpy array
    in native byte order), ``transpose`` (lazy) and ``__array__``. It is
    picklable (a path and a layout), so a dask worker reads its own slices
    from the file, and thread-safe, since every read has its own map.

    Parameters
    ----------
    filename
        The file.
    dtype
        The stored dtype, byte order included.
    shape
        The stored shape.
    offset
        Bytes before the array in the file.
    order
        ``"C"`` or ``"F"``, the storage order.
    axes
        Permutation of the stored axes giving this array's axes.
    keep
        An object that must live as long as this array and the arrays made
        from it (the temporary folder of a decoded copy). An array that
        keeps one is not pickled.
    """

    def __init__(
        self,
        filename: str,
        dtype: Any,
        shape: Sequence[int],
        *,
        offset: int = 0,
        order: Literal["C", "F"] = "C",
        axes: Sequence[int] | None = None,
        keep: object = None,
    ) -> None:
        self.filename = str(filename)
        self.keep = keep
        self.offset = int(offset)
        self.order = order
        self.stored_dtype = np.dtype(dtype)
        self.stored_shape = tuple(int(n) for n in shape)
        self.axes = tuple(range(len(self.stored_shape))) if axes is None else tuple(axes)
        self.dtype = self.stored_dtype.newbyteorder("=")
        self.shape = tuple(self.stored_shape[axis] for axis in self.axes)

    @classmethod
    def of(cls, array: np.memmap) -> MappedArray | None:
        """The same data as the read-only memory map ``array``, or None if it cannot be described.

        ``array`` may be the map itself or a reshaped view of the whole of it
        (as ``tifffile.memmap`` gives); a slice or a strided view gives None.
        """
        root: Any = array
        while isinstance(root.base, np.memmap):
            root = root.base
        if not isinstance(root.base, mmap.mmap) or root.mode not in ("r", "c") or array.size != root.size:
            return None
        if array.flags.c_contiguous and root.flags.c_contiguous:
            return cls(root.filename, array.dtype, array.shape, offset=root.offset, order="C")
        if array.flags.f_contiguous and root.flags.f_contiguous:
            return cls(root.filename, array.dtype, array.shape, offset=root.offset, order="F")
        return None

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of values."""
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Bytes the whole array takes once read."""
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"MappedArray({self.filename!r}, shape={self.shape}, dtype={self.dtype.name})"

    def transpose(self, *axes: Any) -> MappedArray:
        """The array with its axes permuted (no data read), as ``numpy.transpose``."""
        if len(axes) == 1 and not isinstance(axes[0], int | np.integer):
            axes = tuple(axes[0])
        order = tuple(range(self.ndim))[::-1] if not axes else tuple(int(a) % self.ndim for a in axes)
        if sorted(order) != list(range(self.ndim)):
            raise ValueError(f"axes {axes} are not a permutation of {self.ndim} axes")
        return MappedArray(
            self.filename,
            self.stored_dtype,
            self.stored_shape,
            offset=self.offset,
            order=self.order,
            axes=tuple(self.axes[axis] for axis in order),
            keep=self.keep,
        )

    def __getstate__(self) -> dict[str, Any]:
        if self.keep is not None:
            # A worker on another machine cannot see the file, and a copy in another process
            # would not keep it: the data travel as values instead (core/distributed.py).
            raise TypeError("an array over a private temporary file is read only in the process that made it")
        return self.__dict__

    def __copy__(self) -> MappedArray:
        return self  # read-only: a copy would only lose what ``keep`` holds

    def __deepcopy__(self, memo: dict[int, Any]) -> MappedArray:
        return self

    def __getitem__(self, key: Any) -> np.ndarray:
        stored = np.memmap(
            self.filename,
            dtype=self.stored_dtype,
            mode="r",
            offset=self.offset,
            shape=self.stored_shape,
            order=self.order,
        )
        # np.array copies the slice into ordinary memory; the map, with the pages it
        # touched, is closed when `stored` goes out of scope on return.
        return np.array(stored.transpose(self.axes)[key], dtype=self.dtype)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        values = self[...]
        return values if dtype is None else values.astype(dtype, copy=False)


def unmapped(array: Any) -> Any:
    """``array`` as a :class:`MappedArray` if it is a whole read-only memory map, else unchanged."""
    if isinstance(array, np.memmap):
        return MappedArray.of(array) or array
    return array
