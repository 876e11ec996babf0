"""Element and window maps as a TIFF stack: one float32 page per map.

Each page's line or window, the quantity (net counts, sum, mean) and the
spectral unit travel as JSON in the ImageDescription, with the software
version, so that a map read back says what it measures. Written atomically
(:func:`~.outputs.atomic_write`): an existing file is replaced only by a
complete one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..errors import InputError
from ._calibration import SOFTWARE, to_json
from ._errors import reading
from .outputs import atomic_write
from .tiff import TIFF_ERRORS

#: Key of the list of per-map descriptions in the JSON record.
MAPS_KEY = "maps"


def write_maps_tiff(path: str | Path, maps: np.ndarray, facts: Sequence[dict[str, Any]]) -> Path:
    """Write maps (n, H, W) as a float32 TIFF stack, atomically; returns the path.

    Parameters
    ----------
    path
        Destination ``.tif``.
    maps
        One (H, W) map per page.
    facts
        JSON-ready description of each map (:meth:`~..element_maps.MapWindow.facts`).

    Raises
    ------
    InputError
        If ``maps`` is not (n, H, W) with one description per map, or the
        file cannot be written.
    """
    path = Path(path)
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[0] != len(facts) or maps.shape[0] == 0:
        raise InputError(
            f"cannot write {path.name}: need maps of shape (n, H, W) with one description each, "
            f"got shape {maps.shape} and {len(facts)} descriptions"
        )
    record = {MAPS_KEY: list(facts), "software": SOFTWARE}
    with atomic_write(path) as temporary:
        # metadata=None keeps tifffile's own JSON out, so the description is ours.
        tifffile.imwrite(
            temporary, maps.astype(np.float32), photometric="minisblack",
            description=to_json(record), metadata=None,
        )
    return path


def read_maps_tiff(path: str | Path) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Read maps written by :func:`write_maps_tiff`: (n, H, W) float32 and each map's description.

    Raises
    ------
    InputError
        If the file is missing, not a TIFF, or holds no maps description.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist; check the path of the maps")
    with reading(path, "a TIFF of maps", extra=TIFF_ERRORS), tifffile.TiffFile(path) as tif:
        maps = tif.asarray()
        description = tif.series[0].keyframe.description or ""
    try:
        record = json.loads(description)
    except ValueError:
        record = None
    facts = record.get(MAPS_KEY) if isinstance(record, dict) else None
    if not isinstance(facts, list) or not facts:
        raise InputError(f"{path.name} holds no maps description; give a TIFF of maps this software wrote")
    return maps.reshape(len(facts), *maps.shape[-2:]), facts
