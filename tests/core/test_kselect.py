import numpy as np
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.core.kselect import choose_k, criteria_of, fit_candidates


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
    assert set(criteria) == {"silhouette", "bic", "log_likelihood"}
    assert criteria["log_likelihood"][3] > criteria["log_likelihood"][2]


def test_without_a_likelihood_the_silhouette_decides(rng):
    centers = rng.normal(scale=6.0, size=(4, 3))
    truth = np.repeat(np.arange(4), 200)
    latents = centers[truth] + rng.normal(size=(truth.size, 3))
    candidates = {c.k: c for c in fit_candidates(latents, latents, [2, 3, 4, 5, 6], None, seed=0)}
    choice = choose_k(candidates, latents.shape[0])
    assert choice.k == 4 and "silhouette" in choice.reason
