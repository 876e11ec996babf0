"""What the synthetic cubes share: the result type and small numerical helpers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.special import erf

from ..cube import Datacube
from ..errors import InputError

#: Pixels handled at a time when sampling noise or scoring classes: keeps the
#: temporaries near 16-64 MB whatever the cube size.
BLOCK_PIXELS = 4096


@dataclass(frozen=True)
class SyntheticCube:
    """A sample cube with its ground truth.

    Parameters
    ----------
    cube
        The datacube, (H, W, C) float32, with spectral values and unit.
    labels
        Ground truth, (H, W) uint8, classes numbered 1..k by decreasing size
        (ties by name).
    class_names
        Human name of each class; ``class_names[i]`` is label ``i + 1``.
    class_spectra
        (k, C) float64, the noise-free spectrum shape of each class, each row
        summing to 1: for the painting the mean expected spectrum of the class's
        pixels; for the nebula the emission-line spectrum per unit line flux
        (no continuum, no sky).
    noise
        ``"poisson"`` (photon counts) or ``"gaussian"`` (fluxes, can be negative).
    noise_sigma
        (C,) per-channel noise standard deviation for ``"gaussian"``, else None.
    description
        One paragraph saying what the cube shows and what makes it hard.
    nuisance_maps, nuisance_spectra
        Additive components that are not class-specific (stellar continuum, sky
        subtraction residuals), as low-rank factors: the cube's noise-free part
        is the class emission plus ``nuisance_maps @ nuisance_spectra``, with
        maps (H, W, r) and spectra (r, C). None for the painting.
    element_photons
        The true abundance of each element: the photons it emits at each pixel
        on average, (H, W) float32, by chemical symbol (``"scatter"`` for the
        scattered tube spectrum). The painting's; None for the nebula.
    """

    cube: Datacube
    labels: np.ndarray
    class_names: tuple[str, ...]
    class_spectra: np.ndarray
    noise: str
    noise_sigma: np.ndarray | None
    description: str
    nuisance_maps: np.ndarray | None = None
    nuisance_spectra: np.ndarray | None = None
    element_photons: dict[str, np.ndarray] | None = None

    @property
    def k(self) -> int:
        """Number of ground-truth classes."""
        return len(self.class_names)


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def check_image_size(height: int, width: int) -> None:
    if height < 16 or width < 16:
        raise InputError(
            f"a synthetic cube needs at least 16 x 16 pixels to hold its regions, "
            f"got {height} x {width}"
        )


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth random field with values in [-1, 1] (max |value| = 1), float32."""
    field = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field / np.abs(field).max()).astype(np.float32)


def binned_gaussians(
    edges: np.ndarray, centres: np.ndarray, sigmas: np.ndarray, fluxes: np.ndarray
) -> np.ndarray:
    """Sum of Gaussian lines integrated over each channel, shape (C,).

    Integrating (rather than sampling the density at channel centres) keeps
    each line's flux exact when a line is only 1-2 channels wide.
    """
    z = (edges[None, :] - centres[:, None]) / (np.sqrt(2.0) * sigmas[:, None])
    return fluxes @ (0.5 * np.diff(erf(z), axis=1))


def number_by_size(class_map: np.ndarray, names: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Renumber class indices 0..n-1 as labels 1..k by decreasing size, ties by name.

    Returns the uint8 label image and the names in label order. Classes with
    no pixel are dropped, so that labels stay 1..k without gaps.
    """
    sizes = np.bincount(class_map.ravel(), minlength=len(names))
    present = [i for i in range(len(names)) if sizes[i] > 0]
    order = sorted(present, key=lambda i: (-sizes[i], names[i]))
    lookup = np.zeros(len(names), dtype=np.uint8)
    lookup[order] = np.arange(1, len(order) + 1)
    return lookup[class_map], tuple(names[i] for i in order)


def class_means(labels: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Mean over each label's pixels of per-pixel rows ``values`` (P, M) -> (k, M)."""
    flat = labels.ravel().astype(np.intp) - 1
    sums = np.zeros((k, values.shape[1]))
    np.add.at(sums, flat, values)
    return sums / np.bincount(flat, minlength=k)[:, None]
