"""Each rule of choose_k on hand-built candidates: the rule decides, and nothing else does.

The gains are given in BIC penalties, so each case sits clearly on one side of
one rule's threshold; switching a rule off changes the k of its case.
"""

from dataclasses import replace

import numpy as np
import pytest

from napari_deepcube.core.kselect import (
    MAX_FRONTIER_DENSITY,
    MAX_MIXING_RATIO,
    MIN_RELATIVE_GAIN,
    MIN_SPATIAL_COHERENCE,
    MIXING_RATIO,
    SHIFT_GAIN,
    WEAK_SPLIT_PENALTIES,
    Candidate,
    bic_penalty,
    choose_k,
    pair_coherence,
)
from napari_deepcube.core.mixture import Mixture, MixtureFit

N_POINTS, N_FEATURES = 4000, 32
PENALTY = bic_penalty(N_FEATURES, N_POINTS)


def _candidates(gains, **per_k):
    """Candidates k = 2.. whose log-likelihood rises by ``gains`` (in BIC penalties) per split.

    ``per_k`` gives ``frontier``, ``coherence``, ``held_out`` (the held-out pixels'
    log-likelihoods, see :func:`_held_out`) or a kind's test (``MIXING_RATIO``,
    ``SHIFT_GAIN``) as {k: value}.
    """
    log_likelihood = 0.0
    found = {}
    for k in range(2, len(gains) + 3):
        if k > 2:
            log_likelihood += gains[k - 3] * PENALTY
        mixture = Mixture("multinomial", np.zeros((k, N_FEATURES)), np.full(k, 1 / k), np.arange(k))
        fit = MixtureFit(mixture, np.zeros((1, k), np.float32), log_likelihood, 1)
        frontier = per_k.get("frontier", {}).get(k, 0.9)
        coherence = per_k.get("coherence", {}).get(k, float("nan"))
        held_out = per_k.get("held_out", {}).get(k)
        own_fields = ("frontier", "coherence", "held_out")
        tests = {name: values[k] for name, values in per_k.items() if name not in own_fields and k in values}
        found[k] = Candidate(k, np.zeros(1, int), 0.5, fit, frontier, tests, coherence, held_out)
    return found


def test_a_split_that_gains_less_than_a_bic_penalty_stops_k():
    choice = choose_k(_candidates([10.0, 0.9]), N_POINTS)
    assert choice.k == 3 and "less than the BIC penalty" in choice.reason
    assert choose_k(_candidates([10.0, 1.1]), N_POINTS).k == 4


def test_a_small_gain_after_a_large_one_is_a_split_within_one_class():
    small = 1.2  # above the BIC penalty, below the weak-split floor, 0.6 % of the largest gain
    assert WEAK_SPLIT_PENALTIES > small and small < MIN_RELATIVE_GAIN * 200.0
    choice = choose_k(_candidates([200.0, small]), N_POINTS)
    assert choice.k == 3 and "of the largest split's gain" in choice.reason
    assert choose_k(_candidates([200.0, 2 * MIN_RELATIVE_GAIN * 200.0]), N_POINTS).k == 4


@pytest.mark.parametrize(
    ("frontier", "k"), [(MAX_FRONTIER_DENSITY - 0.2, 4), (MAX_FRONTIER_DENSITY + 0.2, 3)]
)
def test_a_weak_split_counts_only_across_an_empty_frontier(frontier, k):
    weak = 1.2 * WEAK_SPLIT_PENALTIES
    assert weak < MIN_RELATIVE_GAIN * 1000.0
    assert choose_k(_candidates([1000.0, weak], frontier={4: frontier}), N_POINTS).k == k


@pytest.mark.parametrize(
    ("coherence", "k"),
    [(MIN_SPATIAL_COHERENCE - 0.3, 3), (MIN_SPATIAL_COHERENCE + 0.2, 4), (float("nan"), 4)],
)
def test_a_split_interleaved_pixel_by_pixel_stops_k(coherence, k):
    """A strong split (a fair share of the largest gain) is refused when its halves are interleaved."""
    choice = choose_k(_candidates([10.0, 10.0], coherence={4: coherence}), N_POINTS)
    assert choice.k == k
    assert ("interleaved pixel by pixel" in choice.reason) == (k == 3)


def test_regions_are_coherent_and_a_cut_through_scattered_pixels_is_not():
    rng = np.random.default_rng(0)
    # Two halves of a 64 x 64 image, each pixel paired with its right-hand neighbour.
    regions = np.repeat(np.arange(64) >= 32, 64).reshape(64, 64).T.astype(int)
    scattered = rng.integers(0, 2, size=(64, 64))
    for image, expected in ((regions, 1.0), (scattered, 0.0)):
        coherence = pair_coherence(image[:, :-1].ravel(), image[:, 1:].ravel(), 2)
        assert coherence[0, 1] == pytest.approx(expected, abs=0.05)
        assert np.isnan(coherence[0, 0])


@pytest.mark.parametrize(("mixing", "k"), [(MAX_MIXING_RATIO + 0.3, 3), (MAX_MIXING_RATIO - 0.5, 4)])
def test_a_cluster_that_the_others_mix_into_stops_k(mixing, k):
    choice = choose_k(_candidates([10.0, 10.0], **{MIXING_RATIO: {4: mixing}}), N_POINTS)
    assert choice.k == k
    assert ("a mixture, not a material" in choice.reason) == (k == 3)


@pytest.mark.parametrize(("shift_penalties", "k"), [(0.5, 3), (3.0, 4)])
def test_a_cluster_that_is_another_at_a_velocity_stops_k(shift_penalties, k):
    choice = choose_k(_candidates([10.0, 10.0], **{SHIFT_GAIN: {4: shift_penalties * PENALTY}}), N_POINTS)
    assert choice.k == k
    assert ("two velocities" in choice.reason) == (k == 3)


N_HELD_OUT = 100
#: Each held-out pixel's share of a split's gain, about its mean: mean 0, standard deviation 1.
_SPREAD = np.random.default_rng(0).standard_normal(N_HELD_OUT)
_SPREAD = (_SPREAD - _SPREAD.mean()) / _SPREAD.std(ddof=1)


def _held_out(gains):
    """Held-out pixels' log-likelihoods of candidates k = 2..: from k - 1 to k, ``gains[k] = (mean, spread)``.

    Each pixel gains ``mean + spread * _SPREAD``: the split gains
    ``N_HELD_OUT * mean`` in all, with a standard error of ``sqrt(N_HELD_OUT) * spread``.
    """
    pixels = {2: np.zeros(N_HELD_OUT)}
    for k in sorted(gains):
        mean, spread = gains[k]
        pixels[k] = pixels[k - 1] + mean + spread * _SPREAD
    return pixels


#: Held-out gains, each well above its standard error, that rise up to k = 4, fall at 5 and rise again at 6.
HELD_OUT = _held_out({3: (1.0, 0.1), 4: (0.01, 0.001), 5: (-0.005, 0.001), 6: (0.5, 0.1)})


def test_with_held_out_pixels_a_split_counts_while_it_explains_them_better():
    """Every BIC gain is below a penalty, so the BIC rule would keep k = 2; the held-out pixels decide."""
    candidates = _candidates([0.5, 0.5, 0.5, 0.5], held_out=HELD_OUT)

    choice = choose_k(candidates, N_POINTS)

    assert choice.k == 4 and choice.refused == 5 and "held out of the fits" in choice.reason
    without = {k: replace(c, held_out=None) for k, c in candidates.items()}
    assert choose_k(without, N_POINTS).k == 2


@pytest.mark.parametrize(("spread", "k"), [(0.05, 4), (0.2, 3)])
def test_with_held_out_pixels_a_split_must_gain_more_than_its_standard_error(spread, k):
    """The split to 4 gains 1.0 in all; its pixels' gains spread 0.05 (standard error 0.5) or 0.2 (2.0)."""
    held_out = _held_out({3: (1.0, 0.1), 4: (0.01, spread), 5: (-0.005, 0.001)})

    choice = choose_k(_candidates([0.5, 0.5, 0.5], held_out=held_out), N_POINTS)

    assert choice.k == k
    assert ("no more than its standard error" in choice.reason) == (k == 3)


def test_with_held_out_pixels_the_bic_rules_against_a_split_within_one_class_do_not_apply():
    """A small gain after a large one, a crowded frontier, halves interleaved: the BIC rules refuse k = 4."""
    within_one_class = {"frontier": {4: MAX_FRONTIER_DENSITY + 0.2}, "coherence": {4: 0.0}}
    assert choose_k(_candidates([200.0, 1.2], **within_one_class), N_POINTS).k == 3

    assert choose_k(_candidates([200.0, 1.2], held_out=HELD_OUT, **within_one_class), N_POINTS).k == 4


WHOLE_SAMPLE_PENALTY = bic_penalty(N_FEATURES, N_POINTS + N_HELD_OUT)


@pytest.mark.parametrize(
    ("shift_gain", "k"),
    [(0.5 * PENALTY, 3), (0.5 * (PENALTY + WHOLE_SAMPLE_PENALTY), 3), (3.0 * WHOLE_SAMPLE_PENALTY, 4)],
)
def test_with_held_out_pixels_a_velocity_copy_still_stops_k(shift_gain, k):
    """The shift gain is measured on the whole sample, held-out pixels too: so is its penalty."""
    shifted = {SHIFT_GAIN: {4: shift_gain}}
    choice = choose_k(_candidates([0.5, 0.5, 0.5, 0.5], held_out=HELD_OUT, **shifted), N_POINTS)

    assert choice.k == k
    assert ("two velocities" in choice.reason) == (k == 3)


def test_without_a_likelihood_the_highest_silhouette_wins():
    candidates = {
        k: Candidate(k, np.zeros(1, int), score, None) for k, score in ((2, 0.3), (3, 0.7), (4, 0.5))
    }
    choice = choose_k(candidates, N_POINTS)
    assert choice.k == 3 and "silhouette" in choice.reason


#: Words of the statistics that a plain-language summary must not use.
JARGON = ("BIC", "penalt", "frontier", "silhouette", "likelihood", "density")


@pytest.mark.parametrize(
    ("gains", "per_k", "says"),
    [
        ([10.0, 0.9], {}, "better than noise"),
        ([200.0, 1.2], {}, "cut one material in two"),
        ([10.0, 10.0], {MIXING_RATIO: {4: MAX_MIXING_RATIO + 0.3}}, "mix of the others"),
        ([10.0, 10.0], {SHIFT_GAIN: {4: 0.5 * PENALTY}}, "two velocities"),
        ([10.0, 10.0], {"coherence": {4: 0.0}}, "scattered through the same regions"),
        ([0.5, 0.5, 0.5, 0.5], {"held_out": HELD_OUT}, "not fitted to"),
        ([10.0, 10.0], {}, "raise the largest k"),
    ],
)
def test_each_stop_has_a_plain_summary_and_the_numbers_stay_in_the_reason(gains, per_k, says):
    choice = choose_k(_candidates(gains, **per_k), N_POINTS)

    assert says in choice.summary and choice.summary.startswith(f"{choice.k} clusters")
    assert not any(word in choice.summary for word in JARGON)
    assert any(char.isdigit() for char in choice.reason.replace(f"k={choice.k}", ""))


def test_clusters_supported_but_overlapping_are_not_called_well_separated():
    candidates = {k: replace(c, silhouette=0.01) for k, c in _candidates([10.0, 10.0]).items()}

    choice = choose_k(candidates, N_POINTS)

    assert "grade into each other" in choice.summary and "silhouette 0.010" in choice.reason
    assert "grade into each other" not in choose_k(_candidates([10.0, 10.0]), N_POINTS).summary
