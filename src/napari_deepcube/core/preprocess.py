"""Per-spectrum transforms that turn raw spectra into model features.

Three kinds of data cover our users, and each gets features in which its
likelihood is simple:

* ``"counts"`` (X-ray fluorescence, EDS): photon counts, Poisson noise.
  Channels are summed into at most ``max_features`` bins, which keeps counts
  Poisson; the model then uses a multinomial likelihood of the binned counts.
* ``"flux"`` (emission-line astronomy, MUSE): real values with Gaussian noise,
  lines on a continuum that is no property of the classes (starlight), and
  negative values where the sky was subtracted. The continuum is removed per
  pixel, each channel is divided by its noise level (estimated from
  differences of neighbouring pixels, which cancel the signal but not the
  noise; or, when the cube comes with per-voxel variances, each pixel's own,
  see :mod:`.variance`), the channels that carry signal above the noise are kept, and the
  variation that all classes share (sky residuals, stellar absorption) is
  projected away as correlated noise (:mod:`.nuisance`).
* ``"reflectance"`` (hyperspectral imaging, absorbance, gain-scaled detector
  counts): smooth spectra whose broad shape is the signal, with Gaussian
  noise. As fluxes, but the continuum is kept: removing it would remove the
  classes (vegetation's red edge, water's low, dark reflectance).

``detect_kind`` tells them apart; the user can always say.

``transform="paper"`` reproduces the reference preprocessing (log1p, then
divide by the spectrum's maximum) for comparison.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from .cube import finite_or_zero
from .errors import InputError
from .kinds import DATA_KINDS, DataKind
from .nuisance import SharedNoise, fit_shared_noise
from .preprocess_config import Kind, PreprocessConfig
from .robust import MAD_TO_SIGMA, TRANSPOSE_BLOCK, row_mad_in_place
from .threads import in_parts
from .variance import BinnedVariance, bin_variances, pixel_noise, variance_scale

#: Channels per block when estimating the continuum of a flux spectrum; lines
#: are a few channels wide, so the block median follows the continuum only.
CONTINUUM_BLOCK = 32
#: Most channels kept before continuum removal for flux spectra.
MAX_FLUX_BINS = 1024
#: Integer data count as photon counts while their noise variance is at most
#: this many times the Poisson variance (see :func:`poisson_dispersion`; the
#: dispersions of real and synthetic cubes are in docs/how-it-works.md, section 1).
MAX_POISSON_DISPERSION = 2.5
_DISPERSION_PAIRS = 4096
#: Spectra :func:`detect_kind` checks at a time.
_KIND_BLOCK_ROWS = 1024


def detect_kind(spectra: np.ndarray, neighbours: np.ndarray | None = None) -> Kind:
    """Guess whether ``spectra`` (n, C) hold photon counts, line fluxes or reflectance.

    Negative values are sky- or background-subtracted fluxes. Non-negative
    integers are counts, unless the spectra of neighbouring pixels
    ``neighbours`` (n, C) differ by far more than Poisson noise would (integers
    that are scaled reflectance or gain-scaled detector counts). Anything else
    is reflectance.
    """
    # Row blocks keep the temporaries small (a sample of counts is hundreds of MB), and a
    # negative value ends the check at its block.
    blocks = [spectra[start : start + _KIND_BLOCK_ROWS] for start in range(0, len(spectra), _KIND_BLOCK_ROWS)]
    if spectra.size == 0 or any(np.any(block < 0) for block in blocks):
        return "flux"
    if not all(np.array_equal(block, np.round(block)) for block in blocks):
        return "reflectance"
    if neighbours is None:
        return "counts"
    return "counts" if poisson_dispersion(spectra, neighbours) <= MAX_POISSON_DISPERSION else "reflectance"


def poisson_dispersion(spectra: np.ndarray, neighbours: np.ndarray) -> float:
    """Noise variance over the Poisson variance (about 1 for photon counts).

    The noise of each channel comes from neighbouring pixels' differences
    (:func:`noise_sigma`, robust to region edges); pooled over all channels,
    its variance is compared with the mean count.
    """
    # A few thousand pairs, spread over the sample, fix the ratio well; more would only cost memory.
    step = -(-spectra.shape[0] // _DISPERSION_PAIRS)
    first = finite_or_zero(np.asarray(spectra[::step], dtype=np.float32))
    second = finite_or_zero(np.asarray(neighbours[::step], dtype=np.float32))
    expected = 0.5 * float((first + second).mean(axis=0, dtype=np.float64).sum())
    if expected <= 0:
        return 1.0
    return float((noise_sigma(first, second) ** 2).sum()) / expected


def bin_edges(n_channels: int, n_bins: int) -> np.ndarray:
    """Start index of each of ``min(n_bins, n_channels)`` near-equal channel bins."""
    n_bins = min(n_bins, n_channels)
    return np.round(np.linspace(0, n_channels, n_bins + 1)[:-1]).astype(np.int64)


def _bin(spectra: np.ndarray, starts: np.ndarray, mean: bool) -> np.ndarray:
    summed = np.add.reduceat(spectra, starts, axis=1)
    if not mean:
        return summed
    widths = np.diff(np.r_[starts, spectra.shape[1]])
    # Divided in the sums' type: integer widths would make a float32 sample float64, twice
    # its memory through the noise pairs and every copy after.
    return summed / widths.astype(summed.dtype)


def continuum(spectra: np.ndarray, block: int = CONTINUUM_BLOCK) -> np.ndarray:
    """Smooth continuum of each spectrum: block medians, linearly interpolated.

    Parameters
    ----------
    spectra
        (n, C) fluxes.
    block
        Channels per block; must exceed the width of the lines to be kept.
    """
    n_channels = spectra.shape[1]
    n_blocks = max(1, n_channels // block)
    edges = np.linspace(0, n_channels, n_blocks + 1).astype(np.int64)
    medians = np.stack([_medians(spectra[:, a:b]) for a, b in itertools.pairwise(edges)], axis=1)
    if n_blocks == 1:
        return np.repeat(medians, n_channels, axis=1)
    centres = (edges[:-1] + edges[1:] - 1) / 2.0
    channels = np.arange(n_channels)
    # Piecewise-linear interpolation as one matrix product for all pixels: column c of
    # `between` weighs the two block centres on either side of channel c.
    position = np.clip(np.interp(channels, centres, np.arange(n_blocks)), 0, n_blocks - 1)
    left = np.floor(position).astype(np.int64)
    right = np.minimum(left + 1, n_blocks - 1)
    weight = position - left
    between = np.zeros((n_blocks, n_channels), dtype=medians.dtype)
    np.add.at(between, (left, channels), 1.0 - weight)
    np.add.at(between, (right, channels), weight)
    return medians @ between


def _medians(block: np.ndarray) -> np.ndarray:
    """Median of each row of ``block`` (finite values), as :func:`numpy.median` gives it.

    Sorting a few dozen values per row is several times faster than the
    selection :func:`numpy.median` runs with two middle values to find.
    """
    ordered = np.sort(block, axis=1)
    middle = ordered.shape[1] // 2
    if ordered.shape[1] % 2:
        return ordered[:, middle]
    return (ordered[:, middle - 1] + ordered[:, middle]) / 2


def noise_sigma(left: np.ndarray, right: np.ndarray, threads: int = 1) -> np.ndarray:
    """Per-channel noise level from pairs of neighbouring pixels.

    The signal of two adjacent pixels is nearly the same while their noise is
    independent, so the robust spread of their difference is ``sqrt(2)`` times
    the noise. Region edges are few and the median ignores them.

    Parameters
    ----------
    left, right
        (n, F) spectra of n pixel pairs.
    threads
        Threads the channels are shared among (:func:`~.threads.in_parts`).
    """
    # Sparse channels (mostly zero, a few counts) have no spread at the median:
    # their plain standard deviation stands in (below), so that they are not divided by ~0.
    spread = np.empty(left.shape[1])
    # The type the medians divided by sqrt(2) take, under numpy's promotion rules of any version.
    sigma = np.empty(left.shape[1], dtype=np.result_type(left.dtype, right.dtype, np.sqrt(2.0)))

    def sigma_of_channels(part: slice) -> None:
        # The differences one channel per row, a block of channels at a time (see .robust).
        for start in range(part.start, part.stop, TRANSPOSE_BLOCK):
            block = slice(start, min(start + TRANSPOSE_BLOCK, part.stop))
            differences = left[:, block] - right[:, block]
            spread[block] = differences.std(axis=0) / np.sqrt(2.0)
            sigma[block] = MAD_TO_SIGMA * row_mad_in_place(np.ascontiguousarray(differences.T)) / np.sqrt(2.0)

    # Parts of whole blocks: a channel's spread is then summed as it is on one thread.
    in_parts(sigma_of_channels, left.shape[1], threads, align=TRANSPOSE_BLOCK)
    sparse = sigma == 0
    sigma[sparse] = spread[sparse]
    positive = sigma[sigma > 0]
    floor = 1e-3 * float(np.median(positive)) if positive.size else 1.0
    return np.maximum(sigma, floor)


@dataclass
class Preprocessor:
    """A fitted transform from raw spectra (n, C) to features (n, F).

    Build with :func:`fit_and_transform`; the fitted arrays are what a saved
    model needs to apply the same transform to another cube.

    ``n_channels`` is the raw spectra's length C; ``channels``, when set, are
    the channels the features are built from (the user's selection, see
    :mod:`.selection`), and ``starts`` index those.

    Whitened features are divided by ``sigma``, one noise level per kept
    feature; ``variance_scale``, when set, says that the transform was fitted
    with per-voxel variances: spectra given with theirs are then divided by
    each pixel's own noise (:func:`~.variance.pixel_noise`, the square roots
    of the variances times ``variance_scale``), spectra without by ``sigma``.
    """

    config: PreprocessConfig
    kind: Kind
    n_channels: int
    starts: np.ndarray
    selected: np.ndarray | None = None
    sigma: np.ndarray | None = None
    shared_noise: SharedNoise | None = None
    channels: np.ndarray | None = None
    variance_scale: float | None = None

    @property
    def n_features(self) -> int:
        """Number of features F per pixel."""
        return int(self.starts.size if self.selected is None else self.selected.size)

    @property
    def data_kind(self) -> DataKind:
        """What the kind of data implies for features, likelihood and the tests of k."""
        return DATA_KINDS[self.kind]

    @property
    def likelihood(self) -> str:
        """Noise model of the features: ``"multinomial"``, ``"gaussian"`` or ``"mse"``."""
        return "mse" if self.config.transform == "paper" else self.data_kind.likelihood

    @property
    def uses_variance(self) -> bool:
        """Whether the transform was fitted with per-voxel variances (and whitens by them when given)."""
        return self.variance_scale is not None

    def noise_source(self, variances_given: bool) -> str:
        """What :meth:`transform` divides features by (a key of :data:`~.variance.NOISE_SOURCES`).

        Parameters
        ----------
        variances_given
            Whether the spectra come with their per-voxel variances.
        """
        if self.config.transform == "paper":
            return "none"
        if not self.data_kind.whitened:
            return "poisson"
        return "variance" if variances_given and self.uses_variance else "channel"

    def feature_channels(self) -> np.ndarray:
        """Index of the first original channel of each feature, shape (F,)."""
        starts = self.starts if self.selected is None else self.starts[self.selected]
        return starts if self.channels is None else self.channels[starts]

    def transform(
        self, spectra: np.ndarray, variances: np.ndarray | None = None, *, threads: int = 1
    ) -> np.ndarray:
        """Features of raw spectra (n, C) -> (n, F) float32.

        Parameters
        ----------
        spectra
            (n, C) raw spectra.
        variances
            (n, C) their per-voxel variances, or None. Used when the transform
            was fitted with variances (:attr:`uses_variance`), ignored otherwise.
        threads
            Threads the spectra are shared among, each a block of rows.
        """
        if variances is not None and len(variances) != len(spectra):
            raise ValueError(
                f"{len(spectra)} spectra but {len(variances)} rows of variances; give one row each"
            )
        if np.shape(spectra)[1] != self.n_channels:
            raise InputError(
                f"the model was trained on spectra of {self.n_channels} channels but this "
                f"cube has {np.shape(spectra)[1]}; use a cube from the same instrument setting "
                "or train a new model"
            )
        return _by_rows(
            lambda rows: self._features(spectra[rows], None if variances is None else variances[rows]),
            len(spectra),
            threads,
        )

    def _features(self, spectra: np.ndarray, variances: np.ndarray | None) -> np.ndarray:
        """The features of :meth:`transform`, on one thread."""
        spectra = np.asarray(spectra, dtype=np.float32)
        picked = spectra if self.channels is None else spectra[:, self.channels]
        binned_variance = None
        if variances is not None and self.noise_source(variances_given=True) == "variance":
            chosen = variances if self.channels is None else np.asarray(variances)[:, self.channels]
            binned_variance = bin_variances(chosen, np.isfinite(picked), self.starts)
        spectra = finite_or_zero(picked)
        if self.config.transform == "paper":
            binned = _bin(spectra, self.starts, mean=False)
            logged = np.log1p(np.maximum(binned, 0.0))
            peak = logged.max(axis=1, keepdims=True)
            return (logged / np.where(peak > 0, peak, 1.0)).astype(np.float32)
        if not self.data_kind.whitened:
            # Clipped only where needed: a copy of the sample costs more than the check.
            counted = spectra if spectra.min(initial=0.0) >= 0 else np.maximum(spectra, 0.0)
            return _bin(counted, self.starts, mean=False).astype(np.float32, copy=False)
        assert self.selected is not None and self.sigma is not None
        noise = self.sigma
        if binned_variance is not None:
            assert self.variance_scale is not None
            noise = pixel_noise(binned_variance.take(self.selected), self.variance_scale, self.sigma)
        features = (self._signal_spectra(spectra)[:, self.selected] / noise).astype(np.float32)
        return features if self.shared_noise is None else self.shared_noise.project_out(features)

    def _signal_spectra(self, spectra: np.ndarray) -> np.ndarray:
        """Binned spectra, without their continuum for line fluxes."""
        binned = _bin(spectra, self.starts, mean=True)
        if self.data_kind.continuum_removed:
            binned -= continuum(binned)  # in place: a sample's spectra are hundreds of MB
        return binned

    def state(self) -> dict[str, Any]:
        """Plain arrays and values that :meth:`from_state` rebuilds this from."""
        return {
            "config": asdict(self.config),
            "kind": self.kind,
            "n_channels": self.n_channels,
            "starts": self.starts,
            "selected": self.selected,
            "sigma": self.sigma,
            "noise_directions": None if self.shared_noise is None else self.shared_noise.directions,
            "noise_variances": None if self.shared_noise is None else self.shared_noise.variances,
            "channels": self.channels,
            "variance_scale": self.variance_scale,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Preprocessor:
        """Rebuild a preprocessor saved with :meth:`state`."""

        def optional(name: str) -> np.ndarray | None:
            value = state.get(name)
            return None if value is None else np.asarray(value)

        directions, variances = optional("noise_directions"), optional("noise_variances")
        shared_noise = None if directions is None or variances is None else SharedNoise(directions, variances)
        return cls(
            config=PreprocessConfig(**state["config"]),
            kind=state["kind"],
            n_channels=int(state["n_channels"]),
            starts=np.asarray(state["starts"], dtype=np.int64),
            selected=optional("selected"),
            sigma=optional("sigma"),
            shared_noise=shared_noise,
            channels=optional("channels"),
            variance_scale=None if state.get("variance_scale") is None else float(state["variance_scale"]),
        )


def fit_and_transform(
    config: PreprocessConfig,
    spectra: np.ndarray,
    neighbours: np.ndarray,
    *,
    seed: int = 0,
    channels: np.ndarray | None = None,
    variances: np.ndarray | None = None,
    neighbour_variances: np.ndarray | None = None,
    threads: int = 1,
) -> tuple[Preprocessor, np.ndarray]:
    """Fit the transform on a sample of spectra, and the sample's features.

    The features are those ``transform(spectra, variances)`` gives; a whitened
    transform has made them while fitting, so a sample of fluxes is not
    binned and freed of its continuum a second time.

    Parameters
    ----------
    config
        What to do.
    spectra
        (n, C) raw spectra of sampled pixels.
    neighbours
        (n, C) raw spectra of the pixel next to each sampled one, used to
        estimate the noise of flux spectra.
    seed
        Seed of the clustering that the shared noise of fluxes is read from.
    channels
        Sorted indices of the channels to build features from; None for all.
    variances, neighbour_variances
        (n, C) per-voxel variances of ``spectra`` and ``neighbours``, both or
        neither. Given, whitened features are divided by each pixel's own
        noise (:mod:`.variance`), and the channels are chosen and the shared
        noise fitted in those units; photon counts and the paper's transform
        ignore them.
    threads
        Threads the sample's spectra are shared among.
    """
    preprocessor, features = _fit(
        config, spectra, neighbours, seed, channels, variances, neighbour_variances, threads
    )
    if features is None:
        features = preprocessor.transform(spectra, variances, threads=threads)
    return preprocessor, features


def _fit(
    config: PreprocessConfig,
    spectra: np.ndarray,
    neighbours: np.ndarray,
    seed: int,
    channels: np.ndarray | None,
    variances: np.ndarray | None,
    neighbour_variances: np.ndarray | None,
    threads: int,
) -> tuple[Preprocessor, np.ndarray | None]:
    """The fitted transform, and the sample's features where fitting made them (None elsewhere)."""
    if (variances is None) != (neighbour_variances is None):
        raise ValueError("give the variances of both the spectra and their neighbours, or neither")
    n_channels = np.shape(spectra)[1]
    picked = slice(None) if channels is None else channels
    raw = np.asarray(spectra, dtype=np.float32)[:, picked]
    raw_neighbours = np.asarray(neighbours, dtype=np.float32)[:, picked]
    spectra, neighbours = finite_or_zero(raw), finite_or_zero(raw_neighbours)
    n_used = spectra.shape[1]
    kind: Kind = (
        detect_kind(spectra, neighbours) if config.kind == "auto" else config.kind  # type: ignore[assignment]
    )
    if config.transform == "paper":
        starts = bin_edges(n_used, max(config.max_features, 1024))
        return Preprocessor(config, kind, n_channels, starts, channels=channels), None
    if not DATA_KINDS[kind].whitened:
        starts = bin_edges(n_used, config.max_features)
        return Preprocessor(config, kind, n_channels, starts, channels=channels), None
    partial = Preprocessor(config, kind, n_channels, bin_edges(n_used, MAX_FLUX_BINS), channels=channels)
    measured = None
    if variances is not None and neighbour_variances is not None:
        measured = (
            (np.asarray(variances)[:, picked], np.isfinite(raw)),
            (np.asarray(neighbour_variances)[:, picked], np.isfinite(raw_neighbours)),
        )
    return _fit_whitened(partial, spectra, neighbours, measured, seed, threads)


#: The per-voxel variances of a sample and of its neighbours, each with where its data are finite.
_SampleVariances = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _fit_whitened(
    partial: Preprocessor,
    spectra: np.ndarray,
    neighbours: np.ndarray,
    measured: _SampleVariances | None,
    seed: int,
    threads: int,
) -> tuple[Preprocessor, np.ndarray]:
    """The whitened transform (fluxes, reflectance), and the sample's features under it.

    The transform holds the noise, the kept channels and the shared noise.

    ``partial`` holds the kind and bins; ``spectra`` and ``neighbours`` are
    the sample's spectra of the channels used, NaN read as 0. The work row by
    row, and channel by channel, is shared among ``threads`` threads.
    """
    n = spectra.shape[0]
    signal = _by_rows(lambda rows: partial._signal_spectra(spectra[rows]), n, threads)
    neighbour_signal = _by_rows(lambda rows: partial._signal_spectra(neighbours[rows]), n, threads)
    sigma = noise_sigma(signal, neighbour_signal, threads)
    binned, scale = None, None
    if measured is not None:
        (variances, finite), (neighbour_variances, neighbour_finite) = measured
        binned = bin_variances(variances, finite, partial.starts, threads)
        neighbour_binned = bin_variances(neighbour_variances, neighbour_finite, partial.starts, threads)
        scale = variance_scale(signal, neighbour_signal, binned, neighbour_binned, threads)

    # Mean excess of squared signal-to-noise over pure noise (which gives 1):
    # a channel carried by a few bright pixels (a compact nebula) still scores.
    excess = _mean_squared_snr(signal, sigma, binned, scale, threads) - 1.0
    n_keep = min(partial.config.max_features, excess.size)
    selected = np.sort(np.argsort(-excess, kind="stable")[:n_keep])
    kept_sigma = sigma[selected].astype(np.float32)
    whitened = replace(partial, selected=selected, sigma=kept_sigma, variance_scale=scale)

    def features_of(rows: slice) -> np.ndarray:
        # As whitened.transform(spectra, variances) computes them.
        kept_noise = kept_sigma
        if binned is not None and scale is not None:
            kept_noise = pixel_noise(binned.rows(rows).take(selected), scale, kept_sigma)
        return (signal[rows][:, selected] / kept_noise).astype(np.float32)

    features = _by_rows(features_of, n, threads)
    if not partial.data_kind.shared_noise_removed:
        return whitened, features
    shared_noise = fit_shared_noise(features, seed=seed)
    return replace(whitened, shared_noise=shared_noise), shared_noise.project_out(features)


def _mean_squared_snr(
    signal: np.ndarray, sigma: np.ndarray, binned: BinnedVariance | None, scale: float | None, threads: int
) -> np.ndarray:
    """(B,) each bin's mean squared signal-to-noise over the sample (n, B), in float64.

    The noise is each pixel's own where the variances are known (``binned``
    and ``scale``), else ``sigma``. The squares are written block by block
    into one array in the type of the division: one sample's worth of them,
    not the blocks and a copy.
    """
    own_noise = binned is not None and scale is not None  # pixel_noise gives float32
    squared = np.empty(signal.shape, dtype=np.result_type(signal, np.float32 if own_noise else sigma))

    def squares_of_rows(rows: slice) -> None:
        noise = sigma
        if binned is not None and scale is not None:  # own_noise, spelled out for the type checker
            noise = pixel_noise(binned.rows(rows), scale, sigma)
        np.divide(signal[rows], noise, out=squared[rows])
        squared[rows] *= squared[rows]

    in_parts(squares_of_rows, len(signal), threads)
    return np.asarray(np.mean(squared, axis=0, dtype=np.float64))  # n_train rows: float32 sums drift


def _by_rows(function: Callable[[slice], np.ndarray], n: int, threads: int) -> np.ndarray:
    """``function`` of slices that cover ``n`` rows, on ``threads`` threads, its blocks of rows stacked."""
    blocks = in_parts(function, n, threads)
    return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
