"""The one spectral-axis type: what a cube, a segmentation and the readers share."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.spectral import SpectralAxis


def test_an_uncalibrated_axis_is_channel_indices():
    axis = SpectralAxis.build(4)
    np.testing.assert_array_equal(axis.values, [0.0, 1.0, 2.0, 3.0])
    assert (axis.unit, axis.label, axis.title, axis.calibrated, axis.kev) == (
        "channel", "Channel", "Channel", False, None
    )


def test_energies_in_ev_read_as_kev_and_wavelengths_not():
    ev = SpectralAxis.build(3, [1000.0, 2000.0, 3000.0], "eV", "Energy")
    np.testing.assert_allclose(ev.kev, [1.0, 2.0, 3.0])
    assert ev.title == "Energy (eV)" and ev.calibrated
    assert SpectralAxis.build(2, [5000.0, 5001.25], "Å", "Wavelength").kev is None


@pytest.mark.parametrize(
    ("unit", "title"),
    [("Angstrom", "Wavelength (Å)"), ("nm", "Wavelength (nm)"), ("eV", "Energy (eV)"),
     ("1/cm", "Wavenumber (cm-1)"), ("ppm", "Spectral axis (ppm)")],
)
def test_an_axis_named_by_its_unit_alone_says_what_it_measures(unit, title):
    assert SpectralAxis.build(2, [1.0, 2.0], unit).title == title


def test_wavelengths_read_in_angstrom_and_energies_not():
    np.testing.assert_allclose(SpectralAxis.build(2, [500.0, 500.125], "nm").angstrom, [5000.0, 5001.25])
    np.testing.assert_allclose(SpectralAxis.build(1, [0.65], "µm").angstrom, [6500.0])
    assert SpectralAxis.build(2, [1.0, 2.0], "keV").angstrom is None
    assert SpectralAxis.build(2).angstrom is None


@pytest.mark.parametrize(
    ("values", "words"), [([1.0, 2.0], "3 channels but 2"), ([1.0, np.nan, 3.0], "NaN or Inf")]
)
def test_a_bad_calibration_is_refused(values, words):
    with pytest.raises(InputError, match=words):
        SpectralAxis.build(3, values, "keV", "Energy")


def test_a_cube_and_its_segmentation_facts_read_the_same_axis():
    cube = Datacube.from_array(
        np.ones((2, 3, 4)), spectral_values=[1.0, 2.0, 3.0, 4.0], spectral_unit="keV",
        spectral_label="Energy",
    )
    assert isinstance(cube.axis, SpectralAxis)
    assert cube.spectral_values is cube.axis.values
    assert (cube.spectral_unit, cube.spectral_label, cube.axis_title) == ("keV", "Energy", "Energy (keV)")


@pytest.mark.parametrize(("spelling", "unit"), [("Angstrom", "Å"), ("nanometers", "nm"), ("micron", "µm")])
def test_a_unit_given_in_any_usual_spelling_is_read_as_its_unit(spelling, unit):
    # As files' units are: a cube made in Python with "Angstrom" has a wavelength axis too.
    cube = Datacube.from_array(np.ones((2, 2, 3)), spectral_values=[1.0, 2.0, 3.0], spectral_unit=spelling)
    assert cube.axis.unit == unit
    assert cube.axis.angstrom is not None
