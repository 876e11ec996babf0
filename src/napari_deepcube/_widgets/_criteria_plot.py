"""The criteria-vs-k plot: silhouette and BIC of every k tried, the chosen k marked.

Clicking a k on the plot asks for that k (signal :attr:`CriteriaPlot.k_picked`),
which the segmentation widget answers by re-clustering without training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backend_bases import MouseEvent
from qtpy.QtCore import Signal

from ..core.palette import label_colors
from ._mpl import FONT_SIZE, ThemedCanvas

if TYPE_CHECKING:
    import napari

_SILHOUETTE, _BIC = label_colors(2)[1:, :3]


class CriteriaPlot(ThemedCanvas):
    """Silhouette (left axis, higher is better) and BIC (right axis, lower is better) vs k.

    Signals
    -------
    k_picked(int)
        A k of the curves was clicked.
    """

    k_picked = Signal(int)

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer, toolbar=False, height=170, fixed=True)
        self.criteria: dict[str, dict[int, float]] = {}
        self.chosen: int | None = None
        self.canvas.mpl_connect("button_press_event", self._on_click)
        self.setToolTip("Click a k to re-cluster into that many clusters (no retraining)")
        self.theme_changed.connect(self.redraw)
        self.redraw()

    def show_criteria(self, criteria: dict[str, dict[int, float]], chosen: int | None) -> None:
        """Plot ``criteria`` (name -> {k: value}) with ``chosen`` marked."""
        self.criteria = {name: dict(curve) for name, curve in criteria.items() if curve}
        self.chosen = chosen
        self.redraw()

    @property
    def ks(self) -> list[int]:
        """Every k that has a criterion value."""
        return sorted({k for curve in self.criteria.values() for k in curve})

    def redraw(self) -> None:
        """Draw the curves again (also on a theme change)."""
        self.figure.clear()
        axes = self.figure.add_subplot()
        self.style_axes(axes)
        silhouette = self.criteria.get("silhouette", {})
        bic = self.criteria.get("bic", {})
        if not silhouette and not bic:
            text = (
                f"k = {self.chosen} was fixed: no other k was scored" if self.chosen
                else "After training: how well each k fits the data"
            )
            axes.text(
                0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center",
                fontsize=FONT_SIZE, color=self.colors["faint"],
            )
            axes.set_xticks([])
            axes.set_yticks([])
            self.draw()
            return
        axes.set_xlabel("number of clusters k")
        if silhouette:
            ks = sorted(silhouette)
            axes.plot(ks, [silhouette[k] for k in ks], "o-", color=_SILHOUETTE, markersize=3,
                      linewidth=1.2, label="silhouette ↑")
            axes.set_ylabel("silhouette", color=_SILHOUETTE)
        if bic:
            ks = sorted(bic)
            right = axes.twinx()
            self.style_axes(right)
            right.grid(False)
            right.plot(ks, [bic[k] for k in ks], "s--", color=_BIC, markersize=3, linewidth=1.0,
                       label="BIC ↓")
            right.set_ylabel("BIC", color=_BIC)
            right.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
            right.yaxis.get_offset_text().set_fontsize(FONT_SIZE - 1)
            right.yaxis.get_offset_text().set_color(self.colors["text"])
        axes.set_xticks(self.ks)
        if self.chosen is not None:
            axes.axvline(self.chosen, color=self.colors["text"], linewidth=1.0, alpha=0.8)
            if self.chosen in silhouette:
                axes.plot([self.chosen], [silhouette[self.chosen]], "o", markersize=8,
                          markerfacecolor="none", markeredgecolor=self.colors["text"])
        self.draw()

    def _on_click(self, event: MouseEvent) -> None:
        if event.xdata is None or not self.ks:
            return
        ks = np.asarray(self.ks)
        k = int(ks[np.argmin(np.abs(ks - event.xdata))])
        if abs(k - event.xdata) <= 0.5 and k != self.chosen:
            self.k_picked.emit(k)
