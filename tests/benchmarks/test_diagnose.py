"""The measurements of benchmarks/diagnose.py on images whose answer is known."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from diagnose import cluster_shift_gains, contingency, within_half_correlation
from napari_deepcube.core.kselect import bic_penalty
from napari_deepcube.core.preprocess import fit_and_transform
from napari_deepcube.core.preprocess_config import PreprocessConfig


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


def test_a_cluster_at_another_velocity_is_within_a_penalty_of_the_first_moved(rng):
    wavelengths = 6400.0 + 1.25 * np.arange(400)

    def lines(velocity: float, ratio: float) -> np.ndarray:
        centres = np.array([6562.8, 6583.4]) * (1 + velocity / 299_792.458)
        profiles = np.exp(-0.5 * ((wavelengths[:, None] - centres) / 1.2) ** 2)
        return profiles @ np.array([10.0, 10.0 * ratio])

    templates = [lines(0.0, 0.3), lines(90.0, 0.3), lines(0.0, 1.5)]
    labels = np.repeat(np.arange(3), 400)
    spectra = np.vstack([rng.uniform(0.7, 1.3, (400, 1)) * t for t in templates])
    spectra = spectra + rng.normal(size=spectra.shape)
    neighbours = spectra + rng.normal(size=spectra.shape)
    prep = fit_and_transform(PreprocessConfig(kind="flux"), spectra, neighbours)[0]
    features = prep.transform(spectra)
    penalty = bic_penalty(features.shape[1], features.shape[0])
    gains = cluster_shift_gains(features, spectra, labels, wavelengths, prep, seed=0)
    assert gains[1][0] < penalty and gains[1][1] == 0
    # Another [NII]/Hα ratio is no velocity.
    assert gains[2][0] > 10 * penalty
