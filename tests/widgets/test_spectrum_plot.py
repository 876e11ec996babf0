"""The spectrum plot dock widget: cluster, pixel and region spectra, exports."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backend_bases import MouseButton, MouseEvent
from napari.utils._test_utils import read_only_mouse_event
from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

from conftest import RUN_TIMEOUT_MS, region_mean
from napari_deepcube._layer_records import LabelsRecord
from napari_deepcube._reader import labels_layer_data
from napari_deepcube._widgets._layers import spectral_axis
from napari_deepcube._widgets._results import CLUSTERS_NAME


def test_selected_label_plots_that_clusters_mean_spectrum(session):
    session.run()
    clusters = session.viewer.layers[CLUSTERS_NAME]
    segmentation = session.segment.segmentation

    for label in (3, 1):
        clusters.selected_label = label
        line = session.plot.lines[f"cluster {label}"]
        assert np.array_equal(line.get_ydata(), segmentation.mean_spectra[label - 1])
        # Coloured like the label in the viewer.
        np.testing.assert_allclose(line.get_color()[:3], clusters.colormap.map(label)[:3])
        assert session.plot.curves[f"cluster {label}"].std is not None

    session.plot.all_clusters.setChecked(True)
    assert sorted(session.plot.lines) == [f"cluster {i}" for i in range(1, segmentation.k + 1)]
    session.plot.log_y.setChecked(True)
    assert session.plot.plot.figure.axes[0].get_yscale() == "log"
    assert session.plot.plot.figure.axes[0].get_xlabel() == "Energy (keV)"


def test_a_drawn_rectangle_plots_its_mean_spectrum(session, painting, qtbot):
    regions = session.plot.new_regions_layer()
    # Corners between pixel centres: rows 5..20 and columns 10..30 lie inside.
    regions.add_rectangles(np.array([[4.5, 9.5], [20.5, 30.5]]))
    qtbot.waitUntil(lambda: "R1" in session.plot.lines, timeout=RUN_TIMEOUT_MS)

    expected = region_mean(painting.cube.data, 5, 10, 20, 30)
    np.testing.assert_allclose(session.plot.lines["R1"].get_ydata(), expected, rtol=1e-6)
    np.testing.assert_allclose(session.plot.lines["R1"].get_color(), regions.edge_color[0])

    # A second region gets its own name and colour; moving the first updates its curve.
    regions.add_rectangles(np.array([[30.5, 30.5], [40.5, 45.5]]))
    qtbot.waitUntil(lambda: "R2" in session.plot.lines, timeout=RUN_TIMEOUT_MS)
    assert not np.allclose(regions.edge_color[0], regions.edge_color[1])
    regions.data = [np.array([[0.5, 0.5], [3.5, 3.5]]), regions.data[1]]
    qtbot.waitUntil(
        lambda: np.allclose(
            session.plot.lines["R1"].get_ydata(), region_mean(painting.cube.data, 1, 1, 3, 3),
            rtol=1e-6,
        ),
        timeout=RUN_TIMEOUT_MS,
    )


def test_a_painted_labels_layer_gives_regions(session, painting, qtbot):
    painted = np.zeros((48, 48), dtype=np.uint8)
    painted[2:6, 2:9] = 1
    painted[30:40, 10:12] = 2
    layer = session.viewer.add_labels(painted, name="regions")
    session.plot.regions_combo.set_layer(layer)
    qtbot.waitUntil(lambda: "regions 2" in session.plot.lines, timeout=RUN_TIMEOUT_MS)

    np.testing.assert_allclose(
        session.plot.lines["regions 1"].get_ydata(), region_mean(painting.cube.data, 2, 2, 5, 8),
        rtol=1e-6,
    )


def test_clicking_a_pixel_plots_its_spectrum_and_selects_its_cluster(session, painting):
    session.run()
    clusters = session.viewer.layers[CLUSTERS_NAME]
    row, col = 12, 30
    position = (0.0, float(row), float(col))

    # What napari's canvas passes to viewer mouse callbacks (napari's own test helper).
    for kind, callbacks in (("mouse_press", mouse_press_callbacks),
                            ("mouse_release", mouse_release_callbacks)):
        callbacks(session.viewer, read_only_mouse_event(kind, button=1, position=position))

    line = session.plot.lines[f"pixel y={row} x={col}"]
    np.testing.assert_array_equal(line.get_ydata(), painting.cube.data[row, col])
    assert clusters.selected_label == clusters.data[row, col]
    assert f"cluster {clusters.data[row, col]}" in session.plot.lines


def test_ground_truth_labels_get_spectra_computed_from_the_cube(session, painting, qtbot):
    data, kwargs, _ = labels_layer_data(
        painting.labels, name="truth",
        record=LabelsRecord(k=len(painting.class_names), class_names=tuple(painting.class_names)),
    )
    truth = session.viewer.add_labels(data, **kwargs)
    assert session.plot.labels_layer is truth
    truth.selected_label = 2
    name = f"2: {painting.class_names[1]}"
    qtbot.waitUntil(lambda: name in session.plot.lines, timeout=RUN_TIMEOUT_MS)

    cube = painting.cube.data.reshape(-1, painting.cube.n_channels)
    expected = cube[painting.labels.ravel() == 2].mean(axis=0)
    np.testing.assert_allclose(session.plot.lines[name].get_ydata(), expected, rtol=1e-6)


def test_element_lines_are_named_on_an_energy_axis(session):
    session.run()
    session.viewer.layers[CLUSTERS_NAME].selected_label = 1
    texts = [t.get_text().strip() for t in session.plot.plot.figure.axes[0].texts]
    assert any(t.endswith(("Kα", "Lα")) for t in texts)


def test_typed_elements_mark_their_lines(session, errors, qtbot):
    """Typing "Sn, pb" marks Pb's L and M lines and Sn's K and L lines on the painting's 0-40 keV axis."""
    session.plot.pick_pixel(5, 5)
    session.plot.elements.setText("Sn, pb")
    session.plot.elements.editingFinished.emit()
    assert session.plot.picked_elements == ("Sn", "Pb")
    axes = session.plot.plot.figure.axes[0]
    texts = {t.get_text().strip() for t in axes.texts}
    assert {"Pb Lα", "Pb Mα", "Sn Kα"} <= texts
    dashed = [line for line in axes.lines if line.get_linestyle() == "--"]
    assert any(abs(line.get_xdata()[0] - 10.551) < 0.005 for line in dashed)  # Pb Lα
    session.plot.elements.setText("Pb, Xq")
    session.plot.elements.editingFinished.emit()
    assert errors and "Xq: not the symbol of an element" in errors[-1]
    assert session.plot.picked_elements == ("Sn", "Pb")  # the last good choice stays


def test_clicking_the_plot_moves_the_slider_to_that_channel(session):
    session.plot.pick_pixel(5, 5)
    canvas = session.plot.plot.canvas
    axes = session.plot.plot.figure.axes[0]
    canvas.draw()
    x_pixel, y_pixel = axes.transData.transform((10.0, axes.get_ylim()[0]))
    MouseEvent("button_press_event", canvas, x_pixel, y_pixel + 5, MouseButton.LEFT)._process()

    values = spectral_axis(session.plot.cube_layer).values
    channel = session.viewer.dims.current_step[0]
    assert abs(values[channel] - 10.0) <= (values[1] - values[0])


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_exports_the_figure_and_the_plotted_data(session, tmp_path, suffix):
    session.plot.pick_pixel(7, 8)
    figure = session.plot.export_figure(tmp_path / f"plot{suffix}")
    assert figure.stat().st_size > 1000

    csv = session.plot.export_csv(tmp_path / "plot.csv")
    header = csv.read_text().splitlines()[0].split(",")
    assert header == ["Energy (keV)", "pixel y=7 x=8"]
    table = np.loadtxt(csv, delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, 1], session.cube_layer.data[:, 7, 8], rtol=1e-6)


def test_labels_of_another_size_than_the_cube_say_so(session):
    session.run()
    crop = session.viewer.add_image(
        session.cube_layer.data[:, :32, :40].copy(), name="crop",
        metadata=session.cube_layer.metadata,
    )
    session.plot.cube_combo.set_layer(crop)
    assert session.plot.labels_layer is session.viewer.layers[CLUSTERS_NAME]

    texts = [t.get_text() for t in session.plot.plot.figure.axes[0].texts]
    assert any("48 × 48" in t and "32 × 40" in t and "do not cover" in t for t in texts)
    assert "do not cover the cube 'crop'" in session.plot.status.text()
