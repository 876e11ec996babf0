"""NumPy files: ``.npy`` (one (H, W, C) array) and ``.npz`` (key ``cube``, or the only 3-D array).

An ``.npz`` may calibrate the spectral axis with a 1-D array named after its
unit (``energy_keV``, ``energy_loss_eV``, ``wavelength_A``, ``wavelength_nm``...)
or with ``spectral_values`` plus ``spectral_unit``/``spectral_label``, as
:func:`write` stores them. A ``.npy`` holds the array alone: channel indices.
Everything is loaded with ``allow_pickle=False``: a pickled object array is
refused, because unpickling can run arbitrary code.

An .npz with a ``cube`` key is that cube: its other arrays describe it (a
ground truth, abundance maps, endmember spectra) and are no cubes of their own;
:func:`pixel_maps` gives those that map its pixels.
"""

from __future__ import annotations

import math
import tokenize
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..cube import Datacube
from ..errors import InputError
from ._build import build_cube
from ._calibration import spectral_from_named, spectral_record
from ._datasets import (
    DatasetInfo,
    check_array,
    dtype_name,
    is_cube,
    no_companion_images,
    numpy_dtype,
    pick_dataset,
    refuse_dataset,
    resolve_axis,
)
from ._errors import reading
from ._lazy import resolve_lazy, row_blocks
from .outputs import atomic_write

SUFFIXES = (".npy", ".npz")
companion_images = no_companion_images
CUBE_KEY = "cube"
#: The key of an .npz that names the classes of its label map, one string per class.
CLASS_NAMES_KEY = "class_names"
NPY_MAGIC = b"\x93NUMPY"
NPZ_MAGIC = b"PK\x03\x04"  # an .npz is a zip of .npy files
_FIX = "check that the file is complete (a copy may have been cut short) and save it again"
#: What numpy and zipfile raise on damaged files, besides the usual ValueError and
#: OSError: numpy's header parser lets the tokenizer's error through, and zipfile
#: refuses damaged compression fields as unsupported and encryption flags with
#: RuntimeError.
_NPY_ERRORS = (tokenize.TokenError,)
_NPZ_ERRORS = (tokenize.TokenError, NotImplementedError, RuntimeError)


def _header(path: Path, stream: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from an .npy header, without reading the data."""
    with warnings.catch_warnings():
        # numpy warns when a header needed the extra parsing of Python 2's headers (a
        # damaged one can need it too): a hint about loading speed, not about the cube.
        warnings.filterwarnings("ignore", "Reading `.npy` or `.npz` file required additional", UserWarning)
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    if any(n < 0 for n in shape):
        raise InputError(f"{path.name} has a damaged header (shape {tuple(shape)}); {_FIX}")
    return tuple(shape), np.dtype(dtype)


def default_dataset(datasets: Sequence[DatasetInfo]) -> str | None:
    """``cube`` when an .npz has that key: it stands for the file; else None (each stands alone)."""
    return CUBE_KEY if any(info.name == CUBE_KEY for info in datasets) else None


@dataclass(frozen=True)
class PixelMaps:
    """The arrays of an .npz, besides its cube, with a value per pixel of the cube.

    Attributes
    ----------
    arrays
        Key -> array of shape (H, W) or (H, W, n), in the file's order.
    class_names
        The strings under ``class_names``, when the file has them.
    """

    arrays: dict[str, np.ndarray]
    class_names: tuple[str, ...]


def pixel_maps(path: Path, image_shape: tuple[int, int]) -> PixelMaps:
    """The numeric arrays of the .npz ``path`` shaped (H, W) or (H, W, n) after its ``cube``.

    Raises
    ------
    InputError
        If the file cannot be read.
    """
    members = _npz_members(path)
    wanted = [
        m.name for m in members
        if m.name != CUBE_KEY and len(m.shape) in (2, 3) and tuple(m.shape[:2]) == image_shape
        and (dtype := numpy_dtype(m.dtype)) is not None and dtype.kind in "biuf"
    ]
    with reading(path, "a NumPy .npz file", extra=_NPZ_ERRORS, fix=_FIX):
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in wanted}
            names = archive[CLASS_NAMES_KEY] if CLASS_NAMES_KEY in archive.files else None
    if names is None or names.ndim != 1 or names.dtype.kind != "U":
        return PixelMaps(arrays, ())
    return PixelMaps(arrays, tuple(str(n) for n in names))


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
    with reading(path, "a NumPy .npz file", extra=_NPZ_ERRORS, fix=_FIX), zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as stream:
                    shape, dtype = _header(path, stream)
                infos.append(DatasetInfo(member[: -len(".npy")], shape, dtype_name(dtype)))
    return infos


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and data offset of an .npy file."""
    with reading(path, "a NumPy .npy file", extra=_NPY_ERRORS, fix=_FIX), open(path, "rb") as stream:
        shape, dtype = _header(path, stream)
        return shape, dtype, stream.tell()


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The 3-D numeric arrays: the array of an .npy, the keys of an .npz."""
    if _is_npz(path):
        return [a for a in _npz_members(path) if is_cube(a)]
    shape, dtype, _ = _npy_header(path)
    info = DatasetInfo("", shape, dtype_name(dtype))
    return [info] if is_cube(info) else []


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read an .npy (memory-mapped when lazy) or an .npz (always loaded whole)."""
    if _is_npz(path):
        return _read_npz(path, dataset, spectral_axis, lazy)
    refuse_dataset(path, dataset)
    shape, dtype, offset = _npy_header(path)
    check_array(path, shape, dtype)
    # Python integers: a damaged header's sizes can overflow numpy's.
    needed = offset + math.prod(shape) * dtype.itemsize
    size = path.stat().st_size
    if size < needed:
        raise InputError(
            f"{path.name} is incomplete: its header describes {needed} bytes but the file holds "
            f"{size}; {_FIX}"
        )
    axis = resolve_axis(path, shape, spectral_axis, default=2)
    use_lazy = resolve_lazy(path, needed - offset, lazy)
    with reading(path, "a NumPy .npy file", fix=_FIX):
        array = np.load(path, mmap_mode="r" if use_lazy else None, allow_pickle=False)
    return build_cube(path, array, fmt="npy", spectral_axis=axis)


def _read_npz(path: Path, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    members = _npz_members(path)
    chosen = pick_dataset(path, members, dataset, preferred=CUBE_KEY)
    axis = resolve_axis(path, chosen.shape, spectral_axis, default=2)
    nbytes = math.prod(chosen.shape) * np.dtype(chosen.dtype).itemsize
    resolve_lazy(path, nbytes, lazy, lazy_possible=False, why="npz members are zip entries")
    with reading(path, "a NumPy .npz file", extra=_NPZ_ERRORS, fix=_FIX):
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
