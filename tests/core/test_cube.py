import dask.array as da
import numpy as np
import pytest

from napari_deepcube.core.cube import Datacube, neighbour_pixels
from napari_deepcube.core.errors import InputError


def test_spectral_axis_is_moved_last_and_values_kept():
    array = np.arange(5 * 7 * 11, dtype=np.float32).reshape(11, 5, 7) + 1
    cube = Datacube.from_array(array, spectral_axis=0, spectral_values=np.linspace(1, 2, 11),
                               spectral_unit="keV", spectral_label="Energy")
    assert cube.shape == (5, 7, 11)
    np.testing.assert_array_equal(cube.data[2, 3], array[:, 2, 3])
    assert cube.axis_title == "Energy (keV)"


def test_nan_and_empty_pixels_are_masked_and_counted(rng):
    array = rng.poisson(5.0, size=(6, 8, 20)).astype(np.float32) + 1
    array[0, 0, :11] = np.nan  # more than half the channels: a dead spectrum
    array[1, 2, 0] = np.inf  # one flagged voxel: the pixel stays
    array[4, 4] = 0
    cube = Datacube.from_array(array)
    assert cube.n_valid == 6 * 8 - 2
    assert not cube.mask[0, 0] and cube.mask[1, 2] and not cube.mask[4, 4]
    assert cube.metadata["n_nonfinite_pixels"] == 1
    assert cube.metadata["n_partly_nonfinite_pixels"] == 1
    assert cube.metadata["n_empty_pixels"] == 1


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.ones((4, 4)), "3-D"),
        (np.ones((2, 3, 4, 5)), "3-D"),
        (np.array([["a"] * 3] * 3, dtype=object).reshape(3, 3, 1).repeat(2, axis=2), "not numbers"),
        (np.zeros((3, 3, 4)), "every pixel"),
        (np.ones((3, 3, 1)), "--spectral-axis"),
    ],
)
def test_bad_arrays_get_one_clear_message(array, words):
    with pytest.raises(InputError, match=words):
        Datacube.from_array(array)


def test_spectral_values_must_match_channels():
    with pytest.raises(InputError, match="3 spectral"):
        Datacube.from_array(np.ones((2, 2, 4)), spectral_values=[1, 2, 3])


def test_lazy_spectra_match_eager(rng):
    array = rng.normal(size=(9, 6, 5)).astype(np.float32)
    eager = Datacube.from_array(array)
    lazy = Datacube.from_array(da.from_array(array, chunks=(2, 6, 5)))
    assert lazy.is_lazy and not eager.is_lazy
    rows = np.array([8, 0, 3, 3, 5])
    cols = np.array([1, 5, 0, 2, 2])
    np.testing.assert_array_equal(lazy.spectra(rows, cols), eager.spectra(rows, cols))
    np.testing.assert_array_equal(lazy.mask, eager.mask)


class _CountedReads:
    """A lazy array (H, W, C) that counts its reads, as a file reader pays per call."""

    def __init__(self, array: np.ndarray) -> None:
        self.array, self.reads = array, 0
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim

    def __getitem__(self, key):
        self.reads += 1
        return self.array[key]


def test_a_lazy_sample_is_read_in_bands_of_a_pass_block_not_row_by_row(rng):
    array = rng.normal(size=(64, 512, 8)).astype(np.float32)
    counted = _CountedReads(array)
    cube = Datacube.from_array(counted)
    assert cube.is_lazy
    rows, cols = rng.integers(0, 64, size=2000), rng.integers(0, 512, size=2000)
    assert np.unique(rows).size == 64
    counted.reads = 0
    np.testing.assert_array_equal(cube.spectra(rows, cols), array[rows, cols])
    # A block of the pass holds 2048 pixels: four rows of 512.
    assert counted.reads == 64 // 4


@pytest.mark.parametrize(
    ("image_shape", "pixel", "neighbour"),
    [((4, 5), (2, 1), (2, 2)), ((4, 5), (2, 4), (2, 3)), ((4, 1), (1, 0), (2, 0)), ((4, 1), (3, 0), (2, 0))],
)
def test_a_pixels_neighbour_is_another_pixel_of_the_image(image_shape, pixel, neighbour):
    rows, cols = neighbour_pixels(image_shape, np.array([pixel[0]]), np.array([pixel[1]]))
    assert (int(rows[0]), int(cols[0])) == neighbour
