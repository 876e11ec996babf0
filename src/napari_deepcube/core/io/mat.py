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

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

from ..cube import Datacube
from ._common import (
    DatasetInfo,
    build_cube,
    dtype_name,
    is_cube,
    lazy_rows,
    pick_dataset,
    reading,
    resolve_axis,
    resolve_lazy,
    spectral_from_named,
)

SUFFIXES = (".mat",)
_WHAT = "a MATLAB file"
_READ_ERRORS = (scipy.io.matlab.MatReadError, NotImplementedError)
_NUMERIC = {
    "double": "float64",
    "single": "float32",
    "logical": "bool",
    **{f"{sign}int{bits}": f"{sign}int{bits}" for sign in ("", "u") for bits in (8, 16, 32, 64)},
}
_ROWS, _COLS = "nrow", "ncol"


def _dtype_of_class(matlab_class: str) -> str:
    """numpy dtype name for a MATLAB class: text and containers are not numbers."""
    if matlab_class == "char":
        return "<U1"
    return _NUMERIC.get(matlab_class, "object")


def _is_v73(path: Path) -> bool:
    """True for a MATLAB v7.3 file (HDF5 behind a 512-byte MATLAB header)."""
    with open(path, "rb") as stream:
        return stream.read(128).startswith(b"MATLAB 7.3")


class _MatFile:
    """The variables of a MATLAB file, in MATLAB's axis order."""

    version = "5"

    def __init__(self, path: Path) -> None:
        self.path = path

    def variables(self) -> list[DatasetInfo]:
        return [
            DatasetInfo(name, tuple(shape), _dtype_of_class(matlab_class))
            for name, shape, matlab_class in scipy.io.whosmat(self.path)
        ]

    def load(self, name: str) -> np.ndarray:
        return scipy.io.loadmat(self.path, variable_names=[name])[name]

    def close(self) -> None:
        """Nothing stays open for v5 files."""


class _MatFile73(_MatFile):
    """A v7.3 file read through h5py; each variable is stored transposed."""

    version = "7.3"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.file = h5py.File(path, "r")

    def variables(self) -> list[DatasetInfo]:
        found = []
        for name, node in self.file.items():
            if isinstance(node, h5py.Dataset):
                matlab_class = node.attrs.get("MATLAB_class", b"")
                matlab_class = matlab_class.decode() if isinstance(matlab_class, bytes) else matlab_class
                dtype = dtype_name(node.dtype) if matlab_class in _NUMERIC else _dtype_of_class(matlab_class)
                found.append(DatasetInfo(name, tuple(reversed(node.shape)), dtype))
        return found

    def load(self, name: str) -> np.ndarray:
        return np.asarray(self.file[name][()]).T

    def close(self) -> None:
        self.file.close()


def _open(path: Path) -> _MatFile:
    with reading(path, _WHAT, extra=_READ_ERRORS):
        return _MatFile73(path) if _is_v73(path) else _MatFile(path)


def _unmixing(mat: _MatFile, variables: list[DatasetInfo]) -> dict[str, tuple[int, int]]:
    """2-D (bands, pixels) matrices that an ``nRow``/``nCol`` pair turns into cubes."""
    sizes = {v.name.lower(): v.name for v in variables if v.shape in ((1, 1), ())}
    if _ROWS not in sizes or _COLS not in sizes:
        return {}
    rows = int(np.asarray(mat.load(sizes[_ROWS])).item())
    cols = int(np.asarray(mat.load(sizes[_COLS])).item())
    return {
        v.name: (rows, cols)
        for v in variables
        if len(v.shape) == 2 and rows * cols in v.shape and np.dtype(v.dtype).kind in "biuf"
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
        with reading(path, _WHAT, extra=_READ_ERRORS):
            variables = mat.variables()
            return [v for v in _as_cubes(variables, _unmixing(mat, variables)) if is_cube(v)]
    finally:
        mat.close()


def _image(matrix: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows, cols, bands) cube from a (bands, pixels) or (pixels, bands) matrix."""
    pixels = matrix.T if matrix.shape[1] == rows * cols else matrix
    return np.reshape(pixels, (rows, cols, pixels.shape[1]), order="F")


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read the chosen variable (lazily only for a 3-D variable of a v7.3 file)."""
    mat = _open(path)
    keep_open = False
    try:
        with reading(path, _WHAT, extra=_READ_ERRORS):
            variables = mat.variables()
            unmixing = _unmixing(mat, variables)
            chosen = pick_dataset(path, _as_cubes(variables, unmixing), dataset)
            axis = resolve_axis(path, chosen.shape, spectral_axis, default=2)
            nbytes = int(np.prod(chosen.shape)) * np.dtype(chosen.dtype).itemsize
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
                array = lazy_rows(path, mat.file[chosen.name], 2 - axis).T
                keep_open = True
            elif chosen.name in unmixing:
                rows, cols = unmixing[chosen.name]
                array = _image(mat.load(chosen.name), rows, cols)
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
