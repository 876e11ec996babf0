"""Every pixel's latent vector projected to 2-D, drawn as a density image, and hit-tested.

What the embedding view shows and how it links back to the image:

- :func:`project_latents` places each pixel that has a latent vector (the
  segmented pixels; latents are NaN where a pixel was left out) at a 2-D
  point. By default on the first two principal axes of the latents, fitted
  on at most :data:`PCA_FIT_SAMPLE` pixels: a linear map, the same for every
  pixel, fast for millions of pixels. On request, UMAP (when the ``umap``
  package is installed) or t-SNE (scikit-learn): both cost far more than
  linear in the pixels, so they embed a random sample of
  :data:`NONLINEAR_SAMPLE` pixels and every other pixel is placed at the
  inverse-distance-weighted mean of the 2-D points of its
  :data:`PLACEMENT_NEIGHBOURS` nearest sampled pixels in latent space: a
  pixel lands among the sampled pixels whose latents resemble its own, and
  the same pixel lands at the same place whatever else is in the sample.
- :func:`density_image` turns a million points into one RGBA image: a 2-D
  histogram in which each bin takes the mean colour of its points' clusters
  and an opacity that grows with the logarithm of its count, so single
  pixels stay visible beside dense cores.
- :class:`Projection` answers the two questions that link the plot and the
  image: which pixels lie inside a lasso polygon or a rectangle drawn on the
  plot, and where a given pixel lies on it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

import numpy as np
from matplotlib.path import Path

from .errors import InputError
from .pixel_maps import PixelMap

#: The projections, by key: what the user picks.
Method = Literal["pca", "umap", "tsne"]
#: Each projection's name, as the widget offers it.
METHOD_NAMES: dict[str, str] = {"pca": "principal axes", "umap": "UMAP", "tsne": "t-SNE"}
#: Each projection's axes, as the plot labels them (with their number).
AXIS_NAMES: dict[str, str] = {"pca": "principal axis", "umap": "UMAP", "tsne": "t-SNE"}
#: Pixels the principal axes are fitted on, at most (a random sample above): the
#: axes of a few hundred thousand latents are those of all of them.
PCA_FIT_SAMPLE = 200_000
#: Rows of latents read at once, and summed at once into their covariance.
_BLOCK = 65_536
#: Pixels UMAP or t-SNE embed themselves, at most; the others are placed by their neighbours.
NONLINEAR_SAMPLE = 5_000
#: Sampled neighbours (in latent space) whose points place a pixel outside the sample.
PLACEMENT_NEIGHBOURS = 5
#: Histogram bins per axis of the density image: about two per pixel along a side of
#: the image when it is square, within these bounds (a few points in many bins
#: would vanish; more than a screen's pixels would only cost time).
MIN_BINS, MAX_BINS = 64, 512
#: Opacity that even a bin of one point exceeds; the densest bin is opaque.
MIN_OPACITY = 0.35


@dataclass(frozen=True, eq=False)
class Projection:
    """2-D points of an image's pixels, and the way back from points to pixels.

    Attributes
    ----------
    points
        (n, 2) float32 coordinates of the projected pixels.
    pixels
        (n,) flat index, in the (H, W) image, of the pixel of each point.
    image_shape
        (H, W) of the image.
    method
        How the points were computed (``"pca"``, ``"umap"``, ``"tsne"``).
    embedded
        How many pixels the method embedded itself; the others (UMAP, t-SNE)
        were placed by their sampled neighbours.
    explained
        Fraction of the latents' variance along the two principal axes (None
        for UMAP and t-SNE, which have no such number).
    """

    points: np.ndarray
    pixels: np.ndarray
    image_shape: tuple[int, int]
    method: str
    embedded: int
    explained: float | None = None

    @property
    def n_points(self) -> int:
        """Number of projected pixels."""
        return int(self.pixels.size)

    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) around every point, with a 2 % margin."""
        if self.n_points == 0:
            return 0.0, 1.0, 0.0, 1.0
        low, high = self.points.min(axis=0).astype(np.float64), self.points.max(axis=0).astype(np.float64)
        margin = np.maximum((high - low) * 0.02, 1e-6)
        low, high = low - margin, high + margin
        return float(low[0]), float(high[0]), float(low[1]), float(high[1])

    def values_at_points(self, image: np.ndarray) -> np.ndarray:
        """The value of an (H, W) image (a label map) at each point's pixel."""
        if image.shape != self.image_shape:
            raise ValueError(f"an image of {image.shape} for points of a {self.image_shape} image")
        return np.asarray(image).reshape(-1)[self.pixels]

    def pixels_where(self, inside: np.ndarray) -> np.ndarray:
        """(H, W) bool image, True at the pixels of the points where ``inside`` (n,) is True."""
        mask = np.zeros(self.image_shape[0] * self.image_shape[1], dtype=bool)
        mask[self.pixels[inside]] = True
        return mask.reshape(self.image_shape)

    def in_polygon(self, vertices: np.ndarray) -> np.ndarray:
        """(H, W) bool image of the pixels whose points lie inside a polygon (m, 2) of the plot."""
        vertices = np.asarray(vertices, dtype=np.float64)
        if vertices.ndim != 2 or vertices.shape[0] < 3 or vertices.shape[1] != 2:
            return np.zeros(self.image_shape, dtype=bool)
        return self.pixels_where(Path(vertices).contains_points(self.points))

    def in_rectangle(self, x: tuple[float, float], y: tuple[float, float]) -> np.ndarray:
        """(H, W) bool image of the pixels whose points lie in [x0, x1] x [y0, y1] (either order)."""
        (x0, x1), (y0, y1) = sorted(x), sorted(y)
        px, py = self.points[:, 0], self.points[:, 1]
        return self.pixels_where((px >= x0) & (px <= x1) & (py >= y0) & (py <= y1))

    def point_of(self, row: int, col: int) -> np.ndarray | None:
        """The (x, y) point of pixel (row, col), None when it has none (left out, or outside)."""
        height, width = self.image_shape
        if not (0 <= row < height and 0 <= col < width):
            return None
        found = np.searchsorted(self.pixels, row * width + col)
        if found < self.n_points and self.pixels[found] == row * width + col:
            return self.points[found].astype(np.float64)
        return None


def available_methods() -> list[str]:
    """The projections this installation can compute: UMAP only where ``umap`` is installed."""
    return [m for m in METHOD_NAMES if m != "umap" or importlib.util.find_spec("umap") is not None]


def project_latents(latents: PixelMap, method: str = "pca", *, seed: int = 0) -> Projection:
    """Project every pixel that has a latent vector to 2-D.

    Parameters
    ----------
    latents
        (H, W, D) latent vectors, NaN (in any dimension) where a pixel has none:
        in memory, or a dask array over the run's on-disk maps.
    method
        ``"pca"`` (the first two principal axes), ``"umap"`` or ``"tsne"``
        (on a sample, the other pixels placed by their neighbours; see the
        module's docstring).
    seed
        Seed of the samples and of UMAP's and t-SNE's random starts: the same
        latents and seed give the same points.

    Returns
    -------
    Projection
        Points in the order of the pixels' flat indices.

    Raises
    ------
    InputError
        An unknown method, or UMAP asked for where it is not installed.
    """
    if latents.ndim != 3:
        raise ValueError(f"latents must be (H, W, D), got shape {latents.shape}")
    if method not in METHOD_NAMES:
        raise InputError(f"unknown projection {method!r}: choose one of {', '.join(METHOD_NAMES)}")
    if method not in available_methods():
        raise InputError("UMAP needs the umap-learn package: pip install umap-learn, or choose pca or tsne")
    height, width, _ = latents.shape
    pixels, vectors = _valid_vectors(latents)
    rng = np.random.default_rng(seed)
    explained = None
    if method == "pca":
        points, explained = _principal_points(vectors, rng)
        embedded = pixels.size
    else:
        points, embedded = _nonlinear_points(vectors, method, rng, seed)
    return Projection(points.astype(np.float32), pixels, (height, width), method, embedded, explained)


def _valid_vectors(latents: PixelMap) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices and float32 latent vectors of the pixels that have one, read band by band.

    Band by band so that latents on disk (a dask array, for a cube read
    lazily) are read once, and no float64 copy of the whole map is made.
    """
    height, width, dims = latents.shape
    rows = max(1, _BLOCK // max(width, 1))
    pixels, vectors = [], []
    for top in range(0, height, rows):
        band = np.asarray(latents[top : top + rows], dtype=np.float32).reshape(-1, dims)
        valid = np.isfinite(band).all(axis=1)
        pixels.append(np.flatnonzero(valid) + top * width)
        vectors.append(band[valid])
    return np.concatenate(pixels), np.concatenate(vectors)


def _principal_points(vectors: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float | None]:
    """Points on the two main principal axes, and the fraction of the variance they hold.

    A latent space of one dimension gives points on a line (y = 0). Each
    axis's sign is fixed (its largest loading positive) so that the same
    latents always give the same picture, not a mirror image of it.
    """
    n, dims = vectors.shape
    if n == 0:
        return np.zeros((0, 2)), None
    fit = vectors if n <= PCA_FIT_SAMPLE else vectors[rng.choice(n, PCA_FIT_SAMPLE, replace=False)]
    mean = fit.mean(axis=0, dtype=np.float64)
    # In blocks: a float64 copy of the whole sample would hold 160 MB at 100 dimensions.
    covariance = np.zeros((dims, dims))
    for start in range(0, fit.shape[0], _BLOCK):
        block = fit[start : start + _BLOCK].astype(np.float64) - mean
        covariance += block.T @ block
    covariance /= max(fit.shape[0] - 1, 1)
    variances, axes = np.linalg.eigh(covariance)
    order = np.argsort(variances)[::-1][:2]
    axes = axes[:, order]
    largest = axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])]
    axes = axes * np.where(largest < 0, -1.0, 1.0)
    total = float(variances.sum())
    explained = float(variances[order].sum() / total) if total > 0 else None
    points = np.zeros((n, 2))
    # vectors @ axes - mean @ axes: no centred copy of every latent vector.
    points[:, : axes.shape[1]] = vectors @ axes.astype(np.float32) - mean @ axes
    return points, explained


def _nonlinear_points(
    vectors: np.ndarray, method: str, rng: np.random.Generator, seed: int
) -> tuple[np.ndarray, int]:
    """UMAP or t-SNE points of a sample, the other pixels placed by their sampled neighbours."""
    n = vectors.shape[0]
    sampled = np.arange(n)
    if n > NONLINEAR_SAMPLE:
        sampled = np.sort(rng.choice(n, NONLINEAR_SAMPLE, replace=False))
    points = np.zeros((n, 2))
    if sampled.size < 3:  # too few to embed: the pixels keep the origin
        return points, sampled.size
    points[sampled] = _embed(vectors[sampled], method, seed)
    rest = np.setdiff1d(np.arange(n), sampled, assume_unique=True)
    if rest.size:
        points[rest] = _place(vectors[sampled], points[sampled], vectors[rest])
    return points, sampled.size


def _embed(vectors: np.ndarray, method: str, seed: int) -> np.ndarray:
    """(m, 2) UMAP or t-SNE embedding of a few thousand latent vectors."""
    if method == "umap":
        import umap  # optional: available_methods() checked it is installed

        reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, vectors.shape[0] - 1))
        return np.asarray(reducer.fit_transform(vectors), dtype=np.float64)
    from sklearn.manifold import TSNE

    # Perplexity must stay below the number of points; 30 is scikit-learn's default.
    perplexity = min(30.0, (vectors.shape[0] - 1) / 3.0)
    return np.asarray(
        TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors),
        dtype=np.float64,
    )


def _place(sample: np.ndarray, sample_points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Points of ``others``: the inverse-distance-weighted mean of their nearest sampled points."""
    from sklearn.neighbors import NearestNeighbors

    neighbours = min(PLACEMENT_NEIGHBOURS, sample.shape[0])
    distances, indices = NearestNeighbors(n_neighbors=neighbours).fit(sample).kneighbors(others)
    weights = 1.0 / np.maximum(distances, 1e-12)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkd->nd", weights, sample_points[indices])


def density_bins(n_points: int) -> int:
    """Histogram bins per axis for ``n_points``: twice the side of a square image of them, bounded."""
    return int(np.clip(2 * np.sqrt(max(n_points, 1)), MIN_BINS, MAX_BINS))


def density_image(
    points: np.ndarray,
    labels: np.ndarray,
    colors: np.ndarray,
    extent: tuple[float, float, float, float],
    bins: int,
) -> np.ndarray:
    """RGBA image (bins, bins, 4) of the points: cluster colours, opacity from log density.

    Parameters
    ----------
    points
        (n, 2) coordinates.
    labels
        (n,) cluster of each point (0..k).
    colors
        (k + 1, 4) RGBA colour of each label; a label's alpha weighs its
        points, so label 0 (transparent) adds nothing.
    extent
        (left, right, bottom, top) that the image covers.
    bins
        Bins per axis.

    Returns
    -------
    numpy.ndarray
        float32 image, row 0 at the bottom (``imshow(..., origin="lower")``):
        each bin has the weighted mean colour of its points and an opacity
        above :data:`MIN_OPACITY` that grows with log(1 + its count), 1 in
        the densest bin; empty bins are transparent.
    """
    image = np.zeros((bins, bins, 4), dtype=np.float32)
    left, right, bottom, top = extent
    column = np.floor((points[:, 0] - left) / max(right - left, 1e-12) * bins).astype(np.int64)
    row = np.floor((points[:, 1] - bottom) / max(top - bottom, 1e-12) * bins).astype(np.int64)
    inside = (column >= 0) & (column < bins) & (row >= 0) & (row < bins)
    cell = row[inside] * bins + column[inside]
    point_colors = np.asarray(colors, dtype=np.float64)[np.asarray(labels)[inside]]
    weight = np.bincount(cell, weights=point_colors[:, 3], minlength=bins * bins)
    filled = weight > 0
    if not filled.any():
        return image
    flat = image.reshape(-1, 4)
    for channel in range(3):
        weighted = point_colors[:, channel] * point_colors[:, 3]
        total = np.bincount(cell, weights=weighted, minlength=bins * bins)
        flat[filled, channel] = total[filled] / weight[filled]
    scale = np.log1p(weight[filled]) / np.log1p(weight.max())
    flat[filled, 3] = MIN_OPACITY + (1.0 - MIN_OPACITY) * scale
    return image


def label_anchors(points: np.ndarray, labels: np.ndarray, k: int) -> dict[int, np.ndarray]:
    """Where to write each cluster's number: the median point of clusters 1..k that have points."""
    anchors = {}
    for label in range(1, k + 1):
        mine = points[labels == label]
        if mine.shape[0]:
            anchors[label] = np.median(mine, axis=0)
    return anchors
