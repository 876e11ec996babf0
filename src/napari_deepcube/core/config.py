"""The one configuration object of a segmentation run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from .errors import InputError
from .model import ModelConfig
from .preprocess import PreprocessConfig
from .train import DEVICES, TrainConfig
from .typed_fields import typed_values

MODELS = ("ae", "vae")
PRESETS = ("default", "paper")


@dataclass(frozen=True)
class SegmentConfig:
    """Everything that decides a segmentation; plain values, JSON-ready.

    Parameters
    ----------
    k
        Number of clusters; ``None`` chooses it in ``k_min..k_max``.
    k_min, k_max
        Range searched when ``k`` is None.
    seed
        Seed of every random choice (pixel samples, weights, k-means starts).
    model
        ``"ae"`` (plain autoencoder) or ``"vae"`` (MMD-VAE).
    latent_dim, hidden
        Size of the embedding and widths of the hidden layers.
    epochs, batch_size, learning_rate, patience, mmd_weight
        Training settings (see :class:`~napari_deepcube.core.train.TrainConfig`).
    n_train
        Pixels sampled to train on and to choose k (all valid pixels when fewer).
    n_refine
        Pixels sampled to fit the final likelihood mixture (a superset of the
        training sample, so at least ``n_train``); every pixel is then
        assigned under that mixture.
    device
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
    kind
        ``"auto"``, ``"counts"``, ``"flux"`` or ``"reflectance"``: the kind of data
        (see :mod:`~napari_deepcube.core.preprocess`).
    max_features
        Most features per pixel after binning and channel selection.
    refine
        Refine the clusters by EM under the data's likelihood.
    spatial_weight
        Strength of the neighbour term in the refinement; 0 is purely spectral.
    preset
        ``"default"`` or ``"paper"`` (the reference method of Bombini et al.).
    preview_every
        Epochs between two preview cluster maps during training; 0 for none.
    """

    k: int | None = None
    k_min: int = 2
    k_max: int = 12
    seed: int = 0
    model: str = "ae"
    latent_dim: int = 8
    hidden: tuple[int, ...] = (256, 128)
    epochs: int = 40
    batch_size: int = 1024
    learning_rate: float = 1e-3
    patience: int = 5
    mmd_weight: float = 1.0
    n_train: int = 16000
    n_refine: int = 100000
    device: str = "auto"
    kind: str = "auto"
    max_features: int = 256
    refine: bool = True
    spatial_weight: float = 0.0
    preset: str = "default"
    preview_every: int = 5

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise InputError(f"unknown model {self.model!r}; choose 'ae' or 'vae'")
        if self.preset not in PRESETS:
            raise InputError(f"unknown preset {self.preset!r}; choose one of {PRESETS}")
        if self.device not in DEVICES:
            raise InputError(f"unknown device {self.device!r}; choose one of {DEVICES}")
        if self.k is not None and self.k < 1:
            raise InputError(f"k must be at least 1, got {self.k}")
        if self.k is None and not 2 <= self.k_min <= self.k_max:
            raise InputError(f"the k range {self.k_min}..{self.k_max} is empty; need 2 <= k-min <= k-max")
        if self.n_train < 16:
            raise InputError(f"the training sample must hold at least 16 pixels, got {self.n_train}")
        if not 0 <= self.seed < 2**32:
            raise InputError(f"the seed must be a whole number from 0 to {2**32 - 1}, got {self.seed}")
        if not (math.isfinite(self.spatial_weight) and self.spatial_weight >= 0):
            raise InputError(
                f"the spatial weight must be a finite number of at least 0, got {self.spatial_weight}"
            )
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise InputError(f"the learning rate must be a finite positive number, got {self.learning_rate}")
        if not (math.isfinite(self.mmd_weight) and self.mmd_weight >= 0):
            raise InputError(f"the MMD weight must be a finite number of at least 0, got {self.mmd_weight}")
        if self.patience < 1:
            raise InputError(f"the patience must be at least 1 epoch, got {self.patience}")
        if self.n_refine < 1 or self.preview_every < 0:
            raise InputError("n_refine must be at least 1 and preview_every at least 0")
        # Build the parts once so that their own checks run now, not mid-run.
        self.preprocess_config()
        self.train_config()

    @classmethod
    def paper(cls, **overrides: Any) -> SegmentConfig:
        """The reference method: log1p/max, SELU MLP 1024-512-256-32, latent 3, MSE, MMD-VAE."""
        values: dict[str, Any] = {
            "preset": "paper",
            "model": "vae",
            "latent_dim": 3,
            "hidden": (512, 256, 32),
            "max_features": 1024,
            "refine": False,
            "kind": "auto",
            "batch_size": 512,
        }
        values.update(overrides)
        return cls(**values)

    def preprocess_config(self) -> PreprocessConfig:
        """The preprocessing part."""
        transform = "paper" if self.preset == "paper" else "noise"
        return PreprocessConfig(kind=self.kind, transform=transform, max_features=self.max_features)

    def train_config(self) -> TrainConfig:
        """The training part."""
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            mmd_weight=self.mmd_weight,
        )

    def model_config(self, n_features: int, likelihood: str) -> ModelConfig:
        """The autoencoder's shape for ``n_features`` inputs."""
        return ModelConfig(
            n_features=n_features,
            likelihood=likelihood,
            hidden=self.hidden,
            latent_dim=self.latent_dim,
            variational=self.model == "vae",
            activation="selu" if self.preset == "paper" else "silu",
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, values: Any) -> SegmentConfig:
        """Inverse of :meth:`to_dict`; unknown keys and values of the wrong type are an error."""
        return cls(**typed_values(cls, values, "the settings"))

    def with_changes(self, **changes: Any) -> SegmentConfig:
        """A copy with some settings changed (validated again)."""
        return replace(self, **changes)
