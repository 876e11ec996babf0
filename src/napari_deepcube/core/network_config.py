"""The shape of the autoencoder: plain settings, importable without torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import InputError
from .typed_fields import typed_values

LIKELIHOODS = ("multinomial", "gaussian", "mse")
#: Widest layer (and most features) a network may have: far above any real
#: setting, and a bound on what a damaged model file can make us allocate.
MAX_WIDTH = 65536
ACTIVATION_NAMES = ("silu", "selu", "relu")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the autoencoder.

    Parameters
    ----------
    n_features
        Input size F (set from the fitted preprocessor).
    likelihood
        Reconstruction loss, one of ``LIKELIHOODS``.
    hidden
        Widths of the encoder's hidden layers; the decoder mirrors them.
    latent_dim
        Size of the embedding.
    variational
        MMD-VAE when True, plain autoencoder when False.
    activation
        ``"silu"``, ``"selu"`` (the reference) or ``"relu"``.
    """

    n_features: int
    likelihood: str = "multinomial"
    hidden: tuple[int, ...] = (256, 128)
    latent_dim: int = 8
    variational: bool = False
    activation: str = "silu"

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            raise InputError(f"unknown likelihood {self.likelihood!r}; choose one of {LIKELIHOODS}")
        if self.activation not in ACTIVATION_NAMES:
            raise InputError(f"unknown activation {self.activation!r}; choose one of {ACTIVATION_NAMES}")
        if not 1 <= self.latent_dim <= 256:
            raise InputError(f"latent size must be between 1 and 256, got {self.latent_dim}")
        if not 1 <= self.n_features <= MAX_WIDTH:
            raise InputError(f"the feature count must be between 1 and {MAX_WIDTH}, got {self.n_features}")
        widths_ok = all(1 <= width <= MAX_WIDTH for width in self.hidden)
        if not self.hidden or len(self.hidden) > 8 or not widths_ok:
            raise InputError(
                f"hidden layers must be 1 to 8 widths between 1 and {MAX_WIDTH}, got {self.hidden}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_dict(cls, values: Any) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys and values of the wrong type are an error."""
        return cls(**typed_values(cls, values, "the network's settings"))
