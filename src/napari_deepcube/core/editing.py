"""Editing a segmentation by hand: merge clusters, split one, assign a region to one.

Each edit is a function of a :class:`~.segmentation.Segmentation` that returns
a new one and leaves the old one as it was, so an editor undoes an edit by
showing the old result again. Every edit keeps to the same rules:

- labels are numbered 1..k by decreasing size again (ties keep the old
  order), and a cluster an edit leaves without a pixel is dropped, as a run
  drops one;
- the probabilities stay a distribution over the new clusters. A merge sums
  the merged columns. A split shares the cluster's probability among its
  parts: under the likelihood by the sub-mixture's responsibilities; in the
  embedding wholly to the part whose k-means centre is nearest (k-means is a
  hard clustering, it has no responsibilities to share by). A pixel assigned
  by hand gets probability 1 for its cluster: the decision is the user's, not
  a model's;
- the confidence is the probability of the pixel's own cluster: after a
  merge it need not be the largest one (a pixel keeps the side it was on);
- the mean and std spectra: a merge pools the merged clusters' moments; a
  split or an assignment moves pixels, so its spectra are computed again from
  the cube, in the same pass that rewrites the probabilities;
- the result's ``edits`` list the edit, ``k_reason`` and ``k_summary`` say
  it; the criteria stay the run's (they score the run's candidates).

What the model means after an edit: a merge of a model with a likelihood
mixture is carried by the model (the merged classes' components become one
class, so the model gives the merged probabilities on any cube, and there
each pixel goes to its most probable merged class). A split, an assignment,
or a merge of a model without a mixture (the paper preset assigns by the
nearest latent centre) is no rule the model can repeat on another cube: the
model is marked (:attr:`~.segmentation.FittedModel.uncarried_edit`), and
saving or applying it is refused rather than giving the unedited clusters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from .cube import Datacube
from .errors import InputError
from .kmeans import assign as nearest_center
from .kmeans import fit_kmeans, rank_by_size
from .mixture import MIXTURE_LIKELIHOODS, Mixture
from .pipeline import as_segmented, cluster_sums, gather_features, refined_mixture
from .pixel_maps import PixelMap, bands, new_map, readable, values_at
from .segmentation import Edit, FittedModel, Segmentation

#: How a cluster can be split: k-means on its pixels' latent vectors, or the
#: likelihood mixture on their features (the model the run refines with).
SPLIT_METHODS = ("embedding", "likelihood")

#: Rewrites one band of rows: (rows, spectra (r, W, C), labels (r, W), probabilities
#: (r, W, k)) -> (labels in the edit's numbering, probabilities (r, W, m)).
BandEdit = Callable[[slice, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
#: Shares one band's chosen pixels among a split's parts: (rows, spectra (r, W, C),
#: chosen (r, W)) -> (n chosen, parts) weights, each row summing to 1.
PartWeights = Callable[[slice, np.ndarray, np.ndarray], np.ndarray]


def merge(segmentation: Segmentation, clusters: Sequence[int]) -> Segmentation:
    """The segmentation with ``clusters`` (numbers 1..k, at least two) made one cluster.

    Needs no cube: the merged cluster's mean and std spectra are pooled from
    the merged clusters' moments.
    """
    start = time.perf_counter()
    chosen = sorted({_checked_cluster(segmentation, c) for c in clusters})
    if len(chosen) < 2:
        raise InputError("choose at least two different clusters to merge")
    k = segmentation.k
    # Each old cluster's place before numbering: the merged ones all take the first one's.
    merged = np.isin(np.arange(1, k + 1), chosen[1:])
    group = np.cumsum(~merged) - 1
    group[merged] = group[chosen[0] - 1]
    m = k - len(chosen) + 1
    regroup = np.zeros((k, m), dtype=np.float32)
    regroup[np.arange(k), group] = 1.0
    sizes = np.asarray(segmentation.cluster_sizes, dtype=np.float64)
    labels, probabilities, place = _numbered(
        np.r_[0, group + 1][segmentation.labels], segmentation.probabilities @ regroup,
        np.bincount(group, weights=sizes, minlength=m),
    )
    mean, std = _pooled(segmentation.mean_spectra, segmentation.std_spectra, sizes, place[group])
    description = f"merged clusters {_listed(chosen)}"
    result = _edited(segmentation, labels, probabilities, mean, std, "merge", description)
    model = _merged_model(segmentation.model, place[group], sizes, description)
    if not model.uncarried_edit:
        model = replace(model, training_confidence=result.mean_confidence())
    return replace(result, model=model, timings={"edit": time.perf_counter() - start}, cpu_timings={})


def split(
    segmentation: Segmentation, cluster: int, n: int, cube: Datacube, method: str = "embedding"
) -> Segmentation:
    """The segmentation with ``cluster`` split into ``n`` clusters, found among its pixels only.

    Parameters
    ----------
    segmentation
        The segmentation to edit.
    cluster
        The cluster to split, 1..k.
    n
        Into how many clusters (at least 2, at most its pixels).
    cube
        The cube that was segmented (the new clusters' spectra come from it).
    method
        ``"embedding"``: k-means on the stored latent vectors of its pixels.
        ``"likelihood"``: the likelihood mixture the run refines with, fitted
        to its pixels' features under the model's preprocessing (a sample of
        ``config.n_refine`` pixels, as a run), started from that k-means. Parts
        the mixture leaves empty are dropped, so fewer than ``n`` may come out.
    """
    start = time.perf_counter()
    cluster = _checked_cluster(segmentation, cluster)
    _check_cube(segmentation, cube)
    cube = as_segmented(cube, segmentation)
    if method not in SPLIT_METHODS:
        raise InputError(f"unknown split method {method!r}; choose one of {', '.join(SPLIT_METHODS)}")
    members = segmentation.labels == cluster
    n_members = int(members.sum())
    if not 2 <= n <= n_members:
        raise InputError(
            f"cluster {cluster} has {n_members} pixels: it can be split into 2 to {n_members} "
            f"clusters, not {n}"
        )
    config = segmentation.config
    rng = np.random.default_rng(config.seed)
    picks = np.sort(
        rng.choice(np.flatnonzero(members.ravel()), min(config.n_refine, n_members), replace=False)
    )
    initial = fit_kmeans(values_at(segmentation.latents, picks), n, seed=config.seed)
    if method == "embedding":
        parts = _nearest_part(segmentation.latents, initial.centers)
        how = "in the embedding"
    else:
        mixture = _sub_mixture(segmentation, cube, picks, initial.labels, n)
        parts = _responsibilities(segmentation.model, mixture, cube)
        how = f"under the {mixture.likelihood} likelihood"
    k = segmentation.k

    def edit_band(
        rows: slice, spectra: np.ndarray, labels: np.ndarray, probs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        share = probs[..., cluster - 1]
        out = np.zeros((*labels.shape, k - 1 + n), dtype=np.float32)
        out[..., : k - 1] = np.delete(probs, cluster - 1, axis=-1)
        # Pixels of other clusters keep theirs; this one's go after the others, numbered 1..k-1.
        new_labels = np.where(labels > cluster, labels.astype(np.int64) - 1, labels)
        shared = (labels > 0) & ((share > 0) | (labels == cluster))
        if shared.any():
            weights = parts(rows, spectra, shared)
            out[shared, k - 1 :] = share[shared, None] * weights
            own = labels[shared] == cluster
            picked = new_labels[shared]
            picked[own] = k + weights[own].argmax(axis=1)
            new_labels[shared] = picked
        return new_labels, out

    result = _rewritten(segmentation, cube, k - 1 + n, edit_band)
    got = result.k - k + 1
    asked = "" if got == n else f" ({n} asked; {n - got} took no pixel)"
    description = f"split cluster {cluster} into {got} {how}{asked}"
    return _finished(segmentation, result, "split", description, start)


def assign(segmentation: Segmentation, mask: np.ndarray, cluster: int, cube: Datacube) -> Segmentation:
    """The segmentation with the segmented pixels of ``mask`` (H, W) given to ``cluster``.

    ``cluster`` is 1..k, or k + 1 for a new cluster. Pixels of the mask that
    the segmentation left out (label 0) stay out. The assigned pixels get
    probability 1 for their cluster.
    """
    start = time.perf_counter()
    _check_cube(segmentation, cube)
    cube = as_segmented(cube, segmentation)
    k = segmentation.k
    if not 1 <= cluster <= k + 1:
        raise InputError(f"assign to a cluster 1..{k}, or {k + 1} for a new one; got {cluster}")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != segmentation.labels.shape:
        raise InputError(f"the region is of a {mask.shape} image but the map is {segmentation.labels.shape}")
    chosen = mask & (segmentation.labels > 0)
    if not chosen.any():
        raise InputError("the region covers no segmented pixel; draw it over the cluster map")
    m = max(k, cluster)

    def edit_band(
        rows: slice, spectra: np.ndarray, labels: np.ndarray, probs: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros((*labels.shape, m), dtype=np.float32)
        out[..., :k] = probs
        here = chosen[rows]
        out[here] = np.eye(m, dtype=np.float32)[cluster - 1]
        return np.where(here, cluster, labels), out

    result = _rewritten(segmentation, cube, m, edit_band)
    target = f"cluster {cluster}" if cluster <= k else "a new cluster"
    description = f"assigned {int(chosen.sum())} pixels of a region to {target}"
    return _finished(segmentation, result, "assign", description, start)


def _checked_cluster(segmentation: Segmentation, cluster: int) -> int:
    if not 1 <= int(cluster) <= segmentation.k:
        raise InputError(f"there is no cluster {cluster}: the map has clusters 1..{segmentation.k}")
    return int(cluster)


def _check_cube(segmentation: Segmentation, cube: Datacube) -> None:
    if cube.image_shape != segmentation.labels.shape or cube.n_channels != segmentation.mean_spectra.shape[1]:
        raise InputError(
            f"the segmentation is of a {segmentation.labels.shape} image of "
            f"{segmentation.mean_spectra.shape[1]} channels but the cube is {cube.shape}; "
            "pass the cube that was segmented"
        )


def _listed(numbers: Sequence[int]) -> str:
    words = [str(n) for n in numbers]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _nearest_part(latents: PixelMap, centers: np.ndarray) -> PartWeights:
    """Weights (n, parts) of the chosen pixels of a band: 1 for the nearest centre in the embedding."""

    def weights(rows: slice, spectra: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        points = np.asarray(latents[rows])[chosen]
        return np.eye(centers.shape[0], dtype=np.float32)[nearest_center(points, centers)]

    return weights


def _sub_mixture(
    segmentation: Segmentation, cube: Datacube, picks: np.ndarray, initial: np.ndarray, n: int
) -> Mixture:
    """The likelihood mixture of ``n`` classes fitted to the pixels ``picks``, as a run refines one."""
    model = segmentation.model
    likelihood = model.mixture.likelihood if model.mixture is not None else model.preprocessor.likelihood
    if likelihood not in MIXTURE_LIKELIHOODS:
        raise InputError(
            f"this run's data ({model.preprocessor.kind}) have no likelihood mixture; split in the embedding"
        )
    features = gather_features(cube, picks, model.preprocessor)
    return refined_mixture(
        features, initial, n, likelihood, segmentation.config.seed,
        by_abundance=model.preprocessor.data_kind.labels_by_abundance,
    )


def _responsibilities(model: FittedModel, mixture: Mixture, cube: Datacube) -> PartWeights:
    """Weights (n, parts) of the chosen pixels of a band: the sub-mixture's class probabilities.

    Their features are made as the run made them, with the cube's per-voxel
    variances when it has them.
    """

    def weights(rows: slice, spectra: np.ndarray, chosen: np.ndarray) -> np.ndarray:
        variances = cube.variance_rows(rows)
        return mixture.posteriors(
            model.preprocessor.transform(spectra[chosen], None if variances is None else variances[chosen])
        )

    return weights


def _rewritten(segmentation: Segmentation, cube: Datacube, m: int, edit_band: BandEdit) -> Segmentation:
    """The segmentation whose labels and probabilities ``edit_band`` rewrites, band by band.

    One pass over the cube writes the new probabilities (on disk for a cube
    read lazily, see :mod:`.pixel_maps`) and sums each new cluster's spectra;
    then empty clusters are dropped and the rest numbered by size.
    """
    labels = np.zeros(segmentation.labels.shape, dtype=np.int64)
    written = new_map(cube, m, 0.0, "posteriors")
    sums = np.zeros((m, cube.n_channels))
    squares = np.zeros((m, cube.n_channels))
    counts = np.zeros(m, dtype=np.int64)
    for rows, block in cube.iter_blocks():
        band_labels, band_probabilities = edit_band(
            rows, block, segmentation.labels[rows], np.asarray(segmentation.probabilities[rows])
        )
        labels[rows] = band_labels
        written[rows] = band_probabilities
        inside = band_labels.ravel() > 0
        part = cluster_sums(
            block.reshape(-1, cube.n_channels)[inside], band_labels.ravel()[inside] - 1, m
        )
        sums += part[0]
        squares += part[1]
        counts += part[2]
    numbered, probabilities, place = _numbered(labels, readable(written), counts)
    kept = place >= 0
    order = np.argsort(place[kept])
    size = np.maximum(counts[kept][order], 1)[:, None]
    mean = sums[kept][order] / size
    std = np.sqrt(np.maximum(squares[kept][order] / size - mean**2, 0.0))
    return replace(
        segmentation, labels=numbered, probabilities=probabilities, mean_spectra=mean, std_spectra=std
    )


def _numbered(
    labels: np.ndarray, probabilities: PixelMap, counts: np.ndarray
) -> tuple[np.ndarray, PixelMap, np.ndarray]:
    """Clusters without a pixel dropped and the rest numbered 1..k by decreasing size.

    ``labels`` are numbered 1..m with ``counts`` (m,) pixels each. Returns the
    new labels, the probabilities of the kept clusters in their new order
    (renormalised where a dropped one had some), and the new place 0..k-1 of
    each old cluster (-1: dropped).
    """
    present = counts > 0
    rank = rank_by_size(counts[present])
    place = np.full(counts.size, -1, dtype=np.int64)
    place[present] = rank
    k = int(present.sum())
    lookup = np.r_[0, place + 1].astype(np.uint8 if k < 256 else np.uint16)
    columns = np.flatnonzero(present)[np.argsort(rank)]
    probabilities = probabilities[..., columns]
    if not present.all():
        total = probabilities.sum(axis=-1, keepdims=True)
        probabilities = probabilities / np.where(total > 0, total, 1.0).astype(np.float32)
    return lookup[labels], probabilities, place


def _pooled(
    mean: np.ndarray, std: np.ndarray, sizes: np.ndarray, place: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std spectra of clusters pooled into ``place`` (old cluster -> new 0..m-1, -1: dropped)."""
    weight = _pooling(place, sizes)
    total = np.maximum(weight.sum(axis=1, keepdims=True), 1.0)
    pooled_mean = weight @ mean / total
    second = weight @ (std**2 + mean**2) / total
    return pooled_mean, np.sqrt(np.maximum(second - pooled_mean**2, 0.0))


def _pooling(place: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(m, k) weights pooling old clusters into new ones: ``sizes`` at (place, old), none for place -1."""
    kept = np.flatnonzero(place >= 0)
    weight = np.zeros((int(place.max()) + 1, place.size))
    weight[place[kept], kept] = sizes[kept]
    return weight


def _merged_model(model: FittedModel, place: np.ndarray, sizes: np.ndarray, description: str) -> FittedModel:
    """The model giving the merged clusters (``place``: old class -> new), or marked when it cannot."""
    if model.uncarried_edit:
        return model
    if model.mixture is None or model.k != place.size:
        return replace(model, uncarried_edit=description)
    kept = place >= 0
    # A class of a reused model that took no pixel of this cube was dropped with its cluster.
    mixture = model.mixture if kept.all() else model.mixture.kept(kept)
    mixture = replace(mixture, groups=place[kept][mixture.groups])
    weight = _pooling(place, np.maximum(sizes, 1.0))
    m = weight.shape[0]
    centers = {**model.centers, m: weight @ model.centers[model.k] / weight.sum(axis=1, keepdims=True)}
    candidates = {key: value for key, value in model.candidates.items() if key != m}
    # The unmerged clusters stay a candidate, for re-clustering to their k.
    candidates[model.k] = model.mixture
    return replace(model, k=m, mixture=mixture, centers=centers, candidates=candidates)


def _edited(
    segmentation: Segmentation,
    labels: np.ndarray,
    probabilities: PixelMap,
    mean: np.ndarray,
    std: np.ndarray,
    action: str,
    description: str,
) -> Segmentation:
    """The segmentation with new maps and spectra, the edit recorded and explained."""
    edit = Edit(action, description, segmentation.k, int(mean.shape[0]))
    return replace(
        segmentation,
        labels=labels,
        confidence=_own_probability(probabilities, labels),
        probabilities=probabilities,
        mean_spectra=mean,
        std_spectra=std,
        k_reason=(
            f"{segmentation.k_reason}; then by hand, {description} (k {edit.k_before} -> {edit.k_after})"
        ),
        k_summary=f"{edit.k_after} clusters after editing by hand (last: {description})",
        edits=(*segmentation.edits, edit),
    )


def _finished(
    segmentation: Segmentation, result: Segmentation, action: str, description: str, start: float
) -> Segmentation:
    """A split's or an assignment's result: the edit recorded, the model marked as not repeating it."""
    edited = _edited(
        segmentation, result.labels, result.probabilities, result.mean_spectra, result.std_spectra,
        action, description,
    )
    model = segmentation.model
    if not model.uncarried_edit:
        model = replace(model, uncarried_edit=description)
    return replace(edited, model=model, timings={"edit": time.perf_counter() - start}, cpu_timings={})


def _own_probability(probabilities: PixelMap, labels: np.ndarray) -> np.ndarray:
    """(H, W) float32 probability of each pixel's own cluster (0 where left out), band by band."""
    confidence = np.zeros(labels.shape, dtype=np.float32)
    for rows in bands(*labels.shape):
        band = np.asarray(probabilities[rows])
        own = labels[rows].astype(np.int64)
        picked = np.take_along_axis(band, np.maximum(own - 1, 0)[..., None], axis=-1)[..., 0]
        confidence[rows] = np.where(own > 0, picked, 0.0)
    return confidence
