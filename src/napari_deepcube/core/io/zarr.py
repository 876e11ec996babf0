"""Zarr stores (format v2 or v3): one (H, W, C) array, or a group holding one 3-D array.

The calibration is read from the array's attributes ``spectral_values``,
``spectral_unit`` and ``spectral_label`` (as :func:`write` stores them), or
from a sibling 1-D array named like ``energy_keV``. Lazy reading wraps the
array in dask. Needs zarr and dask (the ``formats`` extra).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..cube import Datacube
from ..errors import InputError
from ._build import INPUT_FILES, build_cube
from ._calibration import spectral_from_named, spectral_record
from ._datasets import (
    DatasetInfo,
    dtype_name,
    is_cube,
    no_companion_images,
    no_default_dataset,
    pick_dataset,
    resolve_axis,
)
from ._errors import import_optional, reading
from ._lazy import lazy_rows, resolve_lazy, row_blocks
from .outputs import atomic_write

SUFFIXES = (".zarr",)
#: Each cube in the file stands on its own: none is read for the whole file.
default_dataset = no_default_dataset
companion_images = no_companion_images
_WHAT = "a zarr store"
_METADATA_FILES = ("zarr.json", ".zarray", ".zgroup")
#: What a damaged store raises besides zarr's own errors (ValueErrors) and OSError:
#: zarr's metadata parser lets KeyError (a missing key), TypeError (a value of the
#: wrong type) and OverflowError (a size beyond any integer) through, and
#: numcodecs' decompressors fail with RuntimeError ("Zstd decompression error").
#: Caught only around calls into zarr.
ZARR_ERRORS = (KeyError, TypeError, OverflowError, RuntimeError)


def _zarr(path: Path) -> ModuleType:
    return import_optional(path, "zarr", "zarr")


def is_store(path: Path) -> bool:
    """True for a folder with zarr metadata at its root."""
    return path.is_dir() and any((path / name).is_file() for name in _METADATA_FILES)


def is_own_store(path: Path) -> bool:
    """True for a zarr array this package wrote (its attributes name our software).

    Only such a store may be replaced by a new one: any other folder, a group
    holding other arrays included, is someone's data.
    """
    for name, attributes in (("zarr.json", "attributes"), (".zattrs", None)):
        metadata = path / name
        if not metadata.is_file():
            continue
        try:
            record = json.loads(metadata.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if attributes is not None:
            if not isinstance(record, dict) or record.get("node_type") != "array":
                return False
            record = record.get(attributes)
        software = record.get("software") if isinstance(record, dict) else None
        return isinstance(software, str) and software.startswith("napari-deepcube")
    return False


def _outermost_store(path: Path) -> Path:
    """The top folder of the store that ``path`` (an array or group folder) belongs to."""
    path = path.resolve()
    while is_store(path.parent) and path.parent != path:
        path = path.parent
    return path


def _open(path: Path) -> Any:
    """The root array or group of the store at ``path``."""
    if not is_store(path):
        raise InputError(
            f"{path.name} is not a zarr store: it has no zarr.json, .zarray or .zgroup at "
            "its root; give the store's top folder, or write the store again if it was cut short"
        )
    zarr = _zarr(path)
    with reading(path, _WHAT, extra=ZARR_ERRORS):
        return zarr.open(str(path), mode="r")


def _arrays(path: Path, node: Any, prefix: str = "") -> list[DatasetInfo]:
    """Every array below a group (or the root array itself, named "")."""
    with reading(path, _WHAT, extra=ZARR_ERRORS):
        if not hasattr(node, "arrays"):  # only groups list members; an array store is the cube
            return [DatasetInfo(prefix, tuple(node.shape), dtype_name(node.dtype))]
        arrays = sorted(node.arrays(), key=lambda item: item[0])
        groups = sorted(node.groups(), key=lambda item: item[0])
    found = [DatasetInfo(f"{prefix}{name}", tuple(a.shape), dtype_name(a.dtype)) for name, a in arrays]
    for name, group in groups:
        found.extend(_arrays(path, group, f"{prefix}{name}/"))
    return found


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The 3-D numeric arrays of the store, with their paths in it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # see read()
        return [a for a in _arrays(path, _open(path)) if is_cube(a)]


def _check_chunks(path: Path, array: Any, name: str) -> None:
    """Refuse an array whose chunks hold nothing or are missing (zarr reads those as fill values)."""
    where = f"array {name!r}" if name else "the array"
    if any(n < 1 for n in array.chunks):
        raise InputError(
            f"{path.name}: the metadata of {where} gives chunks of shape {tuple(array.chunks)}, "
            "which hold no values: the store is damaged; copy it again"
        )
    with reading(path, _WHAT, extra=ZARR_ERRORS):
        stored, expected = array.nchunks_initialized, array.nchunks
    if stored < expected:
        raise InputError(
            f"{path.name}: {expected - stored} of the {expected} chunks of {where} are missing, "
            f"and zarr would read them as {array.fill_value}: the store was cut short, or was "
            "written without its empty chunks; copy it again, or write it again with every "
            "chunk stored (zarr's write_empty_chunks=True)"
        )


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read the store's cube; lazily through dask for large cubes."""
    with warnings.catch_warnings(record=True) as caught:
        # zarr warns (ZarrUserWarning) about metadata it repairs, such as v2's empty
        # filter list: keep what it said, as for FITS.
        warnings.simplefilter("always", UserWarning)
        root = _open(path)
        chosen = pick_dataset(path, _arrays(path, root), dataset)
        with reading(path, _WHAT, extra=ZARR_ERRORS):
            array = root[chosen.name] if chosen.name else root
            spectral = spectral_from_named(path, array.attrs, array.attrs.__getitem__)
            if spectral is None and chosen.name:
                parent = root[chosen.name.rpartition("/")[0]] if "/" in chosen.name else root
                siblings = {name for name, _ in parent.arrays()}
                spectral = spectral_from_named(path, siblings, lambda key: parent[key][...])
        _check_chunks(path, array, chosen.name)
        axis = resolve_axis(path, chosen.shape, spectral_axis, default=2)
        nbytes = math.prod(chosen.shape) * np.dtype(array.dtype).itemsize
        if resolve_lazy(path, nbytes, lazy):
            align = array.chunks[1 if axis == 0 else 0]
            data = lazy_rows(path, array, axis, what=_WHAT, errors=ZARR_ERRORS, align=align)
        else:
            with reading(path, _WHAT, extra=ZARR_ERRORS):
                data = array[...]
    metadata: dict[str, Any] = {INPUT_FILES: [str(_outermost_store(path))]}
    if chosen.name:
        metadata["dataset"] = chosen.name
    if caught:
        metadata["zarr_warnings"] = [str(w.message) for w in caught]
    return build_cube(
        path,
        data,
        fmt="zarr",
        spectral_axis=axis,
        spectral=spectral if axis == 2 else None,
        metadata=metadata,
    )


def write(path: Path, cube: Datacube) -> None:
    """Write ``cube`` as a zarr array (H, W, C) chunked by rows, calibration in attributes."""
    zarr = _zarr(path)
    data = cube.data
    shape = tuple(data.shape)
    blocks = row_blocks(shape, np.dtype(data.dtype).itemsize)
    chunk_rows = blocks[0].stop - blocks[0].start
    with atomic_write(path, directory=True, is_replaceable=is_own_store) as temp:
        out = zarr.open_array(
            str(temp),
            mode="w",
            shape=shape,
            dtype=data.dtype,
            chunks=(chunk_rows, *shape[1:]),
            # Every chunk on disk, zeros too: a missing chunk then means a damaged store.
            config={"write_empty_chunks": True},
        )
        for rows in blocks:
            out[rows] = np.asarray(data[rows])
        out.attrs.update(spectral_record(cube))
