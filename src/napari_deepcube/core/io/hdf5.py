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

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..cube import Datacube
from ._common import (
    DatasetInfo,
    Spectral,
    as_text,
    build_cube,
    dtype_name,
    is_cube,
    lazy_rows,
    normalise_unit,
    pick_dataset,
    reading,
    resolve_axis,
    resolve_lazy,
    spectral_from_named,
    unit_label,
)

SUFFIXES = (".h5", ".hdf5", ".he5", ".nxs", ".hspy")
_WHAT = "an HDF5 file"
_UNDEFINED = "<undefined>"  # HyperSpy's value for a missing name or unit


def _arrays(group: h5py.Group) -> list[DatasetInfo]:
    """Every dataset below ``group``, with its path, shape and dtype."""
    found: list[DatasetInfo] = []

    def visit(name: str, node: Any) -> None:
        if isinstance(node, h5py.Dataset):
            found.append(DatasetInfo(name, tuple(node.shape), dtype_name(node.dtype)))

    group.visititems(visit)
    return found


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The 3-D numeric datasets of the file, with their paths."""
    with reading(path, _WHAT), h5py.File(path, "r") as file:
        return [a for a in _arrays(file) if is_cube(a)]


def _hyperspy_axes(file: h5py.File, data: h5py.Dataset) -> list[dict[str, Any]] | None:
    """The attributes of the axes of a HyperSpy signal, or None for other files."""
    if as_text(file.attrs.get("file_format", "")) != "HyperSpy":
        return None
    group = data.parent
    if not all(f"axis-{i}" in group for i in range(data.ndim)):
        return None
    return [dict(group[f"axis-{i}"].attrs) for i in range(data.ndim)]


def _hyperspy_calibration(axes: list[dict[str, Any]]) -> tuple[int, dict[int, Spectral]]:
    """The spectral axis of a HyperSpy signal and the calibration of every axis."""
    navigate = [bool(a.get("navigate", True)) for a in axes]
    odd = [i for i, flag in enumerate(navigate) if navigate.count(flag) == 1]
    calibrations = {}
    values: np.ndarray
    for i, attrs in enumerate(axes):
        if "axis" in attrs:  # a non-uniform axis lists its coordinates
            values = np.asarray(attrs["axis"], dtype=np.float64)
        elif "scale" in attrs and "size" in attrs:
            values = float(attrs.get("offset", 0.0)) + float(attrs["scale"]) * np.arange(int(attrs["size"]))
        else:
            continue
        raw_unit = as_text(attrs.get("units", _UNDEFINED))
        unit = normalise_unit("" if raw_unit == _UNDEFINED else raw_unit)
        name = as_text(attrs.get("name", _UNDEFINED))
        calibrations[i] = Spectral(values, unit, unit_label(unit) if name == _UNDEFINED else name)
    return (odd[0] if odd else len(axes) - 1), calibrations


def _plain(value: Any) -> Any:
    """An attribute as a plain Python value, for the cube's metadata."""
    value = value.tolist() if isinstance(value, np.ndarray | np.generic) else value
    return value.decode() if isinstance(value, bytes) else value


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read the chosen dataset; lazily (dask over the open file) for large cubes."""
    with reading(path, _WHAT):
        file = h5py.File(path, "r")
        keep_open = False
        try:
            chosen = pick_dataset(path, _arrays(file), dataset)
            data = file[chosen.name]
            axes = _hyperspy_axes(file, data)
            metadata: dict[str, Any] = {"dataset": chosen.name}
            if axes is None:
                default = 2
                spectral = spectral_from_named(
                    path, data.attrs, data.attrs.__getitem__
                ) or spectral_from_named(path, data.parent, lambda key: data.parent[key][()])
                calibrations = {default: spectral} if spectral is not None else {}
            else:
                default, calibrations = _hyperspy_calibration(axes)
                metadata["axes"] = [{k: _plain(v) for k, v in a.items()} for a in axes]
            axis = resolve_axis(path, chosen.shape, spectral_axis, default)
            nbytes = int(np.prod(chosen.shape)) * data.dtype.itemsize
            use_lazy = resolve_lazy(path, nbytes, lazy)
            array = lazy_rows(path, data, axis) if use_lazy else data[()]
            # The lazy array reads from the open file; closing it would break the cube.
            keep_open = use_lazy
        finally:
            if not keep_open:
                file.close()
    return build_cube(
        path,
        array,
        fmt="hyperspy" if axes is not None else "hdf5",
        spectral_axis=axis,
        spectral=calibrations.get(axis),
        metadata=metadata,
    )
