"""Saving and loading a trained model, safely.

A model file is one ``torch.save`` of a dictionary holding only tensors,
strings and numbers: the network's weights, the fitted preprocessing arrays,
the latent k-means centres, and the configuration as JSON text. It is read
back with ``torch.load(weights_only=True)``, which refuses anything that
would run code, so opening a model file from someone else is safe.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import SegmentConfig
from .errors import InputError
from .io._common import atomic_write
from .mixture import Mixture
from .model import ModelConfig, SpectralAutoencoder
from .preprocess import Preprocessor
from .segmentation import FittedModel

FORMAT = "napari-deepcube-model"
FORMAT_VERSION = 1
SUFFIX = ".pt"


def _tensor(array: np.ndarray | None) -> torch.Tensor | None:
    return None if array is None else torch.from_numpy(np.ascontiguousarray(array))


def save_model(path: str | os.PathLike[str], model: FittedModel) -> Path:
    """Write ``model`` to ``path`` (``.pt`` is added when missing); returns the path.

    The file appears whole or not at all: it is written to a temporary file
    beside the target and renamed.
    """
    path = Path(path)
    if path.suffix != SUFFIX:
        path = path.with_name(path.name + SUFFIX)
    state = model.preprocessor.state()
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": json.dumps(model.config.to_dict()),
        "model_config": json.dumps(model.autoencoder.config.to_dict()),
        "preprocess": json.dumps(
            {"config": state["config"], "kind": state["kind"], "n_channels": state["n_channels"]}
        ),
        "starts": _tensor(state["starts"]),
        "selected": _tensor(state["selected"]),
        "sigma": _tensor(state["sigma"]),
        "noise_directions": _tensor(state["noise_directions"]),
        "noise_variances": _tensor(state["noise_variances"]),
        "weights": {name: value.detach().cpu() for name, value in model.autoencoder.state_dict().items()},
        "centers": {str(k): _tensor(c) for k, c in model.centers.items()},
        "k": int(model.k),
        "mixtures": {
            str(mixture.k): {
                "likelihood": mixture.likelihood,
                "params": _tensor(mixture.params),
                "weights": _tensor(mixture.weights),
                "groups": _tensor(mixture.groups),
            }
            for mixture in [model.mixture, *model.candidates.values()]
            if mixture is not None
        },
    }
    with atomic_write(path) as temporary:
        torch.save(payload, temporary)
    return path


def load_model(path: str | os.PathLike[str]) -> FittedModel:
    """Read a model written by :func:`save_model`.

    Raises
    ------
    InputError
        If the file is missing, corrupt, or not a napari-deepcube model.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model file {path} does not exist; check the path")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a bad file
        raise InputError(
            f"{path.name} is not a readable napari-deepcube model ({type(error).__name__}); "
            "save the model again with `Save model` or `save_model`"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path.name} is a torch file but not a napari-deepcube model")
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(
            f"{path.name} was written by a newer napari-deepcube; upgrade the package to read it"
        )
    try:
        config = SegmentConfig.from_dict(json.loads(payload["config"]))
        autoencoder = SpectralAutoencoder(ModelConfig.from_dict(json.loads(payload["model_config"])))
        autoencoder.load_state_dict(payload["weights"])
        autoencoder.eval()
        preprocess = json.loads(payload["preprocess"])

        def array(name: str) -> np.ndarray | None:
            value = payload.get(name)
            return None if value is None else value.numpy()

        preprocessor = Preprocessor.from_state(
            {
                **preprocess,
                "starts": array("starts"),
                "selected": array("selected"),
                "sigma": array("sigma"),
                "noise_directions": array("noise_directions"),
                "noise_variances": array("noise_variances"),
            }
        )
        centers = {int(k): c.numpy() for k, c in payload["centers"].items()}
        k = int(payload["k"])
        mixtures = {
            int(key): Mixture(
                value["likelihood"],
                value["params"].numpy(),
                value["weights"].numpy(),
                value["groups"].numpy(),
            )
            for key, value in payload["mixtures"].items()
        }
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
        raise InputError(f"{path.name} is damaged or incomplete ({error}); save the model again") from error
    mixture = mixtures.pop(k, None)
    return FittedModel(config, preprocessor, autoencoder, centers, k, mixture, mixtures)
