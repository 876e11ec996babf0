"""A synthetic MUSE-like nebula: emission-line gas, stellar continuum, sky residuals and Gaussian noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.ndimage import label as connected_components

from ..cube import Datacube
from ._common import (
    BLOCK_PIXELS,
    SyntheticCube,
    binned_gaussians,
    check_image_size,
    number_by_size,
    smooth_field,
)

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
    spectrum = binned_gaussians(edges, centres, sigmas, np.array(list(fluxes.values())))
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
    sky = binned_gaussians(edges, centres, np.full(centres.size, sigma), intensities)
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
    return brightness * (1.0 + 0.25 * smooth_field(rng, shape, 2.0))


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
        distance = np.hypot(y - cy, x - cx) + 0.03 * size * smooth_field(rng, shape, size / 12)
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
    flux = 1.0 + 0.5 * smooth_field(rng, shape, size / 6)
    shocks = _shock_filaments(rng, shape)
    classes[shocks] = _SHOCK
    flux[shocks] = 3.0 * (1.0 + 0.3 * smooth_field(rng, shape, 3.0)[shocks])
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
    old *= 1.0 + 0.15 * smooth_field(rng, shape, size / 8)
    young = 1.5 * np.clip(0.5 + smooth_field(rng, shape, size / 10), 0.0, None)
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
    templates: list[np.ndarray] = []
    for index, gas in enumerate(_GAS_CLASSES):
        parts, n_parts = connected_components(classes == index)
        # Planetary nebulae move with the old stars, hence a wider spread.
        spread = 50.0 if index == _PN else 20.0
        for part in range(1, n_parts + 1):
            region[parts == part] = len(templates)
            templates.append(_emission_template(gas, rng.normal(0.0, spread), edges))
    return region, np.stack(templates)


def _noisy_fluxes(
    rng: np.random.Generator,
    region: np.ndarray,
    flux: np.ndarray,
    templates: np.ndarray,
    nuisance_maps: np.ndarray,
    nuisance_spectra: np.ndarray,
    sigma: np.ndarray,
) -> np.ndarray:
    """Every pixel's spectrum (P, C) float32: class emission, continuum and sky, plus Gaussian noise.

    Noise-free cube = [region one-hot * flux | nuisance maps] @ [templates; nuisance spectra].
    """
    n_pixels = region.size
    n_regions = templates.shape[0]
    weights = np.zeros((n_pixels, n_regions + nuisance_spectra.shape[0]), dtype=np.float32)
    weights[np.arange(n_pixels), region.ravel()] = flux.ravel()
    weights[:, n_regions:] = nuisance_maps.reshape(n_pixels, -1)
    basis = np.concatenate([templates.astype(np.float32), nuisance_spectra])
    sigma32 = sigma.astype(np.float32)
    data = np.empty((n_pixels, _N_WAVELENGTHS), dtype=np.float32)
    for start in range(0, n_pixels, BLOCK_PIXELS):
        block = slice(start, min(start + BLOCK_PIXELS, n_pixels))
        data[block] = weights[block] @ basis
        data[block] += sigma32 * rng.standard_normal(data[block].shape, dtype=np.float32)
    return data


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
    check_image_size(height, width)
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

    data = _noisy_fluxes(rng, region, flux, templates, nuisance_maps, nuisance_spectra, sigma)
    n_regions = templates.shape[0]

    labels, names = number_by_size(classes, [g.name for g in _GAS_CLASSES])
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
