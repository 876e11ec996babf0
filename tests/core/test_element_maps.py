"""Element maps (net counts of an X-ray line) and window maps, on real cubes."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from scipy.special import erf

from napari_deepcube.core.element_maps import (
    compute_maps,
    detector_fwhm_kev,
    display_limits,
    line_window,
    main_lines,
    parse_lines,
    range_window,
    rgb_composite,
    window_statistic,
)
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.spectral import SpectralAxis
from napari_deepcube.core.synthetic import make_painting

KEV = SpectralAxis(np.linspace(0.0, 20.0, 1024, endpoint=False) + 20.0 / 2048, "keV", "Energy")


@pytest.fixture(scope="module")
def sample_painting():
    """The napari sample "MA-XRF painting": 256 × 256 × 1024, seed 0, as File > Open Sample opens it."""
    return make_painting(256, 256, 1024, seed=0)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _line(text: str):
    [line] = parse_lines(text)
    return line


def test_the_pb_la_map_of_the_sample_painting_follows_the_true_lead(sample_painting):
    axis = sample_painting.cube.axis
    window = line_window(axis, _line("Pb La"))
    [lead] = compute_maps(sample_painting.cube.data, [window])
    truth = sample_painting.element_photons["Pb"]

    assert window.title == "Pb Lα net counts"
    assert _correlation(lead, truth) > 0.9
    # Bright where lead white is, dark on the paints without lead.
    names = list(sample_painting.class_names)
    labels = sample_painting.labels
    lead_white = lead[labels == names.index("lead white") + 1].mean()
    azurite = lead[labels == names.index("azurite") + 1].mean()
    assert lead_white > 150 and abs(azurite) < 5


def test_a_background_window_on_a_present_elements_line_is_dropped(sample_painting):
    """Hg Lα (9.99 keV) lies under the low background window of Pb Lα (10.55 keV): with Hg
    named present, the vermilion's net lead is near 0 instead of -31 counts."""
    axis = sample_painting.cube.axis
    lead = _line("Pb La")
    plain, avoiding = line_window(axis, lead), line_window(axis, lead, present=["hg"])
    assert len(plain.background) == 2 and len(avoiding.background) == 1
    assert avoiding.background[0][0] > lead.energy_kev
    maps = compute_maps(sample_painting.cube.data, [plain, avoiding])
    vermilion = sample_painting.labels == list(sample_painting.class_names).index("vermilion") + 1
    truth = sample_painting.element_photons["Pb"]
    assert maps[0][vermilion].mean() < -20 and abs(maps[1][vermilion].mean()) < 3
    assert _correlation(maps[1], truth) > _correlation(maps[0], truth)


def test_a_straight_background_gives_zero_net_counts():
    """Spectra a + b E (a, b different at each pixel): the background windows see the line exactly."""
    rng = np.random.default_rng(0)
    offset, slope = rng.uniform(25, 50, (6, 7, 1)), rng.uniform(-1, 1, (6, 7, 1))
    cube = (offset + slope * KEV.values).astype(np.float32)
    windows = [line_window(KEV, line) for line in parse_lines("Fe Ka, Cu Ka, Pb La, Sr Ka")]
    np.testing.assert_allclose(compute_maps(cube, windows), 0.0, atol=2e-3)
    gross = compute_maps(cube, [range_window(KEV, *windows[0].window)])
    assert gross.min() > 10  # what a map without the background would show


def test_net_counts_are_the_peaks_counts_and_follow_it_over_any_continuum():
    """A Fe Kα peak of random area on a continuum whose level varies independently:
    the net map is the peak's area in ±1 FWHM (98 %), the gross window sum is not."""
    rng = np.random.default_rng(1)
    line = _line("Fe Ka")
    sigma = float(detector_fwhm_kev(line.energy_kev)) / 2.3548
    edges = np.r_[KEV.values - 10.0 / 1024, KEV.values[-1] + 10.0 / 1024]
    peak = 0.5 * np.diff(erf((edges - line.energy_kev) / (np.sqrt(2) * sigma)))
    area = rng.uniform(100, 400, (32, 32))
    level = rng.uniform(0, 60, (32, 32))
    expected = area[..., None] * peak + level[..., None] * np.exp(-KEV.values / 8.0)
    cube = rng.poisson(expected).astype(np.float32)
    window = line_window(KEV, line)
    net, gross = compute_maps(cube, [window, range_window(KEV, *window.window)])

    inside = erf(float(detector_fwhm_kev(line.energy_kev)) / (np.sqrt(2) * sigma))
    assert inside == pytest.approx(0.98, abs=0.005)
    assert np.mean(net) == pytest.approx(inside * area.mean(), rel=0.03)
    assert _correlation(net, area) > 0.9
    assert _correlation(gross, area) < _correlation(net, area) - 0.2


def test_the_detector_resolution_follows_the_fano_law():
    assert float(detector_fwhm_kev(5.899)) == pytest.approx(0.130)
    assert float(detector_fwhm_kev(10.551)) == pytest.approx(0.168, abs=0.001)
    # HyperSpy's rule of thumb, FWHM^2 = FWHM_Mn^2 + 2.5 eV x (E - E_Mn), agrees within 1 %.
    hyperspy = np.sqrt(130.0**2 + 2.5 * (20000 - 5899)) / 1000
    assert float(detector_fwhm_kev(20.0)) == pytest.approx(hyperspy, rel=0.01)
    assert detector_fwhm_kev(np.array([1.0, 20.0]), 0.160)[1] > detector_fwhm_kev(20.0)
    with pytest.raises(InputError, match="Fano"):
        detector_fwhm_kev(5.0, 0.100)


def test_line_windows_scale_with_the_resolution_and_speak_the_axis_unit():
    lead = _line("Pb La")
    window = line_window(KEV, lead)
    fwhm = float(detector_fwhm_kev(lead.energy_kev))
    assert window.window == pytest.approx((lead.energy_kev - fwhm, lead.energy_kev + fwhm))
    assert [start for start, _ in window.background] == pytest.approx(
        [lead.energy_kev - 3 * fwhm, lead.energy_kev + 2 * fwhm]
    )
    assert line_window(KEV, lead, fwhm_mn_kev=0.16).window[0] < window.window[0]
    in_ev = SpectralAxis(KEV.values * 1000.0, "eV", "Energy")
    ev_window = line_window(in_ev, lead)
    assert ev_window.window == pytest.approx(tuple(1000 * v for v in window.window))
    np.testing.assert_allclose(ev_window.weights, window.weights)
    assert window.facts()["unit"] == "keV" and ev_window.facts()["unit"] == "eV"


def test_lines_off_the_axis_or_on_no_energy_axis_are_refused():
    with pytest.raises(InputError, match="off this cube's energy axis"):
        line_window(KEV, _line("Pb Ka"))  # 75 keV
    with pytest.raises(InputError, match="X-ray energy axis"):
        line_window(SpectralAxis(np.linspace(4750, 9350, 100), "Å", "Wavelength"), _line("Fe Ka"))
    with pytest.raises(InputError, match="either side"):
        line_window(SpectralAxis(np.linspace(6.3, 6.5, 40), "keV", "Energy"), _line("Fe Ka"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Pb La", ["Pb Lα"]),
        ("pb lα; FE KA", ["Pb Lα", "Fe Kα"]),
        ("Hg Lb2,15, Cu Ka", ["Hg Lβ2,15", "Cu Kα"]),
        ("Pb La, Pb La", ["Pb Lα"]),
    ],
)
def test_typed_lines_are_parsed(text, expected):
    assert [line.display_name for line in parse_lines(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "no X-ray line"), ("Pb", "write an element and a line"), ("Pb Kz", "Pb has no line 'Kz'"),
     ("Xq Ka", "no X-ray lines are tabulated")],
)
def test_bad_lines_say_what_to_type(text, message):
    with pytest.raises(InputError, match=message):
        parse_lines(text)


def test_a_window_map_sums_or_averages_its_channels_on_any_axis(rng):
    cube = rng.normal(size=(5, 6, 50)).astype(np.float32)
    axis = SpectralAxis(np.linspace(4750.0, 9350.0, 50), "Å", "Wavelength")
    chosen = (axis.values >= 6000) & (axis.values <= 7000)
    total, mean = compute_maps(cube, [range_window(axis, 7000, 6000), range_window(axis, 6000, 7000, "mean")])
    np.testing.assert_allclose(total, cube[..., chosen].sum(axis=-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, cube[..., chosen].mean(axis=-1), rtol=1e-5, atol=1e-5)
    assert range_window(axis, 6000, 7000).title == "6000-7000 Å sum"
    # Narrower than a channel: the nearest channel alone.
    [one] = compute_maps(cube, [range_window(axis, 6001, 6002)])
    np.testing.assert_allclose(one, cube[..., np.argmin(np.abs(axis.values - 6001.5))])
    assert range_window(SpectralAxis.channels(50), 3, 9).title == "channels 3-9 sum"
    with pytest.raises(InputError, match="off the cube's axis"):
        range_window(axis, 100, 200)
    with pytest.raises(InputError, match="'sum' or a 'mean'"):
        range_window(axis, 6000, 7000, "median")  # type: ignore[arg-type]


class _RecordedReads:
    """An (H, W, C) array that records every slice read from it, like a lazy store."""

    def __init__(self, data: np.ndarray) -> None:
        self.data, self.shape, self.dtype, self.reads = data, data.shape, data.dtype, []

    def __getitem__(self, key):
        self.reads.append(key)
        return self.data[key]


def test_lazy_cubes_are_read_in_bands_of_the_windows_channels(tmp_path, rng):
    cube = rng.poisson(20.0, size=(40, 30, 1024)).astype(np.float32)
    cube[3, 4, 500] = np.nan
    windows = [line_window(KEV, line) for line in parse_lines("Fe Ka, Pb La")]
    windows.append(range_window(KEV, 2.0, 3.0, "mean"))
    expected = compute_maps(cube, windows)
    assert np.isfinite(expected).all()

    stored = np.lib.format.open_memmap(tmp_path / "cube.npy", "w+", np.float32, cube.shape)
    stored[:] = cube
    stored.flush()
    mapped = np.load(tmp_path / "cube.npy", mmap_mode="r")
    np.testing.assert_allclose(compute_maps(mapped, windows), expected, rtol=1e-6)
    chunked = da.from_array(cube, chunks=(8, 30, 256))
    np.testing.assert_allclose(compute_maps(chunked, windows), expected, rtol=1e-6)

    recorded = _RecordedReads(cube)
    compute_maps(recorded, windows, block_values=6000)
    assert len(recorded.reads) > 3 * len(windows)  # several bands per map
    for rows, columns, channels in recorded.reads:
        assert columns == slice(None)
        assert channels in [window.channels for window in windows]
        assert (rows.stop - rows.start) * 30 * (channels.stop - channels.start) <= 6000


def test_robust_limits_and_the_rgb_composite(rng):
    first = rng.uniform(0, 10, (20, 30))
    first[0, 0] = 1e6  # a hot pixel does not set the range
    second = np.zeros((20, 30))
    low, high = display_limits(first)
    assert 0 <= low < 0.2 and 9.8 < high < 10
    assert display_limits(second) == (0.0, 1.0)
    rgb = rgb_composite([first, second])
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.float32
    assert rgb.min() == 0.0 and rgb.max() == 1.0
    np.testing.assert_allclose(rgb[..., 0], np.clip((first - low) / (high - low), 0, 1), rtol=1e-6)
    assert not rgb[..., 1:].any()
    with pytest.raises(InputError, match="one to three"):
        rgb_composite([first] * 4)
    with pytest.raises(InputError, match="one shape"):
        rgb_composite([first, second[:10]])


def test_each_elements_main_line_is_that_of_its_most_energetic_family_on_the_axis():
    def names(top: float) -> list[str]:
        axis = SpectralAxis(np.linspace(0, top, 512), "keV", "Energy")
        return [line.display_name for line in main_lines(["Pb", "Fe", "Sn", "Au"], axis)]

    assert names(40.0) == ["Pb Lα", "Fe Kα", "Sn Kα", "Au Lα"]
    assert names(10.0) == ["Pb Mα", "Fe Kα", "Sn Lα", "Au Lα"]  # not Pb's faint Lℓ at 9.18 keV
    assert main_lines(["Pb"], SpectralAxis(np.linspace(4750, 9350, 50), "Å", "Wavelength")) == []
    assert window_statistic(KEV) == "sum" and window_statistic(SpectralAxis.channels(9)) == "sum"
    assert window_statistic(SpectralAxis(np.linspace(4750, 9350, 50), "Å", "Wavelength")) == "mean"


def test_silver_and_aluminium_maps_of_a_real_eds_scan_are_complementary(shared_data):
    """A Bruker SEM-EDS scan of an Ag / Al / Cu sample: Ag Lα is high where Al Kα is low."""
    from napari_deepcube.core import io

    path = shared_data / "eds_bruker_sem" / "bruker_sem_eds_50x50_AgAlCu.npz"
    if not path.is_file():
        pytest.skip(f"{path.name} is absent")
    cube = io.read_cube(path)
    lines = parse_lines("Ag La, Al Ka")
    windows = [line_window(cube.axis, line, present=["Ag", "Al", "Cu"]) for line in lines]
    silver, aluminium = compute_maps(cube.data, windows)
    assert _correlation(silver, aluminium) < -0.8
    assert np.median(aluminium) > 100 and np.percentile(silver, 90) > 40
