"""A combo box of the viewer's layers of one kind, that keeps its choice across changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from napari.layers import Layer
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox

if TYPE_CHECKING:
    import napari

#: Text of the empty choice.
NONE = "(none)"


class LayerCombo(QComboBox):
    """Layers of the viewer accepted by ``accept``, refreshed when layers come, go or are renamed.

    Parameters
    ----------
    viewer
        The viewer.
    accept
        Which layers to list.
    allow_none
        Offer an empty choice first.

    Signals
    -------
    layer_changed(object)
        The chosen layer (or None) after the user or a refresh changed it.
    """

    layer_changed = Signal(object)

    def __init__(
        self,
        viewer: napari.viewer.Viewer,
        accept: Callable[[Layer], bool],
        *,
        allow_none: bool = False,
    ) -> None:
        super().__init__()
        self._viewer = viewer
        self._accept = accept
        self._allow_none = allow_none
        self._layers: list[Layer | None] = []
        self._current: Layer | None = None
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(10)
        self.currentIndexChanged.connect(self._on_index)
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self.refresh)
        viewer.layers.events.moved.connect(self.refresh)
        for layer in viewer.layers:
            layer.events.name.connect(self.refresh)
        self.refresh()

    @property
    def layer(self) -> Layer | None:
        """The chosen layer."""
        return self._current

    def set_layer(self, layer: Layer | None) -> None:
        """Choose ``layer`` (ignored when it is not an accepted layer of the viewer)."""
        if layer not in self._layers:
            self.refresh()
        if layer in self._layers:
            self.setCurrentIndex(self._layers.index(layer))

    def _on_inserted(self, event: Any) -> None:
        event.value.events.name.connect(self.refresh)
        self.refresh()

    def refresh(self, event: Any = None) -> None:
        """List the accepted layers again, keeping the current choice when it still exists."""
        keep = self._current
        layers: list[Layer | None] = [None] if self._allow_none else []
        layers += [layer for layer in self._viewer.layers if self._accept(layer)]
        self.blockSignals(True)
        self.clear()
        self._layers = layers
        self.addItems([NONE if layer is None else layer.name for layer in layers])
        if keep in layers:
            self.setCurrentIndex(layers.index(keep))
        self.blockSignals(False)
        self._on_index(self.currentIndex())

    def _on_index(self, index: int) -> None:
        layer = self._layers[index] if 0 <= index < len(self._layers) else None
        if layer is not self._current:
            self._current = layer
            self.layer_changed.emit(layer)
