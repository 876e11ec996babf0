import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.kmeans import assign, balanced_sample, fit_kmeans, silhouette


def _blobs(rng, sizes, spread=0.3):
    centers = rng.normal(scale=5.0, size=(len(sizes), 4))
    points = np.concatenate(
        [c + spread * rng.normal(size=(n, 4)) for c, n in zip(centers, sizes, strict=True)]
    )
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return points, truth


def test_finds_blobs_numbered_by_size(rng):
    points, truth = _blobs(rng, [50, 400, 150])
    fit = fit_kmeans(points, 3, seed=0)
    assert adjusted_rand_score(truth, fit.labels) == 1.0
    assert np.bincount(fit.labels).tolist() == [400, 150, 50]
    np.testing.assert_array_equal(assign(points, fit.centers), fit.labels)


def test_same_seed_same_labels(rng):
    points, _ = _blobs(rng, [200, 200, 200, 200], spread=2.0)
    first = fit_kmeans(points, 4, seed=3)
    second = fit_kmeans(points, 4, seed=3)
    np.testing.assert_array_equal(first.labels, second.labels)


def test_balanced_sample_takes_all_of_a_small_cluster(rng):
    labels = np.repeat([0, 1, 2], [5000, 3000, 20])
    picks = balanced_sample(labels, 300, seed=0)
    counts = np.bincount(labels[picks])
    assert counts.tolist() == [140, 140, 20]
    assert np.unique(picks).size == picks.size


def test_silhouette_separated_versus_random(rng):
    points, truth = _blobs(rng, [300, 300, 10])
    assert silhouette(points, truth, seed=0) > 0.8
    assert silhouette(points, rng.integers(0, 3, truth.size), seed=0) < 0.1
    assert np.isnan(silhouette(points, np.zeros(truth.size, int)))


def test_more_clusters_than_points_is_refused(rng):
    with pytest.raises(InputError, match="cannot make 10 clusters from 5"):
        fit_kmeans(rng.normal(size=(5, 2)), 10)
