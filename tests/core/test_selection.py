"""Restricting a run: a pixel mask and a channel selection (core, no screen)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.core.checkpoint import load_model, save_model
from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.pipeline import segment
from napari_deepcube.core.selection import channel_runs, parse_ranges, pixel_mask, selected_channels
from napari_deepcube.core.spectral import SpectralAxis

FAST = {"epochs": 4, "n_train": 800, "preview_every": 0, "k": 2}
N_CHANNELS = 64
#: The channels where the two classes differ; elsewhere their spectra are the same.
DIFFERENT = slice(44, 52)


def _two_classes(seed: int = 0) -> tuple[Datacube, np.ndarray]:
    """Photon counts on a keV axis: two halves whose spectra differ only in channels 44..51."""
    rng = np.random.default_rng(seed)
    channels = np.arange(N_CHANNELS)
    shared = 2.0 + 30.0 * np.exp(-0.5 * ((channels - 15) / 3.0) ** 2)
    extra = np.zeros(N_CHANNELS)
    extra[DIFFERENT] = 12.0
    truth = np.zeros((32, 32), dtype=int)
    truth[:, 16:] = 1
    rates = np.where(truth[..., None] == 1, shared + extra, shared)
    counts = rng.poisson(rates).astype(np.uint16)
    cube = Datacube.from_array(counts, spectral_values=0.1 * channels, spectral_unit="keV", name="halves")
    return cube, truth


@pytest.fixture(scope="module")
def halves():
    return _two_classes()


def _ari(truth: np.ndarray, labels: np.ndarray) -> float:
    return float(adjusted_rand_score(truth.ravel(), labels.ravel()))


def test_classes_that_differ_outside_the_channels_are_not_told_apart(halves):
    cube, truth = halves
    inside = segment(cube, SegmentConfig(channels="32:64", **FAST))
    outside = segment(cube, SegmentConfig(channels="0:40", **FAST))
    assert _ari(truth, inside.labels) > 0.95
    # The same classes, seen only where they are alike: the split is unrelated to them.
    assert _ari(truth, outside.labels) < 0.1
    np.testing.assert_array_equal(outside.model.preprocessor.channels, np.arange(40))


def test_a_range_in_spectral_units_picks_the_channels_inside_it(halves):
    cube, truth = halves
    result = segment(cube, SegmentConfig(spectral_range="4.0:6.3", **FAST))
    np.testing.assert_array_equal(result.model.preprocessor.channels, np.arange(40, 64))
    assert _ari(truth, result.labels) > 0.95
    assert result.report()["channels"] == {"n_used": 24, "n_channels": 64, "ranges": [[40, 64]]}


def test_features_come_only_from_the_chosen_channels(halves):
    cube, _ = halves
    result = segment(cube, SegmentConfig(channels="10:20,40:60", **FAST))
    preprocessor = result.model.preprocessor
    spectra = np.asarray(cube.data[0], dtype=np.float32)
    changed = spectra.copy()
    changed[:, :10] += 500.0
    changed[:, 20:40] *= 7.0
    changed[:, 60:] = 0.0
    np.testing.assert_array_equal(preprocessor.transform(changed), preprocessor.transform(spectra))
    moved = spectra.copy()
    moved[:, 45] += 50.0
    assert not np.array_equal(preprocessor.transform(moved), preprocessor.transform(spectra))


def test_reported_spectra_stay_whole(halves):
    cube, _ = halves
    result = segment(cube, SegmentConfig(channels="32:64", **FAST))
    assert result.mean_spectra.shape == (2, N_CHANNELS)
    data = np.asarray(cube.data, dtype=np.float64)
    for label in (1, 2):
        np.testing.assert_allclose(result.mean_spectra[label - 1], data[result.labels == label].mean(axis=0))


def test_labels_are_zero_outside_the_mask_exactly(halves):
    cube, _ = halves
    mask = np.zeros(cube.image_shape, dtype=bool)
    mask[4:28, 6:30] = True
    mask[10:14, 10:14] = False
    result = segment(cube.with_mask(mask), SegmentConfig(**FAST))
    np.testing.assert_array_equal(result.labels > 0, mask)
    assert result.n_pixels == mask.sum() == sum(result.cluster_sizes)
    assert np.isnan(result.latents[~mask]).all() and (result.probabilities[~mask] == 0).all()


def test_a_reused_model_segments_a_masked_cube_as_the_whole_one(halves):
    cube, _ = halves
    trained = segment(cube, SegmentConfig(channels="32:64", **FAST))
    mask = np.zeros(cube.image_shape, dtype=bool)
    mask[::3, 5:] = True
    again = segment(cube.with_mask(mask), SegmentConfig(preview_every=0), model=trained.model)
    np.testing.assert_array_equal(again.labels, np.where(mask, trained.labels, 0))


def test_the_mask_combines_with_the_cubes_own_valid_pixels(halves):
    cube, _ = halves
    data = np.asarray(cube.data).copy()
    data[0, :8] = 0  # empty pixels: left out by the cube itself
    holed = Datacube.from_array(data, spectral_values=cube.spectral_values, spectral_unit="keV")
    mask = np.zeros(cube.image_shape, dtype=bool)
    mask[:2, :] = True
    restricted = holed.with_mask(mask)
    assert restricted.n_valid == 2 * 32 - 8
    with pytest.raises(InputError, match="all empty"):
        holed.with_mask(np.eye(1, 32 * 32, dtype=bool).reshape(32, 32))


def test_a_saved_model_keeps_its_channels_and_refuses_an_axis_without_them(halves, tmp_path):
    cube, _ = halves
    trained = segment(cube, SegmentConfig(spectral_range="4.0:6.3", **FAST))
    loaded = load_model(save_model(tmp_path / "model", trained.model))
    assert loaded.config.spectral_range == "4.0:6.3"
    np.testing.assert_array_equal(loaded.preprocessor.channels, np.arange(40, 64))
    again = segment(cube, SegmentConfig(preview_every=0), model=loaded)
    np.testing.assert_array_equal(again.labels, trained.labels)
    shifted = Datacube.from_array(np.asarray(cube.data), spectral_values=cube.spectral_values - 2.0,
                                  spectral_unit="keV")
    with pytest.raises(InputError, match=r"--range 4:6.3 keV is not inside the cube's axis"):
        segment(shifted, SegmentConfig(preview_every=0), model=loaded)


def test_a_saved_model_refuses_a_cube_without_its_channels(halves, tmp_path):
    cube, _ = halves
    trained = segment(cube, SegmentConfig(channels="40:64", **FAST))
    loaded = load_model(save_model(tmp_path / "model", trained.model))
    assert loaded.config.channels == "40:64"
    short = Datacube.from_array(np.asarray(cube.data)[..., :48])
    with pytest.raises(InputError, match=r"--channels 40:64 reaches beyond the cube's 48 channels"):
        segment(short, SegmentConfig(preview_every=0), model=loaded)


@pytest.mark.parametrize(
    ("channels", "spectral_range", "words"),
    [
        ("10:5", "", "is empty"),
        ("a:b", "", "whole channel numbers"),
        ("1:2:3", "", "START:END"),
        ("-4:9", "", "numbered from 0"),
        ("", "2.5:2.5", "is empty"),
        ("", "1:nan", "finite"),
        ("0:8", "1:2", "give only one"),
    ],
)
def test_bad_selections_are_refused_when_the_settings_are_made(channels, spectral_range, words):
    with pytest.raises(InputError, match=words):
        SegmentConfig(channels=channels, spectral_range=spectral_range)


def test_selections_are_checked_against_the_axis():
    axis = SpectralAxis(np.linspace(0.0, 40.0, 1024), "keV", "Energy")
    np.testing.assert_array_equal(selected_channels("100:400,600:700", "", axis),
                                  np.r_[100:400, 600:700])
    assert selected_channels("", "", axis) is None
    with pytest.raises(InputError, match="beyond the cube's 1024 channels"):
        selected_channels("1000:1100", "", axis)
    with pytest.raises(InputError, match=r"not inside the cube's axis \(0 to 40 keV\)"):
        selected_channels("", "35:45", axis)
    with pytest.raises(InputError, match="holds no channel"):
        selected_channels("", "1.001:1.002", axis)
    with pytest.raises(InputError, match="keeps 1 channel"):
        selected_channels("5:6", "", axis)
    assert parse_ranges(" 1.2 : 9.5 , 10:12", whole=False, flag="--range") == ((1.2, 9.5), (10.0, 12.0))
    assert channel_runs(np.r_[100:400, 600:700], 1024) == [[100, 400], [600, 700]]


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (np.ones((4, 5, 3)), "not a 2-D image"),
        (np.ones((5, 4)), "is 5 x 4 pixels but the cube is 4 x 5"),
        (np.zeros((4, 5)), "no nonzero pixel"),
        (np.full((4, 5), "x"), "holds <U1 values"),
    ],
)
def test_bad_masks_are_refused_with_the_fix(values, words):
    with pytest.raises(InputError, match=words):
        pixel_mask(values, (4, 5), "mask.npy")


def test_a_real_eds_map_masked_and_restricted_to_an_energy_window(shared_data):
    """SEM-EDS of a rare-earth mineral: only the top half, learning only from 0.5-10 keV."""
    path = shared_data / "eds_bruker_sem" / "bruker_sem_eds_30x30_REE_mineral.npz"
    scan = np.load(path, allow_pickle=False)
    energy = scan["energy_keV"]
    cube = Datacube.from_array(scan["cube"], spectral_values=energy, spectral_unit="keV", name="REE")
    mask = np.zeros(cube.image_shape, dtype=bool)
    mask[:15] = True
    result = segment(cube.with_mask(mask), SegmentConfig(spectral_range="0.5:10", **FAST))
    np.testing.assert_array_equal(result.labels > 0, mask & cube.mask)
    inside = np.flatnonzero((energy >= 0.5 - 1e-9) & (energy <= 10 + 1e-9))
    np.testing.assert_array_equal(result.model.preprocessor.channels, inside)
    assert result.mean_spectra.shape == (2, energy.size)
