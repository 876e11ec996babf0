"""Why a cube's clusters are what they are: two measurements behind docs/how-it-works.md, section 5.

``evidence CUBE SEED``: ``segment`` with default settings, its clusters against
the true classes (pixels of each class per cluster), then, on a sample as
large as the training sample, what the true classes gain over merging each
pair of them, in BIC penalties (:func:`~napari_deepcube.core.kselect.pair_merge_gains`;
the least of them is the "evidence" of ``run.py --suite hard``)::

    python benchmarks/diagnose.py evidence nebula/velocity 0

``smoothness CUBE SEED K``: ``segment`` with k = K; for the split from K - 1
to K (the two clusters of K whose pixels fall in one cluster of K - 1), the
log-likelihood ratio between them at every pixel, less its half's mean,
correlated with the same at the right-hand and lower neighbours in the same
half. A cut along a ramp leaves the ratio varying smoothly inside each half;
two uniform materials leave it flat plus noise::

    python benchmarks/diagnose.py smoothness "painting/gradient mixtures" 3 8

``shifts CUBE SEED`` (line fluxes): ``segment`` with default settings; for
each of its clusters and each true class, on the sample of ``evidence``,
the least log-likelihood its own shape gains over another's mean spectrum
moved in velocity (:func:`~napari_deepcube.core.kselect.shift_gain`'s test,
cluster by cluster), in BIC penalties, and which other explains it best.
At most one penalty: a velocity copy::

    python benchmarks/diagnose.py shifts nebula/velocity 0

``heldout CUBE SEED``: the choice of k by held-out likelihood. A random half of
the pixels is segmented, with default settings (our k) and with k = the true k + 4,
which builds the candidates of every k below it; each candidate's mixture up to the
true k + 3 (all fitted alike; with k given, reflectance skips its mixing test, so its
candidates past a refused split can differ from an automatic run's) is scored on the
other half's features (the log-likelihood summed over its pixels), and the k of the highest
score is the held-out choice. Prints both choices with their ARI on the half, and the
held-out gain of each k over k - 1 in BIC penalties of that half; ``--variance``
segments a nebula with its per-voxel variances (as a MUSE STAT gives them), where
since session 21 "ours" is itself a held-out choice, made within the half::

    python benchmarks/diagnose.py heldout nebula/extinction 0 --variance

CUBE is a stress variant (``painting/clean``, ...) or ``hard painting`` / ``hard nebula``.
The nebulae run without their per-voxel variances, as in the stress suite.
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from run import CubeSpec, _load, true_class_picks, true_class_sample


def _spec(cube: str, seed: int) -> CubeSpec:
    if cube.startswith("hard "):
        return CubeSpec(name=f"{cube} s{seed}", family=cube.split()[1], hard=True, seed=seed)
    return CubeSpec(name=f"{cube} s{seed}", family="stress", variant=cube, seed=seed)


def contingency(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(clusters, classes) pixel counts: clusters 1..k of ``labels``, classes the values of ``truth``."""
    classes = np.unique(truth)
    clusters = range(1, int(labels.max()) + 1)
    return np.array([[int(np.sum((labels == c) & (truth == t))) for t in classes] for c in clusters])


def within_half_correlation(ratio: np.ndarray, halves: np.ndarray) -> float:
    """Correlation of ``ratio`` (H, W), less each half's mean, between neighbours in the same half.

    ``halves`` (H, W) is 0 or 1 for the split's two clusters, -1 elsewhere.
    Right-hand and lower neighbours both count.
    """
    centred = ratio.astype(np.float64).copy()
    for half in (0, 1):
        centred[halves == half] -= centred[halves == half].mean()
    height, width = ratio.shape
    here, there = [], []
    for down, right in ((0, 1), (1, 0)):
        first, second = halves[: height - down, : width - right], halves[down:, right:]
        same = (first >= 0) & (first == second)
        here.append(centred[: height - down, : width - right][same])
        there.append(centred[down:, right:][same])
    return float(np.corrcoef(np.concatenate(here), np.concatenate(there))[0, 1])


def _segment(cube, seed: int, k: int | None = None, variance: bool = False):
    from napari_deepcube.core.config import SegmentConfig
    from napari_deepcube.core.pipeline import segment

    return segment(cube, SegmentConfig(seed=seed, k=k, variance=variance))


def evidence(cube_name: str, seed: int) -> None:
    from napari_deepcube.core.kselect import bic_penalty, pair_merge_gains

    cube, truth, _ = _load(_spec(cube_name, seed))
    result = _segment(cube, seed)
    truth = truth.ravel()
    print(f"{cube_name} s{seed}: k = {result.k}; pixels of each true class {np.bincount(truth)[1:].tolist()}")
    for cluster, counts in enumerate(contingency(result.labels.ravel(), truth), start=1):
        print(f"  cluster {cluster}: {counts.tolist()}")
    preprocessor = result.model.preprocessor
    features, classes = true_class_sample(cube, truth, preprocessor, seed)
    gains = pair_merge_gains(features, classes, int(truth.max()), preprocessor.likelihood, seed)
    penalty = bic_penalty(features.shape[1], features.shape[0])
    for (first, second), gain in gains.items():
        print(f"  classes {first + 1} and {second + 1} merged: {gain / penalty:.2f} BIC penalties lost")


def smoothness(cube_name: str, seed: int, k: int) -> None:
    cube, truth, _ = _load(_spec(cube_name, seed))
    result = _segment(cube, seed, k)
    height, width = cube.image_shape
    rows, cols = np.divmod(np.arange(height * width), width)
    features = result.model.preprocessor.transform(cube.spectra(rows, cols))
    labels = result.labels.ravel() - 1
    before = result.model.candidates[k - 1].posteriors(features).argmax(axis=1)

    def shared(pair: tuple[int, int]) -> float:
        """The least share of either cluster's pixels in the (k - 1)-cluster they share most."""
        return max(min(np.mean(before[labels == c] == old) for c in pair) for old in range(k - 1))

    first, second = max(itertools.combinations(range(k), 2), key=shared)
    halves = np.full(height * width, -1)
    halves[labels == first], halves[labels == second] = 0, 1
    ratio = result.model.mixture.class_log_likelihood(features)
    split = (ratio[:, first] - ratio[:, second]).reshape(height, width)
    table = contingency(np.where(halves >= 0, halves + 1, 0), truth.ravel())
    print(
        f"{cube_name} s{seed}, split {k - 1} -> {k}: halves of {table.sum(axis=1).tolist()} pixels, "
        f"true classes {table.tolist()}; within-half correlation "
        f"{within_half_correlation(split, halves.reshape(height, width)):.3f}"
    )


def shifts(cube_name: str, seed: int) -> None:
    from napari_deepcube.core.kselect import bic_penalty

    cube, truth, _ = _load(_spec(cube_name, seed))
    result = _segment(cube, seed)
    picks = true_class_picks(truth, seed)
    rows, cols = np.divmod(picks, cube.image_shape[1])
    spectra, variances = cube.spectra(rows, cols), cube.variances(rows, cols)
    preprocessor = result.model.preprocessor
    features = preprocessor.transform(spectra, variances)
    penalty = bic_penalty(features.shape[1], features.shape[0])
    print(f"{cube_name} s{seed}: k = {result.k}")
    for name, labels in (("cluster", result.labels.ravel()[picks] - 1), ("class", truth.ravel()[picks] - 1)):
        gains = cluster_shift_gains(features, spectra, labels, cube.axis.angstrom, preprocessor, seed)
        for index, (gain, by) in enumerate(gains):
            size = int(np.sum(labels == index))
            print(f"  {name} {index + 1} ({size} pixels): {gain / penalty:.2f} penalties over {by + 1} moved")


def heldout(cube_name: str, seed: int, variance: bool) -> None:
    from sklearn.metrics import adjusted_rand_score

    from napari_deepcube.core.kselect import bic_penalty

    cube, truth, _ = _load(_spec(cube_name, seed))
    true_k = int(truth.max())
    half = np.random.default_rng(seed).random(cube.image_shape) < 0.5
    fitted, held = half & cube.mask, ~half & cube.mask
    ours = _segment(cube.with_mask(half), seed, variance=variance)
    # The final mixture of a run has more components per class, fitted longer, than its
    # candidates: only candidates are compared, so the widest run asks for one k more.
    model = _segment(cube.with_mask(half), seed, true_k + 4, variance).model
    rows, cols = np.nonzero(held)
    features = model.preprocessor.transform(cube.spectra(rows, cols), cube.variances(rows, cols))
    mixtures = {k: mixture for k, mixture in model.candidates.items() if k <= true_k + 3}
    scores = {k: float(mix.pixel_log_likelihood(features).sum()) for k, mix in mixtures.items()}
    best = max(scores, key=scores.__getitem__)
    penalty = bic_penalty(features.shape[1], features.shape[0])
    steps = [k for k in sorted(scores) if k - 1 in scores]
    gains = " ".join(f"{k}: {(scores[k] - scores[k - 1]) / penalty:+.1f}" for k in steps)
    best_labels = _segment(cube.with_mask(half), seed, best, variance).labels

    def ari(labels: np.ndarray) -> float:
        return adjusted_rand_score(truth[fitted], np.asarray(labels)[fitted])

    print(
        f"{cube_name} s{seed}: true k {true_k}; ours k = {ours.k} (ARI {ari(ours.labels):.3f}); held-out k = "
        f"{best} (ARI {ari(best_labels):.3f}); held-out gain of k over k - 1, penalties: {gains}"
    )


def cluster_shift_gains(
    features, spectra, labels, wavelengths, preprocessor, seed: int
) -> list[tuple[float, int]]:
    """Per cluster of ``labels`` (0..k-1): the least gain of its own shape over another's moved, and which.

    The shapes are fitted from the labels as candidates' are; the gains are
    :func:`~napari_deepcube.core.kselect.cluster_shift_gains`.
    """
    from napari_deepcube.core import kselect
    from napari_deepcube.core.cube import finite_or_zero
    from napari_deepcube.core.line_shifts import LineShifter
    from napari_deepcube.core.mixture import fit_classes

    k = int(labels.max()) + 1
    fit = fit_classes(features, labels, k, "gaussian", n_sub=1, seed=seed, max_iter=kselect.CANDIDATE_EM_ITER)
    shifter = LineShifter(preprocessor, features, finite_or_zero(spectra), None, wavelengths)
    moved = shifter.clusters(labels, k)
    gains, others = kselect.cluster_shift_gains(features, labels, fit.mixture.params, moved, np.arange(k))
    return [(float(gain), int(other)) for gain, other in zip(gains, others, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("evidence", "smoothness", "shifts", "heldout"):
        command = commands.add_parser(name)
        command.add_argument("cube")
        command.add_argument("seed", type=int)
        if name == "smoothness":
            command.add_argument("k", type=int)
        if name == "heldout":
            command.add_argument("--variance", action="store_true", help="nebulae with their variances")
    args = parser.parse_args()
    if args.command == "evidence":
        evidence(args.cube, args.seed)
    elif args.command == "shifts":
        shifts(args.cube, args.seed)
    elif args.command == "heldout":
        heldout(args.cube, args.seed, args.variance)
    else:
        smoothness(args.cube, args.seed, args.k)


if __name__ == "__main__":
    main()
