"""Variation that every class shares: fitted as correlated noise and projected away.

Fluxes carry components that are not a property of any class: sky-subtraction
residuals (a scaled sky spectrum and its wavelength derivative, varying from
one IFU slice to the next), the absorption lines of stellar populations that
the continuum filter does not follow, calibration patterns. Left in the
features they dominate the pixels' variation, so that every split along them
looks like a new class (a faint nebula's automatic k ran to 12 on them).

They are a common within-class covariance: the noise of whitened features is
``C = I + U diag(v) U^T`` instead of ``I``, with a few directions ``U`` and
excess variances ``v`` shared by all classes. We fit it as a mixture of
factor analysers with common loadings (Baek, McLachlan and Flack, 2010) in its
simplest form: each pixel is one class's spectral shape at a free brightness
plus correlated noise, and clusters and ``C`` are re-estimated in turn (the
clustering sees the features whitened by ``C^(-1/2)``). A model fitted from
fewer clusters than the data has would put the differences between classes
into ``C``; we start from more clusters than any sample cube has, so that
``C`` only sees what is left within them. The features are then projected
onto the complement of ``U`` (:meth:`SharedNoise.project_out`): clusters
absorb part of the shared variation, so ``v`` is biased low, and whitening by
it would leave part of that variation in (docs/how-it-works.md, section 1,
compares the two).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kmeans import fit_kmeans
from .mixture import scale_free

#: Clusters of the over-segmentation the within-class covariance is read from.
N_GROUPS = 12
#: Alternations of clustering and covariance.
N_ITER = 15
#: Most shared directions.
MAX_DIRECTIONS = 16
#: A direction counts when its variance exceeds the top of the noise's
#: eigenvalue spectrum (Marchenko-Pastur edge) by this factor.
EDGE_MARGIN = 1.05
#: Pixels whose squared residual exceeds this many times the median are left
#: out of the shared covariance.
_TRIM_FACTOR = 2.0
#: Dimensions of the principal subspace the over-segmentation is made in.
_START_DIMENSIONS = 8


@dataclass(frozen=True)
class SharedNoise:
    """Correlated noise ``C = I + U diag(v) U^T`` of whitened features.

    Attributes
    ----------
    directions
        (F, r) orthonormal directions U.
    variances
        (r,) excess variance v of each direction, above the unit noise.
    """

    directions: np.ndarray
    variances: np.ndarray

    @property
    def rank(self) -> int:
        """Number of shared directions r."""
        return int(self.variances.size)

    def whiten(self, features: np.ndarray) -> np.ndarray:
        """Features multiplied by ``C^(-1/2)`` (n, F), in their own precision."""
        return self._remove(features, 1.0 - 1.0 / np.sqrt(1.0 + self.variances))

    def project_out(self, features: np.ndarray) -> np.ndarray:
        """Features without their part along the shared directions (n, F)."""
        return self._remove(features, np.ones(self.rank))

    def _remove(self, features: np.ndarray, shares: np.ndarray) -> np.ndarray:
        if self.rank == 0:
            return features
        directions = self.directions.astype(features.dtype)
        return features - ((features @ directions) * shares.astype(features.dtype)) @ directions.T


def fit_shared_noise(features: np.ndarray, *, seed: int, n_iter: int = N_ITER) -> SharedNoise:
    """The covariance that all clusters of ``features`` (n, F) share, beyond the unit noise.

    Parameters
    ----------
    features
        Whitened flux features (unit noise per channel) of a pixel sample.
    seed
        Seed of the starting over-segmentation.
    n_iter
        Alternations of soft clustering and covariance estimation.
    """
    x = np.asarray(features, dtype=np.float64)
    n, n_features = x.shape
    n_groups = min(N_GROUPS, n // 2)
    if n_groups < 2 or n_features < 2:
        return SharedNoise(np.zeros((n_features, 0)), np.zeros(0))
    responsibilities = np.zeros((n, n_groups))
    responsibilities[np.arange(n), _over_segmentation(x, n_groups, seed)] = 1.0
    shapes = scale_free(responsibilities.T @ x, "gaussian")
    amplitudes = _amplitudes(x, shapes)
    moments = _Moments(x)
    noise = _within_cluster_noise(moments, responsibilities, amplitudes, shapes)
    for _ in range(n_iter - 1):
        responsibilities, amplitudes = _e_step(x, shapes, noise, responsibilities)
        # Shapes in the data's own space (for a given brightness the noise
        # covariance does not change the best shape), brightness under it.
        shapes = scale_free((responsibilities * amplitudes).T @ x, "gaussian")
        amplitudes = _amplitudes(x, shapes, noise)
        noise = _within_cluster_noise(moments, responsibilities, amplitudes, shapes)
    return noise


class _Moments:
    """The pixels (n, F) with the sums every iteration of :func:`fit_shared_noise` reads.

    The Gram matrix of all pixels costs n F^2, as much as the rest of an
    iteration together; it is made once, and each iteration takes off the few
    pixels it leaves out.
    """

    def __init__(self, x: np.ndarray) -> None:
        self.x = x
        self.squared_norms = (x * x).sum(axis=1)
        self.gram = x.T @ x


def _within_cluster_noise(
    moments: _Moments, responsibilities: np.ndarray, amplitudes: np.ndarray, shapes: np.ndarray
) -> SharedNoise:
    """The covariance of what soft clusters (responsibilities, brightness, shapes) leave unexplained."""
    x = moments.x
    n, n_features = x.shape
    weighted = responsibilities * amplitudes
    explained = (weighted * (2.0 * (x @ shapes.T) - amplitudes)).sum(axis=1)
    residuals = moments.squared_norms - explained
    # What all classes share is in every pixel; a few pixels the clusters
    # explain badly (a small bright class merged into a larger one) would
    # otherwise put their own difference into the shared covariance.
    left_out = residuals > _TRIM_FACTOR * np.median(residuals)
    outliers = x[left_out]
    kept_weights = np.where(left_out[:, None], 0.0, weighted)
    towards = kept_weights.T @ x
    within = (
        moments.gram
        - outliers.T @ outliers
        - shapes.T @ towards
        - towards.T @ shapes
        + shapes.T @ ((kept_weights * amplitudes).sum(axis=0)[:, None] * shapes)
    ) / (n - left_out.sum())
    values, vectors = np.linalg.eigh(within)
    values, vectors = values[::-1], vectors[:, ::-1]
    # Noise alone gives eigenvalues up to the Marchenko-Pastur edge; the bulk's
    # median scales it, so that a slightly mis-estimated noise level does not count.
    edge = (1.0 + np.sqrt(n_features / n)) ** 2
    level = float(np.median(values))
    rank = min(int(np.sum(values > EDGE_MARGIN * edge * level)), MAX_DIRECTIONS)
    return SharedNoise(vectors[:, :rank], values[:rank] - level)


def _over_segmentation(x: np.ndarray, n_groups: int, seed: int) -> np.ndarray:
    """k-means labels of the pixels' spectral shapes in their leading principal subspace."""
    shapes = scale_free(x, "gaussian")
    centred = shapes - shapes.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    points = centred @ vectors[:, -min(_START_DIMENSIONS, vectors.shape[1]) :]
    return fit_kmeans(points, n_groups, seed=seed, n_init=2).labels


def _e_step(
    x: np.ndarray, shapes: np.ndarray, noise: SharedNoise, responsibilities: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Responsibilities (n, m) and best amplitudes (n, m) of shapes (m, F) under correlated ``noise``."""
    n = x.shape[0]
    norms = np.maximum((noise.whiten(shapes) ** 2).sum(axis=1), 1e-12)
    amplitudes = _amplitudes(x, shapes, noise)
    weights = np.maximum(responsibilities.mean(axis=0), 1.0 / n)
    log_joint = 0.5 * norms * amplitudes**2 + np.log(weights)
    log_joint -= log_joint.max(axis=1, keepdims=True)
    posterior = np.exp(log_joint)
    return posterior / posterior.sum(axis=1, keepdims=True), amplitudes


def _amplitudes(x: np.ndarray, shapes: np.ndarray, noise: SharedNoise | None = None) -> np.ndarray:
    """Best non-negative brightness (n, m) of each shape (m, F) for each pixel (n, F).

    With ``noise``, pixels and shapes are both whitened by ``C^(-1/2)``. The
    whitened pixels, as large as the sample, are never formed: ``C^(-1/2)``
    is symmetric, so their products with the whitened shapes are the pixels'
    with the shapes whitened twice.
    """
    if noise is None:
        return np.maximum(x @ shapes.T, 0.0) / np.maximum((shapes**2).sum(axis=1), 1e-12)
    whitened = noise.whiten(shapes)
    twice_whitened = noise.whiten(whitened)
    return np.maximum(x @ twice_whitened.T, 0.0) / np.maximum((whitened**2).sum(axis=1), 1e-12)
