"""One source of settings: their defaults, ranges and choices, and the settings a reused model keeps."""

import re
import subprocess
import sys

import numpy as np
import pytest

from napari_deepcube.cli import CLI_SETTINGS, build_parser
from napari_deepcube.core.config import RUN_SETTINGS, SegmentConfig, settings
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.pipeline import segment
from napari_deepcube.core.synthetic import make_painting


def test_the_settings_and_the_result_types_import_without_torch():
    code = (
        "import sys; import napari_deepcube.core.config, napari_deepcube.core.segmentation; "
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_command_line_shows_the_configs_defaults_and_choices():
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    actions = {a.dest: a for a in subparsers.choices["segment"]._actions}
    defaults = SegmentConfig()
    for name in CLI_SETTINGS:
        setting, action = settings()[name], actions[name]
        assert action.default is None  # unset options take the preset's value
        shown = re.search(r"\(default (.+)\)$", action.help)
        if getattr(defaults, name) in (None, ""):  # nothing chosen: the help says what that means
            assert shown is None
        else:
            assert shown is not None and shown.group(1) == str(getattr(defaults, name)), name
        assert tuple(action.choices or ()) == setting.choices


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"seed": -1}, "--seed"),
        ({"spatial_weight": float("inf")}, "--spatial-weight"),
        ({"learning_rate": float("nan")}, "--learning-rate"),
        ({"k": 0}, "--k "),
        ({"n_train": 8}, "--n-train"),
        ({"model": "transformer"}, "unknown model"),
        ({"k_min": 6, "k_max": 3}, "k range"),
    ],
)
def test_every_setting_is_checked_against_its_declared_range(values, words):
    with pytest.raises(InputError, match=re.escape(words)):
        SegmentConfig(**values)


def test_a_reused_model_reports_its_own_settings(small_painting):
    trained = segment(
        small_painting.cube,
        SegmentConfig(model="vae", latent_dim=3, k=3, epochs=2, n_train=600, preview_every=0),
    )
    other = make_painting(height=24, width=24, n_channels=256, counts_per_pixel=500.0, seed=5)
    caller = SegmentConfig(seed=4, epochs=7, preview_every=0)
    result = segment(other.cube, caller, model=trained.model)
    report = result.report()["config"]
    assert report["model"] == "vae" and report["latent_dim"] == 3 and report["epochs"] == 2
    assert all(report[name] == getattr(caller, name) for name in RUN_SETTINGS)
    assert np.unique(result.labels[result.labels > 0]).size <= 3
