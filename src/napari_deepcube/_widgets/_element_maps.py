"""Element and window maps from the "Cluster spectra" dock: image layers of a few channels.

The controls are a row of the dock's form and a check box of its options.
Typed lines (``Pb La, Fe Ka``, filled with the main line of each element
typed in the Elements field) give one "Pb Lα net counts" image layer each,
or one RGB composite of the first three; a click on a line's name on the
plot maps that line; with "drag maps" checked a drag across the plot maps
the dragged window of any cube rather than choosing the training range.
The background windows avoid the lines of every element the plot names or
the user typed (see :func:`~..core.element_maps.line_window`).

The maps are computed by :mod:`~..core.element_maps`, off the GUI thread
when the cube is lazy or big; each layer keeps what it measures in its
:class:`~.._layer_records.MapsRecord`, which "Export maps…" writes as a
float32 TIFF stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backend_bases import PickEvent
from matplotlib.figure import Figure
from matplotlib.text import Text
from napari.layers import Image
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QCheckBox, QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QWidget

from .._layer_records import MapsRecord, maps_record, with_record
from ..core.element_maps import (
    MapWindow,
    compute_maps,
    display_limits,
    line_window,
    main_lines,
    parse_lines,
    range_window,
    rgb_composite,
    window_statistic,
)
from ..core.errors import InputError
from ..core.io.maps import write_maps_tiff
from ..core.xray_lines import ELEMENTS
from . import _background
from ._layers import image_shape, is_lazy, spectral_axis, spectral_last

if TYPE_CHECKING:
    import napari

#: Colormap of a single map: dark where the element is absent.
MAP_COLORMAP = "inferno"
#: Most maps an RGB composite shows.
RGB_MAPS = 3


class ElementMapControls(QWidget):
    """The map row of the spectrum dock (lines to map, RGB, export) and its drag-mode check box.

    The owner places the widget in its form and :attr:`drag_maps` among its options.

    Parameters
    ----------
    viewer
        The napari viewer the map layers are added to.
    cube_layer
        Gives the cube layer the spectrum plot shows (None when none).
    present_elements
        Gives the elements that may be present: those typed or named on the plot.
    """

    def __init__(
        self,
        viewer: napari.viewer.Viewer,
        cube_layer: Callable[[], Image | None],
        present_elements: Callable[[], Sequence[str]],
    ) -> None:
        super().__init__()
        self.viewer = viewer
        self._cube_layer = cube_layer
        self._present = present_elements
        self._filled = ""
        self.lines = QLineEdit()
        self.lines.setPlaceholderText("e.g. Pb La, Fe Ka")
        self.lines.setToolTip(
            "X-ray lines to map as net counts (the background under each line removed); "
            "filled from the Elements field. A click on a line's name on the plot maps it too"
        )
        self.map_button = QPushButton("Map")
        self.map_button.setToolTip("One image layer of net counts per line")
        self.map_button.clicked.connect(lambda: self.map_lines())
        self.rgb_button = QPushButton("RGB")
        self.rgb_button.setToolTip("The first three lines as the red, green and blue of one image layer")
        self.rgb_button.clicked.connect(lambda: self.map_rgb())
        self.drag_maps = QCheckBox("drag maps")
        self.drag_maps.setToolTip(
            "Checked: a drag across the plot maps the dragged window (sum of counts, mean of "
            "fluxes). Unchecked: it chooses the spectral range a segmentation run learns from"
        )
        export = QPushButton("Export maps…")
        export.setToolTip("Save every element and window map of this cube as a float32 TIFF stack")
        export.clicked.connect(self._ask_export)

        layout = QHBoxLayout()
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.lines, 1)
        for button in (self.map_button, self.rgb_button, export):
            layout.addWidget(button)
        self.setLayout(layout)

    @property
    def drag_maps_window(self) -> bool:
        """True when a drag across the plot maps the window rather than setting the training range."""
        return self.drag_maps.isChecked()

    def elements_picked(self, elements: Sequence[str]) -> None:
        """Fill the lines with the main line of each picked element, unless the user typed others."""
        cube = self._cube_layer()
        if cube is None or self.lines.text() not in ("", self._filled):
            return
        self._filled = ", ".join(line.display_name for line in main_lines(elements, spectral_axis(cube)))
        self.lines.setText(self._filled)

    # ---------------------------------------------------------------- mapping

    def map_lines(self, text: str | None = None) -> None:
        """Add (or update) one net-count layer per typed line."""
        windows = self._line_windows(self.lines.text() if text is None else text)
        if windows:
            self._compute(windows, lambda cube, maps: [
                self._show_map(cube, window, image) for window, image in zip(windows, maps, strict=True)
            ])

    def map_rgb(self, text: str | None = None) -> None:
        """Add (or update) an RGB composite of the first three typed lines."""
        windows = self._line_windows(self.lines.text() if text is None else text)[:RGB_MAPS]
        if windows:
            self._compute(windows, lambda cube, maps: self._show_rgb(cube, windows, maps))

    def map_window(self, start: float, stop: float) -> None:
        """Add (or update) the map of the window [start, stop] of the cube's spectral axis."""
        cube = self._cube_layer()
        if cube is None:
            return
        axis = spectral_axis(cube)
        try:
            window = range_window(axis, start, stop, window_statistic(axis))
        except InputError as error:
            show_error(str(error))
            return
        self._compute([window], lambda cube, maps: self._show_map(cube, window, maps[0]))

    def on_pick(self, event: PickEvent) -> None:
        """A click on a line's name on the plot (``"Pb Lα"``) maps that line."""
        artist = event.artist
        if isinstance(artist, Text) and _element_of(artist.get_text()):
            self.map_lines(artist.get_text().strip())

    def _line_windows(self, text: str) -> list[MapWindow]:
        cube = self._cube_layer()
        if cube is None:
            show_error("Open an X-ray cube first: element maps are computed from its spectra")
            return []
        axis = spectral_axis(cube)
        try:
            present = tuple(self._present())
            return [line_window(axis, line, present=present) for line in parse_lines(text)]
        except InputError as error:
            show_error(str(error))
            return []

    def _compute(self, windows: list[MapWindow], done: Callable[[Image, np.ndarray], Any]) -> None:
        """``done(cube layer, maps)`` once the windows' maps are computed, off the GUI thread
        for lazy or big cubes."""
        cube = self._cube_layer()
        if cube is None:
            return
        data = spectral_last(cube.data)
        height, width = image_shape(cube)
        n_values = height * width * sum(window.weights.size for window in windows)
        _background.run(
            lambda: compute_maps(data, windows), lambda maps: done(cube, maps),
            background=is_lazy(cube.data) or n_values > _background.BACKGROUND_VALUES, owner=self,
        )

    # ----------------------------------------------------------------- layers

    def _show_map(self, cube: Image, window: MapWindow, image: np.ndarray) -> Image:
        record = MapsRecord((window.title,), cube.name, (window.facts(),))
        return self._put_layer(
            cube, window.title, image, rgb=False, record=record,
            colormap=MAP_COLORMAP, contrast_limits=display_limits(image),
        )

    def _show_rgb(self, cube: Image, windows: list[MapWindow], maps: np.ndarray) -> Image:
        names = tuple(window.title for window in windows)
        record = MapsRecord(names, cube.name, tuple(w.facts() for w in windows), maps)
        title = "RGB " + " · ".join(window.name for window in windows)
        return self._put_layer(cube, title, rgb_composite(list(maps)), rgb=True, record=record)

    def _put_layer(
        self, cube: Image, name: str, data: np.ndarray, *, rgb: bool, record: MapsRecord, **style: Any
    ) -> Image:
        """Update the map layer called ``name``, or add one over ``cube``'s image."""
        existing = self.viewer.layers[name] if name in self.viewer.layers else None
        if isinstance(existing, Image) and maps_record(existing.metadata) is not None and existing.rgb == rgb:
            existing.data = data
            existing.metadata = with_record(existing.metadata, record)
            if "contrast_limits" in style:
                existing.contrast_limits = style["contrast_limits"]
            return existing
        return self.viewer.add_image(
            data, name=name, rgb=rgb, metadata=with_record({}, record),
            scale=cube.scale[-2:], translate=cube.translate[-2:], **style,
        )

    # ----------------------------------------------------------------- export

    def map_layers(self) -> list[Image]:
        """The element and window map layers over the current cube's image, bottom to top."""
        cube = self._cube_layer()
        if cube is None:
            return []
        shape = image_shape(cube)
        return [
            layer for layer in self.viewer.layers
            if isinstance(layer, Image) and _maps_of(layer) is not None
            and layer.data.shape[:2] == shape
        ]

    def export(self, path: str | Path) -> Path:
        """Write every map layer's maps (one page per map, no repeats) as a float32 TIFF; returns the path.

        Raises
        ------
        InputError
            When there is no map to write, or the file cannot be written.
        """
        pages: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
        for layer in self.map_layers():
            maps, facts = _maps_of(layer)  # type: ignore[misc]
            for image, fact in zip(maps, facts, strict=True):
                pages.setdefault(f"{fact['name']} {fact['quantity']}", (image, fact))
        if not pages:
            raise InputError("no element or window map of this cube to export; map a line or a window first")
        maps = np.stack([image for image, _ in pages.values()])
        return write_maps_tiff(path, maps, [fact for _, fact in pages.values()])

    def _ask_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export maps", "maps.tif", "TIFF (*.tif *.tiff)")
        if path:
            try:
                self.export(path)
            except InputError as error:
                show_error(str(error))


def _maps_of(layer: Image) -> tuple[np.ndarray, tuple[dict[str, Any], ...]] | None:
    """The maps (n, H, W) behind a map layer and what each measures; None for other layers."""
    record = maps_record(layer.metadata)
    if record is None or not record.windows:
        return None
    if record.values is not None:
        return np.asarray(record.values), record.windows
    return np.asarray(layer.data)[None], record.windows


def _element_of(text: str) -> str | None:
    """The element a line name on the plot starts with (``" Pb Lα"`` -> ``"Pb"``), None for other text."""
    words = text.split()
    return words[0] if len(words) == 2 and words[0] in ELEMENTS else None


def named_elements(figure: Figure) -> tuple[str, ...]:
    """The elements whose lines the plot names, in the order drawn."""
    found = [_element_of(text.get_text()) for axes in figure.axes for text in axes.texts]
    return tuple(dict.fromkeys(element for element in found if element))


def make_line_names_pickable(figure: Figure) -> None:
    """Let a click on a line's name on the plot raise a pick event."""
    for axes in figure.axes:
        for text in axes.texts:
            if _element_of(text.get_text()):
                text.set_picker(True)
