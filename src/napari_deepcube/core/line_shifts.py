"""Clusters' mean spectra moved in velocity, as features: the test of one gas at two velocities.

Each HII region or planetary nebula moves at its own velocity, and a bright
one's lines, shifted by a fraction of their width, gain BIC penalties as a
class of their own. The test (:func:`~.kselect.shift_gain`) asks whether a
cluster's pixels are explained by another cluster's spectrum moved in
velocity. A line is often narrower than a feature bin (MUSE's Hα: σ ≈ 1.2 Å,
features binned to 4.5 Å), and interpolating binned features between bins
leaves up to a quarter of such a line's energy unexplained, worth several
penalties at an HII region's brightness. So each cluster's mean *raw*
spectrum is moved instead, channel by channel (1.25 Å on MUSE), by the
Doppler factor of each velocity on a wavelength axis, and then made into
features by the same transform as the pixels. What the transform of a mean
spectrum misses of the mean of its pixels' features (a pixel's noise lifts
the median its continuum is taken from, where lines fill part of a block) is
added back, the same at every velocity.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.interpolate import CubicSpline, PPoly

from .mixture import class_sums
from .preprocess import Preprocessor
from .spectral import SPEED_OF_LIGHT_KMS

#: Velocities (km/s) tried for each pair of clusters: a galaxy disk's
#: rotation and the regions' own motions.
VELOCITIES = np.arange(-300.0, 300.1, 20.0)
#: Then around the best of them: 2.5 km/s is 0.05 Å at Hα, where the energy a
#: misplaced line of σ = 1.2 Å leaves is under 0.05 % (a 20 km/s step leaves
#: up to 1 %, a penalty or so at an HII region's brightness).
FINE_OFFSETS = np.arange(-17.5, 17.6, 2.5)
#: Channels moved per unit of v/c on an axis without wavelengths: the
#: resolving power per channel of an integral-field spectrograph (MUSE's
#: 1.25 Å channels over 4750-9350 Å: 3800-7500).
UNCALIBRATED_CHANNELS_PER_REDSHIFT = 5000.0


@dataclass(frozen=True)
class LineShifter:
    """The training sample's raw spectra, to move clusters' mean spectra in velocity.

    Parameters
    ----------
    preprocessor
        The transform that made the sample's features.
    features
        (n, F) the sample's features.
    spectra
        (n, C) raw spectra of the sample, finite, in the rows of ``features``.
    variances
        (n, C) their per-voxel variances when the transform whitens by them,
        else None.
    wavelengths
        (C,) the channels' wavelengths (any unit), or None for an axis without
        them: velocities then move all channels by the same amount.
    """

    preprocessor: Preprocessor
    features: np.ndarray
    spectra: np.ndarray
    variances: np.ndarray | None
    wavelengths: np.ndarray | None

    def clusters(self, labels: np.ndarray, k: int) -> ShiftedClusters:
        """The mean spectrum of each cluster of ``labels`` (0..k-1), ready to move."""
        counts = np.maximum(np.bincount(labels, minlength=k), 1)[:, None]
        means = class_sums(self.spectra, labels, k, dtype=np.float32)[0] / counts
        noise = None
        if self.variances is not None:
            noise = class_sums(self.variances, labels, k, dtype=np.float32)[0] / counts
        at_rest = self.preprocessor.transform(means, noise)
        offsets = class_sums(self.features, labels, k)[0] / counts - at_rest
        return ShiftedClusters(self, means, noise, offsets.astype(np.float32))

    def positions(self, velocities: np.ndarray) -> np.ndarray:
        """(S, C) where, in channels, each channel's value comes from for each of ``velocities``.

        A line at rest wavelength w moves to w (1 + v / c): channel c takes the
        value at wavelength(c) / (1 + v / c).
        """
        channels = np.arange(self.spectra.shape[1], dtype=np.float64)
        redshifts = np.asarray(velocities, dtype=np.float64) / SPEED_OF_LIGHT_KMS
        if self.wavelengths is None:
            moved = channels[None, :] - UNCALIBRATED_CHANNELS_PER_REDSHIFT * redshifts[:, None]
            # Beyond the ends the nearest channel's value, as a wavelength axis' positions have.
            return np.clip(moved, 0.0, channels[-1])
        order = 1 if self.wavelengths[-1] >= self.wavelengths[0] else -1
        sources = self.wavelengths[None, :] / (1.0 + redshifts[:, None])
        return np.interp(sources, self.wavelengths[::order], channels[::order])


@dataclass
class ShiftedClusters:
    """Clusters' mean raw spectra (and variances), moved in velocity on demand.

    Build with :meth:`LineShifter.clusters`. Moved by cubic-spline
    interpolation between channels: a line a channel or so wide keeps its
    energy to a fraction of a percent. The noise stays where it is (sky and
    detector), only the spectrum moves.
    """

    shifter: LineShifter
    means: np.ndarray
    mean_variances: np.ndarray | None
    offsets: np.ndarray

    @cached_property
    def spline(self) -> CubicSpline:
        """One spline through every cluster's mean spectrum, its columns the clusters."""
        return CubicSpline(np.arange(self.means.shape[1], dtype=np.float64), self.means.T)

    def shapes(self, clusters: np.ndarray, velocities: np.ndarray) -> np.ndarray:
        """(m, S, F) unit feature shapes of ``clusters`` (m,), each moved by its own row of
        ``velocities`` (m, S)."""
        positions = self.shifter.positions(velocities.ravel()).reshape(*velocities.shape, -1)
        spline = self.spline
        spectra = np.stack(
            [PPoly(spline.c[..., c], spline.x)(rows) for c, rows in zip(clusters, positions, strict=True)]
        )
        return self._unit_features(clusters, spectra)

    def shapes_at(self, velocities: np.ndarray) -> np.ndarray:
        """(k, S, F) unit feature shapes of every cluster moved by each of ``velocities`` (S,).

        One evaluation of the spline moves every cluster: twice as fast as one
        per cluster, with the same values.
        """
        spectra = np.moveaxis(self.spline(self.shifter.positions(velocities)), -1, 0)
        return self._unit_features(np.arange(self.means.shape[0]), spectra)

    def _unit_features(self, clusters: np.ndarray, spectra: np.ndarray) -> np.ndarray:
        """(m, S, F) unit features of the moved spectra (m, S, C) of ``clusters``, all in one transform."""
        n_velocities = spectra.shape[1]
        flat = spectra.reshape(-1, spectra.shape[-1]).astype(np.float32)
        variances = None
        if self.mean_variances is not None:
            variances = np.repeat(self.mean_variances[clusters].astype(np.float32), n_velocities, axis=0)
        features = self.shifter.preprocessor.transform(flat, variances)
        features = features.reshape(clusters.size, n_velocities, -1) + self.offsets[clusters][:, None, :]
        norms = np.linalg.norm(features, axis=2, keepdims=True)
        return features / np.maximum(norms, np.float32(1e-12))

    def explained(
        self, features: np.ndarray, labels: np.ndarray, clusters: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Most of each cluster's energy that another cluster's shape explains at one velocity.

        The best other cluster and velocity of :data:`VELOCITIES`, then the
        best of :data:`FINE_OFFSETS` around that velocity; each pixel with its
        best amplitude >= 0 (the Gaussian model's ``max(x . m, 0)^2``).

        Parameters
        ----------
        features
            (n, F) features of the pixels of ``labels``.
        labels
            (n,) cluster 0..k-1 of each pixel.
        clusters
            (m,) the clusters to explain, each with pixels.

        Returns
        -------
        energies, others
            (m,) the energy explained, and which cluster explains it.
        """
        k = self.means.shape[0]
        coarse = self.shapes_at(VELOCITIES)
        members = [features[labels == cluster] for cluster in clusters]
        energies, others, centres = [], [], []
        for cluster, pixels in zip(clusters, members, strict=True):
            energy = _energy(pixels, coarse.reshape(-1, coarse.shape[2])).reshape(k, VELOCITIES.size)
            energy[cluster] = -np.inf
            other, index = np.unravel_index(int(energy.argmax()), energy.shape)
            energies.append(float(energy[other, index]))
            others.append(int(other))
            centres.append(VELOCITIES[index])
        fine = self.shapes(np.array(others), np.array(centres)[:, None] + FINE_OFFSETS)
        for row, pixels in enumerate(members):
            energies[row] = max(energies[row], float(_energy(pixels, fine[row]).max()))
        return np.array(energies), np.array(others)


def _energy(members: np.ndarray, shapes: np.ndarray) -> np.ndarray:
    """(S,) energy of ``members`` explained by each of ``shapes`` with amplitudes >= 0."""
    projections = members @ shapes.astype(members.dtype).T
    return (np.maximum(projections, 0.0) ** 2).sum(axis=0, dtype=np.float64)
