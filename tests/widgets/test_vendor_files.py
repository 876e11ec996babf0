"""Instrument files opened in a real napari viewer through the plugin's reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from napari_deepcube import _reader
from napari_deepcube._layer_records import cube_record

pytest.importorskip("rsciio")


def _open(viewer: Any, path: Path) -> list[Any]:
    return viewer.open(str(path), plugin="napari-deepcube")


def test_a_bruker_map_opens_as_its_cube_over_its_electron_images(
    make_napari_viewer: Any, shared_data: Path
) -> None:
    viewer = make_napari_viewer()
    _open(viewer, shared_data / "vendor" / "P45_the_default_job.bcf")
    names = [layer.name for layer in viewer.layers]
    assert names == ["P45_the_default_job [0: BSE]", "P45_the_default_job [1: SE]", "P45_the_default_job"]
    cube = viewer.layers["P45_the_default_job"]
    assert cube.data.shape == (2048, 75, 100) and cube.visible
    assert cube.axis_labels[0] == "Energy"
    record = cube_record(cube.metadata, 2048)
    assert record is not None and record.axis.unit == "keV"
    images = [layer for layer in viewer.layers if layer is not cube]
    assert all(layer.data.shape == (75, 100) and not layer.visible for layer in images)


def test_a_raman_map_brings_its_white_light_image_where_the_file_puts_it(
    make_napari_viewer: Any, shared_data: Path
) -> None:
    viewer = make_napari_viewer()
    _open(viewer, shared_data / "vendor" / "renishaw_test_map2.wdf")
    light, cube = viewer.layers
    assert light.rgb and light.data.shape == (480, 752, 3)
    np.testing.assert_allclose(light.scale, (0.80, 0.806), atol=1e-3)
    record = cube_record(cube.metadata, 1015)
    assert record is not None and record.axis.unit == "nm" and cube.data.shape == (1015, 20, 20)


def test_a_single_spectrum_is_a_message_and_no_layer(
    make_napari_viewer: Any, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown: list[str] = []
    monkeypatch.setattr(_reader, "_notify_error", shown.append)
    viewer = make_napari_viewer()
    _open(viewer, shared_data / "vendor" / "bruker_m6_jetstream_file_example.spx")
    assert len(viewer.layers) == 0
    assert len(shown) == 1 and "single spectrum" in shown[0]
