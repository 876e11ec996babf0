"""Iterative k-means with k-means++ restarts, and silhouette on a fair sample.

The reference method started k-means from the first k points with no
restarts and computed the exact O(N^2) silhouette; here every fit takes the
best of several k-means++ starts, and the silhouette is computed on a
class-balanced sample so that it costs the same on any cube and small clusters
weigh as much as large ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import config_context
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from .errors import InputError

#: Pixels per block when assigning many points to centres.
_ASSIGN_BLOCK = 65536
#: Memory (MB) of each block of pairwise distances in the silhouette.
_SILHOUETTE_MEMORY_MB = 8


@dataclass(frozen=True)
class KMeansFit:
    """Result of one k-means fit.

    Attributes
    ----------
    labels
        (n,) cluster index 0..k-1 of each point, numbered by decreasing size.
    centers
        (k, D) cluster centres in the same order.
    inertia
        Sum of squared distances to the assigned centres.
    """

    labels: np.ndarray
    centers: np.ndarray
    inertia: float

    @property
    def k(self) -> int:
        """Number of clusters."""
        return int(self.centers.shape[0])


def fit_kmeans(
    points: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    n_init: int = 8,
    init: np.ndarray | None = None,
) -> KMeansFit:
    """Cluster ``points`` (n, D) into ``k`` groups.

    Parameters
    ----------
    points
        Points to cluster.
    k
        Number of clusters; at most the number of distinct points.
    seed
        Seed of the k-means++ starts.
    n_init
        Number of k-means++ starts; the fit with the lowest inertia wins.
    init
        (k, D) starting centres; when given, one Lloyd run from them.
    """
    n = points.shape[0]
    if k < 1 or k > n:
        raise InputError(f"cannot make {k} clusters from {n} pixels; choose k between 1 and {n}")
    model = KMeans(
        n_clusters=k,
        init="k-means++" if init is None else init,
        n_init=n_init if init is None else 1,
        random_state=seed,
        max_iter=300,
    )
    labels = model.fit_predict(points.astype(np.float64))
    order = size_order(labels, k)
    return KMeansFit(order[labels], model.cluster_centers_[np.argsort(order)], float(model.inertia_))


def size_order(labels: np.ndarray, k: int) -> np.ndarray:
    """New index of each cluster of ``labels`` (0..k-1) so that clusters are numbered by decreasing size."""
    return rank_by_size(np.bincount(labels, minlength=k))


def rank_by_size(sizes: np.ndarray) -> np.ndarray:
    """New index of each cluster of these ``sizes``, the largest first.

    Ties keep the old order, which makes the numbering deterministic.
    """
    ranking = np.argsort(-np.asarray(sizes), kind="stable")
    order = np.empty(ranking.size, dtype=np.int64)
    order[ranking] = np.arange(ranking.size)
    return order


def assign(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each point, computed block by block."""
    labels = np.empty(points.shape[0], dtype=np.int64)
    center_sq = (centers**2).sum(axis=1)
    for start in range(0, points.shape[0], _ASSIGN_BLOCK):
        block = points[start : start + _ASSIGN_BLOCK].astype(np.float64)
        distance = center_sq[None, :] - 2.0 * block @ centers.T
        labels[start : start + _ASSIGN_BLOCK] = np.argmin(distance, axis=1)
    return labels


def balanced_sample(labels: np.ndarray, n_max: int, seed: int) -> np.ndarray:
    """Indices of at most ``n_max`` points, as equal a number from each cluster as possible.

    A cluster smaller than its share gives all its points and the rest of
    the share goes to the others.
    """
    rng = np.random.default_rng(seed)
    clusters = np.unique(labels)
    members = [rng.permutation(np.flatnonzero(labels == c)) for c in clusters]
    remaining = n_max
    quota = {}
    for position, cluster in enumerate(sorted(range(len(clusters)), key=lambda i: members[i].size)):
        share = remaining // (len(clusters) - position)
        quota[cluster] = min(members[cluster].size, share)
        remaining -= quota[cluster]
    return np.sort(np.concatenate([members[i][: quota[i]] for i in range(len(clusters))]))


def silhouette(points: np.ndarray, labels: np.ndarray, *, n_max: int = 3000, seed: int = 0) -> float:
    """Mean silhouette on a class-balanced sample of at most ``n_max`` points.

    Returns NaN where it is undefined: fewer than two clusters, or no cluster
    with two points (as many clusters as points).
    """
    if np.unique(labels).size < 2:
        return float("nan")
    picks = balanced_sample(labels, n_max, seed)
    if not 2 <= np.unique(labels[picks]).size < picks.size:
        return float("nan")
    # Small blocks of the distance matrix: scikit-learn reduces each block
    # holding the GIL, and one block of all 3000 points froze a viewer for ~150 ms.
    with config_context(working_memory=_SILHOUETTE_MEMORY_MB):
        return float(silhouette_score(points[picks], labels[picks]))
