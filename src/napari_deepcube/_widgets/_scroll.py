"""Dock contents that scroll, so that a dock never forces the window taller than the screen.

A dock's minimum height is its content's; two docks of a few hundred pixels
each made napari's window 1328 pixels high at least, taller than a laptop
screen, and Qt then squeezed the widgets into each other. In a scroll area
the content keeps its natural size and the dock only needs room for a few
lines; a larger dock still gives the content its extra room.
"""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QLayout, QScrollArea, QVBoxLayout, QWidget


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
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(inner)
    # Only the height scrolls: the dock stays as wide as the content needs.
    scrollbar = area.verticalScrollBar()
    margin = scrollbar.sizeHint().width() if scrollbar is not None else 0
    area.setMinimumWidth(inner.minimumSizeHint().width() + margin)
    outer = QVBoxLayout(owner)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return inner
