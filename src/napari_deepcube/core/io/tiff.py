"""TIFF stacks: one page per channel, (C, H, W), as ImageJ and most tools save them.

The spectral axis is the one axis of the image series that is neither Y nor
X: the pages of a stack, or the samples of a many-sample (H, W, C) page. A
plain grey or RGB picture is not a cube, so napari keeps opening it itself.
:func:`write` stores the calibration as JSON in the ImageDescription tag,
which :func:`read` reads back.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tifffile

from ..cube import Datacube
from ..errors import InputError
from ..spectral import SpectralAxis
from ._build import build_cube
from ._calibration import spectral_from_named, spectral_record, to_json
from ._datasets import (
    DatasetInfo,
    check_array,
    dtype_name,
    is_cube,
    no_companion_images,
    no_default_dataset,
    refuse_dataset,
    resolve_axis,
)
from ._errors import reading
from ._lazy import resolve_lazy
from .outputs import atomic_write

SUFFIXES = (".tif", ".tiff")
#: Each cube in the file stands on its own: none is read for the whole file.
default_dataset = no_default_dataset
companion_images = no_companion_images
_WHAT = "a TIFF file"
_COLOUR = {tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.YCBCR, tifffile.PHOTOMETRIC.PALETTE}


class _Collect(logging.Handler):
    """Keeps tifffile's log records: it logs, rather than raises, on damaged page tables."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.messages.append(record.getMessage())


#: What tifffile lets through on a damaged file besides its TiffFileError (a
#: ValueError): arithmetic on zeroed tags, tags of the wrong type compared or
#: converted, empty strip tables indexed, pages that contradict the first one
#: ("incompatible keyframe"), and its own assertions on a page without a data
#: type. Caught only around calls into tifffile.
TIFF_ERRORS = (ZeroDivisionError, TypeError, IndexError, RuntimeError, AssertionError)


def check_tiff_name(path: str | Path, what: str) -> Path:
    """``path`` as a Path, or InputError naming ``what`` (the output) when it is no TIFF file name."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"{what}: written as a .tif file, got {path.name}; give a name ending in .tif")
    return path


def _damaged(path: Path, problem: str) -> InputError:
    return InputError(f"{path.name} is damaged or truncated ({problem}); copy or export it again")


@contextmanager
def _open(path: Path) -> Iterator[tifffile.TiffFile]:
    """Open ``path`` and fail on a damaged file instead of silently returning fewer pages."""
    logger = logging.getLogger("tifffile")
    collect = _Collect()
    logger.addHandler(collect)
    try:
        with reading(path, _WHAT, extra=TIFF_ERRORS):
            tif = tifffile.TiffFile(path)
        with tif:
            with reading(path, _WHAT, extra=TIFF_ERRORS):
                # Parses every page, so that damage is found here.
                shape = tuple(tif.series[0].shape) if tif.series else None
            if shape is None:
                raise InputError(
                    f"{path.name} holds no image: it is empty or damaged; copy or export it again"
                )
            if collect.messages:
                # tifffile starts its messages with an object's repr: "<tifffile.TiffPages @8> ...".
                raise _damaged(path, re.sub(r"^<[^>]*>\s*", "", collect.messages[0]))
            if not shape or 0 in shape:
                # A damaged page header can describe an image of no pixels.
                raise _damaged(path, f"its first image has shape {shape}")
            yield tif
    finally:
        logger.removeHandler(collect)


def _layout(tif: tifffile.TiffFile) -> tuple[tuple[int, ...], str, bool]:
    """Shape and axes of the first series, and whether it is a colour picture."""
    series = tif.series[0]
    colour = series.keyframe.photometric in _COLOUR and series.axes.endswith("S")
    return tuple(series.shape), series.axes, colour


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The stack as one entry, or nothing for a 2-D or colour image."""
    with _open(path) as tif:
        shape, _, colour = _layout(tif)
        dtype = tif.series[0].dtype
    info = DatasetInfo("", shape, dtype_name(dtype))
    return [info] if is_cube(info) and not colour else []


def _spectral_axis(axes: str) -> int:
    """The axis that is neither Y nor X; the first one when the axes say nothing."""
    others = [i for i, axis in enumerate(axes) if axis not in "YX"]
    return others[0] if len(others) == 1 else 0


def _description_spectral(path: Path, description: str) -> SpectralAxis | None:
    """Calibration from our JSON ImageDescription; other descriptions give None."""
    try:
        record = json.loads(description)
    except ValueError:
        return None
    return spectral_from_named(path, record, record.__getitem__) if isinstance(record, dict) else None


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """Read the first image series; memory-mapped when lazy (uncompressed files only)."""
    refuse_dataset(path, dataset)
    with _open(path) as tif:
        shape, axes, colour = _layout(tif)
        series = tif.series[0]
        if colour:
            raise InputError(
                f"{path.name} is a colour (RGB) picture of shape {shape}, not a spectral "
                "stack; open it as an image, or save one page per channel"
            )
        check_array(path, shape, series.dtype, what="the image")
        default = _spectral_axis(axes)
        axis = resolve_axis(path, shape, spectral_axis, default)
        nbytes = int(np.prod(shape)) * series.dtype.itemsize
        # tifffile finds a single contiguous block only in uncompressed files.
        mappable = series.dataoffset is not None
        use_lazy = resolve_lazy(
            path, nbytes, lazy, lazy_possible=mappable, why="the TIFF is compressed or tiled"
        )
        with reading(path, _WHAT, extra=TIFF_ERRORS):
            array = tifffile.memmap(path, mode="r") if use_lazy else series.asarray()
        array = array.reshape(shape)
        spectral = _description_spectral(path, series.keyframe.description or "")
    return build_cube(
        path,
        array,
        fmt="tiff",
        spectral_axis=axis,
        spectral=spectral if axis == default else None,
        metadata={"axes": axes},
    )


def write(path: Path, cube: Datacube) -> None:
    """Write ``cube`` as a (C, H, W) stack, one page per channel, calibration in JSON.

    The cube is loaded into memory to be transposed; write .npy or .zarr for
    cubes larger than memory.
    """
    stack = np.moveaxis(np.asarray(cube.data), -1, 0)
    description = to_json(spectral_record(cube))
    with atomic_write(path) as temp:
        # metadata=None stops tifffile adding its own shape JSON, so ours is the description.
        tifffile.imwrite(temp, stack, photometric="minisblack", description=description, metadata=None)
