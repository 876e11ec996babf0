"""The criteria plot: drawn in a worker, shown as pixels, clickable by k."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from qtpy.QtCore import QPoint, Qt

from napari_deepcube._widgets import _criteria_plot
from napari_deepcube._widgets._criteria_plot import CriteriaPlot
from napari_deepcube._widgets._mpl import theme_colors

CRITERIA = {
    "silhouette": {2: 0.41, 3: 0.55, 4: 0.62, 5: 0.48},
    "bic": {2: 9.1e5, 3: 8.2e5, 4: 7.7e5, 5: 7.9e5},
}
HELD_OUT = {2: -4.1e5, 3: -3.6e5, 4: -3.5e5, 5: -3.52e5}


@pytest.fixture
def plot(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    plot = CriteriaPlot(viewer)
    viewer.window.add_dock_widget(plot)
    qtbot.waitUntil(lambda: not plot.drawing)
    return plot


def _shown_rgb(plot: CriteriaPlot) -> np.ndarray:
    image = plot.grab().toImage()
    pixel = image.pixelColor(2, 2)  # a corner: the figure's background
    return np.array([pixel.redF(), pixel.greenF(), pixel.blueF()])


def test_drawing_happens_off_the_gui_thread(plot, qtbot, monkeypatch):
    threads = []
    draw = _criteria_plot.draw_criteria

    def spy(*args):
        threads.append(threading.current_thread())
        return draw(*args)

    monkeypatch.setattr(_criteria_plot, "draw_criteria", spy)
    plot.show_criteria(CRITERIA, 4)
    assert plot.drawing  # returns before the figure is drawn
    qtbot.waitUntil(lambda: not plot.drawing)
    assert threads and threading.main_thread() not in threads
    assert plot.ks == [2, 3, 4, 5]


def test_the_figure_takes_the_theme_colours(plot, qtbot):
    plot.show_criteria(CRITERIA, 4)
    qtbot.waitUntil(lambda: not plot.drawing)
    for theme in ("light", "dark"):
        plot.viewer.theme = theme
        qtbot.waitUntil(lambda: not plot.drawing)
        background = to_rgb(theme_colors(plot.viewer)["background"])
        np.testing.assert_allclose(_shown_rgb(plot), background, atol=2 / 255)


def test_clicking_a_k_picks_it(plot, qtbot):
    plot.show_criteria(CRITERIA, 4)
    qtbot.waitUntil(lambda: not plot.drawing)
    for k in (2, 5):
        with qtbot.waitSignal(plot.k_picked, timeout=1000) as picked:
            point = plot.point_of(k, CRITERIA["silhouette"][k])
            qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=point)
        assert picked.args == [k]
    # The chosen k is already shown: clicking it asks for nothing.
    with qtbot.assertNotEmitted(plot.k_picked):
        point = plot.point_of(4, CRITERIA["silhouette"][4])
        qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=point)


def test_a_fixed_k_shows_a_note_and_ignores_clicks(plot, qtbot):
    plot.show_criteria({}, 6)
    qtbot.waitUntil(lambda: not plot.drawing)
    assert plot.ks == []
    with pytest.raises(ValueError, match="no data coordinates"):
        plot.point_of(6, 0.0)
    with qtbot.assertNotEmitted(plot.k_picked):
        qtbot.mouseClick(plot, Qt.MouseButton.LeftButton, pos=QPoint(plot.width() // 2, 80))


@pytest.mark.parametrize(
    ("criteria", "label", "curve"),
    [
        (CRITERIA, "BIC", CRITERIA["bic"]),
        ({**CRITERIA, "held_out_log_likelihood": HELD_OUT}, "held-out log-likelihood", HELD_OUT),
    ],
)
def test_the_right_axis_shows_the_criterion_that_chose_k(criteria, label, curve):
    """Line fluxes choose k by the held-out pixels' likelihood: the plot shows it, not the BIC."""
    from matplotlib.figure import Figure

    figure = Figure()
    colors = {"text": "black", "faint": "grey", "background": "white", "grid": "lightgrey"}
    _criteria_plot.draw_criteria(criteria, 4, figure, colors)

    right = figure.axes[1]
    assert right.get_ylabel() == label
    ks, values = right.lines[0].get_data()
    assert list(ks) == sorted(curve) and list(values) == [curve[k] for k in sorted(curve)]
