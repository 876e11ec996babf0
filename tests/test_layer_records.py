"""The plugin's typed records in napari layers' metadata: what is kept, and what is refused."""

from __future__ import annotations

import numpy as np
import pytest

from napari_deepcube._layer_records import (
    METADATA_KEY,
    ClusterSpectra,
    CubeRecord,
    LabelsRecord,
    cube_record,
    labels_record,
    layer_axis,
    with_record,
)
from napari_deepcube.core.spectral import SpectralAxis

ENERGY = SpectralAxis(np.linspace(0.0, 40.0, 8), "keV", "Energy")


def test_a_cube_record_reads_back_only_on_a_cube_of_its_length():
    metadata = with_record({"file": {"format": "tiff"}}, CubeRecord(ENERGY, "/data/scan.tif", "tiff"))

    assert metadata["file"] == {"format": "tiff"}
    record = cube_record(metadata, 8)
    assert record is not None and record.source == "/data/scan.tif"
    assert layer_axis(metadata, 8) is ENERGY
    # A layer whose channels were cut (or another layer given this metadata): no axis.
    assert cube_record(metadata, 7) is None
    assert layer_axis(metadata, 7).title == "Channel"
    assert labels_record(metadata) is None


@pytest.mark.parametrize(
    "entry",
    [
        {"kind": "cube", "spectral_values": [1.0, 2.0], "spectral_unit": "keV"},  # an old record
        "cube",
        None,
        LabelsRecord(k=2),
    ],
    ids=["old dict", "text", "none", "labels record"],
)
def test_anything_else_under_the_key_reads_as_no_cube_record(entry):
    metadata = {METADATA_KEY: entry}
    assert cube_record(metadata, 2) is None
    assert layer_axis(metadata, 2).unit == "channel"


def test_labels_records_read_back_and_foreign_ones_do_not():
    record = LabelsRecord(k=2, class_names=("lead white", "vermilion"))
    assert labels_record(with_record({}, record)) is record
    assert labels_record({METADATA_KEY: {"kind": "labels", "k": 2}}) is None
    assert labels_record({"other plugin": record}) is None


def test_cluster_spectra_must_fit_k_and_the_axis():
    spectra = ClusterSpectra(np.ones((3, 8)), np.zeros((3, 8)), (4, 5, 6))
    LabelsRecord(kind="clusters", k=3, axis=ENERGY, spectra=spectra)
    with pytest.raises(ValueError, match="for k=2"):
        LabelsRecord(kind="clusters", k=2, axis=ENERGY, spectra=spectra)
    with pytest.raises(ValueError, match="spectral axis"):
        LabelsRecord(kind="clusters", k=3, spectra=spectra)
    with pytest.raises(ValueError, match="sizes"):
        ClusterSpectra(np.ones((3, 8)), np.zeros((3, 8)), (4, 5))
    with pytest.raises(ValueError, match="kind"):
        LabelsRecord(kind="cube", k=1)  # type: ignore[arg-type]


def test_a_label_map_tiff_keeps_the_facts_under_its_old_keys():
    record = LabelsRecord(
        kind="clusters", k=3, source="/data/scan.tif", k_reason="three well separated", axis=ENERGY,
        spectra=ClusterSpectra(np.ones((3, 8)), np.zeros((3, 8)), (4, 5, 6)),
    )
    facts = record.tiff_facts()
    assert facts == {
        "k": 3, "source": "/data/scan.tif", "k_reason": "three well separated",
        "spectral_values": list(ENERGY.values), "spectral_unit": "keV", "spectral_label": "Energy",
    }
