"""How the autoencoder is trained, and what each epoch reports: plain values, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """How the autoencoder is trained (defaults: :class:`~napari_deepcube.core.config.SegmentConfig`).

    Parameters
    ----------
    epochs
        Most passes over the training pixels.
    batch_size
        Pixels per gradient step.
    learning_rate
        Adam's initial step size; divided by 4 when the validation loss stalls.
    patience
        Epochs over which training must still progress: it stops when they
        lowered the best validation loss by at most a small share of its fall
        so far, or not at all (:func:`~napari_deepcube.core.train.plateaued`).
    mmd_weight
        Weight of the MMD prior term (variational models only).
    validation_fraction
        Share of the training pixels held out to decide when to stop.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    mmd_weight: float
    validation_fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InputError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 2:
            raise InputError(f"batch size must be at least 2, got {self.batch_size}")
        if not 0.0 < self.validation_fraction < 0.5:
            raise InputError("the validation fraction must lie between 0 and 0.5")


@dataclass(frozen=True)
class EpochEvent:
    """What happened in one epoch."""

    epoch: int
    n_epochs: int
    loss: float
    validation_loss: float
    mmd: float
    learning_rate: float
    elapsed: float
    improved: bool
