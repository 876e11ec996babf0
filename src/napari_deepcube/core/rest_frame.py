"""Every pixel's spectrum moved to one rest frame: emission-line classes apart from the gas's motion.

A galaxy's disk rotates, and each HII region or planetary nebula moves at its
own velocity: across a MUSE field the lines of one kind of gas move by up to
300 km/s from one side to the other (6.6 Å at Hα, more than a 4.5 Å feature
bin). Clusters then follow the velocity field instead of the gas
(docs/how-it-works.md, section 5, "Session 22": on a rotating stress nebula
the sky, the diffuse gas and three quarters of the HII regions were one
cluster). With ``rest_frame`` on, each pixel's line-of-sight velocity is
measured against a template of the cube's own lines, and its spectrum (and
its variances) moved by that velocity before anything else sees it:

* the template is the mean line spectrum (continuum removed) of the sample's
  brightest pixels, moved to their median velocity and averaged again, so
  the rest frame is the bright gas's median velocity;
* a pixel's velocity is the one at which the template fits its lines best
  (the largest gain in chi-square, noise-weighted). A pixel too faint to
  fix its own velocity (a best gain under :data:`MIN_DETECTION`, five sigma
  at one velocity, somewhat less over the 61 tried)
  takes that of the smallest box of neighbours around it whose summed
  lines do; where even :data:`NEIGHBOURHOODS`' largest box shows no line,
  the pixel (sky) stays as it is;
* a spectrum moves by the Doppler shift of each wavelength, interpolated
  linearly between the two channels around it. Moving by whole channels
  instead (every value one measured value) leaves up to half a channel
  (MUSE: 28 km/s at Hα) that is the same for every pixel at one velocity,
  and bright lines split along it (docs/how-it-works.md, section 1);
* interpolation smooths the noise: a channel between two others has
  ``(1 - w)**2 + w**2`` of their variance, down to a half. The features
  sum channels in bins (MUSE: 3.6 channels a bin), where the two weights of
  one measured channel meet again, so a bin keeps nearly all its noise. The
  variances are moved so that a bin's sum of them is right: each gets
  ``(1 - w)**2 + w**2`` of its channels' plus ``2w(1 - w)(n - 1)/n`` for
  bins of n channels on average (MUSE's bins of 3 and 4 channels then get
  0.98 and 1.01 of their true noise), where squared weights alone would
  declare 1.7 times too little noise for a bin midway between channels,
  and the values' weights 16 % too much;
* a rest wavelength whose observed one is off the spectrum is not measured:
  0 with a NaN variance, as a file's missing voxel is read.

The velocities are found on the raw channels (MUSE: 1.25 Å, 57 km/s at Hα),
on a grid of :data:`VELOCITIES` (10 km/s).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
from scipy.ndimage import uniform_filter

from .cube import Datacube, finite_or_zero, is_lazy_array, neighbour_pixels
from .errors import InputError
from .preprocess import MAX_FLUX_BINS, continuum, detect_kind, noise_sigma
from .spectral import SPEED_OF_LIGHT_KMS

#: Velocities (km/s) tried for every pixel: a galaxy's rotation and its regions' own motions.
VELOCITIES = np.arange(-300.0, 300.1, 10.0)
#: Sides (pixels) of the boxes whose summed lines give a faint pixel its velocity, smallest first.
NEIGHBOURHOODS = (1, 3, 7, 15)
#: Chi-square gain of the template over no lines at which a velocity counts as measured: five sigma.
MIN_DETECTION = 25.0
#: Share of the sample's pixels, the brightest in their lines, that make the template.
TEMPLATE_SHARE = 0.1
#: Pixels sampled to make the template.
TEMPLATE_PIXELS = 4096
#: Pixels sampled to decide whether a run left to decide moves to a rest frame: a quarter of
#: the template's sample costs a quarter as much on a cube that stays as observed, and a few
#: hundred of them show a line, enough for the 5th and 95th percentiles of their velocities.
DECISION_PIXELS = 1024
#: Rounds of moving the template's pixels to its frame and averaging them again, after the first average.
TEMPLATE_ROUNDS = 2


@dataclass(frozen=True)
class RestFrame:
    """The lines that define the rest frame, and the noise that weighs a fit to them.

    Parameters
    ----------
    template
        (C,) the mean line spectrum (continuum removed) of the cube's bright
        pixels, in the rest frame.
    wavelengths
        (C,) the channels' wavelengths in Å.
    sigma
        (C,) each channel's noise in the line spectra, from neighbouring
        pixels; used where a voxel has no variance of its own.
    """

    template: np.ndarray
    wavelengths: np.ndarray
    sigma: np.ndarray

    def state(self) -> dict[str, np.ndarray]:
        """Plain arrays that :meth:`from_state` rebuilds this from."""
        return {"template": self.template, "wavelengths": self.wavelengths, "sigma": self.sigma}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RestFrame:
        """Rebuild a rest frame saved with :meth:`state`."""
        names = ("template", "wavelengths", "sigma")
        return cls(*(np.asarray(state[name], dtype=np.float64) for name in names))

    def for_cube(self, cube: Datacube, seed: int) -> RestFrame:
        """This frame for another cube: the template on its wavelengths, the noise of its own pixels."""
        wavelengths = _wavelengths(cube)
        template = np.interp(wavelengths, self.wavelengths, self.template, left=0.0, right=0.0)
        return RestFrame(template, wavelengths, _sampled_lines(cube, seed).sigma)

    @cached_property
    def _moved_templates(self) -> np.ndarray:
        """(V, C) the template moved to each of :data:`VELOCITIES`; made once, read for every block."""
        rest = self.wavelengths
        sources = rest[None, :] / (1 + VELOCITIES[:, None] / SPEED_OF_LIGHT_KMS)
        moved = [np.interp(source, rest, self.template, left=0, right=0) for source in sources]
        return np.stack(moved).astype(np.float32)

    def fit_terms(self, spectra: np.ndarray, variances: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """For each pixel and velocity, the noise-weighted products of its lines with the moved template.

        Returns ``(num, den)``, each (V, n): the template's best brightness in
        a pixel is ``num / den``, and the chi-square it gains ``num**2 / den``;
        both add up over pixels, so that a box of pixels is fitted as one.
        """
        lines = finite_or_zero(spectra).astype(np.float32)
        lines -= continuum(lines)
        # A voxel that was not measured (NaN, a channel moved off the spectrum) weighs nothing.
        measured = np.isfinite(spectra)
        weights = np.where(measured, _weights(variances, self.sigma, lines.shape), np.float32(0.0))
        return self.line_terms(lines, weights)

    def line_terms(self, lines: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`fit_terms` of continuum-free ``lines`` (n, C) with their noise ``weights`` (n, C)."""
        templates = self._moved_templates
        return templates @ (lines * weights).T, (templates * templates) @ weights.T


def _weights(variances: np.ndarray | None, sigma: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(n, C) inverse noise variances: a voxel's own where known, else its channel's."""
    fallback = (1.0 / np.maximum(sigma, 1e-30) ** 2).astype(np.float32)
    if variances is None:
        return np.broadcast_to(fallback, shape)
    values = np.asarray(variances, dtype=np.float32)
    known = np.isfinite(values) & (values > 0)
    return np.where(known, 1.0 / np.where(known, values, 1.0), fallback).astype(np.float32)


@dataclass(frozen=True)
class _SampledLines:
    """Sampled pixels' raw spectra, line spectra (continuum removed) and variances; each channel's noise."""

    spectra: np.ndarray
    lines: np.ndarray
    variances: np.ndarray | None
    sigma: np.ndarray


def _sampled_lines(cube: Datacube, seed: int, n_pixels: int = TEMPLATE_PIXELS) -> _SampledLines:
    """``n_pixels`` random pixels of ``cube``; the noise from each one's right-hand neighbour."""
    rng = np.random.default_rng(seed)
    valid = np.flatnonzero(cube.mask.ravel())
    picks = np.sort(rng.choice(valid, size=min(n_pixels, valid.size), replace=False))
    rows, cols = np.divmod(picks, cube.image_shape[1])
    near_rows, near_cols = neighbour_pixels(cube.image_shape, rows, cols)
    # Pixels and neighbours in one read: a lazy cube is read once per band of rows asked for.
    both = finite_or_zero(cube.spectra(np.r_[rows, near_rows], np.r_[cols, near_cols]))
    spectra, neighbours = np.split(both, [rows.size])
    lines = spectra - continuum(spectra)
    sigma = noise_sigma(lines, neighbours - continuum(neighbours)).astype(np.float64)
    return _SampledLines(spectra, lines, cube.variances(rows, cols), sigma)


def fit_rest_frame(cube: Datacube, seed: int, kind: str = "auto") -> RestFrame:
    """The template of ``cube``'s lines and the noise to fit it with, from a sample of its pixels.

    ``kind`` is the run's kind of data; ``"auto"`` reads it from the sample
    (:func:`.detect_kind`: fluxes have negative values).

    Raises
    ------
    InputError
        If the cube's spectral axis is not a wavelength, or its values are not
        line fluxes: checked here, before the pass over every pixel measures
        velocities that nothing would use.
    """
    wavelengths = _wavelengths(cube)
    sample, found = _sample_and_kind(cube, seed, kind, TEMPLATE_PIXELS)
    if found != "flux":
        raise InputError(
            f"--rest-frame moves emission lines, but this cube was read as {found}; "
            "leave --rest-frame off (or give --kind flux if its values are line fluxes)"
        )
    return _template_frame(sample, wavelengths)


def needed_rest_frame(cube: Datacube, seed: int, kind: str = "auto") -> tuple[RestFrame | None, str]:
    """The rest frame a run left to decide (``rest_frame=None``) moves ``cube`` to, or None; and why.

    Moving pays where one kind of gas shows its lines in different feature
    bins across the field, as a rotating disk does: the 5th to 95th
    percentile of the velocities of the frame's sample (each pixel that
    shows a line on its own, :data:`MIN_DETECTION`) spans more than one
    feature bin (:func:`feature_bin_velocity`). Where the lines move by less,
    the binning all but hides it, and moving the faint gas only pulls it
    away from the sky's residuals, which stay where they were observed
    (docs/how-it-works.md, section 5, "Session 23"). Cubes that cannot be
    moved (no increasing wavelength axis, no line fluxes) are left as they are,
    with no reason given: the question does not arise for them. A cube of
    another ``kind``, or of unsigned integers, is not even read.
    """
    try:
        wavelengths = _wavelengths(cube)
    except InputError:
        return None, ""
    if kind not in ("auto", "flux") or np.issubdtype(cube.data.dtype, np.unsignedinteger):
        # Known without reading a pixel (fluxes can be negative): no sample drawn from a large cube.
        return None, ""
    sample, found = _sample_and_kind(cube, seed, kind, DECISION_PIXELS)
    if found != "flux":
        return None, ""
    spread = _velocity_spread(_template_frame(sample, wavelengths), sample)
    one_bin = feature_bin_velocity(wavelengths)
    measured = f"its lines' velocities span {spread:.0f} km/s (5th to 95th percentile of a sample)"
    if not spread > one_bin:
        return None, f"kept as observed: {measured}, within one feature bin ({one_bin:.0f} km/s)"
    # The frame itself is the one a run told to move makes, from the template's larger sample.
    frame = fit_rest_frame(cube, seed, "flux")
    return frame, f"moved to a rest frame: {measured}, more than one feature bin ({one_bin:.0f} km/s)"


def _sample_and_kind(cube: Datacube, seed: int, kind: str, n_pixels: int) -> tuple[_SampledLines, str]:
    """A sample of ``n_pixels`` of ``cube``, and the kind of data: ``kind``, or the sample's for "auto"."""
    sample = _sampled_lines(cube, seed, n_pixels)
    return sample, detect_kind(sample.spectra) if kind == "auto" else kind


def feature_bin_velocity(wavelengths: np.ndarray) -> float:
    """The width of a feature bin in km/s at the middle of the axis (MUSE: 4.5 Å, 191 km/s).

    Line fluxes are summed in at most :data:`.MAX_FLUX_BINS` bins of whole
    channels; a bin's width over its wavelength is a velocity.
    """
    per_bin = _channels_per_bin(wavelengths.size)
    return float(SPEED_OF_LIGHT_KMS * per_bin * np.median(np.diff(wavelengths) / wavelengths[1:]))


def _channels_per_bin(n_channels: int) -> float:
    """Channels a feature bin of line fluxes sums on average (at most :data:`.MAX_FLUX_BINS` bins)."""
    return n_channels / min(n_channels, MAX_FLUX_BINS)


def _velocity_spread(frame: RestFrame, sample: _SampledLines) -> float:
    """The 5th to 95th percentile range (km/s) of the velocities of the sample's pixels that show a line."""
    # The sample's lines are continuum-free already: the terms are made from them directly.
    weights = _weights(sample.variances, frame.sigma, sample.lines.shape)
    gains = _gain(*frame.line_terms(sample.lines, weights))
    shown = gains.max(axis=0) >= MIN_DETECTION
    if np.count_nonzero(shown) < 2:
        return 0.0
    velocities = VELOCITIES[np.argmax(gains[:, shown], axis=0)]
    low, high = np.percentile(velocities, [5, 95])
    return float(high - low)


def _template_frame(sample: _SampledLines, wavelengths: np.ndarray) -> RestFrame:
    """The frame of the sample's brightest tenth: their mean lines, moved to their median velocity."""
    lines, variances, sigma = sample.lines, sample.variances, sample.sigma
    energy = np.einsum("ij,ij,ij->i", lines, lines, _weights(variances, sigma, lines.shape))
    bright = np.argsort(-energy, kind="stable")[: max(1, int(TEMPLATE_SHARE * energy.size))]
    frame = RestFrame(lines[bright].mean(axis=0).astype(np.float64), wavelengths, sigma)
    for _ in range(TEMPLATE_ROUNDS):
        num, den = frame.fit_terms(sample.spectra[bright], None if variances is None else variances[bright])
        velocities = VELOCITIES[np.argmax(_gain(num, den), axis=0)]
        # Centred on the bright pixels' median, so that the frame does not drift from round to round
        # towards one end of the velocities tried.
        # Channels moved off the spectrum carry no line: read as 0, as the continuum-free lines are.
        moved = finite_or_zero(_to_rest(lines[bright], velocities - np.median(velocities), wavelengths))
        frame = RestFrame(moved.mean(axis=0).astype(np.float64), wavelengths, sigma)
    return frame


def _wavelengths(cube: Datacube) -> np.ndarray:
    angstrom = cube.axis.angstrom
    if angstrom is None:
        raise InputError(
            "--rest-frame (or a model trained with it) moves spectra by a velocity and needs a "
            f"wavelength axis (Å, nm or µm); this cube's axis is in {cube.axis.unit or 'channels'}: "
            "leave --rest-frame off"
        )
    if not np.all(np.diff(angstrom) > 0):
        raise InputError(
            "--rest-frame needs wavelengths that increase from channel to channel; this cube's do not: "
            "reverse its spectral axis first, or leave --rest-frame off"
        )
    return np.asarray(angstrom, dtype=np.float64)


def _gain(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Chi-square gain of the template at a positive brightness; 0 where it would be negative."""
    return np.where(num > 0, num * num / np.maximum(den, 1e-30), 0.0)


def velocity_map(cube: Datacube, frame: RestFrame) -> np.ndarray:
    """(H, W) each pixel's line-of-sight velocity in km/s against ``frame``; NaN where no line shows.

    The fit terms of every pixel and velocity are made block by block (two
    float32 maps of 61 velocities, 0.5 kB a pixel), then summed over boxes.
    A pixel outside the cube's mask gets NaN.
    """
    height, width = cube.image_shape
    num = np.zeros((VELOCITIES.size, height, width), dtype=np.float32)
    den = np.zeros_like(num)
    for rows, block in cube.iter_blocks():
        variances = cube.variance_rows(rows)
        flat = block.reshape(-1, cube.n_channels)
        terms = frame.fit_terms(flat, None if variances is None else variances.reshape(flat.shape))
        valid = cube.mask[rows].ravel()
        for whole, part in zip((num, den), terms, strict=True):
            whole[:, rows] = np.where(valid, part, 0.0).reshape(VELOCITIES.size, -1, width)
    velocities = _measured(num, den)
    velocities[~cube.mask] = np.nan
    return velocities


def _measured(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """(h, w) the velocity of each pixel from its fit terms (V, h, w): its own, or its smallest box's; NaN."""
    velocities = np.full(num.shape[1:], np.nan, dtype=np.float32)
    found = np.zeros(num.shape[1:], dtype=bool)
    for side in NEIGHBOURHOODS:
        if side == 1:
            box_num, box_den = num, den
        else:
            # Box sums (means times the box's area); outside the image counts as no pixel.
            area = side * side
            box_num = uniform_filter(num, size=(1, side, side), mode="constant") * area
            box_den = uniform_filter(den, size=(1, side, side), mode="constant") * area
        gain = _gain(box_num, box_den)
        best = gain.argmax(axis=0)
        detected = ~found & (np.take_along_axis(gain, best[None], axis=0)[0] >= MIN_DETECTION)
        velocities[detected] = VELOCITIES[best[detected]]
        found |= detected
    return velocities


def _to_rest(
    values: np.ndarray, velocities: np.ndarray, wavelengths: np.ndarray, variance_bin: float | None = None
) -> np.ndarray:
    """(n, C) ``values`` of pixels at ``velocities`` (n,) moved to the rest frame.

    The value at rest wavelength λ is the one observed at λ(1 + v/c),
    interpolated linearly between the channels around it, and not measured
    (0, with a NaN variance) where λ(1 + v/c) is off the spectrum; a pixel of
    unknown velocity (NaN) stays as it is. ``values`` are variances when
    ``variance_bin`` is given, the channels a feature bin sums (see the
    module's notes): a variance of unknown noise (not positive and finite)
    on either side makes the moved one NaN, unknown too.
    """
    moved = np.empty_like(values)
    channels = np.arange(wavelengths.size)
    velocities = np.nan_to_num(velocities, nan=0.0)
    for velocity in np.unique(velocities):
        pixels = np.flatnonzero(velocities == velocity)
        if velocity == 0:
            moved[pixels] = values[pixels]
            continue
        observed = wavelengths * (1.0 + velocity / SPEED_OF_LIGHT_KMS)
        source = np.interp(observed, wavelengths, channels, left=-1.0, right=-1.0)
        off_spectrum = source < 0
        below = np.clip(np.floor(source).astype(np.int64), 0, wavelengths.size - 2)
        above = (source - below).astype(values.dtype)
        weights = (1 - above, above)
        chosen = values[pixels]
        if variance_bin is not None:
            shared = above * (1 - above) * (variance_bin - 1) / variance_bin
            weights = ((1 - above) ** 2 + shared, above**2 + shared)
            chosen = np.where(np.isfinite(chosen) & (chosen > 0), chosen, np.nan)
        result = chosen[:, below] * weights[0] + chosen[:, below + 1] * weights[1]
        # Not measured: no flux and no known noise, as a file's missing voxel is read. A 0 rather
        # than NaN keeps the spectra finite, which spares the sample a copy of its hundreds of MB.
        result[:, off_spectrum] = np.nan if variance_bin is not None else 0.0
        moved[pixels] = result
    return moved


@dataclass(frozen=True)
class RestFrameArray:
    """A cube's values (H, W, C), each pixel's moved to the rest frame as it is read.

    Reads whole rows, as :meth:`~.cube.Datacube.iter_blocks` and the pixel
    sampler read a lazy array; the values themselves stay where they are.
    """

    source: Any
    #: (H, W) km/s, NaN for a pixel that stays as it is
    velocities: np.ndarray
    wavelengths: np.ndarray
    #: For variances: the channels a feature bin sums; None for values
    variance_bin: float | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.source.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 3

    @property
    def reads_from_disk(self) -> bool:
        """Whether the values behind it are read on demand (a cube in memory stays one, moved or not)."""
        return is_lazy_array(self.source)

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice):
            raise TypeError("a rest-frame cube is read by slices of rows")
        part = self.source[rows]
        if hasattr(part, "compute"):
            # A dask array: read here, also inside a task on a dask.distributed worker.
            part = part.compute(scheduler="synchronous")
        values = np.asarray(part, dtype=np.float32)
        flat = values.reshape(-1, values.shape[-1])
        moved = _to_rest(flat, self.velocities[rows].ravel(), self.wavelengths, self.variance_bin)
        return moved.reshape(values.shape)


def in_rest_frame(
    cube: Datacube, frame: RestFrame, velocities: np.ndarray, channels: np.ndarray | None = None
) -> Datacube:
    """``cube`` with every pixel's spectrum, and variances, moved from ``velocities`` (H, W) to ``frame``.

    A pixel whose velocity is NaN (no line) stays as it is. ``channels`` are
    those the features are made from (None: all of them), which set how many
    channels a feature bin sums.
    """
    n_used = cube.n_channels if channels is None else channels.size
    variance_bin = _channels_per_bin(n_used)
    data = RestFrameArray(cube.data, velocities, frame.wavelengths)
    variance = None if cube.variance is None else RestFrameArray(
        cube.variance, velocities, frame.wavelengths, variance_bin
    )
    return replace(cube, data=data, variance=variance)
