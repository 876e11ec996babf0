"""A rotating disk of two kinds of ionised gas, as a MUSE cube sees it: the rest-frame tests' cube."""

import numpy as np

C_KMS = 299_792.458
#: MUSE's sampling: 1.25 Å channels over 4750-9350 Å (features bin 3.6 channels, as on MUSE).
WAVELENGTHS = 4750.0 + 1.25 * np.arange(3681)
#: Hβ, [OIII], Hα and [NII]: two kinds of gas with the same Balmer lines and other forbidden lines.
HIGH_IONISATION = {4861.3: 1.0, 5006.8: 3.0, 6562.8: 2.8, 6583.4: 0.3}
LOW_IONISATION = {4861.3: 1.0, 5006.8: 0.3, 6562.8: 2.8, 6583.4: 1.5}
SIZE = 30
#: Peak of a line of unit ratio over the noise: [OIII] at 5-12 noise levels, as a MUSE HII region's.
BRIGHTNESS = 3.0


def _lines(ratios: dict[float, float], velocities: np.ndarray) -> np.ndarray:
    """(n, C) lines of σ = 1.2 Å at ``velocities`` (n,) km/s."""
    spectra = np.zeros((velocities.size, WAVELENGTHS.size))
    for rest, flux in ratios.items():
        centres = rest * (1 + velocities / C_KMS)
        spectra += flux * np.exp(-0.5 * ((WAVELENGTHS[None, :] - centres[:, None]) / 1.2) ** 2)
    return spectra


def rotating_disk(
    seed: int, faint_share: float = 1.0, sky: bool = True, speed: float = 200.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A rotating disk: sky in the top rows (unless not ``sky``), then two kinds of gas in bands.

    The disk turns about the image's vertical axis, -``speed`` to +``speed`` km/s
    from left to right, so each gas spans the whole velocity range; unit Gaussian noise with
    its variances; the second gas is ``faint_share`` times as bright as the
    first; the channels' wavelengths are :data:`WAVELENGTHS`.

    Returns
    -------
    data, variance
        (H, W, C) sky-subtracted fluxes (around zero) and their variances.
    labels
        (H, W) the true classes: 1 sky, 2 and 3 the gases (without sky, in halves).
    velocity
        (H, W) every pixel's line-of-sight velocity, km/s.
    """
    rng = np.random.default_rng(seed)
    columns = np.arange(SIZE)
    velocity = np.broadcast_to(speed * np.tanh((columns - SIZE / 2 + 0.5) / (SIZE / 6)), (SIZE, SIZE))
    classes = [1, 2, 3] if sky else [2, 3]
    labels = np.repeat(classes, SIZE // len(classes))[:, None].repeat(SIZE, axis=1)
    signal = np.zeros((SIZE * SIZE, WAVELENGTHS.size))
    gases = ((2, HIGH_IONISATION, BRIGHTNESS), (3, LOW_IONISATION, BRIGHTNESS * faint_share))
    for label, ratios, brightness in gases:
        pixels = (labels == label).ravel()
        amplitude = brightness * rng.uniform(0.7, 1.4, (pixels.sum(), 1))
        signal[pixels] = amplitude * _lines(ratios, velocity.ravel()[pixels])
    data = (signal + rng.standard_normal(signal.shape)).reshape(SIZE, SIZE, -1).astype(np.float32)
    return data, np.ones_like(data), labels, np.array(velocity)


