"""Stress cubes: generated data that breaks the method's assumptions (issue 15).

``VARIANTS`` maps a variant's name to its family and generator; each variant
breaks one assumption, and the ``all`` variant of a family breaks them together.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from ._common import StressCube
from .nebula import NebulaStress, make_nebula
from .painting import PaintingStress, make_painting
from .reflectance import ReflectanceStress, make_reflectance

_PAINTING = {
    "clean": PaintingStress(),
    "gradient mixtures": PaintingStress(mixture="gradient"),
    "patchy mixtures": PaintingStress(mixture="patchy"),
    "overdispersed": PaintingStress(overdispersed=True),
    "thickness x3": PaintingStress(thickness=True),
    "detector": PaintingStress(detector=True),
    "512 channels": PaintingStress(n_channels=512),
    "4096 channels": PaintingStress(n_channels=4096),
    "3 classes": PaintingStress(n_classes=3, tiny_class=False),
    "12 classes": PaintingStress(n_classes=11),
    "all": PaintingStress(
        mixture="gradient", overdispersed=True, thickness=True, detector=True, n_channels=2048, n_classes=7
    ),
}
_NEBULA = {
    "clean": NebulaStress(),
    "ionisation": NebulaStress(ionisation=True),
    "velocity": NebulaStress(velocity=True),
    "extinction": NebulaStress(extinction=True),
    "stellar": NebulaStress(stellar=True),
    "sky stripes": NebulaStress(sky_stripes=True),
    "heteroscedastic": NebulaStress(heteroscedastic=True),
    "seeing": NebulaStress(seeing=True),
    "faint": NebulaStress(faint=True),
    "all": NebulaStress(
        ionisation=True,
        velocity=True,
        extinction=True,
        stellar=True,
        sky_stripes=True,
        heteroscedastic=True,
        seeing=True,
        faint=True,
    ),
}
_REFLECTANCE = {
    "clean": ReflectanceStress(),
    "mixtures": ReflectanceStress(mixtures=True),
    "illumination": ReflectanceStress(illumination=True),
    "all": ReflectanceStress(mixtures=True, illumination=True),
}

VARIANTS: dict[str, Callable[[int], StressCube]] = {
    **{f"painting/{name}": partial(make_painting, stress) for name, stress in _PAINTING.items()},
    **{f"nebula/{name}": partial(make_nebula, stress) for name, stress in _NEBULA.items()},
    **{f"reflectance/{name}": partial(make_reflectance, stress) for name, stress in _REFLECTANCE.items()},
}

__all__ = ["VARIANTS", "StressCube"]
