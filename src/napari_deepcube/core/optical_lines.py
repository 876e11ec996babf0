"""Optical emission lines of ionised gas, to name on wavelength axes (HII regions, nebulae, shocks).

The standard rest-frame air wavelengths in Å (redshift 0) of the lines a
MUSE-like cube of Galactic nebulae shows most. A short fixed table rather
than a line-list package: the dozen lines a user looks for are all the plot
needs, and the packages that carry line lists (specutils, linetools) would
bring large dependencies for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spectral import ANGSTROM_PER_UNIT

#: The visible range (Å, air): lines outside it are not named.
VISIBLE_RANGE = (3800.0, 7500.0)


@dataclass(frozen=True)
class EmissionLine:
    """One emission line.

    Attributes
    ----------
    name
        Its usual name, e.g. ``"Hα"`` or ``"[NII]"``.
    wavelength
        Air wavelength at rest, in Å.
    """

    name: str
    wavelength: float


#: The lines, strongest first in a typical HII region: a name crowded out by a
#: neighbour's is the weaker one's.
EMISSION_LINES = (
    EmissionLine("Hα", 6562.80),
    EmissionLine("[OIII]", 5006.84),
    EmissionLine("Hβ", 4861.33),
    EmissionLine("[NII]", 6583.45),
    EmissionLine("[SII]", 6716.44),
    EmissionLine("[SII]", 6730.82),
    EmissionLine("[OIII]", 4958.91),
    EmissionLine("[NII]", 6548.05),
    EmissionLine("[OI]", 6300.30),
    EmissionLine("HeI", 5875.62),
    EmissionLine("Hγ", 4340.47),
    EmissionLine("[OI]", 6363.78),
    EmissionLine("HeII", 4685.70),
    EmissionLine("HeI", 6678.15),
    EmissionLine("[ArIII]", 7135.80),
    EmissionLine("Hδ", 4101.74),
    EmissionLine("[NII]", 5754.59),
)


def lines_in(values: np.ndarray, unit: str) -> list[tuple[float, str]]:
    """The lines within a wavelength axis and the visible range, as (position in ``unit``, name).

    Parameters
    ----------
    values
        The axis' wavelengths.
    unit
        Their unit: ``"Å"``, ``"nm"`` or ``"µm"``; any other unit gives no line.

    Returns
    -------
    list of (float, str)
        In the order of :data:`EMISSION_LINES` (strongest first).
    """
    scale = ANGSTROM_PER_UNIT.get(unit)
    if scale is None or values.size == 0:
        return []
    low = max(float(np.nanmin(values)) * scale, VISIBLE_RANGE[0])
    high = min(float(np.nanmax(values)) * scale, VISIBLE_RANGE[1])
    return [
        (line.wavelength / scale, line.name)
        for line in EMISSION_LINES
        if low <= line.wavelength <= high
    ]
