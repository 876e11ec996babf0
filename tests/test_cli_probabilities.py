"""``deepcube segment --probabilities FILE``: each cluster's probability map, written safely."""

import json

import numpy as np
import pytest
import tifffile

from napari_deepcube.cli import main
from napari_deepcube.core.io.outputs import TEMPORARY_SUFFIX

FAST = ["--epochs", "3", "--n-train", "800", "--k", "3"]


def _run(argv, capsys):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _snapshot(folder):
    return {
        path.relative_to(folder): (path.read_bytes() if path.is_file() else None)
        for path in sorted(folder.rglob("*"))
    }


@pytest.fixture
def painting_file(small_painting, tmp_path):
    """The painting as a (C, H, W) TIFF stack: an input a probabilities TIFF could overwrite."""
    path = tmp_path / "painting.tif"
    tifffile.imwrite(path, np.moveaxis(np.asarray(small_painting.cube.data), -1, 0).astype(np.uint16))
    return path


def test_the_probability_maps_are_k_float32_pages_that_make_the_labels(painting_file, tmp_path, capsys):
    labels_path, maps_path, report_path = tmp_path / "labels.tif", tmp_path / "maps.tif", tmp_path / "r.json"
    status, _, stderr = _run(
        ["segment", painting_file, "-o", labels_path, "--probabilities", maps_path, "--report", report_path,
         *FAST], capsys,
    )
    assert status == 0, stderr
    labels = tifffile.imread(labels_path)
    with tifffile.TiffFile(maps_path) as tif:
        maps = tif.asarray()
        description = json.loads(tif.pages[0].description)
    k = json.loads(report_path.read_text())["k"]
    assert maps.shape == (k, 48, 48) and maps.dtype == np.float32
    assert description["pages"] == [f"cluster {i}" for i in range(1, k + 1)]
    assert description["cube"] == "painting"
    np.testing.assert_allclose(maps.sum(axis=0), 1.0, atol=1e-5)
    assert np.array_equal(maps.argmax(axis=0) + 1, labels)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("maps.png", "written as a .tif file"),
        ("painting.tif", "would be overwritten"),
        ("folder.tif", "existing folder"),
        ("labels.tif", "same file"),
        ("missing/maps.tif", "does not exist"),
    ],
)
def test_a_bad_probabilities_path_exits_2_with_one_line_and_writes_nothing(
    name, words, painting_file, tmp_path, capsys
):
    (tmp_path / "folder.tif").mkdir()
    before = _snapshot(tmp_path)
    status, _, stderr = _run(
        ["segment", painting_file, "-o", tmp_path / "labels.tif", "--probabilities", tmp_path / name, *FAST],
        capsys,
    )
    assert status == 2 and words in stderr
    assert stderr.startswith("deepcube: error:") and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert _snapshot(tmp_path) == before


def test_maps_that_cannot_be_written_leave_no_output_half_way(painting_file, tmp_path, capsys):
    # /proc accepts no new file: the maps fail after the labels were written to a temporary.
    before = _snapshot(tmp_path)
    status, _, stderr = _run(
        ["segment", painting_file, "-o", tmp_path / "labels.tif",
         "--probabilities", "/proc/deepcube-maps.tif", *FAST], capsys,
    )
    assert status == 2 and "deepcube-maps.tif" in stderr
    assert _snapshot(tmp_path) == before
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(TEMPORARY_SUFFIX)]
