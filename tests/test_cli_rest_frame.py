"""`deepcube segment --rest-frame`: a rotating disk's gas segmented at rest, its velocities written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.cli import main

QUICK = ["--epochs=6", "--n-train=600", "--k-max=6"]


def test_the_gas_is_segmented_at_rest_and_every_pixel_s_velocity_written(
    disk_fits: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, capsys: Any
) -> None:
    path, labels, truth = disk_fits
    out, velocities, report = tmp_path / "labels.tif", tmp_path / "velocity.tif", tmp_path / "run.json"
    arguments = ["segment", str(path), "-o", str(out), "--rest-frame", "--velocities", str(velocities)]
    assert main([*arguments, "--report", str(report), *QUICK]) == 0
    assert adjusted_rand_score(labels.ravel(), tifffile.imread(out).ravel()) > 0.99
    measured = tifffile.imread(velocities)
    assert measured.shape == labels.shape and measured.dtype == np.float32
    error = measured - truth
    assert np.percentile(np.abs(error - np.median(error)), 95) <= 28.0
    with tifffile.TiffFile(velocities) as tiff:
        facts = json.loads(tiff.pages[0].description)["maps"][0]
    assert facts["unit"] == "km/s"
    summary = json.loads(report.read_text())["velocities"]
    assert summary["measured_fraction"] == 1.0 and summary["percentile_95"] - summary["percentile_5"] > 300


def test_a_saved_model_moves_the_next_cube_to_its_rest_frame(
    disk_fits: tuple[Path, np.ndarray, np.ndarray], write_disk_fits: Any, tmp_path: Path
) -> None:
    path, _, _ = disk_fits
    model = tmp_path / "disk.pt"
    first = ["segment", str(path), "-o", str(tmp_path / "a.tif"), "--rest-frame", "--save-model", str(model)]
    assert main([*first, "--quiet", *QUICK]) == 0
    other, other_labels, _ = write_disk_fits(7)
    velocities = tmp_path / "other_velocity.tif"
    arguments = ["segment", str(other), "-o", str(tmp_path / "b.tif"), "--load-model", str(model)]
    assert main([*arguments, "--velocities", str(velocities), "--quiet"]) == 0
    assert adjusted_rand_score(other_labels.ravel(), tifffile.imread(tmp_path / "b.tif").ravel()) > 0.99
    assert np.isfinite(tifffile.imread(velocities)).all()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--velocities", "velocity.tif"], "add --rest-frame"),
        (["--rest-frame", "--velocities", "velocity.png"], "as a .tif file"),
    ],
)
def test_a_velocity_map_that_cannot_be_written_is_refused_before_anything_is_read(
    disk_fits: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, capsys: Any, extra: list[str], named: str
) -> None:
    path, _, _ = disk_fits
    out = tmp_path / "labels.tif"
    extra = [str(tmp_path / item) if item.startswith("velocity") else item for item in extra]
    assert main(["segment", str(path), "-o", str(out), *extra]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and named in error
    assert list(tmp_path.iterdir()) == []


def test_a_cube_without_wavelengths_is_refused_with_nothing_written(
    disk_fits: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, capsys: Any
) -> None:
    from napari_deepcube.core.io import read_cube

    cube = tmp_path / "channels.npy"
    np.save(cube, np.asarray(read_cube(disk_fits[0]).data))
    out = tmp_path / "labels.tif"
    assert main(["segment", str(cube), "-o", str(out), "--rest-frame", *QUICK]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "wavelength axis" in error and "leave --rest-frame off" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["channels.npy"]


@pytest.mark.parametrize(
    ("trained", "asked", "words"),
    [
        ("--no-rest-frame", "--rest-frame", "trained without it"),
        ("--rest-frame", "--no-rest-frame", "trained at rest"),
    ],
)
def test_a_model_is_not_asked_for_the_other_frame(
    trained: str, asked: str, words: str,
    disk_fits: tuple[Path, np.ndarray, np.ndarray], tmp_path: Path, capsys: Any,
) -> None:
    path, _, _ = disk_fits
    model = tmp_path / "model.pt"
    quick = ["--epochs=1", "--n-train=600", "--k=2", "--quiet", trained, "--save-model", str(model)]
    assert main(["segment", str(path), "-o", str(tmp_path / "a.tif"), *quick]) == 0
    capsys.readouterr()
    out = tmp_path / "b.tif"
    assert main(["segment", str(path), "-o", str(out), "--load-model", str(model), asked]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and words in error
    assert not out.exists()
