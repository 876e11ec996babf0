"""What part of a cube a run uses: a pixel mask and a channel selection.

A **pixel mask** (H, W) restricts which pixels are segmented: it is combined
with the cube's own valid-pixel mask (:meth:`.cube.Datacube.with_mask`), so
pixels outside it get label 0 like empty or NaN pixels.

A **channel selection** restricts what the model learns from: the features
(:class:`~.preprocess.Preprocessor`) are built from the chosen channels only,
while the spectra a result reports (cluster means, CSV, plots) stay whole, so
that the user still sees the full spectrum of what was separated. It is given
either as channel indices, half-open like Python slices (``"100:400,600:700"``),
or as ranges of the cube's spectral axis in its own unit, both ends included
(``"1.2:9.5"`` keV); several ranges are joined.

Both are checked here, once: the syntax when the settings are made, the
ranges against a cube's axis when a run starts.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError
from .spectral import SpectralAxis

#: Fewest channels a selection may keep: one channel carries no spectral shape.
MIN_CHANNELS = 2
#: Share of a channel's width by which a --range bound may miss a channel's value and still hold it.
_ROUNDING = 1e-6


def parse_ranges(text: str, *, whole: bool, flag: str) -> tuple[tuple[float, float], ...]:
    """The ranges ``"A:B[,C:D]"`` of ``text``; ``()`` for an empty text (no selection).

    Parameters
    ----------
    text
        The ranges as the user wrote them.
    whole
        True for channel indices (whole numbers from 0), False for spectral values.
    flag
        The option the text came from, for messages (``"--channels"``).

    Raises
    ------
    InputError
        If a part is not two numbers separated by ``:``, or a range is empty
        (its start not below its end).
    """
    if not text.strip():
        return ()
    ranges = []
    example = "100:400,600:700" if whole else "1.2:9.5"
    for part in text.split(","):
        bounds = part.split(":")
        if len(bounds) != 2:
            raise InputError(
                f"{flag} takes ranges START:END separated by commas (e.g. {example}), got {part!r}"
            )
        start, end = (_number(bound, whole, flag, example) for bound in bounds)
        if not start < end:
            raise InputError(f"{flag} range {part.strip()} is empty; its start must be below its end")
        ranges.append((start, end))
    return tuple(ranges)


def _number(text: str, whole: bool, flag: str, example: str) -> float:
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        kind = "whole channel numbers" if whole else "numbers"
        raise InputError(f"{flag} takes {kind} START:END (e.g. {example}), got {text.strip()!r}") from None
    if whole and value < 0:
        raise InputError(f"{flag} channels are numbered from 0, got {value}")
    if not math.isfinite(value):
        raise InputError(f"{flag} takes finite numbers, got {text.strip()!r}")
    return value


def selected_channels(channels: str, spectral_range: str, axis: SpectralAxis) -> np.ndarray | None:
    """Indices of the channels the features are built from, sorted; None for all of them.

    Parameters
    ----------
    channels
        Channel index ranges, half-open (``--channels``), or "".
    spectral_range
        Ranges of ``axis``'s values, ends included (``--range``), or "".
    axis
        The cube's spectral axis.

    Raises
    ------
    InputError
        If both are given, a range reaches beyond the axis or holds no
        channel, or fewer than :data:`MIN_CHANNELS` channels are chosen.
    """
    if channels.strip() and spectral_range.strip():
        raise InputError("--channels and --range both choose the channels; give only one")
    chosen = np.zeros(axis.size, dtype=bool)
    if channels.strip():
        for start, end in parse_ranges(channels, whole=True, flag="--channels"):
            if end > axis.size:
                raise InputError(
                    f"--channels {int(start)}:{int(end)} reaches beyond the cube's {axis.size} channels "
                    f"(0:{axis.size}); choose channels inside it"
                )
            chosen[int(start) : int(end)] = True
    elif spectral_range.strip():
        low, high = float(axis.values.min()), float(axis.values.max())
        unit = axis.unit
        # A bound typed as a channel's value (6.3) may differ from the stored one (6.300000000000001).
        slack = _ROUNDING * _spacing(axis)
        for start, end in parse_ranges(spectral_range, whole=False, flag="--range"):
            if start < low - slack or end > high + slack:
                raise InputError(
                    f"--range {start:g}:{end:g} {unit} is not inside the cube's axis "
                    f"({low:g} to {high:g} {unit}); choose a range inside it"
                )
            inside = (axis.values >= start - slack) & (axis.values <= end + slack)
            if not inside.any():
                raise InputError(
                    f"--range {start:g}:{end:g} {unit} holds no channel (they are spaced "
                    f"{_spacing(axis):g} {unit} apart); widen it"
                )
            chosen |= inside
    else:
        return None
    if chosen.sum() < MIN_CHANNELS:
        raise InputError(
            f"the channel selection keeps {int(chosen.sum())} channel; choose at least {MIN_CHANNELS}"
        )
    return np.flatnonzero(chosen)


def _spacing(axis: SpectralAxis) -> float:
    return float(np.median(np.abs(np.diff(axis.values)))) if axis.size > 1 else 0.0


def channel_runs(indices: np.ndarray | None, n_channels: int) -> list[list[int]]:
    """The selection as half-open runs of consecutive channels, ``[[100, 400], [600, 700]]``."""
    if indices is None:
        return [[0, n_channels]]
    breaks = np.flatnonzero(np.diff(indices) > 1)
    starts = np.r_[indices[0], indices[breaks + 1]]
    ends = np.r_[indices[breaks], indices[-1]] + 1
    return [[int(a), int(b)] for a, b in zip(starts, ends, strict=True)]


def pixel_mask(values: np.ndarray, image_shape: tuple[int, int], source: str) -> np.ndarray:
    """``values`` as a pixel mask of ``image_shape``: True where nonzero.

    Parameters
    ----------
    values
        A label or boolean image; any nonzero value is inside.
    image_shape
        The cube's (H, W).
    source
        What the mask came from, for messages (a file name, a layer's name).

    Raises
    ------
    InputError
        If ``values`` is not 2-D, not numeric, not of ``image_shape``, or has
        no pixel inside.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise InputError(
            f"the mask {source} has shape {values.shape}, not a 2-D image; give a single-channel "
            "label or boolean image (H, W)"
        )
    if values.dtype.kind not in "biuf":
        raise InputError(f"the mask {source} holds {values.dtype} values; give a label or boolean image")
    if values.shape != tuple(image_shape):
        raise InputError(
            f"the mask {source} is {values.shape[0]} x {values.shape[1]} pixels but the cube is "
            f"{image_shape[0]} x {image_shape[1]}; give a mask of the cube's image size"
        )
    inside = np.asarray(values != 0)
    if not inside.any():
        raise InputError(f"the mask {source} has no nonzero pixel; mark the pixels to segment")
    return inside
