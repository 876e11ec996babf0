"""MATLAB files: v5 through scipy, v7.3 (HDF5 underneath) through h5py.

Axes are given in MATLAB's order for both versions (h5py sees a v7.3
variable transposed). The cube is the only 3-D numeric variable, stored
(H, W, C), or the one named with ``dataset=``. Hyperspectral-unmixing files
store instead a 2-D (bands, pixels) matrix (``Y`` in Jasper Ridge, ``V`` in
Samson) with scalars ``nRow`` and ``nCol``; its pixels run down the columns of
the image first (MATLAB's column-major order), so pixel p is at row
p mod nRow, column p div nRow. Such a matrix counts as a cube of shape
(nRow, nCol, bands), and so does a (pixels, bands) one.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from ..cube import Datacube
from ..errors import InputError
from ._build import build_cube
from ._calibration import spectral_from_named
from ._datasets import (
    DatasetInfo,
    is_cube,
    no_companion_images,
    no_default_dataset,
    numpy_dtype,
    pick_dataset,
    resolve_axis,
)
from ._errors import reading
from ._lazy import lazy_rows, resolve_lazy
from .hdf5 import H5_ERRORS, content

SUFFIXES = (".mat",)
#: Each cube in the file stands on its own: none is read for the whole file.
default_dataset = no_default_dataset
companion_images = no_companion_images
_WHAT = "a MATLAB file"
#: What scipy raises on a damaged v5 file besides ValueError, OSError and the
#: struct and zlib errors: its own MatReadError, NotImplementedError for an
#: unknown element type, TypeError when an element has another type than the
#: one expected there ("Expecting miMATRIX type here"), IndexError for a name
#: past the end of its field. Caught only around calls into scipy.
_SCIPY_ERRORS = (scipy.io.matlab.MatReadError, NotImplementedError, TypeError, IndexError)
_NUMERIC = {
    "double": "float64",
    "single": "float32",
    "logical": "bool",
    **{f"{sign}int{bits}": f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)},
}
#: How the MATLAB classes that hold no numbers are named in messages.
_NOT_NUMBERS = {"char": "text", "cell": "a MATLAB cell array", "sparse": "a MATLAB sparse matrix"}
_ROWS, _COLS = "nrow", "ncol"

#: v5 data types that can hold an array's values (numbers, text). scipy's reader
#: looks an array's values type up in a fixed table without checking it, and a
#: damaged type crashes the whole process (napari with it): see :func:`_v5_arrays`.
_MI_VALUES = frozenset({1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 16, 17, 18})
_MI_MATRIX, _MI_COMPRESSED = 14, 15
#: v5 array classes whose values follow the name: char (4), double (6) to uint64 (15).
_MX_VALUES = frozenset({4, *range(6, 16)})
_COMPLEX_FLAG = 0x800
#: Bytes of an array's start that hold its flags, dimensions, name and values tag.
_ARRAY_HEAD = 1024


def _dtype_of_class(matlab_class: str) -> str:
    """numpy dtype name for a MATLAB class, or words for text, structs, cells..."""
    if matlab_class in _NUMERIC:
        return _NUMERIC[matlab_class]
    return _NOT_NUMBERS.get(matlab_class, f"a MATLAB {matlab_class}")


def _is_v73(path: Path) -> bool:
    """True for a MATLAB v7.3 file (HDF5 behind a 512-byte MATLAB header)."""
    with reading(path, _WHAT), open(path, "rb") as stream:
        return stream.read(128).startswith(b"MATLAB 7.3")


def _element(data: bytes, position: int, order: str) -> tuple[int, bytes, int]:
    """Type, contents and end of the v5 data element at ``position``.

    A small element packs its size into the upper half of its type and its
    contents into the four bytes that would hold the size.
    """
    code, size = struct.unpack_from(f"{order}II", data, position)
    if code >> 16:
        return code & 0xFFFF, data[position + 4 : position + 4 + (code >> 16)], position + 8
    end = position + 8 + size
    return code, data[position + 8 : end], end + -size % 8


def _v5_arrays(path: Path) -> set[str]:
    """Check the values type of every top-level array of a v5 file; the complex arrays' names.

    Raises
    ------
    InputError
        If an array's values have a type that is no v5 type for values: scipy
        would crash the process on reading it.
    """
    complex_names: set[str] = set()
    with reading(path, _WHAT), open(path, "rb") as stream:
        marker = stream.read(128)[126:128]
        if marker not in (b"IM", b"MI"):
            return complex_names  # not v5 (a v4 file has no header): scipy says what it is
        order = "<" if marker == b"IM" else ">"
        size = stream.seek(0, 2)
        position = 128
        while position + 8 <= size:
            stream.seek(position)
            code, length = struct.unpack(f"{order}II", stream.read(8))
            position += 8 + length
            if code not in (_MI_MATRIX, _MI_COMPRESSED):
                continue  # scipy reports what it does not know itself
            head = stream.read(min(length, _ARRAY_HEAD))
            if code == _MI_COMPRESSED:
                code, head, _ = _element(zlib.decompressobj().decompress(head, _ARRAY_HEAD), 0, order)
                if code != _MI_MATRIX:
                    continue
            _, flags, end = _element(head, 0, order)
            (word,) = struct.unpack_from(f"{order}I", flags)  # class in the low byte, then flags
            if word & 0xFF not in _MX_VALUES:
                continue
            _, _, end = _element(head, end, order)  # dimensions
            _, name, end = _element(head, end, order)
            values, _, _ = _element(head, end, order)
            if values not in _MI_VALUES:
                raise InputError(
                    f"{path.name} is damaged: the values of {name.decode('latin-1')!r} have the "
                    f"unknown type {values}; save the file again from MATLAB"
                )
            if word & _COMPLEX_FLAG:
                complex_names.add(name.decode("latin-1"))
    return complex_names


class _MatFile:
    """The variables of a MATLAB file, in MATLAB's axis order."""

    version = "5"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.complex = _v5_arrays(path)

    def variables(self) -> list[DatasetInfo]:
        with reading(self.path, _WHAT, extra=_SCIPY_ERRORS):
            found = scipy.io.whosmat(self.path)
        return [
            DatasetInfo(name, tuple(shape), "complex128" if name in self.complex else _dtype_of_class(cls))
            for name, shape, cls in found
        ]

    def load(self, name: str) -> np.ndarray:
        if name in self.complex:
            # Not loaded at all: _v5_arrays checks the real part's type, not the imaginary part's.
            raise InputError(
                f"{self.path.name}: the variable {name!r} holds complex numbers; save it as a real array"
            )
        with reading(self.path, _WHAT, extra=_SCIPY_ERRORS):
            loaded = scipy.io.loadmat(self.path, variable_names=[name])
        if name not in loaded:
            raise InputError(
                f"{self.path.name}: the variable {name!r} is listed but cannot be loaded: the file "
                "is damaged; save it again from MATLAB"
            )
        return loaded[name]

    def close(self) -> None:
        """Nothing stays open for v5 files."""


class _MatFile73(_MatFile):
    """A v7.3 file read through h5py; each variable is stored transposed."""

    version = "7.3"

    def __init__(self, path: Path) -> None:
        # Not the v5 reader's __init__: its checks are of the v5 layout.
        self.path = path
        self.complex: set[str] = set()  # h5py reads complex values as compound records
        with reading(path, _WHAT, extra=H5_ERRORS):
            self.file = h5py.File(path, "r")

    def variables(self) -> list[DatasetInfo]:
        found = []
        with reading(self.path, _WHAT, extra=H5_ERRORS):
            for name, node in self.file.items():
                if name.startswith("#"):  # MATLAB's own groups: #refs#, #subsystem#
                    continue
                if node is None:  # h5py's answer for a link to nothing
                    raise InputError(
                        f"{self.path.name}: the variable {name!r} points to nothing: the file is "
                        "damaged; save it again from MATLAB"
                    )
                matlab_class = node.attrs.get("MATLAB_class", b"")
                matlab_class = matlab_class.decode() if isinstance(matlab_class, bytes) else str(matlab_class)
                if isinstance(node, h5py.Dataset):
                    shape, dtype = content(node)
                    if matlab_class and matlab_class not in _NUMERIC:
                        dtype = _dtype_of_class(matlab_class)
                    found.append(DatasetInfo(name, tuple(reversed(shape)), dtype))
                elif matlab_class:  # a struct (or object) is a group of its fields
                    found.append(DatasetInfo(name, (), _dtype_of_class(matlab_class)))
        return found

    def load(self, name: str) -> np.ndarray:
        with reading(self.path, _WHAT, extra=H5_ERRORS):
            return np.asarray(self.file[name][()]).T

    def close(self) -> None:
        self.file.close()


def _open(path: Path) -> _MatFile:
    return _MatFile73(path) if _is_v73(path) else _MatFile(path)


def _size(mat: _MatFile, name: str) -> int:
    """The value of the scalar ``nRow`` or ``nCol``, a positive whole number."""
    value = np.asarray(mat.load(name))
    number = value.item() if value.size == 1 and value.dtype.kind in "biuf" else None
    if number is None or not math.isfinite(number) or number < 1 or number != int(number):
        raise InputError(
            f"{mat.path.name}: {name} = {value.ravel()[:3].tolist()} is not a positive whole number, "
            "but it gives the image's size for the unmixing matrix; fix nRow and nCol"
        )
    return int(number)


def _numeric(variable: DatasetInfo) -> bool:
    dtype = numpy_dtype(variable.dtype)
    return dtype is not None and dtype.kind in "biuf"


def _unmixing(mat: _MatFile, variables: list[DatasetInfo]) -> dict[str, tuple[int, int]]:
    """2-D (bands, pixels) matrices that an ``nRow``/``nCol`` pair turns into cubes."""
    sizes = {v.name.lower(): v.name for v in variables if v.shape in ((1, 1), ()) and _numeric(v)}
    if _ROWS not in sizes or _COLS not in sizes:
        return {}
    rows = _size(mat, sizes[_ROWS])
    cols = _size(mat, sizes[_COLS])
    return {
        v.name: (rows, cols)
        for v in variables
        if len(v.shape) == 2 and rows * cols in v.shape and _numeric(v)
    }


def _as_cubes(variables: list[DatasetInfo], unmixing: dict[str, tuple[int, int]]) -> list[DatasetInfo]:
    """The variables, unmixing matrices given the shape of the cube they hold."""
    shown = []
    for v in variables:
        if v.name in unmixing:
            rows, cols = unmixing[v.name]
            bands = v.shape[0] if v.shape[1] == rows * cols else v.shape[1]
            v = DatasetInfo(v.name, (rows, cols, bands), v.dtype)
        shown.append(v)
    return shown


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The 3-D numeric variables, unmixing matrices listed with their cube's shape."""
    mat = _open(path)
    try:
        variables = mat.variables()
        return [v for v in _as_cubes(variables, _unmixing(mat, variables)) if is_cube(v)]
    finally:
        mat.close()


def _image(path: Path, name: str, matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows, cols, bands) cube from a (bands, pixels) or (pixels, bands) matrix."""
    if matrix.ndim != 2 or rows * cols not in matrix.shape:
        # The listing said otherwise: the variable's header and its values disagree.
        raise InputError(
            f"{path.name} is damaged: the matrix {name!r} holds {matrix.shape} values, not "
            f"{rows} x {cols} pixels; save the file again from MATLAB"
        )
    pixels = matrix.T if matrix.shape[1] == rows * cols else matrix
    return np.reshape(pixels, (rows, cols, pixels.shape[1]), order="F")


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read the chosen variable (lazily only for a 3-D variable of a v7.3 file)."""
    mat = _open(path)
    keep_open = False
    try:
        variables = mat.variables()
        unmixing = _unmixing(mat, variables)
        chosen = pick_dataset(path, _as_cubes(variables, unmixing), dataset)
        axis = resolve_axis(path, chosen.shape, spectral_axis, default=2)
        nbytes = math.prod(chosen.shape) * np.dtype(chosen.dtype).itemsize
        possible = isinstance(mat, _MatFile73) and chosen.name not in unmixing
        use_lazy = resolve_lazy(
            path,
            nbytes,
            lazy,
            lazy_possible=possible,
            why="MATLAB v5 files and unmixing matrices are read whole",
        )
        metadata: dict[str, Any] = {"variable": chosen.name}
        if use_lazy and isinstance(mat, _MatFile73):
            # h5py sees (C, W, H) for a MATLAB (H, W, C) variable.
            with reading(path, _WHAT, extra=H5_ERRORS):
                stored = mat.file[chosen.name]
            array = lazy_rows(path, stored, 2 - axis, what=_WHAT, errors=H5_ERRORS).T
            keep_open = True
        elif chosen.name in unmixing:
            rows, cols = unmixing[chosen.name]
            array = _image(path, chosen.name, mat.load(chosen.name), rows, cols)
            metadata.update(n_rows=rows, n_cols=cols, pixel_order="column-major")
        else:
            array = mat.load(chosen.name)
        names = {v.name for v in variables}
        spectral = spectral_from_named(path, names, mat.load)
    finally:
        if not keep_open:
            mat.close()
    return build_cube(
        path,
        array,
        fmt=f"mat-v{mat.version}",
        spectral_axis=axis,
        spectral=spectral if axis == 2 else None,
        metadata=metadata,
    )
