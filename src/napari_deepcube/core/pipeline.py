"""segment(cube, config) -> Segmentation: the whole method, headless.

Data flow: sample pixels -> fit the feature transform -> train the
autoencoder on the sample -> embed every pixel -> fit k-means for each k on
the sample's embedding and score it -> choose k -> cluster all pixels ->
refine under the data's likelihood -> per-cluster spectra.

:func:`segment_steps` is a generator of :class:`Progress` events whose return
value is the :class:`Segmentation`, so a caller (the napari widget, the
command line) can show progress and stop at any event; :func:`segment` runs
it to the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .config import SegmentConfig
from .cube import Datacube, finite_or_zero
from .errors import InputError
from .kmeans import KMeansFit, assign, fit_kmeans, silhouette, size_order
from .kselect import Candidate, choose_k, criteria_of, fit_candidates
from .mixture import MIXTURE_LIKELIHOODS, fit_mixture, predict_posteriors
from .model import SpectralAutoencoder
from .preprocess import Preprocessor, fit_preprocessor
from .segmentation import FittedModel, Segmentation
from .train import EpochEvent, embed, resolve_device, train_autoencoder

#: Most pixels in the preview map shown during training.
PREVIEW_PIXELS = 16384
#: Points used to choose k for a preview (speed over precision).
_PREVIEW_K_POINTS = 2000
#: Share of the run's progress bar given to each stage.
_STAGE_SPAN = {
    "sample": (0.0, 0.03),
    "train": (0.03, 0.7),
    "embed": (0.7, 0.8),
    "choose k": (0.8, 0.9),
    "refine": (0.9, 0.96),
    "summarise": (0.96, 1.0),
}


@dataclass(frozen=True)
class Progress:
    """One step of a run.

    Attributes
    ----------
    stage
        ``"sample"``, ``"train"``, ``"embed"``, ``"choose k"``, ``"refine"``
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


def _at(stage: str, share: float) -> float:
    start, end = _STAGE_SPAN[stage]
    return start + (end - start) * min(max(share, 0.0), 1.0)


class _StageTimer:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


def segment(
    cube: Datacube,
    config: SegmentConfig | None = None,
    *,
    model: FittedModel | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Segmentation:
    """Segment ``cube``; see :func:`segment_steps` for the parameters."""
    steps = segment_steps(cube, config, model=model)
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
) -> Generator[Progress, None, Segmentation]:
    """Segment ``cube``, yielding progress; the generator's return value is the result.

    Parameters
    ----------
    cube
        The datacube.
    config
        Settings; defaults to :class:`SegmentConfig`'s defaults.
    model
        A fitted model to reuse (no training). Unless ``config.k`` is set, the
        model's k and cluster numbering are kept, so that clusters of two
        cubes segmented with one model correspond.
    """
    config = config or SegmentConfig()
    if config.k is not None and config.k > cube.n_valid:
        raise InputError(f"k={config.k} is larger than the {cube.n_valid} valid pixels; choose a smaller k")
    timer = _StageTimer()
    device = resolve_device(config.device)
    rng = np.random.default_rng(config.seed)
    valid = np.flatnonzero(cube.mask.ravel())

    with timer("sample"):
        picks = np.sort(rng.choice(valid, size=min(config.n_train, valid.size), replace=False))
        rows, cols = np.divmod(picks, cube.image_shape[1])
        spectra = cube.spectra(rows, cols)
        if model is None:
            preprocessor = fit_preprocessor(
                config.preprocess_config(), spectra, _neighbour_spectra(cube, rows, cols)
            )
        else:
            preprocessor = model.preprocessor
        features_train = preprocessor.transform(spectra)
        del spectra
    yield Progress("sample", _at("sample", 1.0), f"sampled {picks.size} of {valid.size} pixels")

    history: list[EpochEvent] = []
    if model is None:
        autoencoder = SpectralAutoencoder(
            config.model_config(preprocessor.n_features, preprocessor.likelihood)
        )
        previewer = _Previewer(cube, preprocessor, config)
        with timer("train"):
            for event in train_autoencoder(
                autoencoder, features_train, config.train_config(), seed=config.seed, device=device
            ):
                history.append(event)
                progress = Progress(
                    "train",
                    _at("train", event.epoch / event.n_epochs),
                    f"epoch {event.epoch}/{event.n_epochs}  loss {event.validation_loss:.4g}",
                    epoch=event,
                )
                if config.preview_every and event.epoch % config.preview_every == 0:
                    progress = previewer.update(progress, autoencoder, device)
                yield progress
    else:
        autoencoder = model.autoencoder.to(device)

    with timer("embed"):
        latents_train = embed(autoencoder, features_train, device)
    features_all = np.empty((valid.size, preprocessor.n_features), dtype=np.float32)
    latents_all = np.empty((valid.size, autoencoder.config.latent_dim), dtype=np.float32)
    done = 0
    for rows_slice, block in cube.iter_blocks():
        with timer("embed"):
            keep = cube.mask[rows_slice].ravel()
            block_features = preprocessor.transform(block.reshape(-1, block.shape[-1])[keep])
            n = block_features.shape[0]
            features_all[done : done + n] = block_features
            latents_all[done : done + n] = embed(autoencoder, block_features, device)
            done += n
        yield Progress("embed", _at("embed", done / valid.size), f"embedded {done}/{valid.size} pixels")

    likelihood = preprocessor.likelihood
    mixture_likelihood = likelihood if config.refine and likelihood in MIXTURE_LIKELIHOODS else None
    criteria: dict[str, dict[int, float]] = {}
    if model is not None and config.k is None:
        k = model.k
        centers = model.centers
        reason = f"k={k} from the reused model"
        initial = assign(latents_all, centers[k])
        keep_order = True
    else:
        with timer("choose k"):
            ks = _candidate_ks(config, mixture_likelihood, latents_train.shape[0])
            candidates: dict[int, Candidate] = {}
            steps = fit_candidates(latents_train, features_train, ks, mixture_likelihood, config.seed)
            for position, candidate in enumerate(steps):
                candidates[candidate.k] = candidate
                yield Progress(
                    "choose k",
                    _at("choose k", (position + 1) / len(ks)),
                    f"scored k={candidate.k}",
                    k=candidate.k,
                    silhouette=candidate.silhouette,
                )
            n_sample = latents_train.shape[0]
            if config.k is None:
                criteria = criteria_of(candidates, n_sample)
                choice = choose_k(candidates, n_sample)
                k, reason = choice.k, choice.reason
            else:
                k, reason = config.k, f"k={config.k} was given"
            centers = {c.k: latent_centers(latents_train, c.labels, c.k) for c in candidates.values()}
            chosen = candidates[k]
            if chosen.mixture is not None:
                initial = predict_posteriors(features_all, chosen.mixture, likelihood).argmax(axis=1)
            else:
                initial = fit_kmeans(latents_all, k, seed=config.seed, init=centers[k]).labels
        keep_order = False

    with timer("refine"):
        if mixture_likelihood is not None:
            yield Progress(
                "refine",
                _at("refine", 0.1),
                f"refining {k} clusters under the {likelihood} likelihood",
                k=k,
            )
        labels_flat, posteriors = _cluster_all(
            features_all,
            initial,
            k,
            config,
            mixture_likelihood,
            valid,
            cube.image_shape,
            keep_order=keep_order,
        )
    del features_all
    yield Progress("refine", _at("refine", 1.0), f"{k} clusters", k=k)

    with timer("summarise"):
        result = _assemble(cube, valid, labels_flat, posteriors, latents_all, k)
    fitted = FittedModel(config, preprocessor, autoencoder, centers, k)
    yield Progress("summarise", 1.0, "done", k=k)
    return Segmentation(
        **result,
        spectral_values=cube.spectral_values,
        spectral_unit=cube.spectral_unit,
        spectral_label=cube.spectral_label,
        criteria=criteria,
        k_reason=reason,
        timings=timer.seconds,
        config=config,
        model=fitted,
        history=history,
        cube_name=cube.name,
    )


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


def _cluster_all(
    features: np.ndarray,
    initial: np.ndarray,
    k: int,
    config: SegmentConfig,
    likelihood: str | None,
    valid: np.ndarray,
    image_shape: tuple[int, int],
    *,
    keep_order: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine an initial clustering of every pixel under the likelihood.

    Returns labels 0..k-1 and posteriors (n, k). Clusters are renumbered by
    decreasing size unless ``keep_order`` (a reused model keeps its numbering).
    """
    labels = initial
    posteriors = np.zeros((labels.size, k), dtype=np.float32)
    posteriors[np.arange(labels.size), labels] = 1.0
    if likelihood is not None:
        mixture = fit_mixture(
            features,
            labels,
            k,
            likelihood,
            spatial_weight=config.spatial_weight,
            pixel_index=valid,
            image_shape=image_shape,
        )
        posteriors = mixture.posteriors
        labels = np.argmax(posteriors, axis=1)
    if not keep_order:
        order = size_order(labels, k)
        labels = order[labels]
        posteriors = posteriors[:, np.argsort(order)]
    return labels, posteriors


def recluster(segmentation: Segmentation, cube: Datacube, k: int) -> Segmentation:
    """The same cube segmented into ``k`` clusters, reusing the trained embedding.

    For picking another k from the criteria curve without training again:
    the latents are kept, k-means starts from the centres found for that k
    while choosing it (or from k-means++ when k was outside the range tried),
    and the likelihood refinement runs as in :func:`segment`.
    """
    if segmentation.labels.shape != cube.image_shape:
        raise InputError(
            f"the segmentation is of a {segmentation.labels.shape} image but the cube is "
            f"{cube.image_shape}; pass the cube that was segmented"
        )
    valid = np.flatnonzero(segmentation.labels.ravel() > 0)
    if not 1 <= k <= valid.size:
        raise InputError(f"k must be between 1 and {valid.size}, got {k}")
    start = time.perf_counter()
    fitted = segmentation.model
    config = segmentation.config
    latents = segmentation.latents.reshape(-1, segmentation.latents.shape[-1])[valid]
    centers = fitted.centers.get(k)
    if centers is None:
        rng = np.random.default_rng(config.seed)
        sample = rng.choice(valid.size, size=min(config.n_train, valid.size), replace=False)
        centers = fit_kmeans(latents[sample], k, seed=config.seed).centers
        fitted.centers[k] = centers
    features = np.concatenate(
        [
            fitted.preprocessor.transform(
                block.reshape(-1, block.shape[-1])[segmentation.labels[rows].ravel() > 0]
            )
            for rows, block in cube.iter_blocks()
        ]
    )
    likelihood = fitted.preprocessor.likelihood
    labels_flat, posteriors = _cluster_all(
        features,
        fit_kmeans(latents, k, seed=config.seed, init=centers).labels,
        k,
        config,
        likelihood if config.refine and likelihood in MIXTURE_LIKELIHOODS else None,
        valid,
        cube.image_shape,
        keep_order=False,
    )
    result = _assemble(cube, valid, labels_flat, posteriors, latents, k)
    return Segmentation(
        **result,
        spectral_values=cube.spectral_values,
        spectral_unit=cube.spectral_unit,
        spectral_label=cube.spectral_label,
        criteria=segmentation.criteria,
        k_reason=f"k={k} was picked by the user (the criteria suggested k={fitted.k})",
        timings={"recluster": time.perf_counter() - start},
        config=config.with_changes(k=k),
        model=FittedModel(config, fitted.preprocessor, fitted.autoencoder, fitted.centers, k),
        history=segmentation.history,
        cube_name=segmentation.cube_name,
    )


def _neighbour_spectra(cube: Datacube, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Spectra of each pixel's right-hand neighbour (left-hand on the last column)."""
    width = cube.image_shape[1]
    if width == 1:
        height = cube.image_shape[0]
        return cube.spectra(np.where(rows + 1 < height, rows + 1, rows - 1).clip(0), cols)
    return cube.spectra(rows, np.where(cols + 1 < width, cols + 1, cols - 1))


def _assemble(
    cube: Datacube,
    valid: np.ndarray,
    labels_flat: np.ndarray,
    posteriors: np.ndarray,
    latents: np.ndarray,
    k: int,
) -> dict[str, np.ndarray]:
    """Image-shaped maps and per-cluster spectra from per-pixel results."""
    height, width = cube.image_shape
    dtype = np.uint8 if k < 256 else np.uint16
    labels = np.zeros(height * width, dtype=dtype)
    labels[valid] = labels_flat + 1
    labels = labels.reshape(height, width)
    confidence = np.zeros(height * width, dtype=np.float32)
    confidence[valid] = posteriors.max(axis=1)
    probabilities = np.zeros((height * width, k), dtype=np.float32)
    probabilities[valid] = posteriors
    latent_map = np.full((height * width, latents.shape[1]), np.nan, dtype=np.float32)
    latent_map[valid] = latents
    mean, std = cluster_spectra(cube, labels, k)
    return {
        "labels": labels,
        "confidence": confidence.reshape(height, width),
        "probabilities": probabilities.reshape(height, width, k),
        "latents": latent_map.reshape(height, width, -1),
        "mean_spectra": mean,
        "std_spectra": std,
    }


def cluster_spectra(cube: Datacube, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (k, C) of the raw spectra of clusters 1..k, in one pass."""
    n_channels = cube.n_channels
    sums = np.zeros((k, n_channels))
    squares = np.zeros((k, n_channels))
    counts = np.zeros(k)
    for rows, block in cube.iter_blocks():
        block_labels = labels[rows].ravel().astype(np.int64)
        spectra = finite_or_zero(block.reshape(-1, n_channels)).astype(np.float64)
        members = block_labels > 0
        one_hot = np.zeros((members.sum(), k))
        one_hot[np.arange(one_hot.shape[0]), block_labels[members] - 1] = 1.0
        spectra = spectra[members]
        sums += one_hot.T @ spectra
        squares += one_hot.T @ spectra**2
        counts += one_hot.sum(axis=0)
    safe = np.maximum(counts, 1.0)[:, None]
    mean = sums / safe
    std = np.sqrt(np.maximum(squares / safe - mean**2, 0.0))
    return mean, std


class _Previewer:
    """Cluster maps of a strided grid of pixels, shown while the model trains."""

    def __init__(self, cube: Datacube, preprocessor: Preprocessor, config: SegmentConfig) -> None:
        height, width = cube.image_shape
        self.stride = max(1, int(np.ceil(np.sqrt(height * width / PREVIEW_PIXELS))))
        grid_mask = cube.mask[:: self.stride, :: self.stride]
        self.shape = grid_mask.shape
        self.index = np.flatnonzero(grid_mask.ravel())
        rows, cols = np.divmod(self.index, self.shape[1])
        self.features = (
            preprocessor.transform(cube.spectra(rows * self.stride, cols * self.stride))
            if config.preview_every
            else np.empty((0, preprocessor.n_features), np.float32)
        )
        self.config = config

    def update(self, progress: Progress, autoencoder: SpectralAutoencoder, device: object) -> Progress:
        """``progress`` with a preview map and the current k and silhouette."""
        if self.features.shape[0] < 2:
            return progress
        latents = embed(autoencoder, self.features, device)  # type: ignore[arg-type]
        autoencoder.train()
        rng = np.random.default_rng(self.config.seed)
        subset = rng.choice(latents.shape[0], size=min(_PREVIEW_K_POINTS, latents.shape[0]), replace=False)
        if self.config.k is not None:
            ks = [min(self.config.k, subset.size)]
        else:
            ks = list(range(self.config.k_min, min(self.config.k_max, subset.size - 1) + 1))
        best: tuple[float, KMeansFit] | None = None
        for k in ks:
            fit = fit_kmeans(latents[subset], k, seed=self.config.seed, n_init=2)
            score = silhouette(latents[subset], fit.labels, seed=self.config.seed)
            if best is None or (np.isfinite(score) and score > best[0]) or not np.isfinite(best[0]):
                best = (score, fit)
        assert best is not None
        score, fit = best
        grid = np.zeros(self.shape[0] * self.shape[1], dtype=np.uint8 if fit.k < 256 else np.uint16)
        grid[self.index] = assign(latents, fit.centers) + 1
        return Progress(
            progress.stage,
            progress.fraction,
            progress.message,
            epoch=progress.epoch,
            k=fit.k,
            silhouette=score,
            preview=grid.reshape(self.shape),
            preview_stride=self.stride,
        )
