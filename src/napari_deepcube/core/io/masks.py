"""Pixel masks from files: a label or boolean image (H, W) whose nonzero pixels are segmented.

TIFF (any label map, e.g. one written by ``deepcube segment``), ``.npy`` and
PNG (a greyscale or palette image painted in any editor) are read; the
values are checked by :func:`~napari_deepcube.core.selection.pixel_mask`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError
from ..selection import pixel_mask
from ._errors import reading
from .tiff import TIFF_ERRORS

#: File suffixes a mask may have.
MASK_SUFFIXES = (".tif", ".tiff", ".npy", ".png")


def read_mask(path: str | Path, image_shape: tuple[int, int]) -> np.ndarray:
    """The pixel mask (H, W) in ``path``: True where the image is nonzero.

    Raises
    ------
    InputError
        If the file is missing, of another format, unreadable, not a 2-D
        image of ``image_shape``, or has no nonzero pixel.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"the mask file {path} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix not in MASK_SUFFIXES:
        raise InputError(
            f"the mask {path.name} is not a {', '.join(MASK_SUFFIXES)} file; save it as a TIFF, "
            ".npy or PNG label image"
        )
    with reading(path, "a mask image", extra=TIFF_ERRORS):
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
        elif suffix == ".png":
            from PIL import Image  # a dependency of matplotlib, imported only for a PNG mask

            with Image.open(path) as image:
                values = np.asarray(image)
        else:
            values = tifffile.imread(path)
    return pixel_mask(values, image_shape, path.name)
