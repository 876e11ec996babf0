"""Sample data (File > Open Sample > DeepCube): synthetic cubes with their ground truth.

Each sample opens as the cube (an Image layer, spectral axis as the slider)
and its ground-truth classes (a Labels layer named after the classes), so
that a segmentation can be compared with the truth at a glance. The truth
opens hidden and below the cube: the user sees the cube first, and a
segmentation shown later lands on top of both.
"""

from __future__ import annotations

from ._layer_records import LabelsRecord
from ._reader import LayerData, cube_layer_data, label_the_slider, labels_layer_data
from .core.synthetic import SyntheticCube, make_nebula, make_painting


def painting() -> list[LayerData]:
    """An MA-XRF scan of a painting: 256 × 256 pixels, 1024 channels over 0-40 keV."""
    return _layers(make_painting(256, 256, 1024, seed=0), "painting")


def nebula() -> list[LayerData]:
    """A MUSE-like nebula: 128 × 128 pixels, 3681 wavelengths over 4750-9350 Å."""
    return _layers(make_nebula(128, 128, seed=0), "nebula")


def _layers(sample: SyntheticCube, name: str) -> list[LayerData]:
    record = LabelsRecord(
        k=int(sample.labels.max()),
        source=name,
        class_names=tuple(sample.class_names),
        description=sample.description,
    )
    label_the_slider()
    data, kwargs, kind = labels_layer_data(sample.labels, name=f"{name} ground truth", record=record)
    # napari adds the layers in this order, each on top of the one before.
    return [(data, {**kwargs, "visible": False}, kind), cube_layer_data(sample.cube, name=name)]
