"""Mean and spread of the spectra under a mask or a label map (numpy only, any thread).

The cube is read in bands of rows, so that a region of a lazy (disk-backed)
cube costs only the rows it covers, and a big eager cube never needs a
float64 copy of itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Values (pixels x channels) read at a time.
_BAND_VALUES = 1 << 22


@dataclass(frozen=True)
class SpectrumStats:
    """Mean and standard deviation of a set of spectra."""

    mean: np.ndarray
    std: np.ndarray
    n_pixels: int


def _bands(start: int, stop: int, row_values: int) -> Iterator[slice]:
    step = max(1, _BAND_VALUES // max(row_values, 1))
    for row in range(start, stop, step):
        yield slice(row, min(row + step, stop))


def mask_stats(cube: Any, mask: np.ndarray) -> SpectrumStats:
    """Statistics of the spectra of the pixels where ``mask`` is True.

    Parameters
    ----------
    cube
        (H, W, C) array, eager or lazy.
    mask
        (H, W) boolean.

    Returns
    -------
    SpectrumStats
        NaN spectra when the mask is empty.
    """
    n_channels = cube.shape[2]
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        empty = np.full(n_channels, np.nan)
        return SpectrumStats(empty, empty, 0)
    top, bottom = int(rows.min()), int(rows.max()) + 1
    left, right = int(cols.min()), int(cols.max()) + 1
    total = np.zeros(n_channels)
    squares = np.zeros(n_channels)
    for band in _bands(top, bottom, (right - left) * n_channels):
        inside = mask[band, left:right]
        if not inside.any():
            continue
        spectra = np.asarray(cube[band, left:right], dtype=np.float64)[inside]
        spectra = np.nan_to_num(spectra)
        total += spectra.sum(axis=0)
        squares += (spectra**2).sum(axis=0)
    mean = total / rows.size
    return SpectrumStats(mean, np.sqrt(np.maximum(squares / rows.size - mean**2, 0.0)), rows.size)


def labels_stats(cube: Any, labels: np.ndarray, k: int) -> list[SpectrumStats]:
    """Statistics of the spectra of labels 1..k, in one pass over the cube.

    Parameters
    ----------
    cube
        (H, W, C) array, eager or lazy.
    labels
        (H, W) integer map; 0 and labels above ``k`` are ignored.
    k
        Highest label.
    """
    height, width, n_channels = cube.shape
    total = np.zeros((k, n_channels))
    squares = np.zeros((k, n_channels))
    counts = np.zeros(k)
    for band in _bands(0, height, width * n_channels):
        flat = np.asarray(labels[band]).ravel().astype(np.intp)
        members = (flat > 0) & (flat <= k)
        if not members.any():
            continue
        spectra = np.nan_to_num(
            np.asarray(cube[band], dtype=np.float64).reshape(-1, n_channels)[members]
        )
        one_hot = np.zeros((spectra.shape[0], k))
        one_hot[np.arange(spectra.shape[0]), flat[members] - 1] = 1.0
        total += one_hot.T @ spectra
        squares += one_hot.T @ spectra**2
        counts += one_hot.sum(axis=0)
    safe = np.maximum(counts, 1.0)[:, None]
    mean = np.where(counts[:, None] > 0, total / safe, np.nan)
    std = np.sqrt(np.maximum(squares / safe - np.nan_to_num(mean) ** 2, 0.0))
    return [SpectrumStats(mean[i], std[i], int(counts[i])) for i in range(k)]
