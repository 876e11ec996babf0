"""A FITS cube opened in napari keeps its STAT for the widget's run, which gives the command line's labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import RUN_TIMEOUT_MS
from napari_deepcube._widgets._jobs import make_config
from napari_deepcube._widgets._layers import cube_variance
from napari_deepcube._widgets._segment import SegmentationWidget
from napari_deepcube.cli import main
from napari_deepcube.core.io import read_cube, read_labels_tiff

pytest.importorskip("astropy.io.fits")


def test_the_widgets_run_on_a_fits_with_stat_gives_the_command_lines_labels(
    make_napari_viewer: Any,
    qtbot: Any,
    heteroscedastic_fits: tuple[Path, np.ndarray],
    variance_run: dict[str, int],
    tmp_path: Path,
) -> None:
    path, _ = heteroscedastic_fits
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="napari-deepcube")
    # The layer shows DATA; its record keeps the STAT beside it, in the core's (H, W, C) order.
    variance = cube_variance(layer)
    assert layer.data.shape == (240, 48, 48) and variance is not None
    np.testing.assert_array_equal(np.asarray(variance), np.asarray(read_cube(path).variance))
    segment = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(segment, name="Deep spectral segmentation")
    qtbot.waitUntil(lambda: segment.engine_ready, timeout=RUN_TIMEOUT_MS)
    segment.settings.set_values(k=None, **{k: v for k, v in variance_run.items() if k != "k"})
    segment.train()
    qtbot.waitUntil(lambda: not segment.is_busy, timeout=RUN_TIMEOUT_MS)
    result = segment.segmentation
    assert result is not None and result.noise is not None and result.noise.source == "variance"
    assert "Noise: each pixel's own noise" in segment.model_label.text()

    labels = tmp_path / "cli.tif"
    options = [f"--{name.replace('_', '-')}={value}" for name, value in variance_run.items()]
    assert main(["segment", str(path), "-o", str(labels), "--quiet", *options]) == 0
    np.testing.assert_array_equal(result.labels, read_labels_tiff(labels)[0])


def test_the_forms_variance_box_switches_them_off(make_napari_viewer: Any) -> None:
    segment = SegmentationWidget(make_napari_viewer())
    assert make_config(segment.settings.values()).variance
    segment.settings.set_values(variance=False)
    assert not make_config(segment.settings.values()).variance
