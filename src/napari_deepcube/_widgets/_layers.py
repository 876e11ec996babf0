"""How the widgets read napari layers: cubes, their spectral axis, label colours.

A cube is a 3-D, non-RGB Image layer shown as (C, H, W), other than a stack
of per-pixel maps the reader opened beside a cube (abundances). Its spectral axis
comes from the :class:`~.._layer_records.CubeRecord` the plugin's reader
stores in the layer's metadata; a cube opened by another reader gets channel
indices.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Layer

from .._layer_records import (
    CubeRecord,
    LabelsRecord,
    cube_record,
    is_maps,
    labels_record,
    layer_axis,
    layer_variance,
    with_record,
)
from ..core.spectral import SpectralAxis


def is_cube_layer(layer: Layer) -> bool:
    """True for an Image layer that can hold a spectral cube (3-D, not RGB, not per-pixel maps)."""
    return (
        isinstance(layer, Image) and layer.ndim == 3 and not layer.rgb and not layer.multiscale
        and not is_maps(layer.metadata)
    )


def spectral_axis(layer: Image) -> SpectralAxis:
    """The spectral axis of a cube layer, channel indices when unknown."""
    return layer_axis(layer.metadata, layer.data.shape[0])


def cube_variance(layer: Image) -> Any:
    """The per-voxel variances (H, W, C) read with a cube layer (a FITS STAT), None without."""
    return layer_variance(layer.metadata, tuple(layer.data.shape))


def source_file(layer: Image) -> str:
    """The file a cube layer was read from ("" when unknown)."""
    record = cube_record(layer.metadata, layer.data.shape[0])
    return record.source if record is not None else ""


def training_range(layer: Image) -> str:
    """The spectral ranges a run on this cube learns from ("" for every channel)."""
    record = cube_record(layer.metadata, layer.data.shape[0])
    return record.spectral_range if record is not None else ""


def set_training_range(layer: Image, text: str) -> None:
    """Store the spectral ranges a run on this cube learns from; both widgets follow the layer's record."""
    if text == training_range(layer):
        return
    record = cube_record(layer.metadata, layer.data.shape[0]) or CubeRecord(spectral_axis(layer))
    layer.metadata = with_record(layer.metadata, replace(record, spectral_range=text))


def labels_info(layer: Layer | None) -> LabelsRecord | None:
    """The plugin's record of a Labels layer, None for other layers and foreign labels."""
    return labels_record(layer.metadata) if isinstance(layer, Labels) else None


def spectral_last(data: Any) -> Any:
    """(C, H, W) layer data -> (H, W, C) without copying (numpy view or lazy transpose)."""
    if isinstance(data, np.ndarray):
        return np.moveaxis(data, 0, -1)
    return data.transpose(1, 2, 0)


def is_lazy(data: Any) -> bool:
    """True when reading ``data`` may touch the disk (memmap, dask, zarr)."""
    return not isinstance(data, np.ndarray) or isinstance(data, np.memmap)


def image_shape(layer: Image) -> tuple[int, int]:
    """(H, W) of a cube layer."""
    return int(layer.data.shape[1]), int(layer.data.shape[2])


def label_colors(layer: Labels, labels: np.ndarray) -> np.ndarray:
    """RGBA colours (n, 4) of ``labels`` as the Labels layer draws them."""
    values = np.asarray(labels, dtype=layer.data.dtype)
    return np.atleast_2d(np.asarray(layer.colormap.map(values), dtype=np.float64))


def world_to_pixel(layer: Image, position: tuple[float, ...]) -> tuple[int, int] | None:
    """(row, col) of the cube pixel under a world position, None outside the image."""
    data_position = layer.world_to_data(position)
    row, col = (int(np.round(v)) for v in data_position[-2:])
    height, width = image_shape(layer)
    return (row, col) if 0 <= row < height and 0 <= col < width else None
