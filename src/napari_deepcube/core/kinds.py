"""The three kinds of data, each described once: its noise, its features and its tests of k.

Every decision that depends on the kind of data reads an attribute of its
:class:`DataKind` rather than comparing names, so that a fourth kind is one
more entry in :data:`DATA_KINDS`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataKind:
    """How one kind of data is modelled.

    Attributes
    ----------
    name
        ``"counts"``, ``"flux"`` or ``"reflectance"``.
    likelihood
        Noise model of the features: ``"multinomial"`` (photon counts per
        bin) or ``"gaussian"`` (whitened, unit noise).
    whitened
        Features are the channels with most signal over noise, divided by
        their noise level (else: all counts, summed into bins).
    continuum_removed
        Each spectrum's continuum is subtracted, leaving its emission lines.
    shared_noise_removed
        The variation every class shares (sky residuals, stellar absorption)
        is fitted and projected out of the features.
    mixing_test
        A split is refused when a cluster is a non-negative mix of the others
        (materials mix in reflectance; see :func:`~.kselect.mixing_ratio`).
    shift_test
        A split is refused when a cluster is another one at another velocity
        (see :func:`~.kselect.shift_gain`).
    coherence_test
        A split is refused when two clusters with a crowded frontier are
        interleaved pixel by pixel in the image (grains of one material; see
        :func:`~.kselect.pair_coherence`).
    held_out_choice
        Where the cube comes with per-voxel variances, k is chosen by the
        likelihood of sample pixels the candidates were not fitted to, not by
        the BIC (see :func:`~.kselect.choose_k`): where the class model holds
        (line fluxes, Gaussian noise of a known level), it finds faint classes
        that the BIC's penalty refuses.
    labels_by_abundance
        A pixel's class is the material it holds most of, in a non-negative
        unmixing by the classes' mean features (:meth:`~.mixture.Mixture.unmixing`),
        not the class most likely to have given it.
    """

    name: str
    likelihood: str
    whitened: bool
    continuum_removed: bool = False
    shared_noise_removed: bool = False
    mixing_test: bool = False
    shift_test: bool = False
    coherence_test: bool = False
    held_out_choice: bool = False
    labels_by_abundance: bool = False


#: Every kind of data, by name.
DATA_KINDS = {
    kind.name: kind
    for kind in (
        # Faint flux classes next to the sky are interleaved by noise along their
        # border: the coherence test cost the stress nebulae (docs/how-it-works.md).
        DataKind("counts", "multinomial", whitened=False, coherence_test=True),
        # Held-out likelihood chooses k only where the class model holds: on counts and
        # reflectance (and fluxes without their variances) it keeps rewarding cuts through
        # a class's own variation, as the BIC does (docs/how-it-works.md, sections 3 and 5).
        DataKind(
            "flux", "gaussian", whitened=True, continuum_removed=True, shared_noise_removed=True,
            shift_test=True, held_out_choice=True,
        ),
        # Within-class variation of reflectance is mixing with other classes, not
        # variation every class shares: removing it as shared noise removes classes.
        # A mixed pixel's class is its dominant material, as Jasper Ridge's truth is
        # defined; on continuous mixtures the likelihood's most probable class often
        # is not (docs/how-it-works.md, section 4).
        DataKind("reflectance", "gaussian", whitened=True, mixing_test=True, labels_by_abundance=True),
    )
}
