"""Cluster colours shared by the napari layers, the plots and the exports."""

from __future__ import annotations

import numpy as np

# Tableau-like colours, distinct on a dark (napari) and a white (report) background.
_BASE = np.array(
    [
        [0.122, 0.467, 0.706],
        [1.000, 0.498, 0.055],
        [0.173, 0.627, 0.173],
        [0.839, 0.153, 0.157],
        [0.580, 0.404, 0.741],
        [0.549, 0.337, 0.294],
        [0.890, 0.467, 0.761],
        [0.737, 0.741, 0.133],
        [0.090, 0.745, 0.812],
        [0.682, 0.780, 0.910],
        [1.000, 0.733, 0.471],
        [0.596, 0.875, 0.541],
    ]
)


def label_colors(k: int) -> np.ndarray:
    """RGBA colours (k + 1, 4) for labels 0..k; label 0 (left out) is transparent.

    The first twelve are fixed; more are spread around the hue circle with a
    fixed seed, so the same label always has the same colour.
    """
    colors = np.zeros((k + 1, 4))
    n_base = min(k, len(_BASE))
    colors[1 : n_base + 1, :3] = _BASE[:n_base]
    if k > len(_BASE):
        rng = np.random.default_rng(0)
        colors[len(_BASE) + 1 :, :3] = rng.uniform(0.25, 0.95, size=(k - len(_BASE), 3))
    colors[1:, 3] = 1.0
    return colors
