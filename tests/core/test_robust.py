"""The robust spread of many rows at once."""

import numpy as np

from napari_deepcube.core.robust import row_mad_in_place


def test_each_rows_median_absolute_deviation_is_taken_in_its_own_memory():
    rng = np.random.default_rng(0)
    rows = rng.normal(0.0, np.arange(1.0, 6.0)[:, None], (5, 1001))
    rows[2, :10] = 1e6  # a few pairs across a region edge do not move it
    expected = [np.median(np.abs(row - np.median(row))) for row in rows]
    mad = row_mad_in_place(rows)
    np.testing.assert_array_equal(mad, expected)
    assert not np.any(rows < 0)  # the deviations were written over the rows
