"""Restricting a run from the widgets: a Mask layer, and a spectral range dragged on the spectrum plot."""

from __future__ import annotations

import numpy as np
from matplotlib.backend_bases import MouseButton, MouseEvent

from napari_deepcube._widgets._layer_combo import NONE
from napari_deepcube._widgets._layers import spectral_axis, training_range
from napari_deepcube._widgets._results import CLUSTERS_NAME, PREVIEW_NAME


def _rectangle(shape=(48, 48)):
    mask = np.zeros(shape, dtype=np.uint8)
    mask[6:30, 10:40] = 2
    return mask


def _drag(plot, start, end):
    """Press at ``start``, move to ``end`` and release there (data units), as a mouse does on the plot."""
    canvas = plot.plot.canvas
    canvas.draw()
    axes = plot.plot.figure.axes[0]
    y_value = np.mean(axes.get_ylim())
    (x0, y0), (x1, y1) = (axes.transData.transform((x, y_value)) for x in (start, end))
    MouseEvent("button_press_event", canvas, x0, y0, MouseButton.LEFT)._process()
    MouseEvent("motion_notify_event", canvas, x1, y1, MouseButton.LEFT, buttons={MouseButton.LEFT})._process()
    MouseEvent("button_release_event", canvas, x1, y1, MouseButton.LEFT)._process()


def test_a_labels_mask_layer_restricts_the_run_to_its_pixels(session):
    mask = session.viewer.add_labels(_rectangle(), name="mask")
    session.viewer.add_labels(np.ones((20, 20), np.uint8), name="another image's labels")
    combo = session.segment.mask_combo
    listed = [combo.itemText(i) for i in range(combo.count())]
    assert listed == [NONE, "mask"]  # a Labels layer of another size cannot mask this cube
    combo.set_layer(mask)
    session.run()
    clusters = session.viewer.layers[CLUSTERS_NAME]
    np.testing.assert_array_equal(clusters.data > 0, _rectangle() > 0)
    assert session.segment.segmentation.n_pixels == int((_rectangle() > 0).sum())


def test_a_shapes_mask_layer_is_rasterised_on_the_cubes_image(session):
    shapes = session.viewer.add_shapes(np.array([[[5, 8], [5, 20], [17, 20], [17, 8]]]), name="drawn")
    session.segment.mask_combo.set_layer(shapes)
    expected = np.zeros((48, 48), dtype=bool)
    expected[5:18, 8:21] = True
    np.testing.assert_array_equal(session.segment.mask_pixels(), expected)
    session.segment.mask_combo.set_layer(None)
    assert session.segment.mask_pixels() is None


def test_an_empty_mask_is_a_notification_and_nothing_starts(session, errors):
    blank = session.viewer.add_labels(np.zeros((48, 48), np.uint8), name="blank")
    session.segment.mask_combo.set_layer(blank)
    session.segment.train()
    assert not session.segment.is_busy
    assert errors == ["the mask layer 'blank' has no nonzero pixel; mark the pixels to segment"]
    assert CLUSTERS_NAME not in session.viewer.layers and PREVIEW_NAME not in session.viewer.layers


def test_dragging_on_the_spectrum_plot_sets_the_range_the_run_learns_from(session):
    plot, settings = session.plot, session.segment.settings
    plot.pick_pixel(5, 5)
    _drag(plot, 4.0, 9.0)
    chosen = training_range(session.cube_layer)
    start, end = (float(bound) for bound in chosen.split(":"))
    assert abs(start - 4.0) < 0.05 and abs(end - 9.0) < 0.05
    assert settings.spectral_range.value == chosen and settings.values()["spectral_range"] == chosen
    [patch] = plot.range_patches
    np.testing.assert_allclose([patch.get_x(), patch.get_x() + patch.get_width()], [start, end])

    session.run()
    values = spectral_axis(session.cube_layer).values
    learnt = session.segment.segmentation.model.preprocessor.channels
    np.testing.assert_array_equal(learnt, np.flatnonzero((values >= start) & (values <= end)))
    assert session.segment.segmentation.config.spectral_range == chosen
    assert session.segment.segmentation.mean_spectra.shape[1] == values.size  # shown whole
    assert f"Learns from {chosen} only." in session.segment.model_label.text()

    plot.clear_range_button.click()
    assert training_range(session.cube_layer) == "" and settings.spectral_range.value == ""
    assert plot.range_patches == [] and not plot.clear_range_button.isEnabled()


def test_a_range_typed_in_the_settings_is_shaded_on_the_plot(session):
    session.segment.settings.spectral_range.value = "2:3,20:25.5"
    assert training_range(session.cube_layer) == "2:3,20:25.5"
    spans = [(patch.get_x(), patch.get_x() + patch.get_width()) for patch in session.plot.range_patches]
    np.testing.assert_allclose(spans, [(2.0, 3.0), (20.0, 25.5)])
    assert "runs learn from 2:3,20:25.5 keV" in session.plot.status.text()


def test_a_click_on_the_plot_moves_the_slider_and_leaves_the_range(session):
    session.plot.pick_pixel(5, 5)
    _drag(session.plot, 10.0, 10.0)
    assert training_range(session.cube_layer) == ""
    values = spectral_axis(session.cube_layer).values
    assert abs(values[session.viewer.dims.current_step[0]] - 10.0) <= values[1] - values[0]
