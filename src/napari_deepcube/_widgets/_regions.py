"""Regions of interest: shapes drawn or labels painted by the user, as named, coloured masks.

A Shapes layer gives one region per shape: named from its ``name`` feature
(R1, R2... when the plugin names it) and coloured like its edge. A painted
Labels layer gives one region per label value, coloured like the label.
Shapes drawn on a 3-D layer (over the cube's slider) are projected on the
image plane: a region is the same on every channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from napari.layers import Labels, Layer, Shapes

#: Edge colours given to new shapes, bright on a dark canvas and unlike the
#: cluster palette's first colours.
REGION_COLORS = np.array(
    [
        [0.0, 0.9, 1.0, 1.0],  # cyan
        [1.0, 0.25, 0.5, 1.0],  # pink
        [1.0, 0.92, 0.0, 1.0],  # yellow
        [0.46, 1.0, 0.01, 1.0],  # lime
        [0.88, 0.25, 0.98, 1.0],  # violet
        [1.0, 1.0, 1.0, 1.0],  # white
    ]
)
NAME = "name"


@dataclass(frozen=True)
class Region:
    """One region of interest."""

    name: str
    color: np.ndarray
    mask: np.ndarray


def regions_of(layer: Layer | None, image_shape: tuple[int, int]) -> list[Region]:
    """The regions of a Shapes or Labels layer over an image of ``image_shape`` (H, W)."""
    if isinstance(layer, Shapes):
        return _shape_regions(layer, image_shape)
    if isinstance(layer, Labels):
        return _painted_regions(layer, image_shape)
    return []


def _shape_regions(layer: Shapes, image_shape: tuple[int, int]) -> list[Region]:
    if layer.nshapes == 0:
        return []
    if layer.ndim == 2:
        masks = layer.to_masks(mask_shape=image_shape)
    else:
        flat = Shapes([np.asarray(d)[:, -2:] for d in layer.data], shape_type=layer.shape_type)
        masks = flat.to_masks(mask_shape=image_shape)
    names = _names(layer)
    colors = _shape_colors(layer)
    return [
        Region(names[i], colors[i], np.asarray(masks[i], dtype=bool)) for i in range(layer.nshapes)
    ]


def _names(layer: Shapes) -> list[str]:
    if NAME in layer.features:
        values = [str(v) for v in layer.features[NAME]]
        return [v if v and v != "nan" else f"region {i + 1}" for i, v in enumerate(values)]
    return [f"region {i + 1}" for i in range(layer.nshapes)]


def _shape_colors(layer: Shapes) -> np.ndarray:
    """Edge colours, or face colours where the edge is invisible."""
    edges = np.asarray(layer.edge_color, dtype=np.float64)
    faces = np.asarray(layer.face_color, dtype=np.float64)
    widths = np.asarray(layer.edge_width, dtype=np.float64)
    invisible = (edges[:, 3] == 0) | (widths == 0)
    colors = np.where(invisible[:, None], faces, edges)
    colors[:, 3] = 1.0
    return colors


def _painted_regions(layer: Labels, image_shape: tuple[int, int]) -> list[Region]:
    data = np.asarray(layer.data)
    if data.ndim > 2:
        # Painted on one channel of a 3-D layer: a pixel belongs where it was painted.
        data = data.reshape(-1, *data.shape[-2:]).max(axis=0)
    if data.shape != image_shape:
        return []
    values = np.unique(data)
    values = values[values > 0]
    colors = np.atleast_2d(layer.colormap.map(values.astype(layer.data.dtype)))
    return [
        Region(f"{layer.name} {int(v)}", np.asarray(colors[i], dtype=np.float64), data == v)
        for i, v in enumerate(values)
    ]


def name_shapes(layer: Shapes) -> None:
    """Give every unnamed shape a name (R1, R2...) and a distinct edge colour.

    Called when shapes are added (a new shape gets the layer's default
    feature values, so an empty or repeated name), so that each region is
    told apart in the image and in the plot. Shapes already named keep their
    name and colour.
    """
    if layer.nshapes == 0:
        return
    features = layer.features.copy()
    if NAME not in features:
        features[NAME] = pd.Series([""] * layer.nshapes, dtype=object)
    taken: set[str] = set()
    unnamed = []
    for index, value in enumerate(features[NAME]):
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        if text and text not in taken:
            taken.add(text)
        else:
            unnamed.append(index)
    if not unnamed:
        return
    edges = np.asarray(layer.edge_color, dtype=np.float64).copy()
    number = 1
    for index in unnamed:
        while f"R{number}" in taken:
            number += 1
        name = f"R{number}"
        taken.add(name)
        features.at[index, NAME] = name
        edges[index] = REGION_COLORS[(number - 1) % len(REGION_COLORS)]
    layer.features = features
    layer.edge_color = edges


def add_regions_layer(viewer: object, name: str = "regions") -> Shapes:
    """A 2-D Shapes layer for regions, in rectangle mode, with the region names shown."""
    layer = viewer.add_shapes(  # type: ignore[attr-defined]
        ndim=2,
        name=name,
        edge_width=2,
        edge_color=REGION_COLORS[0],
        face_color=[0.0, 0.0, 0.0, 0.0],
        features=pd.DataFrame({NAME: pd.Series([], dtype=object)}),
        text={"string": "{name}", "color": "white", "size": 9, "anchor": "upper_left"},
        axis_labels=("y", "x"),
    )
    layer.mode = "add_rectangle"
    return layer


def covered_pixels(layer: Labels | Shapes, image_shape: tuple[int, int]) -> np.ndarray:
    """What a mask layer covers: a Labels layer's values (0 = outside), or the union of its shapes."""
    if isinstance(layer, Labels):
        return np.asarray(layer.data)
    covered = np.zeros(image_shape, dtype=bool)
    for region in _shape_regions(layer, image_shape):
        covered |= region.mask
    return covered
