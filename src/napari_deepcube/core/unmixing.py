"""Non-negative unmixing of every pixel at once: what share of each material it holds.

A reflectance pixel is a linear mixture of a few materials (tree crowns over
soil, a shoreline), so its class is the material it holds most of, as the
abundance maps of Jasper Ridge define its classes. Each pixel's abundances
are the non-negative least-squares fit of its features by the clusters'
mean features (the materials).

scipy's ``nnls`` solves one pixel per call: 30-70 microseconds each for 4-12
materials, two to five minutes for a cube of four million pixels, holding the
interpreter's lock.
Here the Lawson-Hanson active-set method runs on all pixels of a block
together: the same steps as scipy's, each step solving one small linear
system per passive set for all the pixels that share it.
"""

from __future__ import annotations

import numpy as np

#: Most steps of either loop, per material; Lawson-Hanson ends in far fewer.
_STEPS_PER_MATERIAL = 3


def abundances(features: np.ndarray, materials: np.ndarray) -> np.ndarray:
    """The non-negative a (n, k) minimising ``|x - a @ materials|^2`` for each pixel x of ``features``.

    Parameters
    ----------
    features
        (n, F) pixels.
    materials
        (k, F) the materials' spectra, in the features' units.
    """
    materials = np.asarray(materials, dtype=np.float64)
    gram = materials @ materials.T
    products = np.asarray(features, dtype=np.float64) @ materials.T
    return _active_set(gram, products)


def shares(amounts: np.ndarray) -> np.ndarray:
    """Each pixel's abundances (n, k) as shares summing to 1; a row of zeros stays zeros."""
    total = amounts.sum(axis=1, keepdims=True)
    return np.divide(amounts, total, out=np.zeros_like(amounts), where=total > 0)


def _active_set(gram: np.ndarray, products: np.ndarray) -> np.ndarray:
    """Lawson-Hanson on ``min a'Ga / 2 - b'a, a >= 0`` for every row b of ``products`` (n, k)."""
    n, k = products.shape
    amounts = np.zeros((n, k))
    passive = np.zeros((n, k), dtype=bool)
    # A gradient this small, next to the problem's own scale, is rounding.
    tolerance = 10 * k * np.finfo(np.float64).eps * (np.abs(products).max(axis=1) + np.abs(gram).max())
    rows = np.arange(n)
    for _ in range(_STEPS_PER_MATERIAL * k):
        descent = products[rows] - amounts[rows] @ gram
        descent[passive[rows]] = -np.inf
        entering = descent.argmax(axis=1)
        improves = descent[np.arange(rows.size), entering] > tolerance[rows]
        rows, entering = rows[improves], entering[improves]
        if rows.size == 0:
            break
        passive[rows, entering] = True
        _settle(gram, products, amounts, passive, rows)
    return amounts


def _settle(
    gram: np.ndarray, products: np.ndarray, amounts: np.ndarray, passive: np.ndarray, rows: np.ndarray
) -> None:
    """The inner loop for ``rows``: least squares on each passive set, stepping back where it leaves a >= 0.

    Updates ``amounts`` and ``passive`` in place.
    """
    for _ in range(_STEPS_PER_MATERIAL * gram.shape[0]):
        solution = _passive_solution(gram, products[rows], passive[rows])
        blocked = passive[rows] & (solution <= 0)
        done = ~blocked.any(axis=1)
        amounts[rows[done]] = solution[done]
        rows, solution, blocked = rows[~done], solution[~done], blocked[~done]
        if rows.size == 0:
            return
        current = amounts[rows]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(blocked, current / (current - solution), np.inf).min(axis=1, keepdims=True)
        current += step * (solution - current)
        still = passive[rows] & (current > 0)
        current[~still] = 0.0
        amounts[rows], passive[rows] = current, still


def _passive_solution(gram: np.ndarray, products: np.ndarray, passive: np.ndarray) -> np.ndarray:
    """Each row's unconstrained least squares on its passive materials, zero on the others.

    Rows with the same passive set share one system: it is solved once for all
    of them (a few hundred sets among tens of thousands of pixels).
    """
    solution = np.zeros(products.shape)
    order = np.lexsort(passive.T)
    ordered = passive[order]
    starts = 1 + np.flatnonzero((ordered[1:] != ordered[:-1]).any(axis=1))
    for rows in np.split(order, starts):
        used = passive[rows[0]]
        if used.any():
            system = gram[np.ix_(used, used)]
            solution[np.ix_(rows, used)] = np.linalg.solve(system, products[np.ix_(rows, used)].T).T
    return solution
