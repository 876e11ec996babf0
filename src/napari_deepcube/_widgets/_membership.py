"""Soft memberships as napari layers: each cluster's probability map, and the uncertain pixels.

The mixture gives every pixel a probability for each cluster; the clusters
layer shows only the most probable. A probability layer per cluster shows
where a class fades into another (a glaze over a ground, gas between two
regions); the uncertain-pixels layer marks the pixels whose most probable
cluster is below a threshold. Layers of an earlier call are updated in place,
so the user's order, visibility and contrast stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels
from napari.utils.colormaps import Colormap

from ..core.palette import label_colors

if TYPE_CHECKING:
    import napari

    from ..core.segmentation import Segmentation

#: Colour of the uncertain pixels (label 1 of their layer).
UNCERTAIN_COLOR = np.array([1.0, 1.0, 1.0, 1.0])


def probability_name(cluster: int) -> str:
    """The name of cluster ``cluster``'s probability layer (clusters from 1)."""
    return f"probability {cluster}"


def uncertain_name(threshold: float) -> str:
    """The name of the uncertain-pixels layer."""
    return f"uncertain (< {threshold:.2f})"


def show_probability_maps(
    viewer: napari.viewer.Viewer, segmentation: Segmentation, cube_layer: Image
) -> list[Image]:
    """One image layer per cluster: its probability, from black to the cluster's colour.

    Added with additive blending, so that with all of them visible the view
    is the clusters' colours mixed in proportion to the probabilities.
    Probability layers of clusters beyond k (an earlier, larger k) are removed.
    """
    placement = {"scale": cube_layer.scale[-2:], "translate": cube_layer.translate[-2:]}
    colours = label_colors(segmentation.k)
    layers = []
    for cluster in range(1, segmentation.k + 1):
        name = probability_name(cluster)
        data = segmentation.probabilities[..., cluster - 1]
        colormap = Colormap(np.stack([[0.0, 0.0, 0.0, 1.0], colours[cluster]]), name=f"cluster {cluster}")
        if name in viewer.layers:
            layer = viewer.layers[name]
            layer.data, layer.colormap, layer.contrast_limits = data, colormap, (0.0, 1.0)
        else:
            layer = viewer.add_image(
                data, name=name, colormap=colormap, contrast_limits=(0.0, 1.0),
                blending="additive", axis_labels=("y", "x"), **placement,
            )
        layers.append(layer)
    extra = segmentation.k + 1
    while probability_name(extra) in viewer.layers:
        viewer.layers.remove(probability_name(extra))
        extra += 1
    return layers


def show_uncertain(
    viewer: napari.viewer.Viewer, segmentation: Segmentation, cube_layer: Image, threshold: float
) -> Labels:
    """A labels layer marking (label 1) the segmented pixels whose confidence is below ``threshold``."""
    from napari.utils.colormaps import DirectLabelColormap

    placement = {"scale": cube_layer.scale[-2:], "translate": cube_layer.translate[-2:]}
    data = segmentation.uncertain(threshold).astype(np.uint8)
    colormap = DirectLabelColormap(color_dict={0: np.zeros(4), 1: UNCERTAIN_COLOR, None: UNCERTAIN_COLOR})
    name = uncertain_name(threshold)
    for layer in [layer for layer in viewer.layers if layer.name.startswith("uncertain (< ")]:
        if layer.name != name:
            viewer.layers.remove(layer)
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        return layer
    return viewer.add_labels(data, name=name, colormap=colormap, opacity=0.8, **placement)
