"""Every pixel's spectrum moved to one rest frame: velocities measured, spectra moved, runs that use them."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.pipeline import segment
from napari_deepcube.core.rest_frame import (
    MIN_DETECTION,
    _gain,
    feature_bin_velocity,
    fit_rest_frame,
    in_rest_frame,
    needed_rest_frame,
    velocity_map,
)
from rotating_disk import WAVELENGTHS, rotating_disk


def _disk(
    seed: int, faint_share: float = 1.0, sky: bool = True, speed: float = 200.0
) -> tuple[Datacube, np.ndarray, np.ndarray]:
    """:func:`rotating_disk` as a cube: the cube, its true classes and velocities."""
    data, variance, labels, velocity = rotating_disk(seed, faint_share, sky, speed)
    cube = Datacube.from_array(data, spectral_values=WAVELENGTHS, spectral_unit="Angstrom", variance=variance)
    return cube, labels, velocity


def test_every_pixel_with_lines_gets_its_velocity_and_the_sky_none():
    cube, labels, truth = _disk(0)
    frame = fit_rest_frame(cube, seed=0)
    measured = velocity_map(cube, frame)
    gas = labels > 1
    # Sky beyond the reach of the largest box of neighbours (7 rows) shows no line at all.
    assert np.isnan(measured[: 10 - 8]).all()
    # The frame is the bright gas's median velocity: compared up to that offset.
    offset = np.median(measured[gas] - truth[gas])
    error = np.abs(measured[gas] - truth[gas] - offset)
    assert np.isfinite(error).all()
    # The grid's 10 km/s, the noise, and one template for two kinds of gas: within half of the
    # 57 km/s of a channel at Hα, the step by which spectra move.
    assert np.percentile(error, 95) <= 28.0


def test_a_pixel_too_faint_for_its_own_velocity_takes_its_neighbours():
    cube, labels, truth = _disk(1, faint_share=1 / 3)
    frame = fit_rest_frame(cube, seed=0)
    gas = labels > 1
    terms = frame.fit_terms(cube.spectra(*np.nonzero(labels == 3)), None)
    faint = _gain(*terms).max(axis=0) < MIN_DETECTION
    assert faint.mean() > 0.5  # most pixels of the faint gas cannot fix a velocity alone
    measured = velocity_map(cube, frame)
    error = measured - truth
    error -= np.median(error[labels == 2])
    assert np.isfinite(measured[gas]).all()
    # Boxes of 3 x 3 or 7 x 7 pixels, across a disk whose velocity changes fastest by 40 km/s a pixel.
    assert np.percentile(np.abs(error[labels == 3][faint]), 90) <= 40.0


def test_moved_spectra_put_the_lines_at_rest_between_channels():
    cube, labels, truth = _disk(2)
    rows, cols = np.nonzero(labels == 2)
    moved = in_rest_frame(cube, fit_rest_frame(cube, seed=0), truth.astype(np.float32))
    assert not moved.is_lazy  # still a cube in memory: its maps stay in memory too
    original, at_rest = cube.spectra(rows, cols), moved.spectra(rows, cols)
    halpha = np.abs(WAVELENGTHS - 6562.8).argmin()
    window = slice(halpha - 6, halpha + 7)

    def centre_and_width(spectra: np.ndarray) -> tuple[float, float]:
        """Centroid (Å from Hα) and spread of the pixels' mean Hα profile."""
        profile = spectra[:, window].mean(axis=0)
        offsets = WAVELENGTHS[window] - 6562.8
        centre = (profile * offsets).sum() / profile.sum()
        return centre, np.sqrt((profile * (offsets - centre) ** 2).sum() / profile.sum())

    # The gas's mean line: smeared over ±4.4 Å (200 km/s) as observed, a line of σ = 1.2 Å at rest.
    _, observed_width = centre_and_width(original)
    rest_centre, rest_width = centre_and_width(at_rest)
    assert observed_width > 2.0
    assert abs(rest_centre) < 0.2 and rest_width < 1.4
    assert moved.variances(rows, cols) is not None


def test_moved_variances_give_the_noise_of_the_feature_bins():
    from napari_deepcube.core.preprocess import MAX_FLUX_BINS, bin_edges

    cube, _, truth = _disk(6)
    rng = np.random.default_rng(6)
    noise = rng.standard_normal(np.asarray(cube.data).shape).astype(np.float32)
    pure = Datacube.from_array(
        noise, spectral_values=WAVELENGTHS, spectral_unit="Å", variance=np.ones_like(noise)
    )
    moved = in_rest_frame(pure, fit_rest_frame(cube, seed=0), truth.astype(np.float32))
    fast = np.nonzero(np.abs(truth) > 100)  # pixels between channels over much of the spectrum
    starts = bin_edges(WAVELENGTHS.size, MAX_FLUX_BINS)
    # Interpolated, a channel keeps down to half its noise, but a bin of 3.6 channels keeps nearly all of it:
    # the variances moved with it say how much, bin by bin.
    spectra = moved.spectra(*fast)
    measured = np.add.reduceat(spectra, starts, axis=1) ** 2
    declared = np.add.reduceat(moved.variances(*fast), starts, axis=1)
    whole = np.isfinite(declared)  # bins none of whose channels moved off the spectrum
    assert abs(measured[whole].sum() / declared[whole].sum() - 1) < 0.02
    # The smoothing itself, which variances moved as values would hide.
    assert np.mean(spectra[:, 100:-100] ** 2) < 0.85


def test_what_moves_off_the_spectrum_or_had_no_known_noise_is_not_measured():
    cube, _, _ = _disk(7)
    variance = np.ones(np.asarray(cube.data).shape, dtype=np.float32)
    variance[:, :, 2000] = 0.0  # a voxel of unknown noise, as a pipeline marks one
    marked = Datacube.from_array(
        np.asarray(cube.data), spectral_values=WAVELENGTHS, spectral_unit="Å", variance=variance
    )
    receding = np.full(cube.image_shape, 300.0, dtype=np.float32)
    moved = in_rest_frame(marked, fit_rest_frame(cube, seed=0), receding)
    pixel = (np.array([5]), np.array([5]))
    spectra, variances = moved.spectra(*pixel), moved.variances(*pixel)
    # 300 km/s at 9350 Å is 9.4 Å, 7.5 channels: the last 7 rest channels were never observed.
    assert np.all(spectra[0, -7:] == 0) and np.all(spectra[0, :-8] != 0)
    assert np.isnan(variances[0, -7:]).all()
    unknown = np.flatnonzero(np.isnan(variances[0, :-8]))
    assert unknown.size == 2 and np.all(np.abs(unknown - 2000) <= 6)  # the two rest channels it fed


def test_pixels_of_unknown_velocity_are_left_as_they_are():
    cube, labels, _ = _disk(5)
    unknown = np.full(labels.shape, np.nan, dtype=np.float32)
    moved = in_rest_frame(cube, fit_rest_frame(cube, seed=0), unknown)
    pixels = np.nonzero(labels > 0)
    np.testing.assert_array_equal(moved.spectra(*pixels), cube.spectra(*pixels))


def _ari(result, labels) -> float:
    return adjusted_rand_score(labels.ravel(), result.labels.ravel())


def test_a_rotating_disk_is_segmented_by_its_gas_in_the_rest_frame():
    cube, labels, _ = _disk(3, sky=False)
    settings = {"epochs": 6, "n_train": 600, "k_min": 2, "k_max": 6, "seed": 0, "preview_every": 0}
    observed = segment(cube, SegmentConfig(rest_frame=False, **settings))
    at_rest = segment(cube, SegmentConfig(rest_frame=True, **settings))
    # Observed, the clusters follow the disk's two sides, 400 km/s apart, more than the gas.
    assert _ari(observed, labels) < 0.5
    assert at_rest.k == 2 and _ari(at_rest, labels) > 0.99
    assert at_rest.velocities is not None and observed.velocities is None
    report = at_rest.report()["velocities"]
    assert report["unit"] == "km/s" and report["measured_fraction"] == 1.0
    assert report["percentile_95"] - report["percentile_5"] > 300  # the disk's spread, ±200 km/s
    assert observed.report()["velocities"] is None
    # Measuring the velocities is a stage of its own, in a run at rest only.
    assert at_rest.timings["rest frame"] > 0 and "rest frame" not in observed.timings


def test_left_to_decide_a_run_moves_a_fast_disk_and_leaves_a_slow_one_as_observed():
    settings = {"epochs": 6, "n_train": 600, "k_min": 2, "k_max": 6, "seed": 0, "preview_every": 0}
    fast, _, _ = _disk(3, sky=False)
    at_rest = segment(fast, SegmentConfig(rest_frame=True, **settings))
    chosen = segment(fast, SegmentConfig(**settings))  # rest_frame=None: the run decides
    assert "more than one feature bin" in chosen.frame_reason
    np.testing.assert_array_equal(chosen.labels, at_rest.labels)
    assert chosen.model.config.rest_frame is True
    assert chosen.report()["rest_frame"] == {"moved": True, "reason": chosen.frame_reason}
    # ±30 km/s moves the lines by well under a MUSE feature bin (190 km/s): nothing to gain from moving.
    slow, labels, _ = _disk(3, sky=False, speed=30.0)
    frame, reason = needed_rest_frame(slow, seed=0)
    assert frame is None and "within one feature bin (191 km/s)" in reason
    kept = segment(slow, SegmentConfig(**settings))
    assert kept.velocities is None and kept.model.rest_frame is None and kept.frame_reason == reason
    assert reason.startswith("kept as observed") and not kept.report()["rest_frame"]["moved"]
    assert _ari(kept, labels) > 0.99
    # Told, a run does as it is told, and says nothing about it.
    assert segment(fast, SegmentConfig(rest_frame=False, **settings)).frame_reason == ""


def test_the_width_of_a_feature_bin_is_a_velocity():
    # MUSE: 3681 channels of 1.25 Å in 1024 bins of 3.6 channels, 4.5 Å at 7050 Å.
    muse_bin = 3681 / 1024 * 1.25 / 7050 * 299_792.458
    assert feature_bin_velocity(WAVELENGTHS) == pytest.approx(muse_bin, rel=0.01)
    # Fewer channels than bins: a bin is a channel.
    assert feature_bin_velocity(WAVELENGTHS[:500]) == pytest.approx(1.25 / 5062 * 299_792.458, rel=0.01)


def _halpha_width(spectrum: np.ndarray) -> float:
    """The spread (Å) of a spectrum's Hα line, within 7.5 Å of its rest wavelength."""
    window = np.abs(WAVELENGTHS - 6562.8) <= 7.5
    profile, offsets = spectrum[window], WAVELENGTHS[window] - 6562.8
    centre = (profile * offsets).sum() / profile.sum()
    return float(np.sqrt((profile * (offsets - centre) ** 2).sum() / profile.sum()))


def test_clusters_picked_again_or_split_by_hand_stay_in_the_run_s_rest_frame():
    from napari_deepcube.core.editing import split
    from napari_deepcube.core.pipeline import recluster

    cube, _, _ = _disk(3, sky=False)
    settings = {"epochs": 6, "n_train": 600, "k_min": 2, "k_max": 6, "seed": 0, "preview_every": 0}
    at_rest = segment(cube, SegmentConfig(rest_frame=True, **settings))
    observed = segment(cube, SegmentConfig(k=2, rest_frame=False, **settings))
    # A gas's mean line: σ = 1.2 Å at rest, smeared over the disk's ±4.4 Å as observed.
    assert min(_halpha_width(mean) for mean in observed.mean_spectra) > 1.7
    for result in (recluster(at_rest, cube, 2), split(at_rest, 1, 2, cube, method="likelihood")):
        assert result.velocities is not None and result.model.rest_frame is not None
        assert result.frame_reason == at_rest.frame_reason == "moved to a rest frame, as asked"
        assert max(_halpha_width(mean) for mean in result.mean_spectra) < 1.5


def test_a_model_moves_another_cube_to_its_own_rest_frame(tmp_path):
    from napari_deepcube.core.checkpoint import load_model, save_model

    cube, _, _ = _disk(3, sky=False)
    settings = {"epochs": 6, "n_train": 600, "k_min": 2, "k_max": 6, "seed": 0, "preview_every": 0}
    fitted = segment(cube, SegmentConfig(rest_frame=True, **settings))
    model = load_model(save_model(tmp_path / "disk.pt", fitted.model))
    assert model.rest_frame is not None
    np.testing.assert_array_equal(model.rest_frame.template, fitted.model.rest_frame.template)
    other, other_labels, _ = _disk(6, sky=False)
    applied = segment(other, SegmentConfig(preview_every=0), model=model)
    assert applied.velocities is not None and applied.timings["rest frame"] > 0
    assert _ari(applied, other_labels) > 0.99


def test_a_cube_without_a_wavelength_axis_cannot_be_moved_in_velocity():
    cube, _, _ = _disk(4)
    energies = np.linspace(1, 20, WAVELENGTHS.size)
    in_kev = Datacube.from_array(np.asarray(cube.data), spectral_values=energies, spectral_unit="keV")
    with pytest.raises(InputError, match="wavelength axis"):
        segment(in_kev, SegmentConfig(rest_frame=True, epochs=1, n_train=200, k=2, preview_every=0))


def test_a_cube_without_emission_lines_is_not_moved_in_velocity():
    rng = np.random.default_rng(0)
    wavelengths = np.linspace(400.0, 2500.0, 200)  # nm: an airborne scene's reflectance
    reflectance = 0.3 + 0.1 * np.sin(wavelengths / 300.0) + 0.01 * rng.random((12, 12, wavelengths.size))
    cube = Datacube.from_array(reflectance, spectral_values=wavelengths, spectral_unit="nm")
    with pytest.raises(InputError, match="read as reflectance"):
        segment(cube, SegmentConfig(rest_frame=True, epochs=1, n_train=100, k=2, preview_every=0))
    # Left to decide, the run reads it as it is.
    left = segment(cube, SegmentConfig(epochs=1, n_train=100, k=2, preview_every=0))
    assert left.velocities is None and left.frame_reason == ""  # the question does not arise
    # Refused from the frame's own sample, before any velocity is measured; a kind given is believed.
    with pytest.raises(InputError, match="read as reflectance"):
        fit_rest_frame(cube, seed=0)
    lines, _, _ = _disk(8)
    with pytest.raises(InputError, match="read as counts"):
        fit_rest_frame(lines, seed=0, kind="counts")
    assert fit_rest_frame(lines, seed=0, kind="flux").template.any()


def test_wavelengths_that_decrease_are_refused():
    cube, _, _ = _disk(8)
    reversed_axis = Datacube.from_array(
        np.asarray(cube.data)[..., ::-1], spectral_values=WAVELENGTHS[::-1], spectral_unit="Å"
    )
    with pytest.raises(InputError, match="increase"):
        fit_rest_frame(reversed_axis, seed=0)


def test_a_cube_of_unsigned_integers_is_left_as_observed_without_a_read(tmp_path):
    from napari_deepcube.core.io import read_cube, write_cube

    wavelengths = np.linspace(400.0, 2500.0, 50)
    counts = np.random.default_rng(0).integers(0, 1000, (12, 12, wavelengths.size)).astype(np.uint16)
    scene = Datacube.from_array(counts, spectral_values=wavelengths, spectral_unit="nm")
    write_cube(tmp_path / "scene.zarr", scene)
    cube = read_cube(tmp_path / "scene.zarr", lazy=True)
    for chunk in (tmp_path / "scene.zarr").rglob("*"):
        if chunk.is_file() and chunk.name != "zarr.json":
            chunk.write_bytes(b"damaged")
    # No line fluxes can be unsigned: decided from the type alone, so the damaged chunks are never read.
    assert needed_rest_frame(cube, seed=0) == (None, "")
    with pytest.raises(InputError):
        cube.spectra(np.array([0]), np.array([0]))
