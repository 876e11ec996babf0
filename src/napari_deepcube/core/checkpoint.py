"""Saving and loading a trained model, safely.

A model file is one ``torch.save`` of a dictionary holding only tensors,
strings and numbers: the network's weights, the fitted preprocessing arrays,
the latent k-means centres, and the configuration as JSON text. It is read
back with ``torch.load(weights_only=True)``, which refuses anything that
would run code, so opening a model file from someone else is safe.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint_file import model_file
from .config import SegmentConfig
from .errors import InputError
from .io.outputs import atomic_write
from .kinds import DATA_KINDS
from .mixture import MIXTURE_LIKELIHOODS, Mixture
from .model import SpectralAutoencoder
from .network_config import ModelConfig
from .preprocess import Preprocessor
from .preprocess_config import PreprocessConfig
from .rest_frame import RestFrame
from .segmentation import FittedModel
from .selection import MIN_CHANNELS
from .typed_fields import shown, typed_values

#: Element types a model file's arrays may have, and the most values one may hold.
_ARRAY_DTYPES = (torch.float32, torch.float64, torch.int64, torch.int32, torch.int16, torch.uint8)
_MAX_ELEMENTS = 2**28

FORMAT = "napari-deepcube-model"
FORMAT_VERSION = 1


def _tensor(array: np.ndarray | None) -> torch.Tensor | None:
    return None if array is None else torch.from_numpy(np.ascontiguousarray(array))


def save_model(path: str | os.PathLike[str], model: FittedModel) -> Path:
    """Write ``model`` to :func:`model_file` of ``path``; returns that file.

    The file appears whole or not at all: it is written to a temporary file
    beside the target and renamed. A model that cannot repeat the edits made
    by hand to its clusters is refused (see :meth:`FittedModel.check_carries_edits`).
    """
    model.check_carries_edits()
    path = model_file(path)
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
        "channels": _tensor(state["channels"]),
        **({} if state["variance_scale"] is None else {"variance_scale": float(state["variance_scale"])}),
        "weights": {name: value.detach().cpu() for name, value in model.autoencoder.state_dict().items()},
        "centers": {str(k): _tensor(c) for k, c in model.centers.items()},
        "k": int(model.k),
        **(
            {} if model.training_confidence is None
            else {"training_confidence": float(model.training_confidence)}
        ),
        **(
            {} if model.rest_frame is None
            else {"rest_frame": {name: _tensor(value) for name, value in model.rest_frame.state().items()}}
        ),
        "mixtures": {
            str(mixture.k): {
                "likelihood": mixture.likelihood,
                "params": _tensor(mixture.params),
                "weights": _tensor(mixture.weights),
                "groups": _tensor(mixture.groups),
                **({} if mixture.brightness is None else {"brightness": _tensor(mixture.brightness)}),
                **({} if mixture.materials is None else {"materials": _tensor(mixture.materials)}),
            }
            for mixture in [model.mixture, *model.candidates.values()]
            if mixture is not None
        },
    }
    with atomic_write(path) as temporary:
        torch.save(payload, temporary)
    return path


def load_model(path: str | os.PathLike[str]) -> FittedModel:
    """Read a model written by :func:`save_model`, every field checked before use.

    Raises
    ------
    InputError
        If the file is missing, corrupt, not a napari-deepcube model, or holds
        a field of the wrong type, shape or range.
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
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(
            f"{path.name} has no valid format version (a {type(version).__name__}); save the model again"
        )
    if version > FORMAT_VERSION:
        raise InputError(
            f"{path.name} was written by a newer napari-deepcube; upgrade the package to read it"
        )
    try:
        return _fitted_model(_Fields(payload))
    except InputError as error:
        raise InputError(f"{path.name} is damaged: {error}; save the model again") from error


class _Fields:
    """Typed access to the entries of a loaded model file; a wrong entry is an InputError."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def value(self, name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in self.payload:
            raise InputError(f"{name!r} is missing")
        value = self.payload[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InputError(f"{name!r} is a {type(value).__name__}")
        return value

    def record(self, name: str) -> Any:
        try:
            return json.loads(self.value(name, str))
        except json.JSONDecodeError as error:
            raise InputError(f"{name!r} is not JSON ({error.msg})") from error
        except (ValueError, RecursionError) as error:  # an integer of thousands of digits, deep nesting
            raise InputError(f"{name!r} is not the JSON of a model's settings") from error

    def array(self, name: str, *, optional: bool = False) -> np.ndarray | None:
        if optional and self.payload.get(name) is None:
            return None
        return _array(self.value(name, torch.Tensor), name)


def _array(tensor: Any, name: str) -> np.ndarray:
    if not isinstance(tensor, torch.Tensor):
        raise InputError(f"{name!r} is a {type(tensor).__name__}, not an array")
    # Checked before any element is touched: a sparse, strided or expanded tensor (a
    # stride of 0 makes a huge array of one stored value) could crash or fill memory.
    if tensor.layout != torch.strided or tensor.dtype not in _ARRAY_DTYPES or not tensor.is_contiguous():
        raise InputError(f"{name!r} is not a plain array of numbers ({tensor.dtype}, {tensor.layout})")
    if tensor.numel() > _MAX_ELEMENTS:
        raise InputError(f"{name!r} holds {tensor.numel()} values, more than any model has")
    array = tensor.detach().cpu().numpy()
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise InputError(f"{name!r} holds NaN values")
    return array


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


def _fitted_model(fields: _Fields) -> FittedModel:
    record = fields.record("config")
    if isinstance(record, dict):
        # Saved before the run could decide (rest_frame None): such a model was never at rest.
        record.setdefault("rest_frame", False)
    config = SegmentConfig.from_dict(record)
    preprocessor = _preprocessor(fields)
    model_config = ModelConfig.from_dict(fields.record("model_config"))
    _expect(
        model_config.n_features == preprocessor.n_features,
        f"the network takes {model_config.n_features} features but the preprocessing gives "
        f"{preprocessor.n_features}",
    )
    weights = fields.value("weights", dict)
    with torch.device("meta"):  # the shapes the settings imply, without allocating the network
        expected = SpectralAutoencoder(model_config).state_dict()
    _check_weights(expected, weights)
    autoencoder = SpectralAutoencoder(model_config)
    autoencoder.load_state_dict(weights)
    autoencoder.eval()
    centers = {
        _whole(key, "centers"): _array(value, f"centers[{key}]")
        for key, value in fields.value("centers", dict).items()
    }
    for k, center in centers.items():
        _expect(
            center.shape == (k, model_config.latent_dim) and bool(np.isfinite(center).all()),
            f"the centres for k={k} are not {k} finite points of the latent size {model_config.latent_dim}",
        )
    k = fields.value("k", int)
    _expect(k in centers, f"the chosen k={k} has no cluster centres")
    mixtures = {
        _whole(key, "mixtures"): _mixture(value, f"mixtures[{key}]", preprocessor.n_features)
        for key, value in fields.value("mixtures", dict).items()
    }
    for key, mixture in mixtures.items():
        _expect(mixture.k == key, f"the mixture stored for k={key} has {mixture.k} classes")
    # Absent from models saved before it was recorded.
    confidence = (
        fields.value("training_confidence", float) if "training_confidence" in fields.payload else None
    )
    _expect(
        confidence is None or 0.0 <= confidence <= 1.0,
        f"the training confidence {confidence} is not a probability",
    )
    return FittedModel(
        config,
        preprocessor,
        autoencoder,
        centers,
        k,
        mixtures.pop(k, None),
        mixtures,
        confidence,
        rest_frame=_rest_frame(fields, preprocessor.n_channels, config.rest_frame),
    )


def _rest_frame(fields: _Fields, n_channels: int, expected: bool | None) -> RestFrame | None:
    """The frame of a model fitted at rest (its settings say whether: ``expected``, never None in a model)."""
    held = "rest_frame" in fields.payload
    state = "holds" if held else "lacks"
    _expect(
        expected is not None and held == expected,
        f"the settings say rest_frame={expected}, but the model {state} a rest frame",
    )
    if not expected:
        return None
    record = fields.value("rest_frame", dict)
    names = ("template", "wavelengths", "sigma")
    arrays = {name: _array(record.get(name), f"rest_frame.{name}") for name in names}
    _expect(
        all(array.shape == (n_channels,) and bool(np.isfinite(array).all()) for array in arrays.values())
        and bool(np.all(np.diff(arrays["wavelengths"]) > 0)) and bool(np.all(arrays["sigma"] > 0)),
        f"the rest frame is not a finite template, increasing wavelengths and positive noise of "
        f"{n_channels} channels",
    )
    return RestFrame.from_state(arrays)


def _whole(key: Any, name: str) -> int:
    text = str(key)
    _expect(
        re.fullmatch(r"[0-9]{1,5}", text) is not None and 1 <= int(text) <= 65535,
        f"{name} has a key {shown(key)} that is not a k",
    )
    return int(text)


def _preprocessor(fields: _Fields) -> Preprocessor:
    record = fields.record("preprocess")
    _expect(isinstance(record, dict), "'preprocess' is not a record")
    config = PreprocessConfig(**typed_values(PreprocessConfig, record.get("config"), "the preprocessing"))
    kind, n_channels = record.get("kind"), record.get("n_channels")
    _expect(kind in DATA_KINDS, f"the data kind {shown(kind)} is unknown")
    _expect(
        isinstance(n_channels, int) and not isinstance(n_channels, bool) and n_channels >= 1,
        f"the channel count {shown(n_channels)} is not a positive whole number",
    )
    # Written since the channel selection; a file without it learnt from every channel.
    channels = fields.array("channels", optional=True)
    if channels is not None:
        _expect(
            channels.ndim == 1 and channels.size >= MIN_CHANNELS and channels.dtype.kind in "iu"
            and bool(np.all(np.diff(channels) > 0)) and channels[0] >= 0 and channels[-1] < n_channels,
            f"the chosen channels are not {MIN_CHANNELS} or more increasing indices below {n_channels}",
        )
    n_used = n_channels if channels is None else channels.size
    starts = fields.array("starts")
    assert starts is not None
    _expect(
        starts.ndim == 1 and starts.size >= 1 and starts.dtype.kind in "iu" and starts[0] == 0
        and bool(np.all(np.diff(starts) > 0)) and starts[-1] < n_used,
        f"the bin starts are not increasing channel indices from 0 below {n_used}",
    )
    selected, sigma = fields.array("selected", optional=True), fields.array("sigma", optional=True)
    if config.transform == "noise" and DATA_KINDS[kind].whitened:
        _expect(selected is not None and sigma is not None, f"{kind} models need 'selected' and 'sigma'")
    if selected is not None:
        _expect(
            selected.ndim == 1 and selected.dtype.kind in "iu" and bool(np.all(np.diff(selected) > 0))
            and selected.size >= 1 and 0 <= selected[0] and selected[-1] < starts.size,
            f"'selected' is not increasing bin indices below {starts.size}",
        )
        _expect(
            sigma is not None and sigma.shape == selected.shape and bool(np.all(sigma > 0))
            and bool(np.isfinite(sigma).all()),
            "'sigma' is not one positive noise level per selected bin",
        )
    # Written since per-voxel variances, by a model fitted with them.
    variance_scale = fields.value("variance_scale", float) if "variance_scale" in fields.payload else None
    _expect(
        variance_scale is None
        or (selected is not None and math.isfinite(variance_scale) and variance_scale > 0),
        f"the variances' factor {variance_scale} is not a positive number of a whitened model",
    )
    directions = fields.array("noise_directions", optional=True)
    variances = fields.array("noise_variances", optional=True)
    if directions is not None or variances is not None:
        n_features = starts.size if selected is None else selected.size
        _expect(
            directions is not None and variances is not None and variances.ndim == 1
            and directions.shape == (n_features, variances.size)
            and bool(np.isfinite(directions).all()) and bool(np.all(variances >= 0)),
            f"the shared noise is not {n_features} x r directions with r variances",
        )
    return Preprocessor.from_state(
        {
            "config": asdict(config),
            "kind": kind,
            "n_channels": n_channels,
            "starts": starts,
            "selected": selected,
            "sigma": sigma,
            "noise_directions": directions,
            "noise_variances": variances,
            "channels": channels,
            "variance_scale": variance_scale,
        }
    )


def _check_weights(expected: dict[str, torch.Tensor], weights: dict[str, Any]) -> None:
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    _expect(not missing and not unexpected, f"the network's weights miss {missing} and add {unexpected}")
    for name, tensor in weights.items():
        value = _array(tensor, f"weights[{name}]")
        _expect(
            tuple(value.shape) == tuple(expected[name].shape) and bool(np.isfinite(value).all()),
            f"the weights {name!r} have shape {tuple(value.shape)} where the network has "
            f"{tuple(expected[name].shape)}, or are not finite",
        )


def _mixture(record: Any, name: str, n_features: int) -> Mixture:
    _expect(isinstance(record, dict), f"{name} is not a record")
    likelihood = record.get("likelihood")
    _expect(likelihood in MIXTURE_LIKELIHOODS, f"{name} has an unknown likelihood {shown(likelihood)}")
    params = _array(record.get("params"), f"{name}.params")
    weights = _array(record.get("weights"), f"{name}.weights")
    groups = _array(record.get("groups"), f"{name}.groups")
    m = params.shape[0] if params.ndim == 2 else -1
    _expect(
        params.shape == (m, n_features) and m >= 1 and not bool(np.isposinf(params).any()),
        f"{name}.params is not one row of {n_features} features per component",
    )
    _expect(
        weights.shape == (m,) and bool(np.all(weights > 0)) and bool(np.isfinite(weights).all()),
        f"{name}.weights are not {m} positive proportions",
    )
    _expect(
        groups.shape == (m,) and groups.dtype.kind in "iu"
        and bool(np.all((groups >= 0) & (groups < m)))
        and set(groups.tolist()) == set(range(int(groups.max()) + 1)),
        f"{name}.groups do not number the classes of its {m} components from 0",
    )
    brightness = None
    if "brightness" in record:
        brightness = _array(record["brightness"], f"{name}.brightness")
        _expect(
            likelihood == "gaussian" and brightness.shape == (m, 2)
            and bool(np.isfinite(brightness).all()) and bool(np.all(brightness[:, 1] > 0)),
            f"{name}.brightness is not a mean and a positive spread for each of its {m} components",
        )
    materials = None
    if "materials" in record:
        materials = _array(record["materials"], f"{name}.materials")
        k = int(groups.max()) + 1
        _expect(
            likelihood == "gaussian" and materials.shape == (k, n_features)
            and bool(np.isfinite(materials).all()),
            f"{name}.materials are not {n_features} finite features for each of its {k} classes",
        )
    return Mixture(likelihood, params, weights, groups, brightness, materials)
