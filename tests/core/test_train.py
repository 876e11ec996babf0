"""Training of the autoencoder: when it stops, and what it keeps."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from napari_deepcube.core.model import SpectralAutoencoder
from napari_deepcube.core.network_config import ModelConfig
from napari_deepcube.core.train import PLATEAU_SHARE, plateaued, train_autoencoder
from napari_deepcube.core.training_config import TrainConfig


def test_a_loss_that_still_falls_steadily_has_not_plateaued():
    falling = [10.0 - epoch for epoch in range(8)]
    assert not plateaued(falling, patience=5)


def test_a_loss_whose_last_epochs_bought_almost_nothing_has_plateaued():
    # 10 -> 4 in three epochs, then 0.02 over the last five: 0.3 % of the 6.02 bought.
    best = [10.0, 5.0, 4.0, 3.99, 3.985, 3.982, 3.981, 3.98]
    assert plateaued(best, patience=5)
    assert not plateaued(best[:5], patience=5), "too few epochs to judge"


def test_training_stops_on_a_plateau_long_before_its_last_epoch(small_painting):
    cube = small_painting.cube
    spectra = np.asarray(cube.data, dtype=np.float32).reshape(-1, cube.n_channels)
    features = np.add.reduceat(spectra, np.arange(0, spectra.shape[1], 8), axis=1)
    torch.manual_seed(0)
    model = SpectralAutoencoder(ModelConfig(n_features=features.shape[1], hidden=(64, 32), latent_dim=4))
    config = TrainConfig(epochs=200, batch_size=256, learning_rate=1e-3, patience=5, mmd_weight=0.0)
    events = list(train_autoencoder(model, features, config, seed=0))
    assert len(events) < config.epochs
    # Still improving a little: five stale epochs in a row did not stop it, the plateau did.
    assert any(event.improved for event in events[-config.patience :])
    best = np.minimum.accumulate([event.validation_loss for event in events])
    assert best[-1 - config.patience] - best[-1] < PLATEAU_SHARE * (best[0] - best[-1])


def test_training_never_imports_torchs_compiler(tmp_path):
    # A fresh interpreter: in this one another test may have imported torch._dynamo.
    script = tmp_path / "train.py"
    script.write_text(
        "import sys\n"
        "from napari_deepcube.core.config import SegmentConfig\n"
        "from napari_deepcube.core.pipeline import segment\n"
        "from napari_deepcube.core.synthetic import make_painting\n"
        "cube = make_painting(height=24, width=24, n_channels=128, seed=0).cube\n"
        "result = segment(cube, SegmentConfig(k=3, n_train=400, epochs=3, preview_every=0))\n"
        "assert len(result.history) == 3\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    finished = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "False"
