"""Label maps as TIFF: what a segmentation exports for reports and other software.

The (H, W) map is uint8 when every label is below 256, else uint16; 0 marks
pixels left out. With colours, a uint8 map carries them as a TIFF palette, so
that image viewers show the classes in colour. The metadata (k, class names,
spectral unit...) and the colours travel as JSON in the ImageDescription,
with the software version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..errors import InputError
from ._calibration import SOFTWARE, to_json
from ._errors import reading
from .outputs import atomic_write
from .tiff import SUFFIXES, TIFF_ERRORS

COLORS_KEY = "colors"
_PALETTE_SIZE = 256
#: How our JSON record starts the value of its ``software`` key.
_OUR_SOFTWARE = SOFTWARE.split()[0]


def _label_dtype(path: Path, labels: np.ndarray) -> np.dtype:
    """uint8 or uint16, the smallest that holds every label."""
    if labels.ndim != 2 or labels.dtype.kind not in "biu":
        raise InputError(
            f"cannot write {path.name}: a label map must be a 2-D integer array, got "
            f"{labels.ndim}-D {labels.dtype}; pass the (H, W) labels of a segmentation"
        )
    if labels.size == 0:
        raise InputError(f"cannot write {path.name}: the label map {labels.shape} has no pixel")
    if labels.min() < 0:
        raise InputError(
            f"cannot write {path.name}: a label map cannot hold negative labels; use 0 for pixels left out"
        )
    top = int(labels.max())
    if top >= 2**16:
        raise InputError(
            f"cannot write {path.name}: label {top} does not fit in 16 bits; renumber the labels 1..k"
        )
    return np.dtype(np.uint8 if top < 256 else np.uint16)


def _colours_uint8(path: Path, colors: Any) -> np.ndarray:
    """Colours (n, 3 or 4), floats in [0, 1] or integers in [0, 255], as uint8 RGB."""
    colors = np.asarray(colors)
    if colors.ndim != 2 or colors.shape[1] not in (3, 4):
        raise InputError(
            f"cannot write {path.name}: colours must have shape (n, 3) or (n, 4) (RGB or RGBA "
            f"per label), got {colors.shape}"
        )
    rgb = colors[:, :3]
    if rgb.dtype.kind == "f":
        rgb = np.rint(np.clip(rgb, 0.0, 1.0) * 255)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _palette(rgb: np.ndarray) -> np.ndarray:
    """A 3 x 256 uint16 TIFF colour map: row i of ``rgb`` for label i, black beyond."""
    palette = np.zeros((3, _PALETTE_SIZE), dtype=np.uint16)
    count = min(len(rgb), _PALETTE_SIZE)
    palette[:, :count] = rgb[:count].T.astype(np.uint16) * 257  # 0..255 -> 0..65535
    return palette


def write_labels_tiff(
    path: str | Path,
    labels: np.ndarray,
    *,
    colors: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write a label map as a TIFF, atomically.

    Parameters
    ----------
    path
        Destination ``.tif``.
    labels
        (H, W) non-negative integers, 0 for pixels left out.
    colors
        Optional colour of each label, row i for label i (row 0 for label 0):
        shape (n, 3) or (n, 4), floats in [0, 1] (napari's) or integers in
        [0, 255]. Written as a palette when the map is uint8.
    metadata
        JSON-serialisable facts (k, class names, spectral unit...).

    Raises
    ------
    InputError
        If the labels are not a 2-D map of non-negative integers below 65536,
        the colours have the wrong shape, or the file cannot be written.
    """
    path = Path(path)
    labels = np.asarray(labels)
    dtype = _label_dtype(path, labels)
    record = {**(metadata or {}), "software": SOFTWARE}
    options: dict[str, Any] = {"photometric": "minisblack"}
    if colors is not None:
        rgb = _colours_uint8(path, colors)
        record[COLORS_KEY] = rgb.tolist()
        if dtype == np.uint8:
            options = {"photometric": "palette", "colormap": _palette(rgb)}
    with atomic_write(path) as temp:
        # metadata=None keeps tifffile's own JSON out, so the description is ours.
        tifffile.imwrite(temp, labels.astype(dtype), description=to_json(record), metadata=None, **options)


def read_labels_tiff(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a label map written by :func:`write_labels_tiff`.

    Returns
    -------
    labels : numpy.ndarray
        The (H, W) map, uint8 or uint16.
    metadata : dict
        The JSON metadata; ``colors``, when present, as a (n, 3) uint8 array.
        Empty for a TIFF written by other software without JSON.

    Raises
    ------
    InputError
        If the file is missing, not a TIFF, or not a 2-D map.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist; check the path of the label map")
    with reading(path, "a TIFF label map", extra=TIFF_ERRORS), tifffile.TiffFile(path) as tif:
        labels = tif.asarray()
        description = tif.series[0].keyframe.description or ""
    if labels.ndim != 2:
        raise InputError(
            f"{path.name} holds an image of shape {labels.shape}, not a 2-D label map; "
            "give a TIFF written by `deepcube segment` or write_labels_tiff"
        )
    try:
        record = json.loads(description)
    except ValueError:
        record = {}
    metadata = record if isinstance(record, dict) else {}
    if COLORS_KEY in metadata:
        metadata[COLORS_KEY] = np.asarray(metadata[COLORS_KEY], dtype=np.uint8)
    return labels, metadata


def is_label_map_tiff(path: str | Path) -> bool:
    """Whether ``path`` is a label map this plugin wrote (:func:`write_labels_tiff`).

    Reads only the header: a 2-D integer image whose JSON description names
    this software. A cube this software wrote is a 3-D stack, and is told
    apart by its shape.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES or not path.is_file():
        return False
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, dtype = series.shape, series.dtype
            description = series.keyframe.description or ""
    except (*TIFF_ERRORS, OSError, ValueError, IndexError):
        return False
    if len(shape) != 2 or np.dtype(dtype).kind not in "iu":
        return False
    try:
        record = json.loads(description)
    except ValueError:
        return False
    software = record.get("software") if isinstance(record, dict) else None
    return isinstance(software, str) and software.split()[:1] == [_OUR_SOFTWARE]
