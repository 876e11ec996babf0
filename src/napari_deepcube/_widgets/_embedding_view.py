"""The "Latent embedding" dock widget: every pixel's latent vector on a 2-D plot, linked to the image.

The plot shows the segmentation's latents projected to 2-D
(:mod:`~..core.embedding`: principal axes by default, UMAP or t-SNE on
request) as a density image coloured like the clusters layer, with each
cluster's number at its median point. It is linked to the viewer both ways:

- a lasso or a rectangle drawn on the plot selects the pixels whose points it
  encloses, written to the Labels layer "embedding selection" (1 = selected).
  Pick that layer as *Regions* in the spectrum plot to see their mean
  spectrum, or hand it to any tool that takes a painted region;
- hovering or clicking a pixel in the viewer marks its point on the plot.

What is drawn follows the clusters layer, not a copy of it: its labels are
read again whenever its data, colours or record change (painting, a
re-clustering, an edited segmentation), and the projection is recomputed
only when the latents themselves or the projection chosen change.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backend_bases import MouseButton, MouseEvent
from matplotlib.image import AxesImage
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.patheffects import withStroke
from matplotlib.widgets import LassoSelector, RectangleSelector
from napari.layers import Labels, Layer
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core.embedding import (
    AXIS_NAMES,
    METHOD_NAMES,
    NONLINEAR_SAMPLE,
    Projection,
    available_methods,
    density_bins,
    density_image,
    label_anchors,
    project_latents,
)
from ..core.pixel_maps import PixelMap
from . import _background
from ._layer_combo import LayerCombo
from ._layers import is_lazy, label_colors, labels_info
from ._mpl import FONT_SIZE, ThemedCanvas
from ._regions import REGION_COLORS
from ._scroll import scrolling

if TYPE_CHECKING:
    import napari

    from .._layer_records import SegmentationRun

#: Name of the Labels layer that holds the pixels selected on the plot.
SELECTION_NAME = "embedding selection"
#: Colour of the selection, in the viewer and its outline on the plot: the first region colour.
SELECTION_COLOR = REGION_COLORS[0]
#: The selection tools, by the name the user picks.
TOOLS = ("lasso", "rectangle")
#: Screen pixels a press may move and still count as a click (not a drag).
_CLICK_TOLERANCE = 4
#: Cluster numbers are written on the plot up to this many clusters (more would hide the points).
_MOST_NUMBERS = 40
#: Wait after the view last moved before the axes are laid out again (ms).
_LAYOUT_DELAY_MS = 200


def has_latents(layer: Layer) -> bool:
    """Whether ``layer`` is a 2-D clusters layer holding a segmentation of this session (with latents)."""
    info = labels_info(layer)
    return info is not None and info.run is not None and layer.ndim == 2


class EmbeddingWidget(QWidget):
    """Dock widget plotting a segmentation's latent embedding, linked to the viewer.

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it).

    Attributes
    ----------
    projection
        The points on the plot, None before the first projection.
    marked_pixel
        (row, col) of the pixel whose point is marked, None when none is.
    image
        The density image on the plot, None while nothing is plotted.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.projection: Projection | None = None
        self.marked_pixel: tuple[int, int] | None = None
        self.image: AxesImage | None = None
        self._axes: Axes | None = None
        self._marker: Any = None
        self._outline: Any = None
        self._numbers: list[Any] = []
        self._selector: LassoSelector | RectangleSelector | None = None
        self._outline_points: np.ndarray | None = None
        # What the projection was computed from: latents (by identity) and method.
        self._projected: tuple[PixelMap, str] | None = None
        self._token = 0
        self._connected: tuple[Layer, list[tuple[Any, Callable[..., Any]]]] | None = None
        # One refresh per turn of the event loop: a new result sets the record, then the data.
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self.refresh)

        self.clusters_combo = LayerCombo(napari_viewer, has_latents)
        self.method_combo = QComboBox()
        for method in available_methods():
            self.method_combo.addItem(METHOD_NAMES[method], method)
        self.method_combo.setToolTip(
            "How the latents are laid out in 2-D: principal axes (fast, linear), or UMAP "
            f"(needs umap-learn) and t-SNE, which embed a sample of {NONLINEAR_SAMPLE} pixels "
            "and place every other pixel among its nearest sampled neighbours"
        )
        self.tool_combo = QComboBox()
        self.tool_combo.addItems(TOOLS)
        self.tool_combo.setToolTip(
            "Draw on the plot to select pixels: they appear in the layer 'embedding selection'"
        )
        self.plot = ThemedCanvas(napari_viewer, toolbar=True, height=260)
        # The axes are laid out when the plot is built or resized and when its view
        # settles, not at every draw: the layout took half of each redraw, and a pan
        # redraws at every mouse move.
        self._layout = ConstrainedLayoutEngine()
        self.plot.figure.set_layout_engine("none")
        self._layout_timer = QTimer(self)
        self._layout_timer.setSingleShot(True)
        self._layout_timer.setInterval(_LAYOUT_DELAY_MS)
        self._layout_timer.timeout.connect(self._lay_out)
        self.plot.canvas.mpl_connect("resize_event", self._lay_out)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self._build_layout()

        self.clusters_combo.layer_changed.connect(self._on_clusters_changed)
        self.method_combo.currentIndexChanged.connect(self._schedule)
        self.tool_combo.currentIndexChanged.connect(self._make_selector)
        self.plot.theme_changed.connect(self._rebuild)
        napari_viewer.layers.events.inserted.connect(self._on_layer_inserted)
        for layer in napari_viewer.layers:
            layer.events.metadata.connect(self._on_metadata)
        on_move, on_press = _mouse_callbacks(self)
        napari_viewer.mouse_move_callbacks.append(on_move)
        napari_viewer.mouse_drag_callbacks.append(on_press)
        newest = [layer for layer in napari_viewer.layers if has_latents(layer)]
        if newest:
            self.clusters_combo.set_layer(newest[-1])
        self._on_clusters_changed(self.clusters_combo.layer)

    def _build_layout(self) -> None:
        """The choices above the plot, the status and the Clear button below it, in a scrolling dock."""
        clear = QPushButton("Clear selection")
        clear.setToolTip("Empty the layer 'embedding selection'")
        clear.clicked.connect(self.clear_selection)
        form = QFormLayout()
        form.addRow("Clusters", self.clusters_combo)
        choices = QHBoxLayout()
        choices.addWidget(self.method_combo, 1)
        choices.addWidget(QLabel("select with"))
        choices.addWidget(self.tool_combo)
        form.addRow("Projection", choices)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(clear)
        layout = QVBoxLayout()
        layout.addLayout(form)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        scrolling(self, layout)

    # ----------------------------------------------------------------- layers

    @property
    def clusters_layer(self) -> Labels | None:
        """The clusters layer whose latents are plotted."""
        return self.clusters_combo.layer  # type: ignore[return-value]

    @property
    def method(self) -> str:
        """The projection chosen (``"pca"``, ``"umap"``, ``"tsne"``)."""
        return str(self.method_combo.currentData())

    def _on_layer_inserted(self, event: Any) -> None:
        event.value.events.metadata.connect(self._on_metadata)
        self._follow(event.value)

    def _on_metadata(self, event: Any) -> None:
        """A preview became a result, or a result's segmentation was replaced."""
        layer = event.source
        if layer is self.clusters_layer:
            self._schedule()
        else:
            self._follow(layer)

    def _follow(self, layer: Layer) -> None:
        """Plot a clusters layer that has just got a segmentation."""
        if has_latents(layer):
            self.clusters_combo.refresh()
            self.clusters_combo.set_layer(layer)

    def _on_clusters_changed(self, layer: Labels | None) -> None:
        if self._connected is not None:
            for emitter, callback in self._connected[1]:
                emitter.disconnect(callback)
            self._connected = None
        if layer is not None:
            pairs = [
                (getattr(layer.events, name), callback)
                for name, callback in (
                    ("data", self._schedule), ("paint", self._schedule),
                    ("colormap", self._schedule),
                )
            ]
            for emitter, callback in pairs:
                emitter.connect(callback)
            self._connected = (layer, pairs)
        self._schedule()

    def _schedule(self, *args: Any) -> None:
        """Refresh at the next turn of the event loop."""
        self._refresh_timer.start()

    def _run(self) -> SegmentationRun | None:
        info = labels_info(self.clusters_layer)
        return info.run if info is not None else None

    # ------------------------------------------------------------ projection

    def refresh(self) -> None:
        """Project again if the latents or the method changed, else recolour from the layer's labels."""
        run = self._run()
        layer = self.clusters_layer
        if run is None or layer is None:
            self._token += 1
            self.projection, self._projected = None, None
            self._show_hint("Segment a cube (Deep spectral segmentation) to see its latent embedding")
            return
        latents = run.segmentation.latents
        if latents.shape[:2] != layer.data.shape:
            self._show_hint(f"The layer {layer.name!r} no longer has its segmentation's shape")
            return
        method, seed = self.method, run.segmentation.config.seed
        if self._projected is not None and self._projected[0] is latents and self._projected[1] == method:
            if self.image is None:  # a hint replaced the plot: draw it again
                self._rebuild()
            else:
                self.recolor()
            return
        self._token += 1
        token = self._token

        def done(projection: Projection) -> None:
            if token == self._token:
                self.projection, self._projected = projection, (latents, method)
                self._rebuild()

        # Latents on disk (a cube read lazily) are read in the worker too.
        slow = method != "pca" or is_lazy(latents) or latents.size > _background.BACKGROUND_VALUES
        if slow:
            self.status.setText(f"computing the {METHOD_NAMES[method]} projection…")
        _background.run(lambda: project_latents(latents, method, seed=seed), done,
                        background=slow, owner=self)

    def _colored(self) -> tuple[np.ndarray, np.ndarray]:
        """The label of each point from the clusters layer now, and every label's colour there."""
        assert self.projection is not None and self.clusters_layer is not None
        layer = self.clusters_layer
        labels = self.projection.values_at_points(np.asarray(layer.data))
        top = int(labels.max()) if labels.size else 0
        return labels, label_colors(layer, np.arange(top + 1))

    # ------------------------------------------------------------------ plot

    def _show_hint(self, text: str) -> None:
        figure = self.plot.figure
        figure.clear()
        axes = figure.add_subplot()
        self.plot.style_axes(axes)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", wrap=True,
                  fontsize=FONT_SIZE, color=self.plot.colors["faint"])
        self.image, self._axes, self._marker, self._outline, self._selector = None, None, None, None, None
        self._numbers = []
        self.status.setText("")
        self._lay_out()

    def _lay_out(self, *args: Any) -> None:
        """Fit the axes, their labels and ticks in the figure, then redraw."""
        if self.plot.figure.axes:  # a resize before the first plot has nothing to lay out
            self._layout.execute(self.plot.figure)
        self.plot.draw()

    def _rebuild(self, *args: Any) -> None:
        """Draw the plot anew: axes, density image, cluster numbers, marker, selection tool."""
        projection = self.projection
        if projection is None:
            self.refresh()
            return
        figure = self.plot.figure
        figure.clear()
        axes = figure.add_subplot()
        self.plot.style_axes(axes)
        axes.grid(False)
        name = AXIS_NAMES[projection.method]
        axes.set_xlabel(f"{name} 1")
        axes.set_ylabel(f"{name} 2")
        left, right, bottom, top = projection.extent()
        self.image = axes.imshow(
            np.zeros((1, 1, 4), dtype=np.float32), extent=(left, right, bottom, top),
            origin="lower", interpolation="nearest", aspect="auto",
        )
        axes.set_xlim(left, right)
        axes.set_ylim(bottom, top)
        for limits in ("xlim_changed", "ylim_changed"):
            axes.callbacks.connect(limits, lambda _axes: self._layout_timer.start())
        text = self.plot.colors["text"]
        (self._outline,) = axes.plot([], [], "--", color=SELECTION_COLOR, linewidth=1.2)
        (self._marker,) = axes.plot(
            [], [], "o", markersize=11, markerfacecolor="none", markeredgecolor=text,
            markeredgewidth=1.6,
        )
        self._axes = axes
        self._numbers = []
        self._make_selector()
        self._draw_outline()
        self.recolor()
        if self.marked_pixel is not None:
            self.mark_pixel(*self.marked_pixel)
        self._lay_out()

    def recolor(self) -> None:
        """Colour the points by the clusters layer's labels as they are now."""
        projection, axes, image = self.projection, self._axes, self.image
        if projection is None or axes is None or image is None:
            return
        labels, colors = self._colored()
        extent = projection.extent()
        image.set_data(density_image(projection.points, labels, colors, extent,
                                     density_bins(projection.n_points)))
        for number in self._numbers:
            number.remove()
        self._numbers = []
        top = colors.shape[0] - 1
        if top <= _MOST_NUMBERS:
            halo = [withStroke(linewidth=2.5, foreground=self.plot.colors["background"])]
            for label, (x, y) in label_anchors(projection.points, labels, top).items():
                self._numbers.append(axes.text(
                    x, y, str(label), ha="center", va="center", fontsize=FONT_SIZE + 1,
                    fontweight="bold", color=self.plot.colors["text"], path_effects=halo,
                ))
        self.status.setText(self._describe(projection))
        self.plot.draw()

    def _describe(self, projection: Projection) -> str:
        parts = [f"{projection.n_points:,} pixels".replace(",", " ")]
        if projection.explained is not None:
            parts.append(f"the two principal axes hold {projection.explained:.0%} of the latent variance")
        elif projection.embedded < projection.n_points:
            parts.append(
                f"{METHOD_NAMES[projection.method]} of {projection.embedded} sampled pixels, "
                "the others placed among their nearest sampled neighbours"
            )
        layer = self._selection_layer()
        if layer is not None:
            parts.append(f"{int(np.count_nonzero(layer.data))} selected")
        parts.append(f"draw a {self.tool_combo.currentText()} to select pixels")
        return " · ".join(parts)

    # ------------------------------------------------------------ selection

    def _make_selector(self, *args: Any) -> None:
        """The selection tool chosen, on the current axes (the toolbar's zoom and pan lock it)."""
        if self._selector is not None:
            self._selector.set_active(False)
            self._selector = None
        axes = self._axes
        if axes is None:
            return
        if self.tool_combo.currentText() == "lasso":
            self._selector = LassoSelector(
                axes, self._on_lasso, useblit=True, button=MouseButton.LEFT,
                props={"color": SELECTION_COLOR, "linewidth": 1.2},
            )
        else:
            self._selector = RectangleSelector(
                axes, self._on_rectangle, useblit=True, button=[MouseButton.LEFT],
                props={"edgecolor": SELECTION_COLOR, "facecolor": "none", "linewidth": 1.2},
            )
        if self.projection is not None:
            self.status.setText(self._describe(self.projection))

    def _on_lasso(self, vertices: list[tuple[float, float]]) -> None:
        if self.projection is None or len(vertices) < 3:
            return
        polygon = np.asarray(vertices, dtype=np.float64)
        self.select(self.projection.in_polygon(polygon), np.vstack([polygon, polygon[:1]]))

    def _on_rectangle(self, press: MouseEvent, release: MouseEvent) -> None:
        if self.projection is None or None in (press.xdata, release.xdata, press.ydata, release.ydata):
            return
        x = (float(press.xdata), float(release.xdata))  # type: ignore[arg-type]
        y = (float(press.ydata), float(release.ydata))  # type: ignore[arg-type]
        corners = np.array([[x[0], y[0]], [x[1], y[0]], [x[1], y[1]], [x[0], y[1]], [x[0], y[0]]])
        self.select(self.projection.in_rectangle(x, y), corners)

    def select(self, mask: np.ndarray, outline: np.ndarray | None = None) -> Labels:
        """Write ``mask`` (H, W) to the "embedding selection" layer; ``outline`` is drawn on the plot.

        Returns the layer, added over the clusters layer when it is not in
        the viewer yet.
        """
        data = np.asarray(mask, dtype=np.uint8)
        layer = self._selection_layer()
        if layer is not None and layer.data.shape == data.shape:
            layer.data = data
        else:
            if layer is not None:
                self.viewer.layers.remove(layer)
            clusters = self.clusters_layer
            placement = (
                {"scale": clusters.scale, "translate": clusters.translate} if clusters is not None else {}
            )
            layer = self.viewer.add_labels(
                data, name=SELECTION_NAME, opacity=0.7, axis_labels=("y", "x"),
                colormap=DirectLabelColormap(
                    color_dict={0: np.zeros(4), 1: SELECTION_COLOR, None: SELECTION_COLOR}
                ),
                **placement,
            )
        self._outline_points = outline
        self._draw_outline()
        if self.projection is not None:
            self.status.setText(self._describe(self.projection))
        self.plot.draw()
        return layer

    def clear_selection(self) -> None:
        """Select no pixel (the layer stays, empty)."""
        layer = self._selection_layer()
        if layer is not None:
            self.select(np.zeros(layer.data.shape, dtype=bool))

    def _selection_layer(self) -> Labels | None:
        if SELECTION_NAME in self.viewer.layers:
            layer = self.viewer.layers[SELECTION_NAME]
            return layer if isinstance(layer, Labels) else None
        return None

    def _draw_outline(self) -> None:
        if self._outline is None:
            return
        points = self._outline_points if self._outline_points is not None else np.zeros((0, 2))
        self._outline.set_data(points[:, 0], points[:, 1])

    # ----------------------------------------------------------------- pixels

    def mark_pixel(self, row: int, col: int) -> np.ndarray | None:
        """Mark the point of pixel (row, col); returns it, None when the pixel has none."""
        self.marked_pixel = (row, col)
        point = self.projection.point_of(row, col) if self.projection is not None else None
        if self._marker is not None:
            xs, ys = ([point[0]], [point[1]]) if point is not None else ([], [])
            self._marker.set_data(xs, ys)
            self.plot.draw()
        return point

    def _pixel_at(self, position: tuple[float, ...]) -> tuple[int, int] | None:
        """The clusters layer's pixel under a world position, None outside it."""
        layer = self.clusters_layer
        if layer is None:
            return None
        row, col = (int(np.round(v)) for v in layer.world_to_data(position)[-2:])
        height, width = layer.data.shape
        return (row, col) if 0 <= row < height and 0 <= col < width else None

    def _on_hover(self, viewer: Any, event: Any) -> None:
        pixel = self._pixel_at(tuple(event.position))
        if pixel is not None and pixel != self.marked_pixel:
            self.mark_pixel(*pixel)

    def _on_press(self, viewer: Any, event: Any) -> Generator[None, None, None]:
        """A click (press and release without a drag) on the canvas marks the pixel's point."""
        if event.button != 1 or event.modifiers:
            return
        start = np.asarray(event.pos, dtype=float)
        yield
        while event.type == "mouse_move":
            yield
        moved = np.abs(np.asarray(event.pos, dtype=float) - start).max()
        if event.type == "mouse_release" and moved <= _CLICK_TOLERANCE:
            pixel = self._pixel_at(tuple(event.position))
            if pixel is not None:
                self.mark_pixel(*pixel)


def _mouse_callbacks(
    widget: EmbeddingWidget,
) -> tuple[Callable[..., None], Callable[..., Generator[None, None, None]]]:
    """Viewer mouse callbacks (hover, press) that do not keep the widget alive."""
    reference = weakref.ref(widget)

    def on_move(viewer: Any, event: Any) -> None:
        target = reference()
        if target is not None:
            target._on_hover(viewer, event)

    def on_press(viewer: Any, event: Any) -> Generator[None, None, None]:
        target = reference()
        if target is not None:
            yield from target._on_press(viewer, event)

    return on_move, on_press
