"""A synthetic MA-XRF scan of a painting: pigments, X-ray physics and Poisson counts."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, sqrt
from typing import Any

import numpy as np
from scipy.ndimage import distance_transform_edt

from ..cube import Datacube
from ..element_maps import detector_fwhm_kev
from ..errors import InputError
from ..xray_lines import lines_of
from ._common import (
    BLOCK_PIXELS,
    SyntheticCube,
    binned_gaussians,
    check_image_size,
    class_means,
    number_by_size,
    smooth_field,
)

# Detector response: Fano-limited silicon drift detector, 140 eV FWHM at Mn Kα.
_FWHM_MN_KEV = 0.140
# Tube: Rh anode at 40 kV; scatter seen at ~90 degrees.
_TUBE_KV = 40.0
_RH_LINES_KEV = (20.216, 22.724)
_RH_LINE_WEIGHTS = (1.0, 0.2)
_ELECTRON_REST_KEV = 511.0
_COMPTON_BROADENING_KEV = 0.45  # Doppler broadening of the Compton peak
# Photons per pixel, when not given: the DESIGN's "easy" and "hard" regimes.
_COUNTS_STANDARD = 600.0
_COUNTS_HARD = 150.0

# Element (or "scatter") -> fraction of the photons a pigment emits.
# "scatter" is the tube spectrum scattered by the matrix: strong for light
# matrices (chalk, glass, organic binder), weak for lead and mercury pigments.
_PIGMENTS: dict[str, dict[str, float]] = {
    "ground": {"Ca": 0.46, "S": 0.08, "Sr": 0.04, "Fe": 0.02, "scatter": 0.40},
    "lead white": {"Pb": 0.90, "scatter": 0.10},
    "vermilion": {"Hg": 0.80, "S": 0.10, "scatter": 0.10},
    "azurite": {"Cu": 0.75, "scatter": 0.25},
    "yellow ochre": {
        "Fe": 0.55, "Mn": 0.02, "Ti": 0.03, "K": 0.03, "Si": 0.05, "Al": 0.02, "scatter": 0.30,
    },
    "lead-tin yellow": {"Pb": 0.65, "Sn": 0.25, "scatter": 0.10},
    "smalt": {
        "Co": 0.20, "As": 0.12, "Ni": 0.03, "Fe": 0.03, "K": 0.15, "Si": 0.12, "scatter": 0.35,
    },
    "gold leaf": {"Au": 0.85, "Fe": 0.05, "scatter": 0.10},  # the red bole shows through
}


@dataclass(frozen=True)
class _Paint:
    """One ground-truth class: a pigment mixture over the preparation ground.

    ``pigments`` maps pigment -> fraction; the first is the base, the others
    vary by ±20 % (relative) across the region. ``ground`` is the mean
    fraction of the photons that come from the ground (1 = bare ground).
    """

    name: str
    pigments: dict[str, float]
    ground: float


_BARE_GROUND = _Paint("bare ground (chalk + gypsum)", {}, 1.0)
_STANDARD_PAINTS = (
    _BARE_GROUND,
    _Paint("lead white", {"lead white": 1.0}, 0.15),
    _Paint("vermilion", {"vermilion": 1.0}, 0.20),
    _Paint("azurite", {"azurite": 1.0}, 0.25),
    _Paint("yellow ochre", {"yellow ochre": 1.0}, 0.25),
    _Paint("lead-tin yellow", {"lead-tin yellow": 1.0}, 0.15),
)
_HARD_PAINTS = (
    _BARE_GROUND,
    _Paint("lead white + 10% vermilion", {"lead white": 0.90, "vermilion": 0.10}, 0.40),
    _Paint("lead white + 25% vermilion", {"lead white": 0.75, "vermilion": 0.25}, 0.40),
    _Paint("azurite", {"azurite": 1.0}, 0.40),
    _Paint("yellow ochre", {"yellow ochre": 1.0}, 0.40),
    _Paint("smalt", {"smalt": 1.0}, 0.40),
)
_GOLD = _Paint("gold leaf", {"gold leaf": 1.0}, 0.05)
_GOLD_FRACTION = 0.01
_HARD_NOTE = (
    " Hard: two classes differ only in the vermilion fraction in lead white, "
    "and the gold leaf covers 1% of the pixels."
)
_VORONOI_CELLS = 16


def _fwhm_kev(energy_kev: np.ndarray) -> np.ndarray:
    """Detector FWHM (keV): electronic noise plus Fano statistics."""
    return detector_fwhm_kev(energy_kev, _FWHM_MN_KEV)


def _detection(energy_kev: np.ndarray) -> np.ndarray:
    """Fraction of photons recorded at each energy.

    The air path and the detector window absorb soft X-rays; a 0.5 mm silicon
    crystal lets hard ones through.
    """
    energy = np.maximum(energy_kev, 1e-3)
    return np.exp(-((1.6 / energy) ** 3)) * (1.0 - np.exp(-((24.0 / energy) ** 2.7)))


def _element_emission(element: str, edges: np.ndarray) -> np.ndarray:
    """Emitted line spectrum of one element per photon, binned on ``edges``."""
    lines = lines_of(element, excitation_kev=_TUBE_KV)
    has_k = any(line.family == "K" for line in lines)
    # A 40 kV tube excites K shells up to Sn well; L lines of such elements and
    # M lines of Au/Hg/Pb are then weak beside the main family.
    family = {"K": 1.0, "L": 0.3 if has_k else 1.0, "M": 0.08}
    energies = np.array([line.energy_kev for line in lines])
    weights = np.array([family[line.family] * line.relative_intensity for line in lines])
    sigmas = _fwhm_kev(energies) / 2.3548
    return binned_gaussians(edges, energies, sigmas, weights / weights.sum())


def _scatter_emission(edges: np.ndarray) -> np.ndarray:
    """Tube spectrum scattered by the sample, per photon.

    A Kramers continuum hardened by the tube window, plus Rayleigh and
    Compton peaks of the Rh K lines.
    """
    centres = 0.5 * (edges[:-1] + edges[1:])
    energy = np.maximum(centres, 1e-3)
    continuum = np.clip(_TUBE_KV - energy, 0.0, None) / energy * np.exp(-((5.0 / energy) ** 3))
    continuum *= np.diff(edges)
    rayleigh = np.array(_RH_LINES_KEV)
    compton = rayleigh / (1.0 + rayleigh / _ELECTRON_REST_KEV)  # 90 degree scatter
    compton_sigma = np.hypot(_fwhm_kev(compton), _COMPTON_BROADENING_KEV) / 2.3548
    weights = np.array(_RH_LINE_WEIGHTS)
    # Paint layers are light matrices: incoherent (Compton) scatter dominates.
    peaks = binned_gaussians(
        edges,
        np.r_[rayleigh, compton],
        np.r_[_fwhm_kev(rayleigh) / 2.3548, compton_sigma],
        np.r_[0.3 * weights, 0.7 * weights] / weights.sum(),
    )
    return 0.6 * continuum / continuum.sum() + 0.4 * peaks


def _pigment_spectrum(pigment: str, edges: np.ndarray) -> np.ndarray:
    """Recorded spectrum shape of a pigment, summing to 1 over the channels."""
    emitted = sum(
        fraction
        * (_scatter_emission(edges) if part == "scatter" else _element_emission(part, edges))
        for part, fraction in _PIGMENTS[pigment].items()
    )
    centres = 0.5 * (edges[:-1] + edges[1:])
    recorded = emitted * _detection(centres)
    return recorded / recorded.sum()


def _painting_regions(
    rng: np.random.Generator, shape: tuple[int, int], n_classes: int
) -> np.ndarray:
    """Class index (0..n_classes-1) of each pixel.

    A Voronoi tessellation of jittered grid seeds, seen through a smooth warp
    (irregular region outlines) and a fine one (ragged edges). Every class
    owns at least one of the 16 cells, so none vanishes.
    """
    height, width = shape
    size = min(shape)
    n_rows = max(1, round(sqrt(_VORONOI_CELLS * height / width)))
    n_cols = ceil(_VORONOI_CELLS / n_rows)
    grid_y, grid_x = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    seed_y = (grid_y.ravel() + rng.uniform(0.15, 0.85, grid_y.size)) * height / n_rows
    seed_x = (grid_x.ravel() + rng.uniform(0.15, 0.85, grid_x.size)) * width / n_cols
    owner = rng.permutation(np.resize(np.arange(n_classes), seed_y.size))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y += 0.12 * size * smooth_field(rng, shape, size / 8) + 1.5 * smooth_field(rng, shape, 1.0)
    x += 0.12 * size * smooth_field(rng, shape, size / 8) + 1.5 * smooth_field(rng, shape, 1.0)
    distance = (y[..., None] - seed_y.astype(np.float32)) ** 2 + (
        x[..., None] - seed_x.astype(np.float32)
    ) ** 2
    return owner[np.argmin(distance, axis=-1)]


def _stroke(rng: np.random.Generator, shape: tuple[int, int], n_pixels: int) -> np.ndarray:
    """Mask of exactly ``n_pixels`` pixels along a random curved brush stroke."""
    height, width = shape
    n_steps = int(min(shape))  # half-pixel steps: a stroke half the image long
    heading = rng.uniform(0.0, 2.0 * np.pi) + np.cumsum(rng.normal(0.0, 0.08, n_steps))
    path_y = rng.uniform(0.3, 0.7) * height + np.cumsum(0.5 * np.sin(heading))
    path_x = rng.uniform(0.3, 0.7) * width + np.cumsum(0.5 * np.cos(heading))
    on_path = np.zeros(shape, dtype=bool)
    on_path[
        np.clip(np.round(path_y).astype(int), 0, height - 1),
        np.clip(np.round(path_x).astype(int), 0, width - 1),
    ] = True
    # Ragged width: rank pixels by distance to the path plus a little noise.
    score = distance_transform_edt(~on_path) + 0.8 * smooth_field(rng, shape, 1.5)
    mask = np.zeros(height * width, dtype=bool)
    mask[np.argsort(score, axis=None, kind="stable")[:n_pixels]] = True
    return mask.reshape(shape)


def _paint_fractions(
    paint: _Paint, ground_field: np.ndarray, mixture_field: np.ndarray, pigments: list[str]
) -> np.ndarray:
    """Per-pixel photon fractions over ``pigments`` (ground last) for one paint.

    Parameters are the region's pixels' smooth fields in [-1, 1]: thinner
    paint (``ground_field`` > 0) lets more of the ground through; minor
    pigments vary by ±20 % relative with ``mixture_field``.
    """
    fractions = np.zeros((ground_field.size, len(pigments)))
    names = list(paint.pigments)
    if not names:  # bare ground
        fractions[:, -1] = 1.0
        return fractions
    ground = np.clip(paint.ground * (1.0 + ground_field), 0.0, 1.0)
    fractions[:, -1] = ground
    minor = [paint.pigments[n] * (1.0 + 0.2 * mixture_field) for n in names[1:]]
    for name, share in zip(names[1:], minor, strict=True):
        fractions[:, pigments.index(name)] = (1.0 - ground) * share
    fractions[:, pigments.index(names[0])] = (1.0 - ground) * (1.0 - sum(minor, 0.0))
    return fractions


def _alias_tables(shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias tables for sampling a channel from each row of ``shapes``.

    Drawing a photon's channel then costs one random index and one
    comparison, whatever the number of channels.
    """
    n_rows, n_channels = shapes.shape
    accept = np.ones((n_rows, n_channels))
    alias = np.tile(np.arange(n_channels), (n_rows, 1))
    for row in range(n_rows):
        scaled = shapes[row] * (n_channels / shapes[row].sum())
        small = [int(i) for i in np.flatnonzero(scaled < 1.0)]
        large = [int(i) for i in np.flatnonzero(scaled >= 1.0)]
        while small and large:
            low, high = small.pop(), large.pop()
            accept[row, low] = scaled[low]
            alias[row, low] = high
            scaled[high] -= 1.0 - scaled[low]
            (small if scaled[high] < 1.0 else large).append(high)
    return accept, alias


def _poisson_counts(
    rng: np.random.Generator, expected: np.ndarray, shapes: np.ndarray
) -> np.ndarray:
    """Poisson counts of pixels whose mean spectrum is ``expected @ shapes``.

    Parameters
    ----------
    expected
        (P, M) mean photons each pixel receives from each component.
    shapes
        (M, C) spectrum shape of each component, rows summing to 1.

    Returns
    -------
    np.ndarray
        (P, C) float32 integer counts. Drawing each photon's channel (alias
        method) costs ~40 M draws for 256x256 pixels at 600 counts, several
        times faster than 67 M small-mean Poisson draws, and is exact: a
        Poisson number of photons split multinomially over channels gives
        independent Poisson counts per channel.
    """
    n_pixels, n_components = expected.shape
    n_channels = shapes.shape[1]
    accept, alias = _alias_tables(shapes)
    accept = accept.astype(np.float32).ravel()
    alias = alias.ravel()
    photons = rng.poisson(expected)
    counts = np.empty((n_pixels, n_channels), dtype=np.float32)
    for start in range(0, n_pixels, BLOCK_PIXELS):
        stop = min(start + BLOCK_PIXELS, n_pixels)
        per_cell = photons[start:stop].ravel()
        cell = np.repeat(np.arange(per_cell.size), per_cell)
        guess = rng.integers(0, n_channels, size=cell.size)
        slot = (cell % n_components) * n_channels + guess
        keep = rng.random(cell.size, dtype=np.float32) < accept[slot]
        channel = np.where(keep, guess, alias[slot])
        binned = np.bincount(
            (cell // n_components) * n_channels + channel, minlength=(stop - start) * n_channels
        )
        counts[start:stop] = binned.reshape(stop - start, n_channels)
    return counts


def make_painting(
    height: int = 256,
    width: int = 256,
    n_channels: int = 1024,
    *,
    counts_per_pixel: float | None = None,
    hard: bool = False,
    seed: int = 0,
    max_energy_kev: float = 40.0,
) -> SyntheticCube:
    """A macro X-ray fluorescence scan of a painting, in photon counts.

    Irregular paint regions (a warped Voronoi tessellation) of pigment mixtures
    lie on a chalk and gypsum ground (Ca, S, Sr) that shows through everywhere,
    more where the paint is thin. Each pixel's spectrum is Gaussian element
    lines with a Fano-limited detector resolution (140 eV at Mn Kα), plus the
    Rh tube's scattered continuum and Rayleigh/Compton peaks near 19-23 keV,
    attenuated by air at low energy; counts are Poisson. Total counts vary
    smoothly by ±50 % around ``counts_per_pixel``; the share of photons from
    the ground varies from 0 to twice its mean with the paint's thickness;
    minor pigment fractions vary by ±20 % (relative) within a region.

    Parameters
    ----------
    height, width
        Image size in pixels, at least 16 each.
    n_channels
        Energy channels spread evenly over 0..``max_energy_kev``.
    counts_per_pixel
        Mean photons per pixel; default 600, or 150 when ``hard``.
    hard
        Seven classes instead of six: two differ only in the vermilion
        fraction mixed into lead white (10 % and 25 %), one is a gold-leaf
        stroke covering 1 % of the pixels.
    seed
        Seed of ``np.random.default_rng``; the same seed gives the same cube.
    max_energy_kev
        Upper end of the energy axis.

    Returns
    -------
    SyntheticCube
        Counts (float32, keV axis), labels, class names and expected spectra.

    Raises
    ------
    InputError
        If a size, the counts or the energy range is out of bounds.
    """
    counts = _checked_counts(height, width, n_channels, counts_per_pixel, hard, max_energy_kev)
    rng = np.random.default_rng(seed)
    shape = (height, width)
    regions = _HARD_PAINTS if hard else _STANDARD_PAINTS
    paints = [*regions, _GOLD] if hard else list(regions)
    class_map = _painting_regions(rng, shape, len(regions))
    if hard:
        class_map[_stroke(rng, shape, round(_GOLD_FRACTION * height * width))] = len(regions)

    edges = np.linspace(0.0, max_energy_kev, n_channels + 1)
    pigments = [*sorted({p for paint in paints for p in paint.pigments}), "ground"]
    shapes = np.stack([_pigment_spectrum(p, edges) for p in pigments])

    intensity, fractions = _pixel_mixtures(rng, class_map, paints, pigments, counts)
    photons = intensity[:, None] * fractions
    data = _poisson_counts(rng, photons, shapes).reshape(*shape, n_channels)

    labels, names = number_by_size(class_map, [p.name for p in paints])
    class_spectra = class_means(labels, fractions, len(names)) @ shapes
    parameters = dict(
        height=height, width=width, n_channels=n_channels, counts_per_pixel=counts,
        hard=hard, seed=seed, max_energy_kev=max_energy_kev,
    )
    return SyntheticCube(
        _counts_cube(data, edges, hard, parameters), labels, names, class_spectra, "poisson", None,
        _description(parameters, names), element_photons=_element_photons(photons, pigments, shape),
    )


def _description(parameters: dict[str, Any], names: tuple[str, ...]) -> str:
    """What the painting made with ``parameters`` shows, in one paragraph."""
    p = parameters
    return (
        f"Synthetic MA-XRF scan of a painting, {p['height']}x{p['width']} pixels, {p['n_channels']} "
        f"channels 0-{p['max_energy_kev']:g} keV, ~{p['counts_per_pixel']:g} Poisson counts per pixel; "
        f"{len(names)} pigment classes on a chalk/gypsum ground: " + ", ".join(names) + "."
        + (_HARD_NOTE if p["hard"] else "")
    )


def _element_photons(
    photons: np.ndarray, pigments: list[str], shape: tuple[int, int]
) -> dict[str, np.ndarray]:
    """Expected photons of each element (and of the scatter) per pixel, from each pigment's (P, M)."""
    parts = sorted({part for pigment in pigments for part in _PIGMENTS[pigment]})
    shares = np.array([[_PIGMENTS[pigment].get(part, 0.0) for part in parts] for pigment in pigments])
    per_part = (photons @ shares).astype(np.float32)
    return {part: per_part[:, i].reshape(shape) for i, part in enumerate(parts)}


def _counts_cube(data: np.ndarray, edges: np.ndarray, hard: bool, parameters: dict[str, Any]) -> Datacube:
    """The painting's counts as a Datacube on its keV axis, with how it was made."""
    return Datacube.from_array(
        data,
        spectral_values=0.5 * (edges[:-1] + edges[1:]),
        spectral_unit="keV",
        spectral_label="Energy",
        name="synthetic painting" + (" (hard)" if hard else ""),
        metadata={"source": "synthetic", "generator": "make_painting", "parameters": parameters},
    )


def _checked_counts(
    height: int, width: int, n_channels: int, counts: float | None, hard: bool, max_energy_kev: float
) -> float:
    """The mean counts per pixel (the default when None), once every size is checked."""
    check_image_size(height, width)
    if counts is None:
        counts = _COUNTS_HARD if hard else _COUNTS_STANDARD
    if n_channels < 16 or not counts > 0 or not max_energy_kev > 2.0:
        raise InputError(
            "make_painting needs n_channels >= 16, counts_per_pixel > 0 and "
            f"max_energy_kev > 2; got {n_channels}, {counts} and {max_energy_kev}"
        )
    return counts


def _pixel_mixtures(
    rng: np.random.Generator,
    class_map: np.ndarray,
    paints: list[_Paint],
    pigments: list[str],
    counts: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected photons per pixel (P,) and pigment fractions (P, pigments) of every pixel.

    Ground showing through, minor-pigment shares and brightness each vary
    smoothly across the image.
    """
    shape = class_map.shape
    size = min(shape)
    ground_field = smooth_field(rng, shape, size / 10).ravel()
    mixture_field = smooth_field(rng, shape, size / 10).ravel()
    intensity = 1.0 + 0.5 * smooth_field(rng, shape, size / 6).ravel()
    intensity *= counts / intensity.mean()
    flat_classes = class_map.ravel()
    fractions = np.zeros((flat_classes.size, len(pigments)))
    for index, paint in enumerate(paints):
        pixels = flat_classes == index
        fractions[pixels] = _paint_fractions(paint, ground_field[pixels], mixture_field[pixels], pigments)
    return intensity, fractions
