"""Fixtures shared by the whole test suite."""

from __future__ import annotations

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
