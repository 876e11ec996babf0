"""``deepcube segment --mask / --channels / --range``: real runs, exit codes, nothing written on failure."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.cli import main
from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.io import write_cube

FAST = ["--epochs", "4", "--n-train", "800", "--k", "2"]
N_CHANNELS = 64


@pytest.fixture(scope="module")
def halves(tmp_path_factory):
    """A calibrated TIFF cube (0.1 keV per channel) of two halves that differ only in channels 44..51."""
    rng = np.random.default_rng(0)
    channels = np.arange(N_CHANNELS)
    shared = 2.0 + 30.0 * np.exp(-0.5 * ((channels - 15) / 3.0) ** 2)
    extra = np.where((channels >= 44) & (channels < 52), 12.0, 0.0)
    truth = np.zeros((32, 32), dtype=int)
    truth[:, 16:] = 1
    counts = rng.poisson(np.where(truth[..., None] == 1, shared + extra, shared)).astype(np.uint16)
    path = tmp_path_factory.mktemp("cube") / "halves.tif"
    write_cube(path, Datacube.from_array(counts, spectral_values=0.1 * channels, spectral_unit="keV"))
    return path, truth


def _deepcube(*argv):
    """``deepcube`` as a separate process, as a script would run it."""
    return subprocess.run(
        [sys.executable, "-m", "napari_deepcube.cli", *map(str, argv)], capture_output=True, text=True,
        check=False,
    )


def _one_line(stderr):
    return stderr.startswith("deepcube: error:") and stderr.count("\n") == 1 and "Traceback" not in stderr


def test_a_masked_run_labels_only_the_mask_and_reports_it(halves, tmp_path):
    cube, _ = halves
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[2:30, 4:20] = 3  # a label image: any nonzero value is inside
    mask_file = tmp_path / "mask.png"
    Image.fromarray(mask).save(mask_file)
    out, report = tmp_path / "labels.tif", tmp_path / "report.json"
    done = _deepcube("segment", cube, "-o", out, "--report", report, "--mask", mask_file, *FAST)
    assert done.returncode == 0, done.stderr
    labels = tifffile.imread(out)
    np.testing.assert_array_equal(labels > 0, mask > 0)
    content = json.loads(report.read_text())
    assert content["mask"] == {"file": str(mask_file), "n_pixels": 28 * 16}
    assert content["n_pixels"] == 28 * 16 == sum(content["cluster_sizes"])


def test_a_channel_range_run_learns_only_from_those_channels(halves, tmp_path):
    cube, truth = halves
    runs = {}
    for name, option in (("inside", ["--range", "4.0:6.3"]), ("outside", ["--channels", "0:40"])):
        out, report = tmp_path / f"{name}.tif", tmp_path / f"{name}.json"
        spectra = tmp_path / f"{name}.csv"
        done = _deepcube("segment", cube, "-o", out, "--report", report, "--spectra", spectra, *option, *FAST)
        assert done.returncode == 0, done.stderr
        runs[name] = (tifffile.imread(out), json.loads(report.read_text()), spectra.read_text().splitlines())
    labels, report, csv = runs["inside"]
    assert adjusted_rand_score(truth.ravel(), labels.ravel()) > 0.95
    assert report["channels"] == {"n_used": 24, "n_channels": 64, "ranges": [[40, 64]]}
    assert report["config"]["spectral_range"] == "4.0:6.3" and report["config"]["channels"] == ""
    assert len(csv) == 1 + N_CHANNELS  # the cluster spectra are reported whole
    labels, report, _ = runs["outside"]
    assert adjusted_rand_score(truth.ravel(), labels.ravel()) < 0.1
    assert report["channels"]["ranges"] == [[0, 40]]


def test_a_saved_model_refuses_a_cube_without_its_range_in_one_line(halves, tmp_path):
    cube, _ = halves
    model = tmp_path / "model.pt"
    assert _deepcube("segment", cube, "-o", tmp_path / "a.tif", "--range", "4.0:6.3", "--save-model", model,
                     *FAST).returncode == 0
    shifted = tmp_path / "shifted.tif"
    data = np.moveaxis(tifffile.imread(cube), 0, -1)
    write_cube(shifted, Datacube.from_array(data, spectral_values=np.arange(N_CHANNELS) * 0.05,
                                            spectral_unit="keV"))
    out = tmp_path / "b.tif"
    done = _deepcube("segment", shifted, "-o", out, "--load-model", model)
    assert done.returncode == 2 and _one_line(done.stderr)
    assert "--range 4:6.3 keV is not inside the cube's axis (0 to 3.15 keV)" in done.stderr
    assert not out.exists()
    masked = tmp_path / "masked.tif"
    mask_file = tmp_path / "mask.npy"
    np.save(mask_file, np.tri(32, dtype=bool))
    applied = _deepcube("segment", cube, "-o", masked, "--load-model", model, "--mask", mask_file)
    assert applied.returncode == 0, applied.stderr
    np.testing.assert_array_equal(tifffile.imread(masked) > 0, np.tri(32, dtype=bool))


def _refusals(tmp_path):
    wrong_size = tmp_path / "small.npy"
    np.save(wrong_size, np.ones((16, 32), np.uint8))
    empty = tmp_path / "empty.tif"
    tifffile.imwrite(empty, np.zeros((32, 32), np.uint8))
    rgb = tmp_path / "rgb.png"
    Image.fromarray(np.full((32, 32, 3), 255, np.uint8)).save(rgb)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.ones((2, 32, 32), np.uint8))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a picture")
    text = tmp_path / "mask.txt"
    text.write_text("1 1\n")
    return {
        "mask of another size": (["--mask", wrong_size], "is 16 x 32 pixels but the cube is 32 x 32"),
        "empty mask": (["--mask", empty], "no nonzero pixel"),
        "RGB mask": (["--mask", rgb], "not a 2-D image"),
        "3-D mask": (["--mask", stack], "not a 2-D image"),
        "damaged mask": (["--mask", junk], "junk.png could not be read as a mask image"),
        "mask of another format": (["--mask", text], "save it as a TIFF"),
        "missing mask": (["--mask", tmp_path / "none.png"], "does not exist"),
        "channels beyond the axis": (["--channels", "50:80"], "beyond the cube's 64 channels"),
        "range beyond the axis": (["--range", "5:9"], "not inside the cube's axis (0 to 6.3 keV)"),
        "range between channels": (["--range", "1.01:1.02"], "holds no channel"),
        "empty channels": (["--channels", "30:30"], "is empty"),
        "both selections": (["--channels", "0:10", "--range", "1:2"], "give only one"),
        "mask is an output": (["--mask", tmp_path / "out.tif"], "would be overwritten"),
    }


@pytest.mark.parametrize(
    "case",
    ["mask of another size", "empty mask", "RGB mask", "3-D mask", "damaged mask", "mask of another format",
     "missing mask", "channels beyond the axis", "range beyond the axis", "range between channels",
     "empty channels", "both selections", "mask is an output"],
)
def test_a_bad_mask_or_selection_exits_2_with_one_line_and_writes_nothing(case, halves, tmp_path, capsys):
    cube, _ = halves
    argv, words = _refusals(tmp_path)[case]
    out, report = tmp_path / "out.tif", tmp_path / "report.json"
    if case == "mask is an output":
        tifffile.imwrite(out, np.ones((32, 32), np.uint8))
    before = {path: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    status = main(["segment", str(cube), "-o", str(out), "--report", str(report), *map(str, argv), *FAST])
    stderr = capsys.readouterr().err
    assert status == 2 and _one_line(stderr), stderr
    assert words in stderr
    assert {path: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()} == before


def test_a_bad_selection_exits_2_from_a_separate_process(halves, tmp_path):
    cube, _ = halves
    out = tmp_path / "out.tif"
    done = _deepcube("segment", cube, "-o", out, "--channels", "0:10", "--range", "1:2")
    assert done.returncode == 2 and _one_line(done.stderr) and "give only one" in done.stderr
    assert not out.exists()
