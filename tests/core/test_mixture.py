import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.mixture import fit_mixture


def _count_data(rng, n_per_class=400, n_bins=60, counts=200):
    shapes = rng.dirichlet(np.full(n_bins, 0.3), size=3)
    truth = np.repeat(np.arange(3), n_per_class)
    totals = rng.uniform(0.5, 1.5, size=truth.size) * counts
    features = rng.poisson(totals[:, None] * shapes[truth]).astype(np.float32)
    return features, truth


def _scrambled(rng, truth, share=0.3):
    labels = truth.copy()
    flip = rng.random(truth.size) < share
    labels[flip] = rng.integers(0, truth.max() + 1, flip.sum())
    return labels


def test_multinomial_refinement_repairs_a_rough_clustering(rng):
    features, truth = _count_data(rng)
    start = _scrambled(rng, truth)
    fit = fit_mixture(features, start, 3, "multinomial")
    refined = fit.posteriors.argmax(axis=1)
    assert adjusted_rand_score(truth, start) < 0.6
    assert adjusted_rand_score(truth, refined) > 0.98
    np.testing.assert_allclose(fit.posteriors.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(fit.mixture.posteriors(features), fit.posteriors, atol=1e-5)


def test_gaussian_refinement_ignores_brightness(rng):
    shapes = rng.normal(size=(3, 40))
    truth = np.repeat(np.arange(3), 300)
    amplitude = rng.uniform(0.5, 4.0, size=truth.size)
    features = (amplitude[:, None] * shapes[truth] + rng.normal(size=(truth.size, 40))).astype(np.float32)
    fit = fit_mixture(features, _scrambled(rng, truth), 3, "gaussian")
    assert adjusted_rand_score(truth, fit.posteriors.argmax(axis=1)) > 0.95


def test_bic_is_lowest_at_the_true_k(rng):
    features, truth = _count_data(rng)
    bic = {}
    for k in (2, 3, 4):
        start = truth if k == 3 else (np.minimum(truth, 1) if k == 2 else np.where(rng.random(truth.size) < 0.5, truth, 3))
        bic[k] = fit_mixture(features, start, k, "multinomial").bic(features.shape[0])
    assert min(bic, key=bic.get) == 3


def test_spatial_term_cleans_isolated_noise(rng):
    height, width = 30, 30
    truth = np.zeros((height, width), int)
    truth[:, 15:] = 1
    shapes = np.array([[0.5, 0.3, 0.2], [0.35, 0.3, 0.35]])
    features = rng.poisson(30 * shapes[truth.ravel()]).astype(np.float32)
    index = np.arange(height * width)
    plain = fit_mixture(features, truth.ravel(), 2, "multinomial").posteriors.argmax(axis=1)
    smooth = fit_mixture(
        features, truth.ravel(), 2, "multinomial", spatial_weight=4.0, pixel_index=index, image_shape=(height, width)
    ).posteriors.argmax(axis=1)
    assert adjusted_rand_score(truth.ravel(), smooth) > adjusted_rand_score(truth.ravel(), plain) + 0.1


def test_spatial_term_needs_positions(rng):
    features, truth = _count_data(rng, n_per_class=10)
    with pytest.raises(InputError, match="positions"):
        fit_mixture(features, truth, 3, "multinomial", spatial_weight=1.0)
