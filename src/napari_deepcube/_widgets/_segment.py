"""The "Deep spectral segmentation" dock widget: configure, train, explore k, export.

A run (train, apply a model, re-cluster) is a napari GeneratorWorker over one
of :mod:`._jobs`: the GUI thread only receives progress events and the final
result, so the viewer stays responsive. While a run trains, a preview of the
cluster map (a strided sample of the pixels) updates in a Labels layer.
Cancel asks the worker to stop at its next event (the end of an epoch) and
removes the preview; no result layer is made half-way.

The widget is in one :class:`Phase` at a time, and :meth:`SegmentationWidget._enter`
is the only place that changes it: idle, running (a worker computes), showing
(the worker returned; its result is shown step by step) or closed (the dock
was closed: the run was stopped and nothing more happens). A run's context is
a frozen :class:`Run`; the worker's events carry the run they belong to, so
an event of a run that is over changes nothing.

What the buttons act on is the result of the cube chosen in the Cube
selector, which lives in that cube's clusters layer (its
:class:`~.._layer_records.LabelsRecord`): a widget opened later, or another
cube chosen, finds it there.

The worker's signals go through one ordered inbox (:meth:`_post`): a nested
event loop (a dialog or notification opened while handling one) would
otherwise deliver the next event (or the result) in the middle of handling
the previous one.

A run has no entry in napari's activity dock: the dock's own bar shows its
progress, and any napari progress bar keeps the status bar's "in progress"
animation running, which under a software OpenGL renderer redrew the window
for the whole run (a sixth of the widget's run time on the painting sample).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels, Layer, Shapes
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QEvent, QTimer
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from .._layer_records import SegmentationRun
from .._slider_label import follow_spectral_slider
from ..core.errors import InputError
from ..core.selection import pixel_mask
from . import _background, _jobs
from ._cluster_tools import ClusterTools
from ._criteria_plot import CriteriaPlot
from ._layer_combo import LayerCombo
from ._layers import (
    cube_variance,
    image_shape,
    is_cube_layer,
    labels_info,
    set_training_range,
    source_file,
    spectral_axis,
    training_range,
)
from ._probability_layers import export_labels_and_probabilities
from ._regions import covered_pixels
from ._results import (
    ResultLayers,
    discard,
    export_spectra_csv,
    show_preview,
    show_results,
    start_results,
)
from ._scroll import scrolling
from ._settings import KIND_NAMES, SettingsForm

if TYPE_CHECKING:
    import napari

    from ..core.config import SegmentConfig
    from ..core.pipeline import Progress
    from ..core.segmentation import FittedModel, Segmentation

#: Steps of the progress bars (the pipeline reports a fraction 0..1).
_STEPS = 100
#: How often the widget checks whether torch has finished loading (ms).
_ENGINE_POLL_MS = 250
_NO_CUBE = "open a spectral cube first: File > Open, or File > Open Sample > DeepCube"


class Phase(Enum):
    """What the widget is doing."""

    #: No run: the buttons act on the chosen cube's result.
    IDLE = "idle"
    #: A worker computes; its events move the progress bar and the preview.
    RUNNING = "running"
    #: The worker returned a result, shown one step per turn of the event loop.
    SHOWING = "showing"
    #: The dock was closed: its run was stopped, and events are dropped.
    CLOSED = "closed"


@dataclass(frozen=True)
class Run:
    """One run (train, apply a model, re-cluster) and what its events act on.

    Attributes
    ----------
    worker
        The thread worker computing it.
    cube_layer
        The cube layer it segments.
    layers
        The preview and confidence layers made when it started (train and
        apply): removed when it ends without a result. None for a re-cluster,
        which updates the existing result's layers.
    applied
        The model it applies without training (None: it trains or re-clusters).
    shown
        Called with its result once shown (an edit records itself for undo).
    """

    worker: GeneratorWorker
    cube_layer: Image
    layers: ResultLayers | None
    applied: FittedModel | None = None
    shown: Callable[[SegmentationRun], None] | None = None


class SegmentationWidget(QWidget):
    """Dock widget that segments a cube layer by deep spectral clustering.

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it).

    Attributes
    ----------
    model
        The model applied by "Apply model": the one last trained, loaded, or
        found with a result when the widget opened.
    phase
        What the widget is doing (see :class:`Phase`).
    engine_ready
        True once torch and the core are imported (in a background thread,
        when the widget opens); a run started before waits for the import.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.model: FittedModel | None = None
        self.phase = Phase.IDLE
        self._run: Run | None = None
        # The result being shown, one step per turn of the event loop (phase SHOWING).
        self._showing: Generator[None, None, None] | None = None
        # The layers each result of this widget is shown in, to update them in place.
        self._shown: list[ResultLayers] = []
        # Only the latest preview of a run is drawn, and the metrics of its events.
        self._pending_preview: tuple[np.ndarray, int] | None = None
        self._metrics: dict[str, str] = {}
        # What the result being shown says about how the model it applied fits (see _show_result).
        self._fit_warnings: list[str] = []
        self._inbox: deque[Callable[[], None]] = deque()
        self._draining = False
        self._later = _Later(self, self._post)
        self._docked = False

        self.cube_combo = LayerCombo(napari_viewer, is_cube_layer)
        self.cube_combo.setToolTip("The spectral cube to segment (a 3-D image layer)")
        self.mask_combo = LayerCombo(napari_viewer, self._is_mask_layer, allow_none=True)
        self.mask_combo.setToolTip(
            "Segment only the pixels this Labels layer paints or this Shapes layer's shapes cover; "
            "the others get label 0"
        )
        # The cube layer whose record the Range setting mirrors (see _follow_training_range).
        self._range_layer: Image | None = None
        self.settings = SettingsForm()
        self.settings.spectral_range.changed.connect(self._on_range_typed)
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("Train the autoencoder on this cube and cluster its pixels")
        self.train_button.clicked.connect(self.train)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop at the end of the current epoch; nothing is kept")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, _STEPS)
        self.progress_bar.setTextVisible(True)
        self.stage_label = _status_label("Ready.")
        self.metrics_label = _status_label("")

        self.criteria_plot = CriteriaPlot(napari_viewer)
        self.criteria_plot.k_picked.connect(self.pick_k)
        self.result_label = _status_label("No segmentation yet.")
        # The numbers behind the reason, for whoever wants them: hidden until asked for.
        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Show the numbers the choice of k compared")
        self.details_label = _status_label("")
        self.details_label.setVisible(False)
        self.details_button.toggled.connect(self.details_label.setVisible)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 255)
        self.k_spin.setToolTip("Number of clusters to re-cluster into")
        self.recluster_button = QPushButton("Re-cluster")
        self.recluster_button.setToolTip(
            "Cluster the trained embedding into k clusters, without training again"
        )
        self.recluster_button.clicked.connect(lambda: self.pick_k(self.k_spin.value()))

        self.model_label = _status_label("No model.")
        self.save_model_button = QPushButton("Save model…")
        self.save_model_button.clicked.connect(self._ask_save_model)
        self.load_model_button = QPushButton("Load model…")
        self.load_model_button.clicked.connect(self._ask_load_model)
        self.apply_button = QPushButton("Apply model")
        self.apply_button.setToolTip(
            "Segment the chosen cube with the trained or loaded model, without training"
        )
        self.apply_button.clicked.connect(self.apply_model)
        self.export_tiff_button = QPushButton("Labels TIFF…")
        self.export_tiff_button.setToolTip(
            "Save the chosen cube's cluster map as a TIFF label map, and each cluster's probability "
            "map beside it (NAME_probabilities.tif, one float32 page a cluster)"
        )
        self.export_tiff_button.clicked.connect(self._ask_export_tiff)
        self.export_csv_button = QPushButton("Spectra CSV…")
        self.export_csv_button.setToolTip(
            "Save the chosen cube's mean and std spectrum of each cluster as CSV"
        )
        self.export_csv_button.clicked.connect(self._ask_export_csv)
        self.cluster_tools = ClusterTools(napari_viewer, self._chosen, self.start_job)

        self._build_layout()
        # A result shown before the widget opened (it was closed and opened again).
        found = self.result
        if found is not None:
            self.model = found.segmentation.model
            self._describe_model(found.segmentation)
        self._describe_result()
        self._update_buttons()
        self._follow_training_range(self.cube_combo.layer)
        self.cube_combo.layer_changed.connect(self._on_cube_changed)
        # A clusters layer removed or added changes what the chosen cube has.
        napari_viewer.layers.events.removed.connect(self._on_layers_changed)
        napari_viewer.layers.events.inserted.connect(self._on_layers_changed)
        follow_spectral_slider(napari_viewer)
        _jobs.start_loading_engine()
        if not self.engine_ready:
            self.stage_label.setText("Loading the deep-learning engine (torch)…")
            self._engine_timer = QTimer(self)
            self._engine_timer.setInterval(_ENGINE_POLL_MS)
            self._engine_timer.timeout.connect(self._check_engine)
            self._engine_timer.start()

    @property
    def engine_ready(self) -> bool:
        """True once torch and the core are imported."""
        return _jobs.engine_loaded()

    def _check_engine(self) -> None:
        if self.engine_ready:
            self._engine_timer.stop()
            if self.phase is Phase.IDLE:
                self.stage_label.setText("Ready.")

    def _build_layout(self) -> None:
        top = QFormLayout()
        top.addRow("Cube", self.cube_combo)
        top.addRow("Mask", self.mask_combo)
        run_row = QHBoxLayout()
        run_row.addWidget(self.train_button)
        run_row.addWidget(self.cancel_button)

        # The longest part, and the one looked at least once chosen: it folds away.
        self.settings_section = QCollapsible("Settings")
        self.settings_section.setDuration(0)
        self.settings_section.addWidget(self.settings.widget)
        self.settings_section.expand(animate=False)

        results = QGroupBox("Clusters")
        results_layout = QVBoxLayout(results)
        results_layout.addWidget(self.result_label)
        results_layout.addWidget(self.criteria_plot)
        k_row = QHBoxLayout()
        k_row.addWidget(QLabel("k"))
        k_row.addWidget(self.k_spin)
        k_row.addWidget(self.recluster_button)
        k_row.addStretch(1)
        k_row.addWidget(self.details_button)
        results_layout.addLayout(k_row)
        results_layout.addWidget(self.details_label)
        # Folded until wanted: the dock stays short on a laptop screen.
        self.tools_section = QCollapsible("Maps and edits")
        self.tools_section.setDuration(0)
        self.tools_section.addWidget(self.cluster_tools)
        results_layout.addWidget(self.tools_section)

        model = QGroupBox("Model")
        model_layout = QVBoxLayout(model)
        model_layout.addWidget(self.model_label)
        model_row = QHBoxLayout()
        for button in (self.save_model_button, self.load_model_button, self.apply_button):
            model_row.addWidget(button)
        model_layout.addLayout(model_row)

        export = QGroupBox("Export")
        export_row = QHBoxLayout(export)
        export_row.addWidget(self.export_tiff_button)
        export_row.addWidget(self.export_csv_button)

        layout = QVBoxLayout()
        layout.addLayout(top)
        layout.addWidget(self.settings_section)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.metrics_label)
        layout.addWidget(results)
        layout.addWidget(model)
        layout.addWidget(export)
        layout.addStretch(1)
        scrolling(self, layout)

    # ------------------------------------------------------------------ state

    @property
    def is_busy(self) -> bool:
        """True while a run is in progress (computing, or its result being shown)."""
        return self.phase in (Phase.RUNNING, Phase.SHOWING)

    @property
    def worker(self) -> GeneratorWorker | None:
        """The running worker, or None when no run is going."""
        return self._run.worker if self._run is not None else None

    @property
    def result(self) -> SegmentationRun | None:
        """The result of the chosen cube: its newest clusters layer's segmentation, or None."""
        layer = self.cube_combo.layer
        return None if layer is None else _result_of(self.viewer, layer.name)[1]

    @property
    def segmentation(self) -> Segmentation | None:
        """The chosen cube's segmentation (see :attr:`result`), or None."""
        found = self.result
        return found.segmentation if found is not None else None

    def _enter(self, phase: Phase, run: Run | None = None,
               showing: Generator[None, None, None] | None = None) -> None:
        """Change phase: the only place where the phase, the run and its display change.

        Leaving a run removes its layers unless its result is in them (a run
        that ends without one).
        """
        previous = self._run
        if previous is not None and run is not previous:
            if self.phase is Phase.RUNNING and previous.layers is not None:
                discard(self.viewer, previous.layers)
            self._pending_preview = None
        self.phase, self._run, self._showing = phase, run, showing
        if phase is not Phase.CLOSED:
            self._update_buttons()

    def _update_buttons(self) -> None:
        """Enable what the phase, the chosen cube's result and the model allow."""
        idle = self.phase is Phase.IDLE
        have_result = idle and self.result is not None
        self.settings.enabled = idle
        self.cube_combo.setEnabled(idle)
        self.mask_combo.setEnabled(idle)
        self.train_button.setEnabled(idle)
        self.cancel_button.setEnabled(self.phase is Phase.RUNNING)
        self.criteria_plot.setEnabled(have_result)
        for widget in (self.k_spin, self.recluster_button, self.export_tiff_button,
                       self.export_csv_button):
            widget.setEnabled(have_result)
        self.cluster_tools.set_enabled(have_result)
        self.save_model_button.setEnabled(idle and self.model is not None)
        self.apply_button.setEnabled(idle and self.model is not None)
        self.load_model_button.setEnabled(idle)

    def _on_cube_changed(self, layer: Image | None) -> None:
        self.mask_combo.refresh()  # the layers that fit this cube's image
        self._follow_training_range(layer)
        if self.phase is Phase.IDLE:
            self._describe_result()
            self._update_buttons()

    # ------------------------------------------------------------ restriction

    def _is_mask_layer(self, layer: Layer) -> bool:
        """A Shapes layer, or a 2-D Labels layer of the chosen cube's image size."""
        if isinstance(layer, Shapes):
            return True
        cube = self.cube_combo.layer
        return (
            isinstance(layer, Labels) and layer.ndim == 2 and cube is not None
            and tuple(layer.data.shape) == image_shape(cube)
        )

    def mask_pixels(self) -> np.ndarray | None:
        """The pixels the chosen Mask layer restricts a run to (H, W), or None for every pixel.

        Raises
        ------
        InputError
            If the mask covers no pixel or does not fit the cube.
        """
        mask_layer, cube = self.mask_combo.layer, self.cube_combo.layer
        if mask_layer is None or cube is None:
            return None
        shape = image_shape(cube)
        return pixel_mask(covered_pixels(mask_layer, shape), shape, f"layer {mask_layer.name!r}")

    def _follow_training_range(self, layer: Image | None) -> None:
        """Show the chosen cube's training range in the settings, and follow its changes."""
        if self._range_layer is not None:
            self._range_layer.events.metadata.disconnect(self._show_training_range)
        self._range_layer = layer
        if layer is not None:
            layer.events.metadata.connect(self._show_training_range)
            unit = spectral_axis(layer).unit
            self.settings.spectral_range.native.setPlaceholderText(f"all channels ({unit})")
        self._show_training_range()

    def _show_training_range(self, event: object = None) -> None:
        layer = self._range_layer
        text = training_range(layer) if layer is not None else ""
        if self.settings.spectral_range.value != text:
            self.settings.spectral_range.value = text

    def _on_range_typed(self, text: str) -> None:
        if self._range_layer is not None:
            set_training_range(self._range_layer, text)

    def _on_layers_changed(self, event: object = None) -> None:
        # Mid-run the result's layers come and go as they are made; the end of the run updates.
        if self.phase is Phase.IDLE:
            self._update_buttons()

    def event(self, event: QEvent | None) -> bool:
        """Stop when napari closes the dock (it takes the widget out: a parent change to None)."""
        if event is not None and event.type() == QEvent.Type.ParentChange:
            if self.parent() is not None:
                self._docked = True
            elif self._docked:
                self.close_widget()
        return super().event(event)

    def close_widget(self) -> None:
        """Stop the run, if any, and go quiet: the dock was closed.

        A run still computing is stopped and leaves no layers; a result being
        shown is shown to the end, since it is complete. Nothing the worker sends afterwards is handled.
        """
        if self.phase is Phase.CLOSED:
            return
        if self._run is not None and self.phase is Phase.RUNNING:
            self._run.worker.quit()
        while self._showing is not None and self._next_step():
            pass
        self._enter(Phase.CLOSED)
        self._follow_training_range(None)
        self.viewer.layers.events.removed.disconnect(self._on_layers_changed)
        self.viewer.layers.events.inserted.disconnect(self._on_layers_changed)

    # ------------------------------------------------------------------- runs

    def train(self) -> None:
        """Train a model on the chosen cube and cluster it (in a worker)."""
        self._start_segment(model=None)

    def apply_model(self) -> None:
        """Segment the chosen cube with :attr:`model`, without training (in a worker)."""
        if self.model is None:
            show_error("no model yet: train one or load one with Load model…")
            return
        self._start_segment(model=self.model)

    def _start_segment(self, model: FittedModel | None) -> None:
        layer = self.cube_combo.layer
        if layer is None:
            show_error(_NO_CUBE)
            return
        if self.phase is not Phase.IDLE:
            return
        try:
            mask = self.mask_pixels()
        except InputError as error:
            show_error(str(error))
            return
        source = _jobs.CubeSource(
            layer.data, spectral_axis(layer), layer.name, source_file(layer), mask, cube_variance(layer)
        )
        description = "Applying the model" if model is not None else "Training"
        settings = self.settings.values()
        # The preview's colours cover every k the run may try, and no more: a
        # larger colour table costs napari more on each preview.
        most_k = (settings["k"] or settings["k_max"]) if model is None else model.k
        layers = start_results(self.viewer, layer, preview_labels=most_k)
        self._start(
            create_worker(_jobs.segment_job, source, settings, model, _start_thread=False),
            f"{description}: {layer.name}", layer, layers, applied=model,
        )

    def pick_k(self, k: int) -> None:
        """Re-cluster the chosen cube's segmentation into ``k`` clusters (in a worker)."""
        found, layer = self.result, self.cube_combo.layer
        if found is None or layer is None or self.phase is not Phase.IDLE:
            return
        if k == found.segmentation.k:
            return
        worker = create_worker(
            _jobs.recluster_job, found.segmentation, found.cube, int(k), _start_thread=False
        )
        self._start(worker, f"Re-clustering into k={k}", layer, None)

    def start_job(
        self, job: Callable[..., Generator[Progress, None, _jobs.Outcome]], *args: object,
        description: str, shown: Callable[[SegmentationRun], None],
    ) -> None:
        """Run ``job(*args)`` on the chosen cube's result like a re-cluster; ``shown(result)`` once shown."""
        layer = self.cube_combo.layer
        if layer is None or self.phase is not Phase.IDLE:
            return
        self._start(create_worker(job, *args, _start_thread=False), description, layer, None, shown=shown)

    def _chosen(self) -> tuple[Image | None, Labels | None, SegmentationRun | None]:
        """The chosen cube layer, its newest clusters layer and that layer's result."""
        layer = self.cube_combo.layer
        return (None, None, None) if layer is None else (layer, *_result_of(self.viewer, layer.name))

    def cancel(self) -> None:
        """Stop the running job at its next progress event."""
        if self._run is not None and self.phase is Phase.RUNNING:
            self.stage_label.setText("Cancelling…")
            self._run.worker.quit()

    def _start(
        self, worker: GeneratorWorker, description: str, layer: Image, layers: ResultLayers | None,
        *, applied: FittedModel | None = None, shown: Callable[[SegmentationRun], None] | None = None,
    ) -> None:
        """Run ``worker``, its events handled in order (see :meth:`_post`) as this run's."""
        run = Run(worker, layer, layers, applied, shown)
        worker.yielded.connect(partial(self._post_for, run, self._on_progress))
        worker.returned.connect(partial(self._post_for, run, self._on_returned))
        worker.aborted.connect(partial(self._post_for, run, self._on_aborted))
        worker.errored.connect(partial(self._post_for, run, self._on_errored))
        worker.finished.connect(partial(self._post_for, run, self._on_finished))
        # The widget deleted with the window (napari closing) must not leave a run going.
        self.destroyed.connect(worker.quit)
        self.progress_bar.setValue(0)
        self.stage_label.setText(f"{description}…")
        self.metrics_label.setText("")
        self._metrics = {}
        self._enter(Phase.RUNNING, run)
        worker.start()

    def _post_for(self, run: Run, handler: Callable[..., None], *args: object) -> None:
        """Handle an event of ``run``'s worker, unless that run is over."""
        self._post(lambda: handler(*args) if run is self._run else None)

    def _post(self, handler: Callable[[], None]) -> None:
        """Run ``handler()`` after the handlers posted before it, never inside one.

        Dropped once the widget is closed: the worker may still report after that.
        """
        if self.phase is Phase.CLOSED or not _background.alive(self):
            return
        self._inbox.append(handler)
        if self._draining:
            return
        self._draining = True
        try:
            while self._inbox:
                self._inbox.popleft()()
        finally:
            self._draining = False

    def _on_progress(self, event: Progress) -> None:
        """Show a progress event: text now; the preview later, in a turn of the event loop of its own."""
        self.progress_bar.setValue(round(event.fraction * _STEPS))
        self.stage_label.setText(f"{event.stage}: {event.message}")
        if event.epoch is not None:
            self._metrics["loss"] = (
                f"loss {event.epoch.loss:.4g} (validation {event.epoch.validation_loss:.4g})"
            )
        if event.k is not None:
            self._metrics["k"] = f"k = {event.k}"
            self._metrics.pop("silhouette", None)
        if event.silhouette is not None and np.isfinite(event.silhouette):
            self._metrics["silhouette"] = f"silhouette {event.silhouette:.3f}"
        # The latest value of each, so that k and silhouette stay between previews.
        self.metrics_label.setText(" · ".join(self._metrics.values()))
        if event.preview is not None:
            self._pending_preview = (event.preview, event.preview_stride)
            self._later.call(self._show_preview)

    def _show_preview(self) -> None:
        """Show the latest preview map (only the latest, when several came at once)."""
        run, pending = self._run, self._pending_preview
        self._pending_preview = None
        if run is None or run.layers is None or pending is None or self.phase is not Phase.RUNNING:
            return
        if run.layers.clusters in self.viewer.layers:  # else the user removed it: no new layer
            show_preview(run.layers.clusters, *pending)

    def _on_returned(self, outcome: _jobs.Outcome) -> None:
        if isinstance(outcome, _jobs.Failed):
            self.stage_label.setText("Stopped: the input needs a change (see the notification).")
            self._enter(Phase.IDLE)
            show_error(outcome.message)
            return
        run = self._run
        if run is None or run.cube_layer not in self.viewer.layers:
            self.stage_label.setText("The cube layer was closed during the run; nothing shown.")
            self._enter(Phase.IDLE)
            return
        self._enter(Phase.SHOWING, run, self._show_result(outcome, run))
        self._later.call(self._step)

    def _show_result(self, outcome: SegmentationRun, run: Run) -> Generator[None, None, None]:
        """Show a run's result in steps, each in its own turn of the event loop.

        One turn doing all of it would stall the viewer for a few hundred
        milliseconds (each layer update and canvas redraw costs napari tens).
        """
        self._fit_warnings = (
            [] if run.applied is None else outcome.segmentation.fit_warnings(run.applied)
        )
        self.model = outcome.segmentation.model
        clusters, _ = _result_of(self.viewer, run.cube_layer.name)
        existing = next((r for r in self._shown if r.clusters is clusters), None)
        if clusters is not None and existing is None:
            existing = ResultLayers(clusters, None)
        shown = yield from show_results(
            self.viewer, outcome, run.cube_layer,
            latent_layers=self.settings.latent_layers.value, existing=existing, fresh=run.layers,
        )
        self._shown = [r for r in self._shown if r.clusters is not shown.clusters] + [shown]
        if run.shown is not None:
            run.shown(outcome)

    def _step(self) -> None:
        if self._next_step():
            self._later.call(self._step)

    def _next_step(self) -> bool:
        """Take the next step of showing the result; False (and the run over) after the last."""
        if self._showing is None:
            return False
        try:
            next(self._showing)
        except StopIteration:
            self._end_shown_run()
            return False
        except BaseException:
            self._enter(Phase.IDLE)
            raise
        return True

    def _end_shown_run(self) -> None:
        self._enter(Phase.IDLE)
        self.progress_bar.setValue(_STEPS)  # a re-cluster reports one early step only
        found = self.result
        if found is not None:
            segmentation = found.segmentation
            done = f"Done in {sum(segmentation.timings.values()):.1f} s."
            warnings, self._fit_warnings = self._fit_warnings, []
            self.stage_label.setText(" ".join([done, *(f"Beware: {w}." for w in warnings)]))
            for warning in warnings:
                show_warning(warning)
            self._describe_model(segmentation)
        self._describe_result()

    def _on_aborted(self) -> None:
        self.stage_label.setText("Cancelled; nothing was changed.")
        self._enter(Phase.IDLE)

    def _on_errored(self, error: Exception) -> None:
        # napari reports the error itself (with its traceback: it is a bug, not a bad input).
        self.stage_label.setText(f"Failed: {error}")
        self._enter(Phase.IDLE)

    def _on_finished(self) -> None:
        # Returned, aborted or errored came first and ended the run; this is a worker
        # that stopped without any of them (quit before it started).
        if self.phase is Phase.RUNNING:
            self._enter(Phase.IDLE)

    def _describe_result(self) -> None:
        """Describe the chosen cube's result: text, the criteria plot (drawn in a worker), k."""
        found = self.result
        if found is None:
            self.result_label.setText("No segmentation of this cube yet.")
            self._show_details("")
            self.metrics_label.setText("")
            if self.criteria_plot.criteria or self.criteria_plot.chosen is not None:
                self.criteria_plot.show_criteria({}, None)
            return
        segmentation = found.segmentation
        sizes = segmentation.cluster_sizes
        self.metrics_label.setText(
            f"{segmentation.k} clusters of {min(sizes)}–{max(sizes)} pixels "
            f"({segmentation.n_pixels} pixels segmented)"
        )
        self.result_label.setText(
            f"{(segmentation.k_summary or segmentation.k_reason).rstrip('.')}. "
            "Click a k on the plot to re-cluster without training."
        )
        self._show_details(k_details(segmentation))
        if (self.criteria_plot.criteria, self.criteria_plot.chosen) != (
            segmentation.criteria, segmentation.k
        ):
            self.criteria_plot.show_criteria(segmentation.criteria, segmentation.k)
        self.k_spin.setValue(segmentation.k)
        self.cluster_tools.show_result()

    def _show_details(self, text: str) -> None:
        self.details_label.setText(text)
        self.result_label.setToolTip(text)
        self.details_button.setEnabled(bool(text))

    def _describe_model(self, segmentation: Segmentation) -> None:
        config = segmentation.config
        # A model applied without training was trained on another cube, whose name it does not keep.
        provenance = "trained on" if segmentation.history else "applied, without training, to"
        kind = segmentation.model.preprocessor.kind
        how = "detected" if config.kind == "auto" else "as set"
        self.model_label.setText(
            f"{config.model.upper()}, latent size {config.latent_dim}, k = {segmentation.k}, "
            f"{provenance} {segmentation.cube_name or 'a cube'}; data: "
            f"{KIND_NAMES.get(kind, kind)} ({how}).{_selection_note(config)}{_noise_note(segmentation)}"
            f"{_frame_note(segmentation)}"
        )

    # ----------------------------------------------------------------- models

    def save_model(self, path: str | Path) -> None:
        """Write :attr:`model` to ``path`` (a ``.pt`` file), in a worker."""
        if self.model is None:
            show_error("no model to save yet: train one first")
            return
        _background.run(
            partial(_jobs.save_model_job, path, self.model), self._on_saved,
            background=True, owner=self,
        )

    def load_model(self, path: str | Path) -> None:
        """Read a model saved with Save model, in a worker; then Apply model uses it."""
        _background.run(
            partial(_jobs.load_model_job, path), self._on_loaded, background=True, owner=self
        )

    def _on_saved(self, result: Path | _jobs.Failed) -> None:
        if isinstance(result, _jobs.Failed):
            show_error(result.message)
        else:
            show_info(f"model saved to {result}")

    def _on_loaded(self, result: FittedModel | _jobs.Failed) -> None:
        if isinstance(result, _jobs.Failed):
            show_error(result.message)
            return
        self.model = result
        config = result.config
        self.model_label.setText(
            f"Loaded: {config.model.upper()}, latent size {config.latent_dim}, k = {result.k}."
            f"{_selection_note(config)} Choose a cube and Apply model."
        )
        if self.phase is not Phase.CLOSED:
            self._update_buttons()

    # ---------------------------------------------------------------- exports

    def export_tiff(self, path: str | Path) -> Path:
        """Write the chosen cube's cluster map as a TIFF label map, and its probabilities beside it.

        Returns the label map's path; the probabilities go to
        :func:`~._probability_layers.probabilities_path` of it.
        """
        _, clusters, found = self._chosen()
        if clusters is None or found is None:
            raise InputError("no cluster map of the chosen cube to export: train first")
        return export_labels_and_probabilities(path, clusters, found.segmentation)[0]

    def export_csv(self, path: str | Path) -> Path:
        """Write the chosen cube's cluster mean and std spectra as CSV; returns the path."""
        segmentation = self.segmentation
        if segmentation is None:
            raise InputError("no clusters of the chosen cube to export: train first")
        return export_spectra_csv(path, segmentation)

    def _ask_save_model(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.pt", "Model (*.pt)")
        if path:
            self.save_model(path)

    def _ask_load_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load model", "", "Model (*.pt)")
        if path:
            self.load_model(path)

    def _ask_export_tiff(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export cluster map", "clusters.tif", "TIFF (*.tif *.tiff)"
        )
        if path:
            self._export(self.export_tiff, path)

    def _ask_export_csv(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Export cluster spectra", "cluster_spectra.csv", "CSV (*.csv)"
        )
        if path:
            self._export(self.export_csv, path)

    def _export(self, write: Callable[[str], Path], path: str) -> None:
        try:
            written = write(path)
        except InputError as error:
            show_error(str(error))
            return
        show_info(f"saved {written}")


def _result_of(
    viewer: napari.viewer.Viewer, cube_name: str
) -> tuple[Labels | None, SegmentationRun | None]:
    """The newest clusters layer computed from the cube layer ``cube_name``, and its result."""
    for layer in reversed(list(viewer.layers)):
        info = labels_info(layer)
        if info is not None and info.kind == "clusters" and info.source_layer == cube_name:
            if info.run is not None and isinstance(layer, Labels):
                return layer, info.run
    return None, None


#: How the details name each criterion of the choice of k.
_CRITERIA_NAMES = {
    "silhouette": "silhouette", "bic": "BIC", "log_likelihood": "log-likelihood",
    "frontier_density": "frontier density", "spatial_coherence": "spatial coherence",
    "mixing_ratio": "mixing ratio", "shift_gain": "shift gain",
    "held_out_log_likelihood": "held-out log-likelihood",
}


def k_details(segmentation: Segmentation) -> str:
    """The reason for k with its numbers, and every criterion's value at that k."""
    k = segmentation.k
    values = [
        f"{_CRITERIA_NAMES.get(name, name)} {curve[k]:.4g}"
        for name, curve in segmentation.criteria.items() if k in curve and np.isfinite(curve[k])
    ]
    at_k = f" At k={k}: {', '.join(values)}." if values else ""
    return f"{segmentation.k_reason.rstrip('.')}.{at_k}"


def _selection_note(config: SegmentConfig) -> str:
    """A sentence naming the channels a model learns from (its own, also when applied); "" for all."""
    if config.channels:
        return f" Learns from channels {config.channels} only."
    if config.spectral_range:
        return f" Learns from {config.spectral_range} only."
    return ""


def _noise_note(segmentation: Segmentation) -> str:
    """A sentence on what the run divided its features by, when they were whitened; "" otherwise."""
    noise = segmentation.noise
    if noise is None or noise.source not in ("variance", "channel"):
        return ""
    return f" Noise: {noise.description}."


def _frame_note(segmentation: Segmentation) -> str:
    """A sentence on whether the spectra were moved to a rest frame, and why; "" where not asked."""
    reason = segmentation.frame_reason
    return f" {reason[0].upper()}{reason[1:]}." if reason else ""


def _status_label(text: str) -> QLabel:
    """A wrapping label whose text, however long, never widens the dock.

    A wider dock narrows napari's canvas, which then reallocates and redraws
    everything: over 100 ms of GUI thread under software OpenGL, and a jump
    of the image under the user's eyes. Two lines are reserved, so read-outs
    changing length do not move the widgets below either.
    """
    label = QLabel(text)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setMinimumHeight(2 * label.fontMetrics().lineSpacing())
    return label


class _Later:
    """Calls put off to later turns of the event loop: one call per turn, each queued once.

    Work that may hold the GUI thread (a preview's redraw, a step of showing
    a result) each gets a turn of its own, so that no single turn stalls the
    viewer.

    Parameters
    ----------
    parent
        Owner of the timer.
    post
        What runs each call (the widget's ordered inbox).
    """

    def __init__(self, parent: QWidget, post: Callable[[Callable[[], None]], None]) -> None:
        self._queue: list[Callable[[], None]] = []
        self._post = post
        self._timer = QTimer(parent)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._next)

    def call(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` at a later turn, unless it is already waiting for one."""
        if callback not in self._queue:
            self._queue.append(callback)
        if not self._timer.isActive():
            self._timer.start()

    def _next(self) -> None:
        if not self._queue:
            return
        callback = self._queue.pop(0)
        if self._queue:
            self._timer.start()
        self._post(callback)
