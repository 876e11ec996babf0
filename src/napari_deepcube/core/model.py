"""Autoencoders that embed one pixel's features in a small latent space.

One class covers the plain autoencoder and the MMD-VAE (InfoVAE): with
``variational=True`` the encoder gives a mean and a log-variance, the latent is
sampled during training and an MMD term pulls the latents towards N(0, I).

The reconstruction loss follows the features' noise model (see
:mod:`napari_deepcube.core.preprocess`):

* ``"multinomial"``: the decoder gives log-probabilities over the bins and the
  loss is the negative log-likelihood of the observed counts, per count. The
  total number of counts drops out, so bright and dim pixels of one material
  embed together.
* ``"gaussian"``: features are whitened (unit noise); the decoder gives a
  spectral shape, the best non-negative amplitude is solved in closed form and
  the loss is the squared residual. Brightness again drops out.
* ``"mse"``: the reference method's mean squared error on log1p/max spectra.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from .network_config import ACTIVATION_NAMES, ModelConfig

ACTIVATIONS = dict(zip(ACTIVATION_NAMES, (nn.SiLU, nn.SELU, nn.ReLU), strict=True))


def _mlp(sizes: list[int], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes[:-1]):
        layers += [nn.Linear(n_in, n_out), activation()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class SpectralAutoencoder(nn.Module):
    """Fully connected (variational) autoencoder of per-pixel features.

    The encoder's input is normalised inside the model (so a saved model
    carries its normalisation): counts become square roots of proportions
    (which stabilises Poisson variance), whitened fluxes become unit vectors
    (their brightness is not a class property), and both are then
    standardised per feature with statistics from the training sample.
    """

    def __init__(self, config: ModelConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        act = ACTIVATIONS[config.activation]
        widths = [config.n_features, *config.hidden]
        n_out = config.latent_dim * (2 if config.variational else 1)
        # The initial weights come from the seed alone, whatever the caller's RNG state.
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.encoder = _mlp([*widths, n_out], act)
            self.decoder = _mlp([config.latent_dim, *reversed(widths[1:]), config.n_features], act)
        self.input_mean: torch.Tensor
        self.input_scale: torch.Tensor
        self.register_buffer("input_mean", torch.zeros(config.n_features))
        self.register_buffer("input_scale", torch.ones(config.n_features))

    def normalise(self, features: torch.Tensor) -> torch.Tensor:
        """Scale-free form of the features, before standardisation."""
        likelihood = self.config.likelihood
        if likelihood == "multinomial":
            total = features.sum(dim=1, keepdim=True).clamp_min(1.0)
            return torch.sqrt(features / total)
        if likelihood == "gaussian":
            return features / features.norm(dim=1, keepdim=True).clamp_min(1e-6)
        return features

    @torch.no_grad()
    def fit_input_scaling(self, features: torch.Tensor) -> None:
        """Set the per-feature standardisation from training features."""
        normalised = self.normalise(features)
        self.input_mean.copy_(normalised.mean(dim=0))
        std = normalised.std(dim=0)
        self.input_scale.copy_(std.clamp_min(float(std.mean()) * 1e-2 + 1e-8))

    def encode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latent mean and (for the VAE) log-variance."""
        hidden = (self.normalise(features) - self.input_mean) / self.input_scale
        out = self.encoder(hidden)
        if not self.config.variational:
            return out, None
        mu, logvar = out.chunk(2, dim=1)
        return mu, logvar.clamp(-10.0, 10.0)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (reconstruction loss per pixel, latent sample, latent mean)."""
        mu, logvar = self.encode(features)
        z = mu
        if logvar is not None and self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return reconstruction_loss(self.config.likelihood, self.decoder(z), features), z, mu


def reconstruction_loss(likelihood: str, decoded: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Per-pixel reconstruction loss, shape (n,)."""
    if likelihood == "multinomial":
        log_p = torch.log_softmax(decoded, dim=1)
        total = features.sum(dim=1).clamp_min(1.0)
        return -(features * log_p).sum(dim=1) / total
    if likelihood == "gaussian":
        # Best amplitude a >= 0 of the decoded shape, in closed form.
        shape_norm = (decoded * decoded).sum(dim=1).clamp_min(1e-6)
        amplitude = ((features * decoded).sum(dim=1) / shape_norm).clamp_min(0.0)
        residual = features - amplitude[:, None] * decoded
        return (residual * residual).mean(dim=1)
    return ((torch.sigmoid(decoded) - features) ** 2).mean(dim=1)


def mmd_to_normal(z: torch.Tensor, n_prior: int = 256) -> torch.Tensor:
    """Maximum mean discrepancy between latents and N(0, I) samples.

    The Gaussian kernel ``exp(-|x - y|^2 / D)`` (InfoVAE) keeps its width in
    step with the latent dimension D.
    """
    prior = torch.randn(n_prior, z.shape[1], device=z.device, dtype=z.dtype)
    dim = float(z.shape[1])

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.exp(-torch.cdist(a, b).pow(2) / dim).mean()

    return kernel(z, z) + kernel(prior, prior) - 2.0 * kernel(z, prior)
