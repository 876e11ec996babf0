"""The segmentation form shows the defaults of SegmentConfig, the one place they are declared."""

from napari_deepcube._widgets._jobs import make_config
from napari_deepcube._widgets._settings import SettingsForm
from napari_deepcube.cli import _config, build_parser
from napari_deepcube.core.config import SegmentConfig


def test_the_form_starts_at_the_configs_defaults(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form.widget)
    values = form.values()
    defaults = SegmentConfig()
    for name in (
        "model", "latent_dim", "epochs", "k", "k_min", "k_max", "n_train", "seed", "kind", "device",
        "rest_frame",
    ):
        assert values[name] == getattr(defaults, name), name
    config = make_config(values)
    assert config.epochs == defaults.epochs and config.n_train == defaults.n_train


def test_the_paper_preset_takes_its_values_from_the_config(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form.widget)
    form.preset.value = "paper"
    paper = SegmentConfig.paper()
    assert form.values()["model"] == paper.model and form.values()["latent_dim"] == paper.latent_dim


def test_the_widget_runs_with_the_command_lines_config(qtbot, tmp_path):
    # The same work as `deepcube segment`, but for the preview maps only the widget shows.
    form = SettingsForm()
    qtbot.addWidget(form.widget)
    args = build_parser().parse_args(["segment", str(tmp_path / "cube.npy"), "-o", "labels.tif"])

    widget, command_line = make_config(form.values()).to_dict(), _config(args).to_dict()

    assert widget.pop("preview_every") == SegmentConfig().preview_every > 0
    assert command_line.pop("preview_every") == 0
    assert widget == command_line


def test_the_frame_is_chosen_in_three_words(qtbot):
    form = SettingsForm()
    qtbot.addWidget(form.widget)
    assert form.rest_frame.value == "auto" and form.values()["rest_frame"] is None
    for value in (True, False, None):
        form.set_values(rest_frame=value)
        assert form.values()["rest_frame"] is value
    assert list(form.rest_frame.choices) == ["auto", "at rest", "observed"]
