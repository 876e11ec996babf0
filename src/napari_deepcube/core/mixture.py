"""Mixture models of the features under their noise model.

k-means in latent space gives clusters; refining them here, in the space of
the data, under the likelihood that matches the noise (multinomial for
counts, Gaussian with a free brightness for whitened fluxes), is what brings
the segmentation close to the attainable limit on noisy cubes. The same fit
gives each pixel's cluster probabilities and the likelihood that chooses k
(its BIC, or the likelihood of pixels held out of the fit).

A class of real data is rarely one spectrum: paint thickness changes how much
of the ground shows through, mixtures vary within a region. A single
component per class is then misspecified, and EM drifts to split classes along
that variation instead of between them. So a class is a small group of
components (``groups`` maps components to classes): for counts, the class's
spectrum mixed with a background shared by all classes at a few shares; for
fluxes, a few free sub-components.

A flux class's brightness is free from pixel to pixel, but not without
bounds: each component has a brightness distribution, a normal distribution
truncated at zero whose mean and spread are fitted like its shape. Without it
a pixel with no emission (sky) is explained by any shape at a brightness near
zero as well as by a class of its own, and a large faint class (diffuse gas)
merged with the empty sky beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy.special import log_ndtr

from .unmixing import abundances, shares

MIXTURE_LIKELIHOODS = ("multinomial", "gaussian")
#: Pseudo-count per bin added to each class's counts (a Dirichlet prior), so
#: that a bin never seen in a class does not get probability zero.
_PSEUDO_COUNT = 0.5
_BLOCK = 65536
#: Rows per block of :func:`class_sums`.
_SUM_BLOCK = 8192
#: Fewest pixels per sub-component when a class is split into sub-components.
_MIN_SUB_SIZE = 50
#: Least spread of a component's brightness, in noise units: a class of
#: empty pixels has brightness 0 within the noise, not exactly 0.
_MIN_BRIGHTNESS_SPREAD = 0.1


@dataclass(frozen=True)
class Mixture:
    """A fitted mixture model: what is needed to assign new pixels.

    Attributes
    ----------
    likelihood
        ``"multinomial"`` or ``"gaussian"``.
    params
        (m, F) for m components: log-probabilities per bin (multinomial) or
        unit-norm spectral shapes (gaussian).
    weights
        (m,) mixing proportions.
    groups
        (m,) class of each component, 0..k-1.
    brightness
        (m, 2) mean and spread of each component's brightness (gaussian;
        see :func:`component_log_likelihood`), or None: brightness free
        (multinomial, and models saved before brightness was modelled).
    materials
        (k, F) mean features of each class, where a pixel is a linear mixture
        of the classes' materials (reflectance): its class probabilities are
        then the shares of its non-negative unmixing by them
        (:mod:`.unmixing`), and its class the material it holds most of.
        None: the posterior probabilities of the likelihood.
    """

    likelihood: str
    params: np.ndarray
    weights: np.ndarray
    groups: np.ndarray
    brightness: np.ndarray | None = None
    materials: np.ndarray | None = None

    @property
    def k(self) -> int:
        """Number of classes."""
        return int(self.groups.max()) + 1

    def log_joint(self, features: np.ndarray) -> np.ndarray:
        """log p(x, component) of each pixel (n, m), up to a per-pixel constant."""
        return self.component_log_likelihood(features) + np.log(self.weights)

    def pixel_log_likelihood(self, features: np.ndarray) -> np.ndarray:
        """log p(x) (n,) float64 of each pixel, up to a per-pixel constant that no mixture changes."""
        out = np.empty(features.shape[0])
        for start in range(0, features.shape[0], _BLOCK):
            block = np.asarray(features[start : start + _BLOCK], dtype=np.float32)
            out[start : start + _BLOCK] = _log_sum_exp(self.log_joint(block))[:, 0]
        return out

    def component_log_likelihood(self, features: np.ndarray) -> np.ndarray:
        """log p(x | component) (n, m), up to a per-pixel constant."""
        return component_log_likelihood(features, self.params, self.likelihood, self.brightness)

    def class_log_likelihood(self, features: np.ndarray) -> np.ndarray:
        """log p(x | class) (n, k): each class's components weighted within the class."""
        within = np.log(self.weights) - np.log(np.bincount(self.groups, weights=self.weights))[self.groups]
        log_joint = self.component_log_likelihood(features) + within
        out = np.empty((features.shape[0], self.k))
        for group in range(self.k):
            out[:, group] = _log_sum_exp(log_joint[:, self.groups == group])[:, 0]
        return out

    def posteriors(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, k) float32 of ``features``, block by block.

        With :attr:`materials`, each pixel's shares of them; a pixel that holds
        none of them (its unmixing is all zeros) gets the likelihood's posteriors.
        """
        out = np.empty((features.shape[0], self.k), dtype=np.float32)
        for start in range(0, features.shape[0], _BLOCK):
            block = np.asarray(features[start : start + _BLOCK], dtype=np.float32)
            if self.materials is None:
                out[start : start + _BLOCK] = self._likelihood_posteriors(block)
                continue
            held = shares(abundances(block, self.materials))
            empty = held.sum(axis=1) == 0
            if empty.any():
                held[empty] = self._likelihood_posteriors(block[empty])
            out[start : start + _BLOCK] = held
        return out

    def _likelihood_posteriors(self, features: np.ndarray) -> np.ndarray:
        """Posterior probability (n, k) of each class under the likelihood."""
        log_joint = self.log_joint(features)
        components = np.exp(log_joint - _log_sum_exp(log_joint))
        # Log-likelihoods of thousands in float32 leave ~1e-4 in the exponent: renormalise.
        components /= components.sum(axis=1, keepdims=True)
        return _sum_groups(components, self.groups, self.k)

    def permuted(self, order: np.ndarray) -> Mixture:
        """The same mixture with class ``order[i]`` renumbered i."""
        inverse = np.argsort(order)
        materials = None if self.materials is None else self.materials[order]
        return replace(self, groups=inverse[self.groups], materials=materials)

    def kept(self, classes: np.ndarray) -> Mixture:
        """The mixture of the classes where ``classes`` (a (k,) mask) is True, renumbered in order."""
        kept_components = classes[self.groups]
        new_number = np.cumsum(classes) - 1
        weights = self.weights[kept_components]
        return replace(
            self,
            params=self.params[kept_components],
            weights=weights / weights.sum(),
            groups=new_number[self.groups[kept_components]],
            brightness=None if self.brightness is None else self.brightness[kept_components],
            materials=None if self.materials is None else self.materials[classes],
        )

    def unmixing(self, features: np.ndarray) -> Mixture:
        """This mixture assigning pixels by unmixing: its classes' mean features in ``features`` as materials.

        Each pixel of ``features`` (n, F) counts for the class the likelihood
        gives it most probably.
        """
        labels = replace(self, materials=None).posteriors(features).argmax(axis=1)
        sums, = class_sums(features, labels, self.k)
        counts = np.bincount(labels, minlength=self.k)[:, None]
        return replace(self, materials=sums / np.maximum(counts, 1))


def _sum_groups(components: np.ndarray, groups: np.ndarray, k: int) -> np.ndarray:
    """Sum component columns (n, m) into class columns (n, k)."""
    if groups.size == k:
        return components[:, np.argsort(groups)] if np.any(groups != np.arange(k)) else components
    out = np.zeros((components.shape[0], k), dtype=components.dtype)
    for component, group in enumerate(groups):
        out[:, group] += components[:, component]
    return out


@dataclass(frozen=True)
class MixtureFit:
    """The outcome of :func:`fit_mixture`.

    Attributes
    ----------
    mixture
        The fitted model.
    posteriors
        (n, k) float32 probability of each class for each fitted pixel.
    log_likelihood
        Total log-likelihood of the fitted pixels.
    n_iter
        EM iterations run.
    """

    mixture: Mixture
    posteriors: np.ndarray
    log_likelihood: float
    n_iter: int
    n_params: int = 0

    def bic(self, n_points: int) -> float:
        """Bayesian information criterion (lower is better)."""
        m, n_features = self.mixture.params.shape
        n_params = self.n_params or m * (n_features - 1) + (m - 1)
        if self.mixture.brightness is not None:
            n_params += self.mixture.brightness.size
        return -2.0 * self.log_likelihood + n_params * np.log(n_points)


def _log_sum_exp(values: np.ndarray) -> np.ndarray:
    """log(sum(exp(values), axis=1)) as a column (n, 1); scipy's version checks too much for this loop."""
    peak = values.max(axis=1, keepdims=True)
    return peak + np.log(np.exp(values - peak).sum(axis=1, keepdims=True))


def class_sums(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    *,
    orders: Literal[1, 2] = 1,
    dtype: type[np.floating] = np.float64,
) -> list[np.ndarray]:
    """Sums (k, F) in ``dtype`` of each class's features (0..k-1), and with ``orders=2`` of their squares.

    A one-hot matrix product, block by block: BLAS releases the GIL, where
    ``np.add.at`` or a sorted ``reduceat`` would hold it for a few hundred
    milliseconds on a large sample and freeze a viewer running this in a thread.
    Only one block at a time is held in ``dtype``, never a copy of all features,
    and both sums come from that one copy. In float32 the features of a
    float32 sample are not copied at all (a sample of 16 000 MUSE spectra is
    235 MB), and the sums keep about six significant digits.
    """
    sums = [np.zeros((k, features.shape[1]), dtype=dtype) for _ in range(orders)]
    for start in range(0, features.shape[0], _SUM_BLOCK):
        block = slice(start, start + _SUM_BLOCK)
        one_hot = np.zeros((k, labels[block].size), dtype=dtype)
        one_hot[labels[block], np.arange(labels[block].size)] = 1.0
        values = features[block].astype(dtype, copy=orders == 2)
        sums[0] += one_hot @ values
        if orders == 2:
            values *= values
            sums[1] += one_hot @ values
    return sums


def component_log_likelihood(
    features: np.ndarray, params: np.ndarray, likelihood: str, brightness: np.ndarray | None = None
) -> np.ndarray:
    """Log-likelihood (n, m) of each pixel under each component, up to a per-pixel constant.

    Multinomial: ``x . log p``. Gaussian (unit noise, shape m of unit norm):
    with ``brightness`` (mean mu and spread tau per component) the amplitude a
    of the shape is drawn from N(mu, tau^2) truncated to a >= 0 and integrated
    out; without it the best a >= 0 is taken, ``max(x.m, 0)^2 / 2 - |x|^2 / 2``.
    """
    squared_norm = None if likelihood == "multinomial" else (features**2).sum(axis=1, keepdims=True)
    return _log_likelihood_from(_projection(features, params), squared_norm, brightness)


def _projection(features: np.ndarray, params: np.ndarray) -> np.ndarray:
    """(n, m) products of the features with each component's parameters, in the features' precision.

    A float64 matrix would copy the features to float64 on every call.
    """
    return features @ params.T.astype(features.dtype)


def _log_likelihood_from(
    projection: np.ndarray, squared_norm: np.ndarray | None, brightness: np.ndarray | None
) -> np.ndarray:
    """:func:`component_log_likelihood` from ``x . params`` (n, m) and ``|x|^2`` (n, 1).

    Without ``squared_norm`` the model is the multinomial, whose log-likelihood is the projection.
    """
    if squared_norm is None:
        return projection
    if brightness is None:
        return 0.5 * np.maximum(projection, 0.0) ** 2 - 0.5 * squared_norm
    mean, spread = (brightness[:, column].astype(projection.dtype) for column in (0, 1))
    variance = 1.0 + spread**2
    centre, sd = _amplitude_posterior(projection, mean, spread)
    # Off the shape the noise is all there is; along it x.m ~ N(mu, 1 + tau^2),
    # renormalised for the truncation of a at 0.
    return (
        0.5 * projection**2
        - 0.5 * squared_norm
        - 0.5 * (projection - mean) ** 2 / variance
        - 0.5 * np.log(variance)
        + log_ndtr(centre / sd)
        - log_ndtr(mean / spread)
    )


def _amplitude_posterior(
    projection: np.ndarray, mean: np.ndarray, spread: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd of a pixel's amplitude given its projection x.m, before the truncation at 0."""
    variance = 1.0 + spread**2
    return (spread**2 * projection + mean) / variance, np.sqrt(spread**2 / variance)


def _amplitude_moments(projection: np.ndarray, brightness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[a] and E[a^2] (n, m) of each pixel's amplitude under each component (truncated at 0)."""
    centre, sd = _amplitude_posterior(projection, brightness[:, 0], brightness[:, 1])
    z = centre / sd
    # The inverse Mills ratio phi(z) / Phi(z), through logs so that it stays finite far in the tail.
    ratio = np.exp(-0.5 * z**2 - 0.5 * np.log(2 * np.pi) - log_ndtr(z))
    first = centre + sd * ratio
    variance = sd**2 * (1.0 - z * ratio - ratio**2)
    return first, np.maximum(variance, 0.0) + first**2


def _initial_brightness(features: np.ndarray, posteriors: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """(m, 2) brightness from hard labels: the amplitude is the projection, one unit of its variance noise."""
    first = np.maximum(_projection(features, shapes), 0.0).astype(np.float64)
    return _brightness_from_moments(posteriors, first, first**2 - 1.0)


def _brightness_from_moments(posteriors: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(m, 2) mean and spread of each component's amplitude from the pixels' E[a] and E[a^2]."""
    total = np.maximum(posteriors.sum(axis=0), 1e-12)
    mean = (posteriors * first).sum(axis=0) / total
    spread = np.sqrt(np.maximum((posteriors * second).sum(axis=0) / total - mean**2, 0.0))
    return np.stack([mean, np.maximum(spread, _MIN_BRIGHTNESS_SPREAD)], axis=1)


def _gaussian_m_step(
    features: np.ndarray, posteriors: np.ndarray, projection: np.ndarray, brightness: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """New shapes and brightness, both from the amplitudes expected under the current ones.

    ``projection`` is ``x . m`` (n, m) under the current shapes, as the E-step
    computed it. The shape step is one power iteration on each class's
    amplitude-weighted scatter, whose leading eigenvector is the
    maximum-likelihood shape.
    """
    first, second = _amplitude_moments(projection.astype(np.float64), brightness)
    new_shapes = (posteriors * first.astype(features.dtype)).T @ features
    norms = np.linalg.norm(new_shapes, axis=1, keepdims=True)
    return new_shapes / np.where(norms > 0, norms, 1.0), _brightness_from_moments(posteriors, first, second)


def _estimate_params(features: np.ndarray, posteriors: np.ndarray, likelihood: str) -> np.ndarray:
    """Parameters from hard or soft assignments: log-probabilities, or the mean shapes (gaussian)."""
    if likelihood == "multinomial":
        counts = posteriors.T @ features + _PSEUDO_COUNT
        return np.log(counts / counts.sum(axis=1, keepdims=True))
    shapes = posteriors.T @ features
    norms = np.linalg.norm(shapes, axis=1, keepdims=True)
    return shapes / np.where(norms > 0, norms, 1.0)


def fit_mixture(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    likelihood: str,
    *,
    groups: np.ndarray | None = None,
    max_iter: int = 30,
    tol: float = 1e-5,
) -> MixtureFit:
    """Refine a hard clustering by EM under the features' likelihood.

    Parameters
    ----------
    features
        (n, F) features (binned counts, or whitened line fluxes).
    labels
        (n,) initial component of each pixel, 0..m-1.
    k
        Number of components m.
    likelihood
        ``"multinomial"`` or ``"gaussian"``.
    groups
        (m,) class of each component; by default each component is a class.
    max_iter, tol
        EM stops after ``max_iter`` iterations or when the log-likelihood per
        pixel improves by less than ``tol``.
    """
    if likelihood not in MIXTURE_LIKELIHOODS:
        raise ValueError(f"no mixture model for likelihood {likelihood!r}")  # a caller's bug, not bad input
    groups = np.arange(k) if groups is None else np.asarray(groups)
    features = np.asarray(features, dtype=np.float32)
    n = features.shape[0]
    posteriors = np.zeros((n, k), dtype=np.float32)
    posteriors[np.arange(n), labels] = 1.0
    params = _estimate_params(features, posteriors, likelihood)
    brightness = _initial_brightness(features, posteriors, params) if likelihood == "gaussian" else None
    weights = np.maximum(posteriors.mean(axis=0), 1.0 / n)
    # The E-step's products are the M-step's too, and the pixels' norms never change.
    squared_norm = None if likelihood == "multinomial" else (features**2).sum(axis=1, keepdims=True)
    previous_ll = -np.inf
    log_likelihood = -np.inf
    n_iter = 0
    for iteration in range(1, max_iter + 1):
        n_iter = iteration
        projection = _projection(features, params)
        log_joint = _log_likelihood_from(projection, squared_norm, brightness) + np.log(weights)
        norm = _log_sum_exp(log_joint)
        log_likelihood = float(norm.sum(dtype=np.float64))
        posteriors = np.exp(log_joint - norm).astype(np.float32)
        if log_likelihood - previous_ll < tol * n:
            break
        previous_ll = log_likelihood
        if brightness is None:
            params = _estimate_params(features, posteriors, likelihood)
        else:
            params, brightness = _gaussian_m_step(features, posteriors, projection, brightness)
        weights = np.maximum(posteriors.mean(axis=0), 1.0 / n)
        weights /= weights.sum()
    mixture = Mixture(likelihood, params, weights, groups, brightness)
    return MixtureFit(mixture, _sum_groups(posteriors, groups, mixture.k), log_likelihood, n_iter)


def fit_background_mixture(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    *,
    n_shares: int = 5,
    max_share: float = 0.5,
    max_iter: int = 30,
    tol: float = 1e-5,
) -> MixtureFit:
    """Multinomial classes seen through a shared background, fitted by EM from ``labels`` (0..k-1).

    Every pixel of class j has channel probabilities ``(1 - t) p_j + t g``:
    its class's spectrum mixed with one background spectrum ``g`` common to
    all classes (the ground under the paint, the support, scattered tube
    radiation), at a share ``t`` taken from ``n_shares`` values between 0 and
    ``max_share``. Paint thickness then moves a pixel along its own class's
    line instead of towards another class. The share stops at ``max_share``
    (one half) so that a small, distinct class cannot hide in the background
    as "mostly background" pixels of another class. Each (class, share) pair is a
    component of the returned mixture, so assigning new pixels costs one
    matrix product as for any mixture.

    The EM splits each component's expected photons between class and
    background in proportion to their share of each channel's probability.
    """
    features = np.asarray(features, dtype=np.float32)
    n, n_features = features.shape
    shares = np.linspace(0.0, max_share, n_shares)
    (counts,) = class_sums(features, labels, k)
    classes = (counts + _PSEUDO_COUNT) / (counts + _PSEUDO_COUNT).sum(axis=1, keepdims=True)
    # The background starts as what every class has in common.
    background = classes.min(axis=0) + 1e-9
    background /= background.sum()
    groups = np.repeat(np.arange(k), n_shares)
    weights = np.full(k * n_shares, 1.0 / (k * n_shares))
    previous_ll = -np.inf
    log_likelihood = -np.inf
    n_iter = 0
    for iteration in range(1, max_iter + 1):
        n_iter = iteration
        class_part = (1.0 - shares)[None, :, None] * classes[:, None, :]
        background_part = np.broadcast_to(shares[None, :, None] * background[None, None, :], class_part.shape)
        mixed = (class_part + background_part).reshape(k * n_shares, n_features)
        log_joint = _projection(features, np.log(mixed)) + np.log(weights).astype(np.float32)
        norm = _log_sum_exp(log_joint)
        log_likelihood = float(norm.sum(dtype=np.float64))
        posteriors = np.exp(log_joint - norm).astype(np.float32)
        if log_likelihood - previous_ll < tol * n:
            break
        previous_ll = log_likelihood
        expected = (posteriors.T @ features).astype(np.float64)
        from_class = (expected * class_part.reshape(mixed.shape) / mixed).reshape(k, n_shares, n_features)
        from_background = expected * background_part.reshape(mixed.shape) / mixed
        classes = from_class.sum(axis=1) + _PSEUDO_COUNT
        classes /= classes.sum(axis=1, keepdims=True)
        background = from_background.sum(axis=0) + _PSEUDO_COUNT
        background /= background.sum()
        weights = np.maximum(posteriors.mean(axis=0), 1.0 / n)
        weights /= weights.sum()
    params = np.log(mixed)
    mixture = Mixture("multinomial", params, weights, groups)
    fit = MixtureFit(mixture, _sum_groups(posteriors, groups, k), log_likelihood, n_iter)
    # Free parameters: k class spectra, one background, the weights.
    return replace(fit, n_params=(k + 1) * (n_features - 1) + (k * n_shares - 1))


def scale_free(features: np.ndarray, likelihood: str) -> np.ndarray:
    """Spectra without their brightness: square-root proportions for counts, unit vectors for fluxes.

    Square roots make Poisson noise about equal in every channel, so that
    Euclidean distances (k-means, principal directions) weigh channels fairly.
    """
    if likelihood == "multinomial":
        return np.sqrt(features / np.maximum(features.sum(axis=1, keepdims=True), 1.0))
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-6)


def fit_class_mixture(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    likelihood: str,
    *,
    n_sub: int,
    seed: int,
    max_iter: int = 30,
) -> MixtureFit:
    """EM with ``n_sub`` sub-components per class, started from class ``labels`` (0..k-1).

    Each class's pixels are split by k-means on their scale-free spectra
    (square-root proportions for counts, unit vectors for fluxes) to start
    its sub-components; classes too small to split keep one component.
    """
    from .kmeans import fit_kmeans

    shapes = scale_free(features, likelihood)
    components = np.zeros(labels.size, dtype=np.int64)
    groups: list[int] = []
    for cluster in range(k):
        members = np.flatnonzero(labels == cluster)
        parts = min(n_sub, members.size // _MIN_SUB_SIZE) if members.size else 0
        if parts >= 2:
            components[members] = len(groups) + fit_kmeans(shapes[members], parts, seed=seed, n_init=1).labels
        else:
            components[members] = len(groups)
            parts = 1
        groups += [cluster] * parts
    return fit_mixture(
        features, components, len(groups), likelihood, groups=np.array(groups), max_iter=max_iter
    )


def fit_classes(
    features: np.ndarray,
    labels: np.ndarray,
    k: int,
    likelihood: str,
    *,
    n_sub: int,
    seed: int,
    max_iter: int = 30,
) -> MixtureFit:
    """The class model of each likelihood, fitted by EM from class ``labels`` (0..k-1).

    Counts: classes seen through a shared background (:func:`fit_background_mixture`)
    at ``2 n_sub - 1`` shares. Fluxes: ``n_sub`` free sub-components per class
    (:func:`fit_class_mixture`); their continuum is already removed, and their
    brightness is free.
    """
    if likelihood == "multinomial":
        return fit_background_mixture(features, labels, k, n_shares=2 * n_sub - 1, max_iter=max_iter)
    if n_sub == 1:
        return fit_mixture(features, labels, k, likelihood, max_iter=max_iter)
    return fit_class_mixture(features, labels, k, likelihood, n_sub=n_sub, seed=seed, max_iter=max_iter)
