"""`deepcube segment` on a FITS cube with STAT: divided by it unless --no-variance; the report says which."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from sklearn.metrics import adjusted_rand_score

from napari_deepcube.cli import main

fits = pytest.importorskip("astropy.io.fits")


def _options(run: dict[str, int]) -> list[str]:
    return [f"--{name.replace('_', '-')}={value}" for name, value in run.items()]


def _segment(path: Path, out: Path, *extra: str, capsys: Any) -> tuple[int, dict[str, Any], str]:
    report = out.with_suffix(".json")
    status = main(["segment", str(path), "-o", str(out), "--report", str(report), *extra])
    printed = capsys.readouterr().out
    return status, json.loads(report.read_text()) if report.exists() else {}, printed


def test_a_fits_with_stat_is_divided_by_it_unless_switched_off(
    heteroscedastic_fits: tuple[Path, np.ndarray], variance_run: dict[str, int], tmp_path: Path, capsys: Any
) -> None:
    path, truth = heteroscedastic_fits
    status, report, printed = _segment(path, tmp_path / "stat.tif", *_options(variance_run), capsys=capsys)
    assert status == 0
    assert report["noise"] == {
        "source": "variance",
        "description": "each pixel's own noise, from the cube's per-voxel variances",
    }
    assert report["config"]["variance"] is True
    assert "noise: each pixel's own noise, from the cube's per-voxel variances" in printed
    status, plain, printed = _segment(
        path, tmp_path / "plain.tif", *_options(variance_run), "--no-variance", capsys=capsys
    )
    assert status == 0 and plain["noise"]["source"] == "channel" and plain["config"]["variance"] is False
    assert "switched off" in plain["noise"]["description"] and "switched off" in printed
    aris = [
        adjusted_rand_score(truth.ravel(), tifffile.imread(tmp_path / name).ravel())
        for name in ("stat.tif", "plain.tif")
    ]
    assert aris[0] > aris[1] + 0.2


def test_a_model_fitted_with_stat_on_a_file_without_says_what_stands_in(
    heteroscedastic_fits: tuple[Path, np.ndarray], variance_run: dict[str, int], tmp_path: Path, capsys: Any
) -> None:
    path, _ = heteroscedastic_fits
    model = tmp_path / "model.pt"
    quick = _options({**variance_run, "epochs": 1})
    assert _segment(path, tmp_path / "first.tif", *quick, "--save-model", str(model), capsys=capsys)[0] == 0
    bare = tmp_path / "without_stat.fits"
    with fits.open(path) as hdul:
        fits.HDUList([hdu.copy() for hdu in hdul if hdu.name != "STAT"]).writeto(bare)
    status, report, printed = _segment(
        bare, tmp_path / "second.tif", "--load-model", str(model), capsys=capsys
    )
    assert status == 0 and report["noise"]["source"] == "channel"
    assert "fitted with per-voxel variances, but this cube has none" in report["noise"]["description"]
    assert "fitted with per-voxel variances" in printed
