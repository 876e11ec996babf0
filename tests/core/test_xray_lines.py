"""The X-ray line table and peak labelling."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.xray_lines import (
    ELEMENTS,
    LINES,
    XrayLine,
    label_peaks,
    lines_near,
    lines_of,
)

PIGMENT_ELEMENTS = (
    "Ca Ti Cr Mn Fe Co Ni Cu Zn As Se Sr Ag Cd Sn Sb Ba Hg Pb Au K Cl S Si Al".split()
)


def _line(element: str, name: str) -> XrayLine:
    return next(line for line in lines_of(element) if line.name == name)


def test_every_pigment_element_is_tabulated() -> None:
    assert set(PIGMENT_ELEMENTS) <= set(ELEMENTS)


@pytest.mark.parametrize(
    ("element", "name", "energy"),
    [
        ("Pb", "La", 10.551), ("Pb", "Lb", 12.614), ("Pb", "Ma", 2.342),
        ("Hg", "La", 9.989), ("Hg", "Lb", 11.823), ("Hg", "Ma", 2.195),
        ("Au", "La", 9.713), ("Au", "Ma", 2.123),
        ("Cu", "Ka", 8.048), ("Cu", "Kb", 8.905), ("Fe", "Ka", 6.404), ("Fe", "Kb", 7.058),
        ("Ca", "Ka", 3.692), ("Sn", "Ka", 25.271), ("Sn", "La", 3.444), ("Co", "Ka", 6.930),
        ("As", "Ka", 10.544), ("As", "Kb", 11.726), ("Zn", "Ka", 8.639),
    ],
)
def test_tabulated_energies(element: str, name: str, energy: float) -> None:
    assert _line(element, name).energy_kev == pytest.approx(energy, abs=0.002)


def test_line_families_are_ordered_and_normalised() -> None:
    for element in ELEMENTS:
        lines = {line.name: line for line in lines_of(element)}
        if "Kb" in lines:
            assert lines["Kb"].energy_kev > lines["Ka"].energy_kev
        if "Lb" in lines:
            assert lines["La"].energy_kev < lines["Lb"].energy_kev < lines["Lg"].energy_kev
        # Each family's strongest line is the reference, intensity 1.
        for family in {line.family for line in lines.values()}:
            strongest = max(ln.relative_intensity for ln in lines.values() if ln.family == family)
            assert strongest == 1.0
    assert all(0 < line.relative_intensity <= 1 for line in LINES)


def test_display_name_uses_greek_letters() -> None:
    assert _line("Pb", "La").display_name == "Pb Lα"
    assert _line("Fe", "Kb").display_name == "Fe Kβ"
    assert _line("Hg", "Ma").display_name == "Hg Mα"


def test_lines_of_ignores_case_and_rejects_unknown_elements() -> None:
    assert lines_of("pb") == lines_of("Pb")
    with pytest.raises(InputError, match=r"known elements: .*Pb"):
        lines_of("Xx")


def test_lines_near_sorts_by_distance() -> None:
    found = lines_near(6.40)
    assert found[0].display_name == "Fe Kα"
    # Pb Lα and As Kα overlap at 10.55 keV: both are returned, closest first.
    names = [line.display_name for line in lines_near(10.55, tolerance_kev=0.02)]
    assert names == ["Pb Lα", "As Kα"]
    assert lines_near(50.0) == []


def test_lines_near_skips_weak_lines_unless_asked() -> None:
    assert "Al Kβ" not in [line.display_name for line in lines_near(1.557)]
    assert lines_near(1.557, tolerance_kev=0.01, min_intensity=0.0)[0].display_name == "Al Kβ"


def test_lines_near_rejects_bad_arguments() -> None:
    with pytest.raises(InputError):
        lines_near(float("nan"))
    with pytest.raises(InputError):
        lines_near(6.4, tolerance_kev=-0.1)


def _spectrum(energies: np.ndarray, lines: list[tuple[float, float]]) -> np.ndarray:
    """Gaussian peaks (140 eV FWHM) on a sloping background, with Poisson noise."""
    rng = np.random.default_rng(0)
    sigma = 0.14 / 2.3548
    mean = 20.0 + 2.0 * energies
    for energy, height in lines:
        mean = mean + height * np.exp(-0.5 * ((energies - energy) / sigma) ** 2)
    return rng.poisson(mean).astype(float)


def test_label_peaks_names_lead_and_mercury() -> None:
    energies = np.linspace(0.0, 40.0, 2048)
    spectrum = _spectrum(
        energies, [(10.551, 2000.0), (12.614, 1700.0), (9.989, 600.0), (11.823, 500.0)]
    )
    found = label_peaks(energies, spectrum)
    names = [name for _, name in found]
    assert {"Pb Lα", "Pb Lβ", "Hg Lα", "Hg Lβ"} <= set(names)
    assert [energy for energy, _ in found] == sorted(energy for energy, _ in found)
    pb_alpha = dict((name, energy) for energy, name in found)["Pb Lα"]
    assert pb_alpha == pytest.approx(10.551, abs=0.02)


def test_label_peaks_respects_max_peaks_and_flat_input() -> None:
    energies = np.linspace(0.0, 40.0, 2048)
    spectrum = _spectrum(energies, [(10.551, 2000.0), (12.614, 1700.0), (6.404, 900.0)])
    assert len(label_peaks(energies, spectrum, max_peaks=2)) == 2
    assert label_peaks(energies, np.ones_like(energies)) == []


def test_label_peaks_rejects_mismatched_input() -> None:
    with pytest.raises(InputError, match="same 1-D length"):
        label_peaks(np.arange(10.0), np.arange(9.0))
    with pytest.raises(InputError, match="NaN"):
        label_peaks(np.arange(10.0), np.full(10, np.nan))
