"""Robust spreads of many rows at once: the noise of neighbouring pixels' differences.

Two pixels side by side carry nearly the same signal and independent noise, so
the spread of their differences measures the noise; the median absolute
deviation ignores the few pairs across region edges. Samples are hundreds of
MB, so the differences are laid out one channel (or bin) per row, a block at a
time, and their medians are taken in place.
"""

from __future__ import annotations

import numpy as np

#: The median absolute deviation of Gaussian noise times this is its standard deviation.
MAD_TO_SIGMA = 1.4826
#: Columns laid out at a time as rows: transposing a whole sample's differences
#: reads both inputs across their rows, several times slower.
TRANSPOSE_BLOCK = 128


def row_mad_in_place(rows: np.ndarray) -> np.ndarray:
    """The median absolute deviation of each row of ``rows`` (C-contiguous), which it overwrites."""
    centre = np.median(rows, axis=1, keepdims=True, overwrite_input=True)
    deviations = np.abs(np.subtract(rows, centre, out=rows), out=rows)
    return np.median(deviations, axis=1, overwrite_input=True)
