"""Drawing spectra on matplotlib axes: a pure function of the curves and the options.

No widget state and no viewer: :func:`draw_spectra` is what the "Cluster spectra"
widget shows and what its figure export writes, and it is tested on a plain Agg
figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from ..core.errors import InputError
from ..core.optical_lines import lines_in
from ..core.spectral import SpectralAxis
from ..core.xray_lines import element_lines, label_peaks
from ._mpl import FONT_SIZE

#: Most element lines named on one spectrum, and on several.
MAX_LINE_MARKERS = 8
MAX_LINE_MARKERS_SEVERAL = 12
#: Least distance between two element names, as a share of the x axis.
_LABEL_GAP = 0.012


@dataclass(frozen=True)
class Curve:
    """One plotted spectrum: a mean (of a cluster or region) or a single pixel's."""

    name: str
    values: np.ndarray
    color: Any
    std: np.ndarray | None = None
    style: str = "-"
    width: float = 1.4
    is_mean: bool = True


def draw_spectra(
    axes: Axes,
    axis: SpectralAxis,
    curves: list[Curve],
    colors: dict[str, str],
    *,
    log_y: bool = False,
    element_lines: bool = True,
    elements: tuple[str, ...] = (),
) -> dict[str, Line2D]:
    """Draw ``curves`` against ``axis`` on ``axes``; returns each curve's line by name.

    Parameters
    ----------
    axes
        Where to draw; its axis titles and limits are set here.
    axis
        The cube's spectral axis (values, unit, label).
    curves
        Means are drawn with a band of ± one standard deviation when they carry one.
    colors
        The theme's ``"text"`` and ``"faint"`` colours, for the element names.
    log_y
        A logarithmic intensity axis (non-positive values masked).
    element_lines
        On an X-ray energy axis, name the main peaks after the element lines
        nearby; on a wavelength axis, mark the optical emission lines at rest.
    elements
        Chemical symbols picked by the user: on an X-ray energy axis, every
        clear line of these elements is marked (dashed) and named first,
        whether the spectrum shows a peak there or not.
    """
    lines = {curve.name: _draw_curve(axes, axis, curve, log_y) for curve in curves}
    axes.set_xlabel(axis.title)
    axes.set_ylabel("Intensity" if axis.kev is None else "Counts")
    axes.set_xlim(axis.values[0], axis.values[-1])
    if log_y:
        axes.set_yscale("log", nonpositive="mask")
    picked = _picked_lines(axis, elements)
    found: list[tuple[float, str]] = []
    if curves and element_lines:
        found = _peak_names(axis, curves) if axis.kev is not None else lines_in(axis.values, axis.unit)
    named = {name for _, name in picked}
    _name_lines(axes, axis, picked, colors, style="--")
    _name_lines(axes, axis, [line for line in found if line[1] not in named], colors, taken=picked)
    return lines


def _draw_curve(axes: Axes, axis: SpectralAxis, curve: Curve, log_y: bool) -> Line2D:
    if curve.std is not None:
        low = curve.values - curve.std
        if log_y:
            low = np.maximum(low, np.nanmin(curve.values[curve.values > 0], initial=1.0) / 10)
        axes.fill_between(
            axis.values, low, curve.values + curve.std, color=curve.color, alpha=0.25, linewidth=0
        )
    (line,) = axes.plot(
        axis.values, curve.values, color=curve.color, linestyle=curve.style,
        linewidth=curve.width, label=curve.name,
    )
    return line


def _picked_lines(axis: SpectralAxis, elements: tuple[str, ...]) -> list[tuple[float, str]]:
    """(position on the axis, name) of the picked elements' lines within an X-ray axis, strongest first."""
    energies = axis.kev
    if energies is None or not elements:
        return []
    to_axis = 1000.0 if axis.unit == "eV" else 1.0
    found = element_lines(list(elements), float(energies.min()), float(energies.max()))
    strongest_first = sorted(found, key=lambda line: -line.relative_intensity)
    return [(line.energy_kev * to_axis, line.display_name) for line in strongest_first]


def _peak_names(axis: SpectralAxis, curves: list[Curve]) -> list[tuple[float, str]]:
    """The main peaks of the plotted spectra named after the X-ray lines nearby, tallest first.

    The peaks are those of the envelope of the mean spectra (each scaled
    to its maximum, so that a faint cluster's lines count as much as a
    bright one's); a lone pixel spectrum is used only when nothing else
    is plotted.
    """
    energies = axis.kev
    if energies is None:
        return []
    means = [c.values for c in curves if c.is_mean] or [curves[0].values]
    scaled = [np.nan_to_num(v) / max(float(np.nanmax(v)), 1e-12) for v in means]
    envelope = np.max(scaled, axis=0)
    most = MAX_LINE_MARKERS if len(scaled) == 1 else MAX_LINE_MARKERS_SEVERAL
    try:
        peaks = label_peaks(energies, envelope, max_peaks=most)
    except InputError:
        return []
    to_axis = 1000.0 if axis.unit == "eV" else 1.0
    by_height = sorted(peaks, key=lambda p: -envelope[np.argmin(np.abs(energies - p[0]))])
    return [(energy * to_axis, name) for energy, name in by_height]


def _name_lines(
    axes: Axes,
    axis: SpectralAxis,
    lines: list[tuple[float, str]],
    colors: dict[str, str],
    *,
    style: str = ":",
    taken: Sequence[tuple[float, str]] = (),
) -> None:
    """Mark each line (position on the axis, name) with a rule in ``style`` and its name.

    ``lines`` come first to last in priority: where two names would
    overprint, the earlier keeps its name (the rule is drawn for both), as
    do the names already written for ``taken``.
    """
    transform = axes.get_xaxis_transform()
    gap = _LABEL_GAP * abs(axis.values[-1] - axis.values[0])
    named: list[float] = [x for x, _ in taken]
    for x, name in lines:
        axes.axvline(x, color=colors["faint"], linestyle=style, linewidth=0.8)
        if any(abs(x - other) < gap for other in named):
            continue
        named.append(x)
        axes.text(
            x, 0.97, f" {name}", transform=transform, rotation=90, va="top", ha="right",
            fontsize=FONT_SIZE - 1, color=colors["text"],
        )
