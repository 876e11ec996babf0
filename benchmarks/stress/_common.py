"""What the stress generators share: the result type and spatial layouts.

These generators are written apart from ``napari_deepcube.core.synthetic`` on
purpose: each breaks one assumption of the method (a class is one spectrum
plus noise) in a way a real scan does, so that the method is judged on data it
was not designed around.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter


@dataclass(frozen=True)
class StressCube:
    """A generated cube with its ground truth.

    Attributes
    ----------
    data
        (H, W, C) the values an instrument would write (counts or fluxes).
    labels
        (H, W) int, the true class of each pixel, 1..k.
    spectral_values, spectral_unit
        The spectral axis: channel centres and their unit (keV, Angstrom, nm).
    description
        What the cube shows and which assumptions it breaks.
    variance
        (H, W, C) the true noise variance of every voxel, as a pipeline's
        variance cube (a MUSE STAT) gives it; None where the generator's
        noise is not Gaussian (photon counts).
    """

    data: np.ndarray
    labels: np.ndarray
    spectral_values: np.ndarray
    spectral_unit: str
    description: str
    variance: np.ndarray | None = None

    def datacube(self, name: str):
        """The cube as the package's :class:`~napari_deepcube.core.cube.Datacube`, with its variances."""
        from napari_deepcube.core.cube import Datacube

        return Datacube.from_array(
            self.data,
            spectral_values=self.spectral_values,
            spectral_unit=self.spectral_unit,
            name=name,
            variance=self.variance,
        )


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """A smooth random field in [0, 1] whose features are about ``scale`` pixels across."""
    field = gaussian_filter(rng.standard_normal(shape), scale, mode="wrap")
    low, high = np.percentile(field, [1, 99])
    return np.clip((field - low) / (high - low), 0.0, 1.0)


def warped_regions(rng: np.random.Generator, shape: tuple[int, int], shares: np.ndarray) -> np.ndarray:
    """A partition of the image into ``len(shares)`` regions of about those shares of the pixels.

    Regions are the cells of a weighted Voronoi diagram on seeds scattered over
    the image, with boundaries bent by a smooth random field (brush strokes and
    clouds have no straight edges); each class may own several cells. The
    weights are adjusted until every class has its share within a few percent.
    """
    n_classes = len(shares)
    n_seeds = 3 * n_classes
    seeds = rng.uniform(0, 1, size=(n_seeds, 2)) * np.array(shape)
    owner = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, n_seeds - n_classes)])
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    bend = 0.15 * max(shape)
    rows = rows + bend * (smooth_field(rng, shape, max(shape) / 10) - 0.5)
    cols = cols + bend * (smooth_field(rng, shape, max(shape) / 10) - 0.5)
    distance = np.hypot(rows[..., None] - seeds[:, 0], cols[..., None] - seeds[:, 1])
    offset = np.zeros(n_classes)
    for step in 0.4 * max(shape) * 0.96 ** np.arange(120):
        cell = np.argmin(distance - offset[owner], axis=-1)
        labels = owner[cell]
        got = np.bincount(labels.ravel(), minlength=n_classes) / labels.size
        offset += step * (shares - got)
    return labels + 1


def blob(rng: np.random.Generator, shape: tuple[int, int], n_pixels: int, avoid: np.ndarray) -> np.ndarray:
    """A compact irregular patch of about ``n_pixels`` pixels, away from the ``avoid`` mask's edge."""
    score = gaussian_filter(rng.standard_normal(shape), 2.0)
    centre = np.array([rng.uniform(0.2, 0.8) * shape[0], rng.uniform(0.2, 0.8) * shape[1]])
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    score = -np.hypot(rows - centre[0], cols - centre[1]) + 3.0 * score / score.std()
    score[avoid] = -np.inf
    threshold = np.sort(score.ravel())[-n_pixels]
    return score >= threshold


def class_shares(rng: np.random.Generator, n_classes: int) -> np.ndarray:
    """Unequal class sizes: a few large classes and several small ones, as on real scans."""
    shares = rng.dirichlet(np.full(n_classes, 1.2))
    shares = np.maximum(shares, 0.03)
    return shares / shares.sum()
