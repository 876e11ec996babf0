"""Dock contents that scroll, so that a dock never forces the window taller than the screen.

A dock's minimum height is its content's; two docks of a few hundred pixels
each made napari's window 1328 pixels high at least, taller than a laptop
screen, and Qt then squeezed the widgets into each other. In a scroll area
the content keeps its natural size and the dock only needs room for a few
lines; a larger dock still gives the content its extra room. Only the height
scrolls: the dock stays as wide as the content needs.
"""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QFrame, QLayout, QScrollArea, QStyle, QVBoxLayout, QWidget

#: Least height of a scrolling dock (pixels): a few lines of its content.
_LEAST_HEIGHT = 80


class _VerticalScrollArea(QScrollArea):
    """A scroll area as wide as its content (asked again at each layout), and as low as a few lines."""

    def _bar_width(self) -> int:
        """Width beside the content: the scroll bar and the frame (napari's stylesheet draws one)."""
        style = self.style()
        extent = style.pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self) if style else 0
        bar = self.verticalScrollBar()
        return max(extent, bar.sizeHint().width() if bar is not None else 0) + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:
        content = self.widget()
        width = content.minimumSizeHint().width() if content is not None else 0
        return QSize(width + self._bar_width(), _LEAST_HEIGHT)

    def sizeHint(self) -> QSize:
        content = self.widget()
        hint = content.sizeHint() if content is not None else QSize(0, _LEAST_HEIGHT)
        return QSize(hint.width() + self._bar_width(), hint.height())


def scrolling(owner: QWidget, content: QLayout) -> QWidget:
    """Lay ``content`` out in ``owner`` inside a vertical scroll area; returns the content widget.

    Parameters
    ----------
    owner
        The dock widget.
    content
        Its layout, not yet set on any widget.
    """
    inner = QWidget()
    inner.setLayout(content)
    area = _VerticalScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(inner)
    outer = QVBoxLayout(owner)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return inner
