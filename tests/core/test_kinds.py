"""Each kind of data is described once, and the features follow its description."""

import numpy as np
import pytest

from napari_deepcube.core.kinds import DATA_KINDS
from napari_deepcube.core.preprocess import fit_and_transform
from napari_deepcube.core.preprocess_config import KINDS, PreprocessConfig


def test_every_kind_a_user_can_choose_has_a_description():
    assert set(DATA_KINDS) == set(KINDS) - {"auto"}


@pytest.mark.parametrize("name", sorted(DATA_KINDS))
def test_the_preprocessor_follows_its_kinds_description(name, rng):
    kind = DATA_KINDS[name]
    spectra = rng.poisson(20.0, size=(400, 128)).astype(np.float32)
    neighbours = rng.poisson(20.0, size=(400, 128)).astype(np.float32)
    preprocessor = fit_and_transform(PreprocessConfig(kind=name, max_features=32), spectra, neighbours)[0]
    assert preprocessor.data_kind is kind and preprocessor.likelihood == kind.likelihood
    assert (preprocessor.sigma is not None) == kind.whitened
    if not kind.shared_noise_removed:
        assert preprocessor.shared_noise is None
