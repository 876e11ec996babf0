"""Element and window maps written as a float32 TIFF stack and read back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_deepcube.core.element_maps import line_window, parse_lines, range_window
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io.maps import read_maps_tiff, write_maps_tiff
from napari_deepcube.core.io.outputs import TEMPORARY_SUFFIX
from napari_deepcube.core.spectral import SpectralAxis

AXIS = SpectralAxis(np.linspace(0.01, 20.0, 1000), "keV", "Energy")


def test_maps_round_trip_with_their_lines_and_units(tmp_path, rng):
    windows = [line_window(AXIS, line) for line in parse_lines("Pb La, Fe Ka")]
    windows.append(range_window(AXIS, 6.2, 6.6))
    maps = rng.normal(size=(3, 12, 17))
    path = write_maps_tiff(tmp_path / "maps.tif", maps, [w.facts() for w in windows])

    read, facts = read_maps_tiff(path)
    assert read.dtype == np.float32 and read.shape == (3, 12, 17)
    np.testing.assert_array_equal(read, maps.astype(np.float32))
    assert [f["name"] for f in facts] == ["Pb Lα", "Fe Kα", "6.2-6.6 keV"]
    assert [f["quantity"] for f in facts] == ["net counts", "net counts", "sum"]
    assert facts[0]["unit"] == "keV" and facts[0]["window"] == pytest.approx(list(windows[0].window))
    assert len(facts[0]["background"]) == 2 and facts[2]["background"] == []
    # Any TIFF reader finds the description.
    with tifffile.TiffFile(path) as tif:
        assert json.loads(tif.pages[0].description)["software"].startswith("napari-deepcube")
    assert not list(tmp_path.glob(f"*{TEMPORARY_SUFFIX}"))


def test_one_map_reads_back_as_a_stack_of_one(tmp_path):
    window = range_window(AXIS, 1.0, 2.0, "mean")
    path = write_maps_tiff(tmp_path / "one.tif", np.ones((1, 5, 6)), [window.facts()])
    read, facts = read_maps_tiff(path)
    assert read.shape == (1, 5, 6) and facts[0]["quantity"] == "mean"


def test_bad_maps_and_foreign_tiffs_are_refused_and_nothing_is_written(tmp_path):
    target = tmp_path / "maps.tif"
    with pytest.raises(InputError, match="one description each"):
        write_maps_tiff(target, np.ones((2, 4, 4)), [{"name": "x"}])
    with pytest.raises(InputError, match="existing folder"):
        write_maps_tiff(tmp_path, np.ones((1, 4, 4)), [{"name": "x"}])
    assert list(tmp_path.iterdir()) == []
    tifffile.imwrite(target, np.ones((4, 4), np.float32))
    with pytest.raises(InputError, match="no maps description"):
        read_maps_tiff(target)
    with pytest.raises(InputError, match="does not exist"):
        read_maps_tiff(tmp_path / "missing.tif")
