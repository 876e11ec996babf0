"""Candidate clusterings for each k, and the choice of k.

For every k in the range a candidate clustering of the training sample is
built in two ways and the one the data's likelihood prefers is kept:

* k-means++ (with restarts) on the latent embedding, refined by EM under the
  likelihood;
* the best candidate for k-1 with one cluster split in two: the split that
  raises the likelihood most, among 2-means cuts of each cluster on its latents
  and along its leading principal directions, refined by EM.

k-means alone prefers to cut a large, spread-out class in two rather than to
isolate a small, distinct one (a compact nebula among diffuse gas, a detail in
gold leaf); the split path finds those, because isolating them explains the
data far better. Each candidate is scored by its BIC and by the silhouette of
its clusters in latent space on a fixed class-balanced sample.

The choice: a split is kept while its gain in log-likelihood beats the BIC
penalty and either is a fair share (``MIN_RELATIVE_GAIN``) of the largest gain
so far, or clears the penalty by a margin (``WEAK_SPLIT_PENALTIES``) and
leaves clusters with an empty frontier between them (below
``MAX_FRONTIER_DENSITY``); the first split that does neither marks k. Real
classes give gains orders of magnitude above those of cutting one class along
its own internal variation (mixture proportions, thickness), which the BIC
alone keeps taking on real data. Two classes that differ only a little (10 %
against 25 % of one pigment) gain little too, but their pixels fall in two
groups with few between them, while a cut through one class's continuous
variation runs through its densest part: the frontier density tells the two
apart. Without a likelihood (the paper preset) the silhouette decides.

A material's composition also varies from pixel to pixel (pigment grains,
particles smaller than a pixel), and with a few hundred counts per pixel a
cut through that variation gains as much as a true weak split and leaves as
crowded a frontier. What tells them apart is where the pixels lie: two
materials occupy regions, so a pixel's neighbour is mostly of its own half,
while a cut through grain-to-grain variation interleaves the halves pixel by
pixel. A split also stops when it leaves two clusters with a crowded
frontier whose pixels are interleaved in the image (:func:`pair_coherence`
below ``MIN_SPATIAL_COHERENCE``): one material cut in two.

Reflectance pixels are linear mixtures of a few pure materials (a tree's
crown over soil, a shoreline), and at their high signal-to-noise ratio every
cut along a mixing line gains hundreds of BIC penalties. For them a split also
stops when it leaves a cluster that the other clusters, mixed with
non-negative weights, explain as well as its own spectrum does
(:func:`mixing_ratio`): that cluster is a mixture, not a material. Counts keep
no such rule: two paints that differ only in how much of one pigment they
hold are two classes to a heritage scientist.

Line fluxes have the opposite trap: each HII region or planetary nebula moves
at its own velocity, and a bright one's lines, shifted by a fraction of
their width, gain BIC penalties as a class of their own. For them a split
also stops when some cluster's pixels are explained within a BIC penalty by
another cluster's mean spectrum moved in velocity (:func:`shift_gain`,
:mod:`.line_shifts`): one class at two velocities.

A mixture or a velocity copy is no class, but the next-best split may be one:
before either refuses k, the next splits of the candidate for k - 1 are
fitted in its place, and the first the test passes becomes the candidate.

Where the class model holds (line fluxes with their per-voxel variances:
Gaussian noise of a known level; the kind's ``held_out_choice``), the BIC's
penalty is the wrong referee: it refuses a large faint class (diffuse
ionised gas beside the sky) whose gain is a fraction of a penalty, and the
rules above that guard it against misspecified models refuse more. There
the candidates are fitted on part of the training sample and each
candidate's mixture scores the pixels held out of the fits. A split is kept
while it raises their log-likelihood by more than the standard error of
that gain over them (``HELD_OUT_STANDARD_ERRORS``): a cut fitted to noise
explains pixels it has not seen no better. The velocity-copy test stays as
it is, on the whole sample (the held-out pixels each in their most probable
cluster) against a penalty of the whole sample: a class seen at a continuum
of velocities (a rotating disk) explains new pixels better cut in velocity,
and a penalty against half a sample would refuse a compact object that the
whole sample keeps. On counts, reflectance and fluxes whose noise is only
estimated, the held-out likelihood keeps rising through cuts of one class's
continuous variation, as the BIC does, so the rules above stay
(docs/how-it-works.md, section 5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .kmeans import fit_kmeans, silhouette
from .line_shifts import LineShifter, ShiftedClusters
from .mixture import Mixture, MixtureFit, fit_classes, scale_free
from .unmixing import abundances

#: Below this silhouette the chosen clusters are said to overlap: the likelihood
#: supports them, but their pixels grade into each other in the embedding.
OVERLAPPING_SILHOUETTE = 0.1
#: A split counts if it gains at least this share of the largest gain of the
#: splits before it...
MIN_RELATIVE_GAIN = 0.02
#: ...or if it gains this many BIC penalties and no two of its clusters have a
#: frontier more crowded than ``MAX_FRONTIER_DENSITY`` (see :func:`pair_frontiers`).
#: The thresholds separate the weak true splits of the hard paintings from cuts
#: through one class; the measurements are in docs/how-it-works.md, section 3.
WEAK_SPLIT_PENALTIES = 1.5
MAX_FRONTIER_DENSITY = 0.7
#: Two clusters with a crowded frontier whose neighbouring pixels agree less
#: than this, on a scale from 0 (labels scattered at random) to 1 (no
#: neighbours across them), are one material cut pixel by pixel (see
#: :func:`pair_coherence`; measured values in docs/how-it-works.md, section 3).
MIN_SPATIAL_COHERENCE = 0.45
#: Fewest neighbouring pairs within two clusters for their coherence to count.
_MIN_COHERENCE_PAIRS = 20
#: Reflectance: a cluster whose pixels a non-negative mix of the other
#: clusters' shapes explains at least as well as its own shape is a mixture of
#: materials, not one (see :func:`mixing_ratio`; measured values in
#: docs/how-it-works.md, section 3).
MAX_MIXING_RATIO = 1.0
#: Distance from the boundary, in medians of a cluster's distances, that counts
#: as the frontier; and the range of the histogram the density is read from.
_FRONTIER_WIDTH, _FRONTIER_RANGE = 0.2, 3.0
#: Names of the kind-specific split tests, as the report and the widget show them.
MIXING_RATIO, SHIFT_GAIN = "mixing_ratio", "shift_gain"
#: Where pixels are held out of the fits, a split counts when it raises their
#: log-likelihood by more than this many standard errors of that gain (the
#: spread of the pixels' own gains): a paired, sequential form of the
#: one-standard-error rule of cross-validation (Hastie, Tibshirani & Friedman,
#: *The Elements of Statistical Learning*, section 7.10), which prefers the
#: simpler model where the held-out data cannot tell them apart.
HELD_OUT_STANDARD_ERRORS = 1.0
#: Name of the held-out pixels' log-likelihood per k, as the report and the widget show it.
HELD_OUT_LOG_LIKELIHOOD = "held_out_log_likelihood"
#: Mean brightness, in noise units, below which a flux cluster holds no
#: emission (sky): it is not tested as a velocity copy of another.
_EMPTY_BRIGHTNESS = 1.0
#: EM iterations for a candidate (the final fit on all pixels runs to convergence).
CANDIDATE_EM_ITER = 10
#: Class model size for candidates, lighter than the final fit's: 3 background
#: shares for counts, one component per class for fluxes (free sub-components
#: there would absorb a second class of a few pixels before any split is tried).
_CANDIDATE_SUB = {"multinomial": 2, "gaussian": 1}
#: Clusters smaller than this are not split further.
_MIN_SPLIT_SIZE = 8
#: Principal directions of a cluster tried as split axes.
_SPLIT_DIRECTIONS = 3
#: Splits fitted as candidates for one k, best first: the next is tried only
#: while the candidate so far is refused by the kind's test (a velocity copy, a
#: mix of the other clusters: :func:`_refused_by_kind`), and the first that is
#: not replaces it.
_SPLIT_TRIES = 4
#: A split that replaces one refused as a mix of the other clusters must cut
#: off at least this share of the sample: the smallest class the method is asked
#: to find. On the Cu/ZnO EELS image the next split cut out one pixel; on the
#: stress suite's reflectance those that replaced a mixture held 4-28 %
#: (docs/how-it-works.md, section 3).
_MIN_MATERIAL_SHARE = 0.01


@dataclass(frozen=True)
class NeighbourPairs:
    """Sample pixels paired with a neighbour in the image.

    Attributes
    ----------
    of
        (m,) row, in the sample, of the pixel each neighbour is next to.
    features
        (m, F) the neighbours' features.
    """

    of: np.ndarray
    features: np.ndarray


@dataclass(frozen=True)
class HeldOut:
    """Training-sample pixels held out of the candidates' fits, to score them.

    Attributes
    ----------
    features
        (h, F) the held-out pixels' features.
    rows
        (h,) their rows in the whole training sample.
    fitted_rows
        (n,) the rows of the pixels the candidates are fitted to, in the
        order of the features they are given.
    """

    features: np.ndarray
    rows: np.ndarray
    fitted_rows: np.ndarray


@dataclass(frozen=True)
class Candidate:
    """A clustering of the training sample into k clusters.

    Attributes
    ----------
    k
        Number of clusters.
    labels
        (n,) cluster of each sample pixel it was fitted to, 0..k-1 (with
        pixels held out, those of :attr:`HeldOut.fitted_rows`, in that order).
    silhouette
        Silhouette in latent space on a class-balanced sample.
    fit
        The likelihood mixture fitted from these clusters (None without a likelihood).
    frontier
        :func:`pair_frontiers` of the two least-separated clusters (NaN
        without a likelihood).
    tests
        The values of the kind's own split tests that were measured, by name:
        :data:`MIXING_RATIO` (reflectance), :data:`SHIFT_GAIN` (line fluxes; on
        the whole sample, held-out pixels included).
    coherence
        Least :func:`pair_coherence` of two clusters whose frontier is
        crowded (above ``MAX_FRONTIER_DENSITY``); NaN where no frontier is
        crowded, or without a likelihood or neighbours.
    held_out
        (h,) log-likelihood, under the mixture, of each sample pixel held out
        of the fits (up to a constant per pixel that no mixture changes); None
        where none were held out.
    """

    k: int
    labels: np.ndarray
    silhouette: float
    fit: MixtureFit | None
    frontier: float = float("nan")
    tests: Mapping[str, float] = field(default_factory=dict)
    coherence: float = float("nan")
    held_out: np.ndarray | None = None

    def bic(self, n_points: int) -> float:
        """BIC of the mixture (NaN without one)."""
        return float("nan") if self.fit is None else self.fit.bic(n_points)


@dataclass(frozen=True)
class KChoice:
    """The chosen k and why.

    Attributes
    ----------
    k
        The chosen number of clusters.
    reason
        Why, with the numbers the rule compared (for reports and details).
    summary
        Why, in plain words, without the statistics' vocabulary (for the widget).
    refused
        The k whose split the rule refused (None: every k tried was kept, or
        the silhouette chose). The rule reads no candidate above it, so more
        candidates cannot change the choice.
    """

    k: int
    reason: str
    summary: str
    refused: int | None = None


def fit_candidates(
    latents: np.ndarray,
    features: np.ndarray,
    ks: list[int],
    likelihood: str | None,
    seed: int,
    mixing_test: bool = False,
    line_shifts: LineShifter | None = None,
    neighbours: NeighbourPairs | None = None,
    held_out: HeldOut | None = None,
    workers: int = 1,
) -> Iterator[Candidate]:
    """Yield the candidate for each k in ``ks`` (increasing), as it is made.

    With ``mixing_test`` (reflectance) each candidate also gets its
    :func:`mixing_ratio`; with ``line_shifts`` (line fluxes: the sample's
    raw spectra, see :mod:`.line_shifts`) its :func:`shift_gain`. With
    ``neighbours`` (sample pixels and a neighbour of each in the image) its
    clusters get their spatial coherence. With ``held_out`` (sample pixels
    the candidates are not fitted to) each candidate's mixture scores them
    (:attr:`Candidate.held_out`), and :func:`choose_k` reads those scores
    instead of the BIC; ``line_shifts`` then holds the whole sample, and the
    velocity test sees the held-out pixels too, each in its most probable
    cluster. The fits of the split proposals, and
    each k's k-means candidate beside them, run on ``workers`` threads, with
    the same result as on one.
    """
    with _mapper(workers) as parallel_map:
        yield from _candidates(
            latents, features, ks, likelihood, seed, mixing_test, line_shifts, neighbours, held_out,
            parallel_map,
        )


#: A split proposal's fit: the log-likelihood of the two halves, and the sample
#: rows that end in the new half.
_SplitFit = tuple[float, np.ndarray]
#: ``map``, or a thread pool's: the same results in the same order.
_Map = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]


@contextmanager
def _mapper(workers: int) -> Iterator[_Map]:
    """``map`` on one worker; on more, a pool's map, whose threads share small fits.

    Each fit is a few hundred small numpy operations that release the GIL
    while they compute, so two threads fit the proposals about 1.5 times as
    fast as one.
    """
    if workers <= 1:
        yield map
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="choose k") as pool:
        yield pool.map


def _candidates(
    latents: np.ndarray,
    features: np.ndarray,
    ks: list[int],
    likelihood: str | None,
    seed: int,
    mixing_test: bool,
    line_shifts: LineShifter | None,
    neighbours: NeighbourPairs | None,
    held_out: HeldOut | None,
    parallel_map: _Map,
) -> Iterator[Candidate]:
    """The candidates of :func:`fit_candidates`, their split proposals fitted through ``parallel_map``."""
    previous: Candidate | None = None
    # The velocity test sees the whole sample, the held-out pixels too: a compact object's
    # gain over a moved copy halves with the pixels, its penalty does not.
    n_sample = features.shape[0] + (0 if held_out is None else held_out.rows.size)
    penalty = bic_penalty(features.shape[1], n_sample)
    if held_out is not None and line_shifts is not None:
        assert line_shifts.features.shape[0] == n_sample, "line_shifts must hold the whole sample"
    split_fits: dict[tuple[bytes, bytes], _SplitFit] = {}
    known_proposals: dict[bytes, list[np.ndarray]] = {}
    # Once a k's best split fails the kind's test, k is refused whatever comes above it:
    # the candidates above keep the likelihood's best split, as a given k does.
    second_chances = True

    def tested(candidate: Candidate) -> Candidate:
        """``candidate`` with the kind's split tests: its mixing ratio, its shift gain."""
        if mixing_test and candidate.fit is not None:
            mixing = mixing_ratio(features, candidate.labels, candidate.fit.mixture.params)
            candidate = replace(candidate, tests={**candidate.tests, MIXING_RATIO: mixing})
        if line_shifts is None or candidate.fit is None:
            return candidate
        mixture = candidate.fit.mixture
        empty = _empty_clusters(mixture.brightness)
        labels, tested_features = candidate.labels, features
        if held_out is not None:
            labels = np.empty(n_sample, dtype=candidate.labels.dtype)
            labels[held_out.fitted_rows] = candidate.labels
            labels[held_out.rows] = mixture.posteriors(held_out.features).argmax(axis=1)
            tested_features = line_shifts.features
        moved = line_shifts.clusters(labels, candidate.k)
        shift = shift_gain(tested_features, labels, mixture.params, moved, skip=empty)
        return replace(candidate, tests={**candidate.tests, SHIFT_GAIN: shift})

    def from_kmeans(k: int) -> Candidate:
        """The candidate of k-means on the latents, refined and tested."""
        labels = fit_kmeans(latents, k, seed=seed, n_init=2).labels
        return tested(_from_labels(labels, k, features, likelihood, seed))

    for k in ks:
        # On a pool the k-means candidate is made on one thread while the split
        # proposals are fitted on the others; plain ``map`` makes it when it is asked for.
        kmeans_candidate = iter(parallel_map(from_kmeans, [k]))
        if likelihood is None or previous is None or previous.k != k - 1:
            best = next(kmeans_candidate)
        else:
            ranked = _ranked_splits(
                previous, latents, features, likelihood, seed, parallel_map, split_fits, known_proposals
            )
            best = next(kmeans_candidate)
            for tries, split in enumerate(ranked):
                wanted = tries == 0 or (second_chances and _refused_by_kind(best, penalty))
                if tries == _SPLIT_TRIES or not wanted:
                    break
                option = tested(_from_labels(split, k, features, likelihood, seed))
                assert option.fit is not None and best.fit is not None
                second_chance = _refused_by_kind(best, penalty) and not _refused_by_kind(option, penalty)
                if second_chance and not _is_velocity_copy(best, penalty):
                    # A material in place of a mixture is no cut of a few pixels (an outlier).
                    second_chance = _smaller_half(split, previous) >= _MIN_MATERIAL_SHARE * features.shape[0]
                if second_chance or (tries == 0 and option.fit.log_likelihood > best.fit.log_likelihood):
                    best = option
        best = _scored(best, latents, features, neighbours, held_out, seed)
        second_chances = second_chances and not _refused_by_kind(best, penalty)
        previous = best
        yield best


def bic_penalty(n_features: int, n_points: int) -> float:
    """BIC penalty, in log-likelihood, of one more cluster's spectrum."""
    return 0.5 * n_features * float(np.log(n_points))


def merge_gain(features: np.ndarray, labels: np.ndarray, k: int, likelihood: str, seed: int) -> float:
    """Least log-likelihood the clusters ``labels`` (0..k-1) gain over merging any two of them.

    Both sides are fitted from the labels the way candidates are. With the
    true classes of a synthetic cube it says whether the data hold enough
    evidence for its true k: below one :func:`bic_penalty`, no likelihood
    criterion can tell its weakest class from a split within one class.
    """
    return min(pair_merge_gains(features, labels, k, likelihood, seed).values(), default=float("inf"))


def pair_merge_gains(
    features: np.ndarray, labels: np.ndarray, k: int, likelihood: str, seed: int
) -> dict[tuple[int, int], float]:
    """Log-likelihood the clusters ``labels`` (0..k-1) gain over merging each pair (a, b), a < b.

    The merged fit starts from the labels with b in a, and its EM may move
    pixels between the classes left (see :func:`merge_gain`).
    """
    n_sub, em_iter = _CANDIDATE_SUB[likelihood], CANDIDATE_EM_ITER
    whole = fit_classes(features, labels, k, likelihood, n_sub=n_sub, seed=seed, max_iter=em_iter)
    gains = {}
    for first in range(k):
        for second in range(first + 1, k):
            merged = np.where(labels == second, first, labels)
            merged = np.where(merged > second, merged - 1, merged)
            fit = fit_classes(features, merged, k - 1, likelihood, n_sub=n_sub, seed=seed, max_iter=em_iter)
            gains[first, second] = whole.log_likelihood - fit.log_likelihood
    return gains


def _is_velocity_copy(candidate: Candidate, penalty: float) -> bool:
    """Whether a cluster of ``candidate`` is another's spectrum shifted in wavelength (:func:`shift_gain`)."""
    return candidate.tests.get(SHIFT_GAIN, float("inf")) <= penalty


def _refused_by_kind(candidate: Candidate, penalty: float) -> bool:
    """Whether the kind's split test refuses ``candidate``: a velocity copy, or a mix of the others."""
    return _is_velocity_copy(candidate, penalty) or candidate.tests.get(MIXING_RATIO, 0.0) >= MAX_MIXING_RATIO


def _smaller_half(split: np.ndarray, previous: Candidate) -> int:
    """Pixels in the smaller half of the cluster of ``previous`` that ``split`` (labels of k) cuts in two."""
    new = split == previous.k
    if not new.any():
        return 0
    cut = int(previous.labels[new][0])
    return int(min(np.count_nonzero(new), np.count_nonzero(split == cut)))


def mixing_ratio(features: np.ndarray, labels: np.ndarray, shapes: np.ndarray) -> float:
    """Largest, over clusters, of how well the other clusters explain its pixels.

    Reflectance pixels are linear mixtures of a few pure materials. For each
    cluster j, the squared residual of its pixels under its own shape (the
    Gaussian ray model: best amplitude >= 0, unit noise) is divided by their
    squared residual under the best non-negative combination of the other
    clusters' shapes (NNLS, per pixel). A real material's pixels lie off the
    cone of the others (ratio << 1); a cluster cut along a mixing line
    between others lies inside it (ratio >= 1).

    Parameters
    ----------
    features
        (n, F) whitened reflectance features.
    labels
        (n,) cluster 0..k-1 of each pixel.
    shapes
        (k, F) unit shape of each cluster (``Mixture.params`` for one
        component per class).
    """
    worst = 0.0
    if shapes.shape[0] < 2:
        return worst
    for cluster in range(shapes.shape[0]):
        members = features[labels == cluster].astype(np.float64)
        if members.shape[0] == 0:
            continue
        own = float((members**2).sum() - (np.maximum(members @ shapes[cluster], 0.0) ** 2).sum())
        rest = np.delete(shapes, cluster, axis=0).astype(np.float64)
        others = float(((members - abundances(members, rest) @ rest) ** 2).sum())
        worst = max(worst, own / max(others, 1e-300))
    return worst


def _empty_clusters(brightness: np.ndarray | None) -> np.ndarray:
    """Clusters whose mean brightness is below the noise: no emission, so no spectrum to shift."""
    if brightness is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(brightness[:, 0] < _EMPTY_BRIGHTNESS)


def shift_gain(
    features: np.ndarray,
    labels: np.ndarray,
    shapes: np.ndarray,
    moved: ShiftedClusters,
    skip: np.ndarray | None = None,
) -> float:
    """Least log-likelihood a cluster's own spectrum gains over another's, shifted in wavelength.

    For each cluster j, its pixels' log-likelihood under its own shape (the
    Gaussian model: best amplitude >= 0, unit noise) minus their best
    log-likelihood under another cluster's mean spectrum moved by one
    velocity (:meth:`.ShiftedClusters.explained`), the same for all of j's
    pixels. A class of its own gains far more than a BIC penalty; the same
    class at another velocity gains less. Returns the smallest gain over
    clusters (inf for fewer than two clusters).

    Parameters
    ----------
    features
        (n, F) whitened line-flux features.
    labels
        (n,) cluster 0..k-1 of each pixel.
    shapes
        (k, F) unit shape of each cluster.
    moved
        The clusters' mean raw spectra, to move (:meth:`.LineShifter.clusters`).
    skip
        Clusters not tested (empty ones: their fitted shape is noise), though
        their shapes still count as others'.
    """
    k = shapes.shape[0]
    least = float("inf")
    if k < 2:
        return least
    tested = np.setdiff1d(np.flatnonzero(np.bincount(labels, minlength=k)), [] if skip is None else skip)
    if tested.size == 0:
        return least
    return float(cluster_shift_gains(features, labels, shapes, moved, tested)[0].min())


def cluster_shift_gains(
    features: np.ndarray, labels: np.ndarray, shapes: np.ndarray, moved: ShiftedClusters, clusters: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster of ``clusters``, what :func:`shift_gain` takes the least of, and the other explaining it.

    Returns
    -------
    gains, others
        (m,) the log-likelihood each cluster's own shape gains over the best
        other cluster's mean spectrum moved in velocity, and that other.
    """
    explained, others = moved.explained(features, labels, clusters)
    gains = np.empty(clusters.size)
    for row, cluster in enumerate(clusters):
        members = features[labels == cluster]
        own = np.maximum(members @ shapes[cluster].astype(members.dtype), 0.0) ** 2
        gains[row] = 0.5 * (float(own.sum(dtype=np.float64)) - explained[row])
    return gains, others


def _from_labels(
    labels: np.ndarray, k: int, features: np.ndarray, likelihood: str | None, seed: int
) -> Candidate:
    """A candidate fitted from ``labels``, not scored yet (see :func:`_scored`)."""
    fit = None
    if likelihood is not None:
        n_sub = _CANDIDATE_SUB[likelihood]
        fit = fit_classes(features, labels, k, likelihood, n_sub=n_sub, seed=seed, max_iter=CANDIDATE_EM_ITER)
        labels = fit.posteriors.argmax(axis=1)
    return Candidate(k, labels, float("nan"), fit)


def _scored(
    candidate: Candidate,
    latents: np.ndarray,
    features: np.ndarray,
    neighbours: NeighbourPairs | None,
    held_out: HeldOut | None,
    seed: int,
) -> Candidate:
    """``candidate`` with its silhouette, frontier, coherence and held-out score, once kept for its k."""
    scored = replace(candidate, silhouette=silhouette(latents, candidate.labels, seed=seed))
    if candidate.fit is None:
        return scored
    mixture = candidate.fit.mixture
    if held_out is not None:
        scored = replace(scored, held_out=mixture.pixel_log_likelihood(held_out.features))
    frontiers = pair_frontiers(candidate.labels, mixture.class_log_likelihood(features))
    coherence = float("nan")
    if neighbours is not None:
        neighbour_labels = mixture.class_log_likelihood(neighbours.features).argmax(axis=1)
        crowded = frontiers > MAX_FRONTIER_DENSITY
        coherences = pair_coherence(candidate.labels[neighbours.of], neighbour_labels, candidate.k)[crowded]
        if np.isfinite(coherences).any():
            coherence = float(np.nanmin(coherences))
    return replace(scored, frontier=float(frontiers.max(initial=0.0)), coherence=coherence)


def pair_frontiers(labels: np.ndarray, class_log_likelihood: np.ndarray) -> np.ndarray:
    """How crowded the frontier between each two clusters is, as a (k, k) matrix (0 on the diagonal).

    For each pair of clusters, each pixel of the pair has a signed distance
    to their boundary: its log-likelihood ratio between the two. On each
    side, in units of that side's median distance, the density of pixels
    within ``_FRONTIER_WIDTH`` of the boundary is compared with the density
    at the side's densest distance. Near 0: the two are separate groups;
    near 1: the boundary cuts through the middle of one group. A pair's
    value is the larger of its two sides'.
    """
    k = class_log_likelihood.shape[1]
    # Bins half the frontier wide: the first two are the frontier.
    bins = round(_FRONTIER_RANGE / (_FRONTIER_WIDTH / 2))
    frontiers = np.zeros((k, k))
    for first in range(k):
        for second in range(first + 1, k):
            pair = (labels == first) | (labels == second)
            ratio = class_log_likelihood[pair, first] - class_log_likelihood[pair, second]
            for distances in (ratio[ratio > 0], -ratio[ratio < 0]):
                if distances.size < _MIN_SPLIT_SIZE:
                    continue
                counts, _ = np.histogram(
                    distances / np.median(distances), bins=bins, range=(0.0, _FRONTIER_RANGE)
                )
                density = float(counts[:2].mean() / counts.max())
                frontiers[first, second] = frontiers[second, first] = max(frontiers[first, second], density)
    return frontiers


def pair_coherence(labels: np.ndarray, neighbour_labels: np.ndarray, k: int) -> np.ndarray:
    """How much neighbouring pixels of each two clusters keep to their own cluster, as a (k, k) matrix.

    ``labels`` are the clusters of pixels and ``neighbour_labels`` those of
    a neighbour of each in the image. Among the pairs whose two
    pixels both lie in clusters a or b, the share that agree is rescaled so
    that 0 is what labels scattered at random over those pixels would give
    and 1 is no pair across the two: two regions score near 1, a cluster
    cut through pixel-to-pixel variation near 0. NaN for pairs of clusters
    with fewer than ``_MIN_COHERENCE_PAIRS`` such pairs, and on the diagonal.
    """
    coherence = np.full((k, k), np.nan)
    for first in range(k):
        for second in range(first + 1, k):
            within = np.isin(labels, (first, second)) & np.isin(neighbour_labels, (first, second))
            if within.sum() < _MIN_COHERENCE_PAIRS:
                continue
            agree = float((labels[within] == neighbour_labels[within]).mean())
            share = 0.5 * float((labels[within] == first).mean() + (neighbour_labels[within] == first).mean())
            by_chance = share**2 + (1.0 - share) ** 2
            if by_chance < 1.0:
                coherence[first, second] = coherence[second, first] = (agree - by_chance) / (1.0 - by_chance)
    return coherence


def _ranked_splits(
    previous: Candidate,
    latents: np.ndarray,
    features: np.ndarray,
    likelihood: str,
    seed: int,
    parallel_map: _Map,
    split_fits: dict[tuple[bytes, bytes], _SplitFit],
    known_proposals: dict[bytes, list[np.ndarray]],
) -> list[np.ndarray]:
    """Labels with one cluster split in two, best first: by how much better the halves explain its pixels.

    Only splits that raise the likelihood are kept, and of cuts whose halves
    overlap by half or more (Jaccard index) only the best. The proposals are
    fitted through ``parallel_map``; ``split_fits`` and ``known_proposals``
    keep the fits and the proposals from one k to the next.
    """
    assert previous.fit is not None
    own = previous.fit.mixture.class_log_likelihood(features)[np.arange(features.shape[0]), previous.labels]
    shapes = scale_free(features, likelihood)
    unexplained = None
    if likelihood == "multinomial":
        unexplained = _unexplained(features, shapes, previous.fit.mixture)

    members_of = [np.flatnonzero(previous.labels == cluster) for cluster in range(previous.k)]

    def proposals(cluster: int) -> list[tuple[int, np.ndarray]]:
        members = members_of[cluster]
        if members.size < _MIN_SPLIT_SIZE:
            return []
        # Those of the latents and spectra depend only on the cluster's pixels: kept from k - 1.
        key = members.tobytes()
        if key not in known_proposals:
            known_proposals[key] = _split_proposals(latents[members], shapes[members], seed)
        cuts = known_proposals[key]
        if unexplained is not None:
            cuts = cuts + _residual_proposals(unexplained[members], seed)
        return [(cluster, halves) for halves in cuts]

    def fit(proposal: tuple[int, np.ndarray]) -> _SplitFit:
        cluster, halves = proposal
        members = members_of[cluster]
        split = fit_classes(
            features[members],
            halves,
            2,
            likelihood,
            n_sub=_CANDIDATE_SUB[likelihood],
            seed=seed,
            max_iter=CANDIDATE_EM_ITER,
        )
        return split.log_likelihood, members[split.posteriors.argmax(axis=1) == 1]

    every = [proposal for group in parallel_map(proposals, range(previous.k)) for proposal in group]
    # A fit depends only on the cluster's pixels and the proposal: a cluster that k - 1's
    # split left whole gets the fits it had then.
    keys = [(members_of[cluster].tobytes(), halves.tobytes()) for cluster, halves in every]
    missing = {key: proposal for key, proposal in zip(keys, every, strict=True) if key not in split_fits}
    split_fits.update(zip(missing, parallel_map(fit, missing.values()), strict=True))
    # Each cut as (gain, new half, rest of its cluster), as boolean masks over the sample.
    cuts: list[tuple[float, np.ndarray, np.ndarray]] = []
    for (cluster, _), key in zip(every, keys, strict=True):
        log_likelihood, new_members = split_fits[key]
        gain = log_likelihood - float(own[members_of[cluster]].sum())
        if gain > 0:
            new, rest = np.zeros((2, previous.labels.size), dtype=bool)
            new[new_members] = True
            rest[members_of[cluster]] = True
            rest[new_members] = False
            cuts.append((gain, new, rest))
    cuts.sort(key=lambda cut: -cut[0])
    # A cut is its two halves, whichever is called new; proposals that cut alike count once.
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for _, new, rest in cuts:
        if not any(_overlaps(new, one) or _overlaps(new, other) for one, other in kept):
            kept.append((new, rest))
    return [np.where(new, previous.k, previous.labels) for new, _ in kept]


def _overlaps(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two sets of pixels (boolean masks) share half or more of their union."""
    return bool((first & second).sum() >= 0.5 * (first | second).sum())


def _unexplained(features: np.ndarray, shapes: np.ndarray, mixture: Mixture) -> np.ndarray:
    """Each pixel's scale-free spectrum less that of its most likely component (counts).

    The components of a class of counts mix its spectrum with the shared
    background at a few shares, so what is left is the pixel's variation that
    neither its class nor how much ground shows through explains.
    """
    component = mixture.log_joint(features).argmax(axis=1)
    return shapes - np.sqrt(np.exp(mixture.params)).astype(shapes.dtype)[component]


def _split_proposals(latents: np.ndarray, shapes: np.ndarray, seed: int) -> list[np.ndarray]:
    """Ways to cut one cluster in two, as 0/1 labels: the likelihood picks among them.

    2-means on the latents, and along each of the cluster's leading principal
    directions of the scale-free spectra. The autoencoder's latents can miss a
    difference that is small next to the cluster's other variation (10 %
    against 25 % of one pigment, under a ground that shows through by varying
    amounts); one of the principal directions then carries it. Where the
    ground dominates even those, :func:`_residual_proposals` adds more.
    """
    return _two_means([latents, *_leading_projections(shapes)], seed)


def _residual_proposals(residuals: np.ndarray, seed: int) -> list[np.ndarray]:
    """Cuts along the leading principal directions of what a cluster's model leaves (:func:`_unexplained`)."""
    return _two_means(_leading_projections(residuals), seed)


def _leading_projections(points: np.ndarray) -> list[np.ndarray]:
    """``points`` (n, d) projected on each of their :data:`_SPLIT_DIRECTIONS` leading principal directions."""
    centred = (points - points.mean(axis=0)).astype(np.float64)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    return [(centred @ vectors[:, -1 - i])[:, None] for i in range(_SPLIT_DIRECTIONS)]


def _two_means(point_sets: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """The 2-means labels of each set of points that leave neither half empty."""
    cuts = [fit_kmeans(points, 2, seed=seed, n_init=2).labels for points in point_sets]
    return [halves for halves in cuts if np.bincount(halves, minlength=2).min() > 0]


def criteria_of(candidates: dict[int, Candidate], n_points: int) -> dict[str, dict[int, float]]:
    """Criterion name -> {k: value} for reporting and plotting.

    ``n_points`` is the number of pixels the candidates were fitted to,
    without any held out: with pixels held out, every criterion but the
    held-out log-likelihood and the shift gain (the whole sample) describes
    the fits to that part of the sample.
    """
    criteria: dict[str, dict[int, float]] = {"silhouette": {k: c.silhouette for k, c in candidates.items()}}
    if all(c.fit is not None for c in candidates.values()):
        criteria["bic"] = {k: c.bic(n_points) for k, c in candidates.items()}
        criteria["log_likelihood"] = {
            k: c.fit.log_likelihood for k, c in candidates.items() if c.fit is not None
        }
        criteria["frontier_density"] = {k: c.frontier for k, c in candidates.items()}
        if _held_out_scored(candidates):
            criteria[HELD_OUT_LOG_LIKELIHOOD] = {
                k: float(c.held_out.sum()) for k, c in candidates.items() if c.held_out is not None
            }
        if any(np.isfinite(c.coherence) for c in candidates.values()):
            criteria["spatial_coherence"] = {k: c.coherence for k, c in candidates.items()}
        for name in (MIXING_RATIO, SHIFT_GAIN):
            if any(name in c.tests for c in candidates.values()):
                criteria[name] = {k: c.tests.get(name, float("nan")) for k, c in candidates.items()}
    return criteria


def _held_out_scored(candidates: dict[int, Candidate]) -> bool:
    """Whether every candidate scored pixels held out of the fits (the held-out rule chooses k)."""
    return all(c.held_out is not None for c in candidates.values())


def likelihood_criterion(criteria: Mapping[str, Mapping[int, float]]) -> tuple[str, str, bool] | None:
    """The likelihood criterion that chose k among ``criteria`` (:func:`criteria_of`), for plots.

    Returns its name, how a plot labels it and whether higher is better: the
    held-out log-likelihood where candidates were scored on held-out pixels,
    else the BIC; None without either (the silhouette chose).
    """
    if criteria.get(HELD_OUT_LOG_LIKELIHOOD):
        return HELD_OUT_LOG_LIKELIHOOD, "held-out log-likelihood", True
    if criteria.get("bic"):
        return "bic", "BIC", False
    return None


def choose_k(candidates: dict[int, Candidate], n_points: int) -> KChoice:
    """Pick k among the candidates; see the module docstring for the rule.

    ``n_points`` is the number of pixels the candidates were fitted to,
    without any held out (the velocity test's penalty adds those).
    """
    ks = sorted(candidates)
    if candidates[ks[0]].fit is None:
        scores = np.array([candidates[k].silhouette for k in ks])
        best = ks[int(np.nanargmax(scores))] if np.isfinite(scores).any() else ks[0]
        return KChoice(
            best, f"k={best} has the highest silhouette ({candidates[best].silhouette:.3f})",
            f"{best} clusters separate the spectra best of the k tried",
        )
    n_features = candidates[ks[0]].fit.mixture.params.shape[1]  # type: ignore[union-attr]
    penalty = bic_penalty(n_features, n_points)
    held_out = _held_out_scored(candidates)
    chosen = ks[0]
    largest = 0.0
    stop_note = f"no split beyond k={ks[-1]} was tried"
    stop_plain = f"no k above {ks[-1]} was tried (raise the largest k to try more)"
    refused = None
    for k in ks[1:]:
        refused = k
        if held_out:
            stop = _held_out_refusal(candidates[k - 1], candidates[k], n_features, n_points)
        else:
            gain = candidates[k].fit.log_likelihood - candidates[k - 1].fit.log_likelihood  # type: ignore[union-attr]
            largest = max(largest, gain)
            stop = _bic_refusal(candidates[k], gain, largest, penalty)
        if stop is not None:
            stop_note, stop_plain = stop
            break
        chosen, refused = k, None
    summary = f"{chosen} clusters: each describes the spectra clearly better than fewer; {stop_plain}"
    if candidates[chosen].silhouette < OVERLAPPING_SILHOUETTE:
        summary += (
            ". The clusters grade into each other rather than stand apart, so pixels near "
            "their borders are uncertain (see the confidence layer)"
        )
    return KChoice(
        chosen,
        f"k={chosen}: every split up to {chosen} is well supported by the data; {stop_note}; "
        f"silhouette {candidates[chosen].silhouette:.3f}",
        summary,
        refused,
    )


def _held_out_refusal(
    previous: Candidate, candidate: Candidate, n_features: int, n_fitted: int
) -> tuple[str, str] | None:
    """Why the split from ``previous`` to ``candidate`` is refused by the held-out rule, or None.

    The velocity test's penalty is that of the whole sample, ``n_fitted``
    pixels and the held-out ones, which its shift gain was measured on.
    """
    assert previous.held_out is not None and candidate.held_out is not None
    gains = candidate.held_out - previous.held_out
    gain = float(gains.sum())
    error = HELD_OUT_STANDARD_ERRORS * float(np.sqrt(gains.size) * gains.std(ddof=1))
    if gain <= error:
        held = "the log-likelihood of the sample pixels held out of the fits"
        change = (
            f"lowers {held} (by {-gain:.1f})" if gain <= 0
            else f"raises {held} by {gain:.1f}, no more than its standard error over them ({error:.1f})"
        )
        return (
            f"going to k={candidate.k} {change}",
            "a cluster more would not describe spectra it was not fitted to clearly better",
        )
    return _kind_test_refusal(candidate, bic_penalty(n_features, n_fitted + gains.size))


def _bic_refusal(candidate: Candidate, gain: float, largest: float, penalty: float) -> tuple[str, str] | None:
    """Why the BIC rules refuse the split to ``candidate`` (its gain, the largest so far), or None."""
    k = candidate.k
    if gain <= penalty:
        return (
            f"going to k={k} gains less than the BIC penalty",
            "a cluster more would not describe the spectra better than noise does",
        )
    refusal = _kind_test_refusal(candidate, penalty)
    if refusal is not None:
        return refusal
    frontier = candidate.frontier
    separated = gain >= WEAK_SPLIT_PENALTIES * penalty and frontier < MAX_FRONTIER_DENSITY
    if gain < MIN_RELATIVE_GAIN * largest and not separated:
        return (
            f"going to k={k} gains only {gain / largest:.1%} of the largest split's gain "
            f"({gain / penalty:.1f} BIC penalties), with a frontier density of {frontier:.2f} "
            "between its closest clusters: a split within one class",
            "a cluster more would cut one material in two, with no gap between the halves",
        )
    coherence = candidate.coherence
    if coherence < MIN_SPATIAL_COHERENCE:
        return (
            f"at k={k} two clusters with a crowded frontier (density above {MAX_FRONTIER_DENSITY}) "
            f"are interleaved pixel by pixel in the image (spatial coherence {coherence:.2f}): "
            "one material's pixel-to-pixel variation, cut in two",
            "a cluster more would cut one material in two along its pixel-to-pixel variation, "
            "scattered through the same regions",
        )
    return None


def _kind_test_refusal(candidate: Candidate, penalty: float) -> tuple[str, str] | None:
    """Why the kind's own split tests refuse ``candidate`` (with numbers, in plain words), or None."""
    mixing = candidate.tests.get(MIXING_RATIO)
    if mixing is not None and mixing >= MAX_MIXING_RATIO:
        return (
            f"at k={candidate.k} a cluster's pixels are explained as well by a non-negative mix of "
            f"the other clusters ({mixing:.2f} of its own shape's residual): a mixture, not a material",
            "a cluster more would only be a mix of the others, not a material of its own",
        )
    shift = candidate.tests.get(SHIFT_GAIN)
    if shift is not None and _is_velocity_copy(candidate, penalty):
        return (
            f"at k={candidate.k} a cluster's pixels are explained within a BIC penalty "
            f"({shift / penalty:.1f} penalties) by another cluster's spectrum shifted in "
            "wavelength: one class at two velocities",
            "a cluster more would be another's spectrum shifted in wavelength: one gas at two velocities",
        )
    return None
