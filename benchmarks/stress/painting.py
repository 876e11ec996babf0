"""MA-XRF paintings whose classes are not one spectrum plus Poisson noise.

Each class is a paint: a mix of two pigments (and the ground under it). What
the method's class model leaves out, switched on one at a time:

* ``mixture``: the share of the second pigment varies continuously inside a
  region, as a linear gradient or in patches (brushwork);
* ``overdispersed``: pigment grains make the amount of each pigment in a pixel
  gamma-distributed, and counts gamma-Poisson;
* ``thickness``: the paint layer is 1-3x as thick from place to place, which
  changes the brightness, the absorption of low-energy lines and how much of
  the ground (Ca, S) shows through;
* ``detector``: Si escape peaks, pile-up (sum) peaks, incomplete-charge tails,
  and Rayleigh / Compton scatter of the tube's Rh K line whose ratio and
  strength follow the matrix.

The energy axis runs to 28 keV over 512-4096 channels; 3-12 classes, with an
optional class of under 1 % of the pixels (a gilded detail).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import label as connected

from ._common import StressCube, blob, class_shares, smooth_field, warped_regions

#: Characteristic lines (keV, relative intensity) of the elements the pigments hold.
LINES: dict[str, tuple[tuple[float, float], ...]] = {
    "S": ((2.31, 1.0),),
    "K": ((3.31, 1.0),),
    "Ca": ((3.69, 1.0), (4.01, 0.13)),
    "Ti": ((4.51, 1.0), (4.93, 0.13)),
    "Cr": ((5.41, 1.0), (5.95, 0.13)),
    "Mn": ((5.90, 1.0), (6.49, 0.13)),
    "Fe": ((6.40, 1.0), (7.06, 0.13)),
    "Co": ((6.93, 1.0), (7.65, 0.13)),
    "Cu": ((8.05, 1.0), (8.90, 0.14)),
    "Zn": ((8.64, 1.0), (9.57, 0.14)),
    "As": ((10.54, 1.0), (11.73, 0.15)),
    "Sr": ((14.16, 1.0), (15.84, 0.16)),
    "Cd": ((23.17, 1.0), (26.10, 0.2), (3.13, 0.4)),
    "Sn": ((25.27, 1.0), (3.44, 0.4)),
    "Sb": ((26.36, 1.0), (3.60, 0.4)),
    "Hg": ((9.99, 1.0), (11.82, 0.8), (13.83, 0.1), (2.20, 0.2)),
    "Pb": ((10.55, 1.0), (12.61, 0.85), (14.76, 0.1), (2.35, 0.25)),
    "Au": ((9.71, 1.0), (11.44, 0.8), (13.38, 0.1), (2.12, 0.2)),
    "Bi": ((10.84, 1.0), (13.02, 0.8)),
}

#: Pigments: element weights (fluorescence yields folded in) and density
#: (how strongly the pigment absorbs, lead and mercury most).
PIGMENTS: dict[str, tuple[dict[str, float], float]] = {
    "lead white": ({"Pb": 1.0}, 3.0),
    "vermilion": ({"Hg": 1.0, "S": 0.15}, 2.8),
    "azurite": ({"Cu": 1.0}, 1.2),
    "smalt": ({"Co": 0.5, "As": 0.4, "K": 0.3, "Bi": 0.05}, 1.0),
    "ochre": ({"Fe": 1.0}, 1.0),
    "umber": ({"Fe": 0.7, "Mn": 0.5}, 1.0),
    "lead-tin yellow": ({"Pb": 0.8, "Sn": 0.5}, 2.8),
    "zinc white": ({"Zn": 1.0}, 1.5),
    "titanium white": ({"Ti": 1.0}, 1.0),
    "chrome yellow": ({"Pb": 0.7, "Cr": 0.6}, 2.5),
    "cadmium yellow": ({"Cd": 1.0, "S": 0.1}, 1.8),
    "emerald green": ({"Cu": 0.6, "As": 0.7}, 1.3),
    "naples yellow": ({"Pb": 0.7, "Sb": 0.5}, 2.6),
    "prussian blue": ({"Fe": 0.6, "K": 0.1}, 0.8),
    "orpiment": ({"As": 1.0, "S": 0.3}, 1.2),
    "strontium yellow": ({"Sr": 1.0, "Cr": 0.4}, 1.4),
    "gold leaf": ({"Au": 1.0}, 4.0),
    "chalk ground": ({"Ca": 1.0, "S": 0.3}, 0.8),
}

#: Paints: (first pigment, second pigment, range of the second's share).
#: Several share an element (Pb, Fe, Cu, As), so classes differ in ratios.
PAINTS: tuple[tuple[str, str, tuple[float, float]], ...] = (
    ("lead white", "azurite", (0.10, 0.45)),
    ("vermilion", "lead white", (0.15, 0.55)),
    ("ochre", "umber", (0.0, 0.5)),
    ("smalt", "lead white", (0.2, 0.6)),
    ("lead-tin yellow", "lead white", (0.0, 0.4)),
    ("emerald green", "chrome yellow", (0.1, 0.5)),
    ("zinc white", "ochre", (0.05, 0.35)),
    ("cadmium yellow", "zinc white", (0.1, 0.5)),
    ("titanium white", "prussian blue", (0.05, 0.4)),
    ("naples yellow", "ochre", (0.1, 0.45)),
    ("orpiment", "azurite", (0.05, 0.35)),
    ("strontium yellow", "lead white", (0.1, 0.5)),
)
TINY_PAINT = ("gold leaf", "ochre", (0.0, 0.3))

MAX_ENERGY_KEV = 28.0
_RH_K_KEV, _COMPTON_KEV = 20.21, 19.44
_SI_ESCAPE_KEV = 1.74


@dataclass(frozen=True)
class PaintingStress:
    """Which assumptions one painting breaks (see the module docstring)."""

    mixture: str = "none"  # "none", "gradient" or "patchy"
    overdispersed: bool = False
    thickness: bool = False
    detector: bool = False
    n_channels: int = 1024
    n_classes: int = 6
    tiny_class: bool = True
    counts_per_pixel: float = 300.0
    size: int = 128


def _fwhm_kev(energy: np.ndarray) -> np.ndarray:
    return np.sqrt(0.09**2 + 2.44e-3 * energy)


def _line_response(energy: float, centres: np.ndarray, width: float, detector: bool) -> np.ndarray:
    """Counts per channel from one photon energy: a Gaussian, plus a detector's artefacts."""
    sigma = _fwhm_kev(np.array(energy)) / 2.355
    response = np.exp(-0.5 * ((centres - energy) / sigma) ** 2) * width / (np.sqrt(2 * np.pi) * sigma)
    if detector:
        below = centres < energy
        tail = np.where(below, np.exp((centres - energy) / 0.25), 0.0)
        shelf = np.where(below, 1.0, 0.0)
        response = response + 0.04 * tail / max(tail.sum(), 1e-12) + 0.01 * shelf / max(shelf.sum(), 1.0)
        if energy > 1.84:
            escape = energy - _SI_ESCAPE_KEV
            share = 0.02 * np.exp(-(energy - 1.84) / 6.0)
            response = response + share * np.exp(-0.5 * ((centres - escape) / sigma) ** 2) * width / (
                np.sqrt(2 * np.pi) * sigma
            )
    return response


def _pigment_spectrum(name: str, centres: np.ndarray, width: float, detector: bool) -> np.ndarray:
    elements, _ = PIGMENTS[name]
    spectrum = np.zeros_like(centres)
    for element, weight in elements.items():
        for energy, intensity in LINES[element]:
            if energy < MAX_ENERGY_KEV:
                spectrum += weight * intensity * _line_response(energy, centres, width, detector)
    return spectrum


def _detection(centres: np.ndarray) -> np.ndarray:
    """Detector efficiency: the Be window absorbs soft lines, thin Si lets hard ones through."""
    energy = np.maximum(centres, 0.3)
    return np.exp(-0.6 * (1.5 / energy) ** 3) * (1 - np.exp(-3.0 * (12.0 / energy) ** 2.7))


def _scatter(centres: np.ndarray, width: float, compton_ratio: np.ndarray) -> np.ndarray:
    """(N, C) scattered tube radiation: Rayleigh and Compton peaks and a bremsstrahlung hump."""
    rayleigh = np.exp(-0.5 * ((centres - _RH_K_KEV) / 0.12) ** 2)
    compton = np.exp(-0.5 * ((centres - _COMPTON_KEV) / 0.35) ** 2)
    hump = np.exp(-0.5 * ((centres - 16.0) / 5.0) ** 2) * (centres > 2.0)
    base = (rayleigh / rayleigh.sum() + 0.6 * hump / hump.sum()) * width
    return base[None, :] + compton_ratio[:, None] * (compton / compton.sum() * width)[None, :]


def _layout(rng: np.random.Generator, stress: PaintingStress) -> np.ndarray:
    shape = (stress.size, stress.size)
    labels = warped_regions(rng, shape, class_shares(rng, stress.n_classes))
    if stress.tiny_class:
        n_tiny = max(int(0.007 * labels.size), 12)
        labels[blob(rng, shape, n_tiny, avoid=np.zeros(shape, bool))] = stress.n_classes + 1
    return labels


def _second_share(rng: np.random.Generator, labels: np.ndarray, paints, mixture: str) -> np.ndarray:
    """(H, W) share of each pixel's second pigment, inside its paint's range."""
    share = np.zeros(labels.shape)
    rows, cols = np.mgrid[0 : labels.shape[0], 0 : labels.shape[1]]
    patches = smooth_field(rng, labels.shape, 5.0)
    for index, (_, _, (low, high)) in enumerate(paints):
        region = labels == index + 1
        if mixture == "gradient":
            # Every connected part of a class spans the whole range, so that the
            # class is one continuum, not parts with different mean shares.
            angle = rng.uniform(0, 2 * np.pi)
            along = rows * np.cos(angle) + cols * np.sin(angle)
            parts, _ = connected(region)
            position = np.zeros(labels.shape)
            for part in np.unique(parts[region]):
                inside = parts == part
                position[inside] = (along[inside] - along[inside].min()) / max(np.ptp(along[inside]), 1.0)
            position = position[region]
        elif mixture == "patchy":
            position = patches[region]
        else:
            position = np.full(region.sum(), 0.5)
        share[region] = low + (high - low) * position
    return share


def make_painting(stress: PaintingStress, seed: int) -> StressCube:
    """A painting cube breaking the assumptions ``stress`` names, from ``seed``."""
    rng = np.random.default_rng(seed)
    edges = np.linspace(0.0, MAX_ENERGY_KEV, stress.n_channels + 1)
    centres, width = 0.5 * (edges[1:] + edges[:-1]), edges[1] - edges[0]
    order = rng.permutation(len(PAINTS))[: stress.n_classes]
    paints = [PAINTS[i] for i in order] + ([TINY_PAINT] if stress.tiny_class else [])
    labels = _layout(rng, stress)
    share = _second_share(rng, labels, paints, stress.mixture).ravel()
    pigment_names = sorted({name for paint in paints for name in paint[:2]} | {"chalk ground"})
    spectra = np.stack([_pigment_spectrum(n, centres, width, stress.detector) for n in pigment_names])
    density = np.array([PIGMENTS[n][1] for n in pigment_names])
    amounts = np.zeros((labels.size, len(pigment_names)))
    flat = labels.ravel() - 1
    for index, (first, second, _) in enumerate(paints):
        region = flat == index
        amounts[region, pigment_names.index(first)] = 1 - share[region]
        amounts[region, pigment_names.index(second)] = share[region]
    if stress.overdispersed:
        amounts *= rng.gamma(6.0, 1 / 6.0, size=amounts.shape)
    ground = pigment_names.index("chalk ground")
    ground_spectrum = spectra[ground].copy()
    amounts[:, ground] = 0.0
    shape = labels.shape
    thickness = (
        (1.0 + 2.0 * smooth_field(rng, shape, 8.0)).ravel() if stress.thickness else np.full(labels.size, 1.5)
    )
    expected = _expected(stress, centres, width, spectra, ground_spectrum, density, amounts, thickness)
    expected *= stress.counts_per_pixel / expected.sum(axis=1).mean()
    if stress.detector:
        expected = expected + _pile_up(expected, 0.015)
    if stress.overdispersed:
        expected = expected * rng.gamma(40.0, 1 / 40.0, size=expected.shape)
    counts = rng.poisson(expected * _detection(centres)).astype(np.uint16)
    described = ", ".join(f"{a} + {b}" for a, b, _ in paints)
    return StressCube(
        data=counts.reshape((*shape, stress.n_channels)),
        labels=labels,
        spectral_values=centres,
        spectral_unit="keV",
        description=f"MA-XRF painting {stress}; paints: {described}",
    )


def _expected(stress, centres, width, spectra, ground_spectrum, density, amounts, thickness) -> np.ndarray:
    """(N, C) expected counts before detection: paint self-absorption, the ground under it, scatter."""
    absorbing = np.clip(centres, 1.0, None) / 10.0
    absorption = absorbing**-2.7
    mu = (amounts @ density) / np.maximum(amounts.sum(axis=1), 1e-9)
    depth = (0.25 * mu * thickness)[:, None] * absorption[None, :]
    paint = (amounts @ spectra) * (-np.expm1(-depth)) / np.maximum(depth, 1e-9)
    ground = 0.8 * np.exp(-depth) * ground_spectrum[None, :]
    light_matrix = 1.0 / mu
    compton_ratio = (1.5 * light_matrix) if stress.detector else np.full(mu.shape, 1.0)
    scatter_strength = (0.3 * light_matrix) if stress.detector else np.full(mu.shape, 0.3)
    scatter = scatter_strength[:, None] * _scatter(centres, width, compton_ratio)
    return thickness[:, None] * paint + ground + scatter


def _pile_up(expected: np.ndarray, mean_share: float) -> np.ndarray:
    """Sum peaks: two photons read as one, ``mean_share`` of the counts on average.

    The share grows with the pixel's count rate (bright pixels pile up more).
    """
    n_channels = expected.shape[1]
    totals = expected.sum(axis=1, keepdims=True)
    rate = mean_share / totals.mean()
    shape = expected / np.maximum(totals, 1e-12)
    transform = np.fft.rfft(shape, n=2 * n_channels, axis=1)
    summed = np.clip(np.fft.irfft(transform * transform, n=2 * n_channels, axis=1)[:, :n_channels], 0, None)
    return rate * totals**2 * summed
