"""A segmentation shown as napari layers, and written as TIFF and CSV.

The "clusters" Labels layer carries the segmentation in its
:class:`~.._layer_records.LabelsRecord` (mean and std spectra, sizes, the
cube layer it came from, and the segmentation itself): all the spectrum plot
and the TIFF writer need, and what a segmentation widget opened later finds
again.
A run's layers are made when it starts (:func:`start_results`) and only
filled at the end; a second run on the same cube updates its layers in
place, so the user's layer order, visibility and selected label stay.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels, Layer

from .._layer_records import ClusterSpectra, LabelsRecord, SegmentationRun
from .._reader import label_colormap, labels_layer_data
from ..core.io.results import write_spectra_csv
from ..core.pixel_maps import PixelMap
from ._layers import image_shape, source_file

if TYPE_CHECKING:
    import napari

    from ..core.cube import Datacube
    from ..core.segmentation import Segmentation

CLUSTERS_NAME = "clusters"
PREVIEW_NAME = "clusters (preview)"
CONFIDENCE_NAME = "confidence"
#: The layer of each pixel's line-of-sight velocity (km/s) in a rest-frame run.
VELOCITIES_NAME = "velocity (km/s)"
#: Pixels read to set a map's contrast limits.
_LIMIT_PIXELS = 2**20


@dataclass
class ResultLayers:
    """The layers showing one cube's segmentation (no confidence layer: none known yet)."""

    clusters: Labels
    confidence: Image | None
    latents: list[Image] = field(default_factory=list)
    velocities: Image | None = None


def clusters_record(segmentation: Segmentation, cube: Datacube, cube_layer: Image) -> LabelsRecord:
    """The record of a clusters layer: the segmentation's facts and the segmentation itself."""
    return LabelsRecord(
        kind="clusters",
        k=segmentation.k,
        source=source_file(cube_layer),
        source_layer=cube_layer.name,
        k_reason=segmentation.k_reason,
        axis=segmentation.axis,
        spectra=ClusterSpectra(
            np.asarray(segmentation.mean_spectra), np.asarray(segmentation.std_spectra),
            tuple(segmentation.cluster_sizes),
        ),
        run=SegmentationRun(segmentation, cube),
    )


def start_results(
    viewer: napari.viewer.Viewer, cube_layer: Image, *, preview_labels: int
) -> ResultLayers:
    """Add the layer a run will fill: the preview map, which becomes the clusters layer.

    Made when the run starts, because adding a layer costs napari a few
    hundred milliseconds on the GUI thread: during the run it only changes
    data, so the viewer stays responsive. It has the cube's full size
    (previews are written into it in place, see :func:`show_preview`). The
    confidence layer is added with the result, in a turn of the event loop of
    its own: added here too, the click on Train held the viewer 0.26 s.
    """
    height, width = image_shape(cube_layer)
    placement = {"scale": cube_layer.scale[-2:], "translate": cube_layer.translate[-2:]}
    data, kwargs, _ = labels_layer_data(
        np.zeros((height, width), dtype=np.uint8), name=PREVIEW_NAME,
        record=LabelsRecord(kind="preview"),
    )
    kwargs["colormap"] = label_colormap(preview_labels)
    preview = viewer.add_labels(data, **kwargs, **placement)
    viewer.layers.selection.active = preview
    return ResultLayers(preview, None)


def show_preview(layer: Labels, preview: np.ndarray, stride: int) -> None:
    """Show ``preview``, a cluster map sampled every ``stride`` pixels, in ``layer``.

    Written into the layer's array in place, each sample filling its
    ``stride`` x ``stride`` block: a new array would make napari rebuild the
    layer's colour shader and, when its shape changes, its texture, which
    doubles the GUI thread's work for each preview.
    """
    blocks = np.repeat(np.repeat(preview, stride, axis=0), stride, axis=1)
    height, width = layer.data.shape
    layer.data[...] = blocks[:height, :width]
    layer.refresh()


def discard(viewer: napari.viewer.Viewer, layers: ResultLayers) -> None:
    """Remove the layers of a run that made no result (cancelled or failed)."""
    for layer in (layers.clusters, layers.confidence, *layers.latents):
        if layer is not None and layer in viewer.layers:
            viewer.layers.remove(layer)


def show_results(
    viewer: napari.viewer.Viewer,
    run: SegmentationRun,
    cube_layer: Image,
    *,
    latent_layers: bool,
    existing: ResultLayers | None = None,
    fresh: ResultLayers | None = None,
) -> Generator[None, None, ResultLayers]:
    """Show a segmentation in the clusters, confidence and latent layers, step by step.

    A generator: each ``next`` does one step (a layer's update costs napari
    tens of milliseconds on the GUI thread, and the canvas redraw after it as
    much again), so that a widget can give each step its own turn of the
    event loop. Its return value is the layers shown.

    Parameters
    ----------
    viewer
        The viewer.
    run
        The segmentation and the cube it segments.
    cube_layer
        The cube layer it segments; the layers overlay it.
    latent_layers
        Also show each latent dimension as an Image layer.
    existing
        Layers of a previous run on this cube: updated in place when still in
        the viewer, so the user's layer order and settings stay.
    fresh
        The layers :func:`start_results` made for this run: used where
        ``existing`` has none, removed otherwise. Layers are added only when
        neither is there (a re-clustering of a run whose layers were deleted).
    """
    segmentation = run.segmentation
    placement = {"scale": cube_layer.scale[-2:], "translate": cube_layer.translate[-2:]}
    labels, kwargs, _ = labels_layer_data(
        segmentation.labels, name=CLUSTERS_NAME,
        record=clusters_record(segmentation, run.cube, cube_layer),
    )
    clusters = _pick(viewer, existing and existing.clusters, fresh and fresh.clusters)
    if clusters is None:
        clusters = viewer.add_labels(labels, **kwargs, **placement)
    else:
        # Metadata first: the spectrum plot reads it when the data event fires.
        clusters.metadata = kwargs["metadata"]
        clusters.colormap = kwargs["colormap"]
        yield
        # Each placement change re-slices the layer: only the ones that change.
        for name, value in placement.items():
            if not np.array_equal(getattr(clusters, name), value):
                setattr(clusters, name, value)
        clusters.data = labels
        if clusters.name == PREVIEW_NAME:
            clusters.name = CLUSTERS_NAME
    yield
    confidence = _image(
        viewer, _pick(viewer, existing and existing.confidence, fresh and fresh.confidence),
        segmentation.confidence, name=CONFIDENCE_NAME, colormap="viridis",
        contrast_limits=(0.0, 1.0), **placement,
    )
    latents: list[Image] = []
    if latent_layers:
        previous = existing.latents if existing else []
        for dim in range(segmentation.latents.shape[-1]):
            yield
            values = segmentation.latents[..., dim]
            latents.append(
                _image(
                    viewer, previous[dim] if dim < len(previous) else None, values,
                    name=f"latent {dim + 1}", colormap="twilight_shifted",
                    contrast_limits=_limits(values), **placement,
                )
            )
    velocities = None
    stale = _pick(viewer, existing and existing.velocities, None)
    if segmentation.velocities is None and stale is not None:
        viewer.layers.remove(stale)  # a run at rest before this one, on this cube
    if segmentation.velocities is not None:
        yield
        velocities = _image(
            viewer, _pick(viewer, existing and existing.velocities, None), segmentation.velocities,
            name=VELOCITIES_NAME, colormap="coolwarm", contrast_limits=_symmetric(segmentation.velocities),
            **placement,
        )
    yield
    # The user may have closed it between two steps.
    if clusters in viewer.layers and viewer.layers.selection.active is not clusters:
        viewer.layers.selection.active = clusters
    return ResultLayers(clusters, confidence, latents, velocities)


def _pick(viewer: napari.viewer.Viewer, existing: Layer | None, fresh: Layer | None) -> Layer | None:
    """The existing layer if still shown (the fresh one is then removed), else the fresh one."""
    if existing is not None and existing in viewer.layers:
        if fresh is not None and fresh in viewer.layers:
            viewer.layers.remove(fresh)
        return existing
    return fresh if fresh is not None and fresh in viewer.layers else None


def _image(
    viewer: napari.viewer.Viewer, layer: Image | None, data: PixelMap, **kwargs: Any
) -> Image:
    """Put ``data`` in ``layer``, or in a new hidden image layer when there is none."""
    if layer is not None:
        layer.data = data
        layer.contrast_limits = kwargs["contrast_limits"]
        return layer
    return viewer.add_image(data, visible=False, axis_labels=("y", "x"), **kwargs)


def _symmetric(velocities: np.ndarray) -> tuple[float, float]:
    """Limits centred on the rest frame's zero, so that the colour says approaching or receding."""
    low, high = _limits(velocities)
    reach = max(abs(low), abs(high), 1.0)
    return -reach, reach


def _limits(values: PixelMap) -> tuple[float, float]:
    """1st and 99th percentiles, from at most about a million pixels (a map on disk reads only those)."""
    step = max(1, int(np.sqrt(values.shape[0] * values.shape[1] / _LIMIT_PIXELS)))
    sample = np.asarray(values[::step, ::step])
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, [1.0, 99.0]))
    return (low, high) if high > low else (low, low + 1.0)


def export_spectra_csv(path: str | Path, segmentation: Segmentation) -> Path:
    """Write each cluster's mean and std spectrum as CSV columns, spectral axis first."""
    columns: dict[str, np.ndarray] = {}
    for index in range(segmentation.k):
        columns[f"cluster {index + 1} mean"] = segmentation.mean_spectra[index]
        columns[f"cluster {index + 1} std"] = segmentation.std_spectra[index]
    axis = segmentation.axis
    return write_spectra_csv(path, axis.values, axis.title, columns)
