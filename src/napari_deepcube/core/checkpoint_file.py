"""What a saved model's file is called: checked before a run starts, without importing torch."""

from __future__ import annotations

import os
from pathlib import Path

SUFFIX = ".pt"


def model_file(path: str | os.PathLike[str]) -> Path:
    """The file :func:`~napari_deepcube.core.checkpoint.save_model` writes for ``path``: ``.pt`` added
    when missing."""
    path = Path(path)
    return path if path.suffix == SUFFIX else path.with_name(path.name + SUFFIX)
