"""The spectrum drawing on a plain Agg figure: curves, bands, axes and element names."""

import numpy as np
from matplotlib.figure import Figure

from napari_deepcube._widgets._layers import SpectralAxis
from napari_deepcube._widgets._spectrum_figure import Curve, draw_spectra

COLORS = {"text": "#ffffff", "faint": "#888888"}


def _peak(energies, centre, height):
    return height * np.exp(-0.5 * ((energies - centre) / 0.06) ** 2)


def test_means_get_a_band_and_x_ray_peaks_are_named_after_their_elements():
    energies = np.linspace(0.5, 20.0, 800)
    copper = _peak(energies, 8.047, 900.0) + _peak(energies, 8.905, 130.0)  # Kα and the Kβ beside it
    iron = _peak(energies, 6.404, 400.0) + _peak(energies, 7.058, 57.0)
    spectrum = 5.0 + copper + iron
    axis = SpectralAxis(energies, "keV", "Energy")
    axes = Figure().add_subplot()
    lines = draw_spectra(
        axes, axis, [Curve("cluster 1", spectrum, "red", std=np.full_like(spectrum, 2.0))], COLORS
    )
    assert list(lines) == ["cluster 1"] and len(axes.collections) == 1  # the ± std band
    names = " ".join(text.get_text() for text in axes.texts)
    assert "Cu" in names and "Fe" in names
    assert axes.get_xlabel() == "Energy (keV)" and axes.get_ylabel() == "Counts"
    assert axes.get_xlim() == (0.5, 20.0)


def test_a_wavelength_axis_gets_the_optical_emission_lines_and_a_log_scale_when_asked():
    wavelengths = np.linspace(4750.0, 9350.0, 300)  # MUSE
    axis = SpectralAxis(wavelengths, "Å", "Wavelength")
    axes = Figure().add_subplot()
    curves = [Curve("pixel (3, 4)", np.linspace(1.0, 2.0, 300), "blue", is_mean=False)]
    draw_spectra(axes, axis, curves, COLORS, log_y=True)
    names = [text.get_text().strip() for text in axes.texts]
    # Hα keeps its name against the [NII] lines beside it; Hγ (4340 Å) is below the axis,
    # [SIII] 9069 Å beyond the visible range; no X-ray element is named.
    assert {"Hα", "Hβ", "[OIII]", "[SII]", "[OI]", "HeI"} <= set(names)
    assert "Hγ" not in names and not any(name.endswith(("Kα", "Lα")) for name in names)
    rules = [line.get_xdata()[0] for line in axes.lines[1:]]
    assert 6562.80 in rules and 6583.45 in rules and max(rules) < 7500.0
    assert axes.get_yscale() == "log" and axes.get_ylabel() == "Intensity"


def test_a_wavelength_axis_in_nm_marks_the_lines_in_nm():
    axis = SpectralAxis(np.linspace(400.0, 1000.0, 200), "nm", "Wavelength")
    axes = Figure().add_subplot()
    draw_spectra(axes, axis, [Curve("c", np.ones(200), "red")], COLORS)
    assert 656.28 in [round(line.get_xdata()[0], 2) for line in axes.lines[1:]]


def test_element_names_can_be_switched_off():
    energies = np.linspace(0.5, 20.0, 800)
    axis = SpectralAxis(energies, "keV", "Energy")
    axes = Figure().add_subplot()
    draw_spectra(axes, axis, [Curve("c", _peak(energies, 8.047, 100.0), "red")], COLORS, element_lines=False)
    assert len(axes.texts) == 0
    wavelengths = SpectralAxis(np.linspace(4750.0, 9350.0, 300), "Å", "Wavelength")
    axes = Figure().add_subplot()
    draw_spectra(axes, wavelengths, [Curve("c", np.ones(300), "red")], COLORS, element_lines=False)
    assert len(axes.texts) == 0
