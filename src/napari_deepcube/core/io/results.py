"""Writers for a segmentation's report (JSON) and cluster spectra (CSV)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

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
