"""Spectral calibration: unit spellings, calibration arrays beside a cube, and our own record of it."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__
from ..cube import Datacube
from ..errors import InputError
from ..spectral import SpectralAxis, normalise_unit, unit_label

SOFTWARE = f"napari-deepcube {__version__}"
_UNDEFINED = "<undefined>"  # HyperSpy's and RosettaSciIO's value for a missing name or unit


#: Names of 1-D arrays (npz keys, sibling datasets, MATLAB variables) that
#: calibrate the spectral axis, with the unit and label they imply.
SPECTRAL_KEYS = {
    "energy_keV": ("keV", "Energy"),
    "energy_eV": ("eV", "Energy"),
    "energy_loss_eV": ("eV", "Energy loss"),
    "wavelength_A": ("Å", "Wavelength"),
    "wavelength_nm": ("nm", "Wavelength"),
    "wavelength_um": ("µm", "Wavelength"),
}


#: Our own generic calibration: values, plus unit and label (array keys or attributes).
SPECTRAL_VALUES, SPECTRAL_UNIT, SPECTRAL_LABEL = (
    "spectral_values",
    "spectral_unit",
    "spectral_label",
)


def spectral_from_named(
    path: Path, names: Collection[str], load: Callable[[str], Any]
) -> SpectralAxis | None:
    """Calibration from named arrays or attributes next to the cube, if any.

    Parameters
    ----------
    path
        The file, for error messages.
    names
        Names available (npz keys, sibling datasets, attribute names).
    load
        Returns the value stored under a name.

    Returns
    -------
    SpectralAxis or None
        From the first of :data:`SPECTRAL_KEYS` present, else from
        ``spectral_values`` with ``spectral_unit``/``spectral_label``.
    """
    for key, (unit, label) in SPECTRAL_KEYS.items():
        if key in names:
            return SpectralAxis(_coordinates(path, key, load(key)), unit, label)
    if SPECTRAL_VALUES not in names:
        return None
    unit = normalise_unit(as_text(load(SPECTRAL_UNIT))) if SPECTRAL_UNIT in names else "channel"
    label = as_text(load(SPECTRAL_LABEL)) if SPECTRAL_LABEL in names else unit_label(unit)
    return SpectralAxis(_coordinates(path, SPECTRAL_VALUES, load(SPECTRAL_VALUES)), unit, label)


def hyperspy_spectral_index(axes: list[dict[str, Any]]) -> int:
    """The axis whose ``navigate`` flag differs from the other two's, else the last."""
    navigate = [bool(a.get("navigate", True)) for a in axes]
    odd = [i for i, flag in enumerate(navigate) if navigate.count(flag) == 1]
    return odd[0] if odd else len(axes) - 1


def _axis_text(attrs: dict[str, Any], key: str) -> str:
    """An axis's name or units, "" where the file leaves it out (absent, None or HyperSpy's placeholder)."""
    value = attrs.get(key)
    text = "" if value is None else as_text(value).strip()
    return "" if text == _UNDEFINED else text


def hyperspy_axis(path: Path, attrs: dict[str, Any], index: int, size: int) -> SpectralAxis | None:
    """Calibration of axis ``index`` (``size`` values long) of a HyperSpy signal, or None if it has none.

    ``attrs`` is HyperSpy's description of the axis, as stored in a .hspy file
    and as RosettaSciIO returns it for every format: ``axis`` (the coordinates
    of a non-uniform axis) or ``scale`` and ``offset``, with ``units`` and
    ``name``. A name that is a mere axis number (Ripple's "3") gives way to
    the word for the unit.
    """
    try:
        values: np.ndarray
        if attrs.get("axis") is not None:  # a non-uniform axis lists its coordinates
            values = np.asarray(attrs["axis"], dtype=np.float64).ravel()
        elif attrs.get("scale") is not None:
            offset = attrs.get("offset")
            values = float(0.0 if offset is None else offset) + float(attrs["scale"]) * np.arange(size)
        else:
            return None
    except (TypeError, ValueError) as exc:  # numpy and float() on the file's attribute values
        raise InputError(
            f"{path.name}: the calibration of axis {index} (its scale, offset or axis "
            "attribute) is not numeric; fix these attributes, or choose another spectral axis"
        ) from exc
    unit = normalise_unit(_axis_text(attrs, "units"))
    name = _axis_text(attrs, "name")
    return SpectralAxis(values, unit, name if name and not name.isdigit() else unit_label(unit))


def spectral_record(cube: Datacube) -> dict[str, Any]:
    """The calibration of ``cube`` as JSON-ready attributes, for our writers."""
    return {
        SPECTRAL_VALUES: [float(v) for v in cube.axis.values],
        SPECTRAL_UNIT: cube.axis.unit,
        SPECTRAL_LABEL: cube.axis.label,
        "software": SOFTWARE,
    }


def _coordinates(path: Path, key: str, value: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"{path.name}: the spectral values under {key!r} are not numbers; "
            "store them as a 1-D numeric array"
        ) from exc


def as_text(value: Any) -> str:
    """A string from an attribute or array that may hold bytes or be 0-d."""
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode() if isinstance(value, bytes) else str(value)


def to_json(record: Mapping[str, Any]) -> str:
    """JSON text of ``record``, with numpy scalars and arrays turned into plain values."""

    def plain(value: Any) -> Any:
        if isinstance(value, np.ndarray | np.generic):
            return value.tolist()
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    return json.dumps(record, default=plain)
