"""Writers for a segmentation's report (JSON), cluster spectra (CSV) and probability maps (TIFF)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from .outputs import atomic_write


def write_report(path: str | os.PathLike[str], report: dict[str, Any]) -> Path:
    """Write the JSON report atomically; returns the path."""
    path = Path(path)
    with atomic_write(path) as temporary:
        temporary.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


def write_spectra_csv(
    path: str | os.PathLike[str],
    spectral_values: np.ndarray,
    axis_title: str,
    curves: dict[str, np.ndarray],
) -> Path:
    """Write spectra as columns: the spectral axis, then one column per named curve.

    Parameters
    ----------
    path
        Target ``.csv`` file, written atomically.
    spectral_values
        (C,) spectral coordinate of each row.
    axis_title
        Header of the first column, with its unit, e.g. ``"Energy (keV)"``.
    curves
        Column name -> (C,) values, e.g. ``{"cluster 1 mean": ..., "cluster 1 std": ...}``.
    """
    path = Path(path)
    names = list(curves)
    columns = np.column_stack([spectral_values, *(curves[name] for name in names)])
    with (
        atomic_write(path) as temporary,
        temporary.open("w", newline="", encoding="utf-8") as handle,
    ):
        writer = csv.writer(handle)
        writer.writerow([axis_title, *names])
        writer.writerows([f"{value:.8g}" for value in row] for row in columns)
    return path


def write_probabilities_tiff(
    path: str | os.PathLike[str], probabilities: Any, metadata: dict[str, Any] | None = None
) -> Path:
    """Write each cluster's probability map as one float32 page of a TIFF, atomically.

    Parameters
    ----------
    path
        Target ``.tif`` file; it reads back as (k, H, W), page i for cluster i + 1.
    probabilities
        (H, W, k) probabilities, a numpy array or a dask array (read a page at a time).
    metadata
        JSON-serialisable facts written in the first page's description.
    """
    path = Path(path)
    description = json.dumps({**(metadata or {}), "pages": "probability of cluster 1, 2, ..."})
    with atomic_write(path) as temporary, tifffile.TiffWriter(temporary) as tiff:
        for cluster in range(probabilities.shape[-1]):
            page = np.asarray(probabilities[..., cluster], dtype=np.float32)
            tiff.write(page, description=description if cluster == 0 else None, metadata=None)
    return path
