"""Benchmark: the segmentation widget's run against ``deepcube segment``, same cube and settings.

The widget must do the command line's work and no more (issue 19: the
widget took 2.4-3.6x the command line's time; the target is 1.3x). Each side runs in a fresh
process, torch imported before the clock starts:

* the command line: ``napari_deepcube.cli.main`` on the cube saved as .npy,
  timed around ``main`` (reading the file included, as a user's run does);
* the widget: a napari window with the cube opened by the plugin's reader,
  the "Deep spectral segmentation" dock, Train clicked; timed from Train to
  the widget idle again, the result shown.

Beside the times it counts what the widget did on the way: progress events,
preview maps drawn, criteria plot drawings, and how long the GUI thread was
busy (the event loop's ticks of a 20 ms timer that came late). Run it on an
idle machine, under a display (``scripts/with-display.sh``)::

    python benchmarks/run.py --suite gui [--gui-size 256] [--gui-epochs 40]
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: Interval of the probe timer on the GUI thread (s).
_TICK = 0.020


@dataclass(frozen=True)
class GuiRun:
    """What the widget's run took and did."""

    seconds: float
    k: int
    events: int
    previews_drawn: int
    criteria_drawings: int
    gui_busy_seconds: float


def _cube_file(folder: Path, size: int) -> Path:
    from napari_deepcube.core.io import write_cube
    from napari_deepcube.core.synthetic import make_painting

    path = folder / f"painting_{size}.npy"
    write_cube(path, make_painting(size, size, 1024 if size >= 256 else 256, seed=0).cube)
    return path


def _cli(path: Path, epochs: int, queue: mp.Queue) -> None:
    import json

    import torch  # noqa: F401  (imported before the clock, as the widget's engine is)

    from napari_deepcube.cli import main

    report = path.with_suffix(".json")
    start = time.perf_counter()
    status = main([
        "segment", str(path), "-o", str(path.with_suffix(".tif")), "--report", str(report),
        "--epochs", str(epochs), "--seed", "0", "--quiet",
    ])
    seconds = time.perf_counter() - start
    queue.put((status, seconds, json.loads(report.read_text())["k"]))


def _gui(path: Path, epochs: int, queue: mp.Queue) -> None:
    import napari
    from qtpy.QtCore import QEventLoop, QTimer
    from qtpy.QtWidgets import QApplication

    from napari_deepcube._widgets._segment import SegmentationWidget

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1500, 1000)
    viewer.open(path, plugin="napari-deepcube")
    segment = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(segment, name="Deep spectral segmentation")
    app = QApplication.instance()
    while not segment.engine_ready:
        app.processEvents()
        time.sleep(0.01)
    segment.settings.set_values(epochs=epochs, seed=0)
    drawings = [0]
    segment.criteria_plot.rendered.connect(lambda: drawings.__setitem__(0, drawings[0] + 1))
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(round(_TICK * 1000))
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    events, previews = [0], [0]

    def count(event: object) -> None:
        events[0] += 1
        previews[0] += getattr(event, "preview", None) is not None

    # napari's own event loop, as a user's session runs it (a loop of processEvents() calls
    # would keep the GUI thread spinning against the run's computation).
    loop = QEventLoop()
    watch = QTimer()
    watch.setInterval(10)
    watch.timeout.connect(lambda: None if segment.is_busy else loop.quit())
    start = time.perf_counter()
    segment.train()
    segment.worker.yielded.connect(count)
    watch.start()
    loop.exec()
    watch.stop()
    seconds = time.perf_counter() - start
    timer.stop()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    busy = sum(gap - _TICK for gap in gaps if gap > 2 * _TICK)
    k = segment.segmentation.k if segment.segmentation is not None else 0
    queue.put(GuiRun(seconds, k, events[0], previews[0], drawings[0], busy))
    viewer.close()


def _in_process(target, *args):  # type: ignore[no-untyped-def]
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    value = queue.get()
    process.join()
    return value


def gui(size: int = 256, epochs: int | None = None) -> tuple[float, GuiRun]:
    """Time ``deepcube segment`` and the widget on the painting (``size`` x ``size``); print the row."""
    from napari_deepcube.core.config import SegmentConfig

    epochs = epochs or SegmentConfig().epochs
    with tempfile.TemporaryDirectory() as folder:
        path = _cube_file(Path(folder), size)
        status, cli_seconds, cli_k = _in_process(_cli, path, epochs)
        if status != 0:
            raise RuntimeError(f"deepcube segment failed with exit status {status}")
        widget = _in_process(_gui, path, epochs)
    print(
        "| cube | epochs | CLI (s) | widget (s) | widget / CLI | k CLI / widget | events "
        "| previews drawn | criteria drawings | GUI thread busy (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| painting {size}x{size} | {epochs} | {cli_seconds:.1f} | {widget.seconds:.1f} | "
        f"{widget.seconds / cli_seconds:.2f} | {cli_k} / {widget.k} | {widget.events} | "
        f"{widget.previews_drawn} | {widget.criteria_drawings} | {widget.gui_busy_seconds:.2f} |",
        flush=True,
    )
    return cli_seconds, widget
