"""The README's first command: the demo on the built-in sample, end to end."""

import json

import numpy as np
import tifffile

from napari_deepcube.cli import main


def test_demo_finds_the_true_k_and_writes_every_output(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    stdout = capsys.readouterr().out
    report = json.loads((tmp_path / "painting_report.json").read_text())
    assert report["k"] == report["ground_truth"]["k"]
    assert report["ground_truth"]["adjusted_rand_index"] >= 0.9
    ari = report["ground_truth"]["adjusted_rand_index"]
    assert f"adjusted Rand index against ground truth: {ari:.3f}" in stdout
    labels = tifffile.imread(tmp_path / "painting_labels.tif")
    assert labels.shape == (256, 256) and int(labels.max()) == report["k"]
    assert np.bincount(labels.ravel())[1:].tolist() == report["cluster_sizes"]
    png = (tmp_path / "painting_overview.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 50_000
    header = (tmp_path / "painting_spectra.csv").read_text().splitlines()[0]
    assert header.startswith("Energy (keV),cluster 1 mean,cluster 1 std")
