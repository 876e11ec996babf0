"""Instrument files read through RosettaSciIO: the real files in shared/data/vendor."""

from __future__ import annotations

import gc
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from napari_deepcube.core.errors import InputError
from napari_deepcube.core.io import can_read, companion_images, default_dataset, list_datasets, read_cube
from napari_deepcube.core.io._mapped import MappedArray

pytest.importorskip("rsciio")

#: file -> (shape, unit, label, first spectral value) as the instrument's software calibrated it.
VENDOR_CUBES = {
    "P45_the_default_job.bcf": ((75, 100, 2048), "keV", "Energy", -0.4724),
    "test_TEM.bcf": ((64, 64, 2048), "keV", "Energy", -0.4754),
    "bcf_v2_50x50px.bcf": ((50, 50, 2048), "keV", "Energy", -0.4732),
    "30x30_instructively_packed_16bit_compressed.bcf": ((30, 30, 2048), "keV", "Energy", -0.4723),
    "Hitachi_TM3030Plus.bcf": ((240, 320, 2048), "keV", "Energy", -0.4746),
    "bcf-edx-ebsd.bcf": ((87, 100, 2048), "keV", "Energy", -0.4721),
    "View000_0000006.pts": ((512, 512, 4096), "keV", "Energy", -0.9607),
    "renishaw_test_map2.wdf": ((20, 20, 1015), "nm", "Wavelength", 326.172),
    "renishaw_test_streamline.wdf": ((49, 45, 394), "cm-1", "Raman Shift", 924.195),
    "test_hyperspectral.h5": ((4, 4, 512), "nm", "Wavelength", 376.316),
    "test_ripple_sdim-1_ndim-2_float32_meta.rpl": ((2, 3, 4), "eV", "Energy", 1.5),
}


@pytest.fixture
def vendor(shared_data: Path) -> Path:
    return shared_data / "vendor"


@pytest.mark.parametrize("name", sorted(VENDOR_CUBES))
def test_each_vendor_file_reads_as_its_spectrum_image_with_the_files_calibration(
    vendor: Path, name: str
) -> None:
    shape, unit, label, first = VENDOR_CUBES[name]
    cube = read_cube(vendor / name)
    assert cube.shape == shape
    assert (cube.spectral_unit, cube.spectral_label) == (unit, label)
    assert cube.spectral_values[0] == pytest.approx(first, abs=1e-3)
    assert np.all(np.diff(cube.spectral_values) > 0)
    assert cube.metadata["format"].startswith("rsciio-")
    datasets = list_datasets(vendor / name)
    assert default_dataset(vendor / name, datasets) == datasets[0].name
    assert can_read(vendor / name)


def test_a_bruker_map_holds_the_counts_bruker_wrote(shared_data: Path) -> None:
    """The .bcf read here equals the cube RosettaSciIO 0.15 exported to shared/data (10 eV channels)."""
    cube = read_cube(shared_data / "vendor" / "30x30_instructively_packed_16bit_compressed.bcf")
    with np.load(shared_data / "eds_bruker_sem" / "bruker_sem_eds_30x30_REE_mineral.npz") as stored:
        np.testing.assert_array_equal(np.asarray(cube.data), stored["cube"])
        np.testing.assert_allclose(cube.spectral_values, stored["energy_keV"], atol=1e-9)


def test_large_or_asked_for_cubes_stay_lazy_where_the_format_allows(vendor: Path) -> None:
    assert read_cube(vendor / "View000_0000006.pts").is_lazy  # 2 GiB as stored
    small = vendor / "P45_the_default_job.bcf"
    assert not read_cube(small).is_lazy
    lazy = read_cube(small, lazy=True)
    assert lazy.is_lazy
    np.testing.assert_array_equal(np.asarray(lazy.data), np.asarray(read_cube(small, lazy=False).data))
    with pytest.raises(InputError, match=r"renishaw_test_map2\.wdf cannot be read lazily"):
        read_cube(vendor / "renishaw_test_map2.wdf", lazy=True)


def test_a_lazy_cube_its_reader_decodes_on_every_read_is_decoded_once_into_a_private_folder(
    vendor: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lazy .bcf reads from a raw copy in a folder of its own, which goes with the cube."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    small = vendor / "P45_the_default_job.bcf"
    lazy = read_cube(small, lazy=True)
    assert isinstance(lazy.data, MappedArray)
    (folder,) = tmp_path.glob("deepcube-decoded-*")
    assert folder.stat().st_mode & 0o777 == 0o700  # the user's data, readable by the user alone
    np.testing.assert_array_equal(np.asarray(lazy.data), np.asarray(read_cube(small, lazy=False).data))
    del lazy
    gc.collect()
    assert not folder.exists()


def test_without_room_for_the_copy_the_cube_is_read_as_its_reader_gives_it(
    vendor: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(shutil, "disk_usage", lambda _: shutil._ntuple_diskusage(10**9, 10**9, 0))
    small = vendor / "P45_the_default_job.bcf"
    lazy = read_cube(small, lazy=True)
    assert lazy.is_lazy and not isinstance(lazy.data, MappedArray)
    assert list(tmp_path.iterdir()) == []
    np.testing.assert_array_equal(np.asarray(lazy.data), np.asarray(read_cube(small, lazy=False).data))


def test_a_single_spectrum_is_refused_with_the_fix(vendor: Path) -> None:
    with pytest.raises(InputError, match=r"holds a single spectrum \(4096 channels\), not a spectrum image"):
        read_cube(vendor / "bruker_m6_jetstream_file_example.spx")


def test_the_ripple_data_file_reads_through_its_header(vendor: Path) -> None:
    raw = vendor / "test_ripple_sdim-1_ndim-2_float32_meta.raw"
    from_raw = read_cube(raw)
    from_header = read_cube(raw.with_suffix(".rpl"))
    np.testing.assert_array_equal(np.asarray(from_raw.data), np.asarray(from_header.data))
    assert str(raw) in from_raw.metadata["input_files"]  # outputs may not overwrite it


def test_a_delmic_file_is_told_from_other_hdf5(vendor: Path) -> None:
    """Delmic's HDF5 holds its cube in 5-D acquisitions; read as plain HDF5 only its RGB preview is 3-D."""
    cube = read_cube(vendor / "test_hyperspectral.h5")
    assert cube.metadata["format"] == "rsciio-delmic"


def test_electron_and_white_light_images_come_with_the_cube_on_its_grid(vendor: Path) -> None:
    images = companion_images(vendor / "P45_the_default_job.bcf")
    assert [image.name for image in images] == ["0: BSE", "1: SE"]
    assert all(image.data.shape == (75, 100) for image in images)
    assert images[0].scale == pytest.approx((1.0, 1.0)) and images[0].translate == (0.0, 0.0)
    (light,) = companion_images(vendor / "renishaw_test_map2.wdf")
    assert light.data.shape == (480, 752, 3) and light.data.dtype == np.uint8
    # 0.8 µm pixels on the map's 1 µm grid, its corner where the file places it.
    assert light.scale == pytest.approx((0.80, 0.806), abs=1e-3)
    assert light.translate == pytest.approx((-184.8, -298.4), abs=0.1)
    assert companion_images(vendor / "test_ripple_sdim-1_ndim-2_float32_meta.rpl") == []


def test_a_damaged_vendor_file_is_one_input_error(vendor: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "cut.bcf"
    damaged.write_bytes((vendor / "P45_the_default_job.bcf").read_bytes()[:20_000])
    with pytest.raises(InputError, match=r"cut\.bcf could not be read as a Bruker Esprit file"):
        read_cube(damaged)
    renamed = tmp_path / "copy.wdf"
    shutil.copy(vendor / "P45_the_default_job.bcf", renamed)
    with pytest.raises(InputError, match=r"copy\.wdf could not be read as a Renishaw WiRE file"):
        read_cube(renamed)
