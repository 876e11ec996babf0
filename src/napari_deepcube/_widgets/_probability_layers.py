"""Soft memberships in the viewer and on disk: each cluster's probability map, and the uncertain pixels.

A cluster's probability map is an Image layer named after the cluster
("cluster 3 probability"), drawn from black to the cluster's colour in the
clusters layer, with additive blending: shown together, the maps mix the
clusters' colours in proportion to each pixel's probabilities, so a pixel
the model hesitates over shows a blend. The uncertain pixels are a Labels
layer (1 where a segmented pixel's confidence is under the threshold), so
that it serves as a region like any painted one (the spectrum plot's
regions, the editor's Assign).

The label map's TIFF export writes the probabilities beside it, as the
command line's ``--probabilities`` does (:mod:`..core.io.probabilities`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels
from napari.utils.colormaps import Colormap, DirectLabelColormap

from .._writer import label_colors_of, labels_tiff_record
from ..core.io.labels import write_labels_tiff
from ..core.io.outputs import output_transaction
from ..core.io.probabilities import write_probabilities_tiff
from ._layers import label_colors

if TYPE_CHECKING:
    import napari

    from ..core.segmentation import Segmentation

#: Name of the uncertain pixels' layer.
UNCERTAIN_NAME = "uncertain pixels"
#: Colour of the uncertain pixels (magenta: unlike the cluster palette's first colours).
UNCERTAIN_COLOR = np.array([1.0, 0.0, 1.0, 1.0])


def probability_name(cluster: int) -> str:
    """The layer name of cluster ``cluster``'s probability map."""
    return f"cluster {cluster} probability"


def show_probability_maps(
    viewer: napari.viewer.Viewer, segmentation: Segmentation, clusters: Labels, shown: list[Image]
) -> list[Image]:
    """Show each cluster's probability map, updating the layers ``shown`` before; returns the layers.

    Layers of clusters the segmentation no longer has are removed.
    """
    layers = [layer for layer in shown if layer in viewer.layers]
    colors = label_colors(clusters, np.arange(1, segmentation.k + 1))
    result = []
    for index in range(segmentation.k):
        data = segmentation.probabilities[..., index]
        name = probability_name(index + 1)
        colormap = _cluster_colormap(colors[index])
        if index < len(layers):
            layer = layers[index]
            layer.data, layer.colormap, layer.name = data, colormap, name
        else:
            layer = viewer.add_image(
                data, name=name, colormap=colormap, contrast_limits=(0.0, 1.0), blending="additive",
                scale=clusters.scale, translate=clusters.translate, axis_labels=("y", "x"),
            )
        result.append(layer)
    for layer in layers[segmentation.k :]:
        viewer.layers.remove(layer)
    return result


def _cluster_colormap(color: np.ndarray) -> Colormap:
    rgb = np.asarray(color, dtype=np.float64)[:3]
    # Named by its colour: napari keeps colormaps by name, and a cluster's colour changes with k.
    hex_code = "".join(f"{round(v * 255):02x}" for v in rgb)
    return Colormap(np.array([[0.0, 0.0, 0.0, 1.0], [*rgb, 1.0]]), name=f"deepcube #{hex_code}")


def show_uncertain(
    viewer: napari.viewer.Viewer,
    segmentation: Segmentation,
    clusters: Labels,
    threshold: float,
    shown: Labels | None,
) -> Labels:
    """Show the segmented pixels whose confidence is under ``threshold`` (1) in a Labels layer."""
    data = segmentation.uncertain(threshold).astype(np.uint8)
    if shown is not None and shown in viewer.layers:
        shown.data = data
        return shown
    return viewer.add_labels(
        data, name=UNCERTAIN_NAME, opacity=0.8,
        colormap=DirectLabelColormap(color_dict={0: np.zeros(4), 1: UNCERTAIN_COLOR, None: UNCERTAIN_COLOR}),
        scale=clusters.scale, translate=clusters.translate, axis_labels=("y", "x"),
    )


def probabilities_path(labels_path: str | Path) -> Path:
    """Where the probabilities go beside a label map: ``clusters.tif`` -> ``clusters_probabilities.tif``."""
    path = Path(labels_path)
    return path.with_name(f"{path.stem}_probabilities{path.suffix or '.tif'}")


def export_labels_and_probabilities(
    path: str | Path, clusters: Labels, segmentation: Segmentation
) -> tuple[Path, Path]:
    """Write the label map to ``path`` and the probabilities beside it, both or neither.

    The label map is the one the napari writer makes (colours, the layer's
    record); the probabilities are k float32 pages (:func:`probabilities_path`).
    """
    metadata: dict[str, Any] = dict(clusters.metadata)
    record = labels_tiff_record(metadata, name=clusters.name)
    source = record.get("source")
    labels = np.asarray(clusters.data)
    beside = probabilities_path(path)
    with output_transaction(inputs=[Path(source)] if isinstance(source, str) and source else []):
        write_labels_tiff(path, labels, colors=label_colors_of(clusters.colormap, labels), metadata=record)
        write_probabilities_tiff(
            beside, segmentation.probabilities, metadata={"cube": segmentation.cube_name}
        )
    return Path(path), beside
