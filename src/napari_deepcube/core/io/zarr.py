"""Zarr stores (format v2 or v3): one (H, W, C) array, or a group holding one 3-D array.

The calibration is read from the array's attributes ``spectral_values``,
``spectral_unit`` and ``spectral_label`` (as :func:`write` stores them), or
from a sibling 1-D array named like ``energy_keV``. Lazy reading wraps the
array in dask. Needs zarr and dask (the ``formats`` extra).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..cube import Datacube
from ..errors import InputError
from ._common import (
    DatasetInfo,
    atomic_write,
    build_cube,
    dtype_name,
    import_optional,
    is_cube,
    lazy_rows,
    pick_dataset,
    reading,
    resolve_axis,
    resolve_lazy,
    row_blocks,
    spectral_from_named,
    spectral_record,
)

SUFFIXES = (".zarr",)
_WHAT = "a zarr store"
_METADATA_FILES = ("zarr.json", ".zarray", ".zgroup")


def _zarr(path: Path) -> ModuleType:
    return import_optional(path, "zarr", "zarr")


def is_store(path: Path) -> bool:
    """True for a folder with zarr metadata at its root."""
    return path.is_dir() and any((path / name).is_file() for name in _METADATA_FILES)


def _open(path: Path) -> Any:
    """The root array or group of the store at ``path``."""
    if not is_store(path):
        raise InputError(
            f"{path.name} is not a zarr store: it has no zarr.json, .zarray or .zgroup at "
            "its root; give the store's top folder, or write the store again if it was cut short"
        )
    zarr = _zarr(path)
    with reading(path, _WHAT):
        return zarr.open(str(path), mode="r")


def _arrays(node: Any, prefix: str = "") -> list[DatasetInfo]:
    """Every array below a group (or the root array itself, named "")."""
    if not hasattr(node, "arrays"):  # only groups list members; an array store is the cube
        return [DatasetInfo(prefix, tuple(node.shape), dtype_name(node.dtype))]
    found = [
        DatasetInfo(f"{prefix}{name}", tuple(array.shape), dtype_name(array.dtype))
        for name, array in sorted(node.arrays(), key=lambda item: item[0])
    ]
    for name, group in sorted(node.groups(), key=lambda item: item[0]):
        found.extend(_arrays(group, f"{prefix}{name}/"))
    return found


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The 3-D numeric arrays of the store, with their paths in it."""
    node = _open(path)
    with reading(path, _WHAT):
        return [a for a in _arrays(node) if is_cube(a)]


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read the store's cube; lazily through dask for large cubes."""
    root = _open(path)
    with reading(path, _WHAT):
        chosen = pick_dataset(path, _arrays(root), dataset)
        array = root[chosen.name] if chosen.name else root
        spectral = spectral_from_named(path, array.attrs, array.attrs.__getitem__)
        if spectral is None and chosen.name:
            parent = root[chosen.name.rpartition("/")[0]] if "/" in chosen.name else root
            siblings = {name for name, _ in parent.arrays()}
            spectral = spectral_from_named(path, siblings, lambda key: parent[key][...])
        axis = resolve_axis(path, chosen.shape, spectral_axis, default=2)
        nbytes = int(np.prod(chosen.shape)) * np.dtype(array.dtype).itemsize
        if resolve_lazy(path, nbytes, lazy):
            data = lazy_rows(path, array, axis, align=array.chunks[1 if axis == 0 else 0])
        else:
            data = array[...]
    return build_cube(
        path,
        data,
        fmt="zarr",
        spectral_axis=axis,
        spectral=spectral if axis == 2 else None,
        metadata={"dataset": chosen.name} if chosen.name else {},
    )


def write(path: Path, cube: Datacube) -> None:
    """Write ``cube`` as a zarr array (H, W, C) chunked by rows, calibration in attributes."""
    zarr = _zarr(path)
    data = cube.data
    shape = tuple(data.shape)
    blocks = row_blocks(shape, np.dtype(data.dtype).itemsize)
    chunk_rows = blocks[0].stop - blocks[0].start
    with atomic_write(path, directory=True) as temp:
        out = zarr.open_array(
            str(temp), mode="w", shape=shape, dtype=data.dtype, chunks=(chunk_rows, *shape[1:])
        )
        for rows in blocks:
            out[rows] = np.asarray(data[rows])
        out.attrs.update(spectral_record(cube))
