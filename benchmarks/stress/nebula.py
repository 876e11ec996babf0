"""MUSE-like emission-line nebulae whose classes are not one spectrum plus white noise.

Classes: sky (no gas), diffuse ionised gas (large and faint), HII regions,
supernova-remnant shocks and planetary nebulae (compact, about 1 % of the
pixels); surface brightness varies inside every class. What the method's class
model leaves out, switched on one at a time:

* ``ionisation``: line ratios that vary continuously inside each class
  (ionisation changes across an HII region);
* ``velocity``: a rotating disk, +-150 km/s across the field, plus each HII
  region's and nebula's own motion;
* ``extinction``: dust reddening that grows across the field, with dust lanes;
* ``stellar``: the continuum of three stellar populations (young with strong
  Balmer absorption, intermediate, old with Mg b, Na D and the Ca triplet) whose
  mix varies smoothly, over all classes, sky included;
* ``sky_stripes``: sky-subtraction residuals (OH and [O I] sky lines and their
  wavelength derivative) that change from one IFU slice (a band of rows) to the next;
* ``heteroscedastic``: noise from read-out, sky lines and the source, and
  exposure that varies between slices;
* ``seeing``: the atmosphere blurs the image by a Gaussian of 1.2 pixels;
* ``faint``: the diffuse gas at half the brightness, beside as much pure sky.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.ndimage import label as connected

from ._common import StressCube, blob, smooth_field

#: Rest wavelengths (Angstrom) of the lines.
LINES = {
    "Hb": 4861.3,
    "OIII4959": 4958.9,
    "OIII5007": 5006.8,
    "NI5200": 5199.0,
    "HeI5876": 5875.6,
    "OI6300": 6300.3,
    "OI6364": 6363.8,
    "NII6548": 6548.1,
    "Ha": 6562.8,
    "NII6583": 6583.5,
    "SII6716": 6716.4,
    "SII6731": 6730.8,
    "ArIII7136": 7135.8,
    "SIII9069": 9068.6,
}
#: Line fluxes relative to H-alpha at the two ends of each class's internal
#: variation (low and high ionisation), and the line width (km/s).
CLASSES: dict[str, tuple[dict[str, float], dict[str, float], float]] = {
    "diffuse gas": (
        {"Hb": 0.33, "OIII5007": 0.08, "NII6583": 0.55, "SII6716": 0.35, "SII6731": 0.25, "OI6300": 0.05},
        {"Hb": 0.33, "OIII5007": 0.25, "NII6583": 0.85, "SII6716": 0.50, "SII6731": 0.35, "OI6300": 0.08},
        35.0,
    ),
    "HII region": (
        {
            "Hb": 0.35,
            "OIII5007": 0.25,
            "NII6583": 0.35,
            "SII6716": 0.12,
            "SII6731": 0.09,
            "HeI5876": 0.03,
            "SIII9069": 0.12,
            "ArIII7136": 0.02,
            "OI6300": 0.01,
        },
        {
            "Hb": 0.35,
            "OIII5007": 1.40,
            "NII6583": 0.15,
            "SII6716": 0.06,
            "SII6731": 0.05,
            "HeI5876": 0.04,
            "SIII9069": 0.18,
            "ArIII7136": 0.06,
            "OI6300": 0.005,
        },
        25.0,
    ),
    "shock": (
        {
            "Hb": 0.33,
            "OIII5007": 0.3,
            "NII6583": 0.7,
            "SII6716": 0.55,
            "SII6731": 0.45,
            "OI6300": 0.20,
            "OI6364": 0.07,
            "NI5200": 0.05,
        },
        {
            "Hb": 0.33,
            "OIII5007": 0.9,
            "NII6583": 1.1,
            "SII6716": 0.75,
            "SII6731": 0.60,
            "OI6300": 0.35,
            "OI6364": 0.12,
            "NI5200": 0.08,
        },
        80.0,
    ),
    "planetary nebula": (
        {"Hb": 0.35, "OIII5007": 8.0, "NII6583": 0.3, "HeI5876": 0.05, "ArIII7136": 0.10, "SII6716": 0.03},
        {"Hb": 0.35, "OIII5007": 14.0, "NII6583": 1.0, "HeI5876": 0.06, "ArIII7136": 0.15, "SII6716": 0.06},
        20.0,
    ),
}
#: H-alpha flux per pixel of each class, in units of the per-channel noise.
BRIGHTNESS = {"diffuse gas": 6.0, "HII region": 40.0, "shock": 15.0, "planetary nebula": 30.0}
SKY_LINES = (5577.3, 5889.9, 6300.3, 6363.8, 6863.9, 7276.4, 7340.9, 7913.7, 8344.6, 8399.2, 8827.1, 8885.8)
_C_KMS = 299_792.458
_INSTRUMENT_FWHM = 2.5  # Angstrom
_SLICE_ROWS = 4


@dataclass(frozen=True)
class NebulaStress:
    """Which assumptions one nebula breaks (see the module docstring)."""

    velocity: bool = False
    extinction: bool = False
    stellar: bool = False
    sky_stripes: bool = False
    heteroscedastic: bool = False
    seeing: bool = False
    faint: bool = False
    ionisation: bool = False
    size: int = 96


def _wavelengths() -> np.ndarray:
    return 4750.0 + 1.25 * np.arange(3681)


def _layout(rng: np.random.Generator, size: int) -> np.ndarray:
    """Sky over a third of the field, diffuse gas over most of the rest, compact regions in it."""
    shape = (size, size)
    gas = smooth_field(rng, shape, size / 8)
    labels = np.where(gas > np.quantile(gas, 0.35), 2, 1)
    taken = labels == 1
    for _ in range(4):
        region = blob(rng, shape, int(0.045 * labels.size), avoid=taken)
        labels[region], taken = 3, taken | region
    for _ in range(2):
        region = blob(rng, shape, int(0.03 * labels.size), avoid=taken)
        labels[region], taken = 4, taken | region
    for _ in range(3):
        region = blob(rng, shape, max(int(0.004 * labels.size), 8), avoid=taken)
        labels[region], taken = 5, taken | region
    return labels


def _line_spectrum(
    ratios: dict[str, float], velocity: np.ndarray, width_kms: float, wave: np.ndarray
) -> np.ndarray:
    """(N, C) emission of N pixels per unit H-alpha flux; ``ratios`` (N,) arrays or scalars per line."""
    lines = {"Ha": 1.0, **ratios}
    lines["OIII4959"] = lines.get("OIII5007", 0.0) / 2.98
    lines["NII6548"] = lines.get("NII6583", 0.0) / 3.0
    spectrum = np.zeros((velocity.size, wave.size))
    step = wave[1] - wave[0]
    for line, flux in lines.items():
        sigma = np.hypot(_INSTRUMENT_FWHM / 2.355, LINES[line] * width_kms / _C_KMS)
        window = np.abs(wave - LINES[line]) < 10.0 + 8 * sigma
        centre = LINES[line] * (1 + velocity / _C_KMS)
        offsets = wave[window][None, :] - centre[:, None]
        profile = np.exp(-0.5 * (offsets / sigma) ** 2) * step / (np.sqrt(2 * np.pi) * sigma)
        spectrum[:, window] += np.reshape(flux, (-1, 1)) * profile
    return spectrum


def _reddening(wave: np.ndarray, colour_excess: np.ndarray) -> np.ndarray:
    """(N, C) transmission through dust of E(B-V) ``colour_excess``, A_V = 3.1 E(B-V)."""
    extinction = 3.1 * (wave / 5500.0) ** -1.3
    return 10 ** (-0.4 * colour_excess[:, None] * extinction[None, :])


def _absorption(wave: np.ndarray, lines: dict[float, float], velocity: np.ndarray) -> np.ndarray:
    """(N, C) multiplicative stellar absorption lines (equivalent width, Angstrom), 80 km/s wide."""
    depth = np.zeros((velocity.size, wave.size))
    for centre, width in lines.items():
        sigma = centre * 80.0 / _C_KMS
        window = np.abs(wave - centre) < 30.0
        offsets = wave[window][None, :] - (centre * (1 + velocity / _C_KMS))[:, None]
        depth[:, window] += width * np.exp(-0.5 * (offsets / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
    return np.clip(1.0 - depth, 0.0, 1.0)


#: Stellar populations: continuum slope and absorption lines (rest Angstrom: equivalent width).
POPULATIONS = (
    (-2.0, {4861.3: 7.0, 6562.8: 5.0, 8545.4: 1.0, 8665.0: 1.0}),
    (0.0, {4861.3: 4.0, 5175.0: 2.0, 5893.0: 1.5, 6562.8: 2.5}),
    (0.8, {5175.0: 4.5, 5270.0: 2.0, 5335.0: 1.5, 5893.0: 3.5, 8498.0: 1.3, 8542.0: 3.0, 8662.0: 2.5}),
)


def _stellar(
    rng: np.random.Generator, shape: tuple[int, int], wave: np.ndarray, velocity: np.ndarray
) -> np.ndarray:
    """(N, C) continuum of three stellar populations mixed smoothly over an exponential disk."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    radius = np.hypot(rows - shape[0] / 2, cols - shape[1] / 2).ravel() / shape[0]
    disk = 2.0 * np.exp(-radius / 0.35)
    weights = np.stack([smooth_field(rng, shape, shape[0] / 6).ravel() + 0.2 for _ in POPULATIONS], axis=1)
    weights /= weights.sum(axis=1, keepdims=True)
    continuum = np.zeros((radius.size, wave.size))
    for weight, (slope, lines) in zip(weights.T, POPULATIONS, strict=True):
        shape_ = (wave / 6500.0) ** slope
        continuum += (disk * weight)[:, None] * shape_[None, :] * _absorption(wave, lines, velocity)
    return continuum


def _sky(wave: np.ndarray) -> np.ndarray:
    """Sky emission in units of the read-out noise: OH and [O I] lines over a faint continuum."""
    sky = np.full(wave.shape, 0.5)
    for index, line in enumerate(SKY_LINES):
        sky += (60.0 if index < 3 else 30.0) * np.exp(-0.5 * ((wave - line) / 1.1) ** 2)
    return sky


def _sky_residuals(rng: np.random.Generator, shape: tuple[int, int], wave: np.ndarray) -> np.ndarray:
    """(N, C) sky-subtraction residuals, one scale and one wavelength shift per IFU slice."""
    sky = _sky(wave)
    slope = np.gradient(sky, wave)
    n_slices = -(-shape[0] // _SLICE_ROWS)
    scale = rng.normal(0.0, 0.02, n_slices)
    shift = rng.normal(0.0, 0.06, n_slices)
    per_slice = scale[:, None] * sky[None, :] + shift[:, None] * slope[None, :]
    rows = np.repeat(np.arange(shape[0]) // _SLICE_ROWS, shape[1])
    return per_slice[rows]


def _noise_sigma(
    rng: np.random.Generator, shape: tuple[int, int], wave: np.ndarray, signal: np.ndarray
) -> np.ndarray:
    """(N, C) noise: read-out, sky photons and the source's own, over exposures that vary by slice."""
    n_slices = -(-shape[0] // _SLICE_ROWS)
    exposures = rng.choice([1.0, 1.0, 0.5], n_slices)
    rows = np.repeat(np.arange(shape[0]) // _SLICE_ROWS, shape[1])
    variance = 0.4 + 0.6 * _sky(wave)[None, :] / 0.5 / 40.0 + 0.05 * np.clip(signal, 0, None)
    return np.sqrt(variance / exposures[rows][:, None])


def _velocity(rng: np.random.Generator, labels: np.ndarray, rotating: bool) -> np.ndarray:
    """(N,) line-of-sight velocity: a rotating disk plus each compact region's own motion."""
    if not rotating:
        return np.zeros(labels.size)
    rows, cols = np.mgrid[0 : labels.shape[0], 0 : labels.shape[1]]
    y, x = rows - labels.shape[0] / 2, cols - labels.shape[1] / 2
    velocity = 150.0 * np.tanh(np.hypot(x, y) / (0.2 * labels.shape[0])) * np.cos(np.arctan2(y, x))
    for value in (3, 4, 5):
        parts, count = connected(labels == value)
        for part in range(1, count + 1):
            velocity[parts == part] += rng.normal(0.0, 25.0)
    return velocity.ravel()


def _gas(rng, labels, stress: NebulaStress, wave: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """(N, C) emission of every pixel's gas, with surface brightness and ionisation varying inside a class."""
    flat = labels.ravel()
    emission = np.zeros((flat.size, wave.size))
    ionisation = smooth_field(rng, labels.shape, labels.shape[0] / 10).ravel()
    brightness = 0.5 + smooth_field(rng, labels.shape, labels.shape[0] / 12).ravel()
    for value, name in enumerate(CLASSES, start=2):
        low, high, width = CLASSES[name]
        pixels = np.flatnonzero(flat == value)
        position = ionisation[pixels] if stress.ionisation else np.full(pixels.size, 0.5)
        ratios = {
            line: low.get(line, 0.0) + (high.get(line, 0.0) - low.get(line, 0.0)) * position for line in low
        }
        flux = BRIGHTNESS[name] * (0.5 if stress.faint and name == "diffuse gas" else 1.0)
        emission[pixels] = (flux * brightness[pixels])[:, None] * _line_spectrum(
            ratios, velocity[pixels], width, wave
        )
    return emission


def make_nebula(stress: NebulaStress, seed: int) -> StressCube:
    """A sky-subtracted nebula cube breaking the assumptions ``stress`` names, from ``seed``."""
    rng = np.random.default_rng(seed)
    wave = _wavelengths()
    labels = _layout(rng, stress.size)
    shape = labels.shape
    velocity = _velocity(rng, labels, stress.velocity)
    signal = _gas(rng, labels, stress, wave, velocity)
    if stress.stellar:
        signal += _stellar(rng, shape, wave, velocity)
    if stress.extinction:
        dust = 0.4 * (np.linspace(0, 1, shape[1])[None, :] * 0.6 + 0.4 * smooth_field(rng, shape, 6.0))
        signal *= _reddening(wave, dust.ravel())
    if stress.seeing:
        signal = gaussian_filter(signal.reshape((*shape, wave.size)), (1.2, 1.2, 0)).reshape(signal.shape)
    if stress.sky_stripes:
        signal += _sky_residuals(rng, shape, wave)
    sigma = _noise_sigma(rng, shape, wave, signal) if stress.heteroscedastic else 1.0
    data = signal + sigma * rng.standard_normal(signal.shape)
    variance = np.broadcast_to(np.square(sigma, dtype=np.float32), signal.shape)
    return StressCube(
        data=data.reshape((*shape, wave.size)).astype(np.float32),
        labels=labels,
        spectral_values=wave,
        spectral_unit="Angstrom",
        description=f"MUSE-like nebula {stress}",
        variance=variance.reshape((*shape, wave.size)),
    )
