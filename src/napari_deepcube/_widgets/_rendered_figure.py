"""A matplotlib figure drawn off the GUI thread and shown as an image.

Laying out and rasterising even a small figure costs matplotlib 100-200 ms of
Python (measured under Xvfb on 2 cores), long enough to stall the viewer when a
run ends. Here each drawing is a fresh Agg figure built and rendered in a
napari thread worker; the GUI thread only shows the finished pixels. Figures
of other threads are never touched, which is what matplotlib's thread-safety
asks (its font cache is per thread).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Transform
from napari.qt.threading import create_worker
from qtpy.QtCore import QPoint, QPointF, Qt, QTimer, Signal
from qtpy.QtGui import QImage, QMouseEvent, QPainter, QPaintEvent, QResizeEvent
from qtpy.QtWidgets import QSizePolicy, QWidget

from ._background import alive
from ._mpl import theme_colors

if TYPE_CHECKING:
    import napari

#: Resolution of the figure in dots per logical pixel-inch (matplotlib's default).
_DPI = 100.0
#: How long a resize waits for the next before drawing again (ms).
_RESIZE_SETTLE_MS = 100

#: Draws into a figure with the theme's colours; returns the data transform of the
#: axes that clicks refer to, or None when clicks mean nothing.
DrawFunction = Callable[[Figure, dict[str, str]], "Transform | None"]


@dataclass(frozen=True)
class Rendering:
    """The pixels of one drawing and the map from its pixels to data coordinates."""

    pixels: np.ndarray
    device_pixel_ratio: float
    to_data: Transform | None


def render(draw: DrawFunction, colors: dict[str, str], width: int, height: int,
           device_pixel_ratio: float) -> Rendering:
    """Draw a ``width`` x ``height`` (logical pixels) figure with ``draw``; any thread."""
    dpi = _DPI * device_pixel_ratio
    figure = Figure(figsize=(width / _DPI, height / _DPI), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    data_transform = draw(figure, colors)
    canvas.draw()
    pixels = np.array(canvas.buffer_rgba(), copy=True)
    # frozen() of a Transform is a Transform; matplotlib's stubs only promise a TransformNode.
    to_data = cast(Transform, data_transform.inverted().frozen()) if data_transform is not None else None
    return Rendering(pixels, device_pixel_ratio, to_data)


class RenderedFigure(QWidget):
    """A fixed-height plot whose figure is drawn in a thread worker.

    Owners call :meth:`show_drawing` with a function that fills a figure; it
    runs again, off the GUI thread, when the widget is resized or the
    viewer's theme changes. While a drawing is under way the previous one
    stays on screen; only the latest request is ever shown.

    Signals
    -------
    clicked(float, float)
        The user clicked at these data coordinates (of the transform the
        drawing function returned).
    rendered()
        A new drawing is on screen.

    Parameters
    ----------
    viewer
        The viewer whose theme colours the figure.
    height
        Height of the plot in pixels.
    """

    clicked = Signal(float, float)
    rendered = Signal()

    def __init__(self, viewer: napari.viewer.Viewer, *, height: int) -> None:
        super().__init__()
        self.viewer = viewer
        self.setFixedHeight(height)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(120)
        self._draw: DrawFunction | None = None
        self._request = 0
        self._shown_request = 0
        self._rendering: Rendering | None = None
        self._image: QImage | None = None
        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(_RESIZE_SETTLE_MS)
        self._resize_timer.timeout.connect(self._start)
        viewer.events.theme.connect(self._on_theme)

    @property
    def drawing(self) -> bool:
        """True while a requested drawing has not reached the screen yet."""
        return self._request != self._shown_request

    def show_drawing(self, draw: DrawFunction) -> None:
        """Draw with ``draw`` (in a worker) and show the result when it is ready."""
        self._draw = draw
        self._start()

    def _on_theme(self, event: Any = None) -> None:
        if alive(self):
            self._start()

    def _start(self) -> None:
        if self._draw is None:
            return
        self._request += 1
        request = self._request
        width = max(self.width(), self.minimumWidth())
        arguments = (self._draw, theme_colors(self.viewer), width, self.height(),
                     self.devicePixelRatioF())

        def deliver(rendering: Rendering) -> None:
            if alive(self) and request == self._request:
                self._show(rendering, request)

        create_worker(render, *arguments, _start_thread=True, _connect={"returned": deliver})

    def _show(self, rendering: Rendering, request: int) -> None:
        pixels = rendering.pixels
        image = QImage(pixels.data, pixels.shape[1], pixels.shape[0], pixels.strides[0],  # type: ignore[call-overload]
                       QImage.Format.Format_RGBA8888)
        # QImage borrows the buffer; the copy owns its pixels.
        self._image = image.copy()
        self._image.setDevicePixelRatio(rendering.device_pixel_ratio)
        self._rendering = rendering
        self._shown_request = request
        self.update()
        self.rendered.emit()

    def paintEvent(self, event: QPaintEvent | None) -> None:
        if self._image is None:
            return
        painter = QPainter(self)
        painter.drawImage(QPointF(0.0, 0.0), self._image)
        painter.end()

    def resizeEvent(self, event: QResizeEvent | None) -> None:
        super().resizeEvent(event)
        self._resize_timer.start()

    def point_of(self, x: float, y: float) -> QPoint:
        """The widget pixel showing data point (``x``, ``y``) of the drawing on screen."""
        rendering = self._rendering
        if rendering is None or rendering.to_data is None:
            raise ValueError("the plot shows no data coordinates yet")
        column, row = rendering.to_data.inverted().transform((x, y))
        ratio = rendering.device_pixel_ratio
        # Matplotlib counts pixels from the bottom of the figure, Qt from the top.
        return QPoint(round(column / ratio), round((rendering.pixels.shape[0] - row) / ratio))

    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        rendering = self._rendering
        if rendering is None or rendering.to_data is None:
            return
        if event is None or event.button() != Qt.MouseButton.LeftButton:
            return
        position = event.position()
        ratio = rendering.device_pixel_ratio
        x, y = rendering.to_data.transform(
            (position.x() * ratio, rendering.pixels.shape[0] - position.y() * ratio)
        )
        self.clicked.emit(float(x), float(y))
