"""A matplotlib figure in a Qt widget, styled like the napari window around it.

The figure takes the colours of the viewer's theme (background, text, grid)
and follows theme changes, so a plot reads as part of napari rather than a
white rectangle in a dark window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg, NavigationToolbar2QT
from matplotlib.figure import Figure
from napari.utils.theme import get_theme
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QVBoxLayout, QWidget

if TYPE_CHECKING:
    import napari

#: Font size of plot text (points): a dock widget is small.
FONT_SIZE = 8


def theme_colors(viewer: napari.viewer.Viewer) -> dict[str, str]:
    """The viewer theme's plot colours: ``background``, ``text``, ``grid``, ``faint``."""
    theme = get_theme(viewer.theme)
    return {
        "background": theme.background.as_hex(),
        "text": theme.text.as_hex(),
        "grid": theme.primary.as_hex(),
        "faint": theme.secondary.as_hex(),
    }


def style_axes(axes: Axes, colors: dict[str, str]) -> None:
    """Give ``axes`` (and its figure) the theme ``colors`` and the widgets' font size."""
    axes.figure.set_facecolor(colors["background"])
    axes.set_facecolor(colors["background"])
    for spine in axes.spines.values():
        spine.set_color(colors["faint"])
    axes.tick_params(colors=colors["text"], labelsize=FONT_SIZE, which="both")
    axes.xaxis.label.set_color(colors["text"])
    axes.yaxis.label.set_color(colors["text"])
    axes.xaxis.label.set_fontsize(FONT_SIZE)
    axes.yaxis.label.set_fontsize(FONT_SIZE)
    axes.title.set_color(colors["text"])
    axes.title.set_fontsize(FONT_SIZE + 1)
    axes.grid(True, color=colors["grid"], linewidth=0.5, alpha=0.8)


class ThemedCanvas(QWidget):
    """A matplotlib figure with the napari theme's colours.

    Owners draw into :attr:`figure`, call :meth:`style_axes` on every axes
    they (re)create, then :meth:`draw`; they redraw on :attr:`theme_changed`.

    Signals
    -------
    theme_changed()
        The viewer's theme changed; :attr:`colors` already follow it.

    Parameters
    ----------
    viewer
        The viewer whose theme is followed.
    toolbar
        Show matplotlib's zoom/pan toolbar.
    height
        Height of the canvas in pixels: the minimum, or the exact height when
        ``fixed``.
    fixed
        Keep the canvas at ``height`` (a small plot in a form must not be
        squeezed until its axis labels are cut off).
    """

    theme_changed = Signal()

    def __init__(
        self,
        viewer: napari.viewer.Viewer,
        *,
        toolbar: bool = False,
        height: int = 180,
        fixed: bool = False,
    ) -> None:
        super().__init__()
        self.viewer = viewer
        self.figure = Figure(figsize=(4.0, 2.6), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        if fixed:
            self.canvas.setFixedHeight(height)
        else:
            self.canvas.setMinimumHeight(height)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        self.toolbar: NavigationToolbar2QT | None = None
        if toolbar:
            self.toolbar = NavigationToolbar2QT(self.canvas, self, coordinates=False)
            layout.addWidget(self.toolbar)
        layout.addWidget(self.canvas)
        viewer.events.theme.connect(self._on_theme)
        self._colors = theme_colors(viewer)

    @property
    def colors(self) -> dict[str, str]:
        """Theme colours: ``background``, ``text``, ``grid``, ``faint``."""
        return self._colors

    def _on_theme(self, event: Any = None) -> None:
        self._colors = theme_colors(self.viewer)
        self.theme_changed.emit()

    def style_axes(self, axes: Axes) -> None:
        """Give ``axes`` the theme's colours and the widget's font size."""
        style_axes(axes, self._colors)

    def style_legend(self, axes: Axes, **kwargs: Any) -> None:
        """A legend in the theme's colours (nothing when no artist is labelled)."""
        handles, labels = axes.get_legend_handles_labels()
        if not handles:
            return
        legend = axes.legend(handles, labels, fontsize=FONT_SIZE - 1, framealpha=0.7, **kwargs)
        legend.get_frame().set_facecolor(self._colors["background"])
        legend.get_frame().set_edgecolor(self._colors["faint"])
        for text in legend.get_texts():
            text.set_color(self._colors["text"])

    def draw(self) -> None:
        """Schedule a repaint (coalesced by matplotlib)."""
        self.canvas.draw_idle()
