from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.mixture import fit_background_mixture, fit_class_mixture, fit_mixture


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


def test_an_unmixing_mixture_gives_each_pixel_its_shares_of_the_class_means(rng):
    materials = np.abs(rng.normal(size=(3, 40))) + 1.0
    truth = np.repeat(np.arange(3), 300)
    amounts = 0.7 * np.eye(3)[truth] + 0.3 * rng.dirichlet(np.ones(3), size=truth.size)
    features = (20 * amounts @ materials + rng.normal(size=(truth.size, 40))).astype(np.float32)
    likelihood = fit_mixture(features, truth, 3, "gaussian").mixture
    unmixing = likelihood.unmixing(features)
    labels = likelihood.posteriors(features).argmax(axis=1)
    means = [features[labels == c].mean(axis=0) for c in range(3)]
    np.testing.assert_allclose(unmixing.materials, means, rtol=1e-5)
    shares = unmixing.posteriors(features)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-5)
    # Graded for mixed pixels, where the likelihood is sure.
    assert shares.max(axis=1).mean() < 0.97 < likelihood.posteriors(features).max(axis=1).mean()
    # Renumbered or with a class dropped, the materials follow their classes.
    order = np.array([2, 0, 1])
    np.testing.assert_allclose(unmixing.permuted(order).posteriors(features), shares[:, order], atol=1e-6)
    kept = unmixing.kept(np.array([True, False, True]))
    np.testing.assert_array_equal(kept.materials, unmixing.materials[[0, 2]])
    # A pixel that holds none of them (all its abundances 0) gets the likelihood's probabilities.
    nothing = -features[:5]
    np.testing.assert_allclose(
        unmixing.posteriors(nothing), replace(unmixing, materials=None).posteriors(nothing), rtol=1e-6
    )


def test_pixels_without_emission_are_a_class_apart_from_a_faint_one(rng):
    """Sky (no emission) beside faint gas at 3-4 noise units: only their brightness tells them apart.

    Every shape explains an empty pixel at a brightness near zero, so with a
    free brightness (the model without a brightness distribution) the sky has
    no class of its own and the two are mixed up.
    """
    n_features = 64
    shape = rng.normal(size=n_features)
    shape /= np.linalg.norm(shape)
    truth = np.repeat([0, 1], [1500, 1500])
    amplitude = np.where(truth == 1, rng.uniform(3.0, 4.0, truth.size), 0.0)
    features = (amplitude[:, None] * shape + rng.normal(size=(truth.size, n_features))).astype(np.float32)
    fit = fit_mixture(features, _scrambled(rng, truth), 2, "gaussian")
    assert fit.mixture.brightness is not None
    # Near the Bayes limit for these two classes (4 % of pixels misplaced, ARI about 0.85).
    assert adjusted_rand_score(truth, fit.posteriors.argmax(axis=1)) > 0.7
    free = replace(fit.mixture, brightness=None)
    assert adjusted_rand_score(truth, free.posteriors(features).argmax(axis=1)) < 0.2
    # Fitted brightness: below the noise for the sky (its shape fits the noise a little), the gas's own.
    sky, gas = np.argsort(fit.mixture.brightness[:, 0])
    assert fit.mixture.brightness[sky, 0] < 1.0 < 3.0 < fit.mixture.brightness[gas, 0] < 4.0


def test_bic_is_lowest_at_the_true_k(rng):
    features, truth = _count_data(rng)
    bic = {}
    for k in (2, 3, 4):
        start = (
            truth
            if k == 3
            else (np.minimum(truth, 1) if k == 2 else np.where(rng.random(truth.size) < 0.5, truth, 3))
        )
        bic[k] = fit_mixture(features, start, k, "multinomial").bic(features.shape[0])
    assert min(bic, key=bic.get) == 3


def test_sub_components_keep_classes_whose_members_vary(rng):
    """Two classes differing in one minor line, each varying much more along a shared line.

    With one spectrum per class, EM from the true classes drifts to split
    along the larger within-class variation; sub-components absorb it.
    """
    n_bins = 40
    base = rng.dirichlet(np.full(n_bins, 5.0))
    minor = np.zeros(n_bins)
    minor[7] = 1.0
    shared = np.zeros(n_bins)
    shared[20] = 1.0
    truth = np.repeat([0, 1], 1500)
    thickness = rng.uniform(0.0, 1.0, truth.size)
    shapes = base + 0.04 * minor * truth[:, None] + 0.6 * shared * thickness[:, None]
    features = rng.poisson(150 * shapes / shapes.sum(axis=1, keepdims=True)).astype(np.float32)
    single = fit_mixture(features, truth, 2, "multinomial", max_iter=60)
    grouped = fit_class_mixture(features, truth, 2, "multinomial", n_sub=3, seed=0)
    single_ari = adjusted_rand_score(truth, single.posteriors.argmax(axis=1))
    grouped_ari = adjusted_rand_score(truth, grouped.posteriors.argmax(axis=1))
    assert grouped_ari > single_ari + 0.2
    assert grouped.mixture.k == 2 and grouped.mixture.params.shape[0] == 6
    assert grouped.posteriors.shape == (truth.size, 2)


def test_a_shared_background_keeps_classes_apart_from_a_rough_start(rng):
    """Paint over a ground: each pixel mixes its class with one common spectrum at its own share."""
    n_bins = 40
    paints = rng.dirichlet(np.full(n_bins, 1.0), size=3)
    paints[1] = 0.5 * paints[0] + 0.5 * rng.dirichlet(np.full(n_bins, 1.0))
    ground = rng.dirichlet(np.full(n_bins, 1.0))
    truth = np.repeat([0, 1, 2], [1500, 1500, 600])
    share = rng.uniform(0.0, 0.7, truth.size)[:, None]
    shapes = (1 - share) * paints[truth] + share * ground
    features = rng.poisson(150 * shapes).astype(np.float32)
    start = _scrambled(rng, truth, share=0.3)
    background = fit_background_mixture(features, start, 3)
    single = fit_mixture(features, start, 3, "multinomial", max_iter=60)
    background_ari = adjusted_rand_score(truth, background.posteriors.argmax(axis=1))
    assert background_ari > 0.85
    assert background_ari > adjusted_rand_score(truth, single.posteriors.argmax(axis=1)) + 0.3
    assert background.mixture.k == 3 and background.posteriors.shape == (truth.size, 3)
    np.testing.assert_allclose(np.exp(background.mixture.params).sum(axis=1), 1.0, rtol=1e-6)
    # Class log-likelihoods are mixtures over each class's components.
    class_ll = background.mixture.class_log_likelihood(features)
    assert class_ll.shape == (truth.size, 3)
    assert adjusted_rand_score(truth, class_ll.argmax(axis=1)) > 0.8


def test_permuted_mixture_swaps_classes(rng):
    features, truth = _count_data(rng)
    fit = fit_class_mixture(features, truth, 3, "multinomial", n_sub=2, seed=0)
    order = np.array([2, 0, 1])
    np.testing.assert_allclose(
        fit.mixture.permuted(order).posteriors(features), fit.mixture.posteriors(features)[:, order]
    )


def test_a_mixture_without_a_class_gives_its_pixels_to_the_others(rng):
    """Dropping class 1 renormalises what is left: the other classes' posteriors, renumbered 0..k-2."""
    features, truth = _count_data(rng)
    fit = fit_class_mixture(features, truth, 3, "multinomial", n_sub=2, seed=0)
    kept = fit.mixture.kept(np.array([True, False, True]))
    assert kept.k == 2
    others = truth != 1
    full = fit.mixture.posteriors(features[others])[:, [0, 2]]
    expected = full / full.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(kept.posteriors(features[others]), expected, atol=1e-5)
    np.testing.assert_allclose(kept.posteriors(features).sum(axis=1), 1.0, rtol=1e-5)
    assert kept.posteriors(features)[truth == 2].argmax(axis=1).tolist() == [1] * 400


def test_an_unknown_likelihood_is_a_programming_error_not_bad_input(rng):
    features, truth = _count_data(rng, n_per_class=10)
    with pytest.raises(ValueError, match="no mixture model") as raised:
        fit_mixture(features, truth, 3, "poisson-gamma")
    assert not isinstance(raised.value, InputError)
