"""Probability maps, uncertain pixels and cluster editing in a real viewer, with a real trained model."""

import csv

import numpy as np
import pytest
import tifffile

from conftest import RUN_TIMEOUT_MS
from napari_deepcube._widgets._probability_layers import UNCERTAIN_NAME, probability_name
from napari_deepcube._widgets._results import CLUSTERS_NAME
from napari_deepcube.core.io.labels import read_labels_tiff


def _wait_idle(session, qtbot):
    assert session.segment.is_busy
    qtbot.waitUntil(lambda: not session.segment.is_busy, timeout=RUN_TIMEOUT_MS)


@pytest.fixture
def trained(session, qtbot):
    """The session after a run of 4 clusters, with every cluster's spectrum plotted."""
    session.run()
    session.plot.all_clusters.setChecked(True)
    session.segment.tools_section.expand(animate=False)
    qtbot.waitUntil(lambda: len(session.plot.curves) == 4, timeout=RUN_TIMEOUT_MS)
    return session


def test_a_probability_layer_is_the_result_s_posteriors_in_its_cluster_s_colour(trained):
    tools, segmentation = trained.segment.cluster_tools, trained.segment.segmentation
    tools.maps_button.click()

    clusters = trained.viewer.layers[CLUSTERS_NAME]
    for index in range(segmentation.k):
        layer = trained.viewer.layers[probability_name(index + 1)]
        assert np.array_equal(np.asarray(layer.data), segmentation.probabilities[..., index])
        top = layer.colormap.colors[-1][:3]
        color = clusters.colormap.map(np.array([index + 1], dtype=clusters.data.dtype))[0]
        assert np.allclose(top, color[:3])
    assert len(tools.probability_layers) == segmentation.k


def test_the_uncertain_pixels_follow_the_threshold(trained):
    tools, segmentation = trained.segment.cluster_tools, trained.segment.segmentation
    tools.threshold.setValue(1.0)
    tools.uncertain_button.click()
    layer = trained.viewer.layers[UNCERTAIN_NAME]
    expected = (segmentation.labels > 0) & (segmentation.confidence < 1.0)
    assert expected.any() and np.array_equal(layer.data > 0, expected)
    # A lower threshold marks fewer pixels: the layer follows the spin box.
    tools.threshold.setValue(0.5)
    fewer = (segmentation.labels > 0) & (segmentation.confidence < 0.5)
    assert fewer.sum() < expected.sum()
    assert np.array_equal(layer.data > 0, fewer)


def test_merge_changes_the_layer_the_plot_and_the_exports_and_undo_brings_them_back(trained, qtbot, tmp_path):
    segment, tools = trained.segment, trained.segment.cluster_tools
    before = segment.segmentation
    clusters = trained.viewer.layers[CLUSTERS_NAME]
    old_curves = {name: curve.values.copy() for name, curve in trained.plot.curves.items()}
    tools.maps_button.click()

    tools.merge_field.setText("2, 3")
    tools.merge_button.click()
    _wait_idle(trained, qtbot)

    after = segment.segmentation
    assert after.k == 3 and after is not before
    union = np.isin(before.labels, [2, 3])
    assert np.unique(clusters.data[union]).size == 1
    assert np.array_equal(clusters.data, after.labels)
    assert "merged clusters 2 and 3" in segment.result_label.text()
    # The plot shows the merged clusters' spectra: the union's is the size-weighted mean.
    qtbot.waitUntil(lambda: len(trained.plot.curves) == 3, timeout=RUN_TIMEOUT_MS)
    merged_label = int(clusters.data[union][0])
    sizes = before.cluster_sizes
    expected = (sizes[1] * before.mean_spectra[1] + sizes[2] * before.mean_spectra[2]) / (sizes[1] + sizes[2])
    np.testing.assert_allclose(trained.plot.curves[f"cluster {merged_label}"].values, expected, rtol=1e-6)
    # The probability maps followed: one layer per cluster left, the merged one the sum.
    assert probability_name(4) not in trained.viewer.layers
    np.testing.assert_allclose(
        trained.viewer.layers[probability_name(merged_label)].data,
        before.probabilities[..., 1] + before.probabilities[..., 2], atol=1e-6,
    )
    # The exports write the merged map, its probabilities and its spectra.
    labels, metadata = read_labels_tiff(segment.export_tiff(tmp_path / "merged.tif"))
    assert np.array_equal(labels, after.labels) and metadata["k"] == 3
    pages = tifffile.imread(tmp_path / "merged_probabilities.tif")
    assert pages.shape == (3, 48, 48)
    assert np.array_equal(pages, np.moveaxis(after.probabilities, -1, 0))
    with open(segment.export_csv(tmp_path / "merged.csv"), newline="") as handle:
        header = next(csv.reader(handle))
    assert header[1:] == [f"cluster {c} {s}" for c in (1, 2, 3) for s in ("mean", "std")]

    assert tools.undo_button.isEnabled() and not tools.redo_button.isEnabled()
    tools.undo_button.click()
    _wait_idle(trained, qtbot)
    assert segment.segmentation is before
    assert np.array_equal(clusters.data, before.labels)
    qtbot.waitUntil(lambda: len(trained.plot.curves) == 4, timeout=RUN_TIMEOUT_MS)
    for name, mean in old_curves.items():
        np.testing.assert_allclose(trained.plot.curves[name].values, mean)
    assert tools.redo_button.isEnabled() and not tools.undo_button.isEnabled()

    tools.redo_button.click()
    _wait_idle(trained, qtbot)
    assert segment.segmentation is after


def test_split_and_assign_run_in_the_worker_and_update_the_map(trained, qtbot):
    segment, tools = trained.segment, trained.segment.cluster_tools
    before = segment.segmentation
    tools.split_cluster.setValue(1)
    tools.split_parts.setValue(2)
    tools.split_method.setCurrentText("under the likelihood")
    tools.split_button.click()
    _wait_idle(trained, qtbot)
    split = segment.segmentation
    assert split.k == 5 and split.edits[-1].action == "split"
    assert np.unique(trained.viewer.layers[CLUSTERS_NAME].data[before.labels == 1]).size == 2

    region = np.zeros((48, 48), dtype=np.uint8)
    region[:8, :8] = 1
    trained.viewer.add_labels(region, name="region")
    tools.region_combo.set_layer(trained.viewer.layers["region"])
    tools.assign_cluster.setValue(6)  # a new cluster
    tools.assign_button.click()
    _wait_idle(trained, qtbot)
    assigned = segment.segmentation
    assert assigned.k == 6
    assert np.unique(trained.viewer.layers[CLUSTERS_NAME].data[:8, :8]).size == 1
    assert assigned.cluster_sizes[int(assigned.labels[0, 0]) - 1] == 64
    # Two edits back: the split's map and then the trained one.
    tools.undo_button.click()
    _wait_idle(trained, qtbot)
    tools.undo_button.click()
    _wait_idle(trained, qtbot)
    assert segment.segmentation is before


def test_a_bad_edit_is_a_notification_and_changes_nothing(trained, qtbot, errors, monkeypatch):
    monkeypatch.setattr("napari_deepcube._widgets._cluster_tools.show_error", errors.append)
    segment, tools = trained.segment, trained.segment.cluster_tools
    before = segment.segmentation
    tools.merge_field.setText("2, two")
    tools.merge_button.click()
    assert errors and "cluster numbers" in errors[-1]
    tools.merge_field.setText("2")
    tools.merge_button.click()
    _wait_idle(trained, qtbot)
    assert "at least two" in errors[-1]
    assert segment.segmentation is before and not tools.undo_button.isEnabled()
