import numpy as np
import pytest
from scipy.optimize import nnls

from napari_deepcube.core.unmixing import abundances, shares


def _mixed_pixels(rng, materials, n=400):
    amounts = rng.dirichlet(np.full(materials.shape[0], 0.5), size=n) * rng.uniform(0.5, 2.0, (n, 1))
    return amounts @ materials + 0.3 * rng.normal(size=(n, materials.shape[1]))


@pytest.mark.parametrize(("k", "n_features", "spread"), [(2, 10, 1.0), (6, 200, 1.0), (12, 300, 0.01)])
def test_the_abundances_are_scipys_nnls_of_every_pixel(rng, k, n_features, spread):
    # spread 0.01: twelve materials that differ by 1 % of what they share.
    materials = rng.normal(size=n_features) + spread * rng.normal(size=(k, n_features))
    pixels = _mixed_pixels(rng, materials).astype(np.float32)
    pixels[:10] *= -1  # no material is in these: all their abundances are 0
    expected = np.stack([nnls(materials.T, pixel.astype(np.float64))[0] for pixel in pixels])
    found = abundances(pixels, materials)
    np.testing.assert_allclose(found, expected, atol=1e-8)
    assert np.all(found[:10] == 0) and np.all(expected[:10] == 0)
    # Both sides of the constraint are met: pixels holding several materials, and some not all.
    held = np.count_nonzero(found[10:] > 0, axis=1)
    assert np.mean(held >= 2) > 0.5 and np.mean(held < k) > 0.1


def test_a_material_of_zeros_is_never_held(rng):
    materials = rng.normal(size=(3, 40))
    pixels = _mixed_pixels(rng, materials)
    with_empty = np.vstack([materials[:1], np.zeros(40), materials[1:]])
    found = abundances(pixels, with_empty)
    assert np.all(found[:, 1] == 0)
    np.testing.assert_allclose(found[:, [0, 2, 3]], abundances(pixels, materials), atol=1e-10)


def test_shares_sum_to_one_and_leave_a_pixel_of_nothing_at_zero():
    amounts = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [0.2, 0.2, 0.6]])
    np.testing.assert_allclose(shares(amounts), [[0.25, 0.75, 0.0], [0.0, 0.0, 0.0], [0.2, 0.2, 0.6]])
