"""Cluster colours shared by the napari layers, the plots and the exports."""

from __future__ import annotations

from functools import cache

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


#: Levels per sRGB channel of the candidate colours beyond the first twelve.
_GRID_LEVELS = 24
#: CIELAB lightness and chroma a candidate needs to show on napari's dark
#: canvas and on a white report page, and not to pass for grey (label 0's look).
_LIGHTNESS = (35.0, 88.0)
_MIN_CHROMA = 25.0


def label_colors(k: int) -> np.ndarray:
    """RGBA colours (k + 1, 4) for labels 0..k; label 0 (left out) is transparent.

    The first twelve are fixed; each next one is the candidate farthest, in
    CIELAB, from every colour before it (a Glasbey palette), so that colours
    stay as distinct as they can for any k and label i has the same colour
    whatever k is. The palette is built here rather than taken from the
    ``glasbey`` package, which would bring numba and colorspacious for a
    table of colours.
    """
    colors = np.zeros((k + 1, 4))
    colors[1:, :3] = _palette(k)
    colors[1:, 3] = 1.0
    return colors


def _palette(k: int) -> np.ndarray:
    """The first k colours (k, 3) of the palette."""
    if k <= len(_BASE):
        return _BASE[:k]
    return _extended(_extension_size(k))[:k]


def _extension_size(k: int) -> int:
    """Palettes are built in steps of 64 colours, so that one is built for a session, not one per k."""
    return -(-k // 64) * 64


@cache
def _extended(n: int) -> np.ndarray:
    """The base colours followed by greedy farthest-point picks in CIELAB, n in all."""
    levels = np.linspace(0.0, 1.0, _GRID_LEVELS)
    candidates = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = _srgb_to_lab(candidates)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    usable = (lab[:, 0] >= _LIGHTNESS[0]) & (lab[:, 0] <= _LIGHTNESS[1]) & (chroma >= _MIN_CHROMA)
    candidates, lab = candidates[usable], lab[usable]
    if n > candidates.shape[0]:
        raise ValueError(f"the palette has {candidates.shape[0]} colours, {n} asked for")
    chosen = [*_BASE]
    nearest = np.min(np.linalg.norm(lab[:, None, :] - _srgb_to_lab(_BASE)[None], axis=-1), axis=1)
    while len(chosen) < n:
        best = int(np.argmax(nearest))
        chosen.append(candidates[best])
        nearest = np.minimum(nearest, np.linalg.norm(lab - lab[best], axis=1))
    return np.array(chosen)


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB colours in [0, 1], shape (n, 3)."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array(
        [
            [0.4124564, 0.3575761, 0.1804375],
            [0.2126729, 0.7151522, 0.0721750],
            [0.0193339, 0.1191920, 0.9503041],
        ]
    )
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)
