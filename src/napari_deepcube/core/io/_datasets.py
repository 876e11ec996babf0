"""The arrays inside a container file: what they are, which one is the cube, which axis is spectral."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import InputError


class DatasetInfo(NamedTuple):
    """One array inside a file: its path in the file, shape and dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str


class CompanionImage(NamedTuple):
    """A 2-D image stored beside a spectrum image (electron image, white-light image).

    ``data`` is (h, w), or (h, w, 3) for colour; ``scale`` and ``translate``
    place its pixels on the cube's pixel grid, (row, column).
    """

    name: str
    data: np.ndarray
    scale: tuple[float, float]
    translate: tuple[float, float]


def no_companion_images(path: Path) -> list[CompanionImage]:
    """No images: the file holds cubes only (``companion_images`` of most formats)."""
    return []


def no_default_dataset(datasets: Sequence[DatasetInfo]) -> str | None:
    """None: each cube in the file stands on its own (``default_dataset`` of most formats)."""
    return None


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
