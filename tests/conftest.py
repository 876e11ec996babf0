"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.synthetic import SyntheticCube, make_painting

#: Real datacubes kept beside the repository (never inside it).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real datacubes; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_painting() -> SyntheticCube:
    """A small MA-XRF painting with ground truth, quick to segment."""
    return make_painting(height=48, width=48, n_channels=256, counts_per_pixel=500.0, seed=1)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(12345)



@pytest.fixture
def variance_run() -> dict[str, int]:
    """Settings that segment the heteroscedastic cube in a few seconds, k chosen in 2..6."""
    return {"epochs": 5, "n_train": 2000, "k_min": 2, "k_max": 6, "seed": 0}


def heteroscedastic_cube(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 48 x 48 x 240 line-flux cube whose noise differs tenfold between the two halves of the field.

    Three emission-line classes in bands of rows; the right half is seen with
    a hundredth of the exposure, so its noise is ten times that of the left
    half, in every channel. A class's surface brightness varies tenfold from
    pixel to pixel (log-uniform), as a nebula's does.

    Returns
    -------
    data, variance, labels
        (H, W, C) fluxes and the true variance of every voxel; (H, W) classes 1..3.
    """
    rng = np.random.default_rng(seed)
    size, n_channels = 48, 240
    labels = np.repeat(np.arange(1, 4), size // 3)[:, None].repeat(size, axis=1)
    channels = np.arange(n_channels)

    def line(centre: int) -> np.ndarray:
        return np.exp(-0.5 * ((channels - centre) / 2.0) ** 2)

    templates = np.stack(
        [
            line(40) + 0.3 * line(120) + 0.6 * line(200),
            line(40) + 1.0 * line(120) + 0.2 * line(200),
            0.4 * line(40) + 0.3 * line(120) + 1.0 * line(160),
        ]
    )
    brightness = np.exp(rng.uniform(np.log(0.3), np.log(3.0), labels.shape))
    signal = 100.0 * brightness[..., None] * templates[labels - 1]
    noise = np.where(np.arange(size) < size // 2, 1.0, 10.0)[None, :, None] * np.ones(signal.shape)
    data = signal + noise * rng.standard_normal(signal.shape)
    return data.astype(np.float32), (noise**2).astype(np.float32), labels


def write_muse_fits(
    path: Path, data: np.ndarray, variance: np.ndarray | None, dq: np.ndarray | None = None
) -> None:
    """``data`` (H, W, C) as a MUSE cube is written: an empty primary HDU, DATA, STAT and DQ as (λ, y, x)."""
    fits = pytest.importorskip("astropy.io.fits")
    wcs = pytest.importorskip("astropy.wcs")
    axes = wcs.WCS(naxis=3)
    axes.wcs.ctype = ["RA---TAN", "DEC--TAN", "AWAV"]
    axes.wcs.cunit = ["deg", "deg", "Angstrom"]
    axes.wcs.crval = [150.0, 2.0, 4750.0]
    axes.wcs.cdelt = [-5.6e-5, 5.6e-5, 1.25]
    axes.wcs.crpix = [1.0, 1.0, 1.0]
    header = axes.to_header()
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(np.moveaxis(data, -1, 0), header=header, name="DATA")]
    if variance is not None:
        hdus.append(fits.ImageHDU(np.moveaxis(variance, -1, 0), header=header, name="STAT"))
    if dq is not None:
        hdus.append(fits.ImageHDU(np.moveaxis(dq, -1, 0).astype(np.int32), header=header, name="DQ"))
    fits.HDUList(hdus).writeto(path)


#: Writes :func:`heteroscedastic_cube` of a seed as a MUSE FITS file, each variance
#: array first passed through an optional editor; returns the true labels.
FitsWriter = Callable[..., np.ndarray]


def _write_heteroscedastic_fits(
    path: Path, seed: int = 0, edit_variance: Callable[[np.ndarray], None] | None = None
) -> np.ndarray:
    """A few voxels flagged in DQ with a NaN variance, as a pipeline leaves them."""
    data, variance, labels = heteroscedastic_cube(seed)
    dq = np.zeros(data.shape, dtype=np.int32)
    dq[::7, ::5, 100] = 1
    variance[dq != 0] = np.nan
    if edit_variance is not None:
        edit_variance(variance)
    write_muse_fits(path, data, variance, dq)
    return labels


@pytest.fixture(scope="session")
def write_heteroscedastic_fits() -> FitsWriter:
    """Writes a MUSE-like FITS file (DATA, STAT, DQ) of :func:`heteroscedastic_cube` and returns its labels.

    Called as ``write(path, seed=0, edit_variance=None)``; ``edit_variance``
    changes the variances in place before they are written (a damaged STAT).
    """
    return _write_heteroscedastic_fits


@pytest.fixture(scope="session")
def heteroscedastic_fits(
    tmp_path_factory: pytest.TempPathFactory, write_heteroscedastic_fits: FitsWriter
) -> tuple[Path, np.ndarray]:
    """The FITS file of :func:`heteroscedastic_cube` (seed 0) with its STAT and DQ, and the true labels."""
    path = tmp_path_factory.mktemp("stat") / "heteroscedastic.fits"
    return path, write_heteroscedastic_fits(path)


#: Writes :func:`rotating_disk.rotating_disk` of a seed (no sky) as a MUSE FITS file with STAT;
#: returns the file, the true classes and the velocities.
DiskWriter = Callable[[int], tuple[Path, np.ndarray, np.ndarray]]


@pytest.fixture(scope="session")
def write_disk_fits(tmp_path_factory: pytest.TempPathFactory) -> DiskWriter:
    """See :data:`DiskWriter`."""
    from rotating_disk import rotating_disk

    def write(seed: int) -> tuple[Path, np.ndarray, np.ndarray]:
        data, variance, labels, velocity = rotating_disk(seed, sky=False)
        path = tmp_path_factory.mktemp("disk") / f"disk{seed}.fits"
        write_muse_fits(path, data, variance)
        return path, labels, velocity

    return write


@pytest.fixture(scope="session")
def disk_fits(write_disk_fits: DiskWriter) -> tuple[Path, np.ndarray, np.ndarray]:
    """The rotating disk of seed 3 as a MUSE FITS file (see :data:`DiskWriter`)."""
    return write_disk_fits(3)
