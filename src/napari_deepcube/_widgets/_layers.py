"""How the widgets read napari layers: cubes, their spectral axis, label colours.

A cube is a 3-D, non-RGB Image layer shown as (C, H, W). Its spectral axis
comes from the record the plugin's reader stores in
``layer.metadata["deepcube"]``; a cube opened by another reader gets channel
indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Layer

from .._reader import METADATA_KEY
from ..core.spectral import CHANNEL_UNIT


@dataclass(frozen=True)
class SpectralAxis:
    """The spectral coordinate of a cube layer's channels."""

    values: np.ndarray
    unit: str
    label: str

    @property
    def title(self) -> str:
        """Axis title for plots and CSV headers, e.g. ``"Energy (keV)"``."""
        return "Channel" if self.unit == CHANNEL_UNIT else f"{self.label} ({self.unit})"

    @property
    def kev(self) -> np.ndarray | None:
        """The values in keV when the axis is an X-ray energy, else None."""
        if self.unit == "keV":
            return self.values
        if self.unit == "eV":
            return self.values / 1000.0
        return None


def record(layer: Layer | None) -> dict[str, Any]:
    """The plugin's record in ``layer.metadata`` (empty when absent)."""
    if layer is None:
        return {}
    value = layer.metadata.get(METADATA_KEY, {})
    return value if isinstance(value, dict) else {}


def is_cube_layer(layer: Layer) -> bool:
    """True for an Image layer that can hold a spectral cube (3-D, not RGB)."""
    return isinstance(layer, Image) and layer.ndim == 3 and not layer.rgb and not layer.multiscale


def spectral_axis(layer: Image) -> SpectralAxis:
    """The spectral axis of a cube layer, channel indices when unknown."""
    info = record(layer)
    n_channels = layer.data.shape[0]
    values = info.get("spectral_values")
    if values is None or len(values) != n_channels:
        return SpectralAxis(np.arange(n_channels, dtype=np.float64), CHANNEL_UNIT, "Channel")
    unit = str(info.get("spectral_unit", CHANNEL_UNIT))
    return SpectralAxis(
        np.asarray(values, dtype=np.float64), unit, str(info.get("spectral_label", unit))
    )


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
