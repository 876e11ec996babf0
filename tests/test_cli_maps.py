"""``deepcube maps``: line and window maps written as a TIFF stack; bad input exits 2, writes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from napari_deepcube.cli import main
from napari_deepcube.core.element_maps import compute_maps, line_window, parse_lines, range_window
from napari_deepcube.core.io.maps import read_maps_tiff


@pytest.fixture
def painting_npz(tmp_path, small_painting):
    """The small painting as an .npz with its keV axis, as a user would save it."""
    path = tmp_path / "painting.npz"
    np.savez(path, cube=small_painting.cube.data, energy_keV=small_painting.cube.spectral_values)
    return path


def _run(argv, capsys):
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_maps_writes_each_line_and_window_as_a_float32_page(tmp_path, painting_npz, small_painting, capsys):
    output = tmp_path / "maps.tif"
    status, out, err = _run(
        ["maps", painting_npz, "-o", output, "--lines", "Pb La, Fe Ka", "--window", "6.2:6.6",
         "--window", "2:3", "--statistic", "mean", "--present", "Hg"],
        capsys,
    )
    assert status == 0 and err == ""
    assert f"wrote {output} (Pb Lα net counts, Fe Kα net counts, 6.2-6.6 keV mean, 2-3 keV mean;" in out

    maps, facts = read_maps_tiff(output)
    axis = small_painting.cube.axis
    present = ["Hg", "Pb", "Fe"]
    windows = [line_window(axis, line, present=present) for line in parse_lines("Pb La, Fe Ka")]
    windows += [range_window(axis, 6.2, 6.6, "mean"), range_window(axis, 2, 3, "mean")]
    np.testing.assert_array_equal(maps, compute_maps(small_painting.cube.data, windows))
    assert [fact["name"] for fact in facts] == ["Pb Lα", "Fe Kα", "6.2-6.6 keV", "2-3 keV"]
    assert all(fact["unit"] == "keV" for fact in facts)


def test_a_wider_detector_resolution_widens_the_line_window(tmp_path, painting_npz, capsys):
    windows = []
    for fwhm in ("0.13", "0.18"):
        output = tmp_path / f"maps{fwhm}.tif"
        argv = ["maps", painting_npz, "-o", output, "--lines", "Fe Ka", "--fwhm-mn", fwhm]
        assert _run(argv, capsys)[0] == 0
        windows.append(read_maps_tiff(output)[1][0]["window"])
    assert windows[1][0] < windows[0][0] and windows[1][1] > windows[0][1]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ([], "nothing to map"),
        (["--lines", "Pb Kz"], "Pb has no line 'Kz'"),
        (["--lines", "Pb"], "write an element and a line"),
        (["--lines", "Pb Ka"], "off this cube's energy axis"),
        (["--window", "6.2-6.6"], "is not START:STOP"),
        (["--window", "60:70"], "off the cube's axis"),
        (["--lines", "Fe Ka", "--fwhm-mn", "0.05"], "Fano limit"),
        (["--lines", "Fe Ka", "--present", "Xq"], "Xq: not the symbol"),
        (["--lines", "Fe Ka", "--statistic", "median"], "invalid choice"),
    ],
)
def test_bad_maps_options_exit_2_with_one_line_and_write_nothing(
    options, words, tmp_path, painting_npz, capsys
):
    before = sorted(tmp_path.iterdir())
    status, _, err = _run(["maps", painting_npz, "-o", tmp_path / "maps.tif", *options], capsys)
    assert status == 2
    assert err.startswith("deepcube: error:") and err.count("\n") == 1 and words in err
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("cube.tif", "would be overwritten"),
        ("maps.png", "written as a .tif file"),
        ("results.tif", "existing folder"),
    ],
)
def test_an_output_that_would_lose_data_is_refused(output, words, tmp_path, capsys):
    cube = tmp_path / "cube.tif"
    tifffile.imwrite(cube, np.random.default_rng(0).poisson(20, (16, 12, 12)).astype(np.uint16))
    (tmp_path / "results.tif").mkdir()
    original = cube.read_bytes()
    status, _, err = _run(["maps", cube, "-o", tmp_path / output, "--window", "3:5"], capsys)
    assert status == 2 and words in err and err.count("\n") == 1
    assert cube.read_bytes() == original
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cube.tif", "results.tif"]


def test_a_channel_axis_cube_gets_window_maps(tmp_path, capsys):
    cube = tmp_path / "cube.tif"
    data = np.random.default_rng(0).poisson(20, (16, 12, 12)).astype(np.uint16)
    tifffile.imwrite(cube, data)
    status, _, _ = _run(["maps", cube, "-o", tmp_path / "maps.tif", "--window", "3:5", "--quiet"], capsys)
    maps, facts = read_maps_tiff(tmp_path / "maps.tif")
    assert status == 0 and facts[0]["name"] == "channels 3-5" and facts[0]["quantity"] == "sum"
    np.testing.assert_array_equal(maps[0], data[3:6].sum(axis=0))
