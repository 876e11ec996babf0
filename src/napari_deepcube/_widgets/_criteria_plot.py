"""The criteria-vs-k plot: silhouette and the likelihood criterion of every k tried, the chosen k marked.

Clicking a k on the plot asks for that k (signal :attr:`CriteriaPlot.k_picked`),
which the segmentation widget answers by re-clustering without training. The
figure is drawn off the GUI thread (:class:`RenderedFigure`): a run's end must
not stall the viewer for matplotlib's layout.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.transforms import Transform
from qtpy.QtCore import Signal

from ..core.kselect import likelihood_criterion
from ..core.palette import label_colors
from ._mpl import FONT_SIZE, style_axes
from ._rendered_figure import RenderedFigure

if TYPE_CHECKING:
    import napari

_SILHOUETTE, _LIKELIHOOD = label_colors(2)[1:, :3]
#: Height of the plot (pixels): small in a form, tall enough for its axis labels.
_HEIGHT = 170


class CriteriaPlot(RenderedFigure):
    """Silhouette (left axis, higher is better) and the criterion that chose k (right axis) vs k.

    The right axis shows the BIC (lower is better), or the held-out
    log-likelihood (higher is better) where it chose k (line fluxes).

    Signals
    -------
    k_picked(int)
        A k of the curves was clicked.
    """

    k_picked = Signal(int)

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(viewer, height=_HEIGHT)
        self.criteria: dict[str, dict[int, float]] = {}
        self.chosen: int | None = None
        self.clicked.connect(self._on_click)
        self.setToolTip("Click a k to re-cluster into that many clusters (no retraining)")
        self.show_criteria({}, None)

    def show_criteria(self, criteria: dict[str, dict[int, float]], chosen: int | None) -> None:
        """Plot ``criteria`` (name -> {k: value}) with ``chosen`` marked."""
        self.criteria = {name: dict(curve) for name, curve in criteria.items() if curve}
        self.chosen = chosen
        self.show_drawing(partial(draw_criteria, self.criteria, chosen))

    @property
    def ks(self) -> list[int]:
        """Every k that has a criterion value."""
        return sorted({k for curve in self.criteria.values() for k in curve})

    def _on_click(self, k_clicked: float, _value: float) -> None:
        if not self.ks:
            return
        ks = np.asarray(self.ks)
        k = int(ks[np.argmin(np.abs(ks - k_clicked))])
        if abs(k - k_clicked) <= 0.5 and k != self.chosen:
            self.k_picked.emit(k)


def draw_criteria(
    criteria: dict[str, dict[int, float]], chosen: int | None, figure: Figure,
    colors: dict[str, str],
) -> Transform | None:
    """Draw the criteria curves into ``figure``; returns the k axis' data transform."""
    axes = figure.add_subplot()
    style_axes(axes, colors)
    silhouette = criteria.get("silhouette", {})
    deciding = likelihood_criterion(criteria)
    likelihood = criteria[deciding[0]] if deciding else {}
    if not silhouette and not likelihood:
        text = (
            f"k = {chosen} was fixed: no other k was scored" if chosen
            else "After training: how well each k fits the data"
        )
        axes.text(
            0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center",
            fontsize=FONT_SIZE, color=colors["faint"],
        )
        axes.set_xticks([])
        axes.set_yticks([])
        return None
    axes.set_xlabel("number of clusters k")
    if silhouette:
        ks = sorted(silhouette)
        axes.plot(ks, [silhouette[k] for k in ks], "o-", color=_SILHOUETTE, markersize=3,
                  linewidth=1.2, label="silhouette ↑")
        axes.set_ylabel("silhouette", color=_SILHOUETTE)
    if deciding:
        ks = sorted(likelihood)
        right = axes.twinx()
        style_axes(right, colors)
        right.grid(False)
        _, label, higher_is_better = deciding
        right.plot(ks, [likelihood[k] for k in ks], "s--", color=_LIKELIHOOD, markersize=3, linewidth=1.0,
                   label=f"{label} {'↑' if higher_is_better else '↓'}")
        right.set_ylabel(label, color=_LIKELIHOOD)
        right.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        right.yaxis.get_offset_text().set_fontsize(FONT_SIZE - 1)
        right.yaxis.get_offset_text().set_color(colors["text"])
    axes.set_xticks(sorted({k for curve in (silhouette, likelihood) for k in curve}))
    if chosen is not None:
        axes.axvline(chosen, color=colors["text"], linewidth=1.0, alpha=0.8)
        if chosen in silhouette:
            axes.plot([chosen], [silhouette[chosen]], "o", markersize=8,
                      markerfacecolor="none", markeredgecolor=colors["text"])
    return axes.transData
