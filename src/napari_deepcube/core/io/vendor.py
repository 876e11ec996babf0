"""Instrument files, read through RosettaSciIO: Bruker .bcf, JEOL .pts, Renishaw .wdf, Ripple, Delmic...

RosettaSciIO (the readers behind HyperSpy, GPL-3.0+) is an optional
dependency, the ``vendor`` extra, imported only when one of these files is
opened, so that napari-deepcube itself stays BSD-licensed. It returns every
signal in a file with HyperSpy's description of its axes. The cube is the
signal with two navigation axes and one signal axis (a spectrum image), its
spectral axis calibrated from the file (keV for EDS, nm or 1/cm for Raman and
cathodoluminescence). The file's 2-D images (an electron image, a white-light
image) come with it as :class:`CompanionImage`, placed on the cube's pixel
grid. A single spectrum (Bruker .spx, EMSA) is not a spectrum image and is
refused. Cubes are read lazily where RosettaSciIO can (Bruker .bcf, JEOL .pts,
Ripple, EMD...), and when ``lazy=None`` only if they are large.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import h5py
import numpy as np

from ..cube import Datacube
from ..errors import InputError
from ._build import INPUT_FILES, build_cube
from ._calibration import hyperspy_axis, hyperspy_spectral_index
from ._datasets import CompanionImage, DatasetInfo, dtype_name, pick_dataset, resolve_axis
from ._decoded import decoded_once
from ._errors import VENDOR_EXTRA, import_optional, reading
from ._lazy import resolve_lazy

#: The RosettaSciIO plugin that reads each suffix, and the format's name for messages.
_PLUGINS: dict[str, tuple[str, str]] = {
    ".bcf": ("bruker", "a Bruker Esprit file"),
    ".spx": ("bruker", "a Bruker spectrum"),
    ".pts": ("jeol", "a JEOL Analysis Station file"),
    ".wdf": ("renishaw", "a Renishaw WiRE file"),
    ".rpl": ("ripple", "a Ripple (Lispix) file"),
    ".dm3": ("digitalmicrograph", "a DigitalMicrograph file"),
    ".dm4": ("digitalmicrograph", "a DigitalMicrograph file"),
    ".emd": ("emd", "an EMD (Velox or Berkeley) file"),
    ".spd": ("edax", "an EDAX file"),
    ".elid": ("phenom", "a Phenom ELID file"),
    ".ser": ("tia", "a FEI TIA file"),
    ".emi": ("tia", "a FEI TIA file"),
    ".msa": ("msa", "an EMSA spectrum"),
    ".emsa": ("msa", "an EMSA spectrum"),
}
_DELMIC = ("delmic", "a Delmic HDF5 file")
#: Plugins whose lazy arrays decode the file's X-ray events on every read: a lazy
#: cube from them is decoded once into a temporary file (:mod:`._decoded`).
_DECODED_ON_EVERY_READ = ("bruker", "jeol")
SUFFIXES = tuple(_PLUGINS)
_RIPPLE_DATA = ".raw"
_PACKAGE = "rosettasciio"


class _Signal(NamedTuple):
    """One signal of a file as RosettaSciIO returns it."""

    name: str
    data: Any
    axes: list[dict[str, Any]]

    @property
    def n_signal_axes(self) -> int:
        return sum(1 for axis in self.axes if axis.get("navigate") is False)

    @property
    def is_spectrum_image(self) -> bool:
        return np.ndim(self.data) == 3 and self.n_signal_axes == 1

    def info(self) -> DatasetInfo:
        return DatasetInfo(self.name, tuple(self.data.shape), dtype_name(self.data.dtype))


def is_delmic(path: Path) -> bool:
    """Whether an HDF5 file is a Delmic acquisition (its SVIData name Delmic as the writer)."""
    try:
        with h5py.File(path, "r") as file:
            company = file.get("Acquisition0/SVIData/Company")
            return company is not None and b"delmic" in bytes(np.asarray(company[()]).tobytes()).lower()
    except (OSError, ValueError, RuntimeError, KeyError, TypeError):  # h5py on any file that is not this
        return False


def ripple_header(path: Path) -> Path | None:
    """The Ripple .rpl header of a .raw data file, when there is one beside it."""
    if path.suffix.lower() != _RIPPLE_DATA:
        return None
    header = path.with_suffix(".rpl")
    return header if header.is_file() else None


def _plugin(path: Path) -> tuple[str, str]:
    """RosettaSciIO plugin name and format name for ``path``."""
    plugin = _PLUGINS.get(path.suffix.lower())
    return plugin if plugin is not None else _DELMIC


@contextmanager
def _rsciio_quiet() -> Iterator[None]:
    """Keep RosettaSciIO's log warnings (optional packages such as lumispy missing) off the terminal."""
    logger = logging.getLogger("rsciio")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _module(path: Path) -> ModuleType:
    name, _ = _plugin(path)
    return import_optional(path, f"rsciio.{name}", _PACKAGE, VENDOR_EXTRA)


#: The last file parsed, by (path, size, modification time): napari asks for the
#: datasets, then for the cube and the images, and a JEOL .pts takes seconds to parse.
_parsed: dict[tuple[str, int, int, bool], list[_Signal]] = {}


def _signals(path: Path, *, lazy: bool) -> list[_Signal]:
    """Every signal in the file, lazily where the format allows it."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, lazy)
    if key in _parsed:
        return _parsed[key]
    module = _module(path)
    _, what = _plugin(path)
    with _rsciio_quiet(), reading(path, what, extra=(Exception,)):
        # Every exception raised inside RosettaSciIO's reader is about this file:
        # the call holds none of our code, so none of our bugs can hide behind it.
        try:
            found = module.file_reader(os.fspath(path), lazy=lazy)
        except NotImplementedError:  # the format has no lazy reader
            found = module.file_reader(os.fspath(path), lazy=False)
        except ImportError as exc:  # a package a plugin imports only when it reads
            raise InputError(
                f"{path.name}: reading {what} needs the optional package {exc.name!r}; install it "
                f"with `pip install napari-deepcube[{VENDOR_EXTRA}]`"
            ) from exc
    signals = [_Signal(_title(s, i), s["data"], list(s["axes"])) for i, s in enumerate(found)]
    _parsed.clear()
    _parsed[key] = signals
    return signals


def _title(signal: dict[str, Any], index: int) -> str:
    """A name for a signal: its title, made unique by its position."""
    title = str(signal.get("metadata", {}).get("General", {}).get("title", "") or "").strip()
    return f"{index}: {title}" if title else str(index)


def _spectrum_images(path: Path, signals: list[_Signal]) -> list[_Signal]:
    cubes = [s for s in signals if s.is_spectrum_image]
    if cubes:
        return cubes
    spectra = [s for s in signals if np.ndim(s.data) == 1]
    if spectra:
        raise InputError(
            f"{path.name} holds a single spectrum ({spectra[0].data.shape[0]} channels), not a "
            "spectrum image; segmentation needs a map, so open the spectrum image (e.g. the .bcf) "
            "it was taken from"
        )
    found = ", ".join(f"{s.data.shape}" for s in signals) or "nothing"
    raise InputError(
        f"{path.name} holds no spectrum image (two spatial axes and one spectral axis), only "
        f"signals of shape {found}; open a spectrum image recorded as a map"
    )


def list_datasets(path: Path) -> list[DatasetInfo]:
    """The spectrum images in the file (usually one), named by their position and title."""
    path = ripple_header(path) or path
    return [s.info() for s in _spectrum_images(path, _signals(path, lazy=True))]


def default_dataset(datasets: Sequence[DatasetInfo]) -> str | None:
    """The first spectrum image: a file holds one, with images that only go with it."""
    return datasets[0].name if datasets else None


def read(path: Path, *, dataset: str | None, spectral_axis: int | None, lazy: bool | None) -> Datacube:
    """The file's spectrum image (or the one named ``dataset``), spectral axis from the file."""
    given = path
    path = ripple_header(path) or path
    cubes = _spectrum_images(path, _signals(path, lazy=lazy is not False))
    chosen_info = pick_dataset(path, [c.info() for c in cubes], dataset)
    chosen = next(c for c in cubes if c.name == chosen_info.name)
    default = hyperspy_spectral_index(chosen.axes)
    axis = resolve_axis(path, chosen_info.shape, spectral_axis, default)
    # Every axis is calibrated, so an overridden spectral axis still gets coordinates.
    calibration = hyperspy_axis(path, chosen.axes[axis], axis, chosen_info.shape[axis])
    array = chosen.data
    plugin, what = _plugin(path)
    if not isinstance(array, np.ndarray):  # RosettaSciIO's lazy answer is a dask array
        nbytes = math.prod(chosen_info.shape) * np.dtype(array.dtype).itemsize
        if not resolve_lazy(path, nbytes, lazy):
            with reading(path, what, extra=(Exception,)):
                array = array.compute()
        elif plugin in _DECODED_ON_EVERY_READ:
            array = decoded_once(array, path, what) or array
    elif lazy:
        resolve_lazy(path, 0, True, lazy_possible=False, why=f"RosettaSciIO reads {what} whole")
    companions = [s for s in (path, given, path.with_suffix(_RIPPLE_DATA)) if s != path and s.exists()]
    return build_cube(
        path,
        array,
        fmt=f"rsciio-{_plugin(path)[0]}",
        spectral_axis=axis,
        spectral=calibration,
        metadata={
            "dataset": chosen.name,
            "axes": [_plain_axis(a) for a in chosen.axes],
            INPUT_FILES: sorted({str(p) for p in companions}),
        },
    )


def _plain_axis(axis: dict[str, Any]) -> dict[str, Any]:
    """An axis description with plain JSON values (the coordinates of a non-uniform axis left out)."""
    plain: dict[str, Any] = {}
    for key in ("name", "units", "size", "scale", "offset", "navigate"):
        value = axis.get(key)
        if isinstance(value, np.generic):
            value = value.item()
        elif value is not None and not isinstance(value, bool | int | float | str):
            value = float(value)  # e.g. the Fraction Renishaw gives as a scale
        plain[key] = value
    return plain


def companion_images(path: Path) -> list[CompanionImage]:
    """The 2-D images stored with the file's spectrum image, placed on its pixel grid."""
    path = ripple_header(path) or path
    signals = _signals(path, lazy=True)
    cube = _spectrum_images(path, signals)[0]
    grid = [a for a in cube.axes if a.get("navigate") is not False]
    images = []
    for signal in signals:
        if np.ndim(signal.data) != 2:
            continue
        with reading(path, _plugin(path)[1], extra=(Exception,)):
            data = np.asarray(signal.data)
        if data.dtype.names is not None:  # colour stored as (R, G, B) records
            data = np.stack([data[name] for name in data.dtype.names[:3]], axis=-1)
        scale, translate = _placement(signal.axes, grid)
        images.append(CompanionImage(signal.name, data, scale, translate))
    return images


def _placement(
    axes: list[dict[str, Any]], grid: list[dict[str, Any]]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Scale and offset of an image's pixels in cube pixels, from both calibrations.

    Where units differ or a scale is missing, the image is stretched over the
    cube instead.
    """
    scale: list[float] = []
    translate: list[float] = []
    for image_axis, cube_axis in zip(axes, grid, strict=True):
        image_step, cube_step = image_axis.get("scale"), cube_axis.get("scale")
        if image_step and cube_step and image_axis.get("units") == cube_axis.get("units"):
            scale.append(float(image_step) / float(cube_step))
            origin = float(image_axis.get("offset") or 0.0) - float(cube_axis.get("offset") or 0.0)
            translate.append(origin / float(cube_step))
        else:
            scale.append(float(cube_axis["size"]) / float(image_axis["size"]))
            translate.append(0.0)
    return (scale[0], scale[1]), (translate[0], translate[1])
