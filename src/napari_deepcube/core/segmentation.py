"""The result of a segmentation run and the fitted model that produced it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from .config import SegmentConfig
from .errors import InputError
from .mixture import Mixture
from .pixel_maps import PixelMap
from .preprocess import Preprocessor
from .rest_frame import RestFrame
from .selection import channel_runs
from .spectral import SpectralAxis
from .training_config import EpochEvent
from .variance import FeatureNoise

#: Posterior probability under which a pixel's cluster is called uncertain.
DEFAULT_CONFIDENCE_THRESHOLD = 0.9
#: A model applied to a cube is said to fit it worse than its training cube when
#: the mean confidence of its pixels falls this much below the training cube's.
WORSE_FIT_CONFIDENCE_DROP = 0.1


@dataclass
class FittedModel:
    """What is needed to segment another cube without training.

    Attributes
    ----------
    config
        The run's configuration.
    preprocessor
        The fitted feature transform.
    autoencoder
        The trained torch model (``SpectralAutoencoder``).
    centers
        Latent centre of each cluster for each candidate k (clusters 0..k-1).
    k
        The number of clusters of the final segmentation.
    mixture
        The fitted likelihood mixture that assigns pixels to the k clusters, in
        the final numbering (None for the paper preset, which assigns by the
        nearest latent centre).
    candidates
        The candidate mixtures for the other k tried, for re-clustering.
    training_confidence
        Mean confidence of the segmented pixels of the cube the model was
        fitted to, to tell how well it fits another (None: unknown, a model
        saved by an older version).
    uncarried_edit
        An edit by hand of the map this model cannot repeat on another cube
        (a split, a region assigned: see :mod:`.editing`), named; "" when the
        model makes the map as it is. Such a model is neither saved nor
        applied (:meth:`check_carries_edits`): it would silently give the
        unedited clusters.
    rest_frame
        The frame every pixel's spectrum was moved to before its features
        were made (``rest_frame`` runs), which another cube is moved to as
        well; None for a run without.
    """

    config: SegmentConfig
    preprocessor: Preprocessor
    autoencoder: Any
    centers: dict[int, np.ndarray]
    k: int
    mixture: Mixture | None = None
    candidates: dict[int, Mixture] = field(default_factory=dict)
    training_confidence: float | None = None
    uncarried_edit: str = ""
    rest_frame: RestFrame | None = None

    def check_frame(self, rest_frame: bool | None) -> None:
        """Raise InputError when ``rest_frame`` (True: at rest; False: observed) is not the model's frame.

        A model keeps the frame it was trained in: its features were made from
        spectra in that frame, so another cube read in the other would not
        match them. None (the run decides) takes the model's.
        """
        if rest_frame is True and self.rest_frame is None:
            raise InputError(
                "the rest frame was asked for, but the model was trained without it and a model keeps "
                "the frame it was trained in; train a new model with the rest frame, or leave it off"
            )
        if rest_frame is False and self.rest_frame is not None:
            raise InputError(
                "the cube was asked to stay as observed, but the model was trained at rest and a model "
                "keeps the frame it was trained in; train a new model as observed, or leave that out"
            )

    def check_carries_edits(self) -> None:
        """Raise InputError when the clusters were edited in a way this model cannot repeat."""
        if self.uncarried_edit:
            raise InputError(
                f"the clusters were edited by hand ({self.uncarried_edit}), which the model cannot "
                "repeat on another cube; undo that edit, or re-cluster, to save or apply the model"
            )


@dataclass(frozen=True)
class Edit:
    """One edit by hand of a segmentation (see :mod:`.editing`).

    Attributes
    ----------
    action
        ``"merge"``, ``"split"`` or ``"assign"``.
    description
        What was done, in the cluster numbers of the map it was done on.
    k_before, k_after
        Clusters before and after.
    """

    action: str
    description: str
    k_before: int
    k_after: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass
class Segmentation:
    """A cluster map with everything needed to read, plot and report it.

    Attributes
    ----------
    labels
        (H, W) clusters 1..k numbered by decreasing size, 0 = left out;
        uint8 when k < 256, else uint16.
    confidence
        (H, W) float32 posterior probability of the assigned cluster (0 where
        left out).
    probabilities
        (H, W, k) float32 posterior probability of each cluster: a numpy
        array, or for a cube read lazily a dask array over an on-disk store
        (:mod:`.pixel_maps`).
    latents
        (H, W, D) float32 embedding (NaN where left out), kept like the
        probabilities.
    mean_spectra, std_spectra
        (k, C) mean and standard deviation of the raw spectra of each cluster.
    axis
        The spectral axis of those spectra.
    criteria
        Criterion name -> {k: value} for every k tried (empty when k was fixed).
    k_reason
        One sentence on why this k was chosen, with the numbers compared.
    timings
        Seconds spent in each stage.
    cpu_timings
        CPU seconds this process's threads spent in each stage of a run
        (empty after an edit or a re-clustering); over :attr:`timings`, the
        cores the stage kept busy.
    history
        One event per training epoch (empty when a trained model was reused).
    model
        The fitted model, reusable on another cube.
    cube_name
        The segmented cube's name.
    suggested_k
        The k the criteria chose (None when k was given or came with a reused
        model); it stays the same when the result is re-clustered to another k.
    k_summary
        Why this k, in plain words (what the widget shows; :attr:`k_reason`
        has the numbers).
    edits
        The edits by hand that made this map from the run's, in order.
    noise
        What the run divided its features by (each pixel's own noise from
        per-voxel variances, or a noise level per channel...), None where
        unknown.
    velocities
        (H, W) each pixel's line-of-sight velocity in km/s against the rest
        frame its spectrum was moved to (NaN where no line shows, and the
        spectrum stayed as it was); None for a run without ``rest_frame``.
        The mean spectra are then in that frame.
    frame_reason
        Why the spectra were, or were not, moved to a rest frame: "" where
        the question does not arise (no line fluxes on a wavelength axis), the
        run was told not to, or its model was trained without one.
    """

    labels: np.ndarray
    confidence: np.ndarray
    probabilities: PixelMap
    latents: PixelMap
    mean_spectra: np.ndarray
    std_spectra: np.ndarray
    axis: SpectralAxis
    criteria: dict[str, dict[int, float]]
    k_reason: str
    timings: dict[str, float]
    config: SegmentConfig
    model: FittedModel
    history: list[EpochEvent] = field(default_factory=list)
    cube_name: str = ""
    suggested_k: int | None = None
    k_summary: str = ""
    edits: tuple[Edit, ...] = ()
    noise: FeatureNoise | None = None
    velocities: np.ndarray | None = None
    cpu_timings: dict[str, float] = field(default_factory=dict)
    frame_reason: str = ""

    @property
    def k(self) -> int:
        """Number of clusters."""
        return int(self.mean_spectra.shape[0])

    @property
    def cluster_sizes(self) -> list[int]:
        """Pixels in clusters 1..k."""
        return np.bincount(self.labels.ravel(), minlength=self.k + 1)[1:].tolist()

    @property
    def n_pixels(self) -> int:
        """Pixels that were segmented (label > 0)."""
        return int((self.labels > 0).sum())

    @property
    def silhouette(self) -> dict[int, float]:
        """Silhouette per k tried."""
        return self.criteria.get("silhouette", {})

    def mean_confidence(self) -> float:
        """Mean confidence of the segmented pixels (0 when none is segmented)."""
        segmented = self.labels > 0
        return float(self.confidence[segmented].mean()) if segmented.any() else 0.0

    def fit_warnings(self, applied: FittedModel) -> list[str]:
        """How the model ``applied`` to this cube fits it badly, one sentence a problem (none: fine).

        Clusters of the model that no pixel of this cube joins (empty, or
        dropped from the map), and a mean confidence well below the one on the
        model's training cube.
        """
        warnings = []
        missing = applied.k - self.k + sum(size == 0 for size in self.cluster_sizes)
        if missing > 0:
            warnings.append(
                f"{missing} of the model's {applied.k} clusters get no pixel of this cube: "
                "its classes are not all here"
            )
        trained = applied.training_confidence
        here = self.mean_confidence()
        if trained is not None and here < trained - WORSE_FIT_CONFIDENCE_DROP:
            warnings.append(
                f"the model fits this cube worse than the one it was trained on (mean confidence "
                f"{here:.2f} against {trained:.2f}); train on this cube for a better map"
            )
        return warnings

    def uncertain(self, threshold: float = DEFAULT_CONFIDENCE_THRESHOLD) -> np.ndarray:
        """(H, W) True where a segmented pixel's confidence is below ``threshold``."""
        return (self.labels > 0) & (self.confidence < threshold)

    def report(self, threshold: float = DEFAULT_CONFIDENCE_THRESHOLD) -> dict[str, Any]:
        """JSON-ready summary (the contract of ``--report``)."""
        n = max(self.n_pixels, 1)
        return {
            "version": __version__,
            "cube": self.cube_name,
            "image_shape": list(self.labels.shape),
            "n_pixels": self.n_pixels,
            "k": self.k,
            "k_reason": self.k_reason,
            "silhouette": _json_curve(self.silhouette),
            "criteria": {name: _json_curve(curve) for name, curve in self.criteria.items()},
            "cluster_sizes": self.cluster_sizes,
            "confidence": {
                "threshold": threshold,
                "mean": float(self.confidence[self.labels > 0].mean()) if self.n_pixels else 0.0,
                "uncertain_fraction": float(self.uncertain(threshold).sum() / n),
            },
            "timings": {stage: round(seconds, 3) for stage, seconds in self.timings.items()},
            "training": {
                "epochs_run": len(self.history),
                "final_loss": self.history[-1].loss if self.history else None,
                "best_validation_loss": min((e.validation_loss for e in self.history), default=None),
            },
            "spectral_axis": {"label": self.axis.label, "unit": self.axis.unit},
            "config": self.config.to_dict(),
            "data_kind": self.model.preprocessor.kind,
            "noise": None if self.noise is None else self.noise.to_dict(),
            "channels": self.channel_report(),
            "edits": [edit.to_dict() for edit in self.edits],
            "model_repeats_edits": not self.model.uncarried_edit,
            "velocities": self.velocity_report(),
            "rest_frame": {"moved": self.model.rest_frame is not None, "reason": self.frame_reason},
        }

    def velocity_report(self) -> dict[str, Any] | None:
        """With ``rest_frame``: the share of segmented pixels whose velocity was measured, and its spread."""
        if self.velocities is None:
            return None
        segmented = self.velocities[self.labels > 0]
        measured = segmented[np.isfinite(segmented)]
        spread = np.percentile(measured, [5, 50, 95]).tolist() if measured.size else [None] * 3
        return {
            "unit": "km/s",
            "measured_fraction": float(measured.size / max(segmented.size, 1)),
            "percentile_5": spread[0],
            "median": spread[1],
            "percentile_95": spread[2],
        }

    def channel_report(self) -> dict[str, Any]:
        """The channels the model learnt from: how many, of how many, as half-open index runs."""
        preprocessor = self.model.preprocessor
        chosen = preprocessor.channels
        return {
            "n_used": preprocessor.n_channels if chosen is None else int(chosen.size),
            "n_channels": preprocessor.n_channels,
            "ranges": channel_runs(chosen, preprocessor.n_channels),
        }


def _json_curve(curve: dict[int, float]) -> dict[str, float | None]:
    return {str(k): (None if not np.isfinite(v) else round(float(v), 6)) for k, v in sorted(curve.items())}
