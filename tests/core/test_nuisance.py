import numpy as np
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.core.kmeans import fit_kmeans
from napari_deepcube.core.mixture import fit_classes, scale_free
from napari_deepcube.core.nuisance import fit_shared_noise


def _principal_cosines(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between the column spans of two orthonormal bases."""
    return np.linalg.svd(first.T @ second, compute_uv=False)


def _classes_under_shared_variation(rng, sizes=(3000, 2000, 1000), n_features=60, nuisance=(6.0, 3.0)):
    """Whitened flux features: class shapes at free brightness, plus variation every class shares.

    The shared part: fixed directions (a sky residual, a stellar absorption) with
    amplitudes of either sign, independent of the class, stronger than the classes differ.
    """
    truth = np.repeat(np.arange(len(sizes)), sizes)
    shapes = np.abs(rng.normal(size=(len(sizes), n_features)))
    shapes /= np.linalg.norm(shapes, axis=1, keepdims=True)
    directions, _ = np.linalg.qr(rng.normal(size=(n_features, len(nuisance))))
    brightness = rng.uniform(3.0, 6.0, size=(truth.size, 1))
    shared = rng.normal(size=(truth.size, len(nuisance))) * np.sqrt(nuisance)
    features = brightness * shapes[truth] + shared @ directions.T + rng.normal(size=(truth.size, n_features))
    return features.astype(np.float32), truth, directions


def test_the_shared_directions_are_found_and_nothing_else(rng):
    features, _, directions = _classes_under_shared_variation(rng)
    noise = fit_shared_noise(features, seed=0)
    assert noise.rank == 2
    assert _principal_cosines(noise.directions, directions).min() > 0.95
    clean = rng.normal(size=(4000, 60))
    assert fit_shared_noise(clean.astype(np.float32), seed=0).rank == 0


def test_projecting_them_out_lets_the_classes_be_told_apart(rng):
    features, truth, _ = _classes_under_shared_variation(rng)

    def clustered(values):
        start = fit_kmeans(scale_free(values, "gaussian"), 3, seed=0).labels
        return fit_classes(values, start, 3, "gaussian", n_sub=1, seed=0).posteriors.argmax(axis=1)

    before = clustered(features)
    after = clustered(fit_shared_noise(features, seed=0).project_out(features))
    # Stronger than the classes differ, the shared variation is what k-means cuts along.
    assert adjusted_rand_score(truth, before) < 0.3
    assert adjusted_rand_score(truth, after) > 0.7


def test_a_small_bright_class_is_not_taken_for_shared_variation(rng):
    """Forty very bright pixels unlike the rest are no direction every class shares."""
    features, truth, _ = _classes_under_shared_variation(rng, sizes=(6000, 3000, 40))
    small = truth == 2
    features[small] *= 6.0
    noise = fit_shared_noise(features, seed=0)
    assert noise.rank == 2  # the two shared directions, nothing of the small class
    small_mean = features[small].mean(axis=0)
    kept = np.linalg.norm(noise.project_out(small_mean[None, :])) / np.linalg.norm(small_mean)
    assert kept > 0.9
