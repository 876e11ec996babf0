"""Clusters' mean raw spectra moved in velocity, as features (the velocity-copy test's shapes)."""

import numpy as np
import pytest

from napari_deepcube.core.line_shifts import UNCALIBRATED_CHANNELS_PER_REDSHIFT, LineShifter
from napari_deepcube.core.preprocess import fit_and_transform
from napari_deepcube.core.preprocess_config import PreprocessConfig

C_KMS = 299_792.458
#: MUSE's sampling: 1.25 Å channels, here 4750-6749 Å.
WAVELENGTHS = 4750.0 + 1.25 * np.arange(1600)
#: Hβ, [OIII], Hα, [NII] and one set of ratios between them.
LINES = {4861.3: 1.0, 5006.8: 3.0, 6562.8: 2.8, 6583.4: 1.0}
OTHER_RATIOS = {4861.3: 1.0, 5006.8: 0.5, 6562.8: 2.8, 6583.4: 2.5}


def _emission(velocity: float, ratios: dict[float, float] = LINES) -> np.ndarray:
    """Lines of σ = 1.2 Å (narrower than a feature bin) at ``velocity`` km/s, on a flat continuum."""
    spectrum = np.full(WAVELENGTHS.size, 2.0)
    for rest, flux in ratios.items():
        centre = rest * (1 + velocity / C_KMS)
        spectrum += 40.0 * flux * np.exp(-0.5 * ((WAVELENGTHS - centre) / 1.2) ** 2)
    return spectrum


def _pixels(rng, template: np.ndarray, n: int) -> np.ndarray:
    return rng.uniform(0.6, 1.4, (n, 1)) * template + rng.normal(size=(n, template.size))


def _fitted(rng, variances=None):
    """A flux transform fitted to pixels of two velocities (features binned to 256: ~10 Å bins)."""
    clean = np.vstack([_pixels(rng, _emission(0.0), 300), _pixels(rng, _emission(133.0), 300)])
    noisy = [clean + rng.normal(size=clean.shape) for _ in range(2)]
    prep = fit_and_transform(
        PreprocessConfig(kind="flux"), noisy[0], noisy[1], variances=variances, neighbour_variances=variances
    )[0]
    return prep, noisy[0]


def _unit(features: np.ndarray) -> np.ndarray:
    return features / np.linalg.norm(features, axis=-1, keepdims=True)


def _moved(moved, cluster: int, velocity: float) -> np.ndarray:
    """The unit shape of ``cluster`` moved by ``velocity``."""
    return moved.shapes(np.array([cluster]), np.array([[velocity]]))[0, 0]


def _missed(shape: np.ndarray, target: np.ndarray) -> float:
    """Share of ``target``'s energy that ``shape`` leaves unexplained."""
    return 1.0 - float(_unit(shape) @ _unit(target)) ** 2


def _shifter(prep, spectra, wavelengths=WAVELENGTHS, variances=None) -> LineShifter:
    features = prep.transform(spectra, variances)
    return LineShifter(prep, features, spectra.astype(np.float32), variances, wavelengths)


def test_a_cluster_mean_moved_by_a_velocity_is_the_cluster_at_that_velocity(rng):
    prep, _ = _fitted(rng)
    cluster = np.zeros(400, dtype=np.int64)
    moved = _shifter(prep, _pixels(rng, _emission(0.0), 400)).clusters(cluster, 1)
    for velocity in (-170.0, 60.0, 133.0):
        target = prep.transform(_pixels(rng, _emission(velocity), 400)).mean(axis=0)
        shape = _moved(moved, 0, velocity)
        # Each line moves by its own number of Å; the energy left is noise in the clusters' means.
        assert _missed(shape, target) < 0.002
        assert _missed(_moved(moved, 0, 0.0), target) > 0.05
    # The same channel shift for every line (what an axis without wavelengths gives) fits Hα
    # and misses Hβ and [OIII] by 0.7 Å.
    channels = _shifter(prep, _pixels(rng, _emission(0.0), 400), wavelengths=None).clusters(cluster, 1)
    at_halpha = 133.0 * 6562.8 / 1.25 / UNCALIBRATED_CHANNELS_PER_REDSHIFT
    shape = _moved(channels, 0, at_halpha)
    assert _missed(shape, prep.transform(_pixels(rng, _emission(133.0), 400)).mean(axis=0)) > 0.02


def test_a_cluster_at_rest_is_the_mean_of_its_features(rng):
    # Noise lifts a noisy pixel's continuum (a block median) where lines fill part of the
    # block: the transform of the cluster's mean spectrum has no such lift; the shape does.
    channels = np.arange(512)
    lines = sum(np.exp(-0.5 * ((channels - centre) / 3.0) ** 2) for centre in (60.3, 150.1, 157.2, 300.4))
    faint = rng.uniform(1.0, 3.0, (400, 1)) * lines + rng.normal(size=(400, 512))
    prep = fit_and_transform(PreprocessConfig(kind="flux"), faint, faint + rng.normal(size=faint.shape))[0]
    shifter = _shifter(prep, faint, wavelengths=None)
    mean = shifter.features.mean(axis=0)
    assert _missed(prep.transform(faint.mean(axis=0, keepdims=True))[0], mean) > 0.05
    at_rest = _moved(shifter.clusters(np.zeros(400, dtype=np.int64), 1), 0, 0.0)
    assert _missed(at_rest, mean) < 1e-6


def test_the_best_velocity_explains_a_copy_and_not_another_class(rng):
    prep, _ = _fitted(rng)
    kinds = ((0.0, LINES), (133.0, LINES), (0.0, OTHER_RATIOS))
    still, copy, other = (_pixels(rng, _emission(velocity, ratios), 300) for velocity, ratios in kinds)
    shifter = _shifter(prep, np.vstack([still, copy, other]))
    labels = np.repeat(np.arange(3), 300)
    moved, features = shifter.clusters(labels, 3), shifter.features

    def own_energy(cluster: int) -> float:
        members = features[labels == cluster].astype(np.float64)
        top = np.linalg.eigh(members.T @ members)[1][:, -1]
        return float(((members @ top) ** 2).sum())

    energies, others = moved.explained(features, labels, np.array([1, 2]))
    # 133 km/s lies between the coarse velocities: the finer search finds it.
    assert others[0] == 0 and energies[0] > 0.995 * own_energy(1)
    assert energies[1] < 0.8 * own_energy(2)


def test_clusters_are_moved_with_their_own_noise_when_features_are_whitened_by_variances(rng):
    # The first cluster's pixels were observed with a sky line on Hα: noisier there.
    variances = np.ones((600, WAVELENGTHS.size))
    variances[:300, np.abs(WAVELENGTHS - 6565.0) < 6] = 9.0
    prep, spectra = _fitted(rng, variances)
    assert prep.uses_variance
    labels = np.repeat(np.arange(2), 300)
    shifter = _shifter(prep, spectra, variances=variances.astype(np.float32))
    moved = _moved(shifter.clusters(labels, 2), 0, 133.0)
    # The second cluster's pixels as the first's would be at its velocity, whitened as the first's.
    as_first = prep.transform(spectra[300:], variances[:300]).mean(axis=0)
    assert _missed(moved, as_first) < 0.002


@pytest.mark.parametrize("descending", [False, True])
def test_a_velocity_moves_lines_to_longer_wavelengths(descending):
    wavelengths = WAVELENGTHS[::-1] if descending else WAVELENGTHS
    spectra = np.zeros((1, wavelengths.size), np.float32)
    shifter = LineShifter(None, np.zeros((1, 1)), spectra, None, wavelengths)  # type: ignore[arg-type]
    positions = shifter.positions(np.array([300.0]))[0]
    # Each channel takes its value from a shorter wavelength: (1 + v/c) times shorter.
    source = np.interp(positions, np.arange(wavelengths.size), wavelengths)
    inside = (positions > 0) & (positions < wavelengths.size - 1)
    np.testing.assert_allclose(source[inside], wavelengths[inside] / (1 + 300.0 / C_KMS), rtol=1e-9)


def test_clusters_moved_by_their_own_velocities_are_each_moved_as_alone(rng):
    # Three clusters of other ratios and velocities: a row of velocities per cluster takes each
    # cluster's own column of the spline, not another's; so does moving all at once.
    prep, _ = _fitted(rng)
    classes = ((0.0, LINES), (90.0, OTHER_RATIOS), (-60.0, LINES))
    spectra = np.vstack([_pixels(rng, _emission(velocity, ratios), 200) for velocity, ratios in classes])
    moved = _shifter(prep, spectra).clusters(np.repeat(np.arange(3), 200), 3)
    velocities = np.array([[10.0, 40.0], [-25.0, 70.0], [120.0, -5.0]])
    clusters = np.array([2, 1, 0])
    together = moved.shapes(clusters, velocities)
    assert together.shape == (3, 2, prep.selected.size)
    for row, cluster in enumerate(clusters):
        alone = moved.shapes(np.array([cluster]), velocities[row : row + 1])[0]
        np.testing.assert_allclose(together[row], alone, rtol=1e-5, atol=1e-7)
    # Every cluster at the same velocities (one evaluation for all): each as alone too.
    same = moved.shapes_at(velocities[0])
    for cluster in clusters:
        alone = moved.shapes(np.array([cluster]), velocities[:1])[0]
        np.testing.assert_allclose(same[cluster], alone, rtol=1e-5, atol=1e-7)
    assert not np.allclose(together[0], together[2])
