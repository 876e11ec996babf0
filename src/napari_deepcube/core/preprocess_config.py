"""How spectra become features: plain settings, importable without scikit-learn or torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import InputError

Kind = Literal["counts", "flux", "reflectance"]
KINDS = ("auto", "counts", "flux", "reflectance")
TRANSFORMS = ("noise", "paper")


@dataclass(frozen=True)
class PreprocessConfig:
    """How spectra become features.

    Parameters
    ----------
    kind
        ``"auto"`` detects counts (non-negative integers) versus fluxes.
    transform
        ``"noise"`` (likelihood-matched, default) or ``"paper"`` (log1p / max).
    max_features
        Most features per pixel after binning and channel selection.
    """

    kind: str = "auto"
    transform: str = "noise"
    max_features: int = 256

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown data kind {self.kind!r}; choose one of {KINDS}")
        if self.transform not in TRANSFORMS:
            raise InputError(f"unknown transform {self.transform!r}; choose one of {TRANSFORMS}")
        if self.max_features < 8:
            raise InputError(f"max_features must be at least 8, got {self.max_features}")
