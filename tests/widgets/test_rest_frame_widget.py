"""The widget's "rest frame" box: the command line's labels, and the velocities as a layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import RUN_TIMEOUT_MS
from napari_deepcube._widgets._results import VELOCITIES_NAME
from napari_deepcube._widgets._segment import SegmentationWidget
from napari_deepcube.cli import main
from napari_deepcube.core.io import read_labels_tiff

pytest.importorskip("astropy.io.fits")

RUN = {"epochs": 6, "n_train": 600, "k_min": 2, "k_max": 6, "seed": 0}


def test_a_rest_frame_run_in_the_widget_shows_the_velocities_and_the_command_lines_labels(
    make_napari_viewer: Any,
    qtbot: Any,
    disk_fits: tuple[Path, np.ndarray, np.ndarray],
    tmp_path: Path,
    errors: list[str],
) -> None:
    path, _, _ = disk_fits
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-deepcube")
    segment = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(segment, name="Deep spectral segmentation")
    qtbot.waitUntil(lambda: segment.engine_ready, timeout=RUN_TIMEOUT_MS)
    segment.settings.set_values(k=None, rest_frame=True, **{k: v for k, v in RUN.items() if k != "k"})
    segment.train()
    qtbot.waitUntil(lambda: not segment.is_busy, timeout=RUN_TIMEOUT_MS)
    result = segment.segmentation
    assert result is not None and result.velocities is not None
    layer = viewer.layers[VELOCITIES_NAME]
    np.testing.assert_array_equal(np.asarray(layer.data), result.velocities)
    low, high = layer.contrast_limits
    assert low == -high and high > 150  # zero at the centre of the colours: the disk's two sides

    labels = tmp_path / "cli.tif"
    options = [f"--{name.replace('_', '-')}={value}" for name, value in RUN.items()]
    assert main(["segment", str(path), "-o", str(labels), "--rest-frame", "--quiet", *options]) == 0
    np.testing.assert_array_equal(result.labels, read_labels_tiff(labels)[0])

    # A run without it on the same cube takes the velocities away with it.
    segment.settings.set_values(rest_frame=False)
    segment.train()
    qtbot.waitUntil(lambda: not segment.is_busy, timeout=RUN_TIMEOUT_MS)
    assert segment.segmentation is not None and segment.segmentation.velocities is None
    assert VELOCITIES_NAME not in viewer.layers

    # That model was trained in the observed frame: applying it at rest is refused, and nothing is drawn.
    layers = len(viewer.layers)
    segment.settings.set_values(rest_frame=True)
    segment.apply_model()
    qtbot.waitUntil(lambda: not segment.is_busy, timeout=RUN_TIMEOUT_MS)
    assert len(errors) == 1 and "trained without it" in errors[0]
    assert len(viewer.layers) == layers and segment.segmentation.velocities is None
