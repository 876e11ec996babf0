"""An edited or damaged model file is refused at loading, with one line: never a crash later."""

import copy
import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_deepcube.core.checkpoint import load_model, save_model
from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.pipeline import segment

QUIET = SegmentConfig(preview_every=0)


@pytest.fixture(scope="module")
def saved(small_painting, tmp_path_factory):
    """A model trained on the small painting, as the dictionary a model file holds."""
    result = segment(small_painting.cube, SegmentConfig(k=3, k_max=4, epochs=2, n_train=600, preview_every=0))
    path = save_model(tmp_path_factory.mktemp("model") / "model.pt", result.model)
    return torch.load(path, weights_only=True)


@pytest.fixture(scope="module")
def strip(small_painting):
    """A few rows of the painting, quick to segment with a loaded model."""
    return Datacube.from_array(np.asarray(small_painting.cube.data[:6]))


def _edited(payload, path, edit):
    payload = copy.deepcopy(payload)
    edit(payload)
    torch.save(payload, path)
    return path


def _json_edit(key, field, value):
    def edit(payload):
        record = json.loads(payload[key])
        record[field] = value
        payload[key] = json.dumps(record)

    return edit


def _mixture_edit(field, change):
    def edit(payload):
        key = next(iter(payload["mixtures"]))
        mixture = dict(payload["mixtures"][key])
        mixture[field] = change(mixture[field])
        payload["mixtures"][key] = mixture

    return edit


def _with_materials(edit):
    """Add ``materials``, made from it by ``edit``, to the first mixture (this model's are photon counts)."""

    def add(payload):
        key = next(iter(payload["mixtures"]))
        mixture = dict(payload["mixtures"][key])
        mixture["materials"] = edit(mixture)
        payload["mixtures"][key] = mixture

    return add


def _frame(n_channels):
    """A rest frame's arrays for a cube of ``n_channels`` channels (the painting's is 256)."""
    return {
        "template": torch.zeros(n_channels, dtype=torch.float64),
        "wavelengths": 4750.0 + 1.25 * torch.arange(n_channels, dtype=torch.float64),
        "sigma": torch.ones(n_channels, dtype=torch.float64),
    }


def _at_rest(frame):
    """A model whose settings say rest frame, holding the arrays ``frame()`` makes."""

    def edit(payload):
        _json_edit("config", "rest_frame", True)(payload)
        payload["rest_frame"] = frame()

    return edit


EDITS = {
    "format version is text": (lambda p: p.update(format_version="abc"), "format version"),
    "k without its centre": (lambda p: p.update(k=11), "no cluster centres"),
    "k is text": (lambda p: p.update(k="3"), "'k' is a str"),
    "bin starts of the wrong length": (lambda p: p.update(starts=p["starts"][:-5]), "features"),
    "bin starts not increasing": (lambda p: p.update(starts=p["starts"].flip(0)), "bin starts"),
    "unknown data kind": (_json_edit("preprocess", "kind", "plasma"), "data kind"),
    "settings of the wrong type": (_json_edit("config", "epochs", "many"), "epochs"),
    "unknown setting": (_json_edit("config", "colour", 1), "unknown settings"),
    "wrong feature count": (_json_edit("model_config", "n_features", 17), "features"),
    "mixture of the wrong shape": (_mixture_edit("params", lambda params: params[:, :-1]), "params"),
    "mixture groups skip a class": (_mixture_edit("groups", lambda groups: groups * 2), "groups"),
    "unknown likelihood": (_mixture_edit("likelihood", lambda _: "laplace"), "likelihood"),
    "materials for photon counts": (
        _with_materials(lambda m: torch.ones(int(m["groups"].max()) + 1, m["params"].shape[1])), "materials"),
    "centres with NaN": (
        lambda p: p["centers"].update({"3": torch.full_like(p["centers"]["3"], float("nan"))}), "NaN"),
    "chosen channels not increasing": (
        lambda p: p.update(channels=torch.tensor([5, 3, 9])), "chosen channels"),
    "chosen channels beyond the spectrum": (
        lambda p: p.update(channels=torch.arange(200, 300)), "chosen channels"),
    "fewer chosen channels than bins": (lambda p: p.update(channels=torch.arange(10)), "below 10"),
    "rest frame held, not in the settings": (lambda p: p.update(rest_frame=_frame(256)), "holds a rest"),
    "rest frame in the settings, not held": (_json_edit("config", "rest_frame", True), "lacks a rest frame"),
    "rest frame of another length": (_at_rest(lambda: _frame(5)), "rest frame is not"),
    "rest frame wavelengths decreasing": (
        _at_rest(lambda: {**_frame(256), "wavelengths": torch.arange(256.0).flip(0)}), "rest frame is not"),
    "rest frame without its template": (
        _at_rest(lambda: {k: v for k, v in _frame(256).items() if k != "template"}), "template"),
    "weights missing": (lambda p: p["weights"].pop(next(iter(p["weights"]))), "weights"),
    "weights of another shape": (
        lambda p: p["weights"].update({k: v[..., :1] for k, v in list(p["weights"].items())[:1]}), "shape"),
}


def test_the_unedited_file_loads_and_segments(saved, strip, tmp_path):
    path = _edited(saved, tmp_path / "same.pt", lambda payload: None)
    assert segment(strip, QUIET, model=load_model(path)).k == 3


def _garbage(rng):
    """A value of a random kind: what an edit or damage might leave in a field."""
    choice = rng.integers(6)
    if choice == 0:
        return None
    if choice == 1:
        return int(rng.integers(-3, 70000))
    if choice == 2:
        return str(rng.choice(["", "abc", "3", "NaN", "{}"]))
    if choice == 3:
        return {}
    shape = tuple(int(n) for n in rng.integers(0, 5, size=rng.integers(0, 4)))
    return torch.full(shape, float(rng.choice([0, 1, -1, 7, 0.5, np.inf])))


def _mutate(payload, rng):
    """Change one field of ``payload``, or one entry of a field, or one setting in its JSON."""
    key = str(rng.choice(sorted(payload)))
    value = payload[key]
    if isinstance(value, dict) and value and rng.random() < 0.5:
        value[str(rng.choice(sorted(value)))] = _garbage(rng)
    elif isinstance(value, str) and value.startswith("{") and rng.random() < 0.7:
        record = json.loads(value)
        options = [int(rng.integers(-2, 70000)), float(rng.normal()), float("nan"), "x", None, [1, 2]]
        record[str(rng.choice(sorted(record)))] = options[rng.integers(len(options))]
        payload[key] = json.dumps(record)
    elif isinstance(value, torch.Tensor) and value.ndim and value.shape[0] > 1 and rng.random() < 0.5:
        payload[key] = value[: int(rng.integers(0, value.shape[0]))]
    else:
        payload[key] = _garbage(rng)


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_any_mutated_model_loads_and_runs_or_is_refused(saved, strip, tmp_path_factory, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path_factory.mktemp("fuzz") / "mutated.pt"
    _edited(saved, path, lambda payload: _mutate(payload, rng))
    try:
        model = load_model(path)
    except InputError as error:
        assert "\n" not in str(error)
        return
    try:
        segment(strip, QUIET, model=model)
    except InputError as error:
        assert "\n" not in str(error)


def _tensor_edit(field, make):
    def edit(payload):
        payload[field] = make(payload[field])

    return edit


HOSTILE = {
    "bfloat16 array": (_tensor_edit("starts", lambda t: t.to(torch.bfloat16)), "plain array"),
    "sparse array": (_tensor_edit("starts", lambda t: t.to_sparse()), "plain array"),
    "huge expanded array": (_tensor_edit("starts", lambda t: torch.zeros(1).expand(10**11)), "plain array"),
    "complex mixture": (_mixture_edit("params", lambda p: p.to(torch.complex64)), "plain array"),
    "a centre key of a superscript digit": (
        lambda p: p["centers"].update({"²": p["centers"]["3"]}), "not a k"),
    "settings nested 100000 deep": (lambda p: p.update(config="[" * 100000 + "]" * 100000), "JSON"),
    "a 5000-digit number": (lambda p: p.update(config='{"seed": ' + "9" * 5000 + "}"), "JSON"),
    "a class index of 2**40": (
        _mixture_edit("groups", lambda g: torch.cat([g[:-1], torch.tensor([2**40])])), "groups"),
    "a network of 16 GiB": (_json_edit("model_config", "hidden", [65536] * 8), "weights"),
}


@pytest.mark.parametrize("case", [*EDITS, *HOSTILE])
def test_an_edited_or_hostile_model_is_refused_at_loading_with_one_line(case, saved, tmp_path):
    """Refused before anything is built from it: no crash later, no memory spent."""
    edit, words = {**EDITS, **HOSTILE}[case]
    path = _edited(saved, tmp_path / "edited.pt", edit)
    with pytest.raises(InputError, match=r"edited\.pt") as raised:
        load_model(path)
    message = str(raised.value)
    assert words in message and "\n" not in message and "save the model again" in message
