"""Characteristic X-ray lines of the elements met in paintings and manuscripts.

Energies (keV) are the tabulated values of the strongest line of each group
(Kα1, Kβ1, Lα1, Lβ1, Lγ1, Mα1; X-ray Data Booklet / Bearden 1967). At the
resolution of an energy-dispersive detector (~140 eV) the weaker partners
(Kα2, Lβ2, ...) merge with these, so one line per group is what a spectrum
shows. Relative intensities are approximate and relative to the strongest
line of the same element's family (Kα = 1, Lα = 1, Mα = 1): good enough to
draw realistic spectra and to decide which lines are worth naming, not for
quantification.

The GUI uses :func:`label_peaks` to mark element lines on a spectrum plot;
:mod:`napari_deepcube.core.synthetic` uses :data:`LINES` to draw MA-XRF spectra.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from .errors import InputError

_GREEK = {"Ka": "Kα", "Kb": "Kβ", "La": "Lα", "Lb": "Lβ", "Lg": "Lγ", "Ma": "Mα"}


@dataclass(frozen=True)
class XrayLine:
    """One characteristic X-ray line.

    Parameters
    ----------
    element
        Chemical symbol, e.g. ``"Pb"``.
    name
        Line group in ASCII: ``"Ka"``, ``"Kb"``, ``"La"``, ``"Lb"``, ``"Lg"``
        or ``"Ma"``.
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
        """Name for plots, with Greek letters, e.g. ``"Pb Lα"``."""
        return f"{self.element} {_GREEK[self.name]}"


# element -> {line: (energy keV, relative intensity)}, by atomic number.
# Kβ/Kα grows with Z (Scofield's ratios); L ratios are those seen with a
# 40-50 kV tube, where all L subshells are excited.
_TABLE: dict[str, dict[str, tuple[float, float]]] = {
    "Al": {"Ka": (1.487, 1.0), "Kb": (1.557, 0.01)},
    "Si": {"Ka": (1.740, 1.0), "Kb": (1.836, 0.03)},
    "P": {"Ka": (2.013, 1.0), "Kb": (2.139, 0.04)},
    "S": {"Ka": (2.308, 1.0), "Kb": (2.464, 0.06)},
    "Cl": {"Ka": (2.622, 1.0), "Kb": (2.816, 0.08)},
    "Ar": {"Ka": (2.957, 1.0), "Kb": (3.190, 0.10)},
    "K": {"Ka": (3.314, 1.0), "Kb": (3.590, 0.11)},
    "Ca": {"Ka": (3.692, 1.0), "Kb": (4.013, 0.13)},
    "Ti": {"Ka": (4.511, 1.0), "Kb": (4.932, 0.135)},
    "Cr": {"Ka": (5.415, 1.0), "Kb": (5.947, 0.135)},
    "Mn": {"Ka": (5.899, 1.0), "Kb": (6.490, 0.135)},
    "Fe": {"Ka": (6.404, 1.0), "Kb": (7.058, 0.135)},
    "Co": {"Ka": (6.930, 1.0), "Kb": (7.649, 0.135)},
    "Ni": {"Ka": (7.478, 1.0), "Kb": (8.265, 0.135)},
    "Cu": {"Ka": (8.048, 1.0), "Kb": (8.905, 0.135)},
    "Zn": {"Ka": (8.639, 1.0), "Kb": (9.572, 0.14)},
    "As": {"Ka": (10.544, 1.0), "Kb": (11.726, 0.15)},
    "Se": {"Ka": (11.222, 1.0), "Kb": (12.496, 0.16)},
    "Sr": {"Ka": (14.165, 1.0), "Kb": (15.836, 0.18)},
    "Zr": {"Ka": (15.775, 1.0), "Kb": (17.668, 0.19)},
    "Rh": {"Ka": (20.216, 1.0), "Kb": (22.724, 0.20)},
    "Ag": {
        "Ka": (22.163, 1.0),
        "Kb": (24.942, 0.21),
        "La": (2.984, 1.0),
        "Lb": (3.151, 0.55),
        "Lg": (3.348, 0.06),
    },
    "Cd": {
        "Ka": (23.174, 1.0),
        "Kb": (26.095, 0.21),
        "La": (3.134, 1.0),
        "Lb": (3.317, 0.55),
        "Lg": (3.528, 0.06),
    },
    "Sn": {
        "Ka": (25.271, 1.0),
        "Kb": (28.486, 0.22),
        "La": (3.444, 1.0),
        "Lb": (3.663, 0.55),
        "Lg": (3.905, 0.06),
    },
    "Sb": {
        "Ka": (26.359, 1.0),
        "Kb": (29.726, 0.22),
        "La": (3.605, 1.0),
        "Lb": (3.844, 0.55),
        "Lg": (4.101, 0.06),
    },
    "Ba": {
        "Ka": (32.194, 1.0),
        "Kb": (36.378, 0.23),
        "La": (4.466, 1.0),
        "Lb": (4.828, 0.60),
        "Lg": (5.531, 0.08),
    },
    "Au": {"La": (9.713, 1.0), "Lb": (11.442, 0.85), "Lg": (13.381, 0.12), "Ma": (2.123, 1.0)},
    "Hg": {"La": (9.989, 1.0), "Lb": (11.823, 0.85), "Lg": (13.830, 0.12), "Ma": (2.195, 1.0)},
    "Pb": {"La": (10.551, 1.0), "Lb": (12.614, 0.90), "Lg": (14.764, 0.13), "Ma": (2.342, 1.0)},
    "Bi": {"La": (10.839, 1.0), "Lb": (13.024, 0.90), "Lg": (15.248, 0.13), "Ma": (2.423, 1.0)},
}

#: Every tabulated line, by atomic number then line group.
LINES: tuple[XrayLine, ...] = tuple(
    XrayLine(element, name, energy, intensity)
    for element, lines in _TABLE.items()
    for name, (energy, intensity) in lines.items()
)

#: Elements in the table, by atomic number.
ELEMENTS: tuple[str, ...] = tuple(_TABLE)


def lines_of(element: str) -> tuple[XrayLine, ...]:
    """All tabulated lines of one element.

    Parameters
    ----------
    element
        Chemical symbol, any case (``"pb"``, ``"Pb"``).

    Returns
    -------
    tuple of XrayLine
        The element's lines, K before L before M.

    Raises
    ------
    InputError
        If the element is not in the table.
    """
    symbol = element.strip().capitalize()
    if symbol not in _TABLE:
        raise InputError(
            f"no X-ray lines are tabulated for {element!r}; known elements: " + ", ".join(ELEMENTS)
        )
    return tuple(line for line in LINES if line.element == symbol)


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
        for line in LINES
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
    """Find the main peaks of a spectrum and name the closest strong line.

    Peaks are taken by decreasing prominence; a peak with no tabulated line
    within ``tolerance_kev`` (a Compton hump, a sum peak) is skipped, and each
    line names at most one peak. Closest-line naming cannot resolve true
    overlaps (Pb Lα 10.551 / As Kα 10.544 keV): check the partner lines
    (Pb Lβ 12.614, As Kβ 11.726) before trusting such a label.

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
    peaks, props = find_peaks(values, prominence=min_prominence * span)
    labelled: dict[str, float] = {}
    for index in np.argsort(-props["prominences"], kind="stable"):
        if len(labelled) == max_peaks:
            break
        energy = _refine_peak(energies, values, int(peaks[index]))
        candidates = [
            line for line in lines_near(energy, tolerance_kev) if line.display_name not in labelled
        ]
        if candidates:
            labelled[candidates[0].display_name] = energy
    return sorted(((energy, name) for name, energy in labelled.items()), key=lambda t: t[0])


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
