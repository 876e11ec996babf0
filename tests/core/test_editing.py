import json

import dask.array as da
import numpy as np
import pytest

from napari_deepcube.core.checkpoint import save_model
from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.editing import assign, merge, split
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import read_cube, write_cube
from napari_deepcube.core.pipeline import segment
from napari_deepcube.core.pixel_maps import MAPS_DIR_ENV

CONFIG = SegmentConfig(k=4, epochs=3, n_train=1000, preview_every=0, seed=0)


@pytest.fixture(scope="module")
def result(small_painting):
    return segment(small_painting.cube, CONFIG)


def _cube_moments(cube, labels):
    """Mean and std spectrum of each label 1..max, straight from the cube's pixels."""
    spectra = np.asarray(cube.data, dtype=np.float64)
    members = [spectra[labels == label] for label in range(1, int(labels.max()) + 1)]
    return np.array([m.mean(axis=0) for m in members]), np.array([m.std(axis=0) for m in members])


def _check_conventions(edited):
    """Labels 1..k by decreasing size, probabilities a distribution, confidence that of the own cluster."""
    sizes = edited.cluster_sizes
    assert sorted(set(np.unique(edited.labels)) - {0}) == list(range(1, edited.k + 1))
    assert sizes == sorted(sizes, reverse=True)
    assert edited.labels.dtype == np.uint8
    inside = edited.labels > 0
    probabilities = np.asarray(edited.probabilities)
    assert probabilities.shape == (*edited.labels.shape, edited.k)
    np.testing.assert_allclose(probabilities.sum(axis=-1)[inside], 1.0, atol=1e-5)
    index = (edited.labels.astype(int) - 1).clip(0)[..., None]
    own = np.take_along_axis(probabilities, index, axis=-1)[..., 0]
    np.testing.assert_array_equal(edited.confidence[inside], own[inside])


def _matching(before, after):
    """The cluster of ``after`` made of exactly the pixels of cluster ``c`` of ``before``, for each c."""
    return {
        label: int(np.unique(after.labels[before.labels == label])[0])
        for label in range(1, before.k + 1)
        if np.unique(after.labels[before.labels == label]).size == 1
    }


def test_merge_is_the_union_with_summed_probabilities_and_pooled_spectra(result, small_painting):
    labels_before = result.labels.copy()
    merged = merge(result, [2, 4])

    assert merged.k == result.k - 1
    # An edit's time is its own; the run's stages, and their CPU time, are no longer this map's.
    assert set(merged.timings) == {"edit"} and result.cpu_timings and not merged.cpu_timings
    union = np.isin(result.labels, [2, 4])
    assert np.unique(merged.labels[union]).size == 1
    target = int(merged.labels[union][0])
    np.testing.assert_allclose(
        merged.probabilities[..., target - 1], result.probabilities[..., 1] + result.probabilities[..., 3],
        atol=1e-6,
    )
    mean, std = _cube_moments(small_painting.cube, merged.labels)
    np.testing.assert_allclose(merged.mean_spectra, mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(merged.std_spectra, std, rtol=1e-5, atol=1e-7)
    _check_conventions(merged)
    # The old result is untouched.
    assert np.array_equal(result.labels, labels_before) and result.k == 4 and result.edits == ()


@pytest.mark.parametrize("method", ["embedding", "likelihood"])
def test_merge_then_split_gives_back_k_clusters_with_the_cube_means(result, small_painting, method):
    merged = merge(result, [1, 3])
    union = int(merged.labels[result.labels == 1][0])
    again = split(merged, union, 2, small_painting.cube, method)

    assert again.k == result.k
    # The split re-clustered only the merged pixels: the others keep their clusters whole.
    outside = ~np.isin(result.labels, [1, 3])
    assert np.array_equal(again.labels > 0, result.labels > 0)
    assert set(_matching(result, again)) >= {2, 4}
    assert set(np.unique(again.labels[outside])).isdisjoint(np.unique(again.labels[~outside]))
    mean, std = _cube_moments(small_painting.cube, again.labels)
    np.testing.assert_allclose(again.mean_spectra, mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(again.std_spectra, std, rtol=1e-5, atol=1e-7)
    _check_conventions(again)
    # The split cluster's probability is shared among its parts.
    parts = np.unique(again.labels[~outside])
    np.testing.assert_allclose(
        np.asarray(again.probabilities)[..., parts - 1].sum(axis=-1),
        merged.probabilities[..., union - 1], atol=1e-5,
    )
    assert [edit.action for edit in again.edits] == ["merge", "split"]


def test_a_split_of_a_true_class_finds_its_pieces(result, small_painting):
    # Cluster 1 split in the embedding into 3: three clusters more, all within cluster 1's pixels.
    parts = split(result, 1, 3, small_painting.cube, "embedding")
    assert parts.k == result.k + 2
    assert set(parts.timings) == {"edit"} and not parts.cpu_timings
    assert np.array_equal(parts.labels > 0, result.labels > 0)
    pieces = np.unique(parts.labels[result.labels == 1])
    assert pieces.size == 3
    assert not np.isin(parts.labels[result.labels != 1], pieces).any()


def test_assign_gives_a_region_to_a_cluster_with_certainty(result, small_painting):
    region = np.zeros(result.labels.shape, dtype=bool)
    region[5:20, 10:30] = True
    region &= result.labels != 2
    target_pixels = result.labels == 2
    edited = assign(result, region, 2, small_painting.cube)

    new_label = int(np.unique(edited.labels[target_pixels])[0])
    assert np.all(edited.labels[region] == new_label)
    assert np.all(edited.confidence[region] == 1.0)
    mean, std = _cube_moments(small_painting.cube, edited.labels)
    np.testing.assert_allclose(edited.mean_spectra, mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(edited.std_spectra, std, rtol=1e-5, atol=1e-7)
    _check_conventions(edited)
    assert edited.edits[-1].description == f"assigned {int(region.sum())} pixels of a region to cluster 2"


def test_assign_makes_a_new_cluster_and_drops_one_it_empties(result, small_painting):
    region = result.labels == 3
    emptied = assign(result, region, 1, small_painting.cube)
    assert emptied.k == result.k - 1
    assert np.array_equal(emptied.labels == 1, np.isin(result.labels, [1, 3]))
    _check_conventions(emptied)

    corner = np.zeros(result.labels.shape, dtype=bool)
    corner[:6, :6] = True
    added = assign(result, corner, result.k + 1, small_painting.cube)
    assert added.k == result.k + 1
    assert np.unique(added.labels[corner]).size == 1
    assert added.cluster_sizes[int(added.labels[0, 0]) - 1] == 36
    _check_conventions(added)


def test_renumbering_follows_size_after_an_edit(result, small_painting):
    # Merging the two smallest clusters makes a cluster larger than the largest one's rivals.
    smallest = [result.k - 1, result.k]
    merged = merge(result, smallest)
    union_size = sum(result.cluster_sizes[c - 1] for c in smallest)
    assert union_size in merged.cluster_sizes
    assert merged.cluster_sizes == sorted([*result.cluster_sizes[: result.k - 2], union_size], reverse=True)


def test_bad_edits_are_refused_with_a_reason(result, small_painting):
    cube = small_painting.cube
    with pytest.raises(InputError, match="at least two"):
        merge(result, [2, 2])
    with pytest.raises(InputError, match="no cluster 9"):
        merge(result, [1, 9])
    with pytest.raises(InputError, match="split into 2 to"):
        split(result, 1, 1, cube)
    with pytest.raises(InputError, match="unknown split method"):
        split(result, 1, 2, cube, "random")
    with pytest.raises(InputError, match="covers no segmented pixel"):
        assign(result, np.zeros(result.labels.shape, dtype=bool), 1, cube)
    with pytest.raises(InputError, match="or 5 for a new one"):
        assign(result, np.ones(result.labels.shape, dtype=bool), 6, cube)


def test_the_report_lists_the_edits(result, small_painting):
    edited = assign(merge(result, [1, 2]), np.eye(48, dtype=bool), 1, small_painting.cube)
    report = json.loads(json.dumps(edited.report()))
    assert [edit["action"] for edit in report["edits"]] == ["merge", "assign"]
    assert report["edits"][0] == {
        "action": "merge", "description": "merged clusters 1 and 2", "k_before": 4, "k_after": 3
    }
    assert report["k"] == 3 and report["cluster_sizes"] == edited.cluster_sizes
    assert "then by hand, merged clusters 1 and 2" in report["k_reason"]
    assert report["model_repeats_edits"] is False
    assert segment_report_has_no_edits(result)


def segment_report_has_no_edits(result):
    report = result.report()
    return report["edits"] == [] and report["model_repeats_edits"] is True


def test_a_merged_model_gives_the_merged_probabilities_on_a_cube(result, small_painting, tmp_path):
    merged = merge(result, [2, 3])
    assert not merged.model.uncarried_edit and merged.model.k == 3
    again = segment(small_painting.cube, CONFIG.with_changes(k=None), model=merged.model)
    assert again.k == 3
    np.testing.assert_allclose(again.probabilities, merged.probabilities, atol=1e-5)
    # Pixels go to their most probable merged class: the union, but for a few undecided pixels.
    assert (again.labels == merged.labels).mean() > 0.99
    assert save_model(tmp_path / "merged", merged.model).is_file()


def test_a_model_that_cannot_repeat_an_edit_is_neither_saved_nor_applied(result, small_painting, tmp_path):
    parts = split(result, 1, 2, small_painting.cube)
    assert parts.model.uncarried_edit == parts.edits[-1].description
    with pytest.raises(InputError, match="cannot repeat"):
        save_model(tmp_path / "split", parts.model)
    with pytest.raises(InputError, match="cannot repeat"):
        segment(small_painting.cube, CONFIG, model=parts.model)
    assert not (tmp_path / "split.pt").exists()
    # A later merge keeps the mark: the split is still in the map.
    assert merge(parts, [1, 2]).model.uncarried_edit == parts.model.uncarried_edit


def test_a_lazy_cube_is_edited_with_its_maps_on_disk(small_painting, tmp_path, monkeypatch):
    monkeypatch.setenv(MAPS_DIR_ENV, str(tmp_path / "maps"))
    (tmp_path / "maps").mkdir()
    path = tmp_path / "painting.npy"
    write_cube(path, small_painting.cube)
    eager_cube, lazy_cube = read_cube(path, lazy=False), read_cube(path, lazy=True)
    eager, lazy = segment(eager_cube, CONFIG), segment(lazy_cube, CONFIG)

    for edit in (
        lambda result, cube: merge(result, [1, 2]),
        lambda result, cube: split(result, 1, 2, cube, "likelihood"),
        lambda result, cube: assign(result, np.eye(48, dtype=bool), 2, cube),
    ):
        on_disk, in_memory = edit(lazy, lazy_cube), edit(eager, eager_cube)
        assert isinstance(on_disk.probabilities, da.Array)
        assert np.array_equal(on_disk.labels, in_memory.labels)
        np.testing.assert_allclose(np.asarray(on_disk.probabilities), in_memory.probabilities, atol=1e-6)
        np.testing.assert_allclose(on_disk.mean_spectra, in_memory.mean_spectra, rtol=1e-9)
