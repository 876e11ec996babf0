"""Fixtures for the GUI tests: a real napari viewer (napari's ``make_napari_viewer``)
holding a small synthetic MA-XRF cube, and the plugin's dock widgets."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from qtpy.QtCore import QTimer

from napari_deepcube._reader import cube_layer_data
from napari_deepcube._widgets._segment import SegmentationWidget
from napari_deepcube._widgets._spectrum_plot import SpectrumPlotWidget
from napari_deepcube.core.synthetic import SyntheticCube, make_painting

#: Settings that train a real model in a few seconds on the small cube.
QUICK = {"epochs": 3, "n_train": 1000, "k": 4}
#: Longest wait for a run to finish (ms): generous, the CI machine may be shared.
RUN_TIMEOUT_MS = 120_000


@pytest.fixture(scope="session")
def painting() -> SyntheticCube:
    """A 48 × 48 × 256 painting: small enough to train on in seconds."""
    return make_painting(48, 48, 256, seed=0)


@dataclass
class Session:
    """A viewer with the small cube and both dock widgets."""

    viewer: Any
    cube_layer: Any
    segment: SegmentationWidget
    plot: SpectrumPlotWidget
    run: Callable[..., None]


@pytest.fixture
def session(
    make_napari_viewer: Any, qtbot: Any, painting: SyntheticCube
) -> Iterator[Session]:
    """A viewer with the cube as an Image layer and both widgets docked.

    A run still going when the test ends (a failed wait) is cancelled before
    the viewer closes, so that it cannot outlive its widget.
    """
    viewer = make_napari_viewer()
    data, kwargs, _ = cube_layer_data(painting.cube, name="painting")
    layer = viewer.add_image(data, **kwargs)
    segment = SegmentationWidget(viewer)
    plot = SpectrumPlotWidget(viewer)
    viewer.window.add_dock_widget(segment, name="Deep spectral segmentation")
    viewer.window.add_dock_widget(plot, name="Cluster spectra")
    qtbot.waitUntil(lambda: segment.engine_ready, timeout=RUN_TIMEOUT_MS)

    def run(action: Callable[[], None] | None = None, **settings: Any) -> None:
        """Start a run (Train by default) and wait until the widget is idle again."""
        segment.settings.set_values(**{**QUICK, **settings})
        (action or segment.train)()
        assert segment.is_busy
        qtbot.waitUntil(lambda: not segment.is_busy, timeout=RUN_TIMEOUT_MS)

    yield Session(viewer, layer, segment, plot, run)
    if segment.is_busy:
        segment.cancel()
        qtbot.waitUntil(lambda: not segment.is_busy, timeout=RUN_TIMEOUT_MS)


@pytest.fixture
def errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Messages the widgets show with napari's ``show_error``."""
    shown: list[str] = []
    for module in ("_segment", "_spectrum_plot"):
        monkeypatch.setattr(f"napari_deepcube._widgets.{module}.show_error", shown.append)
    return shown


def region_mean(cube: np.ndarray, top: int, left: int, bottom: int, right: int) -> np.ndarray:
    """Mean spectrum of the pixels [top..bottom] x [left..right] (inclusive) of an (H, W, C) cube."""
    return cube[top : bottom + 1, left : right + 1].reshape(-1, cube.shape[-1]).mean(axis=0)


@dataclass
class EventLoopProbe:
    """A timer ticking every ``interval`` seconds on the GUI thread, for latency checks.

    A gap between two ticks longer than the interval is a turn of the event
    loop that held the GUI thread that long.
    """

    interval: float = 0.020
    ticks: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._timer = QTimer()
        self._timer.setInterval(round(self.interval * 1000))
        self._timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))
        self._timer.start()

    def stop(self) -> None:
        """Stop ticking."""
        self._timer.stop()

    def worst_gap(self, until: float = float("inf")) -> tuple[float, str]:
        """The longest gap between ticks up to ``until``, and where it was (for the failure message)."""
        gaps = np.diff([tick for tick in self.ticks if tick <= until])
        worst = int(np.argmax(gaps))
        return float(gaps[worst]), f"{gaps[worst] * 1000:.0f} ms (tick {worst} of {gaps.size})"
