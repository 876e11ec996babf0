"""What the widget prepares in the background when it opens, before the first Train."""

from __future__ import annotations

import subprocess
import sys


def test_napari_label_colouring_is_compiled_before_the_first_run():
    # In a fresh process: another test may already have compiled it in this one.
    script = (
        "from napari_deepcube._widgets import _jobs\n"
        "from napari.utils.colormaps import _accelerated_cmap\n"
        "_jobs.start_loading_engine()\n"
        "_jobs._engine_thread.join()\n"
        "print(len(_accelerated_cmap._labels_raw_to_texture_direct_inner_loop.signatures))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(done.stdout.split()[-1]) >= 1
