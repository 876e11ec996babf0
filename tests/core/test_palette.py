"""Cluster colours: stable per label and distinct for any k."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepcube.core.palette import _srgb_to_lab, label_colors


def _closest_pair(rgb: np.ndarray) -> float:
    """Smallest CIELAB distance between two of the colours."""
    lab = _srgb_to_lab(rgb)
    distance = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    np.fill_diagonal(distance, np.inf)
    return float(distance.min())


@pytest.mark.parametrize("k", [1, 5, 12, 13, 64, 65, 255, 300])
def test_one_opaque_colour_per_label_and_label_0_transparent(k: int) -> None:
    colors = label_colors(k)
    assert colors.shape == (k + 1, 4)
    assert colors[0, 3] == 0.0 and np.all(colors[1:, 3] == 1.0)
    assert np.all((colors >= 0.0) & (colors <= 1.0))


def test_a_label_keeps_its_colour_whatever_k() -> None:
    np.testing.assert_array_equal(label_colors(5)[1:], label_colors(300)[1:6])
    np.testing.assert_array_equal(label_colors(40)[1:], label_colors(300)[1:41])


def test_colours_stay_distinct_beyond_twelve() -> None:
    """ΔE (CIELAB) between the two closest colours: about 28 up to 40 labels, still above 10 at 255."""
    assert _closest_pair(label_colors(40)[1:, :3]) > 25.0
    assert _closest_pair(label_colors(255)[1:, :3]) > 10.0
    lab = _srgb_to_lab(label_colors(255)[13:, :3])
    assert np.all(np.hypot(lab[:, 1], lab[:, 2]) >= 25.0)  # none passes for grey
    assert np.all((lab[:, 0] >= 35.0) & (lab[:, 0] <= 88.0))  # visible on black and on white


def test_the_colour_conversion_is_cielab() -> None:
    lab = _srgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(lab, [[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [53.24, 80.09, 67.20]], atol=0.01)
