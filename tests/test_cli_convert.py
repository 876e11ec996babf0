"""`deepcube convert`: a cube file -> a chunked zarr store; exit codes as for `segment`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zarr")

from napari_deepcube.cli import EXIT_OK, EXIT_USAGE, main
from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.io import read_cube, write_cube


@pytest.fixture
def cube_file(tmp_path: Path) -> Path:
    """A small calibrated cube stored as a TIFF stack (C, H, W)."""
    rng = np.random.default_rng(0)
    array = rng.poisson(3.0, size=(6, 9, 20)).astype(np.uint16) + 1
    cube = Datacube.from_array(
        array, spectral_values=np.linspace(1.0, 20.0, 20), spectral_unit="keV", spectral_label="Energy"
    )
    path = tmp_path / "scan.tif"
    write_cube(path, cube)
    return path


def test_convert_writes_a_store_read_back_lazily(
    tmp_path: Path, cube_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "scan.zarr"
    assert main(["convert", str(cube_file), str(target)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"wrote {target} (6 x 9 x 20 uint16" in out
    back = read_cube(target, lazy=True)
    np.testing.assert_array_equal(np.asarray(back.data), np.asarray(read_cube(cube_file).data))
    assert back.spectral_unit == "keV"


def test_convert_options_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stored = np.arange(1, 1 + 20 * 6 * 9, dtype=np.float32).reshape(20, 6, 9)  # (C, H, W)
    source = tmp_path / "stored.npy"
    np.save(source, stored)
    target = tmp_path / "out.zarr"
    assert main(["convert", str(source), str(target), "--spectral-axis", "0", "--quiet"]) == EXIT_OK
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(np.asarray(read_cube(target).data), np.moveaxis(stored, 0, -1))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.npy", "out.zarr"], "does not exist"),
        (["scan.tif", "out.h5"], r"named \*\.zarr"),
        (["scan.tif", "out.zarr", "--dataset", "nope"], "dataset"),
        (["scan.tif"], "the following arguments are required: output"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path,
    cube_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["convert", *arguments]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("deepcube: error: ")
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err)
    assert not (tmp_path / "out.zarr").exists()
