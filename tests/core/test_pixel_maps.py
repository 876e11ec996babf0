import gc

import dask.array as da
import numpy as np
import pytest

from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.io import read_cube, write_cube
from napari_deepcube.core.pipeline import recluster, segment
from napari_deepcube.core.pixel_maps import MAPS_DIR_ENV

CONFIG = SegmentConfig(k=3, epochs=3, n_train=800, preview_every=0, seed=0)


@pytest.fixture(scope="module")
def cube_file(tmp_path_factory, small_painting):
    path = tmp_path_factory.mktemp("cube") / "painting.npy"
    write_cube(path, small_painting.cube)
    return path


def test_a_lazy_cube_keeps_its_maps_on_disk_with_the_same_values(cube_file, tmp_path, monkeypatch):
    monkeypatch.setenv(MAPS_DIR_ENV, str(tmp_path))
    eager = segment(read_cube(cube_file, lazy=False), CONFIG)
    lazy = segment(read_cube(cube_file, lazy=True), CONFIG)

    assert isinstance(eager.probabilities, np.ndarray) and isinstance(eager.latents, np.ndarray)
    assert isinstance(lazy.probabilities, da.Array) and isinstance(lazy.latents, da.Array)
    assert {folder.name.split("-")[1] for folder in tmp_path.iterdir()} == {"posteriors", "latents"}
    assert np.array_equal(lazy.labels, eager.labels)
    assert np.array_equal(lazy.confidence, eager.confidence)
    assert np.array_equal(np.asarray(lazy.probabilities), eager.probabilities)
    assert np.array_equal(np.asarray(lazy.latents), eager.latents, equal_nan=True)


def test_the_store_is_deleted_with_the_last_map_reading_it(cube_file, tmp_path, monkeypatch):
    monkeypatch.setenv(MAPS_DIR_ENV, str(tmp_path))
    result = segment(read_cube(cube_file, lazy=True), CONFIG)
    probabilities = result.probabilities[..., ::-1]  # a view of the store outlives the result
    del result
    gc.collect()
    assert len(list(tmp_path.iterdir())) == 1
    assert np.isfinite(np.asarray(probabilities)).all()
    del probabilities
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_a_lazy_result_is_clustered_again(cube_file, tmp_path, monkeypatch):
    monkeypatch.setenv(MAPS_DIR_ENV, str(tmp_path))
    cube = read_cube(cube_file, lazy=True)
    other = recluster(segment(cube, CONFIG), cube, 2)
    assert other.k == 2 and isinstance(other.probabilities, da.Array)
    assert np.allclose(np.asarray(other.probabilities).sum(axis=-1)[other.labels > 0], 1.0, atol=1e-5)
