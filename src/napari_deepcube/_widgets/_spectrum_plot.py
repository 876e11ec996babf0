"""The "Cluster spectra" dock widget: spectra of clusters, pixels and regions.

What is plotted, and what updates it:

- the mean spectrum ± one standard deviation of the Labels layer's selected
  label (``selected_label`` event), or every label's mean ("all clusters");
- the spectrum of the pixel last clicked in the viewer, whose cluster becomes
  the selected label;
- the mean spectrum of each region of the regions layer (a Shapes layer's
  shapes or a painted Labels layer's labels), redrawn when regions change.

Curves take the colours the viewer draws (label colours, region edge
colours); the x axis is the cube's spectral axis with its unit. On an X-ray
energy axis the main peaks are named after the element lines nearby, on a
wavelength axis the optical emission lines are marked at rest. The
current slider channel is marked, and clicking the plot moves the slider to
that channel, so a peak's element map is one click away.

Dragging across the plot chooses the spectral range a segmentation run learns
from (shown shaded; "Clear range" forgets it). It is stored in the cube
layer's record, where the segmentation widget's settings read and edit it.
With "drag maps" checked a drag maps the window instead, and the "Map lines"
row (:mod:`._element_maps`) maps X-ray lines as net counts.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backend_bases import MouseButton, MouseEvent
from matplotlib.widgets import SpanSelector
from napari.layers import Image, Labels, Layer, Shapes
from napari.utils.notifications import show_error
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .._slider_label import follow_spectral_slider
from ..core.errors import InputError
from ..core.io.results import write_spectra_csv
from ..core.selection import parse_ranges
from ..core.spectral import SpectralAxis
from ..core.xray_lines import parse_elements
from . import _background
from ._element_maps import ElementMapControls, make_line_names_pickable, named_elements
from ._layer_combo import LayerCombo
from ._layers import (
    image_shape,
    is_cube_layer,
    is_lazy,
    label_colors,
    labels_info,
    set_training_range,
    spectral_axis,
    spectral_last,
    training_range,
    world_to_pixel,
)
from ._mpl import FONT_SIZE, ThemedCanvas
from ._regions import add_regions_layer, name_shapes, regions_of
from ._scroll import scrolling
from ._spectra import SpectrumStats, labels_stats, mask_stats
from ._spectrum_figure import Curve, draw_spectra

if TYPE_CHECKING:
    import napari

#: Screen pixels a press may move and still count as a click (not a drag).
_CLICK_TOLERANCE = 4
#: Colour and opacity of the training range's shading (the slider marker's blue).
_RANGE_COLOR = "#4560c4"
_RANGE_ALPHA = 0.18


class SpectrumPlotWidget(QWidget):
    """Dock widget plotting cluster, pixel and region spectra of a cube.

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it).

    Attributes
    ----------
    curves
        The curves last drawn, by name (``"cluster 3"``, ``"R1"``, ``"pixel y=12 x=40"``).
    lines
        The matplotlib line of each curve, by the same names.
    range_patches
        The shaded spans of the training range, as last drawn.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.curves: dict[str, Curve] = {}
        self.lines: dict[str, Any] = {}
        self.range_patches: list[Any] = []
        self._span: SpanSelector | None = None
        self._label_stats: dict[int, SpectrumStats] = {}
        self._region_curves: list[Curve] = []
        self._pixel: tuple[int, int, np.ndarray] | None = None
        self._marker: Any = None
        self._tokens = {"labels": 0, "regions": 0, "pixel": 0}
        self._connected: dict[str, tuple[Layer, list[tuple[Any, Callable[..., Any]]]]] = {}
        # One region update per turn of the event loop: naming a new shape changes its
        # data, features and edge colour, each with its own event.
        self._regions_timer = QTimer(self)
        self._regions_timer.setSingleShot(True)
        self._regions_timer.setInterval(0)
        self._regions_timer.timeout.connect(self._load_regions)

        self.plot = ThemedCanvas(napari_viewer, toolbar=True, height=240)
        self.plot.theme_changed.connect(self.redraw)
        self.plot.canvas.mpl_connect("button_press_event", self._on_plot_click)
        self.maps = ElementMapControls(
            napari_viewer, lambda: self.cube_layer,
            lambda: (*self.picked_elements, *named_elements(self.plot.figure)),
        )
        self.maps.drag_maps.toggled.connect(self.redraw)
        self.plot.canvas.mpl_connect("pick_event", self.maps.on_pick)

        self.cube_combo = LayerCombo(napari_viewer, is_cube_layer)
        self.labels_combo = LayerCombo(
            napari_viewer, lambda layer: isinstance(layer, Labels) and layer.ndim == 2,
            allow_none=True,
        )
        self.regions_combo = LayerCombo(
            napari_viewer, lambda layer: isinstance(layer, Shapes | Labels), allow_none=True
        )
        self.all_clusters = QCheckBox("all clusters")
        self.all_clusters.setToolTip("Plot the mean spectrum of every label, not only the selected one")
        self.log_y = QCheckBox("log y")
        self.element_lines = QCheckBox("line names")
        self.element_lines.setChecked(True)
        self.element_lines.setToolTip(
            "Energy axes: name the main peaks after the nearest X-ray lines. Wavelength axes: "
            "mark the optical emission lines at rest (air, visible range)"
        )
        for box in (self.all_clusters, self.log_y, self.element_lines):
            box.toggled.connect(self.redraw)
        self.elements = QLineEdit()
        self.elements.setPlaceholderText("e.g. Pb, Cu, Fe")
        self.elements.setToolTip(
            "X-ray energy axes: mark every clear K, L and M line of these elements (xraydb), "
            "whether the spectrum shows a peak there or not"
        )
        self.elements.editingFinished.connect(self._on_elements_typed)
        self.picked_elements: tuple[str, ...] = ()
        self.status = QLabel()
        self.status.setWordWrap(True)
        new_regions = QPushButton("New regions layer")
        new_regions.setToolTip("Add a Shapes layer: draw rectangles or polygons to compare regions")
        new_regions.clicked.connect(self.new_regions_layer)
        export_csv = QPushButton("Export CSV…")
        export_csv.setToolTip("Save the plotted spectra as columns, spectral axis first")
        export_csv.clicked.connect(self._ask_export_csv)
        export_figure = QPushButton("Export figure…")
        export_figure.setToolTip("Save the plot as PNG or SVG")
        export_figure.clicked.connect(self._ask_export_figure)
        self.clear_range_button = QPushButton("Clear range")
        self.clear_range_button.setToolTip(
            "Forget the spectral range dragged on the plot: runs learn from every channel"
        )
        self.clear_range_button.clicked.connect(self.clear_training_range)

        form = QFormLayout()
        form.addRow("Cube", self.cube_combo)
        form.addRow("Labels", self.labels_combo)
        regions_row = QHBoxLayout()
        regions_row.addWidget(self.regions_combo, 1)
        regions_row.addWidget(new_regions)
        form.addRow("Regions", regions_row)
        form.addRow("Elements", self.elements)
        form.addRow("Map lines", self.maps)
        options = QHBoxLayout()
        for box in (self.all_clusters, self.log_y, self.element_lines, self.maps.drag_maps):
            options.addWidget(box)
        options.addStretch(1)
        exports = QHBoxLayout()
        exports.addWidget(export_csv)
        exports.addWidget(export_figure)
        exports.addStretch(1)
        exports.addWidget(self.clear_range_button)
        layout = QVBoxLayout()
        layout.addLayout(form)
        layout.addLayout(options)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)
        layout.addLayout(exports)
        scrolling(self, layout)

        self.cube_combo.layer_changed.connect(self._on_cube_changed)
        self.labels_combo.layer_changed.connect(self._on_labels_changed)
        self.regions_combo.layer_changed.connect(self._on_regions_changed)
        napari_viewer.layers.events.inserted.connect(self._on_layer_inserted)
        napari_viewer.dims.events.current_step.connect(self._move_marker)
        for layer in napari_viewer.layers:
            layer.events.metadata.connect(self._on_metadata)
        napari_viewer.mouse_drag_callbacks.append(_mouse_callback(self))
        self._choose_defaults()
        self._on_cube_changed(self.cube_combo.layer)
        follow_spectral_slider(napari_viewer)

    # ----------------------------------------------------------------- layers

    @property
    def cube_layer(self) -> Image | None:
        """The cube whose spectra are plotted."""
        return self.cube_combo.layer  # type: ignore[return-value]

    @property
    def labels_layer(self) -> Labels | None:
        """The Labels layer whose clusters are plotted."""
        return self.labels_combo.layer  # type: ignore[return-value]

    @property
    def regions_layer(self) -> Shapes | Labels | None:
        """The layer whose regions are plotted."""
        return self.regions_combo.layer  # type: ignore[return-value]

    def _on_layer_inserted(self, event: Any) -> None:
        layer = event.value
        layer.events.metadata.connect(self._on_metadata)
        info = labels_info(layer)
        if is_cube_layer(layer) and self.cube_layer is None:
            self.cube_combo.set_layer(layer)
        elif info is not None and info.kind == "clusters":
            self._follow_clusters(layer)
        elif info is not None and info.kind == "labels" and self.labels_layer is None:
            self.labels_combo.set_layer(layer)
        elif isinstance(layer, Shapes) and self.regions_layer is None:
            self.regions_combo.set_layer(layer)

    def _on_metadata(self, event: Any) -> None:
        """A layer became a clusters layer (a preview turned result), or its record changed."""
        layer = event.source
        if layer is self.cube_layer:  # its training range may have changed
            self.redraw()
            return
        info = labels_info(layer)
        if info is None or info.kind != "clusters":
            return
        if layer is self.labels_layer:
            self._load_label_stats()
        else:
            self._follow_clusters(layer)

    def _choose_defaults(self) -> None:
        """Pick the newest clusters layer and a Shapes layer, if any, when opened."""
        for layer in reversed(list(self.viewer.layers)):
            if _kind(layer) == "clusters":
                self._follow_clusters(layer)
                break
        if self.labels_layer is None:
            labelled = [
                layer for layer in self.viewer.layers
                if _kind(layer) == "labels"
            ]
            if labelled:
                self.labels_combo.set_layer(labelled[-1])
        shapes = [layer for layer in self.viewer.layers if isinstance(layer, Shapes)]
        if shapes and self.regions_layer is None:
            self.regions_combo.set_layer(shapes[-1])

    def _follow_clusters(self, layer: Labels) -> None:
        """Plot a new clusters layer, over the cube it was computed from."""
        info = labels_info(layer)
        source = info.source_layer if info is not None else ""
        if source in self.viewer.layers and is_cube_layer(self.viewer.layers[source]):
            self.cube_combo.set_layer(self.viewer.layers[source])
        self.labels_combo.set_layer(layer)

    def _connect(self, role: str, layer: Layer | None, events: dict[str, Callable[..., Any]]) -> None:
        """Connect ``layer``'s events for ``role``, disconnecting the previous layer's."""
        previous = self._connected.pop(role, None)
        if previous is not None:
            for emitter, callback in previous[1]:
                emitter.disconnect(callback)
        if layer is None:
            return
        pairs = []
        for name, callback in events.items():
            emitter = getattr(layer.events, name, None)
            if emitter is not None:
                emitter.connect(callback)
                pairs.append((emitter, callback))
        self._connected[role] = (layer, pairs)

    def _on_elements_typed(self) -> None:
        """Mark the typed elements' lines; a word that is no element symbol is reported and the field kept."""
        try:
            picked = tuple(parse_elements(self.elements.text()))
        except InputError as error:
            show_error(str(error))
            return
        if picked != self.picked_elements:
            self.picked_elements = picked
            self.maps.elements_picked(picked)
            self.redraw()

    def _on_cube_changed(self, layer: Image | None) -> None:
        self._pixel = None
        self._load_label_stats()
        self._load_regions()

    def _on_labels_changed(self, layer: Labels | None) -> None:
        self._connect(
            "labels",
            layer,
            {
                "selected_label": self.redraw,
                "colormap": self.redraw,
                "data": self._on_labels_data,
                "paint": self._on_labels_painted,
            },
        )
        self._load_label_stats()

    def _on_labels_data(self, event: Any = None) -> None:
        self._load_label_stats()

    def _on_labels_painted(self, event: Any = None) -> None:
        # Painting makes any stored spectra stale: compute from the cube.
        self._load_label_stats(from_record=False)

    def _on_regions_changed(self, layer: Shapes | Labels | None) -> None:
        later = self._regions_changed
        events: dict[str, Callable[..., Any]] = {"data": self._on_regions_data}
        if isinstance(layer, Shapes):
            events.update(edge_color=later, features=later)
            name_shapes(layer)
        elif isinstance(layer, Labels):
            events.update(paint=later, colormap=later)
        self._connect("regions", layer, events)
        self._load_regions()

    def _on_regions_data(self, event: Any = None) -> None:
        action = str(getattr(event, "action", "") or "")
        if action in ("adding", "removing", "changing"):
            return  # the matching "added"/"removed"/"changed" follows
        layer = self.regions_layer
        if isinstance(layer, Shapes) and action == "added":
            name_shapes(layer)
        self._regions_changed()

    def _regions_changed(self, event: Any = None) -> None:
        """Recompute the regions' spectra at the next turn of the event loop."""
        self._regions_timer.start()

    def new_regions_layer(self) -> Shapes:
        """Add a Shapes layer for regions and plot its regions from now on."""
        layer = add_regions_layer(self.viewer)
        self.regions_combo.set_layer(layer)
        self.viewer.layers.selection.active = layer
        return layer

    # ------------------------------------------------------------ statistics

    def _needs_background(self, n_values: int) -> bool:
        layer = self.cube_layer
        return layer is not None and (
            is_lazy(layer.data) or n_values > _background.BACKGROUND_VALUES
        )

    def _next_token(self, kind: str) -> int:
        self._tokens[kind] += 1
        return self._tokens[kind]

    def _load_label_stats(self, event: Any = None, *, from_record: bool = True) -> None:
        """Cluster spectra from the layer's record, else computed from the cube."""
        token = self._next_token("labels")
        self._label_stats = {}
        cube, labels = self.cube_layer, self.labels_layer
        if cube is None or labels is None or labels.data.shape != image_shape(cube):
            self.redraw()
            return
        info = labels_info(labels)
        spectra = info.spectra if info is not None else None
        if from_record and spectra is not None and spectra.mean.shape[1] == cube.data.shape[0]:
            self._label_stats = {
                i + 1: SpectrumStats(spectra.mean[i], spectra.std[i], spectra.sizes[i])
                for i in range(len(spectra.sizes))
            }
            self.redraw()
            return
        n_channels = cube.data.shape[0]
        label_map = np.array(labels.data, copy=True)
        k = int(label_map.max()) if label_map.size else 0
        data = spectral_last(cube.data)

        def done(stats: list[SpectrumStats]) -> None:
            if token == self._tokens["labels"]:
                self._label_stats = {i + 1: s for i, s in enumerate(stats) if s.n_pixels}
                self.redraw()

        self.status.setText("computing cluster spectra…")
        _background.run(
            lambda: labels_stats(data, label_map, k), done,
            background=self._needs_background(label_map.size * n_channels), owner=self,
        )

    def _load_regions(self, event: Any = None) -> None:
        """Mean spectrum of each region of the regions layer."""
        token = self._next_token("regions")
        cube, layer = self.cube_layer, self.regions_layer
        if cube is None or layer is None:
            self._region_curves = []
            self.redraw()
            return
        regions = regions_of(layer, image_shape(cube))
        data = spectral_last(cube.data)
        n_values = sum(int(r.mask.sum()) for r in regions) * cube.data.shape[0]

        def compute() -> list[Curve]:
            return [
                Curve(region.name, mask_stats(data, region.mask).mean, region.color, style="--")
                for region in regions
            ]

        def done(curves: list[Curve]) -> None:
            if token == self._tokens["regions"]:
                self._region_curves = curves
                self.redraw()

        _background.run(compute, done, background=self._needs_background(n_values), owner=self)

    # ----------------------------------------------------------------- pixels

    def pick_pixel(self, row: int, col: int) -> None:
        """Plot the spectrum of pixel (row, col) and select its cluster."""
        cube = self.cube_layer
        if cube is None:
            return
        token = self._next_token("pixel")
        labels = self.labels_layer
        if labels is not None and labels.data.shape == image_shape(cube):
            label = int(labels.data[row, col])
            if label > 0:
                labels.selected_label = label

        def done(spectrum: np.ndarray) -> None:
            if token == self._tokens["pixel"]:
                self._pixel = (row, col, spectrum)
                self.redraw()

        data = cube.data
        _background.run(
            lambda: np.asarray(data[:, row, col], dtype=np.float64), done,
            background=is_lazy(data), owner=self,
        )

    def _on_mouse(self, viewer: Any, event: Any) -> Generator[None, None, None]:
        """A click (press and release without a drag) on the canvas picks a pixel."""
        if event.button != 1 or event.modifiers:
            return
        start = np.asarray(event.pos, dtype=float)
        yield
        while event.type == "mouse_move":
            yield
        moved = np.abs(np.asarray(event.pos, dtype=float) - start).max()
        cube = self.cube_layer
        if event.type == "mouse_release" and moved <= _CLICK_TOLERANCE and cube is not None:
            pixel = world_to_pixel(cube, tuple(event.position))
            if pixel is not None:
                self.pick_pixel(*pixel)

    # ------------------------------------------------------------------ plot

    def _cluster_curves(self) -> list[Curve]:
        labels = self.labels_layer
        if labels is None or not self._label_stats:
            return []
        if self.all_clusters.isChecked():
            chosen = sorted(self._label_stats)
        else:
            chosen = [labels.selected_label] if labels.selected_label in self._label_stats else []
        if not chosen:
            return []
        colors = label_colors(labels, np.asarray(chosen))
        info = labels_info(labels)
        names = info.class_names if info is not None else ()
        curves = []
        for label, color in zip(chosen, colors, strict=True):
            stats = self._label_stats[label]
            if label <= len(names):
                name = f"{label}: {names[label - 1]}"
            else:
                name = f"cluster {label}"
            std = None if self.all_clusters.isChecked() else stats.std
            curves.append(Curve(name, stats.mean, _opaque(color), std=std, width=1.6))
        return curves

    def _pixel_curve(self) -> list[Curve]:
        if self._pixel is None:
            return []
        row, col, spectrum = self._pixel
        return [
            Curve(f"pixel y={row} x={col}", spectrum, self.plot.colors["text"], width=0.8,
                  is_mean=False)
        ]

    def current_curves(self) -> list[Curve]:
        """Every curve to plot now: clusters, regions, then the clicked pixel."""
        return self._cluster_curves() + self._region_curves + self._pixel_curve()

    def redraw(self, *args: Any) -> None:
        """Draw every curve again from the widget's state."""
        figure = self.plot.figure
        figure.clear()
        axes = figure.add_subplot()
        self.plot.style_axes(axes)
        self.curves, self.lines = {}, {}
        self._marker = None
        cube = self.cube_layer
        if cube is None:
            self._hint(axes, "Open a spectral cube (File > Open, or File > Open Sample > DeepCube)")
            return
        axis = spectral_axis(cube)
        curves = self.current_curves()
        self.lines = draw_spectra(
            axes, axis, curves, self.plot.colors,
            log_y=self.log_y.isChecked(), element_lines=self.element_lines.isChecked(),
            elements=self.picked_elements,
        )
        make_line_names_pickable(figure)
        self.curves = {curve.name: curve for curve in curves}
        self._draw_training_range(axes, axis, training_range(cube))
        self._marker = axes.axvline(np.nan, color=_RANGE_COLOR, linewidth=1.0, alpha=0.9)
        self._move_marker()
        mismatch = self.shape_mismatch()
        if curves:
            self.plot.style_legend(axes, loc="upper right", ncols=2 if len(curves) > 6 else 1)
        else:
            self._hint(axes, mismatch or "Select a label, click a pixel or draw a region")
        self.status.setText(" · ".join(filter(None, [mismatch, self._status_text()])))
        self.plot.draw()

    def shape_mismatch(self) -> str | None:
        """Why the labels' spectra cannot be plotted over the cube, or None when they can."""
        cube, labels = self.cube_layer, self.labels_layer
        if cube is None or labels is None or labels.data.shape == image_shape(cube):
            return None
        return (
            f"The labels {labels.name!r} ({_size(labels.data.shape)}) do not cover the cube "
            f"{cube.name!r} ({_size(image_shape(cube))}): choose the labels made for this cube"
        )

    def _hint(self, axes: Axes, text: str) -> None:
        axes.text(
            0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", wrap=True,
            fontsize=FONT_SIZE, color=self.plot.colors["faint"],
        )
        self.status.setText("")
        self.plot.draw()

    def _status_text(self) -> str:
        parts = []
        labels = self.labels_layer
        if labels is not None and labels.selected_label in self._label_stats:
            stats = self._label_stats[labels.selected_label]
            if stats.n_pixels:
                parts.append(f"label {labels.selected_label}: {stats.n_pixels} pixels")
        if self._pixel is not None:
            parts.append(f"pixel y={self._pixel[0]} x={self._pixel[1]}")
        if self._region_curves:
            parts.append(f"{len(self._region_curves)} region(s)")
        cube = self.cube_layer
        chosen = training_range(cube) if cube is not None else ""
        if chosen:
            parts.append(f"runs learn from {chosen} {spectral_axis(cube).unit} (shaded)")
        dragged = "map that window" if self.maps.drag_maps_window else "choose what a run learns from"
        parts.append(f"click the plot to show that channel, drag to {dragged}")
        return " · ".join(parts)

    # -------------------------------------------------------- training range

    def _draw_training_range(self, axes: Axes, axis: SpectralAxis, text: str) -> None:
        """Shade the training range and let a drag across the axes choose a new one."""
        limits = axes.get_xlim()
        try:
            ranges = parse_ranges(text, whole=False, flag="the range")
        except InputError:  # being typed in the settings: the run will say what is wrong
            ranges = ()
        self.range_patches = [
            axes.axvspan(start, end, color=_RANGE_COLOR, alpha=_RANGE_ALPHA, linewidth=0, zorder=0)
            for start, end in ranges
        ]
        axes.set_xlim(limits)  # a range typed beyond the axis does not widen the plot
        self.clear_range_button.setEnabled(bool(ranges))
        spacing = float(np.median(np.abs(np.diff(axis.values)))) if axis.size > 1 else 1.0
        # The toolbar's zoom and pan lock the canvas's widgets, so a zoom is never a range.
        self._span = SpanSelector(
            axes, partial(self._on_span, spacing), "horizontal", button=MouseButton.LEFT,
            minspan=spacing, useblit=False,
            props={"facecolor": _RANGE_COLOR, "alpha": _RANGE_ALPHA},
        )

    def _on_span(self, spacing: float, start: float, end: float) -> None:
        """A drag across the plot: the training range, or that window's map (a click moves the slider)."""
        cube = self.cube_layer
        if cube is None or end - start < spacing:
            return
        low, high = _bound(start, spacing), _bound(end, spacing)
        if self.maps.drag_maps_window:
            self.maps.map_window(float(low), float(high))
        else:
            set_training_range(cube, f"{low}:{high}")

    def clear_training_range(self) -> None:
        """Let runs on the cube learn from every channel again."""
        if self.cube_layer is not None:
            set_training_range(self.cube_layer, "")

    # ---------------------------------------------------- slider <-> plot

    def _channel_axis(self) -> int:
        return self.viewer.dims.ndim - 3

    def _move_marker(self, event: Any = None) -> None:
        """Mark the channel shown by the slider."""
        cube = self.cube_layer
        if self._marker is None or cube is None:
            return
        channel = int(np.round(cube.world_to_data(self.viewer.dims.point)[0]))
        values = spectral_axis(cube).values
        if 0 <= channel < values.size:
            self._marker.set_xdata([values[channel], values[channel]])
            self.plot.draw()

    def _on_plot_click(self, event: MouseEvent) -> None:
        """Move the slider to the clicked channel (unless zooming or panning)."""
        cube = self.cube_layer
        toolbar = self.plot.toolbar
        if cube is None or event.inaxes is None or event.xdata is None or event.button != 1:
            return
        if toolbar is not None and str(toolbar.mode):
            return
        values = spectral_axis(cube).values
        channel = int(np.argmin(np.abs(values - event.xdata)))
        world = cube.data_to_world([channel, 0, 0])
        self.viewer.dims.set_point(self._channel_axis(), world[0])

    # ---------------------------------------------------------------- export

    def export_csv(self, path: str | Path) -> Path:
        """Write the plotted curves (and cluster std) as CSV columns; returns the path."""
        cube = self.cube_layer
        if cube is None or not self.curves:
            raise InputError("nothing is plotted yet; select a label, click a pixel or draw a region")
        axis = spectral_axis(cube)
        columns: dict[str, np.ndarray] = {}
        for name, curve in self.curves.items():
            columns[name] = curve.values
            if curve.std is not None:
                columns[f"{name} std"] = curve.std
        return write_spectra_csv(path, axis.values, axis.title, columns)

    def export_figure(self, path: str | Path) -> Path:
        """Save the plot as an image (PNG, SVG or PDF by suffix); returns the path."""
        path = Path(path)
        self.plot.figure.savefig(path, dpi=200, facecolor=self.plot.figure.get_facecolor())
        return path

    def _ask_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export spectra", "spectra.csv", "CSV (*.csv)")
        if path:
            try:
                self.export_csv(path)
            except InputError as error:
                show_error(str(error))

    def _ask_export_figure(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export figure", "spectra.png", "PNG image (*.png);;SVG image (*.svg)"
        )
        if path:
            self.export_figure(path)


def _bound(value: float, spacing: float) -> str:
    """``value`` with the decimals that tell one channel from the next, and no more."""
    decimals = max(0, int(np.ceil(-np.log10(spacing))) + 1) if spacing > 0 else 3
    return f"{value:.{decimals}f}"


def _size(shape: tuple[int, ...]) -> str:
    """``"48 × 64 pixels"`` for an (H, W) shape."""
    return " × ".join(str(n) for n in shape) + " pixels"


def _kind(layer: Layer) -> str | None:
    """What the plugin's record says a Labels layer is (None for any other layer)."""
    info = labels_info(layer)
    return info.kind if info is not None else None


def _opaque(color: np.ndarray) -> np.ndarray:
    color = np.array(color, dtype=np.float64)
    color[3] = 1.0
    return color


def _mouse_callback(widget: SpectrumPlotWidget) -> Callable[..., Generator[None, None, None]]:
    """A viewer mouse callback that does not keep the widget alive."""
    reference = weakref.ref(widget)

    def on_mouse(viewer: Any, event: Any) -> Generator[None, None, None]:
        target = reference()
        if target is not None:
            yield from target._on_mouse(viewer, event)

    return on_mouse
