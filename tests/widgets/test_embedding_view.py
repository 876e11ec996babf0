"""The embedding dock: the latents on a 2-D plot, linked to the viewer both ways."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from matplotlib.backend_bases import MouseButton, MouseEvent
from matplotlib.path import Path
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import (
    mouse_move_callbacks,
    mouse_press_callbacks,
    mouse_release_callbacks,
)
from scipy.spatial import ConvexHull

from conftest import RUN_TIMEOUT_MS
from napari_deepcube._layer_records import SegmentationRun, labels_record, with_record
from napari_deepcube._widgets._embedding_view import SELECTION_NAME, EmbeddingWidget
from napari_deepcube._widgets._layers import label_colors
from napari_deepcube._widgets._results import CLUSTERS_NAME
from napari_deepcube.core import embedding
from napari_deepcube.core.embedding import density_bins, density_image


def open_embedding(session, qtbot) -> EmbeddingWidget:
    """The embedding dock in the session's viewer, once it has drawn its plot."""
    widget = EmbeddingWidget(session.viewer)
    session.viewer.window.add_dock_widget(widget, name="Latent embedding")
    qtbot.waitUntil(lambda: widget.image is not None, timeout=RUN_TIMEOUT_MS)
    return widget


def drag(widget: EmbeddingWidget, vertices: np.ndarray) -> None:
    """Press at the first vertex, move through the others, release at the last (a mouse drag)."""
    canvas = widget.plot.canvas
    canvas.draw()
    axes = widget.plot.figure.axes[0]
    pixels = axes.transData.transform(vertices)
    pixels = np.vstack([pixels, pixels[-1:]])  # a real drag moves to where it is released
    kinds = ["button_press_event"] + ["motion_notify_event"] * (len(pixels) - 2) + ["button_release_event"]
    for kind, (x, y) in zip(kinds, pixels, strict=True):
        held = {"buttons": {MouseButton.LEFT}} if kind == "motion_notify_event" else {}
        MouseEvent(kind, canvas, x, y, MouseButton.LEFT, **held)._process()


def separable_cluster(projection, labels: np.ndarray) -> tuple[int, np.ndarray]:
    """A cluster whose convex hull (grown by 1 %) holds no other cluster's point, and that hull."""
    clusters = projection.values_at_points(labels)
    for label in np.unique(clusters[clusters > 0]):
        mine = projection.points[clusters == label]
        hull = mine[ConvexHull(mine).vertices].astype(np.float64)
        hull = hull.mean(axis=0) + (hull - hull.mean(axis=0)) * 1.01
        others = projection.points[clusters != label]
        if not Path(hull).contains_points(others).any():
            return int(label), hull
    raise AssertionError("no cluster is separable in this projection")


def test_it_follows_a_new_result_and_colours_points_like_the_clusters(session, qtbot):
    widget = EmbeddingWidget(session.viewer)
    session.viewer.window.add_dock_widget(widget, name="Latent embedding")
    assert widget.image is None  # nothing segmented yet: a hint

    session.run()
    clusters = session.viewer.layers[CLUSTERS_NAME]
    qtbot.waitUntil(lambda: widget.image is not None, timeout=RUN_TIMEOUT_MS)
    assert widget.clusters_layer is clusters
    projection = widget.projection
    np.testing.assert_array_equal(
        projection.pixels_where(np.ones(projection.n_points, dtype=bool)), clusters.data > 0
    )
    expected = density_image(
        projection.points, projection.values_at_points(clusters.data),
        label_colors(clusters, np.arange(clusters.data.max() + 1)), projection.extent(),
        density_bins(projection.n_points),
    )
    np.testing.assert_array_equal(widget.image.get_array(), expected)
    assert widget.plot.figure.axes[0].get_xlabel() == "principal axis 1"

    # A newer result (here the same one, in a second layer) is followed.
    newer = session.viewer.add_labels(clusters.data.copy(), name="clusters 2", metadata=clusters.metadata)
    assert widget.clusters_layer is newer


def test_a_lasso_around_one_clusters_points_selects_exactly_its_pixels(session, qtbot):
    # With this seed two of the four clusters lie apart from the others on the principal axes
    # (the mixture assigns pixels under its likelihood, not by latent distance, so most
    # clusters' hulls hold a few points of a neighbour).
    session.run(seed=2)
    widget = open_embedding(session, qtbot)
    clusters = session.viewer.layers[CLUSTERS_NAME]
    label, hull = separable_cluster(widget.projection, clusters.data)

    drag(widget, np.vstack([hull, hull[:1]]))

    selection = session.viewer.layers[SELECTION_NAME]
    np.testing.assert_array_equal(selection.data, (clusters.data == label).astype(np.uint8))
    np.testing.assert_array_equal(selection.scale, clusters.scale)
    assert f"{int((clusters.data == label).sum())} selected" in widget.status.text()


def test_a_rectangle_selection_is_a_region_of_the_spectrum_plot(session, qtbot, painting):
    session.run()
    widget = open_embedding(session, qtbot)
    widget.tool_combo.setCurrentText("rectangle")
    x, y = widget.projection.points[:, 0], widget.projection.points[:, 1]
    corners = np.array([[np.percentile(x, 20), np.percentile(y, 10)], [np.percentile(x, 60), y.max()]])

    drag(widget, np.array([corners[0], corners.mean(axis=0), corners[1]]))

    selection = session.viewer.layers[SELECTION_NAME]
    np.testing.assert_array_equal(
        selection.data, widget.projection.in_rectangle(tuple(corners[:, 0]), tuple(corners[:, 1]))
    )
    assert 0 < selection.data.sum() < selection.data.size
    session.plot.regions_combo.set_layer(selection)
    name = f"{SELECTION_NAME} 1"
    qtbot.waitUntil(lambda: name in session.plot.lines, timeout=RUN_TIMEOUT_MS)
    expected = painting.cube.data[selection.data == 1].mean(axis=0)
    np.testing.assert_allclose(session.plot.lines[name].get_ydata(), expected, rtol=1e-6)

    widget.clear_selection()
    assert not selection.data.any()


def test_clicking_or_hovering_a_pixel_marks_its_point(session, qtbot):
    session.run()
    widget = open_embedding(session, qtbot)
    marker = widget._marker

    row, col = 12, 30
    position = (0.0, float(row), float(col))
    for kind, callbacks in (("mouse_press", mouse_press_callbacks),
                            ("mouse_release", mouse_release_callbacks)):
        callbacks(session.viewer, read_only_mouse_event(kind, button=1, position=position))
    assert widget.marked_pixel == (row, col)
    np.testing.assert_allclose(
        np.ravel(marker.get_data()), widget.projection.point_of(row, col), rtol=1e-6
    )

    mouse_move_callbacks(session.viewer, read_only_mouse_event("mouse_move", position=(0.0, 40.0, 3.0)))
    np.testing.assert_allclose(np.ravel(marker.get_data()), widget.projection.point_of(40, 3), rtol=1e-6)


def test_edited_labels_recolour_the_points_without_projecting_again(session, qtbot):
    session.run()
    widget = open_embedding(session, qtbot)
    clusters = session.viewer.layers[CLUSTERS_NAME]
    projection = widget.projection
    before = widget.image.get_array().copy()

    # What a cluster editor does: a new segmentation (same latents) in the record, then new labels.
    record = labels_record(clusters.metadata)
    merged = np.where(record.run.segmentation.labels == 2, 1, record.run.segmentation.labels)
    edited = replace(record.run.segmentation, labels=merged.astype(np.uint8))
    clusters.metadata = with_record(
        clusters.metadata, replace(record, run=SegmentationRun(edited, record.run.cube))
    )
    clusters.data = edited.labels
    colors = label_colors(clusters, np.arange(int(merged.max()) + 1))
    expected = density_image(
        projection.points, projection.values_at_points(merged), colors, projection.extent(),
        density_bins(projection.n_points),
    )
    qtbot.waitUntil(lambda: np.array_equal(widget.image.get_array(), expected), timeout=RUN_TIMEOUT_MS)
    assert widget.projection is projection
    assert not np.array_equal(before, expected)

    # Painting one pixel recolours too, and so do new labels alone.
    clusters.paint((20, 20), 3)
    qtbot.waitUntil(lambda: not np.array_equal(widget.image.get_array(), expected), timeout=RUN_TIMEOUT_MS)
    clusters.data = record.run.segmentation.labels
    qtbot.waitUntil(lambda: np.array_equal(widget.image.get_array(), before), timeout=RUN_TIMEOUT_MS)

    # A new run (new latents) is projected again.
    session.run()
    qtbot.waitUntil(lambda: widget.projection is not projection, timeout=RUN_TIMEOUT_MS)


def test_tsne_on_request_embeds_a_sample_in_the_background(session, qtbot, monkeypatch):
    monkeypatch.setattr(embedding, "NONLINEAR_SAMPLE", 300)
    session.run()
    widget = open_embedding(session, qtbot)

    widget.method_combo.setCurrentIndex(widget.method_combo.findData("tsne"))
    qtbot.waitUntil(
        lambda: widget.projection is not None and widget.projection.method == "tsne",
        timeout=RUN_TIMEOUT_MS,
    )
    assert widget.projection.embedded == 300
    assert widget.plot.figure.axes[0].get_xlabel() == "t-SNE 1"
    assert "t-SNE of 300 sampled pixels" in widget.status.text()


@pytest.mark.parametrize("screen", [(1366, 768)])
def test_the_dock_fits_a_laptop_screen(session, qtbot, screen):
    session.run()
    widget = open_embedding(session, qtbot)
    window = session.viewer.window._qt_window
    minimum = window.minimumSizeHint().expandedTo(window.minimumSize())
    assert minimum.width() <= screen[0] and minimum.height() <= screen[1]
    window.resize(*screen)
    qtbot.wait(50)
    assert widget.plot.canvas.height() >= 200


def test_a_lasso_selection_assigned_to_a_new_cluster_recolours_the_plot(session, qtbot):
    """The selection is a region for the cluster editor: assigned, it becomes cluster k + 1 on the plot."""
    session.run(seed=2)
    widget = open_embedding(session, qtbot)
    clusters = session.viewer.layers[CLUSTERS_NAME]
    label, hull = separable_cluster(widget.projection, clusters.data)
    # The half of the cluster's lasso left of its centre: part of one cluster.
    centre = hull.mean(axis=0)
    half = np.vstack([np.minimum(hull, [centre[0], np.inf]), [centre[0], hull[0, 1]]])
    drag(widget, np.vstack([half, half[:1]]))
    selection = session.viewer.layers[SELECTION_NAME]
    assert 0 < selection.data.sum() < (clusters.data == label).sum()

    session.segment.tools_section.expand(animate=False)
    tools = session.segment.cluster_tools
    tools.region_combo.set_layer(selection)
    k = session.segment.segmentation.k
    tools.assign_cluster.setValue(k + 1)  # the highest number offered: a new cluster
    tools.assign_button.click()
    qtbot.waitUntil(lambda: not session.segment.is_busy, timeout=RUN_TIMEOUT_MS)

    edited = session.segment.segmentation
    assert edited.k == k + 1
    assert np.unique(clusters.data[selection.data == 1]).size == 1
    projection = widget.projection
    expected = density_image(
        projection.points, projection.values_at_points(clusters.data),
        label_colors(clusters, np.arange(k + 2)), projection.extent(), density_bins(projection.n_points),
    )
    qtbot.waitUntil(lambda: np.array_equal(widget.image.get_array(), expected), timeout=RUN_TIMEOUT_MS)
    assert [text.get_text() for text in widget._numbers] == [str(i) for i in range(1, k + 2)]
