from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.core.checkpoint import load_model, save_model
from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.pipeline import (
    KS_PAST_REFUSAL,
    gather_features,
    local_block_map,
    recluster,
    segment,
    segment_steps,
)
from napari_deepcube.core.synthetic import make_painting

FAST = {"epochs": 8, "n_train": 2000, "k_max": 10, "preview_every": 2}


@pytest.fixture(scope="module")
def painting_result(small_painting):
    events = []
    result = segment(small_painting.cube, SegmentConfig(seed=0, **FAST), progress=events.append)
    return result, events


def test_finds_the_true_k_and_matches_ground_truth(painting_result, small_painting):
    result, _ = painting_result
    assert result.k == small_painting.k
    assert adjusted_rand_score(small_painting.labels.ravel(), result.labels.ravel()) > 0.9


def test_the_search_of_k_stops_past_the_refused_split(painting_result):
    result, _ = painting_result
    tried = sorted(result.criteria["bic"])
    # The candidates stop one past the refused k (result.k + 1), short of k_max.
    assert tried == list(range(2, result.k + 2 + KS_PAST_REFUSAL))
    assert tried[-1] < FAST["k_max"]


def test_previews_keep_to_their_share_of_the_training_time(small_painting):
    # A preview is due after every epoch, but each costs more than an epoch of this small sample.
    config = SegmentConfig(k=3, epochs=12, n_train=600, preview_every=1, patience=100)
    events = list(segment_steps(small_painting.cube, config))
    epochs = [event for event in events if event.epoch is not None]
    previews = [event for event in epochs if event.preview is not None]
    assert len(epochs) == 12
    assert previews[0].epoch.epoch == 1
    assert 1 <= len(previews) < len(epochs) / 2


def test_labels_follow_the_numbering_convention(painting_result, small_painting):
    result, _ = painting_result
    assert result.labels.dtype == np.uint8
    sizes = result.cluster_sizes
    assert sorted(set(np.unique(result.labels))) == list(range(1, result.k + 1))
    assert sizes == sorted(sizes, reverse=True)
    assert result.latents.shape[:2] == result.labels.shape
    np.testing.assert_allclose(result.probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_cluster_spectra_are_the_means_of_their_pixels(painting_result, small_painting):
    result, _ = painting_result
    spectra = np.asarray(small_painting.cube.data, dtype=np.float64)
    for label in (1, result.k):
        members = spectra[result.labels == label]
        np.testing.assert_allclose(result.mean_spectra[label - 1], members.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(result.std_spectra[label - 1], members.std(axis=0), rtol=1e-4, atol=1e-6)


def test_progress_covers_every_stage_in_order(painting_result):
    _, events = painting_result
    fractions = [event.fraction for event in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    stages = list(dict.fromkeys(event.stage for event in events))
    assert stages == ["sample", "train", "choose k", "refine", "assign", "summarise"]
    previews = [event for event in events if event.preview is not None]
    assert previews and previews[0].preview.shape == (48, 48)
    assert all(event.epoch.loss > 0 for event in events if event.epoch is not None)


def test_each_stage_says_how_much_cpu_time_it_took(painting_result):
    result, _ = painting_result
    assert result.cpu_timings.keys() == result.timings.keys()
    assert all(seconds >= 0 for seconds in result.cpu_timings.values())
    assert result.cpu_timings["train"] > 0  # torch computes on this process's threads


def test_report_holds_the_contract_keys(painting_result):
    result, _ = painting_result
    report = result.report()
    for key in ("k", "silhouette", "cluster_sizes", "timings", "config", "n_pixels", "version"):
        assert key in report
    assert set(report["silhouette"]) == {str(k) for k in range(2, 9)}
    assert report["n_pixels"] == 48 * 48


def test_same_seed_same_labels(small_painting):
    config = SegmentConfig(seed=7, k=3, epochs=3, n_train=800, preview_every=0)
    first = segment(small_painting.cube, config)
    second = segment(small_painting.cube, config)
    np.testing.assert_array_equal(first.labels, second.labels)


def test_left_out_pixels_get_label_zero(small_painting):
    data = np.array(small_painting.cube.data, dtype=np.float32)
    data[0, :5] = np.nan
    data[10, 10] = 0
    cube = Datacube.from_array(data)
    result = segment(cube, SegmentConfig(k=3, epochs=2, n_train=500, preview_every=0))
    assert (result.labels[0, :5] == 0).all() and result.labels[10, 10] == 0
    assert (result.labels > 0).sum() == 48 * 48 - 6
    assert np.isnan(result.latents[10, 10]).all()


def test_stopping_mid_training_raises_nothing(small_painting):
    steps = segment_steps(small_painting.cube, SegmentConfig(epochs=50, n_train=500, preview_every=0))
    epochs_seen = []
    for event in steps:
        if event.epoch is not None:
            epochs_seen.append(event.epoch.epoch)
            if event.epoch.epoch == 2:
                break
    steps.close()  # GeneratorExit inside training: it must stop there without an error
    assert epochs_seen == [1, 2]
    with pytest.raises(StopIteration):
        next(steps)


def test_a_mask_that_leaves_the_preview_grid_fewer_pixels_than_k_min_trains_without_previews():
    """192 x 96 pixels preview every second row and column; the mask leaves 4 of those and 9216 others."""
    painting = make_painting(height=192, width=96, n_channels=128, counts_per_pixel=300.0, seed=0)
    mask = np.zeros((192, 96), dtype=bool)
    mask[1::2] = True
    mask[0, [0, 2, 4, 6]] = True
    config = SegmentConfig(k_min=5, k_max=6, epochs=2, preview_every=1, seed=0)
    events = []

    result = segment(painting.cube.with_mask(mask), config, progress=events.append)

    assert result.k in (5, 6)
    assert [e for e in events if e.stage == "train"] and not any(e.preview is not None for e in events)


def test_reclustering_gives_another_k_without_training(painting_result, small_painting):
    result, _ = painting_result
    other = recluster(result, small_painting.cube, result.k + 1)
    assert other.k == result.k + 1
    assert np.unique(other.labels[other.labels > 0]).size == result.k + 1
    assert other.k_reason == f"k={result.k + 1} was picked by the user (the criteria suggested k={result.k})"
    again = recluster(other, small_painting.cube, 2)
    assert again.k_reason == f"k=2 was picked by the user (the criteria suggested k={result.k})"
    assert again.k_summary == f"2 clusters, as you picked (the criteria suggested {result.k})"


def test_a_trained_model_segments_another_cube(painting_result, small_painting):
    result, _ = painting_result
    reused = segment(small_painting.cube, SegmentConfig(preview_every=0), model=result.model)
    assert reused.history == [] and reused.k == result.k
    assert adjusted_rand_score(result.labels.ravel(), reused.labels.ravel()) > 0.95


def test_k_larger_than_the_pixels_is_refused(small_painting):
    with pytest.raises(InputError, match="larger than the"):
        segment(small_painting.cube, SegmentConfig(k=48 * 48 + 1))


def test_nebula_fluxes_are_modelled_as_gaussian():
    from napari_deepcube.core.synthetic import make_nebula

    nebula = make_nebula(height=40, width=40, seed=2)
    result = segment(nebula.cube, SegmentConfig(k=nebula.k, epochs=4, n_train=1200, preview_every=0))
    assert result.model.preprocessor.kind == "flux"
    assert result.model.preprocessor.likelihood == "gaussian"
    assert adjusted_rand_score(nebula.labels.ravel(), result.labels.ravel()) > 0.5


def _pass_labels(cube, fitted, block_map):
    labels = np.zeros(cube.image_shape, dtype=np.uint8)
    for rows, result in block_map(cube, fitted):
        labels[rows] = result.labels
    return labels


def test_the_pass_takes_the_features_made_for_every_valid_pixel(painting_result, small_painting):
    result, _ = painting_result
    mask = np.ones(small_painting.cube.image_shape, dtype=bool)
    mask[5, :30] = False  # the first band of rows (42 of 48 rows) loses 30 pixels,
    mask[44:46, 10:] = False  # the second 76: each band's features start where the last one's ended
    cube = small_painting.cube.with_mask(mask)
    assert len(list(cube.iter_blocks())) == 2
    rows, cols = np.divmod(np.flatnonzero(cube.mask.ravel()), cube.image_shape[1])
    features = result.model.preprocessor.transform(cube.spectra(rows, cols))

    transformed = _pass_labels(cube, result.model, local_block_map())
    given = _pass_labels(cube, result.model, local_block_map(valid_features=features))
    np.testing.assert_array_equal(given, transformed)
    assert (given[~mask] == 0).all() and (given[mask] > 0).all()
    # Other features give another map: the pass used the ones it was given.
    shuffled = np.random.default_rng(0).permutation(features)
    other = _pass_labels(cube, result.model, local_block_map(valid_features=shuffled))
    assert (other != transformed).mean() > 0.3


def test_a_run_hands_the_pass_the_features_of_every_pixel_where_it_made_them(small_painting, monkeypatch):
    # A spy that records what each band was given and runs the real pass.
    from napari_deepcube.core import pipeline

    real, given = pipeline.segment_block, []

    def recording(block, mask, fitted, variances=None, features=None):
        given.append(features is not None)
        return real(block, mask, fitted, variances, features)

    monkeypatch.setattr(pipeline, "segment_block", recording)
    config = SegmentConfig(k=4, epochs=2, n_train=600, preview_every=0)
    segment(small_painting.cube, config)  # the mixture refined on all 2304 pixels
    assert given == [True, True]
    given.clear()
    segment(small_painting.cube, replace(config, n_refine=1000))  # refined on 1000 of them
    assert given == [False, False]


def test_the_pass_over_pixels_does_not_depend_on_block_order(small_painting):
    from napari_deepcube.core.pipeline import segment_block

    def reversed_bands(cube, fitted):
        bands = list(cube.iter_blocks(block_pixels=48 * 5))
        for rows, block in reversed(bands):
            yield rows, segment_block(block, cube.mask[rows], fitted)

    config = SegmentConfig(k=4, epochs=2, n_train=600, preview_every=0)
    here = segment(small_painting.cube, config)
    elsewhere = segment(small_painting.cube, config, block_map=reversed_bands)
    np.testing.assert_array_equal(here.labels, elsewhere.labels)
    np.testing.assert_allclose(here.mean_spectra, elsewhere.mean_spectra, rtol=1e-12)


def test_spatial_weight_smooths_the_map():
    from scipy.ndimage import generic_filter

    def isolated(labels):
        same = generic_filter(labels.astype(float), lambda w: np.sum(w == w[4]) - 1, size=3, mode="nearest")
        return int((same == 0).sum())

    # So few counts that a purely spectral map has isolated, wrongly labelled pixels.
    noisy = make_painting(height=48, width=48, n_channels=256, counts_per_pixel=12.0, seed=1)
    base = SegmentConfig(k=noisy.k, epochs=3, n_train=1000, preview_every=0)
    plain = segment(noisy.cube, base)
    smooth = segment(noisy.cube, base.with_changes(spatial_weight=3.0))
    assert isolated(plain.labels) >= 8
    assert isolated(smooth.labels) * 2 <= isolated(plain.labels)
    def ari(result):
        return adjusted_rand_score(noisy.labels.ravel(), result.labels.ravel())

    assert ari(smooth) > ari(plain)
    assert smooth.config.spatial_weight == 3.0
    np.testing.assert_allclose(smooth.probabilities[smooth.labels > 0].sum(axis=-1), 1.0, rtol=1e-5)


def _water_vegetation_soil(rng, size=48, n_bands=120):
    """Reflectance of water, vegetation and soil in three bands of columns, each pixel 0-50 % its neighbour.

    Returns the cube, each pixel's dominant material (H, W) and its share of it (H, W).
    """
    bands = np.linspace(0.0, 1.0, n_bands)
    water = 0.06 - 0.04 * bands
    vegetation = 0.05 + 0.45 / (1 + np.exp(-(bands - 0.35) / 0.03))  # a red edge
    soil = 0.15 + 0.25 * bands
    rows, cols = np.mgrid[:size, :size]
    dominant = np.digitize(cols + 4 * np.sin(rows / 6), [size / 3, 2 * size / 3])
    field = gaussian_filter(rng.normal(size=(size, size)), 4.0)
    purity = (0.5 + 0.5 * (field - field.min()) / np.ptp(field))[..., None]
    neighbour = np.where(dominant == 1, rng.choice([0, 2], size=(size, size)), 1)
    amounts = purity * np.eye(3)[dominant] + (1 - purity) * np.eye(3)[neighbour]
    cube = amounts @ np.stack([water, vegetation, soil]) + rng.normal(0.0, 0.003, (size, size, n_bands))
    return Datacube.from_array(cube.astype(np.float32)), dominant, purity[..., 0]


def test_a_mixed_reflectance_pixel_belongs_to_the_material_it_holds_most_of(tmp_path):
    cube, dominant, purity = _water_vegetation_soil(np.random.default_rng(0))
    result = segment(cube, SegmentConfig(k=3, epochs=3, n_train=1000, preview_every=0))
    assert result.model.preprocessor.kind == "reflectance"
    # Water holding 40 % vegetation looks like vegetation, which is ten times as bright: the
    # likelihood's most probable class gives ARI 0.85 here.
    assert adjusted_rand_score(dominant.ravel(), result.labels.ravel()) > 0.95
    # The probabilities are the pixel's shares of the materials, and its cluster the largest.
    probabilities = np.asarray(result.probabilities)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(result.labels, probabilities.argmax(axis=-1) + 1)
    # The confidence says how pure a pixel is.
    assert np.corrcoef(result.confidence.ravel(), purity.ravel())[0, 1] > 0.4  # the likelihood's: 0.01
    # A saved model unmixes by the same materials.
    loaded = load_model(save_model(tmp_path / "mixed", result.model))
    np.testing.assert_array_equal(loaded.mixture.materials, result.model.mixture.materials)
    again = segment(cube, SegmentConfig(preview_every=0), model=loaded)
    np.testing.assert_array_equal(again.labels, result.labels)
    # So does the map re-clustered to another k.
    coarser = recluster(result, cube, 2)
    assert coarser.model.mixture.materials.shape == (2, result.model.preprocessor.n_features)
    np.testing.assert_array_equal(coarser.labels, np.asarray(coarser.probabilities).argmax(axis=-1) + 1)


def test_jasper_ridge_gets_its_four_materials(shared_data):
    scene = np.load(shared_data / "jasper_ridge" / "jasper_ridge.npz", allow_pickle=False)
    result = segment(Datacube.from_array(scene["cube"]), SegmentConfig(seed=0, preview_every=0))
    assert result.model.preprocessor.kind == "reflectance"
    assert result.k == 4, result.k_reason
    assert "mixture" in result.k_reason
    assert adjusted_rand_score(scene["labels"].ravel(), result.labels.ravel()) > 0.8


def test_an_outlier_pixel_does_not_replace_a_mixture_as_a_class(shared_data):
    """The Cu/ZnO EELS image: at k = 3 the best split is a mix of the other two clusters.

    The next split cuts out one pixel, which its own shape explains exactly; it
    is not taken in the mixture's place.
    """
    scene = np.load(shared_data / "eels_cuzn" / "cuzn_eels_si.npz", allow_pickle=False)
    result = segment(Datacube.from_array(scene["cube"]), SegmentConfig(seed=0, preview_every=0))
    assert result.model.preprocessor.kind == "reflectance"
    assert result.k == 2, result.k_reason
    assert "mix of the other clusters" in result.k_reason
    assert np.bincount(result.labels.ravel())[1:].min() > 100


def test_a_model_remembers_how_well_it_fits_its_own_cube(painting_result):
    result, _ = painting_result
    assert result.model.training_confidence == pytest.approx(result.mean_confidence())
    assert result.fit_warnings(result.model) == []

    # The same model, far less sure of another cube's pixels.
    doubtful = replace(result, confidence=result.confidence * 0.5)

    (warning,) = doubtful.fit_warnings(result.model)
    assert "worse than the one it was trained on" in warning


def test_features_already_made_are_taken_in_their_place_and_the_rest_read(painting_result, small_painting):
    result, _ = painting_result
    cube, preprocessor = small_painting.cube, result.model.preprocessor
    picks = np.flatnonzero(cube.mask.ravel())[::3]
    every = gather_features(cube, picks, preprocessor)
    known_picks = picks[::2]
    # Marked rows, so that where each known row lands shows.
    marked = np.repeat(-1.0 - np.arange(known_picks.size, dtype=np.float32)[:, None], every.shape[1], axis=1)
    gathered = gather_features(cube, picks, preprocessor, known=(known_picks, marked))
    np.testing.assert_array_equal(gathered[::2], marked)
    np.testing.assert_array_equal(gathered[1::2], every[1::2])
    # Known features for every pick: the cube is not read; for none: every pick is read.
    assert gather_features(cube, picks, preprocessor, known=(picks, every)) is every
    none_known = (picks[:0], every[:0])
    np.testing.assert_array_equal(gather_features(cube, picks, preprocessor, known=none_known), every)
