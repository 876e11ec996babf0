"""`deepcube segment` and `deepcube convert` on the real instrument files in shared/data/vendor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_deepcube.cli import main
from napari_deepcube.core.io import read_cube

pytest.importorskip("rsciio")

FAST = ["--epochs", "2", "--n-train", "600", "--k-max", "4"]

#: Each spectrum image with the unit its axis must carry in the report.
SPECTRUM_IMAGES = {
    "P45_the_default_job.bcf": "keV",
    "test_TEM.bcf": "keV",
    "bcf_v2_50x50px.bcf": "keV",
    "30x30_instructively_packed_16bit_compressed.bcf": "keV",
    "Hitachi_TM3030Plus.bcf": "keV",
    "bcf-edx-ebsd.bcf": "keV",
    "View000_0000006.pts": "keV",
    "renishaw_test_map2.wdf": "nm",
    "renishaw_test_streamline.wdf": "cm-1",
    "test_hyperspectral.h5": "nm",
    "test_ripple_sdim-1_ndim-2_float32_meta.rpl": "eV",
}


@pytest.mark.parametrize("name", sorted(SPECTRUM_IMAGES))
def test_segment_each_vendor_file(
    shared_data: Path, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = shared_data / "vendor" / name
    labels, report, spectra = tmp_path / "labels.tif", tmp_path / "report.json", tmp_path / "spectra.csv"
    argv = ["segment", str(source), "-o", str(labels), "--report", str(report), "--spectra", str(spectra)]
    assert main([*argv, *FAST]) == 0, capsys.readouterr().err
    label_map = tifffile.imread(labels)
    content = json.loads(report.read_text())
    assert list(label_map.shape) == content["image_shape"] == content["input"]["shape"][:2]
    assert content["k"] == int(label_map.max()) >= 1
    assert SPECTRUM_IMAGES[name] in spectra.read_text().splitlines()[0]


def test_a_single_spectrum_exits_2_with_one_line(shared_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "labels.tif"
    spectrum = shared_data / "vendor" / "bruker_m6_jetstream_file_example.spx"
    status = main(["segment", str(spectrum), "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "single spectrum" in err and not out.exists()


def test_convert_a_bruker_map_to_zarr_keeps_its_energy_axis(shared_data: Path, tmp_path: Path) -> None:
    store = tmp_path / "p45.zarr"
    source = shared_data / "vendor" / "P45_the_default_job.bcf"
    assert main(["convert", str(source), str(store), "--quiet"]) == 0
    converted, original = read_cube(store), read_cube(source)
    np.testing.assert_array_equal(np.asarray(converted.data), np.asarray(original.data))
    np.testing.assert_allclose(converted.spectral_values, original.spectral_values)
    assert converted.spectral_unit == "keV"
