"""What the plugin stores in a napari layer's metadata: one typed record per layer.

A cube layer carries a :class:`CubeRecord` (its spectral axis, the file it
came from and the per-voxel variances read with it), a label map a
:class:`LabelsRecord` (class names, k, the cluster
spectra of a segmentation and, while napari runs, the segmentation itself),
per-pixel maps that describe a cube a :class:`MapsRecord`.
Both live under ``layer.metadata["deepcube"]`` and are written and read only
here. Reading checks what it finds: anything else under the key (a layer
made by another plugin, a record of an older version, a record that does
not fit the layer) reads as no record, never as an error.

This module must stay light (numpy and the core's spectral axis): the napari
reader imports it to open a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .core.spectral import SpectralAxis

if TYPE_CHECKING:
    from .core.cube import Datacube
    from .core.segmentation import Segmentation

#: Key of the plugin's record in ``layer.metadata``.
METADATA_KEY = "deepcube"

#: What a label map is: ground truth or hand-painted classes, a segmentation's
#: clusters, or the preview of a run still going.
LabelsKind = Literal["labels", "clusters", "preview"]


@dataclass(frozen=True, eq=False)
class CubeRecord:
    """The record of a cube layer (C, H, W).

    Attributes
    ----------
    axis
        The spectral axis of the layer's first dimension.
    source
        The file the cube was read from ("" when made in memory).
    format
        The reader that read it (``"fits"``, ``"tiff"``...).
    spectral_range
        The ranges of the spectral axis a run learns from (``"1.2:9.5"``, see
        :mod:`~.core.selection`), as dragged on the spectrum plot or typed in the
        settings; "" for every channel. Kept here so that both widgets show it.
    variance
        The variance of every voxel, (H, W, C) in the core's order (the
        layer's data is (C, H, W)), eager or lazy as the reader read it: a FITS
        file's STAT, so that a run from the widget divides by it as
        ``deepcube segment`` does on the file. None when the file has none.
    """

    axis: SpectralAxis
    source: str = ""
    format: str = ""
    spectral_range: str = ""
    variance: Any = None


@dataclass(frozen=True, eq=False)
class MapsRecord:
    """The record of per-pixel maps that describe a cube.

    Abundance or element maps stored beside a cube (a stack (n, H, W)): shown,
    but not a cube to segment, although the layer has three dimensions. Also
    the element and window maps the spectrum plot makes: one map (H, W), or
    an RGB composite (H, W, 3) of up to three maps, which keeps the maps.

    Attributes
    ----------
    names
        Name of each map, when known.
    source
        The file they were read from, or the cube layer they were computed from.
    windows
        What each map measures, as a maps TIFF stores it (line or window, quantity,
        unit; see :meth:`~.core.element_maps.MapWindow.facts`); empty for maps read from a file.
    values
        The maps (n, H, W) float32 behind an RGB composite; None when the layer's data are the map.
    """

    names: tuple[str, ...] = ()
    source: str = ""
    windows: tuple[dict[str, Any], ...] = ()
    values: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class ClusterSpectra:
    """Mean and standard deviation spectrum of each cluster, with its size.

    Attributes
    ----------
    mean, std
        (k, C) spectra of clusters 1..k.
    sizes
        Pixels in clusters 1..k.
    """

    mean: np.ndarray
    std: np.ndarray
    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.mean.ndim != 2 or self.std.shape != self.mean.shape:
            raise ValueError(f"mean {self.mean.shape} and std {self.std.shape} must be the same (k, C)")
        if len(self.sizes) != self.mean.shape[0]:
            raise ValueError(f"{len(self.sizes)} sizes for {self.mean.shape[0]} clusters")


@dataclass(frozen=True, eq=False)
class SegmentationRun:
    """A segmentation with the cube it segments: what re-clustering and the exports need.

    Kept in a clusters layer's record while napari runs, so that a
    segmentation widget opened later finds the result again; never written
    to a file.
    """

    segmentation: Segmentation
    cube: Datacube


@dataclass(frozen=True, eq=False)
class LabelsRecord:
    """The record of a label map (H, W), 0 = left out, classes 1..k.

    Attributes
    ----------
    kind
        Ground truth or painted classes, clusters, or a run's preview.
    k
        Number of classes.
    source
        The cube file the labels belong to ("" when unknown).
    source_layer
        Name of the cube layer a segmentation was computed from.
    class_names
        Name of classes 1..k, when known (ground truth).
    description
        One sentence on where the labels come from.
    k_reason
        Why a segmentation has k clusters.
    axis
        The spectral axis of :attr:`spectra`.
    spectra
        The clusters' spectra as the segmentation computed them.
    run
        The segmentation itself (clusters made in this napari session only).
    """

    kind: LabelsKind = "labels"
    k: int = 0
    source: str = ""
    source_layer: str = ""
    class_names: tuple[str, ...] = ()
    description: str = ""
    k_reason: str = ""
    axis: SpectralAxis | None = None
    spectra: ClusterSpectra | None = None
    run: SegmentationRun | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("labels", "clusters", "preview"):
            raise ValueError(f"unknown kind of label map {self.kind!r}")
        if self.spectra is not None:
            if self.axis is None or self.spectra.mean.shape[1] != self.axis.size:
                raise ValueError("cluster spectra need the spectral axis they are sampled on")
            if self.spectra.mean.shape[0] != self.k:
                raise ValueError(f"{self.spectra.mean.shape[0]} cluster spectra for k={self.k}")

    def tiff_facts(self) -> dict[str, Any]:
        """The JSON-ready facts a label map TIFF keeps, under the keys it has always used.

        The bulky arrays (the cluster spectra) are left to the CSV export.
        """
        facts: dict[str, Any] = {"k": self.k}
        if self.source:
            facts["source"] = self.source
        if self.k_reason:
            facts["k_reason"] = self.k_reason
        if self.class_names:
            facts["class_names"] = list(self.class_names)
        if self.axis is not None:
            facts["spectral_values"] = [float(v) for v in self.axis.values]
            facts["spectral_unit"] = self.axis.unit
            facts["spectral_label"] = self.axis.label
        return facts


def with_record(
    metadata: Mapping[str, Any], record: CubeRecord | LabelsRecord | MapsRecord
) -> dict[str, Any]:
    """A copy of a layer's ``metadata`` holding ``record`` as the plugin's entry."""
    return {**metadata, METADATA_KEY: record}


def cube_record(metadata: Mapping[str, Any], n_channels: int) -> CubeRecord | None:
    """The cube record in ``metadata``, if there is one that fits ``n_channels`` channels."""
    record = _entry(metadata)
    if isinstance(record, CubeRecord) and record.axis.size == n_channels:
        return record
    return None


def is_maps(metadata: Mapping[str, Any]) -> bool:
    """Whether ``metadata`` is that of a stack of per-pixel maps (:class:`MapsRecord`)."""
    return isinstance(_entry(metadata), MapsRecord)


def maps_record(metadata: Mapping[str, Any]) -> MapsRecord | None:
    """The maps record in ``metadata``, if there is one."""
    record = _entry(metadata)
    return record if isinstance(record, MapsRecord) else None


def labels_record(metadata: Mapping[str, Any]) -> LabelsRecord | None:
    """The label map record in ``metadata``, if there is one."""
    record = _entry(metadata)
    return record if isinstance(record, LabelsRecord) else None


def layer_variance(metadata: Mapping[str, Any], shape: tuple[int, ...]) -> Any:
    """The per-voxel variances a cube layer of ``shape`` (C, H, W) keeps in its record, None without.

    A record whose variances do not fit the layer's data (data replaced by
    hand) gives none.
    """
    record = cube_record(metadata, shape[0])
    if record is None or record.variance is None:
        return None
    expected = (*shape[1:], shape[0])
    return record.variance if tuple(record.variance.shape) == expected else None


def layer_axis(metadata: Mapping[str, Any], n_channels: int) -> SpectralAxis:
    """The spectral axis a cube layer's record gives, channel indices without one."""
    record = cube_record(metadata, n_channels)
    return record.axis if record is not None else SpectralAxis.channels(n_channels)


def _entry(metadata: Mapping[str, Any]) -> object:
    return metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
