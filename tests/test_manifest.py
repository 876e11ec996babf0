"""The napari manifest: valid, importable, in sync with the core readers, torch-free to open."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import npe2
import pytest

from napari_deepcube.core.io import SUPPORTED_SUFFIXES

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "src" / "napari_deepcube" / "napari.yaml"


def test_manifest_validates_with_imports():
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-deepcube", "--imports"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout.lower()


def test_top_level_manifest_is_the_package_one():
    top = ROOT / "napari.yaml"
    assert top.is_symlink()
    assert top.resolve() == MANIFEST.resolve()


def test_installed_entry_point_finds_the_manifest():
    manifest = npe2.PluginManifest.from_distribution("napari-deepcube")
    assert manifest.name == "napari-deepcube"
    commands = {c.id for c in manifest.contributions.commands}
    widgets = {w.display_name for w in manifest.contributions.widgets}
    assert {"Deep spectral segmentation", "Cluster spectra"} <= widgets
    # A user searching the plugin menu for "embedding" or "latent" finds the embedding view.
    assert "Latent embedding (linked to the map)" in widgets
    assert {s.key for s in manifest.contributions.sample_data} == {"painting", "nebula"}
    assert "napari-deepcube.write_labels" in commands


def test_reader_patterns_cover_every_core_format():
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    (reader,) = manifest.contributions.readers
    patterns = set(reader.filename_patterns)
    assert patterns == {f"*{suffix}" for suffix in SUPPORTED_SUFFIXES}
    assert reader.accepts_directories  # zarr stores are folders


@pytest.mark.parametrize(
    "code",
    [
        "import napari_deepcube._reader, napari_deepcube._writer",
        "from napari_deepcube._reader import get_reader\n"
        "import numpy as np, tempfile, os\n"
        "path = os.path.join(tempfile.mkdtemp(), 'cube.npy')\n"
        "np.save(path, np.ones((4, 5, 6), np.float32))\n"
        "layers = get_reader(path)(path)\n"
        "assert layers[0][0].shape == (6, 4, 5), layers[0][0].shape",
    ],
    ids=["import", "read-a-file"],
)
def test_opening_a_file_does_not_import_torch(code):
    script = code + "\nimport sys\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
