"""Helpers shared by every reader and writer: errors, axes, calibration, laziness."""

from __future__ import annotations

import importlib
import json
import struct
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from ... import __version__
from ..cube import Datacube
from ..errors import InputError
from ._mapped import unmapped

#: Above this size a cube is read lazily when the caller leaves ``lazy=None``
#: (also capped at half the memory available, see :func:`resolve_lazy`). Low, so
#: that a run's peak memory stays near this plus the libraries' own (torch alone
#: takes several hundred MB) whatever the cube's size: a lazy pass over a cube
#: in the file cache is hardly slower than one over memory.
LAZY_THRESHOLD_BYTES = 512 * 1024**2

#: Target size of one chunk (a band of whole rows) of a lazy array.
LAZY_CHUNK_BYTES = 64 * 1024**2

FORMATS_EXTRA = "pip install napari-deepcube[formats]"
SOFTWARE = f"napari-deepcube {__version__}"

#: Exceptions that third-party readers raise on damaged or unexpected files.
#: Each reader adds its library's own exception types where it calls the
#: library. KeyError, IndexError and TypeError are left out on purpose: caught
#: everywhere, they would turn a bug of ours into a "damaged file" message.
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    EOFError,
    struct.error,
    zipfile.BadZipFile,
    zlib.error,
    UnicodeDecodeError,
)

#: Canonical spectral unit for each spelling found in files (lower case).
_UNIT_SPELLINGS = {
    "kev": "keV",
    "ev": "eV",
    "å": "Å",
    "a": "Å",
    "angstrom": "Å",
    "angstroms": "Å",
    "nm": "nm",
    "nanometer": "nm",
    "nanometers": "nm",
    "µm": "µm",
    "μm": "µm",
    "um": "µm",
    "micron": "µm",
    "microns": "µm",
    "micrometer": "µm",
    "micrometers": "µm",
    "cm-1": "cm-1",
    "cm^-1": "cm-1",
    "1/cm": "cm-1",
    "wavenumber": "cm-1",
    "channel": "channel",
    "channels": "channel",
    "": "channel",
}
_UNIT_LABELS = {
    "keV": "Energy",
    "eV": "Energy",
    "Å": "Wavelength",
    "nm": "Wavelength",
    "µm": "Wavelength",
    "cm-1": "Wavenumber",
    "channel": "Channel",
}

#: Names of 1-D arrays (npz keys, sibling datasets, MATLAB variables) that
#: calibrate the spectral axis, with the unit and label they imply.
SPECTRAL_KEYS = {
    "energy_keV": ("keV", "Energy"),
    "energy_eV": ("eV", "Energy"),
    "energy_loss_eV": ("eV", "Energy loss"),
    "wavelength_A": ("Å", "Wavelength"),
    "wavelength_nm": ("nm", "Wavelength"),
    "wavelength_um": ("µm", "Wavelength"),
}
#: Our own generic calibration: values, plus unit and label (array keys or attributes).
SPECTRAL_VALUES, SPECTRAL_UNIT, SPECTRAL_LABEL = (
    "spectral_values",
    "spectral_unit",
    "spectral_label",
)


class DatasetInfo(NamedTuple):
    """One array inside a file: its path in the file, shape and dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Spectral:
    """Calibration of one axis: coordinate values, unit and label."""

    values: np.ndarray
    unit: str
    label: str


def normalise_unit(unit: str) -> str:
    """Canonical spelling of a spectral unit (``"Angstrom"`` -> ``"Å"``); unknown ones kept."""
    text = str(unit).strip()
    return _UNIT_SPELLINGS.get(text.lower(), text)


def unit_label(unit: str) -> str:
    """What an axis in ``unit`` measures, e.g. ``"Wavelength"`` for ``"nm"``."""
    return _UNIT_LABELS.get(unit, "Spectral axis")


def spectral_from_named(path: Path, names: Collection[str], load: Callable[[str], Any]) -> Spectral | None:
    """Calibration from named arrays or attributes next to the cube, if any.

    Parameters
    ----------
    path
        The file, for error messages.
    names
        Names available (npz keys, sibling datasets, attribute names).
    load
        Returns the value stored under a name.

    Returns
    -------
    Spectral or None
        From the first of :data:`SPECTRAL_KEYS` present, else from
        ``spectral_values`` with ``spectral_unit``/``spectral_label``.
    """
    for key, (unit, label) in SPECTRAL_KEYS.items():
        if key in names:
            return Spectral(_coordinates(path, key, load(key)), unit, label)
    if SPECTRAL_VALUES not in names:
        return None
    unit = normalise_unit(as_text(load(SPECTRAL_UNIT))) if SPECTRAL_UNIT in names else "channel"
    label = as_text(load(SPECTRAL_LABEL)) if SPECTRAL_LABEL in names else unit_label(unit)
    return Spectral(_coordinates(path, SPECTRAL_VALUES, load(SPECTRAL_VALUES)), unit, label)


def spectral_record(cube: Datacube) -> dict[str, Any]:
    """The calibration of ``cube`` as JSON-ready attributes, for our writers."""
    return {
        SPECTRAL_VALUES: [float(v) for v in cube.spectral_values],
        SPECTRAL_UNIT: cube.spectral_unit,
        SPECTRAL_LABEL: cube.spectral_label,
        "software": SOFTWARE,
    }


def _coordinates(path: Path, key: str, value: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{path.name}: the spectral values under {key!r} are not numbers; "
            "store them as a 1-D numeric array"
        ) from exc


def as_text(value: Any) -> str:
    """A string from an attribute or array that may hold bytes or be 0-d."""
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode() if isinstance(value, bytes) else str(value)


def to_json(record: Mapping[str, Any]) -> str:
    """JSON text of ``record``, with numpy scalars and arrays turned into plain values."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray | np.generic):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    return json.dumps(record, default=plain)


def dtype_name(dtype: Any) -> str:
    """Readable dtype name, byte order left out for numbers (``">f4"`` -> ``"float32"``)."""
    dtype = np.dtype(dtype)
    return dtype.name if dtype.kind in "biufc" else dtype.str


def numpy_dtype(dtype: Any) -> np.dtype | None:
    """``dtype`` as a numpy dtype, or None for a reader's word for contents without one.

    Readers name what numpy has no dtype for in words, as
    :attr:`DatasetInfo.dtype`: ``"text"``, ``"a MATLAB struct"``.
    """
    try:
        return np.dtype(dtype)
    except TypeError:  # numpy's answer to a name it does not know
        return None


def is_cube(info: DatasetInfo) -> bool:
    """True for a 3-D numeric array."""
    dtype = numpy_dtype(info.dtype)
    return len(info.shape) == 3 and dtype is not None and dtype.kind in "biuf"


def _describe(infos: list[DatasetInfo], limit: int = 12) -> str:
    text = ", ".join(f"{i.name} {i.shape} {i.dtype}" for i in infos[:limit])
    return text + (f" and {len(infos) - limit} more" if len(infos) > limit else "")


def check_array(path: Path, shape: tuple[int, ...], dtype: Any, what: str = "the array") -> None:
    """Raise InputError unless ``shape``/``dtype`` describe a 3-D numeric cube.

    ``dtype`` is a numpy dtype, or a reader's word for other contents (see
    :func:`numpy_dtype`). What the array holds is checked before its shape:
    "it holds text" says more about a wrong choice than its number of axes.
    """
    numeric = numpy_dtype(dtype)
    if numeric is None:
        raise InputError(
            f"{path.name}: {what} holds {dtype}, not numbers; a spectral cube is a numeric "
            "array, so choose the dataset or variable that holds the cube"
        )
    if numeric.kind == "O":
        raise InputError(
            f"{path.name}: {what} holds Python objects (a pickled object array), "
            "which are not loaded because unpickling can run code; save the cube as a "
            "numeric array, e.g. np.save(path, cube.astype(np.float32))"
        )
    if numeric.kind in "SUT":
        raise InputError(
            f"{path.name}: {what} holds text, not numbers; a spectral cube is a numeric "
            "array, so choose the dataset or variable that holds the cube"
        )
    if numeric.kind not in "biuf":
        raise InputError(
            f"{path.name}: {what} holds {dtype_name(numeric)} values, not numbers; "
            "save it as an integer or floating-point array"
        )
    if len(shape) != 3:
        raise InputError(
            f"{path.name}: {what} has shape {tuple(shape)} ({len(shape)}-D), but a "
            "3-D spectral cube is expected ((H, W, C), or (C, H, W) for TIFF/FITS); "
            "save a single spectral image with one spectral axis"
        )


def pick_dataset(
    path: Path,
    arrays: list[DatasetInfo],
    dataset: str | None,
    *,
    preferred: str | None = None,
) -> DatasetInfo:
    """Choose the cube among the arrays of a container file.

    Parameters
    ----------
    path
        The file, for messages.
    arrays
        Every array in the file (any shape and dtype).
    dataset
        The user's choice, or None.
    preferred
        A name taken when present and several cubes exist (``cube`` in .npz).

    Raises
    ------
    InputError
        If ``dataset`` does not exist or is not a cube, or if no choice was
        given and the file holds no cube or several.
    """
    cubes = [a for a in arrays if is_cube(a)]
    if dataset is not None:
        wanted = dataset.strip("/")
        match = next((a for a in arrays if a.name.strip("/") == wanted), None)
        if match is None:
            available = _describe(cubes) if cubes else "none"
            raise InputError(
                f"{path.name} has no dataset {dataset!r}; its 3-D datasets are: "
                f"{available}; choose one of these"
            )
        check_array(path, match.shape, match.dtype, what=f"dataset {match.name!r}")
        return match
    preferred_array = next((a for a in arrays if a.name == preferred), None)
    if preferred_array is not None:
        check_array(path, preferred_array.shape, preferred_array.dtype, f"{preferred!r}")
        return preferred_array
    if len(cubes) == 1:
        return cubes[0]
    if not cubes:
        found = f"; it holds {_describe(arrays)}" if arrays else " (it holds no arrays)"
        raise InputError(
            f"{path.name} holds no 3-D numeric dataset{found}; a spectral cube "
            "(H, W, C) is expected, so save the cube as one 3-D array"
        )
    raise InputError(
        f"{path.name} holds {len(cubes)} 3-D datasets: {_describe(cubes)}; choose one "
        "with --dataset NAME (dataset=NAME in Python, or in the dialog)"
    )


def refuse_dataset(path: Path, dataset: str | None) -> None:
    """Raise InputError when a dataset is named for a file that holds a single image."""
    if dataset is not None:
        raise InputError(
            f"{path.name} holds a single image, so there is no dataset {dataset!r} to "
            "choose; leave --dataset out (it applies to HDF5, .npz, .mat, FITS and zarr)"
        )


def resolve_axis(path: Path, shape: tuple[int, ...], spectral_axis: int | None, default: int) -> int:
    """The spectral axis (0, 1 or 2) in the array as stored: the user's, else the format's."""
    if spectral_axis is None:
        return default
    if not -3 <= spectral_axis < 3:
        raise InputError(
            f"{path.name}: spectral axis {spectral_axis} does not exist in an array of "
            f"shape {tuple(shape)}; choose 0, 1 or 2 (or -1 for the last axis)"
        )
    return spectral_axis % 3


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


#: Metadata key listing every file or folder a reader read besides ``source``
#: (an ENVI raw file, the zarr store around an array): outputs may overwrite none.
INPUT_FILES = "input_files"


def input_files(cube: Datacube) -> list[Path]:
    """Every file and folder the cube was read from: its source and what the reader listed."""
    named = [cube.metadata.get("source"), *cube.metadata.get(INPUT_FILES, ())]
    return [Path(name) for name in named if name]


def build_cube(
    path: Path,
    array: Any,
    *,
    fmt: str,
    spectral_axis: int,
    spectral: Spectral | None = None,
    metadata: Mapping[str, Any] | None = None,
    mask: np.ndarray | None = None,
) -> Datacube:
    """Wrap a stored array as a Datacube named after the file.

    Parameters
    ----------
    path
        The file read.
    array
        The array as stored (eager, memmap or dask); a whole memory map is
        read through a :class:`~._mapped.MappedArray` so that reading it
        does not leave the file's pages resident.
    fmt
        Format name recorded in the metadata.
    spectral_axis
        The spectral axis of ``array``, already resolved.
    spectral
        Calibration of that axis, or None for channel indices.
    metadata
        Calibration facts from the file, merged after ``source`` and ``format``.
    mask
        Extra valid-pixel mask (H, W).
    """
    check_array(path, tuple(array.shape), array.dtype)
    array = unmapped(array)
    if not np.dtype(array.dtype).isnative and not isinstance(array, np.memmap):
        # Big-endian data (FITS, some ENVI) would trip libraries such as torch later on;
        # a memory map stays as stored, since converting it would load it.
        array = array.astype(np.dtype(array.dtype).newbyteorder("="))
    info: dict[str, Any] = {
        "source": str(path),
        "format": fmt,
        "stored_shape": tuple(array.shape),
        "stored_spectral_axis": spectral_axis,
        **(metadata or {}),
    }
    try:
        return Datacube.from_array(
            array,
            spectral_axis=spectral_axis,
            spectral_values=None if spectral is None else spectral.values,
            spectral_unit=None if spectral is None else spectral.unit,
            spectral_label=None if spectral is None else spectral.label,
            name=path.stem,
            metadata=info,
            mask=mask,
        )
    except InputError as exc:
        raise InputError(f"{path.name}: {exc}") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


@contextmanager
def reading(
    path: Path,
    what: str,
    *,
    extra: tuple[type[BaseException], ...] = (),
    fix: str = "check that the file is complete and not damaged (copy or export it again)",
) -> Iterator[None]:
    """Turn a third-party library's exception while reading ``path`` into an InputError.

    Parameters
    ----------
    path
        The file being read.
    what
        The format, as in "could not be read as <what>".
    extra
        The library's own exception types (astropy, scipy, zarr...).
    fix
        What the user should do.
    """
    try:
        yield
    except InputError:
        raise
    except MemoryError as exc:
        raise InputError(
            f"{path.name} does not fit in memory; read it lazily, or save the cube as .zarr or .npy first"
        ) from exc
    except (*READ_ERRORS, *extra) as exc:
        raise InputError(f"{path.name} could not be read as {what} ({_reason(exc)}); {fix}") from exc


def import_optional(path: Path, module: str, package: str) -> ModuleType:
    """Import an optional dependency needed for ``path``, or say which pip extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise InputError(
            f"{path.name}: this format needs the optional package {package!r}; install it with "
            f"`{FORMATS_EXTRA}`"
        ) from exc


def row_blocks(shape: tuple[int, ...], itemsize: int) -> list[slice]:
    """Slices of whole rows covering axis 0, each about :data:`LAZY_CHUNK_BYTES`."""
    rows = _rows_per_chunk(shape, itemsize, 0)
    return [slice(start, min(start + rows, shape[0])) for start in range(0, shape[0], rows)]
