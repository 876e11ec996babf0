"""Fixtures for the reader and writer tests (``shared_data`` comes from tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepcube.core.cube import Datacube

#: Distinct sizes so that any transposition bug changes the shape.
SHAPE = (5, 7, 11)


@pytest.fixture
def array() -> np.ndarray:
    """A (5, 7, 11) uint16 cube whose every value is different and non-zero."""
    return np.arange(1, 1 + np.prod(SHAPE), dtype=np.uint16).reshape(SHAPE)


@pytest.fixture
def energies() -> np.ndarray:
    return np.linspace(0.5, 10.5, SHAPE[2])


@pytest.fixture
def cube(array: np.ndarray, energies: np.ndarray) -> Datacube:
    return Datacube.from_array(array, spectral_values=energies, spectral_unit="keV", spectral_label="Energy")
