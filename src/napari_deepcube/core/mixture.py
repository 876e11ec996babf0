"""Mixture models of the features under their noise model.

k-means in latent space gives clusters; refining them here, in the space of
the data, under the likelihood that matches the noise (multinomial for
counts, Gaussian with a free brightness for whitened fluxes), is what brings
the segmentation close to the attainable limit on noisy cubes. The same fit
gives each pixel's cluster probabilities and the BIC used to choose k.

An optional Potts-like spatial term lets neighbouring pixels favour the
same cluster: each E-step adds ``spatial_weight`` times the mean posterior of
the 8 neighbours to a pixel's log-odds (a mean-field approximation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.special import logsumexp

from .errors import InputError

MIXTURE_LIKELIHOODS = ("multinomial", "gaussian")
#: Pseudo-count per bin added to each class's counts (a Dirichlet prior), so
#: that a bin never seen in a class does not get probability zero.
_PSEUDO_COUNT = 0.5
_BLOCK = 65536


@dataclass(frozen=True)
class Mixture:
    """A fitted mixture model: what is needed to assign new pixels.

    Attributes
    ----------
    likelihood
        ``"multinomial"`` or ``"gaussian"``.
    params
        (k, F): log-probabilities per bin (multinomial) or unit-norm spectral
        shapes (gaussian).
    weights
        (k,) mixing proportions.
    """

    likelihood: str
    params: np.ndarray
    weights: np.ndarray

    @property
    def k(self) -> int:
        """Number of clusters."""
        return int(self.weights.size)

    def log_joint(self, features: np.ndarray) -> np.ndarray:
        """log p(x, cluster) of each pixel (n, k), up to a per-pixel constant."""
        return component_log_likelihood(features, self.params, self.likelihood) + np.log(self.weights)

    def posteriors(self, features: np.ndarray) -> np.ndarray:
        """Cluster probabilities (n, k) float32 of ``features``, block by block."""
        out = np.empty((features.shape[0], self.k), dtype=np.float32)
        for start in range(0, features.shape[0], _BLOCK):
            log_joint = self.log_joint(np.asarray(features[start : start + _BLOCK], dtype=np.float32))
            out[start : start + _BLOCK] = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
        return out

    def permuted(self, order: np.ndarray) -> Mixture:
        """The same mixture with cluster ``order[i]`` moved to position i."""
        return Mixture(self.likelihood, self.params[order], self.weights[order])


@dataclass(frozen=True)
class MixtureFit:
    """The outcome of :func:`fit_mixture`.

    Attributes
    ----------
    mixture
        The fitted model.
    posteriors
        (n, k) float32 probability of each cluster for each fitted pixel.
    log_likelihood
        Total log-likelihood of the data, without the spatial term.
    n_iter
        EM iterations run.
    """

    mixture: Mixture
    posteriors: np.ndarray
    log_likelihood: float
    n_iter: int

    def bic(self, n_points: int) -> float:
        """Bayesian information criterion (lower is better)."""
        k, n_features = self.mixture.params.shape
        n_params = k * (n_features - 1) + (k - 1)
        return -2.0 * self.log_likelihood + n_params * np.log(n_points)


def component_log_likelihood(features: np.ndarray, params: np.ndarray, likelihood: str) -> np.ndarray:
    """Log-likelihood (n, k) of each pixel under each cluster, up to a per-pixel constant."""
    if likelihood == "multinomial":
        return features @ params.T
    # Gaussian with unit noise and the best amplitude a >= 0 of the shape m:
    # max_a -|x - a m|^2 / 2 = max(x.m, 0)^2 / 2 - |x|^2 / 2.
    projection = np.maximum(features @ params.T, 0.0)
    return 0.5 * projection**2 - 0.5 * (features**2).sum(axis=1, keepdims=True)


def _estimate_params(
    features: np.ndarray, posteriors: np.ndarray, likelihood: str, previous: np.ndarray | None
) -> np.ndarray:
    if likelihood == "multinomial":
        counts = posteriors.T @ features + _PSEUDO_COUNT
        return np.log(counts / counts.sum(axis=1, keepdims=True))
    if previous is None:
        shapes = posteriors.T @ features
    else:
        # One power-iteration step on each class's brightness-weighted scatter:
        # the maximum-likelihood shape is its leading eigenvector.
        amplitude = np.maximum(features @ previous.T, 0.0)
        shapes = (posteriors * amplitude).T @ features
    norms = np.linalg.norm(shapes, axis=1, keepdims=True)
    return shapes / np.where(norms > 0, norms, 1.0)


def _neighbour_mean(
    posteriors: np.ndarray, pixel_index: np.ndarray, image_shape: tuple[int, int]
) -> np.ndarray:
    """Mean posterior of each pixel's 8 neighbours that are in the segmentation."""
    height, width = image_shape
    k = posteriors.shape[1]
    grid = np.zeros((height * width, k), dtype=np.float32)
    grid[pixel_index] = posteriors
    present = np.zeros(height * width, dtype=np.float32)
    present[pixel_index] = 1.0
    grid = grid.reshape(height, width, k)
    present = present.reshape(height, width)
    summed = uniform_filter(grid, size=(3, 3, 1), mode="constant") * 9.0
    count = uniform_filter(present, size=3, mode="constant") * 9.0
    summed = summed.reshape(-1, k)[pixel_index] - posteriors
    count = count.reshape(-1)[pixel_index] - 1.0
    return summed / np.maximum(count, 1.0)[:, None]


def fit_mixture(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    likelihood: str,
    *,
    max_iter: int = 30,
    tol: float = 1e-5,
    spatial_weight: float = 0.0,
    pixel_index: np.ndarray | None = None,
    image_shape: tuple[int, int] | None = None,
) -> MixtureFit:
    """Refine a hard clustering by EM under the features' likelihood.

    Parameters
    ----------
    features
        (n, F) features (binned counts, or whitened line fluxes).
    labels
        (n,) initial clusters 0..k-1.
    k
        Number of clusters.
    likelihood
        ``"multinomial"`` or ``"gaussian"``.
    max_iter, tol
        EM stops after ``max_iter`` iterations or when the log-likelihood per
        pixel improves by less than ``tol``.
    spatial_weight
        Strength of the neighbour term; 0 turns it off. Needs ``pixel_index``
        (flat index of each pixel in the image) and ``image_shape``.
    """
    if likelihood not in MIXTURE_LIKELIHOODS:
        raise InputError(f"no mixture model for likelihood {likelihood!r}")
    if spatial_weight > 0 and (pixel_index is None or image_shape is None):
        raise InputError("the spatial term needs the pixels' positions in the image")
    features = np.asarray(features, dtype=np.float32)
    n = features.shape[0]
    posteriors = np.zeros((n, k), dtype=np.float32)
    posteriors[np.arange(n), labels] = 1.0
    params = _estimate_params(features, posteriors, likelihood, None)
    weights = np.maximum(posteriors.mean(axis=0), 1.0 / n)
    previous_ll = -np.inf
    log_likelihood = -np.inf
    n_iter = 0
    for iteration in range(1, max_iter + 1):
        n_iter = iteration
        log_joint = component_log_likelihood(features, params, likelihood) + np.log(weights)
        log_likelihood = float(logsumexp(log_joint, axis=1).sum())
        if spatial_weight > 0:
            assert pixel_index is not None and image_shape is not None
            log_joint = log_joint + spatial_weight * _neighbour_mean(posteriors, pixel_index, image_shape)
        posteriors = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True)).astype(np.float32)
        if log_likelihood - previous_ll < tol * n:
            break
        previous_ll = log_likelihood
        params = _estimate_params(features, posteriors, likelihood, params)
        weights = np.maximum(posteriors.mean(axis=0), 1.0 / n)
        weights /= weights.sum()
    return MixtureFit(Mixture(likelihood, params, weights), posteriors, log_likelihood, n_iter)
