import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_deepcube.cli import main

FAST = ["--epochs", "3", "--n-train", "800"]


def _run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def painting_file(small_painting, tmp_path):
    path = tmp_path / "painting.npy"
    np.save(path, np.asarray(small_painting.cube.data).astype(np.uint16))
    return path


def test_segment_writes_labels_and_report(painting_file, small_painting, tmp_path, capsys):
    out = tmp_path / "labels.tif"
    report = tmp_path / "report.json"
    status, stdout, _ = _run(["segment", str(painting_file), "-o", str(out), "--report", str(report),
                              "--k-max", "8", *FAST], capsys)
    assert status == 0
    labels = tifffile.imread(out)
    assert labels.shape == (48, 48) and labels.dtype == np.uint8
    content = json.loads(report.read_text())
    for key in ("k", "silhouette", "cluster_sizes", "timings", "config", "n_pixels", "version"):
        assert key in content
    assert content["k"] == int(labels.max()) and sum(content["cluster_sizes"]) == 48 * 48
    assert {"read", "train", "choose k", "refine", "assign"} <= set(content["timings"])
    assert content["config"]["preview_every"] == 0  # a terminal shows no preview map
    assert f"k = {content['k']}" in stdout


def test_saved_model_segments_again_without_training(painting_file, tmp_path, capsys):
    model = tmp_path / "model.pt"
    first = tmp_path / "first.tif"
    second = tmp_path / "second.tif"
    assert _run(["segment", str(painting_file), "-o", str(first), "--k", "4", "--save-model", str(model),
                 *FAST], capsys)[0] == 0
    report = tmp_path / "second.json"
    assert _run(["segment", str(painting_file), "-o", str(second), "--load-model", str(model),
                 "--report", str(report)], capsys)[0] == 0
    np.testing.assert_array_equal(tifffile.imread(first), tifffile.imread(second))
    assert json.loads(report.read_text())["training"]["epochs_run"] == 0


def _bad_inputs(tmp_path):
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones((10, 10), np.float32))
    nan = tmp_path / "nan.npy"
    np.save(nan, np.full((4, 4, 8), np.nan, np.float32))
    text = tmp_path / "text.npy"
    np.save(text, np.array([[["a", "b"]]]))
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"\x93NUMPY garbage")
    unknown = tmp_path / "cube.xyz"
    unknown.write_bytes(b"123")
    small = tmp_path / "small.npy"
    np.save(small, np.random.default_rng(0).poisson(5, (3, 3, 16)).astype(np.uint16))
    return {
        "missing file": ([str(tmp_path / "missing.npy")], "missing.npy"),
        "wrong dimensions": ([str(flat)], "2-D"),
        "all NaN": ([str(nan)], "NaN"),
        "non-numeric": ([str(text)], "text.npy"),
        "corrupt": ([str(corrupt)], "corrupt.npy"),
        "unknown format": ([str(unknown)], "cube.xyz"),
        "k larger than pixels": ([str(small), "--k", "20"], "larger than the 9 valid pixels"),
        "bad option": ([str(small), "--model", "transformer"], "invalid choice"),
        "empty k range": ([str(small), "--k-min", "6", "--k-max", "3"], "k range"),
    }


@pytest.mark.parametrize(
    "case",
    ["missing file", "wrong dimensions", "all NaN", "non-numeric", "corrupt", "unknown format",
     "k larger than pixels", "bad option", "empty k range"],
)
def test_bad_input_exits_2_with_one_message_and_writes_nothing(case, tmp_path, capsys):
    argv, words = _bad_inputs(tmp_path)[case]
    out = tmp_path / "labels.tif"
    status, _, stderr = _run(["segment", *argv, "-o", str(out), *FAST], capsys)
    assert status == 2
    assert words in stderr
    assert stderr.startswith("deepcube: error:") and stderr.count("\n") == 1
    assert "Traceback" not in stderr
    assert not out.exists()


def test_output_folder_must_exist(painting_file, tmp_path, capsys):
    status, _, stderr = _run(["segment", str(painting_file), "-o", str(tmp_path / "no" / "x.tif")], capsys)
    assert status == 2 and "does not exist" in stderr


def test_console_script_runs_as_a_process(tmp_path):
    missing = tmp_path / "nothing.npy"
    done = subprocess.run(
        [sys.executable, "-m", "napari_deepcube.cli", "segment", str(missing), "-o", str(tmp_path / "l.tif")],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 2
    assert "nothing.npy" in done.stderr and "Traceback" not in done.stderr


def test_bad_input_is_reported_before_torch_or_scikit_learn_is_imported(tmp_path):
    # They take 4-5 s to import on a 2-core machine; a mistake is reported in well under one.
    corrupt = tmp_path / "corrupt.npy"
    corrupt.write_bytes(b"\x93NUMPY garbage")
    missing, tif, png = (str(tmp_path / name) for name in ("missing.npy", "l.tif", "l.png"))
    code = (
        "import sys\n"
        "from napari_deepcube.cli import main\n"
        f"statuses = [main(['segment', {str(corrupt)!r}, '-o', {tif!r}]),\n"
        f"            main(['segment', {str(corrupt)!r}, '-o', {png!r}]),\n"
        f"            main(['segment', {missing!r}, '-o', {tif!r}])]\n"
        "print(statuses, sorted(m for m in ('torch', 'sklearn') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[2, 2, 2] []"
