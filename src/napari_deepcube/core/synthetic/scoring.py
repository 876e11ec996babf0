"""The attainable segmentation of a synthetic cube under its own noise model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._common import BLOCK_PIXELS, SyntheticCube

#: Scores (n, k) of a block of pixels' spectra (n, C), given the block's slice
#: of the flattened image; higher is more likely.
_Scorer = Callable[[slice, np.ndarray], np.ndarray]


def attainable_labels(synthetic: SyntheticCube) -> np.ndarray:
    """Most likely class of each pixel given the noise-free class spectra.

    Poisson cubes: the multinomial log-likelihood ``sum_c x_c log p_kc``
    (per-pixel total counts carry no class information). Gaussian cubes: the
    known continuum and sky factors are subtracted, then each class template
    is fitted with a free non-negative amplitude under the per-channel sigma.
    This is a per-pixel limit: a method that uses neighbouring pixels (or,
    on the nebula, that faint pixels are mostly diffuse gas) can exceed it.

    Parameters
    ----------
    synthetic
        A cube from :func:`make_painting` or :func:`make_nebula`.

    Returns
    -------
    np.ndarray
        (H, W) uint8 labels 1..k, numbered as ``synthetic.labels``.
    """
    height, width, n_channels = synthetic.cube.shape
    flat = np.asarray(synthetic.cube.data).reshape(-1, n_channels)
    if synthetic.noise == "poisson":
        score = _multinomial_scorer(synthetic.class_spectra)
    else:
        score = _gaussian_scorer(synthetic)
    best = np.empty(flat.shape[0], dtype=np.uint8)
    for start in range(0, flat.shape[0], BLOCK_PIXELS):
        block = slice(start, min(start + BLOCK_PIXELS, flat.shape[0]))
        best[block] = 1 + np.argmax(score(block, flat[block]), axis=1)
    return best.reshape(height, width)


def _multinomial_scorer(class_spectra: np.ndarray) -> _Scorer:
    # The floor keeps channels a class never emits in (zero probability) from
    # vetoing it on a single stray count.
    probabilities = np.maximum(class_spectra, 1e-9)
    log_p = np.log(probabilities / probabilities.sum(axis=1, keepdims=True)).T

    def score(_: slice, counts: np.ndarray) -> np.ndarray:
        return counts.astype(np.float64) @ log_p

    return score


def _gaussian_scorer(synthetic: SyntheticCube) -> _Scorer:
    if (
        synthetic.noise_sigma is None
        or synthetic.nuisance_maps is None
        or synthetic.nuisance_spectra is None
    ):
        raise ValueError("a Gaussian-noise synthetic cube must carry its noise sigma and nuisance factors")
    inverse_variance = 1.0 / synthetic.noise_sigma**2
    templates = synthetic.class_spectra
    # With the best amplitude a = max(0, b/q), b = <x, m>/σ², q = <m, m>/σ²,
    # the log-likelihood gain is b²/q when b > 0 and 0 otherwise: ranking by
    # b/sqrt(q) picks the same class and breaks the all-zero ties sensibly.
    norms = np.sqrt((templates**2) @ inverse_variance)
    weighted = (templates * inverse_variance).T / norms
    maps = synthetic.nuisance_maps.reshape(-1, synthetic.nuisance_maps.shape[-1])
    nuisance_spectra = synthetic.nuisance_spectra

    def score(block: slice, fluxes: np.ndarray) -> np.ndarray:
        residual = fluxes.astype(np.float64) - maps[block] @ nuisance_spectra
        return residual @ weighted

    return score
