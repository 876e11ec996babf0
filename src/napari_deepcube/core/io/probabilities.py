"""Per-cluster probability maps as a float32 multi-page TIFF, exported beside a label map.

Page i is the (H, W) posterior probability of cluster i + 1, so the file is
the (k, H, W) stack image software opens as one image per cluster. Pages are
written one at a time, so a map kept on disk (a dask array, see
:mod:`..pixel_maps`) is never read whole. The JSON description names each
page's cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..errors import InputError
from ..pixel_maps import PixelMap
from ._calibration import SOFTWARE, to_json
from .outputs import atomic_write
from .tiff import check_tiff_name

#: What the description says the file holds.
KIND = "cluster probabilities"


def check_probabilities_path(path: str | Path) -> Path:
    """``path`` as a Path, or InputError when it is no TIFF name."""
    return check_tiff_name(path, "the probability maps")


def write_probabilities_tiff(
    path: str | Path, probabilities: PixelMap, *, metadata: dict[str, Any] | None = None
) -> Path:
    """Write (H, W, k) probabilities as k float32 pages, atomically; returns the path.

    Parameters
    ----------
    path
        Destination ``.tif``.
    probabilities
        (H, W, k) posterior probability of each cluster: numpy, or a dask
        array read one cluster at a time.
    metadata
        JSON-serialisable facts to keep beside the cluster names (k, the cube...).

    Raises
    ------
    InputError
        If ``path`` is no TIFF name, the maps are not (H, W, k), or the file
        cannot be written.
    """
    path = check_probabilities_path(path)
    if len(probabilities.shape) != 3 or min(probabilities.shape) < 1:
        raise InputError(
            f"cannot write {path.name}: probabilities must be (H, W, k), got {probabilities.shape}"
        )
    height, width, k = probabilities.shape
    record = {
        **(metadata or {}),
        "kind": KIND,
        "k": k,
        "pages": [f"cluster {index + 1}" for index in range(k)],
        "software": SOFTWARE,
    }
    pages = (np.asarray(probabilities[..., index], dtype=np.float32) for index in range(k))
    with atomic_write(path) as temporary:
        # metadata=None keeps tifffile's own JSON out, so the description is ours.
        tifffile.imwrite(
            temporary, pages, shape=(k, height, width), dtype=np.float32,
            photometric="minisblack", description=to_json(record), metadata=None,
        )
    return path
