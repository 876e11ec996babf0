import numpy as np
import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.preprocess import (
    Preprocessor,
    continuum,
    detect_kind,
    fit_and_transform,
    noise_sigma,
)
from napari_deepcube.core.preprocess_config import PreprocessConfig
from napari_deepcube.core.threads import MIN_PART


def test_kind_detection():
    assert detect_kind(np.array([[0.0, 3.0, 7.0]])) == "counts"
    assert detect_kind(np.array([[0.5, 3.0, 7.0]])) == "reflectance"
    assert detect_kind(np.array([[-1.0, 3.0, 7.0]])) == "flux"


@pytest.mark.parametrize(("value", "kind"), [(-1.0, "flux"), (0.5, "reflectance"), (2.0, "counts")])
def test_one_value_anywhere_in_a_large_sample_decides_its_kind(value, kind, rng):
    spectra = rng.poisson(3.0, size=(3000, 64)).astype(np.float32)
    spectra[-1, -1] = value  # in the last rows, far from the first checked
    assert detect_kind(spectra) == kind


def test_count_binning_keeps_every_count(rng):
    spectra = rng.poisson(3.0, size=(50, 1000)).astype(np.float32)
    prep = fit_and_transform(PreprocessConfig(max_features=64), spectra, spectra)[0]
    features = prep.transform(spectra)
    assert prep.kind == "counts" and prep.likelihood == "multinomial"
    assert features.shape == (50, 64)
    np.testing.assert_allclose(features.sum(axis=1), spectra.sum(axis=1))


def test_continuum_follows_a_smooth_baseline_not_a_line():
    channels = np.arange(512)
    baseline = 5.0 + 0.01 * channels
    spectrum = baseline + 50.0 * np.exp(-0.5 * ((channels - 200) / 1.5) ** 2)
    fitted = continuum(spectrum[None, :].astype(np.float64))[0]
    assert np.max(np.abs(fitted - baseline)[20:-20]) < 0.2


@pytest.mark.parametrize("n_channels", [32, 33])
def test_continuum_of_one_block_is_each_spectrum_median(n_channels, rng):
    """An even and an odd number of values per block: the median numpy gives, exactly."""
    spectra = rng.normal(size=(200, n_channels))
    expected = np.repeat(np.median(spectra, axis=1)[:, None], n_channels, axis=1)
    np.testing.assert_array_equal(continuum(spectra), expected)


def test_noise_level_from_neighbouring_pixels(rng):
    sigma = np.linspace(0.5, 3.0, 40)
    signal = rng.uniform(0, 100, size=(4000, 1)) * np.sin(np.arange(40))[None, :]
    left = signal + rng.normal(size=signal.shape) * sigma
    right = signal + rng.normal(size=signal.shape) * sigma
    np.testing.assert_allclose(noise_sigma(left, right), sigma, rtol=0.1)


def test_noise_level_of_many_channels_and_of_sparse_ones(rng):
    """Channels past the first block keep their own level; a channel of rare counts gets its plain spread."""
    sigma = np.linspace(0.5, 3.0, 300)
    left = rng.normal(size=(4000, 300)) * sigma
    right = rng.normal(size=(4000, 300)) * sigma
    # Counts at a rate of 0.05: the median difference and its median deviation are 0.
    left[:, 7], right[:, 7] = rng.poisson(0.05, size=(2, 4000))
    expected = sigma.copy()
    expected[7] = (left[:, 7] - right[:, 7]).std() / np.sqrt(2.0)
    np.testing.assert_allclose(noise_sigma(left, right), expected, rtol=0.1)


def test_flux_features_keep_the_line_channels_and_whiten(rng):
    n, n_channels = 3000, 800
    lines = np.zeros(n_channels)
    lines[[100, 101, 400, 650]] = [5.0, 3.0, 8.0, 4.0]
    amplitude = rng.uniform(0.5, 2.0, size=(n, 1))
    clean = amplitude * lines + 10.0 + 0.002 * np.arange(n_channels)
    spectra = clean + rng.normal(size=(n, n_channels))
    neighbours = clean + rng.normal(size=(n, n_channels))
    prep = fit_and_transform(PreprocessConfig(kind="flux", max_features=16), spectra, neighbours)[0]
    assert prep.kind == "flux" and prep.likelihood == "gaussian"
    kept = set(prep.feature_channels().tolist())
    assert {100, 400, 650} <= kept
    noise_only = prep.transform(rng.normal(size=(2000, n_channels)) + 10.0)
    assert 0.8 < noise_only.std() < 1.25


def test_paper_transform_divides_log_by_max(rng):
    spectra = rng.poisson(20.0, size=(10, 300)).astype(np.float32)
    prep = fit_and_transform(PreprocessConfig(transform="paper"), spectra, spectra)[0]
    features = prep.transform(spectra)
    np.testing.assert_allclose(features.max(axis=1), 1.0, rtol=1e-6)


def test_state_round_trip_gives_the_same_features(rng):
    spectra = rng.normal(size=(500, 300)).astype(np.float32) + 5
    prep = fit_and_transform(PreprocessConfig(), spectra, spectra[::-1])[0]
    again = Preprocessor.from_state(prep.state())
    np.testing.assert_array_equal(again.transform(spectra), prep.transform(spectra))


def test_other_channel_count_is_refused(rng):
    spectra = rng.poisson(3.0, size=(10, 100)).astype(np.float32)
    prep = fit_and_transform(PreprocessConfig(), spectra, spectra)[0]
    with pytest.raises(InputError, match="100 channels"):
        prep.transform(np.ones((2, 90), np.float32))


def test_bad_settings_are_refused():
    with pytest.raises(InputError, match="data kind"):
        PreprocessConfig(kind="photons")


def test_integers_are_counts_only_when_their_noise_is_poisson(rng):
    expected = rng.uniform(5.0, 50.0, size=(1, 120))
    counts, neighbours = rng.poisson(expected, size=(2, 400, 120)).astype(np.float32)
    assert detect_kind(counts, neighbours) == "counts"
    # Reflectance stored as integers (x 10 000): neighbours differ by far more than Poisson noise.
    reflectance = np.round(10_000 * rng.uniform(0.05, 0.6, size=(2, 400, 1)) * np.linspace(0.5, 1.0, 120))
    assert detect_kind(reflectance[0], reflectance[1]) == "reflectance"
    assert detect_kind(np.array([[0.25, 0.5]]), np.array([[0.3, 0.5]])) == "reflectance"


def test_reflectance_keeps_its_continuum_and_has_no_shared_noise(rng):
    n, n_channels = 2000, 150
    ramp, dip = np.linspace(0.2, 0.8, n_channels), np.linspace(0.6, 0.3, n_channels)
    truth = rng.integers(0, 2, n)
    shapes = np.where(truth[:, None] == 0, ramp, dip) * rng.uniform(0.5, 1.5, size=(n, 1))
    spectra = (shapes + 0.01 * rng.normal(size=(n, n_channels))).astype(np.float32)
    neighbours = (shapes + 0.01 * rng.normal(size=(n, n_channels))).astype(np.float32)
    prep = fit_and_transform(PreprocessConfig(), spectra, neighbours)[0]
    assert prep.kind == "reflectance" and prep.likelihood == "gaussian" and prep.shared_noise is None
    features = prep.transform(spectra)
    # The broad shapes survive: the two classes' mean features point in clearly different directions.
    means = np.stack([features[truth == c].mean(axis=0) for c in (0, 1)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    assert means[0] @ means[1] < 0.95
    flux = fit_and_transform(PreprocessConfig(kind="flux"), spectra, neighbours)[0].transform(spectra)
    flux_means = np.stack([flux[truth == c].mean(axis=0) for c in (0, 1)])
    assert np.abs(flux_means).max() < 0.2 * np.abs(features).mean()


@pytest.mark.parametrize("kind", ["counts", "flux", "reflectance"])
@pytest.mark.parametrize("with_variances", [False, True])
def test_the_features_made_while_fitting_are_those_of_the_transform(kind, with_variances, rng):
    # Lines of three shapes at varying brightness over a continuum, noisier in half of the pixels.
    channels = np.arange(600)
    shapes = np.stack([np.exp(-0.5 * ((channels - centre) / 2.0) ** 2) for centre in (100, 300, 450)])
    brightness = rng.gamma(2.0, 20.0, size=(500, 1)) * shapes[rng.integers(0, 3, 500)]
    spectra = rng.poisson(5.0 + brightness).astype(np.float32)
    neighbours = rng.poisson(5.0 + brightness).astype(np.float32)
    variances = None
    if with_variances:
        variances = np.where(np.arange(500)[:, None] < 250, 1.0, 4.0) * (5.0 + brightness)
        spectra = spectra + rng.normal(0.0, np.sqrt(variances) / 2).astype(np.float32)
        variances = variances.astype(np.float32)
    config = PreprocessConfig(kind=kind, max_features=64)
    selection = np.arange(20, 580)
    arguments = {"seed": 1, "channels": selection, "variances": variances, "neighbour_variances": variances}
    fitted, features = fit_and_transform(config, spectra, neighbours, **arguments)
    if kind == "flux":  # so that the features made while fitting have the shared noise projected out
        assert fitted.shared_noise is not None and fitted.shared_noise.rank > 0
    np.testing.assert_array_equal(features, fitted.transform(spectra, variances))
    assert features.dtype == np.float32 and features.shape == (500, fitted.n_features)


@pytest.mark.parametrize(("kind", "with_variances"), [("counts", False), ("flux", False), ("flux", True)])
def test_a_sample_shared_among_threads_gives_the_transform_of_one(kind, with_variances, rng):
    # Enough pixels for three threads to get a block of rows each (threads.MIN_PART), enough
    # channels for flux bins to be shared out too (more than MAX_FLUX_BINS), and a bad voxel.
    n = 3 * MIN_PART + 7
    channels = np.arange(1100)
    line = 30.0 * np.exp(-0.5 * ((channels - 420) / 2.0) ** 2)
    spectra = rng.poisson(5.0 + rng.gamma(2.0, 1.0, (n, 1)) * line).astype(np.float32)
    neighbours = rng.poisson(5.0 + rng.gamma(2.0, 1.0, (n, 1)) * line).astype(np.float32)
    variances = None
    if with_variances:
        variances = (5.0 + line * np.where(np.arange(n)[:, None] % 2, 1.0, 3.0)).astype(np.float32)
        variances[5, 7] = np.nan
    arguments = {"seed": 1, "variances": variances, "neighbour_variances": variances}
    config = PreprocessConfig(kind=kind, max_features=64)
    alone, alone_features = fit_and_transform(config, spectra, neighbours, **arguments)
    shared, shared_features = fit_and_transform(config, spectra, neighbours, threads=3, **arguments)
    np.testing.assert_array_equal(shared_features, alone_features)
    for name, value in alone.state().items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(shared.state()[name], value, err_msg=name)
        else:
            assert shared.state()[name] == value, name
    np.testing.assert_array_equal(alone.transform(spectra, variances, threads=3), alone_features)


def test_variances_for_other_spectra_are_refused(rng):
    spectra = rng.normal(0.0, 1.0, (40, 64)).astype(np.float32)
    preprocessor = fit_and_transform(PreprocessConfig(kind="flux"), spectra, spectra[::-1])[0]
    with pytest.raises(ValueError, match="40 spectra but 41 rows of variances"):
        preprocessor.transform(spectra, np.ones((41, 64), dtype=np.float32))
