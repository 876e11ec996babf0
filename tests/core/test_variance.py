"""Flux features whitened by each pixel's own noise, from the per-voxel variances of a FITS STAT."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.core.checkpoint import load_model, save_model
from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.io import read_cube
from napari_deepcube.core.pipeline import gather_features, segment
from napari_deepcube.core.preprocess import fit_and_transform
from napari_deepcube.core.preprocess_config import PreprocessConfig
from napari_deepcube.core.robust import MAD_TO_SIGMA
from napari_deepcube.core.variance import (
    MIN_NOISE_SHARE,
    MIN_SCALE_PAIRS,
    BinnedVariance,
    bin_variances,
    variance_scale,
)

pytest.importorskip("astropy.io.fits")


def _ari(truth: np.ndarray, labels: np.ndarray) -> float:
    return float(adjusted_rand_score(truth.ravel(), labels.ravel()))


def test_the_stat_variances_recover_the_classes_that_one_noise_per_channel_loses(
    heteroscedastic_fits: tuple[Path, np.ndarray], variance_run: dict[str, int]
) -> None:
    path, truth = heteroscedastic_fits
    cube = read_cube(path)
    assert cube.metadata["variance_hdu"] == "STAT" and cube.variance is not None
    with_stat = segment(cube, SegmentConfig(preview_every=0, **variance_run))
    without = segment(cube, SegmentConfig(preview_every=0, variance=False, **variance_run))
    # One noise level per channel is the quiet half's in the noisy half's eyes: its noise makes
    # clusters of their own. Each pixel's own noise leaves the three classes.
    assert with_stat.noise is not None and with_stat.noise.source == "variance"
    assert without.noise is not None and without.noise.source == "channel"
    assert "switched off" in without.noise.description
    assert with_stat.k == 3 and _ari(truth, with_stat.labels) > 0.8
    assert _ari(truth, with_stat.labels) - _ari(truth, without.labels) > 0.2
    assert with_stat.model.preprocessor.uses_variance and not without.model.preprocessor.uses_variance
    # The variances were right, so the level set from neighbouring pixels leaves them near as they are.
    assert with_stat.model.preprocessor.variance_scale == pytest.approx(1.0, abs=0.1)


def test_the_lazy_and_the_in_memory_cube_give_the_same_features(
    heteroscedastic_fits: tuple[Path, np.ndarray], variance_run: dict[str, int]
) -> None:
    path, _ = heteroscedastic_fits
    lazy, eager = read_cube(path, lazy=True), read_cube(path, lazy=False)
    assert lazy.is_lazy and not eager.is_lazy and not isinstance(lazy.variance, np.ndarray)
    rows, cols = np.array([3, 40, 3, 17]), np.array([30, 2, 5, 47])
    np.testing.assert_array_equal(lazy.variances(rows, cols), eager.variances(rows, cols))
    np.testing.assert_array_equal(lazy.variance_rows(slice(5, 9)), eager.variance_rows(slice(5, 9)))
    fitted = segment(eager, SegmentConfig(preview_every=0, **{**variance_run, "epochs": 1, "k": 3}))
    preprocessor = fitted.model.preprocessor
    every = np.flatnonzero(eager.mask.ravel())
    from_eager = gather_features(eager, every, preprocessor)
    np.testing.assert_array_equal(gather_features(lazy, every, preprocessor), from_eager)
    # The features are those of each pixel's own noise, not of the channel's.
    assert not np.allclose(gather_features(eager.without_variance(), every, preprocessor), from_eager)
    # And the pass over every pixel, block by block, agrees with them too.
    on_lazy = segment(lazy, SegmentConfig(preview_every=0), model=fitted.model)
    np.testing.assert_array_equal(on_lazy.labels, fitted.labels)


def _flux_sample(n: int = 400, n_channels: int = 64, seed: int = 3) -> tuple[np.ndarray, ...]:
    """Spectra and neighbours of one emission line with unit noise, and their unit variances."""
    rng = np.random.default_rng(seed)
    line = 20.0 * np.exp(-0.5 * ((np.arange(n_channels) - 30) / 1.5) ** 2)
    spectra = line + rng.standard_normal((n, n_channels))
    neighbours = line + rng.standard_normal((n, n_channels))
    return spectra.astype(np.float32), neighbours.astype(np.float32), np.ones((n, n_channels), np.float32)


def test_bad_variances_fall_back_to_the_noise_of_their_channel_at_the_pixels_level() -> None:
    spectra, neighbours, variances = _flux_sample()
    config = PreprocessConfig(kind="reflectance", max_features=64)
    preprocessor = fit_and_transform(
        config, spectra, neighbours, variances=variances, neighbour_variances=variances
    )[0]
    assert preprocessor.uses_variance and preprocessor.n_features == 64  # one channel per bin
    sigma, scale = preprocessor.sigma, preprocessor.variance_scale
    assert sigma is not None and scale is not None
    # Pixel 0: a variance of 0, NaN, +inf and a negative one where the data are finite, in a
    # pixel a quarter as noisy as the others; pixel 1: a flagged voxel (data NaN) whose variance
    # is NaN too; pixel 2: a variance near 0; pixel 3: no usable variance at all.
    data, stat = spectra[:4].copy(), variances[:4].copy()
    stat[0] = 1 / 16
    stat[0, [5, 6, 7, 8]] = [0.0, np.nan, np.inf, -1.0]
    data[1, 9], stat[1, 9] = np.nan, np.nan
    stat[2, 10] = 1e-30
    stat[3] = np.nan
    with np.errstate(all="raise"):  # no division by zero, no overflow
        features = preprocessor.transform(data, stat)
    assert np.isfinite(features).all()
    signal = np.where(np.isfinite(data), data, 0.0)
    bad = [5, 6, 7, 8]
    known = np.setdiff1d(np.arange(64), bad)
    # The channel's noise, at the level of the pixel's known bins: a quarter of it here.
    level = np.median(0.25 * scale / sigma[known])
    np.testing.assert_allclose(features[0, bad], signal[0, bad] / (level * sigma[bad]), rtol=1e-5)
    np.testing.assert_allclose(features[0, known], 4.0 * signal[0, known] / scale, rtol=1e-5)
    # A flagged voxel is read as 0 and has no noise: its bin (one channel) falls back as well.
    np.testing.assert_allclose(features[1, 9], 0.0)
    np.testing.assert_allclose(features[1, 11], signal[1, 11] / scale, rtol=1e-5)
    np.testing.assert_allclose(features[2, 10], signal[2, 10] / (MIN_NOISE_SHARE * sigma[10]), rtol=1e-5)
    np.testing.assert_allclose(features[3], signal[3] / sigma, rtol=1e-5)


def test_a_bin_of_several_channels_has_the_variance_of_their_mean() -> None:
    variances = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], dtype=np.float32)
    finite = np.ones(variances.shape, dtype=bool)
    binned = bin_variances(variances, finite, np.array([0, 2, 5]))
    np.testing.assert_allclose(binned.values, [[3 / 4, 12 / 9, 6.0]])
    assert binned.known.all()
    finite[0, 0] = False  # flagged: read as 0 without noise, the bin keeps the other's variance
    variances[0, 3] = np.nan  # unknown where the data are finite: the bin's noise is unknown
    binned = bin_variances(variances, finite, np.array([0, 2, 5]))
    np.testing.assert_allclose(binned.values, [[2 / 4, 0.0, 6.0]])
    np.testing.assert_array_equal(binned.known, [[True, False, True]])


@pytest.mark.parametrize("unknown_share", [0.0, 0.1])
def test_the_variances_level_is_the_median_of_every_usable_bins_spread(unknown_share: float) -> None:
    # 300 bins: laid out in several blocks; with unknown variances, a few bins keep too few pairs.
    rng = np.random.default_rng(3)
    n, n_bins = 400, 300
    variances = rng.uniform(0.5, 2.0, (n, n_bins)).astype(np.float32)
    neighbour_variances = rng.uniform(0.5, 2.0, (n, n_bins)).astype(np.float32)
    # The variances understate the noise by a factor that grows across the bins: a bin
    # counted twice or left out moves the median.
    understated = np.linspace(1.0, 2.0, n_bins)
    signal = rng.normal(0.0, understated * np.sqrt(variances))
    neighbours = rng.normal(0.0, understated * np.sqrt(neighbour_variances))
    known = rng.random((n, n_bins)) >= unknown_share
    if unknown_share:
        known[MIN_SCALE_PAIRS - 1 :, :5] = False
    binned = BinnedVariance(np.where(known, variances, 0), known)
    neighbour_binned = BinnedVariance(neighbour_variances, np.ones_like(known))
    spreads = []
    for column in range(n_bins):
        rows = known[:, column]
        if rows.sum() < MIN_SCALE_PAIRS:
            continue
        total = variances[rows, column] + neighbour_variances[rows, column]
        normalised = (signal[rows, column] - neighbours[rows, column]) / np.sqrt(total)
        spreads.append(MAD_TO_SIGMA * np.median(np.abs(normalised - np.median(normalised))))
    assert len(spreads) == n_bins - (5 if unknown_share else 0)
    scale = variance_scale(signal, neighbours, binned, neighbour_binned)
    assert scale == pytest.approx(float(np.median(spreads)), rel=1e-12)
    assert scale == pytest.approx(1.5, rel=0.05)


def test_a_wrongly_scaled_stat_is_set_to_the_level_of_neighbouring_pixels() -> None:
    spectra, neighbours, variances = _flux_sample(n=2000)
    config = PreprocessConfig(kind="reflectance", max_features=64)
    right = fit_and_transform(
        config, spectra, neighbours, variances=variances, neighbour_variances=variances
    )[0]
    low = fit_and_transform(
        config, spectra, neighbours, variances=variances / 4, neighbour_variances=variances / 4
    )[0]
    assert low.variance_scale == pytest.approx(2.0 * right.variance_scale, rel=1e-5)
    np.testing.assert_allclose(
        low.transform(spectra, variances / 4), right.transform(spectra, variances), rtol=1e-5
    )


def test_variances_are_bad_input_unless_they_fit_the_cube() -> None:
    data = np.ones((4, 5, 6), dtype=np.float32)
    with pytest.raises(Exception, match=r"variances have shape \(4, 5\)"):
        Datacube.from_array(data, variance=np.ones((4, 5)))
    with pytest.raises(Exception, match="not numbers"):
        Datacube.from_array(data, variance=np.full(data.shape, "x"))
    # Stored (C, H, W) like the cube, they follow its spectral axis to the end.
    cube = Datacube.from_array(np.moveaxis(data, -1, 0), spectral_axis=0, variance=np.zeros((6, 4, 5)))
    assert cube.variance.shape == (4, 5, 6)


def test_a_model_fitted_with_variances_says_so_in_its_file_and_on_a_cube_without_them(
    heteroscedastic_fits: tuple[Path, np.ndarray], variance_run: dict[str, int], tmp_path: Path
) -> None:
    path, _ = heteroscedastic_fits
    cube = read_cube(path)
    fitted = segment(cube, SegmentConfig(preview_every=0, **{**variance_run, "epochs": 1, "k": 3}))
    saved = load_model(save_model(tmp_path / "model.pt", fitted.model))
    assert saved.preprocessor.variance_scale == fitted.model.preprocessor.variance_scale
    again = segment(cube, SegmentConfig(preview_every=0), model=saved)
    np.testing.assert_array_equal(again.labels, fitted.labels)
    assert again.noise is not None and again.noise.source == "variance"
    bare = segment(cube.without_variance(), SegmentConfig(preview_every=0), model=saved)
    assert bare.noise is not None and bare.noise.source == "channel"
    assert "fitted with per-voxel variances, but this cube has none" in bare.noise.description
    assert bare.report()["noise"] == bare.noise.to_dict()
    # A model fitted without them leaves a cube's variances unused, and says why.
    quick = {**variance_run, "epochs": 1, "k": 3}
    plain = segment(cube, SegmentConfig(preview_every=0, variance=False, **quick))
    reused = segment(cube, SegmentConfig(preview_every=0), model=plain.model)
    assert reused.noise is not None and "fitted without them" in reused.noise.description


def test_photon_counts_leave_the_variances_unused(small_painting) -> None:
    cube = small_painting.cube
    counted = Datacube.from_array(cube.data, variance=np.ones(cube.shape, np.float32))
    result = segment(counted, SegmentConfig(k=3, epochs=1, n_train=500, preview_every=0))
    assert result.noise is not None and result.noise.source == "poisson"
    assert "not used" in result.noise.description and not result.model.preprocessor.uses_variance


def test_a_stat_with_a_damaged_region_still_segments(
    write_heteroscedastic_fits, variance_run: dict[str, int], tmp_path: Path
) -> None:
    def damage(variance: np.ndarray) -> None:
        # One voxel in fifty of no use (0, negative, NaN, inf), and a patch of the noisy half at inf.
        picked = np.random.default_rng(5).random(variance.shape) < 0.02
        variance[picked] = np.resize(np.array([0.0, -1.0, np.nan, np.inf], np.float32), int(picked.sum()))
        variance[20:24, 30:, 50:60] = np.inf

    path = tmp_path / "damaged.fits"
    truth = write_heteroscedastic_fits(path, seed=1, edit_variance=damage)
    cube = read_cube(path)
    result = segment(cube, SegmentConfig(preview_every=0, **variance_run))
    assert result.noise is not None and result.noise.source == "variance"
    every = np.flatnonzero(cube.mask.ravel())
    assert np.isfinite(gather_features(cube, every, result.model.preprocessor)).all()
    # The bins of those voxels take the channel's noise at their pixel's level: a few pixels whose
    # bad voxel hit a line may form a small cluster of their own, the classes stay.
    assert result.k <= 4 and _ari(truth, result.labels) > 0.95
