"""The napari writer adapter: a Labels layer's data and state to a TIFF label map."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepcube._layer_records import ClusterSpectra, LabelsRecord
from napari_deepcube._reader import label_colormap
from napari_deepcube._writer import write_labels
from napari_deepcube.core.io import read_labels_tiff
from napari_deepcube.core.spectral import SpectralAxis


def test_labels_round_trip_with_colours_and_spectral_facts(tmp_path):
    labels = np.zeros((20, 30), dtype=np.uint8)
    labels[2:10, 3:20] = 1
    labels[12:, :] = 3
    colormap = label_colormap(3)
    spectra = ClusterSpectra(np.ones((3, 5)), np.zeros((3, 5)), (1, 2, 3))
    record = LabelsRecord(kind="clusters", k=3, axis=SpectralAxis(np.linspace(0, 40, 5), "keV", "Energy"),
                          spectra=spectra)
    path = tmp_path / "clusters.tif"

    written = write_labels(str(path), labels, {"colormap": colormap, "name": "clusters",
                                               "metadata": {"deepcube": record}})

    assert written == [str(path)]
    back, metadata = read_labels_tiff(path)
    assert back.dtype == np.uint8 and np.array_equal(back, labels)
    expected = np.rint(colormap.map(np.arange(4, dtype=np.uint8))[:, :3] * 255)
    np.testing.assert_array_equal(metadata["colors"], expected)
    assert metadata["name"] == "clusters"
    assert metadata["k"] == 3 and metadata["spectral_unit"] == "keV"
    assert metadata["spectral_values"] == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert "mean_spectra" not in metadata  # bulky arrays go to the CSV export


@pytest.mark.parametrize(
    "foreign", ["clusters", {"k": 3, "spectral_unit": "keV"}, None], ids=["text", "old dict", "none"]
)
def test_a_record_of_another_plugin_or_version_is_left_out(foreign, tmp_path):
    path = tmp_path / "theirs.tif"
    meta = {"name": "theirs", "colormap": label_colormap(1), "metadata": {"deepcube": foreign}}

    assert write_labels(str(path), np.ones((4, 4), np.uint8), meta) == [str(path)]

    _, metadata = read_labels_tiff(path)
    assert metadata["name"] == "theirs" and "k" not in metadata


def test_a_layer_that_is_no_label_map_is_refused_with_a_message(tmp_path, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    path = tmp_path / "volume.tif"

    written = write_labels(str(path), np.zeros((2, 4, 4), np.uint8), {"name": "volume"})

    assert written == [] and not path.exists()
    assert len(shown) == 1 and "2-D" in shown[0]


@pytest.mark.parametrize("top", [300])
def test_many_labels_are_written_as_uint16(tmp_path, top):
    labels = np.arange(top + 1, dtype=np.uint16).reshape(1, -1)
    path = tmp_path / "many.tif"
    write_labels(str(path), labels, {"colormap": label_colormap(top)})
    back, _ = read_labels_tiff(path)
    assert back.dtype == np.uint16 and np.array_equal(back, labels)


@pytest.mark.parametrize(
    ("meta", "words"),
    [
        ({"colormap": "viridis"}, "not a napari label colormap"),
        ({"metadata": {"a", "b"}}, "not a dict"),
    ],
)
def test_state_of_the_wrong_type_is_refused_with_a_message(meta, words, tmp_path, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    path = tmp_path / "labels.tif"
    assert write_labels(str(path), np.ones((4, 4), np.uint8), meta) == []
    assert not path.exists() and len(shown) == 1 and words in shown[0]


def test_the_labels_never_replace_the_cube_they_came_from_or_a_folder(tmp_path, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    cube = tmp_path / "scan.tif"
    cube.write_bytes(b"the scan")
    folder = tmp_path / "results.tif"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    meta = {"metadata": {"deepcube": LabelsRecord(k=1, source=str(cube))}}
    assert write_labels(str(cube), np.ones((4, 4), np.uint8), meta) == []
    assert write_labels(str(folder), np.ones((4, 4), np.uint8), meta) == []
    assert cube.read_bytes() == b"the scan" and (folder / "notes.txt").read_text() == "keep"
    assert "would be overwritten" in shown[0] and "existing folder" in shown[1]
