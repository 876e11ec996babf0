"""The measurements of benchmarks/diagnose.py on images whose answer is known."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from diagnose import contingency, within_half_correlation


def _halves(height: int = 40, width: int = 60) -> np.ndarray:
    halves = np.zeros((height, width), dtype=np.int64)
    halves[:, width // 2 :] = 1
    halves[:5] = -1  # pixels of neither cluster
    return halves


def test_a_ramp_through_both_halves_is_smooth_inside_each(rng):
    halves = _halves()
    ramp = np.tile(np.linspace(-3.0, 3.0, halves.shape[1]), (halves.shape[0], 1))
    assert within_half_correlation(ramp + rng.normal(0.0, 0.3, halves.shape), halves) > 0.8


def test_two_flat_materials_leave_only_noise_inside_each_half(rng):
    halves = _halves()
    step = np.where(halves == 1, 3.0, -3.0)
    assert abs(within_half_correlation(step + rng.normal(0.0, 0.3, halves.shape), halves)) < 0.1


def test_contingency_counts_each_clusters_pixels_of_each_class():
    labels = np.array([1, 1, 2, 2, 2, 0])
    truth = np.array([1, 2, 2, 2, 1, 1])
    np.testing.assert_array_equal(contingency(labels, truth), [[1, 1], [1, 2]])
