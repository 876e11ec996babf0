import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.kselect import (
    MAX_FRONTIER_DENSITY,
    MAX_MIXING_RATIO,
    SHIFT_GAIN,
    HeldOut,
    _empty_clusters,
    _split_proposals,
    bic_penalty,
    choose_k,
    criteria_of,
    fit_candidates,
    merge_gain,
    mixing_ratio,
    pair_frontiers,
    shift_gain,
)
from napari_deepcube.core.line_shifts import LineShifter
from napari_deepcube.core.mixture import scale_free
from napari_deepcube.core.pipeline import segment
from napari_deepcube.core.preprocess import fit_and_transform
from napari_deepcube.core.preprocess_config import PreprocessConfig
from napari_deepcube.core.synthetic import make_painting
from napari_deepcube.core.threads import computing_on


def _counts_with_a_small_class(rng, n_bins=50):
    """Two large, internally varied classes and one distinct class of 1 % of the pixels."""
    base = rng.dirichlet(np.full(n_bins, 2.0), size=3)
    sizes = [3000, 2000, 50]
    truth = np.repeat(np.arange(3), sizes)
    # Within-class variation: each pixel's shape wobbles around its class's.
    shapes = base[truth] * rng.uniform(0.85, 1.15, size=(truth.size, n_bins))
    shapes /= shapes.sum(axis=1, keepdims=True)
    features = rng.poisson(300 * shapes).astype(np.float32)
    # The embedding: square-root proportions (a stand-in for a trained encoder's output).
    latents = np.sqrt(features / features.sum(axis=1, keepdims=True))
    return latents, features, truth


def test_the_split_path_finds_a_small_class_and_stops_at_the_truth(rng):
    latents, features, truth = _counts_with_a_small_class(rng)
    candidates = {c.k: c for c in fit_candidates(latents, features, [2, 3, 4, 5, 6], "multinomial", seed=0)}
    choice = choose_k(candidates, features.shape[0])
    assert choice.k == 3, choice.reason
    assert adjusted_rand_score(truth, candidates[3].labels) > 0.98
    criteria = criteria_of(candidates, features.shape[0])
    assert set(criteria) == {"silhouette", "bic", "log_likelihood", "frontier_density"}
    assert criteria["log_likelihood"][3] > criteria["log_likelihood"][2]


@pytest.mark.parametrize("likelihood", ["multinomial", "gaussian"])
def test_candidates_made_on_two_threads_are_those_made_on_one(rng, likelihood):
    """The split proposals' fits and, beside them, each k's k-means candidate."""
    latents, features, _ = _counts_with_a_small_class(rng)
    if likelihood == "gaussian":
        features = np.sqrt(features)
    # As a run chooses k: each fit's BLAS on one thread, whose sums do not depend on the caller.
    with computing_on(1):
        one, two = (
            list(fit_candidates(latents, features, [2, 3, 4, 5], likelihood, seed=0, workers=workers))
            for workers in (1, 2)
        )
    for alone, shared in zip(one, two, strict=True):
        np.testing.assert_array_equal(alone.labels, shared.labels)
        assert alone.fit.log_likelihood == shared.fit.log_likelihood
        assert (alone.silhouette, alone.frontier) == (shared.silhouette, shared.frontier)


def test_no_candidate_past_the_refused_k_changes_the_choice(rng):
    latents, features, _ = _counts_with_a_small_class(rng)
    candidates = {c.k: c for c in fit_candidates(latents, features, [2, 3, 4, 5, 6], "multinomial", seed=0)}
    whole = choose_k(candidates, features.shape[0])
    assert whole.refused == whole.k + 1
    upto_refused = {k: c for k, c in candidates.items() if k <= whole.refused}
    assert choose_k(upto_refused, features.shape[0]) == whole
    assert choose_k({k: c for k, c in candidates.items() if k <= whole.k}, features.shape[0]).refused is None


def test_merge_gain_weighs_the_evidence_for_the_weakest_class(rng):
    _, features, truth = _counts_with_a_small_class(rng)
    penalty = bic_penalty(features.shape[1], features.shape[0])
    # 50 pixels of a distinct class are worth more than a penalty...
    assert merge_gain(features, truth, 3, "multinomial", seed=0) > penalty
    # ...one class cut in two at random is worth none.
    halves = np.where((truth == 0) & (rng.random(truth.size) < 0.5), 3, truth)
    assert merge_gain(features, halves, 4, "multinomial", seed=0) < penalty


def _gaussian_class_log_likelihood(points, means):
    return -0.5 * (points[:, None] - np.asarray(means)[None, :]) ** 2


def test_the_frontier_is_empty_between_groups_and_full_inside_one(rng):
    apart = np.concatenate([rng.normal(-4.0, 1.0, 3000), rng.normal(4.0, 1.0, 1000)])
    one = rng.normal(0.0, 1.0, 4000)
    densities = {}
    for name, points in (("apart", apart), ("one", one)):
        class_ll = _gaussian_class_log_likelihood(points, [-4.0, 4.0] if name == "apart" else [-0.8, 0.8])
        densities[name] = pair_frontiers(class_ll.argmax(axis=1), class_ll).max()
    assert densities["apart"] < 0.1
    assert densities["one"] > MAX_FRONTIER_DENSITY
    # Three clusters: the worst pair counts.
    three = np.concatenate([apart, rng.normal(12.0, 1.0, 500), rng.normal(12.0, 1.0, 500)])
    class_ll = _gaussian_class_log_likelihood(three, [-4.0, 4.0, 11.2, 12.8])
    assert pair_frontiers(class_ll.argmax(axis=1), class_ll).max() > MAX_FRONTIER_DENSITY


def _pair_differing_in_one_share(rng, n_bins=40):
    """Two classes that differ only in one pigment's share (10 % against 25 %),
    with a second pigment varying within both, and one distinct class."""
    shared = rng.dirichlet(np.full(n_bins, 2.0))
    first, second = np.eye(n_bins)[5], np.eye(n_bins)[20]
    truth = np.repeat(np.arange(3), [1500, 1200, 600])
    share = np.where(truth == 0, 0.10, 0.25)[:, None]
    varying = rng.uniform(0.15, 0.25, size=(truth.size, 1))
    spectra = (1 - share - varying) * shared + share * first + varying * second
    spectra[truth == 2] = rng.dirichlet(np.ones(n_bins))
    features = rng.poisson(150 * spectra).astype(np.float32)
    # Latents that know the distinct class and the second pigment, not the first.
    latents = np.column_stack([20.0 * varying[:, 0], 3.0 * (truth == 2)])
    return latents, features, truth


def test_a_split_the_latents_miss_is_proposed_along_a_principal_direction(rng):
    latents, features, truth = _pair_differing_in_one_share(rng)
    pair = truth < 2
    cuts = _split_proposals(latents[pair], scale_free(features[pair], "multinomial"), seed=0)
    agreement = [adjusted_rand_score(truth[pair], cut) for cut in cuts]
    assert agreement[0] < 0.1  # the cut on the latents follows the second pigment
    assert max(agreement[1:]) > 0.8


def test_the_pair_is_told_apart_and_k_stops_there(rng):
    latents, features, truth = _pair_differing_in_one_share(rng)
    candidates = {c.k: c for c in fit_candidates(latents, features, [2, 3, 4, 5], "multinomial", seed=0)}
    assert choose_k(candidates, features.shape[0]).k == 3
    assert adjusted_rand_score(truth, candidates[3].labels) > 0.9


def test_two_paints_under_a_ground_that_shows_through_are_split_along_what_the_model_leaves():
    """The hard painting's seed 3: the lead-white pair's split is found only along the residual directions."""
    painting = make_painting(hard=True, seed=3)
    result = segment(painting.cube, SegmentConfig(seed=3, preview_every=0))
    assert result.k == 7, result.k_reason
    assert adjusted_rand_score(painting.labels.ravel(), result.labels.ravel()) > 0.85


def test_without_a_likelihood_the_silhouette_decides(rng):
    centers = rng.normal(scale=6.0, size=(4, 3))
    truth = np.repeat(np.arange(4), 200)
    latents = centers[truth] + rng.normal(size=(truth.size, 3))
    candidates = {c.k: c for c in fit_candidates(latents, latents, [2, 3, 4, 5, 6], None, seed=0)}
    choice = choose_k(candidates, latents.shape[0])
    assert choice.k == 4 and "silhouette" in choice.reason


def _materials(n_bands=60):
    """Three smooth, positive reflectance spectra (unit norm)."""
    bands = np.linspace(0.0, 1.0, n_bands)
    waves = ((0.5, 0.0), (1.0, 0.3), (1.5, 0.7))
    spectra = np.stack([1.0 + np.sin(2 * np.pi * (f * bands + p)) for f, p in waves])
    return spectra / np.linalg.norm(spectra, axis=1, keepdims=True)


def _reflectance_scene(rng, materials, n_pure=800, n_mixed=1200):
    """Pure pixels of each material and a continuum of mixtures of the first two."""
    truth = np.repeat(np.arange(3), n_pure)
    abundances = np.eye(3)[truth]
    share = rng.uniform(0.15, 0.85, n_mixed)
    abundances = np.concatenate([abundances, np.column_stack([share, 1 - share, np.zeros(n_mixed)])])
    brightness = rng.uniform(150.0, 250.0, (abundances.shape[0], 1))
    noise = rng.normal(size=(abundances.shape[0], materials.shape[1]))
    features = brightness * abundances @ materials + noise
    return features.astype(np.float32), np.concatenate([truth, np.full(n_mixed, 3)])


def test_a_cluster_of_mixed_pixels_is_explained_by_the_others(rng):
    materials = _materials()
    features, groups = _reflectance_scene(rng, materials)
    pure = groups < 3
    assert mixing_ratio(features[pure], groups[pure], materials) < 0.01
    # The mixtures as a fourth cluster, with their own mean shape.
    mixed_shape = features[~pure].mean(axis=0)
    shapes = np.vstack([materials, mixed_shape / np.linalg.norm(mixed_shape)])
    assert mixing_ratio(features, groups, shapes) >= MAX_MIXING_RATIO


def test_reflectance_k_stops_before_a_mixture_cluster(rng):
    features, _ = _reflectance_scene(rng, _materials())
    latents = scale_free(features, "gaussian")
    ks = [2, 3, 4, 5, 6]
    plain = {c.k: c for c in fit_candidates(latents, features, ks, "gaussian", seed=0)}
    tested = {c.k: c for c in fit_candidates(latents, features, ks, "gaussian", seed=0, mixing_test=True)}
    # The likelihood alone keeps cutting the continuum of mixtures at this signal-to-noise ratio.
    assert choose_k(plain, features.shape[0]).k > 3
    choice = choose_k(tested, features.shape[0])
    assert choice.k == 3, choice.reason
    # The best split to k = 4 cuts the mixtures in two. The split fitted in its place
    # leaves no mixture, and gains less than a BIC penalty: noise.
    assert tested[4].tests["mixing_ratio"] < MAX_MIXING_RATIO
    assert "less than the BIC penalty" in choice.reason
    assert "mixing_ratio" in criteria_of(tested, features.shape[0])


def _sky_faint_gas_and_a_bright_class(rng, n_features=128):
    """Whitened fluxes: 2400 pixels of empty sky, 400 of a bright class, 1200 of gas at twice the noise.

    Returns the features, latents (their leading principal components: a
    stand-in for a trained encoder's) and the truth.
    """
    shapes = np.abs(rng.normal(size=(2, n_features)))
    shapes /= np.linalg.norm(shapes, axis=1, keepdims=True)
    truth = np.repeat(np.arange(3), [2400, 400, 1200])
    amplitude = np.select([truth == 1, truth == 2], [20.0, 2.0], 0.0) * rng.uniform(0.8, 1.2, truth.size)
    signal = amplitude[:, None] * shapes[np.maximum(truth - 1, 0)]
    features = (signal + rng.normal(size=signal.shape)).astype(np.float32)
    centred = features - features.mean(axis=0)
    latents = centred @ np.linalg.svd(centred, full_matrices=False)[2][:4].T
    return features, latents, truth


def test_held_out_pixels_find_a_large_faint_class_that_the_bic_refuses(rng):
    """The gas gains less than a BIC penalty; pixels the fits did not see it still explains better."""
    features, latents, truth = _sky_faint_gas_and_a_bright_class(rng)
    ks = [2, 3, 4]
    whole = {c.k: c for c in fit_candidates(latents, features, ks, "gaussian", seed=0)}
    assert choose_k(whole, truth.size).k == 2

    fitted, held = _halves(truth.size)
    held_out = HeldOut(features[held], held, fitted)
    steps = fit_candidates(latents[fitted], features[fitted], ks, "gaussian", seed=0, held_out=held_out)
    candidates = {c.k: c for c in steps}
    choice = choose_k(candidates, fitted.size)

    assert choice.k == 3, choice.reason
    mixture = candidates[3].fit.mixture
    held_log_likelihood = logsumexp(mixture.log_joint(features[held]), axis=1).sum()
    criteria = criteria_of(candidates, fitted.size)
    assert criteria["held_out_log_likelihood"][3] == pytest.approx(held_log_likelihood)
    labels, gas = candidates[3].labels, truth[fitted] == 2
    cluster = np.bincount(labels[gas]).argmax()
    assert np.sum(gas & (labels == cluster)) / np.sum(gas | (labels == cluster)) > 0.5


def _halves(n):
    """Sorted rows of a random half of ``n`` pixels, and of the other half."""
    order = np.random.default_rng(0).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def _line_sample(rng, n_channels=512, shift=0.5, n_faint=0):
    """Line spectra: one class at two velocities (0 and ``shift`` channels), one with other ratios,
    and ``n_faint`` pixels of a third class at a third of the brightness. Truth ignores velocity."""
    channels = np.arange(n_channels)
    centres = np.array([60.3, 150.1, 157.2, 300.4, 420.0])
    ratios = np.array([[1.0, 3.0, 1.0, 0.5, 0.8], [1.0, 0.8, 2.5, 1.5, 0.2], [2.0, 1.0, 1.0, 0.5, 2.0]])

    def lines(ratio, offset):
        profiles = np.exp(-0.5 * ((channels - centres[:, None] - offset) / 1.6) ** 2)
        return (ratio[:, None] * profiles).sum(axis=0)

    offsets = [0.0, shift, 0.0, 0.0]
    templates = np.stack([lines(ratios[c], offset) for c, offset in zip([0, 0, 1, 2], offsets, strict=True)])
    groups = np.repeat(np.arange(4), [1200, 800, 1000, n_faint])
    brightness = np.where(groups == 3, 0.3, 1.0)[:, None] * rng.uniform(4.0, 8.0, (groups.size, 1))
    clean = brightness * templates[groups]
    spectra, neighbours = (clean + rng.normal(size=clean.shape) for _ in range(2))
    preprocessor = fit_and_transform(PreprocessConfig(kind="flux", max_features=64), spectra, neighbours)[0]
    # An axis without wavelengths: velocities move every line by the same number of channels.
    features = preprocessor.transform(spectra)
    shifter = LineShifter(preprocessor, features, spectra.astype(np.float32), None, None)
    return shifter, features, np.array([0, 0, 1, 2])[groups]


def test_one_class_at_two_velocities_stays_one_class(rng):
    shifter, features, truth = _line_sample(rng)
    latents = scale_free(features, "gaussian")
    ks = [2, 3, 4]
    plain = {c.k: c for c in fit_candidates(latents, features, ks, "gaussian", seed=0)}
    steps = fit_candidates(latents, features, ks, "gaussian", seed=0, line_shifts=shifter)
    shifted = {c.k: c for c in steps}
    # Without the shift test the second velocity is a class of its own (and more may follow).
    assert choose_k(plain, features.shape[0]).k >= 3
    choice = choose_k(shifted, features.shape[0])
    assert choice.k == 2, choice.reason
    # The second velocity is passed over for a split that is no copy, and too weak to keep.
    assert shifted[3].tests[SHIFT_GAIN] > bic_penalty(features.shape[1], features.shape[0])
    assert adjusted_rand_score(truth, shifted[2].labels) > 0.95
    assert "shift_gain" in criteria_of(shifted, features.shape[0])


def test_with_held_out_pixels_the_velocity_test_still_sees_the_whole_sample(rng):
    shifter, features, truth = _line_sample(rng)
    latents = scale_free(features, "gaussian")
    fitted, held = _halves(truth.size)
    held_out = HeldOut(features[held], held, fitted)
    steps = fit_candidates(
        latents[fitted], features[fitted], [2, 3], "gaussian", seed=0, line_shifts=shifter, held_out=held_out
    )
    candidate = {c.k: c for c in steps}[3]

    # Every sample pixel, the held-out ones in their most likely cluster, against the whole sample's penalty:
    # the second velocity was passed over for a split that is no copy.
    mixture = candidate.fit.mixture
    labels = np.empty(truth.size, dtype=int)
    labels[fitted], labels[held] = candidate.labels, mixture.posteriors(features[held]).argmax(axis=1)
    empty = _empty_clusters(mixture.brightness)
    whole = shift_gain(features, labels, mixture.params, shifter.clusters(labels, 3), skip=empty)
    assert candidate.tests[SHIFT_GAIN] == pytest.approx(whole)
    assert whole > bic_penalty(features.shape[1], truth.size)


def test_a_faint_class_is_found_past_a_velocity_copy(rng):
    shifter, features, truth = _line_sample(rng, n_faint=50)
    latents = scale_free(features, "gaussian")
    steps = fit_candidates(latents, features, [2, 3, 4, 5], "gaussian", seed=0, line_shifts=shifter)
    candidates = {c.k: c for c in steps}
    # The best split at k=3 is the second velocity; the next one, the faint class, replaces it.
    choice = choose_k(candidates, features.shape[0])
    assert choice.k == 3, choice.reason
    assert adjusted_rand_score(truth, candidates[3].labels) > 0.95
