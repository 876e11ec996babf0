"""Training of the autoencoder as a generator of progress events.

The caller drives training by iterating; stopping the iteration at any
yield (``close()``, or simply not asking for more) stops training within one
epoch, and the model keeps the best weights seen so far.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator

import numpy as np
import torch

from .errors import InputError
from .model import SpectralAutoencoder, mmd_to_normal
from .optimiser import Adam, PlateauSchedule
from .training_config import DEVICES, EpochEvent, TrainConfig

_EMBED_BATCH = 16384
#: Training stops once its last ``patience`` epochs bought at most this share of
#: all it bought (:func:`plateaued`; measured in docs/how-it-works.md, section 2).
PLATEAU_SHARE = 0.01


def resolve_device(name: str) -> torch.device:
    """The torch device for ``"auto"``, ``"cpu"`` or ``"cuda"``."""
    if name not in DEVICES:
        raise ValueError(f"unknown device {name!r}; SegmentConfig allows only {DEVICES}")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "--device cuda was asked for but no CUDA GPU is available; use --device auto"
        )
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def train_autoencoder(
    model: SpectralAutoencoder,
    features: np.ndarray,
    config: TrainConfig,
    *,
    seed: int = 0,
    device: torch.device | None = None,
) -> Iterator[EpochEvent]:
    """Train ``model`` on ``features`` (n, F), yielding one event per epoch.

    The model ends on the weights with the lowest validation loss, also when
    the caller stops early.
    """
    device = device or torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    data = torch.as_tensor(np.ascontiguousarray(features), dtype=torch.float32)
    order = torch.randperm(data.shape[0], generator=generator)
    n_val = max(1, round(config.validation_fraction * data.shape[0]))
    if data.shape[0] - n_val < 2:
        raise InputError(
            f"only {data.shape[0]} pixels to train on; a cube needs at least a few dozen "
            "valid pixels"
        )
    train_set = data[order[n_val:]].to(device)
    val_set = data[order[:n_val]].to(device)
    model.to(device)
    model.fit_input_scaling(train_set)
    optimiser = Adam(model.parameters(), config.learning_rate)
    scheduler = PlateauSchedule(optimiser, factor=0.25, patience=max(1, config.patience // 3))
    best_loss = float("inf")
    best_state = copy.deepcopy(model.state_dict())
    best_after: list[float] = []
    start = time.perf_counter()
    try:
        for epoch in range(1, config.epochs + 1):
            loss, mmd = _one_epoch(model, train_set, optimiser, config, generator)
            val_loss = _validation_loss(model, val_set)
            scheduler.step(val_loss)
            improved = val_loss < best_loss - 1e-4 * abs(val_loss)
            if improved:
                best_loss = val_loss
                best_state = copy.deepcopy(model.state_dict())
            best_after.append(best_loss)
            yield EpochEvent(
                epoch=epoch,
                n_epochs=config.epochs,
                loss=loss,
                validation_loss=val_loss,
                mmd=mmd,
                learning_rate=optimiser.learning_rate,
                elapsed=time.perf_counter() - start,
                improved=improved,
            )
            if plateaued(best_after, config.patience):
                break
    finally:
        model.load_state_dict(best_state)
        model.eval()


def plateaued(best_after: list[float], patience: int) -> bool:
    """Whether the last ``patience`` epochs lowered the best validation loss by at most
    :data:`PLATEAU_SHARE` of what it fell from the first epoch to now.

    ``best_after`` holds the best validation loss after each epoch; ``patience``
    epochs without any improvement are a plateau too. The loss holds the noise
    of the spectra, which no model removes, so its relative changes say little;
    the share of training's own progress does.
    """
    if len(best_after) <= patience:
        return False
    recent = best_after[-1 - patience] - best_after[-1]
    return recent <= PLATEAU_SHARE * (best_after[0] - best_after[-1])


def _one_epoch(
    model: SpectralAutoencoder,
    data: torch.Tensor,
    optimiser: Adam,
    config: TrainConfig,
    generator: torch.Generator,
) -> tuple[float, float]:
    model.train()
    permutation = torch.randperm(data.shape[0], generator=generator).to(data.device)
    total = 0.0
    total_mmd = 0.0
    n_batches = 0
    for start in range(0, data.shape[0], config.batch_size):
        batch = data[permutation[start : start + config.batch_size]]
        if batch.shape[0] < 2:
            continue
        reconstruction, z, _ = model(batch)
        loss = reconstruction.mean()
        mmd = torch.zeros((), device=data.device)
        if model.config.variational:
            mmd = mmd_to_normal(z)
            loss = loss + config.mmd_weight * mmd
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        total += loss.item()
        total_mmd += mmd.item()
        n_batches += 1
    return total / max(n_batches, 1), total_mmd / max(n_batches, 1)


@torch.no_grad()
def _validation_loss(model: SpectralAutoencoder, data: torch.Tensor) -> float:
    model.eval()
    reconstruction, _, _ = model(data)
    return float(reconstruction.mean())


@torch.no_grad()
def embed(
    model: SpectralAutoencoder, features: np.ndarray, device: torch.device | None = None
) -> np.ndarray:
    """Latent means of ``features`` (n, F) -> (n, D) float32, in batches."""
    device = device or next(model.parameters()).device
    model.eval()
    out = np.empty((features.shape[0], model.config.latent_dim), dtype=np.float32)
    for start in range(0, features.shape[0], _EMBED_BATCH):
        batch = torch.as_tensor(
            np.asarray(features[start : start + _EMBED_BATCH]), dtype=torch.float32
        )
        mu, _ = model.encode(batch.to(device))
        out[start : start + _EMBED_BATCH] = mu.cpu().numpy()
    return out
