"""Characteristic X-ray lines of every element from boron to uranium, from xraydb.

Energies and transition probabilities are xraydb's (Elam, Ravel and Sieber
2002). A spectrum shows the lines of a family (K, L, M) in proportion to how
often the photons of a tube (above every edge of the family) leave a
vacancy in each subshell, its fluorescence yield and the line's share of the
subshell's transitions; the vacancies follow from the edge jump ratios and
the Coster-Kronig transitions between subshells. Lines closer
together than :data:`MERGE_KEV` are one line at an energy-dispersive
detector's resolution (Kα1 and Kα2 below Z = 40): they are merged under the
name and energy of the stronger. Relative intensities are relative to the
strongest line of the same element and family: good enough to decide which
lines are worth naming and to draw realistic spectra, not for quantification.

The GUI uses :func:`label_peaks` to mark element lines on a spectrum plot and
:func:`lines_of` for the lines of the elements a user picks;
:mod:`napari_deepcube.core.synthetic` uses :func:`lines_of` to draw MA-XRF spectra.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import xraydb
from scipy.ndimage import percentile_filter
from scipy.signal import find_peaks

from .errors import InputError

_GREEK = {"a": "α", "b": "β", "g": "γ", "l": "ℓ", "n": "η", "z": "ζ"}

#: Lines of one element and family closer than this (keV) are one line to an
#: energy-dispersive detector, whose resolution is 0.12-0.18 keV.
MERGE_KEV = 0.03

#: Lines weaker than this fraction of their family's strongest are left out.
MIN_RELATIVE_INTENSITY = 0.01

#: A line at least this strong in its family is a main line: a peak may name
#: an element after it alone. Weaker lines name a peak only for an element a
#: main line has already named, so that a Fe Kα peak is not taken for some
#: rare earth's faint L line that happens to lie closer.
MAIN_LINE_INTENSITY = 0.5

#: An energy-dispersive detector's resolution (FWHM near 6 keV), in keV.
RESOLUTION_KEV = 0.13

#: Lines of a family at least this strong (relative to its strongest) must
#: show beside any other line of it that names a peak.
PARTNER_INTENSITY = 0.1

#: How tall, at least, an element's strongest line of a family must stand for
#: a weaker line of that family to name a peak, as a fraction of the height
#: the weaker line's peak and the two intensities imply (absorption and the
#: detector's efficiency can halve a ratio; a missing line is near zero).
PARTNER_FRACTION = 0.3

#: Narrowest peak width (keV, at half its prominence) named: an energy-dispersive
#: detector draws no line narrower than ~0.1 keV, while noise makes 1-3 channel bumps.
MIN_PEAK_WIDTH_KEV = 0.05

#: Lowest energy an X-ray detector records (keV): windows and dead layers absorb the rest.
LOWEST_RECORDED_KEV = 0.1

_FIRST_Z, _LAST_Z = 5, 92  # boron (the lightest with an X-ray line) to uranium


@dataclass(frozen=True)
class XrayLine:
    """One characteristic X-ray line (or several no detector separates).

    Parameters
    ----------
    element
        Chemical symbol, e.g. ``"Pb"``.
    name
        Siegbahn name in ASCII: ``"Ka"``, ``"Lb"``, ``"Ma"`` for the strongest
        line of its group, with its number for the others (``"La2"``, ``"Lb3"``,
        ``"Lb2,15"``).
    energy_kev
        Line energy in keV.
    relative_intensity
        Intensity relative to the strongest line of the same element and
        family (K, L or M), in (0, 1].
    """

    element: str
    name: str
    energy_kev: float
    relative_intensity: float

    @property
    def family(self) -> str:
        """The shell the line belongs to: ``"K"``, ``"L"`` or ``"M"``."""
        return self.name[0]

    @property
    def display_name(self) -> str:
        """Name for plots, with Greek letters, e.g. ``"Pb Lα"``, ``"Pb Lβ3"``."""
        letter = _GREEK.get(self.name[1:2], self.name[1:2])
        return f"{self.element} {self.name[0]}{letter}{self.name[2:]}"


def _vacancies(element: str, edges: Mapping[str, xraydb.xray.XrayEdge], family: str) -> dict[str, float]:
    """Vacancies each subshell of a family holds per photon ionising the family.

    A photon above every edge of the family is absorbed by the deepest
    subshell with probability (r1 - 1) / r1, by the next with (r2 - 1) /
    (r1 r2), and so on (r the edge jump ratios). Coster-Kronig transitions
    then move vacancies to shallower subshells of the same shell (most of
    Pb's L1 vacancies end in L3), which is why Lα outshines Lβ.
    """
    levels = sorted(level for level in edges if level.startswith(family))
    vacancies: dict[str, float] = {}
    passed = 1.0
    for level in levels:
        ratio = max(float(edges[level].jump_ratio), 1.0)
        vacancies[level] = passed * (ratio - 1.0) / ratio
        passed /= ratio
    for i, deeper in enumerate(levels):
        for shallower in levels[i + 1 :]:
            try:
                moved = float(xraydb.ck_probability(element, deeper, shallower))
            except ValueError:  # xraydb has no such transition for this element
                continue
            vacancies[shallower] += moved * vacancies[deeper]
    return vacancies


def _group(name: str) -> str:
    """The group of a Siegbahn name: ``"Lb2,15"`` -> ``"Lb"``."""
    return name[:2]


def _element_lines(element: str) -> tuple[XrayLine, ...]:
    """The lines of one element, merged at detector resolution and normalised per family."""
    edges = xraydb.xray_edges(element)
    emitted: list[tuple[str, float, float]] = []  # (name, energy keV, photons per ionisation of the family)
    for family in "KLM":
        shares = _vacancies(element, edges, family)
        for name, line in xraydb.xray_lines(element).items():
            levels = [level for level in line.initial_level.split(",") if level in shares]
            if not name.startswith(family) or not levels:
                continue
            level = levels[0]
            weight = shares[level] * float(edges[level].fyield) * float(line.intensity)
            if weight > 0 and line.energy > 0:
                emitted.append((name, line.energy / 1000.0, weight))
    merged = _merge_close(emitted)
    lines: list[XrayLine] = []
    for family in "KLM":
        members = [m for m in merged if m[0].startswith(family)]
        if not members or (family == "M" and not any(name.startswith("Ma") for name, _, _ in members)):
            # Below Z = 57 the M shell's fluorescence yields are ~1e-3 and it has no
            # Mα: its ζ and γ lines, alone in their family, would pass for strong lines.
            continue
        strongest = max(weight for _, _, weight in members)
        leaders: dict[str, float] = {}
        for name, _, weight in members:
            leaders[_group(name)] = max(leaders.get(_group(name), 0.0), weight)
        for name, energy, weight in sorted(members, key=lambda m: m[1]):
            if weight / strongest < MIN_RELATIVE_INTENSITY:
                continue
            shown = _group(name) if weight == leaders[_group(name)] else name
            lines.append(XrayLine(element, shown, round(energy, 4), weight / strongest))
    return tuple(lines)


def _merge_close(emitted: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """Lines of one family within :data:`MERGE_KEV` of each other as one, named after the strongest."""
    merged: list[tuple[str, float, float]] = []
    for name, energy, weight in sorted(emitted, key=lambda m: (m[0][0], m[1])):
        if merged:
            last_name, last_energy, last_weight = merged[-1]
            if last_name[0] == name[0] and energy - last_energy < MERGE_KEV:
                keep = (last_name, last_energy) if last_weight >= weight else (name, energy)
                merged[-1] = (keep[0], keep[1], last_weight + weight)
                continue
        merged.append((name, energy, weight))
    return merged


@cache
def _table() -> dict[str, tuple[XrayLine, ...]]:
    """Every element's lines, by atomic number (built once, in about 0.1 s)."""
    symbols = (xraydb.atomic_symbol(z) for z in range(_FIRST_Z, _LAST_Z + 1))
    return {symbol: _element_lines(symbol) for symbol in symbols}


#: Elements with lines, by atomic number.
ELEMENTS: tuple[str, ...] = tuple(xraydb.atomic_symbol(z) for z in range(_FIRST_Z, _LAST_Z + 1))


def all_lines() -> tuple[XrayLine, ...]:
    """Every line of every element, by atomic number then energy."""
    return tuple(line for lines in _table().values() for line in lines)


def lines_of(element: str, excitation_kev: float | None = None) -> tuple[XrayLine, ...]:
    """The lines of one element.

    Parameters
    ----------
    element
        Chemical symbol, any case (``"pb"``, ``"Pb"``).
    excitation_kev
        The tube voltage or beam energy, in kV: only the families whose
        shallowest edge lies below it are excited (Pb's K lines need 88 keV).
        None keeps every family.

    Returns
    -------
    tuple of XrayLine
        The element's lines, K before L before M, each family by energy.

    Raises
    ------
    InputError
        If the element is not in the table.
    """
    symbol = element.strip().capitalize()
    if symbol not in ELEMENTS:
        raise InputError(
            f"no X-ray lines are tabulated for {element!r}; known elements: " + ", ".join(ELEMENTS)
        )
    lines = _table()[symbol]
    if excitation_kev is None:
        return lines
    edges = xraydb.xray_edges(symbol)
    reached = [level for level, edge in edges.items() if edge.energy / 1000.0 < excitation_kev]
    excited = {level[0] for level in reached}
    return tuple(line for line in lines if line.family in excited)


def parse_elements(text: str) -> list[str]:
    """Chemical symbols typed by a user (``"Pb, cu fe"``), checked and in a standard spelling.

    Raises
    ------
    InputError
        For a word that is not the symbol of an element with X-ray lines.
    """
    symbols = [word.capitalize() for word in text.replace(",", " ").replace(";", " ").split()]
    unknown = [symbol for symbol in symbols if symbol not in ELEMENTS]
    if unknown:
        raise InputError(
            f"{', '.join(unknown)}: not the symbol of an element with X-ray lines (B to U); "
            "type symbols such as Pb, Cu, Fe"
        )
    return list(dict.fromkeys(symbols))


def element_lines(
    elements: list[str], low_kev: float, high_kev: float, min_intensity: float = 0.1
) -> list[XrayLine]:
    """The lines of ``elements`` between two energies, at least ``min_intensity`` of their family's strongest.

    For an element picker: the lines a spectrum of these elements can show
    on an axis from ``low_kev`` to ``high_kev``, by energy. Lines below
    :data:`LOWEST_RECORDED_KEV` (Al's L lines at 0.07 keV) are left out: no
    detector records them.
    """
    low_kev = max(low_kev, LOWEST_RECORDED_KEV)
    found = [
        line
        for element in elements
        for line in lines_of(element)
        if low_kev <= line.energy_kev <= high_kev and line.relative_intensity >= min_intensity
    ]
    return sorted(found, key=lambda line: line.energy_kev)


def lines_near(
    energy_kev: float, tolerance_kev: float = 0.1, min_intensity: float = 0.1
) -> list[XrayLine]:
    """Lines within ``tolerance_kev`` of an energy, closest first.

    Parameters
    ----------
    energy_kev
        Energy to look up, in keV.
    tolerance_kev
        Largest distance accepted, in keV (a detector's FWHM is ~0.15 keV).
    min_intensity
        Skip lines weaker than this fraction of their family's strongest line,
        so that a peak is not named after a faint line.

    Returns
    -------
    list of XrayLine
        Matching lines sorted by distance to ``energy_kev`` (ties by intensity,
        strongest first).

    Raises
    ------
    InputError
        If the energy is not finite or the tolerance is negative.
    """
    if not np.isfinite(energy_kev) or not tolerance_kev >= 0:
        raise InputError(
            f"need a finite energy and a non-negative tolerance, got {energy_kev} keV "
            f"and {tolerance_kev} keV"
        )
    found = [
        line
        for line in all_lines()
        if abs(line.energy_kev - energy_kev) <= tolerance_kev
        and line.relative_intensity >= min_intensity
    ]
    return sorted(found, key=lambda ln: (abs(ln.energy_kev - energy_kev), -ln.relative_intensity))


def label_peaks(
    energies_kev: np.ndarray,
    spectrum: np.ndarray,
    max_peaks: int = 8,
    tolerance_kev: float = 0.12,
    *,
    min_prominence: float = 0.02,
) -> list[tuple[float, str]]:
    """Find the main peaks of a spectrum and name the closest line that can explain each.

    Peaks are taken by decreasing prominence, each named after the closest
    main line (:data:`MAIN_LINE_INTENSITY`) within ``tolerance_kev``; the
    peaks no main line explains are then named after the closest weaker line
    of an element already found (Fe Kβ once Fe Kα is named). A peak with no
    such line (a Compton hump, a sum peak) is skipped, and each line names at
    most one peak. Closest-line naming cannot resolve true overlaps (Pb Lα
    10.551 / As Kα 10.544 keV): check the partner lines (Pb Lβ 12.614, As Kβ
    11.726) before trusting such a label.

    Parameters
    ----------
    energies_kev
        Energy of each channel, shape (C,), increasing, in keV.
    spectrum
        Counts (or mean counts) per channel, shape (C,).
    max_peaks
        Most peaks to return.
    tolerance_kev
        Largest distance between a peak and the line that names it.
    min_prominence
        Smallest peak prominence kept, as a fraction of the spectrum's range.

    Returns
    -------
    list of (float, str)
        (peak energy in keV, line name such as ``"Pb Lα"``), by energy.

    Raises
    ------
    InputError
        If the arrays are not 1-D of the same length, or hold NaN/Inf.
    """
    energies = np.asarray(energies_kev, dtype=np.float64)
    values = np.asarray(spectrum, dtype=np.float64)
    if energies.ndim != 1 or energies.shape != values.shape or energies.size < 3:
        raise InputError(
            f"need an energy axis and a spectrum of the same 1-D length (3 or more), "
            f"got shapes {energies.shape} and {values.shape}"
        )
    if not (np.isfinite(energies).all() and np.isfinite(values).all()):
        raise InputError("the energy axis or the spectrum holds NaN or Inf")
    span = float(values.max() - values.min())
    if span == 0.0:
        return []
    # A peak narrower than a detector's resolution allows is noise on a flank.
    step = float(np.median(np.diff(energies)))
    min_width = MIN_PEAK_WIDTH_KEV / step if step > 0 else None
    peaks, props = find_peaks(values, prominence=min_prominence * span, width=min_width)
    order = np.argsort(-props["prominences"], kind="stable")
    by_prominence = [_refine_peak(energies, values, int(peaks[i])) for i in order]
    net = _net_height(energies, values)
    labelled: dict[str, float] = {}
    found: set[str] = set()
    for second_pass in (False, True):
        for energy in by_prominence:
            if energy in labelled.values():
                continue
            line = _best_line(energy, tolerance_kev, net, found, labelled, weak_allowed=second_pass)
            if line is not None:
                labelled[line.display_name] = energy
                found.add(line.element)
    strongest_first = sorted(labelled.items(), key=lambda item: by_prominence.index(item[1]))
    return sorted(((energy, name) for name, energy in strongest_first[:max_peaks]), key=lambda t: t[0])


def _best_line(
    energy: float,
    tolerance_kev: float,
    net: Callable[[float], float],
    found: set[str],
    labelled: Mapping[str, float],
    *,
    weak_allowed: bool,
) -> XrayLine | None:
    """The line that names a peak: of an element already found if one fits, else a main line.

    A line is a candidate only if its element's other lines of the same family
    (those above :data:`PARTNER_INTENSITY`), where the axis shows them, stand
    at least :data:`PARTNER_FRACTION` as high as the peak implies: an Eu Lβ at
    6.4 keV without Eu Lα at 5.85 is no Eu, nor an As Kα at 10.54 keV without
    As Kβ at 11.73 (it is Pb Lα). Weak lines (below
    :data:`MAIN_LINE_INTENSITY`) name a peak only for an element already
    found; the second pass gives the peaks left over to elements found after
    them. Among candidates, the one whose family pattern and energy fit best
    (:func:`_misfit`) wins.
    """
    candidates = [
        line
        for line in lines_near(energy, tolerance_kev)
        if line.display_name not in labelled and _partners_agree(line, energy, net)
    ]
    known = [line for line in candidates if line.element in found]
    if not known and weak_allowed:
        return None
    pool = known or [line for line in candidates if line.relative_intensity >= MAIN_LINE_INTENSITY]
    if not pool:
        return None
    return min(pool, key=lambda line: _misfit(line, energy, tolerance_kev, net))


def _family_partners(line: XrayLine) -> list[XrayLine]:
    """The element's other lines of ``line``'s family that a spectrum shows apart from it.

    Lines above :data:`PARTNER_INTENSITY` and at least :data:`RESOLUTION_KEV`
    away: a closer one sits on the flank of ``line``'s own peak (Al Kβ, 70 eV
    above Al Kα), where its height says nothing.
    """
    return [
        other
        for other in _table()[line.element]
        if other.family == line.family
        and other.relative_intensity >= PARTNER_INTENSITY
        and abs(other.energy_kev - line.energy_kev) >= RESOLUTION_KEV
    ]


def _partners_agree(line: XrayLine, energy: float, net: Callable[[float], float]) -> bool:
    """Whether the element's other clear lines of the family are as tall as the peak at ``energy`` implies."""
    expected = net(energy) / line.relative_intensity
    return all(
        net(other.energy_kev) >= PARTNER_FRACTION * other.relative_intensity * expected
        for other in _family_partners(line)
    )


def _misfit(line: XrayLine, energy: float, tolerance_kev: float, net: Callable[[float], float]) -> float:
    """How badly ``line`` explains the peak at ``energy``: its distance plus its family's misfit.

    The distance counts in tolerances; the family's misfit is the mean
    absolute log ratio of each partner line's height to the height the peak
    and the intensities predict, weighted by intensity. Ag Lα (2.983 keV)
    beats Th Mα (2.990) at a peak at 2.992 keV because the Lβ beside it is
    as tall as Ag's, not as tall as Th's Mβ.
    """
    height = net(energy)
    floor = 0.01 * max(height, 1e-12)
    weights, misfits = [], []
    for other in _family_partners(line):
        observed = net(other.energy_kev)
        if not np.isfinite(observed):
            continue
        predicted = height * other.relative_intensity / line.relative_intensity
        weights.append(other.relative_intensity)
        misfits.append(abs(np.log((max(observed, 0.0) + floor) / (predicted + floor))))
    family = float(np.average(misfits, weights=weights)) if weights else 0.0
    return abs(line.energy_kev - energy) / tolerance_kev + family


def _net_height(energies: np.ndarray, values: np.ndarray) -> Callable[[float], float]:
    """Height above the local background at an energy (NaN outside the axis, which any test fails).

    The background is the 10th percentile over a window of about 1 keV: below
    the peaks, above the noise.
    """
    step = float(np.median(np.diff(energies)))
    window = max(3, round(1.0 / step) | 1) if step > 0 else 3
    background = percentile_filter(values, 10, size=window, mode="nearest")
    above = values - background

    def height(energy: float) -> float:
        if not energies[0] <= energy <= energies[-1]:
            return float("inf")  # a line off the axis cannot be checked, so it cannot object
        return float(above[int(np.argmin(np.abs(energies - energy)))])

    return height


def _refine_peak(energies: np.ndarray, values: np.ndarray, index: int) -> float:
    """Sub-channel peak position from a parabola through the top three channels.

    Channels are ~20-40 eV wide, comparable to the gap between overlapping
    lines, so the raw channel centre can name the wrong one.
    """
    if index == 0 or index == values.size - 1:
        return float(energies[index])
    left, top, right = values[index - 1 : index + 2]
    curvature = left - 2.0 * top + right
    shift = 0.0 if curvature == 0.0 else 0.5 * (left - right) / curvature
    step = 0.5 * (energies[index + 1] - energies[index - 1])
    return float(energies[index] + shift * step)
