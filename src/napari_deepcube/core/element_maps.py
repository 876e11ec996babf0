"""Element maps and spectral-window maps: one value per pixel from a few channels of a cube.

An element map is the net counts of an X-ray line: the counts in a window
around the line minus the background under it. The window's width follows
the detector's resolution at the line's energy, a Fano-limited silicon
detector's FWHM (:func:`detector_fwhm_kev`, from its FWHM at Mn Kα,
130 eV by default). The window spans ±1 FWHM around the line (98 % of a
Gaussian peak's counts); the background is a straight line through the
mean counts of two windows, one FWHM wide, that start 2 FWHM below and
above the line (:data:`BACKGROUND_OFFSET_FWHM`). This is the standard
choice of energy-dispersive microanalysis (HyperSpy's
``estimate_background_windows`` and ``get_lines_intensity`` use the same
widths): under a peak only a few FWHM wide the bremsstrahlung and scatter
continuum is smooth, so a straight line is exact to first order, and it
needs no fit per pixel, which at 100-2000 counts a pixel would follow the
noise. A background window that falls on a line of an element that may be
present (:func:`line_window`'s ``present``, or another line of the mapped
element) is dropped and the clean side's level taken as a flat background;
when both sides fall on lines, both are kept.

A window map (:func:`range_window`) is the sum or mean of the channels
between two positions of any spectral axis, with no background removed.

Both are linear in the counts, so every map is a weighted sum of a run of
channels (:class:`MapWindow`): :func:`compute_maps` reads only those channels,
a band of rows at a time, so that a memory-mapped or dask cube is never
loaded whole. :func:`rgb_composite` scales up to three maps by robust
percentiles into an RGB image.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .cube import finite_or_zero
from .errors import InputError
from .spectral import SpectralAxis
from .xray_lines import LOWEST_RECORDED_KEV, MAIN_LINE_INTENSITY, RESOLUTION_KEV, XrayLine, lines_of

#: Mn Kα energy (keV), where detector resolutions are quoted.
MN_KA_KEV = 5.899
#: Fano factor of silicon and the energy (keV) it takes to make one electron-hole pair.
FANO_SILICON = 0.114
PAIR_ENERGY_SILICON_KEV = 3.85e-3
#: FWHM of a Gaussian in standard deviations (2 sqrt(2 ln 2)).
FWHM_PER_SIGMA = 2.3548

#: Half-width of the line window, in FWHM at the line: ±1 FWHM holds 98 % of a Gaussian peak.
PEAK_HALF_WIDTH_FWHM = 1.0
#: Distance from the line to the near edge of each background window, and the window's width (FWHM).
BACKGROUND_OFFSET_FWHM = 2.0
BACKGROUND_WIDTH_FWHM = 1.0
#: A line at least this strong (relative to its family's strongest) spoils a background window it reaches.
NEIGHBOUR_INTENSITY = 0.1

#: Percentiles that scale a map for display: a few hot pixels do not set the range.
DISPLAY_PERCENTILES = (1.0, 99.5)

#: Values (pixels x channels) read from the cube at a time: 32 MB as float32.
BLOCK_VALUES = 1 << 23

Statistic = Literal["sum", "mean"]

_ASCII_GREEK = {"α": "a", "β": "b", "γ": "g", "ℓ": "l", "η": "n", "ζ": "z"}


@dataclass(frozen=True, eq=False)
class MapWindow:
    """A map's recipe: the weight of each channel in a run of channels.

    Parameters
    ----------
    name
        What is mapped: ``"Pb Lα"`` or ``"6.2-6.6 keV"``.
    quantity
        What a pixel's value is: ``"net counts"``, ``"sum"`` or ``"mean"``.
    window
        (start, stop) of the channels counted, in the axis's unit.
    background
        (start, stop) of each background window used, in the axis's unit.
    unit
        The spectral axis's unit.
    first_channel
        Index of the first channel of the run.
    weights
        Weight of each channel of the run, shape (n,): +1 in the line window and
        negative in the background windows for a line, 1 or 1/n for a window.
    """

    name: str
    quantity: str
    window: tuple[float, float]
    background: tuple[tuple[float, float], ...]
    unit: str
    first_channel: int
    weights: np.ndarray

    @property
    def channels(self) -> slice:
        """The run of channels the map reads."""
        return slice(self.first_channel, self.first_channel + self.weights.size)

    @property
    def title(self) -> str:
        """Layer and band name, e.g. ``"Pb Lα net counts"``."""
        return f"{self.name} {self.quantity}"

    def facts(self) -> dict[str, Any]:
        """The JSON-ready description a TIFF export keeps with the map."""
        return {
            "name": self.name,
            "quantity": self.quantity,
            "window": [float(v) for v in self.window],
            "background": [[float(v) for v in pair] for pair in self.background],
            "unit": self.unit,
        }


def detector_fwhm_kev(energy_kev: Any, fwhm_mn_kev: float = RESOLUTION_KEV) -> np.ndarray:
    """A silicon detector's FWHM at ``energy_kev``: electronic noise plus Fano statistics.

    FWHM(E)^2 = FWHM(Mn Kα)^2 + 8 ln 2 F ε (E - E(Mn Kα)), with the Fano
    factor F = 0.114 and ε = 3.85 eV a pair: the noise term is what is left of
    the resolution at Mn Kα once the charge statistics are taken out.

    Raises
    ------
    InputError
        If ``fwhm_mn_kev`` is below the Fano limit at Mn Kα (0.120 keV), which no
        silicon detector reaches.
    """
    fano = FWHM_PER_SIGMA**2 * FANO_SILICON * PAIR_ENERGY_SILICON_KEV
    if not fwhm_mn_kev**2 > fano * MN_KA_KEV:
        raise InputError(
            f"a detector resolution of {fwhm_mn_kev * 1000:.0f} eV at Mn Kα is below silicon's Fano "
            f"limit ({np.sqrt(fano * MN_KA_KEV) * 1000:.0f} eV); give the FWHM of the detector, "
            "typically 125-160 eV"
        )
    return np.sqrt(fwhm_mn_kev**2 + fano * (np.asarray(energy_kev, dtype=np.float64) - MN_KA_KEV))


def parse_lines(text: str) -> list[XrayLine]:
    """The X-ray lines a user typed, e.g. ``"Pb La, Fe Ka"`` or ``"Pb Lα; Hg Lb2,15"``.

    Entries are an element symbol and a line name (Siegbahn, ASCII or Greek,
    any case), separated by commas or semicolons.

    Raises
    ------
    InputError
        For an entry that is not an element and one of its lines, or no entry at all.
    """
    entries = [entry.strip() for entry in re.split(r"[;,](?!\s*\d)", text) if entry.strip()]
    if not entries:
        raise InputError("no X-ray line given; type lines such as Pb La, Fe Ka")
    return list(dict.fromkeys(_parse_line(entry) for entry in entries))


def _parse_line(entry: str) -> XrayLine:
    words = entry.split()
    if len(words) != 2:
        raise InputError(f"{entry!r} is not an X-ray line; write an element and a line, e.g. Pb La")
    element, name = words
    lines = lines_of(element)
    wanted = "".join(_ASCII_GREEK.get(char, char) for char in name).replace(" ", "").lower()
    for line in lines:
        if line.name.replace(" ", "").lower() == wanted:
            return line
    known = ", ".join(line.name for line in lines)
    raise InputError(f"{element.capitalize()} has no line {name!r}; its lines are {known}")


def main_lines(elements: Sequence[str], axis: SpectralAxis) -> list[XrayLine]:
    """Each element's main line on an X-ray axis: the strongest of its most energetic family there.

    Only a family whose main lines (:data:`~.xray_lines.MAIN_LINE_INTENSITY`)
    lie on the axis counts, so that a faint Pb Lℓ at the end of a 0-10 keV
    axis does not stand for lead.

    K before L before M: a source that excites a family excites it best
    above its edge, air absorbs its lines least, and fewer lines overlap
    them (Pb Lα rather than Pb Mα on a 0-40 keV axis). Elements with no
    line on the axis are left out; an axis that is no X-ray energy axis
    gives none.
    """
    energies = axis.kev
    if energies is None:
        return []
    found = []
    for element in elements:
        on_axis = [
            line for line in lines_of(element)
            if max(energies.min(), LOWEST_RECORDED_KEV) <= line.energy_kev <= energies.max()
        ]
        for family in "KLM":
            members = [
                line for line in on_axis
                if line.family == family and line.relative_intensity >= MAIN_LINE_INTENSITY
            ]
            if members:
                found.append(max(members, key=lambda line: line.relative_intensity))
                break
    return found


def window_statistic(axis: SpectralAxis) -> Statistic:
    """How a window map combines its channels: the sum of counts on an X-ray energy or channel
    axis, the mean elsewhere (a flux or reflectance keeps its unit)."""
    return "sum" if axis.kev is not None or not axis.calibrated else "mean"


def _energies_kev(axis: SpectralAxis) -> np.ndarray:
    energies = axis.kev
    if energies is None:
        raise InputError(
            f"element lines need an X-ray energy axis (keV or eV); this cube's axis is "
            f"{axis.title}: map a spectral window instead, or give the cube its energy calibration"
        )
    return energies


def _channels_in(values: np.ndarray, start: float, stop: float) -> np.ndarray:
    """Indices of the channels whose position lies in [start, stop]; the nearest one if none does."""
    inside = np.flatnonzero((values >= start) & (values <= stop))
    if inside.size == 0:
        inside = np.array([int(np.argmin(np.abs(values - 0.5 * (start + stop))))])
    return inside


def _spoiled(start: float, stop: float, neighbours: Sequence[XrayLine], fwhm_mn_kev: float) -> bool:
    """Whether a window [start, stop] (keV) lies within 1 FWHM of a neighbour line."""
    for other in neighbours:
        if other.relative_intensity < NEIGHBOUR_INTENSITY:
            continue
        reach = float(detector_fwhm_kev(other.energy_kev, fwhm_mn_kev))
        if other.energy_kev + reach > start and other.energy_kev - reach < stop:
            return True
    return False


def line_window(
    axis: SpectralAxis,
    line: XrayLine,
    *,
    fwhm_mn_kev: float = RESOLUTION_KEV,
    present: Sequence[str] = (),
) -> MapWindow:
    """The net-count window of ``line`` on an X-ray energy axis, background windows included.

    Parameters
    ----------
    axis
        The cube's spectral axis, in keV or eV.
    line
        The line to map.
    fwhm_mn_kev
        The detector's FWHM at Mn Kα, in keV.
    present
        Symbols of elements that may be present (those a user picked or the
        spectrum shows): a background window within 1 FWHM of one of their
        lines, or of another line of ``line``'s own element, is dropped while
        the other side is clean.

    Raises
    ------
    InputError
        If the axis is no X-ray energy axis, or the line window or both
        background windows lie off the axis.
    """
    energies = _energies_kev(axis)
    fwhm = float(detector_fwhm_kev(line.energy_kev, fwhm_mn_kev))
    low, high = line.energy_kev - PEAK_HALF_WIDTH_FWHM * fwhm, line.energy_kev + PEAK_HALF_WIDTH_FWHM * fwhm
    if high < energies.min() or low > energies.max():
        raise InputError(
            f"{line.display_name} ({line.energy_kev:g} keV) lies off this cube's energy axis "
            f"({energies.min():g}-{energies.max():g} keV); pick a line on the axis"
        )
    near, far = BACKGROUND_OFFSET_FWHM * fwhm, (BACKGROUND_OFFSET_FWHM + BACKGROUND_WIDTH_FWHM) * fwhm
    sides = [(line.energy_kev - far, line.energy_kev - near), (line.energy_kev + near, line.energy_kev + far)]
    sides = [(start, stop) for start, stop in sides if start >= energies.min() and stop <= energies.max()]
    if not sides:
        raise InputError(
            f"{line.display_name} lies too close to the ends of the energy axis for a background "
            "window on either side; map a spectral window instead"
        )
    elements = dict.fromkeys([line.element, *(symbol.capitalize() for symbol in present)])
    others = [
        other for element in elements for other in lines_of(element)
        if abs(other.energy_kev - line.energy_kev) > fwhm
    ]
    clean = [side for side in sides if not _spoiled(*side, others, fwhm_mn_kev)]
    sides = clean or sides
    return _net_window(axis, energies, line, (low, high), sides)


def _net_window(
    axis: SpectralAxis,
    energies: np.ndarray,
    line: XrayLine,
    window: tuple[float, float],
    sides: list[tuple[float, float]],
) -> MapWindow:
    """Weights that give the counts in ``window`` minus a straight background through ``sides``.

    The background at a channel x is L + (R - L)(x - xL)/(xR - xL), L and R
    the mean counts of the two sides at their mean positions xL and xR;
    summed over the line window it is a fixed combination of the side
    channels, so the net counts are one weighted sum per pixel.
    """
    peak = _channels_in(energies, *window)
    side_channels = [np.setdiff1d(_channels_in(energies, *side), peak) for side in sides]
    side_channels = [channels for channels in side_channels if channels.size]
    if not side_channels:
        raise InputError(
            f"the energy axis is too coarse to tell {line.display_name}'s peak from its background; "
            "map a spectral window instead"
        )
    first = int(min(peak.min(), *(c.min() for c in side_channels)))
    last = int(max(peak.max(), *(c.max() for c in side_channels)))
    weights = np.zeros(last - first + 1)
    weights[peak - first] += 1.0
    if len(side_channels) == 1:
        weights[side_channels[0] - first] -= peak.size / side_channels[0].size
    else:
        left, right = side_channels
        x_left, x_right = energies[left].mean(), energies[right].mean()
        share = float(np.sum((energies[peak] - x_left) / (x_right - x_left)))
        weights[left - first] -= (peak.size - share) / left.size
        weights[right - first] -= share / right.size
    to_axis = 1000.0 if axis.unit == "eV" else 1.0
    return MapWindow(
        line.display_name, "net counts",
        (window[0] * to_axis, window[1] * to_axis),
        tuple((start * to_axis, stop * to_axis) for start, stop in sides),
        axis.unit, first, weights,
    )


def range_window(axis: SpectralAxis, start: float, stop: float, statistic: Statistic = "sum") -> MapWindow:
    """The sum or mean of the channels between ``start`` and ``stop`` (axis units), any axis.

    A window narrower than a channel takes the nearest channel.

    Raises
    ------
    InputError
        If a bound is not finite, the window lies off the axis, or the
        statistic is unknown.
    """
    if statistic not in ("sum", "mean"):
        raise InputError(f"a window map is a 'sum' or a 'mean' of its channels, not {statistic!r}")
    if not (np.isfinite(start) and np.isfinite(stop)):
        raise InputError(f"a spectral window needs finite bounds, got {start}:{stop}")
    low, high = sorted((float(start), float(stop)))
    values = axis.values
    if high < values.min() or low > values.max():
        raise InputError(
            f"the window {low:g}:{high:g} lies off the cube's axis ({values.min():g}-{values.max():g} "
            f"{axis.unit}); choose one on the axis"
        )
    channels = _channels_in(values, low, high)
    first = int(channels.min())
    weights = np.zeros(int(channels.max()) - first + 1)
    weights[channels - first] = 1.0 if statistic == "sum" else 1.0 / channels.size
    unit = "" if not axis.calibrated else f" {axis.unit}"
    name = f"{low:g}-{high:g}{unit}" if axis.calibrated else f"channels {low:g}-{high:g}"
    return MapWindow(name, statistic, (low, high), (), axis.unit, first, weights)


def compute_maps(data: Any, windows: Sequence[MapWindow], *, block_values: int = BLOCK_VALUES) -> np.ndarray:
    """Each window's map of an (H, W, C) cube, shape (n, H, W) float32.

    Reads only each window's channels, a band of rows of about
    ``block_values`` values at a time, so a memory-mapped, dask, zarr or
    HDF5 cube is never loaded whole; NaN and Inf values count as zero.

    Raises
    ------
    InputError
        If ``data`` is not 3-D or a window reaches past its last channel.
    """
    shape = tuple(data.shape)
    if len(shape) != 3:
        raise InputError(f"element and window maps need an (H, W, C) cube, got shape {shape}")
    height, width, n_channels = shape
    maps = np.zeros((len(windows), height, width), dtype=np.float32)
    for index, window in enumerate(windows):
        if window.channels.stop > n_channels:
            raise InputError(
                f"the {window.title} map needs channel {window.channels.stop - 1}, but the cube "
                f"has {n_channels}; compute its window on this cube's axis"
            )
        rows_per_block = max(1, block_values // max(width * window.weights.size, 1))
        for top in range(0, height, rows_per_block):
            rows = slice(top, min(top + rows_per_block, height))
            block = finite_or_zero(np.asarray(data[rows, :, window.channels], dtype=np.float32))
            maps[index, rows] = block @ window.weights
    return maps


def display_limits(image: np.ndarray) -> tuple[float, float]:
    """Contrast limits of a map: its :data:`DISPLAY_PERCENTILES`, widened when they meet."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, DISPLAY_PERCENTILES))
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    return (low, high) if high > low else (low, low + 1.0)


def rgb_composite(maps: Sequence[np.ndarray]) -> np.ndarray:
    """Up to three maps as the red, green and blue of one image, (H, W, 3) float32 in [0, 1].

    Each map is scaled from its :func:`display_limits` to [0, 1]; the colours
    of absent maps stay black.

    Raises
    ------
    InputError
        For no map, more than three, or maps of different shapes.
    """
    if not 1 <= len(maps) <= 3:
        raise InputError(f"an RGB composite takes one to three maps, got {len(maps)}")
    shapes = {np.shape(image) for image in maps}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise InputError(f"the maps of an RGB composite must be 2-D and of one shape, got {sorted(shapes)}")
    height, width = next(iter(shapes))
    rgb = np.zeros((height, width, 3), dtype=np.float32)
    for channel, image in enumerate(maps):
        low, high = display_limits(np.asarray(image))
        rgb[..., channel] = np.clip((np.nan_to_num(image, nan=low) - low) / (high - low), 0.0, 1.0)
    return rgb
