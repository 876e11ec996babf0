"""The spectral axis of a cube: a coordinate per channel, its unit and what it measures.

One type for every place that knows a spectral axis: a :class:`~.cube.Datacube`,
a reader's calibration, a napari layer's record and the widgets' plots. It
imports numpy only, so the napari reader and the command line can use it
without torch or Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError

#: Unit of an uncalibrated axis, whose values are the channel indices.
CHANNEL_UNIT = "channel"
#: What one unit of each wavelength unit is in Å.
ANGSTROM_PER_UNIT = {"Å": 1.0, "nm": 10.0, "µm": 1e4}
#: The speed of light in km/s, for Doppler shifts of lines.
SPEED_OF_LIGHT_KMS = 299_792.458


#: Canonical spectral unit for each spelling found in files (lower case).
_UNIT_SPELLINGS = {
    "kev": "keV",
    "ev": "eV",
    "å": "Å",
    "a": "Å",
    "angstrom": "Å",
    "angstroms": "Å",
    "nm": "nm",
    "nanometer": "nm",
    "nanometers": "nm",
    "µm": "µm",
    "μm": "µm",
    "um": "µm",
    "micron": "µm",
    "microns": "µm",
    "micrometer": "µm",
    "micrometers": "µm",
    "cm-1": "cm-1",
    "cm^-1": "cm-1",
    "1/cm": "cm-1",
    "wavenumber": "cm-1",
    "channel": "channel",
    "channels": "channel",
    "": "channel",
}


#: What an axis in each canonical unit measures, for a file that names the unit only.
_UNIT_LABELS = {
    "keV": "Energy",
    "eV": "Energy",
    "Å": "Wavelength",
    "nm": "Wavelength",
    "µm": "Wavelength",
    "cm-1": "Wavenumber",
    CHANNEL_UNIT: "Channel",
}


def unit_label(unit: str) -> str:
    """What an axis in ``unit`` (canonical) measures, e.g. ``"Wavelength"`` for ``"nm"``."""
    return _UNIT_LABELS.get(unit, "Spectral axis")


def normalise_unit(unit: str) -> str:
    """Canonical spelling of a spectral unit (``"Angstrom"`` -> ``"Å"``); unknown ones kept."""
    text = str(unit).strip()
    return _UNIT_SPELLINGS.get(text.lower(), text)


@dataclass(frozen=True, eq=False)
class SpectralAxis:
    """The coordinate of each channel of a cube.

    Not compared by value (``eq=False``): the values are an array, whose
    ``==`` is element-wise.

    Parameters
    ----------
    values
        Coordinate of each channel, shape (C,), float64.
    unit
        Unit of ``values``: ``"keV"``, ``"eV"``, ``"Å"``, ``"nm"``, ``"µm"``,
        ``"cm-1"``, or :data:`CHANNEL_UNIT` for channel indices.
    label
        What the axis measures, e.g. ``"Energy"`` or ``"Wavelength"``.
    """

    values: np.ndarray
    unit: str = CHANNEL_UNIT
    label: str = "Channel"

    @classmethod
    def channels(cls, n_channels: int) -> SpectralAxis:
        """Channel indices 0..n-1: the axis of an uncalibrated cube."""
        return cls(np.arange(n_channels, dtype=np.float64))

    @classmethod
    def build(
        cls, n_channels: int, values: Any = None, unit: str | None = None, label: str | None = None
    ) -> SpectralAxis:
        """A checked axis of ``n_channels`` channels; channel indices when ``values`` is None.

        Raises
        ------
        InputError
            If ``values`` has the wrong length or holds NaN or Inf.
        """
        if values is None:
            return cls.channels(n_channels)
        values = np.asarray(values, dtype=np.float64).ravel()
        if values.size != n_channels:
            raise InputError(
                f"the spectral axis has {n_channels} channels but {values.size} spectral "
                "values were given; check the spectral axis or the calibration"
            )
        if not np.all(np.isfinite(values)):
            raise InputError("the spectral values contain NaN or Inf; fix the calibration")
        unit = normalise_unit(unit) if unit else CHANNEL_UNIT
        return cls(values, unit, label or unit_label(unit))

    @property
    def size(self) -> int:
        """Number of channels."""
        return int(self.values.size)

    @property
    def calibrated(self) -> bool:
        """False when the values are mere channel indices."""
        return self.unit != CHANNEL_UNIT

    @property
    def title(self) -> str:
        """Axis title for plots and CSV headers, e.g. ``"Energy (keV)"``."""
        return f"{self.label} ({self.unit})" if self.calibrated else "Channel"

    @property
    def kev(self) -> np.ndarray | None:
        """The values in keV when the axis is an X-ray energy, else None."""
        if self.unit == "keV":
            return self.values
        if self.unit == "eV":
            return self.values / 1000.0
        return None

    @property
    def angstrom(self) -> np.ndarray | None:
        """The values in Å when the axis is a wavelength, else None."""
        scale = ANGSTROM_PER_UNIT.get(self.unit)
        return None if scale is None else self.values * scale
