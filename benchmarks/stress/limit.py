"""What a method told the true classes could attain: a supervised limit for the stress cubes.

The generators' classes have no single true spectrum (their compositions,
velocities and brightness vary), so the limit is a linear discriminant fitted
on the true labels of half the pixels and applied to the other half, and the
other way round, on the leading principal components of brightness-free
spectra (square-root proportions for counts, unit vectors otherwise). An
unsupervised method may come near it; beating it by much would mean the limit
is too weak, not that the method is too good.
"""

from __future__ import annotations

import numpy as np

#: Principal components the discriminant sees, and channels summed into one for counts.
_COMPONENTS = 30
_MAX_BINS = 256


def brightness_free(spectra: np.ndarray, kind: str) -> np.ndarray:
    """(N, F) spectra without their brightness: sqrt proportions of binned counts, else unit vectors."""
    spectra = np.asarray(spectra, dtype=np.float64)
    if kind == "counts":
        factor = -(-spectra.shape[1] // _MAX_BINS)
        padded = np.pad(spectra, ((0, 0), (0, (-spectra.shape[1]) % factor)))
        binned = padded.reshape(len(spectra), -1, factor).sum(axis=2)
        return np.sqrt(binned / np.maximum(binned.sum(axis=1, keepdims=True), 1.0))
    return spectra / np.maximum(np.linalg.norm(spectra, axis=1, keepdims=True), 1e-12)


def supervised_limit(spectra: np.ndarray, truth: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """(N,) labels from a two-fold cross-fitted linear discriminant on the true labels."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    features = PCA(_COMPONENTS, random_state=seed).fit_transform(brightness_free(spectra, kind))
    half = np.random.default_rng(seed).permutation(len(truth)) < len(truth) // 2
    labels = np.empty_like(truth)
    for train in (half, ~half):
        model = LinearDiscriminantAnalysis().fit(features[train], truth[train])
        labels[~train] = model.predict(features[~train])
    return labels
