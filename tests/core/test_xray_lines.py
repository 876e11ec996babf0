"""The X-ray line table (from xraydb) and peak labelling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.xray_lines import (
    ELEMENTS,
    XrayLine,
    all_lines,
    element_lines,
    label_peaks,
    lines_near,
    lines_of,
    parse_elements,
)

PIGMENT_ELEMENTS = (
    "Ca Ti Cr Mn Fe Co Ni Cu Zn As Se Sr Ag Cd Sn Sb Ba Hg Pb Au K Cl S Si Al".split()
)


def _line(element: str, name: str) -> XrayLine:
    return next(line for line in lines_of(element) if line.name == name)


def test_every_pigment_element_is_tabulated() -> None:
    assert set(PIGMENT_ELEMENTS) <= set(ELEMENTS)


def test_light_and_heavy_elements_are_tabulated() -> None:
    """Every element from boron to uranium: C, N, O, Na, Mg for EDS, Mo, W, Pt for alloys and tubes."""
    assert ELEMENTS[0] == "B" and ELEMENTS[-1] == "U" and len(ELEMENTS) == 88
    for element in ("C", "N", "O", "Na", "Mg", "Mo", "W", "Pt"):
        assert lines_of(element), element
    assert _line("C", "Ka").energy_kev == pytest.approx(0.277, abs=0.002)
    assert _line("O", "Ka").energy_kev == pytest.approx(0.525, abs=0.003)
    assert _line("Mo", "La").energy_kev == pytest.approx(2.293, abs=0.003)
    assert _line("W", "Ma").energy_kev == pytest.approx(1.775, abs=0.003)
    assert _line("Pt", "La").energy_kev == pytest.approx(9.442, abs=0.003)
    # Below lanthanum the M shell has no Mα and yields ~1e-3: no M lines to name a peak after.
    assert {line.family for line in lines_of("Pd")} == {"K", "L"}


def test_close_lines_are_merged_under_the_stronger() -> None:
    """Cu Kα1 and Kα2 lie 20 eV apart: one line, at Kα1, carrying both."""
    names = [line.name for line in lines_of("Cu")]
    assert "Ka2" not in names and names.count("Ka") == 1
    # Pb Lα1 and Lα2 lie 100 eV apart, which a detector half resolves: both kept, Lα1 the stronger.
    assert _line("Pb", "La2").relative_intensity < 0.2 < _line("Pb", "La").relative_intensity


def test_coster_kronig_transitions_make_l_alpha_the_strongest_l_line() -> None:
    """Most L1 vacancies of heavy elements move to L3 before they fill: Lα > Lβ, as measured."""
    for element in ("Pb", "Hg", "Au", "Ba", "Sn"):
        assert _line(element, "La").relative_intensity == 1.0
        assert 0.4 < _line(element, "Lb").relative_intensity < 1.0


def test_excitation_keeps_only_the_families_a_tube_reaches() -> None:
    """A 40 kV tube excites Pb's L and M lines, not its K lines (edge at 88 keV); Ba's K edge is 37.4 keV."""
    assert {line.family for line in lines_of("Pb", excitation_kev=40.0)} == {"L", "M"}
    assert "K" in {line.family for line in lines_of("Ba", excitation_kev=40.0)}
    assert {line.family for line in lines_of("Pb")} == {"K", "L", "M"}


@pytest.mark.parametrize(
    ("element", "name", "energy"),
    [
        ("Pb", "La", 10.551), ("Pb", "Lb", 12.614), ("Pb", "Ma", 2.342),
        ("Hg", "La", 9.989), ("Hg", "Lb", 11.823), ("Hg", "Ma", 2.191),
        ("Au", "La", 9.713), ("Au", "Ma", 2.118),
        ("Cu", "Ka", 8.046), ("Cu", "Kb", 8.905), ("Fe", "Ka", 6.404), ("Fe", "Kb", 7.058),
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
        if "Lg" in lines:
            assert lines["La"].energy_kev < lines["Lb"].energy_kev < lines["Lg"].energy_kev
        # Each family's strongest line is the reference, intensity 1.
        for family in {line.family for line in lines.values()}:
            strongest = max(ln.relative_intensity for ln in lines.values() if ln.family == family)
            assert strongest == 1.0
    assert all(0 < line.relative_intensity <= 1 for line in all_lines())


def test_display_name_uses_greek_letters() -> None:
    assert _line("Pb", "La").display_name == "Pb Lα"
    assert _line("Fe", "Kb").display_name == "Fe Kβ"
    assert _line("Hg", "Ma").display_name == "Hg Mα"
    assert _line("Pb", "Lb3").display_name == "Pb Lβ3"


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
    assert "Fe Kβ" not in [line.display_name for line in lines_near(7.059, min_intensity=0.2)]
    assert lines_near(7.059, tolerance_kev=0.01, min_intensity=0.0)[0].display_name == "Fe Kβ"


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
    lead = [(10.551, 2000.0), (12.614, 1700.0), (14.766, 260.0)]
    mercury = [(9.989, 600.0), (11.824, 420.0), (13.831, 80.0)]
    spectrum = _spectrum(energies, [*lead, *mercury])
    found = label_peaks(energies, spectrum)
    names = [name for _, name in found]
    assert {"Pb Lα", "Pb Lβ", "Hg Lα", "Hg Lβ"} <= set(names)
    assert [energy for energy, _ in found] == sorted(energy for energy, _ in found)
    pb_alpha = dict((name, energy) for energy, name in found)["Pb Lα"]
    assert pb_alpha == pytest.approx(10.551, abs=0.02)


def test_label_peaks_names_a_weak_line_only_after_its_element() -> None:
    """Fe Kβ is named once Fe Kα is; a lone peak at Fe Kβ's energy is not taken for Fe."""
    energies = np.linspace(0.0, 20.0, 2048)
    iron = _spectrum(energies, [(6.404, 2000.0), (7.058, 300.0)])
    with_alpha = [name for _, name in label_peaks(energies, iron)]
    assert with_alpha == ["Fe Kα", "Fe Kβ"]
    alone = [name for _, name in label_peaks(energies, _spectrum(energies, [(7.058, 300.0)]))]
    assert "Fe Kβ" not in alone


def test_label_peaks_names_lead_not_arsenic_without_arsenic_k_beta() -> None:
    """Pb Lα (10.551 keV) and As Kα (10.544) overlap: As is named only where As Kβ shows too.

    The lead lines sit 6 eV low, as a calibration a little off puts them, closer to As Kα.
    """
    energies = np.linspace(0.0, 20.0, 2048)
    lead = [(10.545, 2000.0), (12.608, 1700.0), (14.760, 260.0)]
    assert "As Kα" not in {name for _, name in label_peaks(energies, _spectrum(energies, lead))}
    arsenic = [(10.544, 2000.0), (11.726, 300.0)]
    assert "As Kα" in {name for _, name in label_peaks(energies, _spectrum(energies, arsenic))}


def test_label_peaks_names_copper_and_carbon_in_an_eds_spectrum() -> None:
    """The peaks a SEM-EDS user sees on a Cu grid: C Kα, Cu Lα, Cu Kα, Cu Kβ."""
    energies = np.linspace(0.0, 20.0, 2048)
    spectrum = _spectrum(energies, [(0.277, 800.0), (0.928, 900.0), (8.046, 2000.0), (8.905, 300.0)])
    assert {"C Kα", "Cu Lα", "Cu Kα", "Cu Kβ"} <= {name for _, name in label_peaks(energies, spectrum)}


def test_label_peaks_ignores_a_one_channel_spike() -> None:
    """A hot channel at the C Kα energy is narrower than any detector draws a line: not carbon."""
    energies = np.linspace(0.0, 20.0, 2048)
    spectrum = _spectrum(energies, [(8.046, 2000.0), (8.905, 300.0)])
    spectrum[int(np.argmin(np.abs(energies - 0.277)))] += 900.0
    assert "C Kα" not in {name for _, name in label_peaks(energies, spectrum)}


def test_label_peaks_respects_max_peaks_and_flat_input() -> None:
    energies = np.linspace(0.0, 40.0, 2048)
    spectrum = _spectrum(energies, [(10.551, 2000.0), (12.614, 1700.0), (14.766, 260.0), (6.404, 900.0)])
    assert len(label_peaks(energies, spectrum, max_peaks=2)) == 2
    assert label_peaks(energies, np.ones_like(energies)) == []


def test_label_peaks_rejects_mismatched_input() -> None:
    with pytest.raises(InputError, match="same 1-D length"):
        label_peaks(np.arange(10.0), np.arange(9.0))
    with pytest.raises(InputError, match="NaN"):
        label_peaks(np.arange(10.0), np.full(10, np.nan))


@pytest.mark.parametrize(
    ("name", "elements"),
    [
        ("bruker_sem_eds_50x50_AgAlCu.npz", {"Al Kα", "Ag Lα", "Ag Lβ"}),
        ("bruker_sem_eds_75x100_P45.npz", {"O Kα", "Na Kα", "Al Kα", "Si Kα", "K Kα"}),
        ("bruker_sem_eds_30x30_REE_mineral.npz", {"O Kα", "Si Kα", "Ca Kα", "Fe Kα", "Ti Kα"}),
    ],
)
def test_label_peaks_names_the_elements_of_real_sem_eds_maps(
    shared_data: Path, name: str, elements: set[str]
) -> None:
    """The mean spectrum of a real Bruker SEM-EDS map: the elements an analyst reads off it, and no others."""
    with np.load(shared_data / "eds_bruker_sem" / name) as stored:
        cube, energies = stored["cube"].astype(float), stored["energy_keV"]
    mean = cube.reshape(-1, cube.shape[-1]).mean(axis=0)
    above = energies > 0.1  # the zero-energy strobe peak is no element
    found = {line for _, line in label_peaks(energies[above], mean[above], max_peaks=12)}
    assert elements <= found
    rare = {"Th", "Br", "As", "Eu", "Tb", "Os", "Pm", "Pr"}
    assert not {line.split()[0] for line in found} & rare


def test_typed_element_symbols_are_checked_and_spelled_as_symbols() -> None:
    assert parse_elements("pb, CU fe;Pb") == ["Pb", "Cu", "Fe"]
    with pytest.raises(InputError, match=r"Xx, Qq: not the symbol of an element"):
        parse_elements("Pb Xx qq")


def test_the_lines_of_picked_elements_on_an_axis() -> None:
    lines = element_lines(["Pb", "Cu"], 0.5, 20.0)
    names = [line.display_name for line in lines]
    assert {"Pb Mα", "Pb Lα", "Pb Lβ", "Pb Lγ", "Cu Lα", "Cu Kα", "Cu Kβ"} <= set(names)
    assert "Pb Kα" not in names  # 75 keV, off this axis
    assert not [line for line in element_lines(["Al"], -0.5, 20.0) if line.energy_kev < 0.1]  # Al L
    assert [line.energy_kev for line in lines] == sorted(line.energy_kev for line in lines)
    assert all(line.relative_intensity >= 0.1 for line in lines)
