"""NumPy files: ``.npy`` (one (H, W, C) array) and ``.npz`` (key ``cube``, or the only 3-D array).

An ``.npz`` may calibrate the spectral axis with a 1-D array named after its
unit (``energy_keV``, ``energy_loss_eV``, ``wavelength_A``, ``wavelength_nm``...)
or with ``spectral_values`` plus ``spectral_unit``/``spectral_label``, as
:func:`write` stores them. A ``.npy`` holds the array alone: channel indices.
Everything is loaded with ``allow_pickle=False``: a pickled object array is
refused, because unpickling can run arbitrary code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..cube import Datacube
from ._common import (
    DatasetInfo,
    atomic_write,
    build_cube,
    check_array,
    dtype_name,
    is_cube,
    pick_dataset,
    reading,
    refuse_dataset,
    resolve_axis,
    resolve_lazy,
    row_blocks,
    spectral_from_named,
    spectral_record,
)

SUFFIXES = (".npy", ".npz")
CUBE_KEY = "cube"
NPY_MAGIC = b"\x93NUMPY"
NPZ_MAGIC = b"PK\x03\x04"  # an .npz is a zip of .npy files
_FIX = "check that the file is complete (a copy may have been cut short) and save it again"


def _header(stream: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an .npy header, without reading the data."""
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    return tuple(shape), np.dtype(dtype)


def _is_npz(path: Path) -> bool:
    """True for a zip of arrays: by content when it is recognisable, else by suffix."""
    with reading(path, "a NumPy file", fix=_FIX), open(path, "rb") as stream:
        head = stream.read(len(NPY_MAGIC))
    if head.startswith((NPY_MAGIC, NPZ_MAGIC)):
        return head.startswith(NPZ_MAGIC)
    return path.suffix.lower() == ".npz"


def _npz_members(path: Path) -> list[DatasetInfo]:
    """Every array in an .npz, from the headers of its members."""
    infos = []
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as stream:
                    shape, dtype = _header(stream)
                infos.append(DatasetInfo(member[: -len(".npy")], shape, dtype_name(dtype)))
    return infos


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The 3-D numeric arrays: the array of an .npy, the keys of an .npz."""
    with reading(path, "a NumPy file", fix=_FIX):
        if _is_npz(path):
            return [a for a in _npz_members(path) if is_cube(a)]
        with open(path, "rb") as stream:
            shape, dtype = _header(stream)
    info = DatasetInfo("", shape, dtype_name(dtype))
    return [info] if is_cube(info) else []


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read an .npy (memory-mapped when lazy) or an .npz (always loaded whole)."""
    if _is_npz(path):
        return _read_npz(path, dataset, spectral_axis, lazy)
    refuse_dataset(path, dataset)
    with reading(path, "a NumPy .npy file", fix=_FIX):
        with open(path, "rb") as stream:
            shape, dtype = _header(stream)
        check_array(path, shape, dtype)
        axis = resolve_axis(path, shape, spectral_axis, default=2)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        use_lazy = resolve_lazy(path, nbytes, lazy)
        array = np.load(path, mmap_mode="r" if use_lazy else None, allow_pickle=False)
    return build_cube(path, array, fmt="npy", spectral_axis=axis)


def _read_npz(path: Path, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    with reading(path, "a NumPy .npz file", fix=_FIX):
        members = _npz_members(path)
        chosen = pick_dataset(path, members, dataset, preferred=CUBE_KEY)
        axis = resolve_axis(path, chosen.shape, spectral_axis, default=2)
        nbytes = int(np.prod(chosen.shape)) * np.dtype(chosen.dtype).itemsize
        resolve_lazy(path, nbytes, lazy, lazy_possible=False, why="npz members are zip entries")
        with np.load(path, allow_pickle=False) as archive:
            array = archive[chosen.name]
            names = set(archive.files)
            spectral = spectral_from_named(path, names, archive.__getitem__)
            # 0-d entries (a JSON string of acquisition facts, a maximum...) are small facts.
            scalars = {m.name: archive[m.name].item() for m in members if m.shape == ()}
    return build_cube(
        path,
        array,
        fmt="npz",
        spectral_axis=axis,
        spectral=spectral if axis == 2 else None,
        metadata={"dataset": chosen.name, **scalars},
    )


def write(path: Path, cube: Datacube) -> None:
    """Write ``cube`` (H, W, C) as .npy (the array alone) or .npz (array and calibration).

    An .npy is written row block by row block through a memory map, so a lazy
    cube never has to fit in memory.
    """
    if path.suffix.lower() == ".npz":
        with atomic_write(path) as temp, open(temp, "wb") as stream:
            arrays: dict[str, Any] = {CUBE_KEY: np.asarray(cube.data), **spectral_record(cube)}
            np.savez(stream, **arrays)
        return
    data = cube.data
    with atomic_write(path) as temp:
        out = np.lib.format.open_memmap(temp, mode="w+", dtype=data.dtype, shape=data.shape)
        for rows in row_blocks(data.shape, np.dtype(data.dtype).itemsize):
            out[rows] = np.asarray(data[rows])
        out.flush()
        del out  # closes the map before the file is renamed (required on Windows)
