"""The docks on a laptop screen: the window fits, and no widget is drawn over another."""

from __future__ import annotations

from qtpy.QtCore import QPoint, QRect
from qtpy.QtWidgets import QScrollArea, QWidget

from napari_deepcube._reader import cube_layer_data
from napari_deepcube._widgets._segment import SegmentationWidget
from napari_deepcube._widgets._spectrum_plot import SpectrumPlotWidget

#: The smallest common laptop screen and the commonest desktop one (pixels).
SCREENS = ((1366, 768), (1920, 1080))


def _box(widget: QWidget, ancestor: QWidget) -> QRect:
    """``widget``'s rectangle in ``ancestor``'s coordinates."""
    return QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())


def test_both_docks_fit_a_1366_by_768_screen_and_nothing_overlaps(
    make_napari_viewer, qtbot, painting
):
    viewer = make_napari_viewer(show=True)
    data, kwargs, _ = cube_layer_data(painting.cube, name="painting")
    viewer.add_image(data, **kwargs)
    segment = SegmentationWidget(viewer)
    plot = SpectrumPlotWidget(viewer)
    viewer.window.add_dock_widget(segment, name="Deep spectral segmentation")
    viewer.window.add_dock_widget(plot, name="Cluster spectra")
    window = viewer.window._qt_window
    # A long reason, as a real run may give: it must push the plot down, not run over it.
    segment.result_label.setText(" ".join(["The criteria disagree about this k."] * 12))

    qtbot.wait(50)  # the docks laid out

    minimum = window.minimumSizeHint().expandedTo(window.minimumSize())
    assert minimum.width() <= SCREENS[0][0] and minimum.height() <= SCREENS[0][1]
    for width, height in SCREENS:
        window.resize(width, height)
        qtbot.waitUntil(lambda w=width, h=height: (window.width(), window.height()) == (w, h))
        qtbot.wait(50)
        parts = [segment.result_label, segment.criteria_plot, segment.k_spin]
        boxes = [_box(part, segment) for part in parts]
        assert boxes[0].bottom() < boxes[1].top() and boxes[1].bottom() < boxes[2].top()
        assert segment.result_label.height() >= segment.result_label.heightForWidth(
            segment.result_label.width()
        )
        # Only the height scrolls: each dock is as wide as its content needs.
        for dock in (segment, plot):
            area = dock.findChild(QScrollArea)
            assert area.viewport().width() >= area.widget().minimumSizeHint().width()
    qtbot.waitUntil(lambda: not segment.criteria_plot.drawing)
