import json
import pickle

import numpy as np
import pytest
import torch

from napari_deepcube.core.checkpoint import load_model, save_model
from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.pipeline import segment
from napari_deepcube.core.synthetic import make_nebula
from napari_deepcube.core.train import embed


@pytest.fixture(scope="module")
def trained(small_painting):
    return segment(small_painting.cube, SegmentConfig(k=4, epochs=3, n_train=800, preview_every=0))


def test_round_trip_gives_the_same_model(trained, small_painting, tmp_path):
    path = save_model(tmp_path / "model", trained.model)
    assert path.suffix == ".pt" and path.is_file()
    loaded = load_model(path)
    assert loaded.k == 4 and loaded.config == trained.model.config
    features = trained.model.preprocessor.transform(small_painting.cube.data[0])
    np.testing.assert_array_equal(
        loaded.preprocessor.transform(small_painting.cube.data[0]), features
    )
    np.testing.assert_allclose(
        embed(loaded.autoencoder, features), embed(trained.model.autoencoder, features)
    )
    quiet = SegmentConfig(preview_every=0)
    again = segment(small_painting.cube, quiet, model=loaded)
    original = segment(small_painting.cube, quiet, model=trained.model)
    np.testing.assert_array_equal(again.labels, original.labels)


class _CodeRunningPayload:
    """Unpickling this creates a file: the proof that loading ran code."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_file_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    target = tmp_path / "created-by-unpickling"
    payload = {"format": "napari-deepcube-model", "x": _CodeRunningPayload(target)}
    torch.save(payload, path, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(InputError, match="not a readable napari-deepcube model"):
        load_model(path)
    assert not target.exists()


def test_other_files_are_refused(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a model at all")
    with pytest.raises(InputError, match=r"junk\.pt"):
        load_model(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a napari-deepcube model"):
        load_model(tmp_path / "other.pt")
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "missing.pt")


def test_a_flux_model_keeps_its_shared_noise(tmp_path):
    nebula = make_nebula(height=32, width=32, hard=True, seed=3)
    result = segment(nebula.cube, SegmentConfig(k=3, epochs=2, n_train=800, preview_every=0))
    noise = result.model.preprocessor.shared_noise
    assert noise is not None and noise.rank > 0
    loaded = load_model(save_model(tmp_path / "flux", result.model))
    np.testing.assert_array_equal(loaded.preprocessor.shared_noise.directions, noise.directions)
    spectra = nebula.cube.data[0]
    np.testing.assert_array_equal(
        loaded.preprocessor.transform(spectra), result.model.preprocessor.transform(spectra)
    )
    # The classes' brightness distributions travel with the model, and a hostile one is refused.
    assert result.model.mixture.brightness is not None
    np.testing.assert_array_equal(loaded.mixture.brightness, result.model.mixture.brightness)
    payload = torch.load(tmp_path / "flux.pt", weights_only=True)
    for record in payload["mixtures"].values():
        record["brightness"] = -record["brightness"]
    torch.save(payload, tmp_path / "hostile.pt")
    with pytest.raises(InputError, match="brightness is not a mean and a positive spread"):
        load_model(tmp_path / "hostile.pt")


def test_a_model_saved_before_the_rest_frame_setting_loads_as_observed(trained, tmp_path):
    save_model(tmp_path / "model", trained.model)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    config = json.loads(payload["config"])
    assert config.pop("rest_frame") is False  # a run that stayed as observed says so
    payload["config"] = json.dumps(config)
    torch.save(payload, tmp_path / "older.pt")
    assert load_model(tmp_path / "older.pt").config.rest_frame is False
    # A file that says the run was left to decide is not one this software wrote.
    payload["config"] = json.dumps({**config, "rest_frame": None})
    torch.save(payload, tmp_path / "undecided.pt")
    with pytest.raises(InputError, match="rest_frame=None"):
        load_model(tmp_path / "undecided.pt")
