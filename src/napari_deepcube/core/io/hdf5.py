"""HDF5 files (.h5, .hdf5, .he5, .nxs) and HyperSpy's .hspy files.

The cube is the file's only 3-D numeric dataset, or the one named with
``dataset=``; it is stored (H, W, C) (``img`` in the reference paper's files).
Its calibration comes from ``spectral_values``/``spectral_unit`` attributes,
or from a sibling 1-D dataset named like ``energy_keV``. In a HyperSpy file
the axes groups ``axis-0..2`` next to the data give each axis's scale,
offset, units and name, and the spectral axis is the one whose ``navigate``
flag differs from the other two (the signal axis of a spectrum image, the
navigation axis of an image stack).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..cube import Datacube
from ._build import build_cube
from ._calibration import as_text, hyperspy_axis, hyperspy_spectral_index, spectral_from_named
from ._datasets import (
    DatasetInfo,
    dtype_name,
    is_cube,
    no_companion_images,
    no_default_dataset,
    pick_dataset,
    resolve_axis,
)
from ._errors import reading
from ._lazy import lazy_rows, resolve_lazy

SUFFIXES = (".h5", ".hdf5", ".he5", ".nxs", ".hspy")
#: Each cube in the file stands on its own: none is read for the whole file.
default_dataset = no_default_dataset
companion_images = no_companion_images
_WHAT = "an HDF5 file"
#: What h5py raises on a damaged file besides OSError and ValueError: RuntimeError
#: when a damaged group or attribute table is walked ("Object visitation failed"),
#: KeyError when a member's header cannot be opened, TypeError for a damaged
#: datatype without a numpy equivalent. Caught only around calls into h5py.
H5_ERRORS = (RuntimeError, KeyError, TypeError)


def content(dataset: h5py.Dataset) -> tuple[tuple[int, ...], str]:
    """Shape and dtype name of a dataset, in words where numpy has no dtype for its values."""
    if dataset.shape is None:  # a null dataspace, read as h5py.Empty
        return (), "no values (an empty HDF5 dataspace)"
    dtype = dataset.dtype
    if h5py.check_string_dtype(dtype) is not None:
        return tuple(dataset.shape), "text"
    if h5py.check_ref_dtype(dtype) is not None:
        return tuple(dataset.shape), "references to other HDF5 objects"
    if dtype.kind == "O":
        return tuple(dataset.shape), "variable-length sequences"
    if dtype.kind == "V":
        return tuple(dataset.shape), "compound records" if dtype.names else "opaque bytes"
    return tuple(dataset.shape), dtype_name(dtype)


def _arrays(path: Path, group: h5py.Group) -> list[DatasetInfo]:
    """Every dataset below ``group``, with its path, shape and dtype."""
    found: list[DatasetInfo] = []

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset):
            found.append(DatasetInfo(name, *content(node)))

    with reading(path, _WHAT, extra=H5_ERRORS):
        group.visititems(visit)
    return found


def _open(path: Path) -> h5py.File:
    with reading(path, _WHAT, extra=H5_ERRORS):
        return h5py.File(path, "r")


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The 3-D numeric datasets of the file, with their paths."""
    with _open(path) as file:
        return [a for a in _arrays(path, file) if is_cube(a)]


def _hyperspy_axes(file: h5py.File, data: h5py.Dataset) -> list[dict[str, Any]] | None:
    """The attributes of the axes of a HyperSpy signal, or None for other files."""
    if as_text(file.attrs.get("file_format", "")) != "HyperSpy":
        return None
    group = data.parent
    if not all(f"axis-{i}" in group for i in range(data.ndim)):
        return None
    return [dict(group[f"axis-{i}"].attrs) for i in range(data.ndim)]


def _plain(value: Any) -> Any:
    """An attribute as a plain Python value, for the cube's metadata."""
    value = value.tolist() if isinstance(value, np.ndarray | np.generic) else value
    return value.decode() if isinstance(value, bytes) else value


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read the chosen dataset; lazily (dask over the open file) for large cubes."""
    file = _open(path)
    keep_open = False
    try:
        chosen = pick_dataset(path, _arrays(path, file), dataset)
        metadata: dict[str, Any] = {"dataset": chosen.name}
        with reading(path, _WHAT, extra=H5_ERRORS):
            data = file[chosen.name]
            axes = _hyperspy_axes(file, data)
            if axes is None:
                spectral = spectral_from_named(
                    path, data.attrs, data.attrs.__getitem__
                ) or spectral_from_named(path, data.parent, lambda key: data.parent[key][()])
        if axes is None:
            default = 2
            axis = resolve_axis(path, chosen.shape, spectral_axis, default)
            calibration = spectral if axis == default else None
        else:
            default = hyperspy_spectral_index(axes)
            axis = resolve_axis(path, chosen.shape, spectral_axis, default)
            # Every axis may be calibrated, so an override still gets real coordinates.
            calibration = hyperspy_axis(path, axes[axis], axis, chosen.shape[axis])
            metadata["axes"] = [{k: _plain(v) for k, v in a.items()} for a in axes]
        nbytes = math.prod(chosen.shape) * data.dtype.itemsize
        if resolve_lazy(path, nbytes, lazy):
            array = lazy_rows(path, data, axis, what=_WHAT, errors=H5_ERRORS)
            # The lazy array reads from the open file; closing it would break the cube.
            keep_open = True
        else:
            with reading(path, _WHAT, extra=H5_ERRORS):
                array = data[()]
    finally:
        if not keep_open:
            file.close()
    return build_cube(
        path,
        array,
        fmt="hyperspy" if axes is not None else "hdf5",
        spectral_axis=axis,
        spectral=calibration,
        metadata=metadata,
    )
