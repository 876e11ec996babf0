"""Per-voxel noise variances (a FITS cube's STAT) as the noise of each flux feature.

Flux and reflectance features are bin means of channels (their continuum
removed for fluxes) divided by their noise (:mod:`.preprocess`), so that the
noise of the features is unit Gaussian, which the likelihood mixture assumes.
Without variances that noise is one level per channel, estimated from the
differences of neighbouring pixels: right for a cube whose noise is the same
everywhere. A cube that comes with variances may be noisier in some pixels
than in others (a mosaic's edges seen in fewer exposures, a field observed
ten times longer in one part, a bright source's own photon noise): dividing
each pixel by its own noise keeps the features' noise unit everywhere.

* The variance of a bin mean of ``w`` channels is the sum of their variances
  over ``w**2``.
* A voxel whose data is NaN (DQ-flagged) is read as 0 (see
  :class:`~.cube.Datacube`): a value without noise, so its variance counts 0.
* A bin holding a voxel of unknown noise (its variance not positive and
  finite where its data are), or whose variance is 0 (all its voxels
  flagged), is divided by the channel's estimated noise instead, at the
  pixel's own level: times the median, over the pixel's other bins, of its
  noise over theirs (1 for a pixel without any known bin). In a cube whose
  noise differs tenfold between pixels, the channel's noise alone would
  make a few bins of every noisy pixel stand out by several noise units.
* The variances' level is checked against neighbouring pixels' differences:
  ``(x1 - x2) / sqrt(v1 + v2)`` has unit spread when the variances are right.
  The median over bins of its robust spread per bin multiplies the noise. A
  pipeline's variance that is off by a common factor then still gives unit
  noise, and switching the variances on changes which pixels and channels
  count as noisier than others, not the noise level the mixture sees as a
  whole. One factor, not one per bin: in the bins of bright lines the
  neighbours' signal differs too (brightness gradients, region edges), which
  would make those bins look noisier than their variances say.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .robust import MAD_TO_SIGMA, TRANSPOSE_BLOCK, row_mad_in_place
from .threads import in_parts

#: A pixel's noise is kept above this share of its channel's estimated noise,
#: so that a variance near 0 does not blow its features up (nor overflow float32).
MIN_NOISE_SHARE = 1e-3
#: Pairs of neighbouring pixels, with both noises known, needed for a bin to
#: count in the variances' level; without any such bin they are taken as they are.
MIN_SCALE_PAIRS = 32
#: Spectra binned at a time: the masks and copies of a block of a 3681-channel
#: cube stay near 40 MB, whatever the size of the sample.
_BIN_ROWS = 2048

#: What the features of a run were divided by, by the name the report gives it.
NOISE_SOURCES = {
    "variance": "each pixel's own noise, from the cube's per-voxel variances",
    "channel": "one noise level per channel, estimated from neighbouring pixels' differences",
    "poisson": "none: photon counts, modelled as Poisson",
    "none": "none: the reference preprocessing (log1p, then divided by the maximum)",
}


@dataclass(frozen=True)
class BinnedVariance:
    """The variance of each bin mean of n spectra, and where it is known.

    Attributes
    ----------
    values
        (n, B) variance of each bin mean; 0 where unknown.
    known
        (n, B) True where every voxel of the bin has a usable variance and
        their sum is positive.
    """

    values: np.ndarray
    known: np.ndarray

    def take(self, columns: np.ndarray) -> BinnedVariance:
        """The bins ``columns`` only."""
        return BinnedVariance(self.values[:, columns], self.known[:, columns])

    def rows(self, rows: slice) -> BinnedVariance:
        """The spectra ``rows`` only."""
        return BinnedVariance(self.values[rows], self.known[rows])


def bin_variances(
    variances: np.ndarray, finite: np.ndarray, starts: np.ndarray, threads: int = 1
) -> BinnedVariance:
    """The variance of the bin means starting at channels ``starts``.

    Parameters
    ----------
    variances
        (n, C) variance of every voxel.
    finite
        (n, C) True where the voxel's data are finite (the others are read as 0).
    starts
        (B,) first channel of each bin, increasing from 0.
    threads
        Threads the spectra are shared among (:func:`~.threads.in_parts`).
    """
    n = variances.shape[0]
    binned = np.empty((n, starts.size), dtype=np.float32)
    unknown = np.empty((n, starts.size), dtype=bool)
    widths = np.diff(np.r_[starts, variances.shape[1]]).astype(np.float32)

    def bin_rows(part: slice) -> None:
        for start in range(part.start, part.stop, _BIN_ROWS):
            rows = slice(start, min(start + _BIN_ROWS, part.stop))
            values = np.asarray(variances[rows], dtype=np.float32)
            usable = np.isfinite(values) & (values > 0)
            used = finite[rows] & usable
            # A MUSE STAT is usable almost everywhere: the masks' sums are then skipped.
            counted = values if used.all() else np.where(used, values, np.float32(0.0))
            unusable = finite[rows] & ~usable
            unknown[rows] = False
            if unusable.any():
                unknown[rows] = np.add.reduceat(unusable.astype(np.int32), starts, axis=1) > 0
            binned[rows] = np.add.reduceat(counted, starts, axis=1) / widths**2

    in_parts(bin_rows, n, threads)
    known = ~unknown & (binned > 0) & np.isfinite(binned)
    return BinnedVariance(np.where(known, binned, np.float32(0.0)), known)


def variance_scale(
    signal: np.ndarray,
    neighbours: np.ndarray,
    binned: BinnedVariance,
    neighbour_binned: BinnedVariance,
    threads: int = 1,
) -> float:
    """The factor that makes the variances' noise match neighbouring pixels' differences.

    The signal of two adjacent pixels is nearly the same while their noise is
    independent, so ``(x1 - x2) / sqrt(v1 + v2)`` has unit spread when the
    variances are right; the median absolute deviation ignores the few pairs
    across region edges, and the median over bins the few bins of bright lines.

    Parameters
    ----------
    signal, neighbours
        (n, B) binned signal of n pixels and of a neighbour of each, finite.
    binned, neighbour_binned
        Their bin variances.
    threads
        Threads the bins are shared among (:func:`~.threads.in_parts`).

    Returns
    -------
    float
        The positive factor for the noise (the square roots of the variances).
    """
    both = binned.known & neighbour_binned.known
    usable = np.flatnonzero(both.sum(axis=0) >= MIN_SCALE_PAIRS)
    if not usable.size:
        return 1.0
    # Slices where every bin is usable (the usual case): gathering columns by index costs
    # more than the medians.
    every_bin_usable = usable.size == both.shape[1]

    def mads(part: slice) -> np.ndarray:
        blocks: list[slice | np.ndarray] = [
            slice(start, min(start + TRANSPOSE_BLOCK, part.stop))
            if every_bin_usable
            else usable[start : min(start + TRANSPOSE_BLOCK, part.stop)]
            for start in range(part.start, part.stop, TRANSPOSE_BLOCK)
        ]
        return np.concatenate([
            _normalised_mad(
                signal[:, columns] - neighbours[:, columns],
                binned.values[:, columns] + neighbour_binned.values[:, columns],
                both[:, columns],
            )
            for columns in blocks
        ])

    mad = np.concatenate(in_parts(mads, usable.size, threads))
    level = float(np.median(MAD_TO_SIGMA * mad))
    return level if level > 0 else 1.0


def _normalised_mad(difference: np.ndarray, total: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Each column's median absolute deviation of ``difference / sqrt(total)`` over its ``known`` rows."""
    # One bin per row (see .robust); where every pair is known (the usual case) the plain
    # median needs none of nanmedian's row-by-row loop, and gives the same value.
    normalised = np.ascontiguousarray((difference / np.sqrt(np.where(known, total, np.float32(1.0)))).T)
    if known.all():
        return row_mad_in_place(normalised)
    normalised[~known.T] = np.nan
    centre = np.nanmedian(normalised, axis=1, keepdims=True)
    return np.nanmedian(np.abs(normalised - centre), axis=1)


def pixel_noise(binned: BinnedVariance, scale: float, sigma: np.ndarray) -> np.ndarray:
    """Each pixel's noise in each bin (n, B): from its variance where known, else from ``sigma``.

    Where a pixel's variance is unknown, the channel's ``sigma`` at the
    pixel's level (:func:`_pixel_level`) stands in.

    Parameters
    ----------
    binned
        The pixels' bin variances.
    scale
        The factor of :func:`variance_scale`.
    sigma
        (B,) noise of each bin estimated from neighbouring pixels.
    """
    floor = MIN_NOISE_SHARE * sigma
    own = np.maximum(np.sqrt(binned.values) * np.float32(scale), floor)
    if binned.known.all():
        return own.astype(np.float32)
    stand_in = np.maximum(_pixel_level(own / sigma, binned.known)[:, None] * sigma, floor)
    return np.where(binned.known, own, stand_in).astype(np.float32)


def _pixel_level(ratios: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(n,) median of each row of ``ratios`` (n, B) over its ``known`` entries; 1 for a row without any."""
    count = known.sum(axis=1)
    ordered = np.sort(np.where(known, ratios, np.inf), axis=1)
    rows = np.arange(ratios.shape[0])
    lower = ordered[rows, np.maximum(count - 1, 0) // 2]
    upper = ordered[rows, np.minimum(count // 2, ratios.shape[1] - 1)]
    return np.where(count > 0, 0.5 * (lower + upper), 1.0)


@dataclass(frozen=True)
class FeatureNoise:
    """What a run divided its features by, and why when it is not what the cube offered.

    Attributes
    ----------
    source
        A key of :data:`NOISE_SOURCES`.
    note
        Why the cube's per-voxel variances were not used although it has
        some, or why the model's were not; "" otherwise.
    """

    source: str
    note: str = ""

    @property
    def description(self) -> str:
        """One sentence for a report or a status line."""
        text = NOISE_SOURCES[self.source]
        return f"{text} ({self.note})" if self.note else text

    def to_dict(self) -> dict[str, str]:
        """JSON-ready fields: ``source`` and ``description``."""
        return {"source": self.source, "description": self.description}


def feature_noise(
    source: str, *, fitted_with_variance: bool, cube_has_variance: bool, variance_switched_on: bool
) -> FeatureNoise:
    """What a run's features were divided by, with the reason when the cube's variances went unused.

    Parameters
    ----------
    source
        What the preprocessing divided by (a key of :data:`NOISE_SOURCES`).
    fitted_with_variance
        The model was fitted with per-voxel variances.
    cube_has_variance
        The cube came with per-voxel variances.
    variance_switched_on
        The run's settings allow using them.
    """
    note = ""
    if source in ("poisson", "none"):
        if cube_has_variance and variance_switched_on:
            note = "the cube's per-voxel variances are not used for these features"
    elif cube_has_variance and not variance_switched_on:
        note = "the cube's per-voxel variances were switched off"
    elif fitted_with_variance and not cube_has_variance:
        note = (
            "the model was fitted with per-voxel variances, but this cube has none: "
            "the model's noise per channel stands in"
        )
    elif cube_has_variance and not fitted_with_variance:
        note = "the cube's per-voxel variances are not used: the model was fitted without them"
    return FeatureNoise(source, note)
