"""segment(cube, config) -> Segmentation: the whole method, headless.

Data flow: sample pixels -> fit the feature transform -> train the
autoencoder on the sample -> candidate clusterings of the sample for each k
-> choose k -> fit the likelihood mixture on a larger sample -> assign every
pixel, block by block -> renumber clusters by size -> per-cluster spectra.

The pass over every pixel is a pure map over row blocks
(:func:`segment_block`): it runs in bounded memory on a cube read from disk,
and can run on other processes or machines (``block_map``) with the same
result.

:func:`segment_steps` is a generator of :class:`Progress` events whose return
value is the :class:`Segmentation`, so a caller (the napari widget, the
command line) can show progress and stop at any event; :func:`segment` runs
it to the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import uniform_filter
from scipy.special import logsumexp

from .config import RUN_SETTINGS, SegmentConfig
from .cube import Datacube, finite_or_zero, neighbour_pixels
from .errors import InputError
from .kmeans import KMeansFit, assign, fit_kmeans, rank_by_size, silhouette
from .kselect import Candidate, HeldOut, KChoice, NeighbourPairs, choose_k, criteria_of, fit_candidates
from .line_shifts import LineShifter
from .mixture import MIXTURE_LIKELIHOODS, Mixture, class_sums, fit_classes
from .model import SpectralAutoencoder
from .pixel_maps import PixelMap, new_map, readable, values_at
from .preprocess import Preprocessor, fit_and_transform
from .rest_frame import RestFrame, fit_rest_frame, in_rest_frame, needed_rest_frame, velocity_map
from .segmentation import FittedModel, Segmentation
from .threads import computing_on, run_threads
from .train import embed, resolve_device, train_autoencoder
from .training_config import EpochEvent
from .variance import feature_noise

#: Most pixels in the preview map shown during training.
PREVIEW_PIXELS = 16384
#: Points used to choose k for a preview (speed over precision).
_PREVIEW_K_POINTS = 2000
#: Most share of the training time (previews included) spent making previews: a
#: preview falls due every `preview_every` epochs but waits while they are over it.
#: They were half of the widget's training time on the painting sample.
PREVIEW_SHARE = 0.2
#: Sub-components per class in the final fit of flux data (see mixture.fit_classes).
_SUB_COMPONENTS = 3
#: Mean-field sweeps of the spatial term.
_SPATIAL_SWEEPS = 10
#: Candidates built past the k whose split the rule refused (for the criteria
#: curves and re-clustering), before the search of k stops.
KS_PAST_REFUSAL = 1
#: Share of the run's progress bar given to each stage: its share of the time of
#: `segment` on the painting sample with the default settings (sample 5 %, train
#: 41 %, choose k 31 %, refine 13 %, assign 10 % in its timings, 2026-12-04), so
#: that the bar moves in proportion to time rather than stalling in one stage.
_STAGE_SPAN = {
    "sample": (0.0, 0.05),
    "train": (0.05, 0.46),
    "choose k": (0.46, 0.77),
    "refine": (0.77, 0.89),
    "assign": (0.89, 0.995),
    "summarise": (0.995, 1.0),
}

BlockMap = Callable[[Datacube, FittedModel], Iterator[tuple[slice, "BlockResult"]]]


@dataclass(frozen=True)
class Progress:
    """One step of a run.

    Attributes
    ----------
    stage
        ``"sample"``, ``"train"``, ``"choose k"``, ``"refine"``, ``"assign"``
        or ``"summarise"``.
    fraction
        Share of the whole run done, 0..1.
    message
        One line for a status bar.
    epoch
        The training epoch's event, during ``"train"``.
    k, silhouette
        Current number of clusters and its silhouette, when known.
    preview
        A cluster map of the image sampled every ``preview_stride`` pixels
        (labels 1..k, 0 = left out), during training.
    """

    stage: str
    fraction: float
    message: str
    epoch: EpochEvent | None = None
    k: int | None = None
    silhouette: float | None = None
    preview: np.ndarray | None = None
    preview_stride: int = 1


@dataclass(frozen=True)
class BlockResult:
    """Segmentation of one band of rows, or of the whole image once the bands are gathered.

    Attributes
    ----------
    labels
        (r, W) clusters 1..k in the fitted model's numbering, 0 = left out.
    posteriors
        (r, W, k) float32 cluster probabilities, 0 where left out. Gathered
        for a cube read lazily: a dask array over an on-disk store
        (:mod:`.pixel_maps`).
    latents
        (r, W, D) float32 embedding, NaN where left out; stored like the
        posteriors.
    sums, squares
        (k, C) float64 per-cluster sums and sums of squares of raw spectra.
    counts
        (k,) pixels per cluster.
    """

    labels: np.ndarray
    posteriors: PixelMap
    latents: PixelMap
    sums: np.ndarray
    squares: np.ndarray
    counts: np.ndarray


def _at(stage: str, share: float) -> float:
    start, end = _STAGE_SPAN[stage]
    # min(): rounding must not carry a stage's end past the next stage's start.
    return min(start + (end - start) * min(max(share, 0.0), 1.0), end)


class _StageTimer:
    """The wall-clock seconds of each stage, and the CPU seconds of this process's threads in it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start
            self.cpu_seconds[stage] = self.cpu_seconds.get(stage, 0.0) + time.process_time() - cpu_start


def segment(
    cube: Datacube,
    config: SegmentConfig | None = None,
    *,
    model: FittedModel | None = None,
    progress: Callable[[Progress], None] | None = None,
    block_map: BlockMap | None = None,
) -> Segmentation:
    """Segment ``cube``; see :func:`segment_steps` for the parameters."""
    steps = segment_steps(cube, config, model=model, block_map=block_map)
    while True:
        try:
            event = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(event)


def segment_steps(
    cube: Datacube,
    config: SegmentConfig | None = None,
    *,
    model: FittedModel | None = None,
    block_map: BlockMap | None = None,
) -> Generator[Progress, None, Segmentation]:
    """Segment ``cube``, yielding progress; the generator's return value is the result.

    Parameters
    ----------
    cube
        The datacube.
    config
        Settings; defaults to :class:`SegmentConfig`'s defaults.
    model
        A fitted model to reuse (no training). The run then takes from
        ``config`` only :data:`~napari_deepcube.core.config.RUN_SETTINGS`, and
        the rest from the model's own settings. Unless ``config.k`` is set, the
        model's clusters and numbering are kept, so that clusters of two cubes
        segmented with one model correspond.
    block_map
        How the pass over every pixel runs: a callable ``(cube, fitted)``
        yielding ``(rows, BlockResult)`` for every row band. The default runs
        :func:`segment_block` here, block by block.
    """
    config = _run_config(cube, config, model)
    timer = _StageTimer()
    device = resolve_device(config.device)
    # Decided once, before the run adds its own load: the cores other programs leave free.
    threads = run_threads()
    with computing_on(threads):
        return (yield from _run(cube, config, model, block_map, timer, device, threads))


def _run(
    cube: Datacube,
    config: SegmentConfig,
    model: FittedModel | None,
    block_map: BlockMap | None,
    timer: _StageTimer,
    device: object,
    threads: int,
) -> Generator[Progress, None, Segmentation]:
    """The stages of :func:`segment_steps`, on the ``threads`` it chose."""
    # Checked on every run: a reused model's selection must lie inside this cube's axis too.
    channels = config.channel_selection(cube.axis)
    offered_variance = cube.variance is not None
    cube = with_run_variance(cube, config)
    cube, frame, velocities, frame_reason = _at_rest(cube, config, model, channels, timer)
    config = config.with_changes(rest_frame=frame is not None)  # what the run did, whatever it was asked
    with timer("sample"):
        sample = _draw_sample(cube, config, model, channels, threads)
    yield Progress(
        "sample", _at("sample", 1.0), f"sampled {sample.train_picks.size} of {cube.n_valid} pixels"
    )
    history: list[EpochEvent] = []
    if model is None:
        with timer("train"):
            autoencoder = yield from _train(cube, sample, config, device, history)
    else:
        autoencoder = model.autoencoder.to(device)
    criteria: dict[str, dict[int, float]] = {}
    valid_features = None
    if model is not None and config.k is None:
        fitted = replace(model, config=config, autoencoder=autoencoder)
        reason = f"k={model.k} from the reused model"
        summary = f"{model.k} clusters, those of the model"
    else:
        # Many small fits, each shorter than waking a thread pool: each computes on one
        # thread, 4x faster on 16 cores (docs/big-data.md), and the split proposals'
        # fits run side by side on the run's threads.
        with timer("choose k"), computing_on(1):
            candidates, centers = yield from _score_candidates(sample, autoencoder, config, device, threads)
            choice, criteria = _pick_k(candidates, config)
        k, reason, summary = choice.k, choice.reason, choice.summary
        # The raw spectra of the velocity test (235 MB for MUSE) are not held through the pass.
        sample = replace(sample, line_shifter=None)
        message = f"fitting {k} clusters to {sample.refine_picks.size} pixels"
        yield Progress("refine", _at("refine", 0.0), message, k=k)
        with timer("refine"):
            fitted, valid_features = _fit_model(cube, sample, autoencoder, candidates, centers, k, config)
    fitted = replace(fitted, rest_frame=frame)
    with timer("assign"):
        maps = yield from _assign_all(cube, fitted, block_map or local_block_map(device, valid_features))
    del valid_features  # up to 100 MB at the default settings, not held through the summary
    with timer("summarise"):
        # A reused model keeps its numbering, so that clusters of two cubes correspond.
        result = _summarise(cube, fitted, maps, renumber=model is None or config.k is not None)
        if model is None:
            result = _fitted_here(result)
    yield Progress("summarise", 1.0, "done", k=result.k)
    if result.k < fitted.k:
        reason += (
            f"; {fitted.k - result.k} of those {fitted.k} clusters took no pixel when every pixel was "
            f"assigned, so the map has {result.k}"
        )
    noise = feature_noise(
        fitted.preprocessor.noise_source(variances_given=cube.variance is not None),
        fitted_with_variance=fitted.preprocessor.uses_variance,
        cube_has_variance=offered_variance,
        variance_switched_on=config.variance,
    )
    return replace(
        result,
        criteria=criteria,
        k_reason=reason,
        k_summary=summary,
        timings=timer.seconds,
        cpu_timings=timer.cpu_seconds,
        history=history,
        suggested_k=result.k if criteria else None,
        noise=noise,
        velocities=velocities, frame_reason=frame_reason,
    )


def _at_rest(
    cube: Datacube,
    config: SegmentConfig,
    model: FittedModel | None,
    channels: np.ndarray | None,
    timer: _StageTimer,
) -> tuple[Datacube, RestFrame | None, np.ndarray | None, str]:
    """``cube`` with every spectrum moved to the run's rest frame, the frame, each pixel's velocity and why.

    The frame is a reused model's own; else a new one with ``rest_frame``
    True, none with False, and with None (the default) one where the cube's
    lines move by more than a feature bin (:func:`.needed_rest_frame`). A run
    without one reads the cube as it is (the frame and velocities None).
    ``channels`` are the ones a new transform learns from (None: all). The
    frame and the velocities are timed as the stage "rest frame".
    """
    if model is not None:
        if model.rest_frame is None:
            return cube, None, None, ""
        channels = model.preprocessor.channels
    elif config.rest_frame is False:
        return cube, None, None, ""
    frame: RestFrame | None
    with timer("rest frame"):
        if model is not None and model.rest_frame is not None:
            frame, reason = model.rest_frame.for_cube(cube, config.seed), "moved to the model's rest frame"
        elif config.rest_frame:
            frame, reason = fit_rest_frame(cube, config.seed, config.kind), "moved to a rest frame, as asked"
        else:
            frame, reason = needed_rest_frame(cube, config.seed, config.kind)
        if frame is None:
            return cube, None, None, reason
        velocities = velocity_map(cube, frame)
    return in_rest_frame(cube, frame, velocities, channels), frame, velocities, reason


def as_segmented(cube: Datacube, segmentation: Segmentation) -> Datacube:
    """``cube`` as the run that made ``segmentation`` read it: with its variances or without, at rest."""
    cube = with_run_variance(cube, segmentation.model.config)
    frame, velocities = segmentation.model.rest_frame, segmentation.velocities
    if frame is None or velocities is None:
        return cube
    return in_rest_frame(cube, frame, velocities, segmentation.model.preprocessor.channels)


def with_run_variance(cube: Datacube, config: SegmentConfig) -> Datacube:
    """``cube`` as a run with ``config`` reads it: without its per-voxel variances when switched off."""
    return cube if config.variance else cube.without_variance()


def _run_config(cube: Datacube, config: SegmentConfig | None, model: FittedModel | None) -> SegmentConfig:
    """The run's settings, checked against the cube's valid pixels.

    A reused model's run is described by how the model was made: only
    :data:`~napari_deepcube.core.config.RUN_SETTINGS` come from ``config``.
    """
    config = config or SegmentConfig()
    if model is not None:
        model.check_carries_edits()
        model.check_frame(config.rest_frame)
        config = model.config.with_changes(**{name: getattr(config, name) for name in RUN_SETTINGS})
    if config.k is not None and config.k > cube.n_valid:
        raise InputError(f"k={config.k} is larger than the {cube.n_valid} valid pixels; choose a smaller k")
    if config.k is None and config.k_min > cube.n_valid:
        raise InputError(
            f"the k range starts at {config.k_min} but the cube has {cube.n_valid} valid pixels; "
            "give a smaller --k-min or a fixed --k"
        )
    # k is found on the training sample, so it cannot exceed the sample either.
    n_sample = min(config.n_train, cube.n_valid)
    smallest_k = config.k_min if config.k is None else config.k
    if smallest_k > n_sample:
        raise InputError(
            f"k={smallest_k} is more than the training sample of {n_sample} pixels; "
            "give a larger --n-train or a smaller k"
        )
    return config


@dataclass(frozen=True)
class _Sample:
    """The pixels a run learns from.

    Attributes
    ----------
    refine_picks
        Sorted flat indices of the pixels the final mixture is fitted to.
    train_picks
        Sorted flat indices of the training pixels, a subset of ``refine_picks``.
    preprocessor
        The feature transform (fitted to the training pixels, or the reused model's).
    features
        (n_train, F) features of the training pixels.
    neighbours
        Training pixels paired with their right-hand neighbour, where it is a
        valid pixel, for the spatial coherence of candidate clusters (None
        when k is not to be chosen or the kind has no coherence test).
    line_shifter
        The training pixels' raw spectra, to test clusters as velocity copies
        of each other (None when k is not to be chosen or the kind has no
        shift test).
    """

    refine_picks: np.ndarray
    train_picks: np.ndarray
    preprocessor: Preprocessor
    features: np.ndarray
    neighbours: NeighbourPairs | None = None
    line_shifter: LineShifter | None = None


def _draw_sample(
    cube: Datacube,
    config: SegmentConfig,
    model: FittedModel | None,
    channels: np.ndarray | None,
    threads: int,
) -> _Sample:
    """Draw the pixel samples and fit (or reuse) the feature transform on the training pixels.

    A new transform builds features from ``channels`` only (None: every
    channel); a reused model keeps the channels it was trained on. The
    sample's spectra are transformed on ``threads`` threads.
    """
    rng = np.random.default_rng(config.seed)
    valid = np.flatnonzero(cube.mask.ravel())
    n_refine = min(max(config.n_refine, config.n_train), valid.size)
    refine_picks = np.sort(rng.choice(valid, size=n_refine, replace=False))
    train_picks = np.sort(rng.choice(refine_picks, size=min(config.n_train, n_refine), replace=False))
    rows, cols = np.divmod(train_picks, cube.image_shape[1])
    if model is not None:
        preprocessor = model.preprocessor
        spectra, variances = cube.spectra(rows, cols), cube.variances(rows, cols)
        features = preprocessor.transform(spectra, variances, threads=threads)
        return _Sample(refine_picks, train_picks, preprocessor, features)
    near_rows, near_cols = neighbour_pixels(cube.image_shape, rows, cols)
    # Pixels and neighbours in one read: a lazy cube is read once per band of rows asked for.
    both_rows, both_cols = np.r_[rows, near_rows], np.r_[cols, near_cols]
    spectra, near_spectra = np.split(cube.spectra(both_rows, both_cols), [rows.size])
    both_variances = cube.variances(both_rows, both_cols)
    variances = near_variances = None
    if both_variances is not None:
        variances, near_variances = np.split(both_variances, [rows.size])
    preprocessor, features = fit_and_transform(
        config.preprocess_config(),
        spectra,
        near_spectra,
        seed=config.seed,
        channels=channels,
        variances=variances,
        neighbour_variances=near_variances,
        threads=threads,
    )
    neighbours, line_shifter = None, None
    choosing = config.k is None and _mixture_likelihood(preprocessor, config) is not None
    if choosing and preprocessor.data_kind.coherence_test:
        paired = np.flatnonzero(cube.mask[near_rows, near_cols])
        paired_variances = None if near_variances is None else near_variances[paired]
        paired_features = preprocessor.transform(near_spectra[paired], paired_variances, threads=threads)
        neighbours = NeighbourPairs(paired, paired_features)
    if choosing and preprocessor.data_kind.shift_test:
        whitened_by = variances if preprocessor.uses_variance else None
        shift_variances = None if whitened_by is None else finite_or_zero(whitened_by)
        line_shifter = LineShifter(
            preprocessor, features, finite_or_zero(spectra), shift_variances, cube.axis.angstrom
        )
    return _Sample(refine_picks, train_picks, preprocessor, features, neighbours, line_shifter)


def _train(
    cube: Datacube, sample: _Sample, config: SegmentConfig, device: object, history: list[EpochEvent]
) -> Generator[Progress, None, SpectralAutoencoder]:
    """Train a new autoencoder on the sample, with a preview map every few epochs."""
    autoencoder = SpectralAutoencoder(
        config.model_config(sample.preprocessor.n_features, sample.preprocessor.likelihood), seed=config.seed
    )
    previewer = _Previewer(cube, sample.preprocessor, config)
    for event in train_autoencoder(
        autoencoder, sample.features, config.train_config(), seed=config.seed, device=device  # type: ignore[arg-type]
    ):
        history.append(event)
        progress = Progress(
            "train",
            _at("train", event.epoch / event.n_epochs),
            f"epoch {event.epoch}/{event.n_epochs}  loss {event.validation_loss:.4g}",
            epoch=event,
        )
        if previewer.due(event):
            progress = previewer.update(progress, autoencoder, device)
        yield progress
    return autoencoder


def _mixture_likelihood(preprocessor: Preprocessor, config: SegmentConfig) -> str | None:
    """The likelihood the clusters are refined under, or None (paper preset: k-means only)."""
    likelihood = preprocessor.likelihood
    return likelihood if config.refine and likelihood in MIXTURE_LIKELIHOODS else None


def _score_candidates(
    sample: _Sample, autoencoder: SpectralAutoencoder, config: SegmentConfig, device: object, threads: int
) -> Generator[Progress, None, tuple[dict[int, Candidate], dict[int, np.ndarray]]]:
    """A candidate clustering of the sample for every k to consider, and its latent centres.

    The split proposals of each k are fitted on ``threads`` threads.
    """
    latents = embed(autoencoder, sample.features, device)  # type: ignore[arg-type]
    mixture_likelihood = _mixture_likelihood(sample.preprocessor, config)
    # The kind-specific tests of a split need the candidates' likelihood fits, and serve
    # only to choose k (as the sample's velocity test): a given k keeps the likelihood's
    # best split, never one that a test put in its place.
    scored = mixture_likelihood is not None
    choosing = scored and config.k is None
    features, neighbours, held_out = sample.features, sample.neighbours, None
    if choosing and _held_out_choice(sample, config, latents.shape[0]):
        fitted, held = _held_out_split(latents.shape[0], config.seed)
        latents, features = latents[fitted], features[fitted]
        held_out = HeldOut(sample.features[held], held, fitted)
        # The held-out rule reads no spatial coherence, and the pairs are rows of the whole sample.
        neighbours = None
    ks = _candidate_ks(config, mixture_likelihood, latents.shape[0])
    steps = fit_candidates(
        latents,
        features,
        ks,
        mixture_likelihood,
        config.seed,
        mixing_test=choosing and sample.preprocessor.data_kind.mixing_test,
        line_shifts=sample.line_shifter,
        neighbours=neighbours,
        held_out=held_out,
        workers=threads,
    )
    candidates: dict[int, Candidate] = {}
    for position, candidate in enumerate(steps):
        candidates[candidate.k] = candidate
        yield Progress(
            "choose k",
            _at("choose k", (position + 1) / len(ks)),
            f"scored k={candidate.k}",
            k=candidate.k,
            silhouette=candidate.silhouette,
        )
        if _choice_settled(candidates, config, scored):
            break
    return candidates, {c.k: latent_centers(latents, c.labels, c.k) for c in candidates.values()}


def _held_out_choice(sample: _Sample, config: SegmentConfig, n_sample: int) -> bool:
    """Whether k is chosen by held-out likelihood: the kind's rule, with the voxels' variances.

    Only where each voxel's noise is known (a MUSE STAT): with the noise
    estimated per channel, held-out pixels rewarded cuts through one class's
    continuous variation (docs/how-it-works.md, section 3). And only where
    each half holds at least ``k_max`` pixels: every k of the range fits in
    the fitted half, and the held-out gains have a standard error.
    """
    preprocessor = sample.preprocessor
    known_noise = preprocessor.data_kind.held_out_choice and preprocessor.uses_variance
    return known_noise and n_sample // 2 >= config.k_max


def _held_out_split(n_sample: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted rows of the training sample the candidates are fitted to, and those they are scored on.

    Half and half, at random: the split of session 20's measurements
    (docs/how-it-works.md, section 5).
    """
    order = np.random.default_rng(seed).permutation(n_sample)
    return np.sort(order[: (n_sample + 1) // 2]), np.sort(order[(n_sample + 1) // 2 :])


def _choice_settled(candidates: dict[int, Candidate], config: SegmentConfig, scored: bool) -> bool:
    """Whether the k rule has refused a split at least :data:`KS_PAST_REFUSAL` candidates ago.

    The rule is sequential: no candidate above the refused k changes its
    choice. The few built past it show the criteria curves beyond the choice;
    the rest of the k range would cost as much again as the choice itself.
    The silhouette (the paper preset) compares every k, so it sees them all.
    """
    if config.k is not None or not scored:
        return False
    refused = choose_k(candidates, _n_fitted(candidates)).refused
    return refused is not None and max(candidates) >= refused + KS_PAST_REFUSAL


def _pick_k(
    candidates: dict[int, Candidate], config: SegmentConfig
) -> tuple[KChoice, dict[str, dict[int, float]]]:
    """The k of the run and why, and the criteria curves (empty when k was given)."""
    if config.k is not None:
        return KChoice(config.k, f"k={config.k} was given", f"{config.k} clusters, as set"), {}
    n_fitted = _n_fitted(candidates)
    return choose_k(candidates, n_fitted), criteria_of(candidates, n_fitted)


def _n_fitted(candidates: dict[int, Candidate]) -> int:
    """Pixels the candidates were fitted to (the sample, less any held out)."""
    return next(iter(candidates.values())).labels.size


def _fit_model(
    cube: Datacube,
    sample: _Sample,
    autoencoder: SpectralAutoencoder,
    candidates: dict[int, Candidate],
    centers: dict[int, np.ndarray],
    k: int,
    config: SegmentConfig,
) -> tuple[FittedModel, np.ndarray | None]:
    """The fitted model of k clusters: the chosen candidate refined on the larger sample.

    Returns
    -------
    fitted, valid_features
        The model, and the features (n_valid, F) of every valid pixel, row
        by row, where the refinement's sample is every valid pixel of the cube
        (else None): the pass over every pixel takes them instead of
        transforming the spectra a second time.
    """
    chosen = candidates[k].fit
    mixture, valid_features = None, None
    if chosen is not None:
        features = gather_features(
            cube, sample.refine_picks, sample.preprocessor, known=(sample.train_picks, sample.features)
        )
        initial = chosen.mixture.posteriors(features).argmax(axis=1)
        mixture = refined_mixture(
            features, initial, k, chosen.mixture.likelihood, config.seed,
            by_abundance=sample.preprocessor.data_kind.labels_by_abundance,
        )
        if sample.refine_picks.size == cube.n_valid:
            valid_features = features
    others = {c.k: c.fit.mixture for c in candidates.values() if c.fit is not None and c.k != k}
    return FittedModel(config, sample.preprocessor, autoencoder, centers, k, mixture, others), valid_features


def refined_mixture(
    features: np.ndarray, initial: np.ndarray, k: int, likelihood: str, seed: int, *, by_abundance: bool
) -> Mixture:
    """The likelihood mixture of k classes fitted from the initial labels ``initial``.

    ``by_abundance`` (the kind's ``labels_by_abundance``: pixels are mixtures
    of materials): it assigns pixels by unmixing (:meth:`.Mixture.unmixing`).
    """
    mixture = fit_classes(features, initial, k, likelihood, n_sub=_SUB_COMPONENTS, seed=seed).mixture
    return mixture.unmixing(features) if by_abundance else mixture


def _summarise(cube: Datacube, fitted: FittedModel, maps: BlockResult, *, renumber: bool) -> Segmentation:
    """Smooth (when asked), number clusters by size (when ``renumber``) and gather the result."""
    if fitted.config.spatial_weight > 0:
        maps = _smooth(cube, fitted, maps, fitted.config.spatial_weight)
    if renumber:
        maps, fitted = _without_empty(*_renumber_by_size(maps, fitted))
    return _segmentation(cube, maps, fitted)


def _without_empty(maps: BlockResult, fitted: FittedModel) -> tuple[BlockResult, FittedModel]:
    """The maps and model without the clusters no pixel of the whole cube fell in.

    The clusters are fitted to a sample: one made of a few odd pixels of it
    can lose all of them to its neighbours in the pass over every pixel. A
    map numbered 1..k then shows every label. Clusters numbered by size have
    their empty ones last, so the labels keep their numbers.
    """
    present = maps.counts > 0
    if present.all():
        return maps, fitted
    k = int(present.sum())
    posteriors = maps.posteriors[..., present]
    total = posteriors.sum(axis=-1, keepdims=True)
    # Lazy for a map on disk; a pixel with no total has no posterior to scale.
    posteriors = posteriors / np.where(total > 0, total, 1.0).astype(np.float32)
    kept = BlockResult(
        labels=maps.labels,
        posteriors=posteriors,
        latents=maps.latents,
        sums=maps.sums[present],
        squares=maps.squares[present],
        counts=maps.counts[present],
    )
    centers = {**fitted.centers, k: fitted.centers[fitted.k][present]}
    mixture = None if fitted.mixture is None else fitted.mixture.kept(present)
    return kept, replace(fitted, k=k, centers=centers, mixture=mixture)


def _candidate_ks(config: SegmentConfig, likelihood: str | None, n_sample: int) -> list[int]:
    """The k values to build candidates for.

    A fixed k is reached through the split path from k=2 when there is a
    likelihood, since k-means alone can miss small distinct classes.
    """
    if config.k is None:
        ks = list(range(config.k_min, config.k_max + 1))
    elif likelihood is not None and config.k > 2:
        ks = list(range(2, config.k + 1))
    else:
        ks = [config.k]
    return [k for k in ks if k <= n_sample]


def latent_centers(latents: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean latent vector (k, D) of each cluster; an empty cluster gets the overall mean."""
    centers = np.tile(latents.mean(axis=0), (k, 1))
    for cluster in range(k):
        members = labels == cluster
        if members.any():
            centers[cluster] = latents[members].mean(axis=0)
    return centers


def gather_features(
    cube: Datacube,
    picks: np.ndarray,
    preprocessor: Preprocessor,
    known: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Features of the pixels at flat indices ``picks`` (sorted), in one pass over the cube.

    With the cube's per-voxel variances, read in step with its spectra.
    ``known`` gives the features already made for some of the picks (their
    sorted flat indices, a subset of ``picks``, and their features): those are
    taken as they are, and only the other pixels are read and transformed.
    """
    if known is not None:
        known_picks, known_features = known
        # Both index lists are sorted, so the known rows keep their order among the others.
        is_known = np.isin(picks, known_picks, assume_unique=True)
        if is_known.all() and known_picks.size == picks.size:
            return known_features
        features = np.empty((picks.size, known_features.shape[1]), dtype=known_features.dtype)
        features[is_known] = known_features
        features[~is_known] = gather_features(cube, picks[~is_known], preprocessor)
        return features
    width = cube.image_shape[1]
    chosen = np.zeros(cube.image_shape[0] * width, dtype=bool)
    chosen[picks] = True
    parts = []
    for rows, block in cube.iter_blocks():
        keep = chosen[rows.start * width : rows.stop * width]
        if keep.any():
            variances = cube.variance_rows(rows)
            parts.append(
                preprocessor.transform(
                    block.reshape(-1, block.shape[-1])[keep],
                    None if variances is None else variances.reshape(-1, block.shape[-1])[keep],
                )
            )
    return np.concatenate(parts)


def segment_block(
    block: np.ndarray,
    mask: np.ndarray,
    fitted: FittedModel,
    variances: np.ndarray | None = None,
    features: np.ndarray | None = None,
) -> BlockResult:
    """Segment one band of rows (r, W, C) with a fitted model; ``mask`` (r, W) marks valid pixels.

    ``variances`` (r, W, C) are the band's per-voxel variances, or None.
    ``features`` (m, F) are those of the band's m valid pixels, row by row,
    where already made (None: made here from the spectra). A pure function of
    its inputs, so bands can be processed in any order, on any process, with
    the same result.
    """
    n_rows, width, n_channels = block.shape
    k = fitted.k
    spectra = block.reshape(-1, n_channels)
    keep = mask.ravel()
    labels = np.zeros(n_rows * width, dtype=np.uint8 if k < 256 else np.uint16)
    posteriors = np.zeros((n_rows * width, k), dtype=np.float32)
    latents = np.full((n_rows * width, fitted.autoencoder.config.latent_dim), np.nan, dtype=np.float32)
    sums = np.zeros((k, n_channels))
    squares = np.zeros((k, n_channels))
    counts = np.zeros(k, dtype=np.int64)
    if keep.any():
        if features is None:
            features = fitted.preprocessor.transform(
                spectra[keep], None if variances is None else variances.reshape(-1, n_channels)[keep]
            )
        latents[keep] = embed(fitted.autoencoder, features)
        if fitted.mixture is not None:
            posteriors[keep] = fitted.mixture.posteriors(features)
        else:
            posteriors[keep] = np.eye(k, dtype=np.float32)[assign(latents[keep], fitted.centers[k])]
        cluster = posteriors[keep].argmax(axis=1)
        labels[keep] = cluster + 1
        sums, squares, counts = cluster_sums(spectra[keep], cluster, k)
    return BlockResult(
        labels.reshape(n_rows, width),
        posteriors.reshape(n_rows, width, k),
        latents.reshape(n_rows, width, -1),
        sums,
        squares,
        counts,
    )


def cluster_sums(
    spectra: np.ndarray, cluster: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cluster sums and sums of squares (k, C) of raw spectra, and counts (k,).

    Through :func:`class_sums`, whose matrix products release the GIL.
    """
    sums, squares = class_sums(finite_or_zero(spectra), cluster, k, orders=2)
    return sums, squares, np.bincount(cluster, minlength=k)


def local_block_map(device: object = None, valid_features: np.ndarray | None = None) -> BlockMap:
    """The default pass: every row band of the cube, here, in order.

    ``valid_features`` (n_valid, F) holds the features of every valid pixel, row
    by row, where the run has made them already (None: each band makes its own).
    """

    def run(cube: Datacube, fitted: FittedModel) -> Iterator[tuple[slice, BlockResult]]:
        if device is not None:
            fitted.autoencoder.to(device)
        done = 0
        for rows, block in cube.iter_blocks():
            mask = cube.mask[rows]
            features = None
            if valid_features is not None:
                n_valid = int(np.count_nonzero(mask))
                features, done = valid_features[done : done + n_valid], done + n_valid
            yield rows, segment_block(block, mask, fitted, cube.variance_rows(rows), features)

    return run


def _assign_all(
    cube: Datacube, fitted: FittedModel, block_map: BlockMap
) -> Generator[Progress, None, BlockResult]:
    """Run the pass over every pixel and gather the whole image's maps and per-cluster sums."""
    height, width = cube.image_shape
    k = fitted.k
    maps = BlockResult(
        labels=np.zeros((height, width), dtype=np.uint8 if k < 256 else np.uint16),
        posteriors=new_map(cube, k, 0.0, "posteriors"),
        latents=new_map(cube, fitted.autoencoder.config.latent_dim, np.nan, "latents"),
        sums=np.zeros((k, cube.n_channels)),
        squares=np.zeros((k, cube.n_channels)),
        counts=np.zeros(k, dtype=np.int64),
    )
    done = 0
    for rows, result in block_map(cube, fitted):
        maps.labels[rows] = result.labels
        maps.posteriors[rows] = result.posteriors
        maps.latents[rows] = result.latents
        maps.sums[...] += result.sums
        maps.squares[...] += result.squares
        maps.counts[...] += result.counts
        done += rows.stop - rows.start
        yield Progress("assign", _at("assign", done / height), f"assigned {done}/{height} rows", k=k)
    return replace(maps, posteriors=readable(maps.posteriors), latents=readable(maps.latents))


def _smooth(cube: Datacube, fitted: FittedModel, maps: BlockResult, weight: float) -> BlockResult:
    """Mean-field sweeps of a Potts term over the posterior map, then new spectra sums.

    Each sweep adds ``weight`` times the mean posterior of a pixel's 8
    neighbours to its log-posterior; the data term is the pass's posterior.
    """
    mask = cube.mask
    # The whole image at once: a map kept on disk is read into memory here.
    posteriors = np.asarray(maps.posteriors)
    log_data = np.log(np.maximum(posteriors, 1e-30))
    present = uniform_filter(mask.astype(np.float32), size=3, mode="constant") * 9.0 - mask
    for _ in range(_SPATIAL_SWEEPS):
        summed = uniform_filter(posteriors, size=(3, 3, 1), mode="constant") * 9.0 - posteriors
        log_joint = log_data + weight * summed / np.maximum(present, 1.0)[..., None]
        posteriors = np.exp(log_joint - logsumexp(log_joint, axis=-1, keepdims=True)).astype(np.float32)
        posteriors[~mask] = 0.0
    labels = np.where(mask, posteriors.argmax(axis=-1) + 1, 0).astype(maps.labels.dtype)
    sums, squares, counts = sums_of_labels(cube, labels, fitted.k)
    return BlockResult(labels, posteriors, maps.latents, sums, squares, counts)


def sums_of_labels(cube: Datacube, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-cluster sums of raw spectra for a given label map, in one pass."""
    sums = np.zeros((k, cube.n_channels))
    squares = np.zeros((k, cube.n_channels))
    counts = np.zeros(k, dtype=np.int64)
    for rows, block in cube.iter_blocks():
        block_labels = labels[rows].ravel().astype(np.int64)
        members = block_labels > 0
        part = cluster_sums(block.reshape(-1, cube.n_channels)[members], block_labels[members] - 1, k)
        sums += part[0]
        squares += part[1]
        counts += part[2]
    return sums, squares, counts


def _renumber_by_size(maps: BlockResult, fitted: FittedModel) -> tuple[BlockResult, FittedModel]:
    """Number clusters 1..k by decreasing size, in the maps and in the model."""
    k = fitted.k
    # The pass counted each cluster's pixels: no copy of the label map needed.
    order = rank_by_size(maps.counts)
    inverse = np.argsort(order)
    lookup = np.r_[0, order + 1].astype(maps.labels.dtype)
    renumbered = BlockResult(
        labels=lookup[maps.labels],
        posteriors=maps.posteriors[..., inverse],
        latents=maps.latents,
        sums=maps.sums[inverse],
        squares=maps.squares[inverse],
        counts=maps.counts[inverse],
    )
    centers = {**fitted.centers, k: fitted.centers[k][inverse]}
    mixture = None if fitted.mixture is None else fitted.mixture.permuted(inverse)
    return renumbered, replace(fitted, centers=centers, mixture=mixture)


def _segmentation(cube: Datacube, maps: BlockResult, fitted: FittedModel) -> Segmentation:
    counts = np.maximum(maps.counts, 1)[:, None]
    mean = maps.sums / counts
    std = np.sqrt(np.maximum(maps.squares / counts - mean**2, 0.0))
    return Segmentation(
        labels=maps.labels,
        confidence=np.asarray(maps.posteriors.max(axis=-1)),
        probabilities=maps.posteriors,
        latents=maps.latents,
        mean_spectra=mean,
        std_spectra=std,
        axis=cube.axis,
        criteria={},
        k_reason="",
        timings={},
        config=fitted.config,
        model=fitted,
        cube_name=cube.name,
    )


def recluster(segmentation: Segmentation, cube: Datacube, k: int) -> Segmentation:
    """The same cube segmented into ``k`` clusters, reusing the trained embedding.

    For picking another k from the criteria curve without training again: the
    candidate mixture found for that k while choosing it (or, outside the range
    tried, k-means on a sample of the latents) is refined on a pixel sample and
    every pixel is assigned again.
    """
    if segmentation.labels.shape != cube.image_shape:
        raise InputError(
            f"the segmentation is of a {segmentation.labels.shape} image but the cube is "
            f"{cube.image_shape}; pass the cube that was segmented"
        )
    valid = np.flatnonzero(cube.mask.ravel())
    if not 1 <= k <= valid.size:
        raise InputError(f"k must be between 1 and {valid.size}, got {k}")
    start = time.perf_counter()
    fitted = segmentation.model
    config = fitted.config
    cube = as_segmented(cube, segmentation)
    rng = np.random.default_rng(config.seed)
    picks = np.sort(
        rng.choice(valid, size=min(max(config.n_refine, config.n_train), valid.size), replace=False)
    )
    latents = values_at(segmentation.latents, picks)
    candidates = {**fitted.candidates}
    if fitted.mixture is not None:
        candidates[fitted.k] = fitted.mixture
    centers = dict(fitted.centers)
    if k not in centers:
        centers[k] = fit_kmeans(latents, k, seed=config.seed).centers
    mixture = None
    if fitted.mixture is not None:
        features = gather_features(cube, picks, fitted.preprocessor)
        initial = (
            candidates[k].posteriors(features).argmax(axis=1)
            if k in candidates
            else assign(latents, centers[k])
        )
        mixture = refined_mixture(
            features, initial, k, fitted.mixture.likelihood, config.seed,
            by_abundance=fitted.preprocessor.data_kind.labels_by_abundance,
        )
        candidates.pop(k, None)
    model = FittedModel(
        config, fitted.preprocessor, fitted.autoencoder, centers, k, mixture, candidates,
        rest_frame=fitted.rest_frame,
    )
    maps = _drain(_assign_all(cube, model, local_block_map()))
    return replace(
        _fitted_here(_summarise(cube, model, maps, renumber=True)),
        criteria=segmentation.criteria,
        k_reason=_picked_reason(k, segmentation.suggested_k),
        k_summary=_picked_summary(k, segmentation.suggested_k),
        suggested_k=segmentation.suggested_k,
        timings={"recluster": time.perf_counter() - start},
        history=segmentation.history,
        noise=segmentation.noise,
        velocities=segmentation.velocities,
        frame_reason=segmentation.frame_reason,
    )


def _fitted_here(segmentation: Segmentation) -> Segmentation:
    """``segmentation`` whose model records how confidently it segments the cube it was fitted to."""
    model = replace(segmentation.model, training_confidence=segmentation.mean_confidence())
    return replace(segmentation, model=model)


def _picked_reason(k: int, suggested: int | None) -> str:
    """Why a re-clustered result has k clusters."""
    picked = f"k={k} was picked by the user"
    return picked if suggested is None else f"{picked} (the criteria suggested k={suggested})"


def _picked_summary(k: int, suggested: int | None) -> str:
    """Why a re-clustered result has k clusters, in plain words."""
    picked = f"{k} clusters, as you picked"
    return picked if suggested is None else f"{picked} (the criteria suggested {suggested})"


def _drain(steps: Generator[Progress, None, BlockResult]) -> BlockResult:
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


class _Previewer:
    """Cluster maps of a strided grid of pixels, shown while the model trains."""

    def __init__(self, cube: Datacube, preprocessor: Preprocessor, config: SegmentConfig) -> None:
        height, width = cube.image_shape
        self.stride = max(1, int(np.ceil(np.sqrt(height * width / PREVIEW_PIXELS))))
        grid_mask = cube.mask[:: self.stride, :: self.stride]
        self.shape = grid_mask.shape
        self.index = np.flatnonzero(grid_mask.ravel())
        rows, cols = np.divmod(self.index, self.shape[1])
        rows, cols = rows * self.stride, cols * self.stride
        self.features = (
            preprocessor.transform(cube.spectra(rows, cols), cube.variances(rows, cols))
            if config.preview_every
            else np.empty((0, preprocessor.n_features), np.float32)
        )
        self.config = config
        self.last_k: int | None = None
        #: Time spent making previews so far.
        self.seconds = 0.0

    def due(self, event: EpochEvent) -> bool:
        """Whether to show a preview after this epoch: every few epochs, within the time budget."""
        every = self.config.preview_every
        return bool(every) and event.epoch % every == 0 and self.seconds <= PREVIEW_SHARE * event.elapsed

    def update(self, progress: Progress, autoencoder: SpectralAutoencoder, device: object) -> Progress:
        """``progress`` with a preview map and the current k and silhouette."""
        if self.features.shape[0] < 3:
            return progress
        start = time.perf_counter()
        try:
            return self._previewed(progress, autoencoder, device)
        finally:
            self.seconds += time.perf_counter() - start

    def _previewed(self, progress: Progress, autoencoder: SpectralAutoencoder, device: object) -> Progress:
        latents = embed(autoencoder, self.features, device)  # type: ignore[arg-type]
        rng = np.random.default_rng(self.config.seed)
        subset = rng.choice(latents.shape[0], size=min(_PREVIEW_K_POINTS, latents.shape[0]), replace=False)
        if self.config.k is not None:
            ks = [min(self.config.k, subset.size)]
        else:
            ks = list(range(self.config.k_min, min(self.config.k_max, subset.size - 1) + 1))
            if self.last_k is not None:
                # The latents change little between two previews: the k shown moves by one
                # at most, for a third of the fits of the whole range.
                ks = [k for k in ks if abs(k - self.last_k) <= 1]
        if not ks:
            # A sparse mask can leave the preview grid fewer pixels than the smallest k has
            # clusters (the run itself samples every valid pixel): no preview, as for under 3.
            return progress
        best: tuple[float, KMeansFit] | None = None
        for k in ks:
            fit = fit_kmeans(latents[subset], k, seed=self.config.seed, n_init=2)
            score = silhouette(latents[subset], fit.labels, seed=self.config.seed)
            if best is None or (np.isfinite(score) and (not np.isfinite(best[0]) or score > best[0])):
                best = (score, fit)
        assert best is not None
        score, fit = best
        self.last_k = fit.k
        grid = np.zeros(self.shape[0] * self.shape[1], dtype=np.uint8 if fit.k < 256 else np.uint16)
        grid[self.index] = assign(latents, fit.centers) + 1
        return replace(
            progress, k=fit.k, silhouette=score, preview=grid.reshape(self.shape), preview_stride=self.stride
        )
