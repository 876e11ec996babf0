"""The core and the command line must work on a server without Qt or napari."""

import subprocess
import sys


def test_core_and_cli_import_neither_qt_nor_napari():
    modules = (
        "napari_deepcube.cli", "napari_deepcube.core.pipeline", "napari_deepcube.core.io",
        "napari_deepcube.core.overview", "napari_deepcube.core.synthetic",
        "napari_deepcube.core.checkpoint",
    )
    gui = {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy"}
    code = (
        "import sys\n"
        f"import {', '.join(modules)}\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(gui)!r})\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
