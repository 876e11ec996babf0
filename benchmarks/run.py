"""Benchmark: segmentation quality, speed and memory against baselines.

Every (cube, method) pair runs in a fresh process so that its peak memory is
its own. The table gives the adjusted Rand index (ARI) against ground truth,
the k used, wall time, peak resident memory, and, for our pipeline, the time
ratio to PCA(10)+k-means on the same cube. The row of our pipeline with the
true k also gives the evidence for the true k: how many BIC penalties the true
classes gain, in our features, over merging the closest two of them
(:func:`~napari_deepcube.core.kselect.merge_gain`); below 1 the data cannot
tell the weakest class from a split within one class. "Found" counts the true
classes that some cluster recovers (Jaccard index >= 0.5): the right k with a
class missing and another split in two is no success.

Suites (``--suite``):
  standard  the sample cubes: MA-XRF painting 256x256x1024, MUSE-like nebula,
            and Jasper Ridge (real, with ground truth) when ../shared/data exists
  scale     the 512x512x1024 MA-XRF painting (speed and memory targets)
  hard      10 seeds each of the hard painting and hard nebula families, plus
            Jasper Ridge: mean and worst ARI per method, true-k hit rate
  stress    the misspecification stress suite (benchmarks/stress): MA-XRF
            paintings, nebulae and reflectance scenes that each break one
            assumption of the method, 5 seeds each, against PCA(10)+k-means
            with the true k and a supervised limit; ``--variants`` picks some;
            ``--variance`` also segments each nebula with its true per-voxel
            variances (as a MUSE STAT gives them), the method "ours (variances)";
            ``--rest-frame`` also with them and every spectrum moved to one
            rest frame, "ours (rest frame)"
  gui       the segmentation widget's run against `deepcube segment` on the same
            painting and settings (benchmarks/gui.py; needs a display);
            ``--gui-size`` and ``--gui-epochs`` shrink it for a quick check
  stages    time per stage against PCA + k-means, on the CPU and on a CUDA
            GPU when there is one (benchmarks/stages.py); ``--stage-cubes``
            names the cubes
  default   standard, scale, then stages (what `make bench` runs)
  all       all of the above

Run with ``make bench`` or ``python benchmarks/run.py --suite hard``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@dataclass(frozen=True)
class CubeSpec:
    """A benchmark cube, built inside the worker process from these values."""

    name: str
    family: str
    seed: int = 0
    hard: bool = False
    #: height and width (None: the generator's own)
    size: int | None = None
    #: channels of a painting (None: the generator's own)
    channels: int | None = None
    variant: str = ""


@dataclass
class Row:
    cube: str
    method: str
    k: int
    true_k: int
    ari: float
    seconds: float
    peak_mb: float
    found: int
    evidence: float = float("nan")
    #: per true class with at least 1 % of the scored pixels: recovered (Jaccard >= 0.5)?
    recovered: tuple[bool, ...] = ()


def _load(spec: CubeSpec):
    """(Datacube, truth labels or None, SyntheticCube or None)."""
    from napari_deepcube.core.cube import Datacube
    from napari_deepcube.core.synthetic import make_nebula, make_painting

    dims = {} if spec.size is None else {"height": spec.size, "width": spec.size}
    if spec.family == "painting":
        channels = {} if spec.channels is None else {"n_channels": spec.channels}
        synthetic = make_painting(**dims, **channels, hard=spec.hard, seed=spec.seed)
        return synthetic.cube, synthetic.labels, synthetic
    if spec.family == "nebula":
        synthetic = make_nebula(**dims, hard=spec.hard, seed=spec.seed)
        return synthetic.cube, synthetic.labels, synthetic
    if spec.family == "stress":
        from stress import VARIANTS

        stressed = VARIANTS[spec.variant](spec.seed, spec.size)
        return stressed.datacube(spec.name), stressed.labels, None
    data = np.load(SHARED_DATA / "jasper_ridge" / "jasper_ridge.npz", allow_pickle=False)
    return Datacube.from_array(data["cube"], name="jasper_ridge"), data["labels"], None


def _normalised(cube, kind: str) -> np.ndarray:
    spectra = np.asarray(cube.data, dtype=np.float32).reshape(-1, cube.n_channels)
    if kind == "counts":
        # HyperSpy-style preparation of counts: log1p then divide by the spectrum's max.
        spectra = np.log1p(np.maximum(spectra, 0))
    peak = np.abs(spectra).max(axis=1, keepdims=True)
    return spectra / np.where(peak > 0, peak, 1)


def _method(
    name: str, spec: CubeSpec, k_true: int, loaded: tuple
) -> tuple[np.ndarray, int, Callable[[], float] | None]:
    """Labels, k and, for our pipeline with the true k, how to measure the evidence for it (untimed).

    ``loaded`` is what :func:`_load` gave: building the cube is not timed.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    from napari_deepcube.core.config import SegmentConfig
    from napari_deepcube.core.pipeline import segment
    from napari_deepcube.core.preprocess import detect_kind
    from napari_deepcube.core.synthetic import attainable_labels

    cube, truth, synthetic = loaded
    if name == "limit" and synthetic is None:
        from stress.limit import supervised_limit

        spectra = np.asarray(cube.data).reshape(-1, cube.n_channels)
        kind = detect_kind(spectra[:4096].astype(np.float32))
        return supervised_limit(spectra, truth.ravel(), kind, spec.seed), k_true, None
    if name == "limit":
        return attainable_labels(synthetic).ravel(), k_true, None
    if name.startswith("ours"):
        # Only "ours (variances)" and "ours (rest frame)" divide by the cube's per-voxel variances
        # (stress nebulae carry their true ones): the other rows stay the method as measured without them.
        # "ours (rest frame)" is always at rest; the others decide, as by default.
        config = SegmentConfig(
            seed=spec.seed,
            k=k_true if name == "ours (true k)" else None,
            preview_every=0,
            variance=name in (VARIANCE_METHOD, REST_FRAME_METHOD),
            rest_frame=True if name == REST_FRAME_METHOD else None,
        )
        result = segment(cube, config)
        preprocessor = result.model.preprocessor
        evidence = partial(_true_k_evidence, cube, truth, preprocessor, spec.seed) if config.k else None
        return result.labels.ravel(), result.k, evidence
    kind = detect_kind(np.asarray(cube.data[:4], dtype=np.float32).reshape(-1, cube.n_channels))
    spectra = _normalised(cube, kind)
    if name == "PCA(10)+k-means":
        spectra = PCA(10, random_state=spec.seed).fit_transform(spectra)
    labels = KMeans(k_true, n_init=4, random_state=spec.seed).fit_predict(spectra)
    return labels, k_true, None


def true_class_picks(truth: np.ndarray, seed: int) -> np.ndarray:
    """Sorted flat indices of labelled pixels, a sample as large as our training sample."""
    from napari_deepcube.core.config import SegmentConfig

    scored = np.flatnonzero(truth.ravel() > 0)
    size = min(SegmentConfig().n_train, scored.size)
    return np.sort(np.random.default_rng(seed).choice(scored, size=size, replace=False))


def true_class_sample(cube, truth: np.ndarray, preprocessor, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and true classes (0..k-1) of :func:`true_class_picks`."""
    picks = true_class_picks(truth, seed)
    rows, cols = np.divmod(picks, cube.image_shape[1])
    features = preprocessor.transform(cube.spectra(rows, cols), cube.variances(rows, cols))
    return features, truth.ravel()[picks] - 1


def _true_k_evidence(cube, truth: np.ndarray, preprocessor, seed: int) -> float:
    """BIC penalties the true classes gain over their closest merge, on a sample as large as ours."""
    from napari_deepcube.core.kselect import bic_penalty, merge_gain
    from napari_deepcube.core.mixture import MIXTURE_LIKELIHOODS

    if preprocessor.likelihood not in MIXTURE_LIKELIHOODS:
        return float("nan")
    features, classes = true_class_sample(cube, truth, preprocessor, seed)
    gain = merge_gain(features, classes, int(truth.max()), preprocessor.likelihood, seed=seed)
    return gain / bic_penalty(features.shape[1], features.shape[0])


def _peak_rss_mb() -> float:
    """This process's peak resident memory.

    On Linux from ``VmHWM``: ``ru_maxrss`` of a spawned process starts at its
    parent's peak (it survives fork and exec), and the parent builds each cube
    to score the methods, so it reported the parent's peak for small methods.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(name: str, spec: CubeSpec, k_true: int, queue: mp.Queue) -> None:
    loaded = _load(spec)
    start = time.perf_counter()
    labels, k, measure_evidence = _method(name, spec, k_true, loaded)
    seconds = time.perf_counter() - start
    peak_mb = _peak_rss_mb()
    evidence = float("nan") if measure_evidence is None else measure_evidence()
    queue.put((labels, k, seconds, peak_mb, evidence))


def _baseline_rss_mb(spec: CubeSpec) -> float:
    """Peak memory of a process that only builds the cube: subtracted to isolate each method."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_build_only, args=(spec, queue))
    process.start()
    value = queue.get()
    process.join()
    return value


def _build_only(spec: CubeSpec, queue: mp.Queue) -> None:
    cube, _, _ = _load(spec)
    queue.put((_peak_rss_mb(), cube.nbytes_float32 / 2**20))


def run_cube(spec: CubeSpec, methods: list[str], report: Callable[[Row], None]) -> list[Row]:
    """Run every method on one cube, each in its own process."""
    from sklearn.metrics import adjusted_rand_score

    _, truth, _ = _load(spec)
    truth = truth.ravel()
    k_true = int(truth.max())
    rows = []
    context = mp.get_context("spawn")
    for name in methods:
        if name == "limit" and spec.family == "jasper":
            continue
        queue = context.Queue()
        process = context.Process(target=_worker, args=(name, spec, k_true, queue))
        process.start()
        labels, k, seconds, peak_mb, evidence = queue.get()
        process.join()
        scored = truth > 0
        labels = np.asarray(labels)
        ari = float(adjusted_rand_score(truth[scored], labels[scored]))
        recovered = recovered_classes(truth[scored], labels[scored])
        large = np.bincount(truth[scored])[1:] >= 0.01 * scored.sum()
        row = Row(
            spec.name, name, k, k_true, ari, seconds, peak_mb, int(recovered.sum()), evidence,
            tuple(bool(r) for r in recovered[large]),
        )
        report(row)
        rows.append(row)
    return rows


def recovered_classes(truth: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """For each class of ``truth`` (1..k), whether some cluster of ``labels`` recovers it (Jaccard >= 0.5).

    Both are labels of the same scored pixels. Classes are disjoint, so no
    cluster recovers two of them.
    """
    from sklearn.metrics.cluster import contingency_matrix

    overlap = contingency_matrix(truth, labels)
    union = overlap.sum(axis=1, keepdims=True) + overlap.sum(axis=0, keepdims=True) - overlap
    return (overlap / union >= 0.5).any(axis=1)


def _print_row(row: Row) -> None:
    evidence = f"{row.evidence:8.2f}" if np.isfinite(row.evidence) else " " * 8
    print(
        f"| {row.cube:<22} | {row.method:<24} | {row.k:>3} / {row.true_k:<3} | "
        f"{row.found:>2} / {row.true_k:<2} | {row.ari:6.3f} | {row.seconds:8.1f} | {row.peak_mb:8.0f} | "
        f"{evidence} |",
        flush=True,
    )


def _header() -> None:
    print(
        "| cube                   | method                   | k / true | found   | ARI    | time (s) "
        "| peak MB  | evidence |"
    )
    print(
        "|------------------------|--------------------------|----------|---------|--------|----------"
        "|----------|----------|",
        flush=True,
    )


ALL_METHODS = ["ours (auto k)", "ours (true k)", "PCA(10)+k-means", "k-means (raw)", "limit"]


def standard() -> list[Row]:
    specs = [CubeSpec("painting 256x256x1024", "painting"), CubeSpec("nebula 128x128x3681", "nebula")]
    if SHARED_DATA.is_dir():
        specs.append(CubeSpec("jasper ridge (real)", "jasper"))
    _header()
    return [row for spec in specs for row in run_cube(spec, ALL_METHODS, _print_row)]


def scale() -> list[Row]:
    spec = CubeSpec("painting 512x512x1024", "painting", size=512)
    _header()
    rows = run_cube(spec, ["ours (auto k)", "PCA(10)+k-means"], _print_row)
    build_mb, cube_mb = _baseline_rss_mb(spec)
    ours, pca = rows
    print(f"\ncube as float32: {cube_mb:.0f} MB; the process that only builds it peaks at {build_mb:.0f} MB")
    print(
        f"ours: {ours.seconds:.1f} s (target < 120 s), {ours.seconds / pca.seconds:.1f}x PCA+k-means; "
        f"peak {ours.peak_mb:.0f} MB = {ours.peak_mb / cube_mb:.2f}x the float32 cube (target < 3x)"
    )
    return rows


def hard(n_seeds: int = 10) -> list[Row]:
    _header()
    rows = []
    families = [("hard painting", "painting"), ("hard nebula", "nebula")]
    for label, family in families:
        for seed in range(n_seeds):
            spec = CubeSpec(f"{label} s{seed}", family, seed=seed, hard=True)
            rows += run_cube(spec, ALL_METHODS, _print_row)
    if SHARED_DATA.is_dir():
        rows += run_cube(CubeSpec("jasper ridge (real)", "jasper"), ALL_METHODS[:-1], _print_row)
    print("\nsummary over seeds")
    print(
        "| family        | method                   | mean ARI | worst ARI | true k chosen "
        "| all classes found | evidence > 1 |"
    )
    print(
        "|---------------|--------------------------|----------|-----------|---------------"
        "|-------------------|--------------|"
    )
    for label, _ in families:
        for method in ALL_METHODS:
            chosen = [r for r in rows if r.cube.startswith(label) and r.method == method]
            if not chosen:
                continue
            aris = np.array([r.ari for r in chosen])
            hits = sum(r.k == r.true_k for r in chosen)
            recovered = sum(r.found == r.true_k for r in chosen)
            evidence = np.array([r.evidence for r in chosen])
            detectable = " " * 13
            if np.isfinite(evidence).all():
                detectable = f"{int((evidence > 1).sum()):>5} / {len(chosen):<5}"
            print(
                f"| {label:<13} | {method:<24} | {aris.mean():8.3f} | {aris.min():9.3f} | "
                f"{hits:>6} / {len(chosen):<6} | {recovered:>8} / {len(chosen):<8} | {detectable}|"
            )
    return rows


STRESS_METHODS = ["ours (auto k)", "PCA(10)+k-means", "limit"]
#: Ours with the cube's per-voxel variances (``--variance``); the other rows of ours go without.
#: Like every row of ours but the next, it moves a cube to a rest frame where the run decides to.
VARIANCE_METHOD = "ours (variances)"
#: Ours with the variances and every spectrum moved to one rest frame (``--rest-frame``).
REST_FRAME_METHOD = "ours (rest frame)"


def stress(n_seeds: int, pattern: str, variance: bool = False, rest_frame: bool = False) -> list[Row]:
    """Every stress variant whose name contains ``pattern``, over ``n_seeds`` seeds, then the summary.

    With ``variance``, ours also runs with the cube's true per-voxel variances
    on the variants that have them (the nebulae); with ``rest_frame``, also
    with them and every spectrum moved to one rest frame.
    """
    from stress import VARIANTS

    _header()
    rows = []
    for variant in [v for v in VARIANTS if pattern in v]:
        nebula = variant.startswith("nebula/")
        methods = (
            STRESS_METHODS
            + ([VARIANCE_METHOD] if (variance or rest_frame) and nebula else [])
            + ([REST_FRAME_METHOD] if rest_frame and nebula else [])
        )
        for seed in range(n_seeds):
            spec = CubeSpec(f"{variant} s{seed}", "stress", seed=seed, variant=variant)
            rows += run_cube(spec, methods, _print_row)
    _stress_summary(rows)
    if variance or rest_frame:
        _paired_summary(rows, STRESS_METHODS[0], VARIANCE_METHOD, "per-voxel variances: without | with them")
    if rest_frame:
        _paired_summary(
            rows, VARIANCE_METHOD, REST_FRAME_METHOD, "rest frame with variances: the run's choice | always"
        )
    return rows


def _paired_summary(rows: list[Row], before: str, after: str, title: str) -> None:
    """Per variant: ours as method ``before`` and as ``after``, seed by seed."""
    print(f"\n{title}: ARI (k chosen), seed by seed")
    print("| variant                  | without | with  | seeds: without -> with |")
    print("|--------------------------|---------|-------|------------------------|")
    by_variant: dict[str, dict[str, list[Row]]] = {}
    for row in rows:
        by_variant.setdefault(row.cube.rsplit(" s", 1)[0], {}).setdefault(row.method, []).append(row)
    for variant, methods in by_variant.items():
        without, with_variance = methods.get(before, []), methods.get(after, [])
        if not with_variance:
            continue
        seeds = ", ".join(
            f"{a.ari:.3f} ({a.k}) -> {b.ari:.3f} ({b.k})" for a, b in zip(without, with_variance, strict=True)
        )
        print(
            f"| {variant:<24} | {np.mean([r.ari for r in without]):.3f}   | "
            f"{np.mean([r.ari for r in with_variance]):.3f} | {seeds} |"
        )


def _stress_summary(rows: list[Row]) -> None:
    """Per variant: mean ARI per method, worst seed's ours - PCA + k-means, k hits, lost classes."""
    print("\nsummary per variant (targets: worst ours - PCA >= -0.02, family mean >= +0.05, true k >= 80 %)")
    print(
        "| variant                  | ours  | PCA+km | limit | worst ours-PCA | true k "
        "| lost classes | time ours/PCA |"
    )
    print(
        "|--------------------------|-------|--------|-------|----------------|--------"
        "|--------------|---------------|"
    )
    by_variant: dict[str, dict[str, list[Row]]] = {}
    for row in rows:
        by_variant.setdefault(row.cube.rsplit(" s", 1)[0], {}).setdefault(row.method, []).append(row)
    families: dict[str, list[float]] = {}
    for variant, methods in by_variant.items():
        ours, pca, limit = (methods.get(m, []) for m in STRESS_METHODS)
        gaps = np.array([o.ari - p.ari for o, p in zip(ours, pca, strict=True)])
        families.setdefault(variant.split("/")[0], []).extend(gaps)
        hits = sum(r.k == r.true_k for r in ours)
        lost = sum(
            int(np.sum(np.array(lim.recovered) & ~np.array(our.recovered)))
            for our, lim in zip(ours, limit, strict=True)
        )
        ratio = np.mean([o.seconds / p.seconds for o, p in zip(ours, pca, strict=True)])
        means = [np.mean([r.ari for r in rows]) for rows in (ours, pca, limit)]
        print(
            f"| {variant:<24} | {means[0]:.3f} | {means[1]:.3f}  | {means[2]:.3f} | "
            f"{gaps.min():+14.3f} | {hits:>2} / {len(ours):<2}"
            f" | {lost:>12} | {ratio:13.1f} |"
        )
    for family, gaps in families.items():
        print(f"{family}: mean ours - PCA+k-means = {np.mean(gaps):+.3f} over {len(gaps)} cubes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--suite", choices=("default", "standard", "scale", "hard", "stress", "gui", "stages", "all"),
        default="default",
    )
    parser.add_argument("--gui-size", type=int, default=256, help="gui: the painting's height and width")
    parser.add_argument("--gui-epochs", type=int, default=None, help="gui: epochs (default: the config's)")
    parser.add_argument(
        "--stage-cubes", nargs="+",
        default=["nebula:40", "painting:192:2048", "nebula:160", "stress/nebula/clean:160", "painting:512"],
        help="stages: cubes as family:size[:channels] (default channels: painting 1024, nebula 3681) "
        "or stress/<variant>:size",
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds per family (hard: 10, stress: 5)")
    parser.add_argument("--variants", default="", help="stress: only the variants whose name contains this")
    parser.add_argument(
        "--variance", action="store_true",
        help="stress: also segment each nebula with its true per-voxel variances (as a MUSE STAT)",
    )
    parser.add_argument(
        "--rest-frame", action="store_true",
        help="stress: also segment each nebula with its variances and every spectrum moved to one rest frame",
    )
    args = parser.parse_args(argv)
    if args.suite in ("default", "standard", "all"):
        standard()
    if args.suite in ("default", "scale", "all"):
        print()
        scale()
    if args.suite in ("hard", "all"):
        print()
        hard(args.seeds or 10)
    if args.suite in ("stress", "all"):
        print()
        stress(args.seeds or 5, args.variants, args.variance, args.rest_frame)
    if args.suite in ("gui", "all"):
        from gui import gui

        print()
        gui(args.gui_size, args.gui_epochs)
    if args.suite in ("default", "stages", "all"):
        from stages import stages

        print()
        stages(args.stage_cubes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
