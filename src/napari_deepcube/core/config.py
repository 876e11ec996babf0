"""The one configuration object of a segmentation run."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from typing import Any, get_args, get_type_hints

import numpy as np

from .errors import InputError
from .network_config import MAX_WIDTH, ModelConfig
from .preprocess_config import KINDS, PreprocessConfig
from .selection import parse_ranges, selected_channels
from .spectral import SpectralAxis
from .training_config import DEVICES, TrainConfig
from .typed_fields import typed_values

MODELS = ("ae", "vae")
PRESETS = ("default", "paper")

#: Settings a run chooses for itself when it reuses a trained model; the others
#: describe how the model was made and are the model's own.
RUN_SETTINGS = (
    "k", "k_min", "k_max", "seed", "n_refine", "device", "spatial_weight", "preview_every", "variance",
)


@dataclass(frozen=True)
class Setting:
    """One setting of a run, as every interface shows it (command line, widget, report).

    Attributes
    ----------
    name
        The :class:`SegmentConfig` field.
    type
        ``int``, ``float`` or ``str``.
    default
        The one default.
    help
        What it does, in a few words.
    choices
        The allowed values of a text setting.
    low, high
        Inclusive range of a numeric setting (None: unbounded).
    option
        The command-line option when it is not the name's (``--range`` for ``spectral_range``).
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    option: str = ""

    @property
    def flag(self) -> str:
        """The command-line option, e.g. ``--k-min``."""
        return self.option or "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> None:
        """Raise InputError unless ``value`` is allowed (None is allowed where the default is None)."""
        if value is None and self.default is None:
            return
        if self.choices and value not in self.choices:
            raise InputError(f"unknown {self.name} {value!r}; choose one of {', '.join(self.choices)}")
        if self.type in (int, float):
            finite = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            low = -math.inf if self.low is None else self.low
            high = math.inf if self.high is None else self.high
            if not (finite and low <= value <= high):
                bounds = f"from {_number(low)}" + ("" if self.high is None else f" to {_number(high)}")
                raise InputError(f"{self.flag} must be a finite number {bounds}, got {value}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] = (),
    low: float | None = None,
    high: float | None = None,
    option: str = "",
) -> Any:
    """A dataclass field that also carries what :class:`Setting` needs."""
    return field(
        default=default,
        metadata={"help": help, "choices": choices, "low": low, "high": high, "option": option},
    )


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
    channels, spectral_range
        The channels the features are built from (see :mod:`~napari_deepcube.core.selection`):
        channel index ranges, half-open (``"100:400,600:700"``), or ranges of the
        spectral axis in its unit, ends included (``"1.2:9.5"``); at most one, ""
        for every channel. The reported spectra stay whole.
    variance
        Divide flux and reflectance features by each pixel's own noise, from
        the cube's per-voxel variances (a FITS file's STAT), when it has them
        (see :mod:`~napari_deepcube.core.variance`); False divides by the noise
        estimated per channel. A reused model whitens by them only when it
        was fitted with them.
    rest_frame
        Move every pixel's spectrum to one rest frame before segmenting (line
        fluxes on a wavelength axis; see :mod:`~napari_deepcube.core.rest_frame`):
        the gas is clustered by its lines, not by its line-of-sight velocity.
        True: always (an error for a cube that cannot be moved); False: never;
        None (the default): where the lines' velocities, measured on a sample,
        spread over more than one feature bin (:func:`.needed_rest_frame`).
    """

    k: int | None = _setting(None, "number of clusters (default: chosen in the k range)", low=1)
    k_min: int = _setting(2, "smallest k tried", low=2)
    k_max: int = _setting(12, "largest k considered (the search stops one past the first k refused)", low=2)
    seed: int = _setting(0, "random seed", low=0, high=2**32 - 1)
    model: str = _setting("ae", "autoencoder: plain (ae) or MMD-VAE (vae)", choices=MODELS)
    latent_dim: int = _setting(8, "latent size (paper: 3)", low=1, high=256)
    hidden: tuple[int, ...] = (256, 128)
    epochs: int = _setting(40, "most training epochs (fewer when training stalls)", low=1, high=100000)
    batch_size: int = _setting(1024, "pixels per gradient step", low=2)
    learning_rate: float = _setting(1e-3, "Adam's initial step size", low=1e-12, high=10.0)
    patience: int = _setting(5, "epochs over which training must still progress, or it stops", low=1)
    mmd_weight: float = _setting(1.0, "weight of the MMD prior (vae only)", low=0.0, high=1e6)
    n_train: int = _setting(16000, "pixels sampled for training and choosing k", low=16)
    n_refine: int = _setting(100000, "pixels sampled to fit the final mixture", low=1)
    device: str = _setting("auto", "where to train: the GPU when there is one (auto)", choices=DEVICES)
    kind: str = _setting(
        "auto", "photon counts, emission-line fluxes or reflectance (auto: detected)", choices=KINDS
    )
    max_features: int = _setting(256, "most features per pixel after binning", low=8, high=MAX_WIDTH)
    refine: bool = True
    spatial_weight: float = _setting(0.0, "neighbour smoothing strength", low=0.0, high=1e6)
    preset: str = _setting(
        "default", "'paper' reproduces the reference method of Bombini et al.", choices=PRESETS
    )
    preview_every: int = _setting(5, "epochs between two preview maps; 0 for none", low=0)
    channels: str = _setting(
        "", "learn only from these channels: index ranges A:B[,C:D], half-open (default: all)"
    )
    spectral_range: str = _setting(
        "",
        "learn only from these spectral ranges A:B[,C:D] in the cube's unit (keV, nm, Å...), "
        "ends included (default: all)",
        option="--range",
    )
    variance: bool = True
    rest_frame: bool | None = None

    def __post_init__(self) -> None:
        for setting in settings().values():
            setting.check(getattr(self, setting.name))
        parse_ranges(self.channels, whole=True, flag="--channels")
        parse_ranges(self.spectral_range, whole=False, flag="--range")
        if self.channels.strip() and self.spectral_range.strip():
            raise InputError("--channels and --range both choose the channels; give only one")
        if self.k is None and self.k_min > self.k_max:
            raise InputError(f"the k range {self.k_min}..{self.k_max} is empty; need 2 <= k-min <= k-max")
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

    @classmethod
    def from_preset(cls, preset: str = "default", **values: Any) -> SegmentConfig:
        """The settings ``values`` over the defaults of ``preset`` ("default" or "paper")."""
        return cls.paper(**values) if preset == "paper" else cls(preset=preset, **values)

    def preprocess_config(self) -> PreprocessConfig:
        """The preprocessing part."""
        transform = "paper" if self.preset == "paper" else "noise"
        return PreprocessConfig(kind=self.kind, transform=transform, max_features=self.max_features)

    def channel_selection(self, axis: SpectralAxis) -> np.ndarray | None:
        """The channels of a cube with ``axis`` that the features are built from; None for all.

        Raises
        ------
        InputError
            If a range is not inside ``axis`` or chooses too few channels.
        """
        return selected_channels(self.channels, self.spectral_range, axis)

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


@cache  # read from the class once: every SegmentConfig checks its values against these
def settings() -> dict[str, Setting]:
    """Every setting with a declared range or choices, by name, in declaration order."""
    hints = get_type_hints(SegmentConfig)
    found = {}
    for item in fields(SegmentConfig):
        if "help" not in item.metadata:
            continue
        kind = next((t for t in get_args(hints[item.name]) if t is not type(None)), hints[item.name])
        found[item.name] = Setting(item.name, kind, item.default, **item.metadata)
    return found
