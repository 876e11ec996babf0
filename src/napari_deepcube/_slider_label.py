"""The spectral slider named in the cube's units: "10.55 keV", not a channel number.

napari 0.9's dims slider shows the channel index and its count; the only
text of its own is the axis label beside it (``viewer.dims.axis_labels``).
So the label carries the spectral coordinate of the channel shown, taken
from the cube layer's :class:`~._layer_records.CubeRecord`: the active
layer when it is a cube, else the topmost visible one. The value and unit
only: napari gives the label at most a fifth of the slider's width, which on
a 1366-pixel laptop screen with the docks open cut "Energy 10.55 keV" to
"Energy 10.5…"; the unit says which quantity it is. napari writes the
layers' own label ("Energy") back whenever layers change; the label is
written again after it.

napari model objects only (no Qt): the reader installs it when it opens a
cube, the widgets when they open.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image

from ._widgets._layers import is_cube_layer, spectral_axis

if TYPE_CHECKING:
    import napari

#: The name that marks this module's callback among a viewer's.
_MARK = "_deepcube_spectral_slider_label"


def follow_spectral_slider(viewer: napari.viewer.Viewer) -> None:
    """Keep ``viewer``'s spectral slider labelled in spectral units (once per viewer)."""
    if any(getattr(callback, "__name__", "") == _MARK
           for callback in viewer.dims.events.current_step.callbacks):
        return
    viewer_ref = weakref.ref(viewer)

    def label_the_slider(event: object = None) -> None:
        shown = viewer_ref()
        if shown is not None:
            write_label(shown)

    label_the_slider.__name__ = _MARK
    viewer.dims.events.current_step.connect(label_the_slider)
    viewer.dims.events.axis_labels.connect(label_the_slider)
    viewer.layers.events.inserted.connect(label_the_slider)
    viewer.layers.events.removed.connect(label_the_slider)
    viewer.layers.selection.events.active.connect(label_the_slider)
    label_the_slider()


def write_label(viewer: napari.viewer.Viewer) -> None:
    """Write the spectral coordinate of the channel shown into the slider's label.

    Without a calibrated cube in view the label is the layers' own again.
    """
    own = viewer.layers.axis_labels
    if viewer.dims.ndim < 3 or len(own) != viewer.dims.ndim:
        return
    position = viewer.dims.ndim - 3
    text = slider_text(viewer) or own[position]
    labels = list(viewer.dims.axis_labels)
    if labels[position] != text:
        labels[position] = text
        viewer.dims.axis_labels = tuple(labels)


def slider_text(viewer: napari.viewer.Viewer) -> str | None:
    """"10.55 keV" for the channel the slider shows, None without a calibrated cube."""
    if viewer.dims.ndim < 3:
        return None
    cube = _shown_cube(viewer)
    if cube is None:
        return None
    axis = spectral_axis(cube)
    if not axis.calibrated:
        return None
    channel = int(np.round(cube.world_to_data(viewer.dims.point)[0]))
    if not 0 <= channel < axis.size:
        return None
    value = f"{axis.values[channel]:.4g}"
    return f"{value} {axis.unit}" if axis.unit else f"{axis.label} {value}"


def _shown_cube(viewer: napari.viewer.Viewer) -> Image | None:
    """The active layer when it is a cube, else the topmost visible cube."""
    active = viewer.layers.selection.active
    candidates = [active, *reversed(list(viewer.layers))]
    for layer in candidates:
        if is_cube_layer(layer) and (layer is active or layer.visible):
            return layer
    return None
