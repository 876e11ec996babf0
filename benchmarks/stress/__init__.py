"""Stress cubes: generated data that breaks the method's assumptions (issue 15).

``VARIANTS`` maps a variant's name to its generator, called with a seed and, optionally, the
image's side in pixels (the family's own size when None); each variant breaks one
assumption (``reflectance/nonlinear`` one more than ``reflectance/mixtures``), and the
``all`` variant of a family breaks them together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

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
    "nonlinear": ReflectanceStress(mixtures=True, nonlinear=True),
    "illumination": ReflectanceStress(illumination=True),
    "all": ReflectanceStress(mixtures=True, nonlinear=True, illumination=True),
}


def _generator(make: Callable[[Any, int], StressCube], stress: Any) -> Callable[..., StressCube]:
    """``make`` for ``stress``, at the family's size or another."""

    def generate(seed: int, size: int | None = None) -> StressCube:
        return make(stress if size is None else replace(stress, size=size), seed)

    return generate


VARIANTS: dict[str, Callable[..., StressCube]] = {
    **{f"painting/{name}": _generator(make_painting, stress) for name, stress in _PAINTING.items()},
    **{f"nebula/{name}": _generator(make_nebula, stress) for name, stress in _NEBULA.items()},
    **{f"reflectance/{name}": _generator(make_reflectance, stress) for name, stress in _REFLECTANCE.items()},
}

__all__ = ["VARIANTS", "StressCube"]
