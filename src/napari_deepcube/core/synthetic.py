"""Sample datacubes with ground truth: an MA-XRF painting and a MUSE-like nebula.

Both generators are seeded (same seed, same cube), vectorised (a few spectral
templates times per-pixel amplitude maps, never a loop over pixels) and keep
what is needed to compute the attainable segmentation, :func:`attainable_labels`:
each pixel assigned to the most likely noise-free class spectrum under the
generator's own noise model. That limit, not 1.0, is what a method's adjusted
Rand index should be compared with.

Only numpy and scipy are used, so the module imports on a headless server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import ceil, sqrt

import numpy as np
from scipy.ndimage import distance_transform_edt, gaussian_filter
from scipy.ndimage import label as connected_components
from scipy.special import erf

from .cube import Datacube
from .errors import InputError
from .xray_lines import lines_of

#: Pixels handled at a time when sampling noise or scoring classes: keeps the
#: temporaries near 16-64 MB whatever the cube size.
_BLOCK_PIXELS = 4096


@dataclass(frozen=True)
class SyntheticCube:
    """A sample cube with its ground truth.

    Parameters
    ----------
    cube
        The datacube, (H, W, C) float32, with spectral values and unit.
    labels
        Ground truth, (H, W) uint8, classes numbered 1..k by decreasing size
        (ties by name).
    class_names
        Human name of each class; ``class_names[i]`` is label ``i + 1``.
    class_spectra
        (k, C) float64, the noise-free spectrum shape of each class, each row
        summing to 1: for the painting the mean expected spectrum of the class's
        pixels; for the nebula the emission-line spectrum per unit line flux
        (no continuum, no sky).
    noise
        ``"poisson"`` (photon counts) or ``"gaussian"`` (fluxes, can be negative).
    noise_sigma
        (C,) per-channel noise standard deviation for ``"gaussian"``, else None.
    description
        One paragraph saying what the cube shows and what makes it hard.
    nuisance_maps, nuisance_spectra
        Additive components that are not class-specific (stellar continuum, sky
        subtraction residuals), as low-rank factors: the cube's noise-free part
        is the class emission plus ``nuisance_maps @ nuisance_spectra``, with
        maps (H, W, r) and spectra (r, C). None for the painting.
    """

    cube: Datacube
    labels: np.ndarray
    class_names: tuple[str, ...]
    class_spectra: np.ndarray
    noise: str
    noise_sigma: np.ndarray | None
    description: str
    nuisance_maps: np.ndarray | None = None
    nuisance_spectra: np.ndarray | None = None

    @property
    def k(self) -> int:
        """Number of ground-truth classes."""
        return len(self.class_names)


# --------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------


def _check_image_size(height: int, width: int) -> None:
    if height < 16 or width < 16:
        raise InputError(
            f"a synthetic cube needs at least 16 x 16 pixels to hold its regions, "
            f"got {height} x {width}"
        )


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth random field with values in [-1, 1] (max |value| = 1), float32."""
    field = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field / np.abs(field).max()).astype(np.float32)


def _binned_gaussians(
    edges: np.ndarray, centres: np.ndarray, sigmas: np.ndarray, fluxes: np.ndarray
) -> np.ndarray:
    """Sum of Gaussian lines integrated over each channel, shape (C,).

    Integrating (rather than sampling the density at channel centres) keeps
    each line's flux exact when a line is only 1-2 channels wide.
    """
    z = (edges[None, :] - centres[:, None]) / (np.sqrt(2.0) * sigmas[:, None])
    return fluxes @ (0.5 * np.diff(erf(z), axis=1))


def _number_by_size(class_map: np.ndarray, names: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Renumber class indices 0..n-1 as labels 1..k by decreasing size, ties by name.

    Returns the uint8 label image and the names in label order. Classes with
    no pixel are dropped, so that labels stay 1..k without gaps.
    """
    sizes = np.bincount(class_map.ravel(), minlength=len(names))
    present = [i for i in range(len(names)) if sizes[i] > 0]
    order = sorted(present, key=lambda i: (-sizes[i], names[i]))
    lookup = np.zeros(len(names), dtype=np.uint8)
    lookup[order] = np.arange(1, len(order) + 1)
    return lookup[class_map], tuple(names[i] for i in order)


def _class_means(labels: np.ndarray, values: np.ndarray, k: int) -> np.ndarray:
    """Mean over each label's pixels of per-pixel rows ``values`` (P, M) -> (k, M)."""
    flat = labels.ravel().astype(np.intp) - 1
    sums = np.zeros((k, values.shape[1]))
    np.add.at(sums, flat, values)
    return sums / np.bincount(flat, minlength=k)[:, None]


# --------------------------------------------------------------------------
# MA-XRF painting
# --------------------------------------------------------------------------

# Detector response: Fano-limited silicon drift detector, 140 eV FWHM at Mn Kα.
_FWHM_MN_KEV = 0.140
_MN_KA_KEV = 5.899
_FANO = 0.114
_PAIR_ENERGY_KEV = 3.85e-3
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
_VORONOI_CELLS = 16


def _fwhm_kev(energy_kev: np.ndarray) -> np.ndarray:
    """Detector FWHM (keV): electronic noise plus Fano statistics."""
    fano = 2.3548**2 * _FANO * _PAIR_ENERGY_KEV
    return np.sqrt(_FWHM_MN_KEV**2 + fano * (np.asarray(energy_kev) - _MN_KA_KEV))


def _detection(energy_kev: np.ndarray) -> np.ndarray:
    """Fraction of photons recorded at each energy.

    The air path and the detector window absorb soft X-rays; a 0.5 mm silicon
    crystal lets hard ones through.
    """
    energy = np.maximum(energy_kev, 1e-3)
    return np.exp(-((1.6 / energy) ** 3)) * (1.0 - np.exp(-((24.0 / energy) ** 2.7)))


def _element_emission(element: str, edges: np.ndarray) -> np.ndarray:
    """Emitted line spectrum of one element per photon, binned on ``edges``."""
    lines = lines_of(element)
    has_k = any(line.family == "K" for line in lines)
    # A 40 kV tube excites K shells up to Sn well; L lines of such elements and
    # M lines of Au/Hg/Pb are then weak beside the main family.
    family = {"K": 1.0, "L": 0.3 if has_k else 1.0, "M": 0.08}
    energies = np.array([line.energy_kev for line in lines])
    weights = np.array([family[line.family] * line.relative_intensity for line in lines])
    sigmas = _fwhm_kev(energies) / 2.3548
    return _binned_gaussians(edges, energies, sigmas, weights / weights.sum())


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
    peaks = _binned_gaussians(
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
    y += 0.12 * size * _smooth_field(rng, shape, size / 8) + 1.5 * _smooth_field(rng, shape, 1.0)
    x += 0.12 * size * _smooth_field(rng, shape, size / 8) + 1.5 * _smooth_field(rng, shape, 1.0)
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
    score = distance_transform_edt(~on_path) + 0.8 * _smooth_field(rng, shape, 1.5)
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
    for start in range(0, n_pixels, _BLOCK_PIXELS):
        stop = min(start + _BLOCK_PIXELS, n_pixels)
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
    _check_image_size(height, width)
    counts = counts_per_pixel
    if counts is None:
        counts = _COUNTS_HARD if hard else _COUNTS_STANDARD
    if n_channels < 16 or not counts > 0 or not max_energy_kev > 2.0:
        raise InputError(
            "make_painting needs n_channels >= 16, counts_per_pixel > 0 and "
            f"max_energy_kev > 2; got {n_channels}, {counts} and {max_energy_kev}"
        )
    rng = np.random.default_rng(seed)
    shape = (height, width)
    size = min(shape)
    regions = _HARD_PAINTS if hard else _STANDARD_PAINTS
    paints = [*regions, _GOLD] if hard else list(regions)
    class_map = _painting_regions(rng, shape, len(regions))
    if hard:
        class_map[_stroke(rng, shape, round(_GOLD_FRACTION * height * width))] = len(regions)

    edges = np.linspace(0.0, max_energy_kev, n_channels + 1)
    pigments = [*sorted({p for paint in paints for p in paint.pigments}), "ground"]
    shapes = np.stack([_pigment_spectrum(p, edges) for p in pigments])

    ground_field = _smooth_field(rng, shape, size / 10).ravel()
    mixture_field = _smooth_field(rng, shape, size / 10).ravel()
    intensity = 1.0 + 0.5 * _smooth_field(rng, shape, size / 6).ravel()
    intensity *= counts / intensity.mean()
    flat_classes = class_map.ravel()
    fractions = np.zeros((flat_classes.size, len(pigments)))
    for index, paint in enumerate(paints):
        pixels = flat_classes == index
        fractions[pixels] = _paint_fractions(
            paint, ground_field[pixels], mixture_field[pixels], pigments
        )
    data = _poisson_counts(rng, intensity[:, None] * fractions, shapes).reshape(*shape, n_channels)

    labels, names = _number_by_size(class_map, [p.name for p in paints])
    class_spectra = _class_means(labels, fractions, len(names)) @ shapes
    parameters = dict(
        height=height, width=width, n_channels=n_channels, counts_per_pixel=counts,
        hard=hard, seed=seed, max_energy_kev=max_energy_kev,
    )
    cube = Datacube.from_array(
        data,
        spectral_values=0.5 * (edges[:-1] + edges[1:]),
        spectral_unit="keV",
        spectral_label="Energy",
        name="synthetic painting" + (" (hard)" if hard else ""),
        metadata={"source": "synthetic", "generator": "make_painting", "parameters": parameters},
    )
    description = (
        f"Synthetic MA-XRF scan of a painting, {height}x{width} pixels, {n_channels} channels "
        f"0-{max_energy_kev:g} keV, ~{counts:g} Poisson counts per pixel; {len(names)} "
        "pigment classes on a chalk/gypsum ground: " + ", ".join(names) + "."
        + (
            " Hard: two classes differ only in the vermilion fraction in lead white, "
            "and the gold leaf covers 1% of the pixels."
            if hard
            else ""
        )
    )
    return SyntheticCube(cube, labels, names, class_spectra, "poisson", None, description)


# --------------------------------------------------------------------------
# MUSE-like nebula
# --------------------------------------------------------------------------

_WAVELENGTH_START = 4750.0
_WAVELENGTH_STEP = 1.25
_N_WAVELENGTHS = 3681  # 4750-9350 Å, as MUSE's nominal mode
_LIGHT_SPEED_KMS = 299_792.458
_INSTRUMENT_FWHM = 2.5  # Å

# Air wavelengths (Å) of the nebular lines in range.
_NEBULAR_LINES = {
    "Hβ": 4861.33, "[OIII]4959": 4958.91, "[OIII]5007": 5006.84, "[NI]5200": 5199.35,
    "HeI5876": 5875.62, "[OI]6300": 6300.30, "[OI]6364": 6363.78, "[NII]6548": 6548.05,
    "Hα": 6562.80, "[NII]6583": 6583.45, "HeI6678": 6678.15, "[SII]6716": 6716.44,
    "[SII]6731": 6730.82, "[ArIII]7136": 7135.80, "[SIII]9069": 9068.60,
}
# Doublets fixed by atomic physics: weak member = strong member / ratio.
_DOUBLETS = {"[OIII]4959": ("[OIII]5007", 2.98), "[OI]6364": ("[OI]6300", 3.05),
             "[NII]6548": ("[NII]6583", 3.05)}


@dataclass(frozen=True)
class _GasClass:
    """Line fluxes relative to Hβ, and velocity dispersion (km/s), of one class."""

    name: str
    sigma_kms: float
    fluxes: dict[str, float]


# Typical ratios: HII [NII]/Hα 0.3, [SII]/Hα 0.2, [OIII]/Hβ 2; shocks
# [SII]/Hα 0.9, [NII]/Hα 1, strong [OI]; planetary nebulae [OIII]/Hβ 12;
# diffuse ionised gas [NII]/Hα and [SII]/Hα 0.5, weak [OIII].
_GAS_CLASSES = (
    _GasClass("HII region", 40.0, {
        "Hβ": 1.0, "[OIII]5007": 2.0, "[NI]5200": 0.02, "HeI5876": 0.12, "[OI]6300": 0.03,
        "Hα": 3.2, "[NII]6583": 0.96, "HeI6678": 0.035, "[SII]6716": 0.38, "[SII]6731": 0.27,
        "[ArIII]7136": 0.10, "[SIII]9069": 0.35,
    }),
    _GasClass("shock-ionised gas", 100.0, {
        "Hβ": 1.0, "[OIII]5007": 1.2, "[NI]5200": 0.25, "HeI5876": 0.06, "[OI]6300": 0.9,
        "Hα": 3.0, "[NII]6583": 3.0, "HeI6678": 0.02, "[SII]6716": 1.6, "[SII]6731": 1.2,
        "[ArIII]7136": 0.06, "[SIII]9069": 0.30,
    }),
    _GasClass("planetary nebula", 25.0, {
        "Hβ": 1.0, "[OIII]5007": 12.0, "[NI]5200": 0.04, "HeI5876": 0.16, "[OI]6300": 0.08,
        "Hα": 3.0, "[NII]6583": 1.0, "HeI6678": 0.045, "[SII]6716": 0.06, "[SII]6731": 0.10,
        "[ArIII]7136": 0.20, "[SIII]9069": 0.45,
    }),
    _GasClass("diffuse ionised gas", 50.0, {
        "Hβ": 1.0, "[OIII]5007": 0.6, "[NI]5200": 0.06, "HeI5876": 0.04, "[OI]6300": 0.30,
        "Hα": 3.2, "[NII]6583": 1.6, "HeI6678": 0.012, "[SII]6716": 0.96, "[SII]6731": 0.66,
        "[ArIII]7136": 0.03, "[SIII]9069": 0.20,
    }),
)
_HII, _SHOCK, _PN, _DIG = range(4)

# Night-sky lines (air, Å) with rough relative peak intensities: [OI] 5577
# and 6300/6364, Na D, and the OH Meinel bands that crowd the red.
_SKY_LINES = (
    (5577.34, 1.0), (5889.95, 0.25), (5895.92, 0.2), (6300.30, 0.6), (6363.78, 0.2),
    (6498.7, 0.1), (6533.0, 0.15), (6553.6, 0.15), (6577.2, 0.15), (6604.1, 0.15),
    (6834.0, 0.15), (6863.9, 0.3), (6912.6, 0.2), (6923.2, 0.3), (6948.9, 0.3),
    (7003.9, 0.2), (7244.9, 0.2), (7276.4, 0.35), (7316.3, 0.45), (7340.9, 0.4),
    (7369.2, 0.3), (7401.7, 0.25), (7571.7, 0.25), (7750.6, 0.45), (7794.1, 0.5),
    (7821.5, 0.4), (7853.3, 0.35), (7913.7, 0.4), (7964.6, 0.5), (7993.3, 0.55),
    (8344.6, 0.7), (8382.4, 0.3), (8399.2, 0.6), (8430.2, 0.55), (8465.4, 0.6),
    (8493.4, 0.45), (8504.8, 0.35), (8761.3, 0.4), (8778.3, 0.5), (8791.2, 0.5),
    (8827.1, 0.7), (8885.8, 0.75), (8919.6, 0.5), (8943.4, 0.55), (8958.1, 0.6),
    (8988.4, 0.6), (9001.4, 0.5), (9037.9, 0.5), (9049.2, 0.5), (9312.0, 0.7),
    (9337.9, 0.7),
)
# Stellar absorption features (Å, depth, sigma Å) of the old and young populations.
_OLD_STARS = ((4861.3, 0.06, 10.0), (5175.0, 0.15, 10.0), (5270.0, 0.06, 8.0),
              (5335.0, 0.05, 8.0), (5892.9, 0.10, 6.0), (6562.8, 0.05, 10.0),
              (8498.0, 0.08, 6.0), (8542.1, 0.12, 6.0), (8662.1, 0.10, 6.0))
_YOUNG_STARS = ((4861.3, 0.20, 20.0), (6562.8, 0.12, 18.0))


@dataclass(frozen=True)
class _NebulaSettings:
    """What changes between the standard and the hard nebula."""

    dig_halpha_snr: float  # optimal-extraction S/N of Hα in a mean DIG pixel
    pn_sizes: tuple[int, int]  # pixels per planetary nebula, min and max
    sky_residual: float  # residual amplitude, in units of the blue noise sigma
    sky_noise_gain: float  # how much sky lines raise the noise


_STANDARD_NEBULA = _NebulaSettings(10.0, (12, 30), 1.0, 8.0)
_HARD_NEBULA = _NebulaSettings(3.0, (3, 10), 3.0, 15.0)


def _wavelength_edges() -> np.ndarray:
    start = _WAVELENGTH_START - 0.5 * _WAVELENGTH_STEP
    return start + _WAVELENGTH_STEP * np.arange(_N_WAVELENGTHS + 1)


def _line_fluxes(gas: _GasClass) -> dict[str, float]:
    """The class's line fluxes, completed with the weak members of doublets."""
    fluxes = dict(gas.fluxes)
    for weak, (strong, ratio) in _DOUBLETS.items():
        if strong in fluxes:
            fluxes[weak] = fluxes[strong] / ratio
    return fluxes


def _emission_template(gas: _GasClass, velocity_kms: float, edges: np.ndarray) -> np.ndarray:
    """Line spectrum of a gas class at a velocity, summing to 1."""
    fluxes = _line_fluxes(gas)
    rest = np.array([_NEBULAR_LINES[line] for line in fluxes])
    centres = rest * (1.0 + velocity_kms / _LIGHT_SPEED_KMS)
    sigmas = np.hypot(centres * gas.sigma_kms / _LIGHT_SPEED_KMS, _INSTRUMENT_FWHM / 2.3548)
    spectrum = _binned_gaussians(edges, centres, sigmas, np.array(list(fluxes.values())))
    return spectrum / spectrum.sum()


def _stellar_continuum(
    wavelengths: np.ndarray, temperature: float, features: tuple[tuple[float, float, float], ...]
) -> np.ndarray:
    """Blackbody continuum with absorption features, mean 1 over the range."""
    planck = wavelengths**-5.0 / np.expm1(1.4388e8 / (wavelengths * temperature))
    absorption = sum(
        depth * np.exp(-0.5 * ((wavelengths - centre) / sigma) ** 2)
        for centre, depth, sigma in features
    )
    spectrum = planck * (1.0 - absorption)
    return spectrum / spectrum.mean()


def _sky_spectrum(edges: np.ndarray) -> np.ndarray:
    """Night-sky emission lines at the instrument's resolution, peak 1."""
    centres, intensities = np.array(_SKY_LINES).T
    sigma = _INSTRUMENT_FWHM / 2.3548
    sky = _binned_gaussians(edges, centres, np.full(centres.size, sigma), intensities)
    return sky / sky.max()


def _hii_regions(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Brightness of HII complexes (clumps of Gaussian blobs); HII where > 0.45."""
    size = min(shape)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    brightness = np.zeros(shape)
    for _ in range(4):
        centre = rng.uniform(0.1, 0.9, 2) * shape
        for _ in range(rng.integers(1, 4)):
            cy, cx = centre + rng.normal(0.0, 0.06 * size, 2)
            sigma = rng.uniform(0.05, 0.09) * size
            brightness += np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2.0 * sigma**2))
    return brightness * (1.0 + 0.25 * _smooth_field(rng, shape, 2.0))


def _shock_filaments(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Mask of two thin, wobbly arcs, like the limbs of supernova remnant shells."""
    size = min(shape)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    mask = np.zeros(shape, dtype=bool)
    half_width = max(1.0, 0.012 * size)
    for _ in range(2):
        cy, cx = rng.uniform(0.2, 0.8, 2) * shape
        radius = rng.uniform(0.15, 0.3) * size
        start, span = rng.uniform(0.0, 2.0 * np.pi), rng.uniform(1.5, 3.5)
        distance = np.hypot(y - cy, x - cx) + 0.03 * size * _smooth_field(rng, shape, size / 12)
        angle = np.mod(np.arctan2(y - cy, x - cx) - start, 2.0 * np.pi)
        mask |= (np.abs(distance - radius) < half_width) & (angle < span)
    return mask


def _planetary_nebulae(
    rng: np.random.Generator, free: np.ndarray, sizes: tuple[int, int], count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Compact blobs of ``sizes`` pixels placed inside ``free``, kept apart.

    Returns the mask and each pixel's distance to its nebula's centre.
    """
    shape = free.shape
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    mask = np.zeros(shape, dtype=bool)
    distance = np.full(shape, np.inf)
    room = np.zeros(shape, dtype=bool)
    room[1:-1, 1:-1] = free[1:-1, 1:-1]  # the image edge counts as occupied
    for _ in range(count):
        candidates = np.flatnonzero(distance_transform_edt(room) >= 4.0)
        if candidates.size == 0:
            break
        cy, cx = np.unravel_index(rng.choice(candidates), shape) + rng.uniform(-0.5, 0.5, 2)
        to_centre = np.hypot(y - cy, x - cx)
        ranked = np.argsort(to_centre + 0.3 * rng.random(shape), axis=None, kind="stable")
        blob = ranked[: rng.integers(sizes[0], sizes[1] + 1)]
        mask.flat[blob] = True
        distance.flat[blob] = to_centre.flat[blob]
        room &= to_centre > 8.0
    return mask, distance


def _nebula_layout(
    rng: np.random.Generator, shape: tuple[int, int], settings: _NebulaSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Class index map (order of ``_GAS_CLASSES``) and relative line flux.

    Fluxes are in units of the mean diffuse-gas flux: HII regions 3.6x and
    more, shocks ~3x, planetary nebulae up to 10x at their centre.
    """
    size = min(shape)
    classes = np.full(shape, _DIG)
    flux = 1.0 + 0.5 * _smooth_field(rng, shape, size / 6)
    shocks = _shock_filaments(rng, shape)
    classes[shocks] = _SHOCK
    flux[shocks] = 3.0 * (1.0 + 0.3 * _smooth_field(rng, shape, 3.0)[shocks])
    hii = _hii_regions(rng, shape)
    inside = hii > 0.45
    classes[inside] = _HII
    flux[inside] = 8.0 * hii[inside]
    n_pn = max(2, round(6 * shape[0] * shape[1] / 128**2))
    pn, centre_distance = _planetary_nebulae(rng, classes == _DIG, settings.pn_sizes, n_pn)
    classes[pn] = _PN
    flux[pn] = 10.0 * (0.3 + 0.7 * np.exp(-0.5 * (centre_distance[pn] / 1.5) ** 2))
    return classes, flux / flux[classes == _DIG].mean()


def _dig_flux_scale(sigma: np.ndarray, edges: np.ndarray, snr: float) -> float:
    """Mean diffuse-gas line flux giving Hα the requested S/N per pixel.

    S/N is that of optimal (matched-filter) extraction of the Hα line alone:
    flux * sqrt(sum((profile / sigma)^2)).
    """
    gas = _GAS_CLASSES[_DIG]
    halpha_only = _GasClass(gas.name, gas.sigma_kms, {"Hα": 1.0})
    profile = _emission_template(halpha_only, 0.0, edges)
    fluxes = _line_fluxes(gas)
    halpha_share = fluxes["Hα"] / sum(fluxes.values())
    return snr / (halpha_share * float(np.sqrt(np.sum((profile / sigma) ** 2))))


def _nuisance(
    rng: np.random.Generator, shape: tuple[int, int], edges: np.ndarray, sky_residual: float
) -> tuple[np.ndarray, np.ndarray]:
    """Continuum and sky-residual factors: maps (H, W, 4) and spectra (4, C).

    The continuum of an old and a young stellar population varies smoothly
    across the field, independent of the gas classes. Sky subtraction leaves
    residuals that vary per IFU slice (bands of rows): a scaled sky spectrum
    (positive or negative spikes) and its derivative (a wavelength shift).
    """
    height, width = shape
    size = min(shape)
    wavelengths = 0.5 * (edges[:-1] + edges[1:])
    sky = _sky_spectrum(edges)
    derivative = np.gradient(sky)
    spectra = np.stack([
        _stellar_continuum(wavelengths, 4500.0, _OLD_STARS),
        _stellar_continuum(wavelengths, 15000.0, _YOUNG_STARS),
        sky,
        derivative / np.abs(derivative).max(),
    ])
    y, x = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(-0.3, 1.3, 2) * shape  # galaxy centre, possibly off the field
    old = 5.0 * (0.3 + np.exp(-np.hypot(y - cy, x - cx) / (0.5 * size)))
    old *= 1.0 + 0.15 * _smooth_field(rng, shape, size / 8)
    young = 1.5 * np.clip(0.5 + _smooth_field(rng, shape, size / 10), 0.0, None)
    slices = np.arange(height) // 4

    def slice_pattern() -> np.ndarray:
        bands = rng.standard_normal(slices[-1] + 1)[slices][:, None]
        return sky_residual * (bands + 0.3 * rng.standard_normal(shape))

    maps = np.stack([old, young, slice_pattern(), 0.5 * slice_pattern()], axis=-1)
    return maps.astype(np.float32), spectra.astype(np.float32)


def _region_templates(
    rng: np.random.Generator, classes: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One emission template per connected region, each with its own velocity.

    Returns the region index of each pixel and the (R, C) templates.
    """
    region = np.zeros(classes.shape, dtype=np.intp)
    templates = []
    for index, gas in enumerate(_GAS_CLASSES):
        parts, n_parts = connected_components(classes == index)
        # Planetary nebulae move with the old stars, hence a wider spread.
        spread = 50.0 if index == _PN else 20.0
        for part in range(1, n_parts + 1):
            region[parts == part] = len(templates)
            templates.append(_emission_template(gas, rng.normal(0.0, spread), edges))
    return region, np.stack(templates)


def make_nebula(
    height: int = 128, width: int = 128, *, hard: bool = False, seed: int = 0
) -> SyntheticCube:
    """A MUSE-like integral-field cube of ionised gas in a nearby galaxy.

    Four classes with their typical emission-line ratios: HII regions (smooth
    blobs), shock-ionised filaments, compact planetary nebulae and faint
    diffuse ionised gas filling the rest. Lines have Gaussian profiles
    (velocity dispersion plus 2.5 Å instrumental FWHM) and each connected
    region its own small velocity shift; line flux varies across each region.
    Added on top, and not class-specific: an old and a young stellar
    continuum varying smoothly across the field, and sky-subtraction
    residuals at real sky-line wavelengths. Noise is Gaussian with a
    per-channel sigma that grows toward the red and at sky lines, so fluxes
    can be negative.

    Parameters
    ----------
    height, width
        Image size in pixels, at least 16 each.
    hard
        Fainter diffuse gas (Hα S/N ~3 per pixel instead of ~10), planetary
        nebulae of 3-10 pixels, stronger sky residuals and sky noise.
    seed
        Seed of ``np.random.default_rng``; the same seed gives the same cube.

    Returns
    -------
    SyntheticCube
        Fluxes (float32, 4750-9350 Å in 1.25 Å steps), labels, class names,
        emission templates, noise sigma and the continuum/sky factors.

    Raises
    ------
    InputError
        If the image is smaller than 16 x 16.
    """
    _check_image_size(height, width)
    rng = np.random.default_rng(seed)
    settings = _HARD_NEBULA if hard else _STANDARD_NEBULA
    shape = (height, width)
    edges = _wavelength_edges()
    wavelengths = 0.5 * (edges[:-1] + edges[1:])
    sky = _sky_spectrum(edges)
    red_ramp = 1.0 + 0.5 * (wavelengths - wavelengths[0]) / (wavelengths[-1] - wavelengths[0])
    sigma = red_ramp * np.sqrt(1.0 + settings.sky_noise_gain * sky)

    classes, relative_flux = _nebula_layout(rng, shape, settings)
    flux = relative_flux * _dig_flux_scale(sigma, edges, settings.dig_halpha_snr)
    region, templates = _region_templates(rng, classes, edges)
    nuisance_maps, nuisance_spectra = _nuisance(rng, shape, edges, settings.sky_residual)

    # Noise-free cube = [region one-hot * flux | nuisance maps] @ [templates; nuisance spectra]
    n_pixels = height * width
    n_regions = templates.shape[0]
    weights = np.zeros((n_pixels, n_regions + nuisance_spectra.shape[0]), dtype=np.float32)
    weights[np.arange(n_pixels), region.ravel()] = flux.ravel()
    weights[:, n_regions:] = nuisance_maps.reshape(n_pixels, -1)
    basis = np.concatenate([templates.astype(np.float32), nuisance_spectra])
    sigma32 = sigma.astype(np.float32)
    data = np.empty((n_pixels, _N_WAVELENGTHS), dtype=np.float32)
    for start in range(0, n_pixels, _BLOCK_PIXELS):
        block = slice(start, min(start + _BLOCK_PIXELS, n_pixels))
        data[block] = weights[block] @ basis
        data[block] += sigma32 * rng.standard_normal(data[block].shape, dtype=np.float32)

    labels, names = _number_by_size(classes, [g.name for g in _GAS_CLASSES])
    # Each class's mean template: its regions' templates weighted by their pixel counts.
    region_share = np.zeros((len(names), n_regions))
    np.add.at(region_share, (labels.ravel().astype(np.intp) - 1, region.ravel()), 1.0)
    class_spectra = (region_share / region_share.sum(axis=1, keepdims=True)) @ templates
    parameters = dict(height=height, width=width, hard=hard, seed=seed)
    cube = Datacube.from_array(
        data.reshape(height, width, _N_WAVELENGTHS),
        spectral_values=wavelengths,
        spectral_unit="Å",
        spectral_label="Wavelength",
        name="synthetic nebula" + (" (hard)" if hard else ""),
        metadata={"source": "synthetic", "generator": "make_nebula", "parameters": parameters},
    )
    description = (
        f"Synthetic MUSE-like cube, {height}x{width} spaxels, 4750-9350 Å: "
        + ", ".join(names)
        + f"; diffuse-gas Hα S/N ~{settings.dig_halpha_snr:g} per pixel, planetary nebulae "
        f"of {settings.pn_sizes[0]}-{settings.pn_sizes[1]} pixels, stellar continuum and "
        "sky residuals that are not class-specific, Gaussian noise (fluxes can be negative)."
    )
    return SyntheticCube(
        cube, labels, names, class_spectra, "gaussian", sigma, description,
        nuisance_maps, nuisance_spectra,
    )


# --------------------------------------------------------------------------
# The attainable segmentation
# --------------------------------------------------------------------------

#: Scores (n, k) of a block of pixels' spectra (n, C), given the block's slice
#: of the flattened image; higher is more likely.
_Scorer = Callable[[slice, np.ndarray], np.ndarray]


def attainable_labels(synthetic: SyntheticCube) -> np.ndarray:
    """Most likely class of each pixel given the noise-free class spectra.

    Poisson cubes: the multinomial log-likelihood ``sum_c x_c log p_kc``
    (per-pixel total counts carry no class information). Gaussian cubes: the
    known continuum and sky factors are subtracted, then each class template
    is fitted with a free non-negative amplitude under the per-channel sigma.
    This is a per-pixel limit: a method that uses neighbouring pixels (or,
    on the nebula, that faint pixels are mostly diffuse gas) can exceed it.

    Parameters
    ----------
    synthetic
        A cube from :func:`make_painting` or :func:`make_nebula`.

    Returns
    -------
    np.ndarray
        (H, W) uint8 labels 1..k, numbered as ``synthetic.labels``.
    """
    height, width, n_channels = synthetic.cube.shape
    flat = np.asarray(synthetic.cube.data).reshape(-1, n_channels)
    if synthetic.noise == "poisson":
        score = _multinomial_scorer(synthetic.class_spectra)
    else:
        score = _gaussian_scorer(synthetic)
    best = np.empty(flat.shape[0], dtype=np.uint8)
    for start in range(0, flat.shape[0], _BLOCK_PIXELS):
        block = slice(start, min(start + _BLOCK_PIXELS, flat.shape[0]))
        best[block] = 1 + np.argmax(score(block, flat[block]), axis=1)
    return best.reshape(height, width)


def _multinomial_scorer(class_spectra: np.ndarray) -> _Scorer:
    # The floor keeps channels a class never emits in (zero probability) from
    # vetoing it on a single stray count.
    probabilities = np.maximum(class_spectra, 1e-9)
    log_p = np.log(probabilities / probabilities.sum(axis=1, keepdims=True)).T

    def score(_: slice, counts: np.ndarray) -> np.ndarray:
        return counts.astype(np.float64) @ log_p

    return score


def _gaussian_scorer(synthetic: SyntheticCube) -> _Scorer:
    if (
        synthetic.noise_sigma is None
        or synthetic.nuisance_maps is None
        or synthetic.nuisance_spectra is None
    ):
        raise InputError(
            "a Gaussian-noise synthetic cube must carry its noise sigma and nuisance factors"
        )
    inverse_variance = 1.0 / synthetic.noise_sigma**2
    templates = synthetic.class_spectra
    # With the best amplitude a = max(0, b/q), b = <x, m>/σ², q = <m, m>/σ²,
    # the log-likelihood gain is b²/q when b > 0 and 0 otherwise: ranking by
    # b/sqrt(q) picks the same class and breaks the all-zero ties sensibly.
    norms = np.sqrt((templates**2) @ inverse_variance)
    weighted = (templates * inverse_variance).T / norms
    maps = synthetic.nuisance_maps.reshape(-1, synthetic.nuisance_maps.shape[-1])
    nuisance_spectra = synthetic.nuisance_spectra

    def score(block: slice, fluxes: np.ndarray) -> np.ndarray:
        residual = fluxes.astype(np.float64) - maps[block] @ nuisance_spectra
        return residual @ weighted

    return score
