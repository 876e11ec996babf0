"""The real measurements in shared/data (skipped when the folder is absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.io import read_cube


def test_jasper_ridge_mat_equals_the_npz(shared_data: Path) -> None:
    folder = shared_data / "jasper_ridge"
    cube = read_cube(folder / "jasperRidge2_R198.mat")
    expected = np.load(folder / "jasper_ridge.npz", allow_pickle=False)["cube"]
    assert cube.shape == (100, 100, 198)
    np.testing.assert_array_equal(cube.data, expected)
    assert cube.metadata["variable"] == "Y"


def test_samson_mat_matches_the_npz(shared_data: Path) -> None:
    folder = shared_data / "samson"
    cube = read_cube(folder / "samson_1.mat")
    expected = np.load(folder / "samson.npz", allow_pickle=False)["cube"]
    np.testing.assert_allclose(cube.data, expected, rtol=1e-6)


def test_hyperspy_eels_equals_the_npz(shared_data: Path) -> None:
    folder = shared_data / "eels_cuzn"
    cube = read_cube(folder / "CuZn_EELS_mapping_tutorial.hspy")
    reference = np.load(folder / "cuzn_eels_si.npz", allow_pickle=False)
    np.testing.assert_array_equal(cube.data, reference["cube"])
    np.testing.assert_array_equal(cube.spectral_values, 700 + 8 * np.arange(162))
    np.testing.assert_array_equal(cube.spectral_values, reference["energy_loss_eV"])
    assert (cube.spectral_unit, cube.spectral_label) == ("eV", "Energy loss")
    npz = read_cube(folder / "cuzn_eels_si.npz")
    assert (npz.spectral_unit, npz.spectral_label) == ("eV", "Energy loss")


@pytest.mark.parametrize(
    "name",
    [
        "bruker_sem_eds_30x30_REE_mineral.npz",
        "bruker_sem_eds_50x50_AgAlCu.npz",
        "bruker_sem_eds_75x100_P45.npz",
    ],
)
def test_bruker_eds_has_an_energy_axis_in_kev(shared_data: Path, name: str) -> None:
    path = shared_data / "eds_bruker_sem" / name
    cube = read_cube(path)
    reference = np.load(path, allow_pickle=False)
    assert cube.shape == reference["cube"].shape and cube.n_channels == 2048
    assert (cube.spectral_unit, cube.spectral_label) == ("keV", "Energy")
    np.testing.assert_array_equal(cube.spectral_values, reference["energy_keV"])
    assert -1.0 < cube.spectral_values[0] < 0.0  # a Bruker axis starts just below zero keV
    assert np.diff(cube.spectral_values).mean() == pytest.approx(0.01, rel=1e-2)
    assert "meta_json" in cube.metadata
