"""Airborne reflectance scenes whose classes are mixtures, under changing light.

Classes are land covers (trees, grass, soil, water, road, roofs), each
dominated by one material. What the method's class model leaves out:

* ``mixtures``: every pixel is a linear mix of materials; the dominant one's
  abundance varies continuously from 0.5 to 1 inside a class and the rest is
  the neighbouring classes' materials, more so near their boundary;
* ``nonlinear`` (with ``mixtures``): light scattered from one material onto
  another before it reaches the sensor (a canopy over soil) adds, for each pair
  of materials, the product of their abundances and spectra times a share
  that varies smoothly over the scene from 0 to 1 (the generalised bilinear
  model; Halimi et al., IEEE TGRS 49, 2011): a mixed pixel is no longer a
  non-negative mix of its materials;
* ``illumination``: brightness 0.5-1.5x from slope and aspect, and shadows lit
  by the blue sky alone (darker, bluer).

Noise grows in the water-vapour bands, where the atmosphere leaves little
light; the bands it leaves almost dark are dropped and the values clipped at
zero, as reflectance products are delivered (Jasper Ridge's were).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from ._common import StressCube, class_shares, smooth_field, warped_regions


@dataclass(frozen=True)
class ReflectanceStress:
    """Which assumptions one scene breaks (see the module docstring)."""

    mixtures: bool = False
    nonlinear: bool = False
    illumination: bool = False
    size: int = 100

    def __post_init__(self) -> None:
        if self.nonlinear and not self.mixtures:
            raise ValueError("light is scattered between materials only where they mix: set mixtures too")


def _bump(wave: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((wave - centre) / width) ** 2)


def _water_bands(wave: np.ndarray) -> np.ndarray:
    """Leaf and soil water absorption (relative depth)."""
    return (
        0.15 * _bump(wave, 970, 30)
        + 0.3 * _bump(wave, 1200, 50)
        + 0.8 * _bump(wave, 1450, 70)
        + _bump(wave, 1940, 90)
    )


def materials(wave: np.ndarray) -> dict[str, np.ndarray]:
    """Reflectance of the scene's materials, from the shapes that tell them apart."""
    red_edge = 1 / (1 + np.exp(-(wave - 715) / 12))
    leaf = 0.04 + 0.06 * _bump(wave, 550, 35) + 0.42 * red_edge
    leaf = leaf * (1 - 0.55 * _water_bands(wave) * red_edge)
    return {
        "trees": 0.8 * leaf,
        "grass": 1.1 * leaf * (1 - 0.2 * (wave > 1300)) + 0.03 * (wave > 600),
        "soil": (0.08 + 0.27 * np.clip((wave - 400) / 1600, 0, 1))
        * (1 - 0.3 * _water_bands(wave))
        * (1 - 0.1 * _bump(wave, 2200, 30)),
        "water": 0.06 * np.exp(-(wave - 450) / 180) * (wave > 0) + 0.005,
        "road": 0.07 + 0.05 * (wave - 400) / 2100,
        "roof": (0.25 + 0.05 * np.sin(wave / 300)) * (1 - 0.15 * _bump(wave, 2330, 40)),
    }


def _transmission(wave: np.ndarray) -> np.ndarray:
    """The atmosphere's transmission: deep water-vapour bands at 1400 and 1900 nm."""
    bands = (
        0.5 * _bump(wave, 940, 25)
        + 0.4 * _bump(wave, 1140, 30)
        + 0.97 * _bump(wave, 1400, 45)
        + 0.98 * _bump(wave, 1900, 60)
    )
    return np.clip(1 - bands, 0.02, 1)


def _abundances(rng: np.random.Generator, labels: np.ndarray, mixed: bool) -> np.ndarray:
    """(N, M) abundances: the class's material dominates, its neighbours mix in near their border."""
    n_classes = labels.max()
    one_hot = np.stack([(labels == value).astype(float) for value in range(1, n_classes + 1)], axis=-1)
    if not mixed:
        return one_hot.reshape(-1, n_classes)
    spread = gaussian_filter(one_hot, (4.0, 4.0, 0))
    purity = 0.5 + 0.5 * smooth_field(rng, labels.shape, 6.0)[..., None]
    others = spread * (1 - one_hot)
    others /= np.maximum(others.sum(axis=-1, keepdims=True), 1e-9)
    background = rng.dirichlet(np.ones(n_classes), size=labels.shape) * (1 - one_hot)
    background /= np.maximum(background.sum(axis=-1, keepdims=True), 1e-9)
    rest = 0.7 * others + 0.3 * background
    return (purity * one_hot + (1 - purity) * rest).reshape(-1, n_classes)


def _scattered(
    rng: np.random.Generator, shape: tuple[int, int], amounts: np.ndarray, spectra: np.ndarray
) -> np.ndarray:
    """(N, L) light scattered between materials: sum over pairs i < j of g a_i a_j s_i s_j.

    ``amounts`` (N, M) are the pixels' abundances, ``spectra`` (M, L) the
    materials', and the share g (0 to 1) varies smoothly over the scene.
    """
    linear = amounts @ spectra
    # The square of the sum less the squares of its terms is twice the sum over pairs.
    pairs = 0.5 * (linear**2 - amounts**2 @ spectra**2)
    return smooth_field(rng, shape, 5.0).reshape(-1, 1) * pairs


def make_reflectance(stress: ReflectanceStress, seed: int) -> StressCube:
    """A reflectance scene breaking the assumptions ``stress`` names, from ``seed``."""
    rng = np.random.default_rng(seed)
    wave = np.linspace(400, 2500, 224)
    wave = wave[_transmission(wave) > 0.2]
    spectra = materials(wave)
    names = list(spectra)
    labels = warped_regions(rng, (stress.size, stress.size), class_shares(rng, len(names)))
    amounts = _abundances(rng, labels, stress.mixtures)
    pure = np.stack([spectra[n] for n in names])
    reflectance = amounts @ pure
    if stress.nonlinear:
        # A generator of its own: the scene is otherwise the same as without the scattering.
        reflectance += _scattered(np.random.default_rng([seed, 1]), labels.shape, amounts, pure)
    if stress.illumination:
        slope = (0.5 + smooth_field(rng, labels.shape, 5.0)).ravel()
        shadow = (smooth_field(rng, labels.shape, 3.0) > 0.8).ravel()
        sky_light = (wave / 500.0) ** -2.0
        reflectance *= slope[:, None]
        reflectance[shadow] *= 0.25 * sky_light / sky_light.max()
    noise = 0.004 / np.sqrt(_transmission(wave))
    data = np.clip(reflectance + noise * rng.standard_normal(reflectance.shape), 0.0, None)
    return StressCube(
        data=data.reshape((*labels.shape, wave.size)).astype(np.float32),
        labels=labels,
        spectral_values=wave,
        spectral_unit="nm",
        description=f"reflectance scene {stress}; materials: {', '.join(names)}",
    )
