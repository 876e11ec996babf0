"""The segmentation dock widget, driving real training runs in napari thread workers."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from napari.utils import progress
from qtpy.QtCore import Qt

from conftest import QUICK, RUN_TIMEOUT_MS
from napari_deepcube._layer_records import labels_record
from napari_deepcube._widgets._results import CLUSTERS_NAME, PREVIEW_NAME
from napari_deepcube._widgets._segment import SegmentationWidget
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import read_labels_tiff


def test_training_makes_a_clusters_layer_with_k_clusters(session, qtbot):
    switch_interval = sys.getswitchinterval()
    intervals_seen = []
    session.segment.settings.set_values(**{**QUICK, "k": None, "k_min": 2, "k_max": 4})
    session.segment.train()
    session.segment.worker.yielded.connect(lambda _: intervals_seen.append(sys.getswitchinterval()))
    qtbot.waitUntil(lambda: not session.segment.is_busy, timeout=RUN_TIMEOUT_MS)

    segmentation = session.segment.segmentation
    clusters = session.viewer.layers[CLUSTERS_NAME]
    assert 2 <= segmentation.k <= 4
    assert set(np.unique(clusters.data)) - {0} == set(range(1, segmentation.k + 1))
    np.testing.assert_array_equal(clusters.data, segmentation.labels)
    assert "confidence" in session.viewer.layers
    assert PREVIEW_NAME not in session.viewer.layers
    # The criteria curve shows every k tried, the chosen one marked.
    assert session.segment.criteria_plot.ks == [2, 3, 4]
    assert session.segment.criteria_plot.chosen == segmentation.k
    # The reason in plain words; its numbers only when asked for.
    segment = session.segment
    assert not any(word in segment.result_label.text() for word in ("BIC", "penalt", "frontier"))
    assert segment.details_label.isHidden()
    segment.details_button.click()
    assert not segment.details_label.isHidden()
    silhouette = segmentation.criteria["silhouette"][segmentation.k]
    assert segmentation.k_reason.rstrip(".") in segment.details_label.text()
    assert f"silhouette {silhouette:.4g}" in segment.details_label.text()
    # The spectrum plot follows the new clusters layer; colours come from the layer.
    assert session.plot.labels_layer is clusters
    assert session.segment.train_button.isEnabled()
    # The run leaves the process's GIL switch interval alone, during the run too.
    assert intervals_seen and set(intervals_seen) == {switch_interval}


def test_the_kind_of_data_picked_in_the_form_is_what_the_run_models(session):
    session.run(k=3)
    assert session.segment.segmentation.model.preprocessor.kind == "counts"
    # The widget says what "detect" chose.
    assert "data: photon counts (detected)" in session.segment.model_label.text()
    session.run(k=3, kind="reflectance")
    assert session.segment.segmentation.model.preprocessor.kind == "reflectance"
    assert session.segment.segmentation.model.mixture.likelihood == "gaussian"
    assert "data: reflectance (as set)" in session.segment.model_label.text()


def test_cancel_mid_training_leaves_no_layer_and_the_widget_ready(session, qtbot):
    segment = session.segment
    segment.settings.set_values(epochs=500, n_train=1000, k=4)
    epochs_seen = []
    qtbot.mouseClick(segment.train_button, Qt.MouseButton.LeftButton)
    segment.worker.yielded.connect(lambda event: epochs_seen.append(event.epoch))
    qtbot.waitUntil(lambda: any(e is not None for e in epochs_seen), timeout=RUN_TIMEOUT_MS)
    assert PREVIEW_NAME in session.viewer.layers

    qtbot.mouseClick(segment.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not segment.is_busy, timeout=5_000)

    names = [layer.name for layer in session.viewer.layers]
    assert CLUSTERS_NAME not in names
    assert PREVIEW_NAME not in names
    assert names == ["painting"]
    assert segment.segmentation is None
    assert segment.train_button.isEnabled() and not segment.cancel_button.isEnabled()
    assert max(e.epoch for e in epochs_seen if e is not None) < 500


def test_a_bad_input_is_a_notification_not_a_traceback(session, errors):
    # Three valid pixels cannot make four clusters.
    sparse = np.zeros((16, 10, 10), dtype=np.float32)
    sparse[:, 0, :3] = 1.0
    session.segment.cube_combo.set_layer(session.viewer.add_image(sparse, name="sparse"))
    session.run(k=4)

    assert len(errors) == 1 and "k=4 is larger than the 3 valid pixels" in errors[0]
    assert CLUSTERS_NAME not in session.viewer.layers
    assert session.segment.train_button.isEnabled()


def test_picking_another_k_reclusters_without_training(session, qtbot):
    session.run(k=None, k_min=2, k_max=4)
    segment = session.segment
    first = segment.segmentation
    other = next(k for k in (2, 3, 4) if k != first.k)
    history = first.history

    plot = segment.criteria_plot
    qtbot.waitUntil(lambda: not plot.drawing, timeout=RUN_TIMEOUT_MS)
    point = plot.point_of(other, plot.criteria["silhouette"][other])
    qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=point)
    assert segment.is_busy
    qtbot.waitUntil(lambda: not segment.is_busy, timeout=RUN_TIMEOUT_MS)

    clusters = session.viewer.layers[CLUSTERS_NAME]
    assert segment.segmentation.k == other
    assert segment.segmentation.history is history  # same trained model
    assert set(np.unique(clusters.data)) - {0} == set(range(1, other + 1))
    assert labels_record(clusters.metadata).k == other
    assert segment.criteria_plot.chosen == other
    assert [layer.name for layer in session.viewer.layers].count(CLUSTERS_NAME) == 1
    assert segment.progress_bar.value() == segment.progress_bar.maximum()
    assert "trained on" in segment.model_label.text()


def test_saved_model_applies_to_another_cube_without_training(session, qtbot, tmp_path, painting):
    session.run()
    segment = session.segment
    path = tmp_path / "model.pt"
    segment.save_model(path)
    qtbot.waitUntil(path.exists, timeout=RUN_TIMEOUT_MS)
    segment.model = None

    segment.load_model(path)
    qtbot.waitUntil(lambda: segment.model is not None, timeout=RUN_TIMEOUT_MS)
    assert segment.apply_button.isEnabled()
    # Another cube: the same painting, flipped, opened as a second layer.
    second = session.viewer.add_image(
        session.cube_layer.data[:, ::-1, :].copy(), name="flipped",
        metadata=session.cube_layer.metadata,
    )
    segment.cube_combo.set_layer(second)
    session.run(segment.apply_model)

    result = segment.segmentation
    assert result.history == []  # applied, not trained
    assert result.k == 4
    assert result.cube_name == "flipped"
    assert "applied, without training, to flipped" in segment.model_label.text()
    clusters = [layer for layer in session.viewer.layers if layer.name.startswith(CLUSTERS_NAME)]
    assert len(clusters) == 2
    np.testing.assert_array_equal(clusters[-1].data, result.labels)
    assert "Beware" not in segment.stage_label.text()  # the same paints: it fits

    # A cube of one spectrum everywhere: the model's other classes find no pixel, and it says so.
    one_spectrum = np.broadcast_to(session.cube_layer.data[:, :1, :1], session.cube_layer.data.shape)
    uniform = session.viewer.add_image(
        one_spectrum.copy(), name="uniform", metadata=session.cube_layer.metadata
    )
    segment.cube_combo.set_layer(uniform)
    applied = segment.model
    session.run(segment.apply_model)

    warnings = segment.segmentation.fit_warnings(applied)
    assert any("no pixel of this cube" in warning for warning in warnings)
    assert all(warning in segment.stage_label.text() for warning in warnings)


def test_export_tiff_reads_back_identical_and_csv_has_the_spectral_axis(session, tmp_path):
    session.run()
    clusters = session.viewer.layers[CLUSTERS_NAME]
    segmentation = session.segment.segmentation

    tiff = session.segment.export_tiff(tmp_path / "clusters.tif")
    labels, metadata = read_labels_tiff(tiff)
    assert labels.dtype == np.uint8
    assert np.array_equal(labels, clusters.data)
    assert metadata["k"] == segmentation.k
    assert metadata["spectral_unit"] == "keV"
    colors = clusters.colormap.map(np.arange(segmentation.k + 1, dtype=clusters.data.dtype))
    np.testing.assert_array_equal(metadata["colors"][1:], np.rint(colors[1:, :3] * 255))

    csv = session.segment.export_csv(tmp_path / "spectra.csv")
    header, *rows = csv.read_text().splitlines()
    assert header.split(",")[:3] == ["Energy (keV)", "cluster 1 mean", "cluster 1 std"]
    table = np.loadtxt(csv, delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, 0], segmentation.axis.values, rtol=1e-7)
    np.testing.assert_allclose(table[:, 1], segmentation.mean_spectra[0], rtol=1e-7)
    assert len(rows) == segmentation.mean_spectra.shape[1]


def test_file_save_layer_uses_the_plugin_writer(session, tmp_path):
    session.run()
    clusters = session.viewer.layers[CLUSTERS_NAME]
    path = tmp_path / "saved.tif"

    session.viewer.layers.selection = {clusters}
    written = session.viewer.layers.save(str(path), selected=True, plugin="napari-deepcube")

    assert written == [str(path)]
    labels, metadata = read_labels_tiff(path)
    assert np.array_equal(labels, clusters.data)
    assert metadata["name"] == CLUSTERS_NAME


def _activities() -> list[str]:
    """What napari's activity dock lists (its progress bars, whose animation runs while any is open)."""
    return [str(bar.desc) for bar in progress._all_instances]


def test_closing_the_dock_mid_run_stops_it_and_leaves_nothing(session, qtbot):
    segment = session.segment
    segment.settings.set_values(epochs=500, n_train=1000, k=4)
    segment.train()
    worker = segment.worker
    epochs = []
    worker.yielded.connect(lambda event: epochs.append(event.epoch))
    qtbot.waitUntil(lambda: any(e is not None for e in epochs), timeout=RUN_TIMEOUT_MS)
    assert _activities() == []  # the run's progress is in the dock, not napari's activity bar

    # What the dock's close button does.
    segment.parent().destroyOnClose()

    assert [layer.name for layer in session.viewer.layers] == ["painting"]
    assert _activities() == []
    qtbot.waitUntil(lambda: not worker.is_running, timeout=RUN_TIMEOUT_MS)
    qtbot.wait(200)  # the worker's last events arrive, and are dropped
    assert [layer.name for layer in session.viewer.layers] == ["painting"]
    assert max(e.epoch for e in epochs if e is not None) < 500


def test_a_widget_opened_again_finds_the_result_in_its_layers(session, qtbot):
    session.run(k=None, k_min=2, k_max=4)
    first = session.segment.segmentation
    session.segment.parent().destroyOnClose()

    again = SegmentationWidget(session.viewer)
    session.viewer.window.add_dock_widget(again, name="Deep spectral segmentation")

    assert again.segmentation is first and again.model is first.model
    assert again.export_tiff_button.isEnabled() and again.recluster_button.isEnabled()
    assert again.k_spin.value() == first.k and "trained on" in again.model_label.text()
    other = next(k for k in (2, 3, 4) if k != first.k)
    again.pick_k(other)
    assert again.is_busy
    qtbot.waitUntil(lambda: not again.is_busy, timeout=RUN_TIMEOUT_MS)
    assert again.segmentation.k == other and again.segmentation.history is first.history
    clusters = [layer for layer in session.viewer.layers if layer.name.startswith(CLUSTERS_NAME)]
    assert len(clusters) == 1
    assert set(np.unique(clusters[0].data)) - {0} == set(range(1, other + 1))


def test_the_buttons_act_on_the_chosen_cube_only(session, tmp_path):
    segment = session.segment
    session.run(k=4)
    first = segment.segmentation
    # A second, smaller cube: a crop of the painting.
    second = session.viewer.add_image(
        session.cube_layer.data[:, :32, :40].copy(), name="crop",
        metadata=session.cube_layer.metadata,
    )

    segment.cube_combo.set_layer(second)
    assert segment.segmentation is None
    for button in (segment.export_tiff_button, segment.export_csv_button, segment.recluster_button):
        assert not button.isEnabled()
    with pytest.raises(InputError, match="chosen cube"):
        segment.export_tiff(tmp_path / "none.tif")
    assert not (tmp_path / "none.tif").exists()

    session.run(k=3)
    crop_labels, _ = read_labels_tiff(segment.export_tiff(tmp_path / "crop.tif"))
    assert crop_labels.shape == (32, 40) and segment.segmentation.k == 3

    segment.cube_combo.set_layer(session.cube_layer)
    assert segment.segmentation is first and segment.k_spin.value() == 4
    assert segment.export_tiff_button.isEnabled()
    labels, metadata = read_labels_tiff(segment.export_tiff(tmp_path / "painting.tif"))
    np.testing.assert_array_equal(labels, first.labels)
    assert metadata["k"] == 4
