"""The "Deep spectral segmentation" dock widget: configure, train, explore k, export.

A run (train, apply a model, re-cluster) is a napari GeneratorWorker over one
of :mod:`._jobs`: the GUI thread only receives progress events and the final
result, so the viewer stays responsive. While a run trains, a preview of the
cluster map (a strided sample of the pixels) updates in a Labels layer.
Cancel asks the worker to stop at its next event (the end of an epoch) and
removes the preview; no result layer is made half-way.

The worker's signals go through one ordered inbox (:meth:`_post`): napari's
progress bars run a nested event loop when they update, which would
otherwise deliver the next event (or the result) in the middle of handling
the previous one.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils import progress
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
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

from ..core.errors import InputError
from . import _background, _jobs
from ._criteria_plot import CriteriaPlot
from ._layer_combo import LayerCombo
from ._layers import is_cube_layer, record, spectral_axis
from ._results import (
    ResultLayers,
    discard,
    export_labels_tiff,
    export_spectra_csv,
    show_preview,
    show_results,
    start_results,
)
from ._settings import SettingsForm

if TYPE_CHECKING:
    import napari

#: Steps of the progress bars (the pipeline reports a fraction 0..1).
_STEPS = 100
#: How often the widget checks whether torch has finished loading (ms).
_ENGINE_POLL_MS = 250
#: Python's GIL switch interval during a run (s; Python's default is 0.005). Every Qt
#: event passes through napari's Python event filter and so needs the GIL; with the
#: default, each hand-over from a busy worker waits up to 5 ms, which both stalls
#: the viewer and slows the run three- to six-fold (measured on 2 cores).
_RUN_SWITCH_INTERVAL = 0.001
_NO_CUBE = "open a spectral cube first: File > Open, or File > Open Sample > DeepCube"


class SegmentationWidget(QWidget):
    """Dock widget that segments a cube layer by deep spectral clustering.

    Parameters
    ----------
    napari_viewer
        The viewer (napari passes it).

    Attributes
    ----------
    segmentation
        The latest result (a ``Segmentation``), or None.
    model
        The model applied by "Apply model": the one last trained or loaded.
    worker
        The running worker, or None when idle.
    engine_ready
        True once torch and the core are imported (in a background thread,
        when the widget opens); a run started before waits for the import.
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.segmentation: Any = None
        self.model: Any = None
        self.worker: GeneratorWorker | None = None
        self._cube: Any = None
        self._results: list[tuple[Image, ResultLayers]] = []
        self._run_layer: Image | None = None
        self._fresh: ResultLayers | None = None
        self._pending_preview: tuple[np.ndarray, int] | None = None
        # Through the inbox too: both may run napari code that spins a nested event loop.
        self._preview_timer = _deferred(self, partial(self._post, self._show_preview))
        self._activity_timer = _deferred(self, partial(self._post, self._update_activity))
        self._step_timer = _deferred(self, partial(self._post, self._next_step))
        self._showing: Generator[None, None, None] | None = None
        self._worker_done = False
        self._metrics: dict[str, str] = {}
        self._pbar: progress | None = None
        self._inbox: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._draining = False

        self.cube_combo = LayerCombo(napari_viewer, is_cube_layer)
        self.cube_combo.setToolTip("The spectral cube to segment (a 3-D image layer)")
        self.settings = SettingsForm()
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
        self.export_tiff_button.setToolTip("Save the cluster map as a TIFF label map")
        self.export_tiff_button.clicked.connect(self._ask_export_tiff)
        self.export_csv_button = QPushButton("Spectra CSV…")
        self.export_csv_button.setToolTip("Save each cluster's mean and std spectrum as CSV")
        self.export_csv_button.clicked.connect(self._ask_export_csv)

        self._build_layout()
        self._set_busy(False)
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
            if not self.is_busy:
                self.stage_label.setText("Ready.")

    def _build_layout(self) -> None:
        top = QFormLayout()
        top.addRow("Cube", self.cube_combo)
        run_row = QHBoxLayout()
        run_row.addWidget(self.train_button)
        run_row.addWidget(self.cancel_button)

        results = QGroupBox("Clusters")
        results_layout = QVBoxLayout(results)
        results_layout.addWidget(self.result_label)
        results_layout.addWidget(self.criteria_plot)
        k_row = QHBoxLayout()
        k_row.addWidget(QLabel("k"))
        k_row.addWidget(self.k_spin)
        k_row.addWidget(self.recluster_button)
        k_row.addStretch(1)
        results_layout.addLayout(k_row)

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

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.settings.widget)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.metrics_label)
        layout.addWidget(results)
        layout.addWidget(model)
        layout.addWidget(export)
        layout.addStretch(1)

    # ------------------------------------------------------------------ state

    @property
    def is_busy(self) -> bool:
        """True while a run is in progress."""
        return self.worker is not None

    def _set_busy(self, busy: bool) -> None:
        have_result = self.segmentation is not None
        self.settings.enabled = not busy
        self.cube_combo.setEnabled(not busy)
        self.train_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.criteria_plot.setEnabled(not busy and have_result)
        for widget in (self.k_spin, self.recluster_button, self.export_tiff_button,
                       self.export_csv_button):
            widget.setEnabled(not busy and have_result)
        self.save_model_button.setEnabled(not busy and self.model is not None)
        self.apply_button.setEnabled(not busy and self.model is not None)
        self.load_model_button.setEnabled(not busy)

    def _clusters_layer(self) -> Labels | None:
        for cube_layer, layers in self._results:
            if cube_layer is self._run_layer and layers.clusters in self.viewer.layers:
                return layers.clusters
        return None

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

    def _start_segment(self, model: Any) -> None:
        layer = self.cube_combo.layer
        if layer is None:
            show_error(_NO_CUBE)
            return
        source = _jobs.CubeSource(
            layer.data, spectral_axis(layer), layer.name, str(record(layer).get("source", ""))
        )
        description = "Applying the model" if model is not None else "Training"
        settings = self.settings.values()
        started = self._start(
            _jobs.segment_job, (source, settings, model), f"{description}: {layer.name}", layer
        )
        if started:
            # The preview's colours cover every k the run may try, and no more: a
            # larger colour table costs napari more on each preview.
            most_k = (settings["k"] or settings["k_max"]) if model is None else model.k
            self._fresh = start_results(self.viewer, layer, preview_labels=most_k)

    def pick_k(self, k: int) -> None:
        """Re-cluster the latest segmentation into ``k`` clusters (in a worker)."""
        if self.segmentation is None or self.is_busy:
            return
        if k == self.segmentation.k:
            return
        self._start(
            _jobs.recluster_job, (self.segmentation, self._cube, int(k)),
            f"Re-clustering into k={k}", self._run_layer,
        )

    def cancel(self) -> None:
        """Stop the running job at its next progress event."""
        if self.worker is not None:
            self.stage_label.setText("Cancelling…")
            self.worker.quit()

    def _start(
        self, job: Any, args: tuple[Any, ...], description: str, layer: Image | None
    ) -> bool:
        """Run ``job(*args)`` in a worker; False when a run is already going."""
        if self.is_busy:
            return False
        worker = create_worker(job, *args, _start_thread=False)
        worker.yielded.connect(partial(self._post, self._on_progress))
        worker.returned.connect(partial(self._post, self._on_returned))
        worker.aborted.connect(partial(self._post, self._on_aborted))
        worker.errored.connect(partial(self._post, self._on_errored))
        worker.finished.connect(partial(self._post, self._on_finished))
        # A closed widget must not leave a run going.
        self.destroyed.connect(worker.quit)
        self.worker = worker
        self._worker_done = False
        self._run_layer = layer
        self._pbar = progress(total=_STEPS, desc=description)
        self.progress_bar.setValue(0)
        self.stage_label.setText(f"{description}…")
        self.metrics_label.setText("")
        self._metrics = {}
        self._set_busy(True)
        # Restored by the worker itself, even if the widget is closed first.
        worker.finished.connect(partial(sys.setswitchinterval, sys.getswitchinterval()))
        sys.setswitchinterval(_RUN_SWITCH_INTERVAL)
        worker.start()
        return True

    def _post(self, handler: Callable[..., None], *args: Any) -> None:
        """Run ``handler(*args)`` after the handlers posted before it, never inside one.

        Dropped once the widget is closed: the worker may still report after that.
        """
        if not _background.alive(self):
            return
        self._inbox.append((handler, args))
        if self._draining:
            return
        self._draining = True
        try:
            while self._inbox:
                next_handler, next_args = self._inbox.popleft()
                next_handler(*next_args)
        finally:
            self._draining = False

    def _on_progress(self, event: Any) -> None:
        """Show a progress event: text now; the preview and the activity bar each later.

        The preview's redraw and napari's activity bar (which runs a nested
        event loop) each get their own turn of the event loop, so that no
        single turn holds the viewer long.
        """
        self.progress_bar.setValue(round(event.fraction * _STEPS))
        self._activity_timer.start()
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
            self._preview_timer.start()

    def _update_activity(self) -> None:
        done = self.progress_bar.value()
        if self._pbar is not None and done > self._pbar.n:
            self._pbar.update(done - self._pbar.n)

    def _show_preview(self) -> None:
        """Show the latest preview map (only the latest, when several came at once)."""
        if self._pending_preview is None:
            return
        (preview, stride), self._pending_preview = self._pending_preview, None
        target = self._fresh.clusters if self._fresh is not None else None
        if target is None or target not in self.viewer.layers:
            return  # the user removed the preview: no new layer mid-run
        show_preview(target, preview, stride)

    def _discard_run_layers(self) -> None:
        self._pending_preview = None
        if self._fresh is not None:
            discard(self.viewer, self._fresh)
        self._fresh = None

    def _on_returned(self, outcome: _jobs.Outcome) -> None:
        self._pending_preview = None
        if isinstance(outcome, _jobs.Failed):
            self._discard_run_layers()
            self.stage_label.setText("Stopped: the input needs a change (see the notification).")
            show_error(outcome.message)
            return
        layer = self._run_layer
        if layer is None or layer not in self.viewer.layers:
            self._discard_run_layers()
            self.stage_label.setText("The cube layer was closed during the run; nothing shown.")
            return
        self._showing = self._show_result(outcome, layer)
        self._step_timer.start()

    def _show_result(self, outcome: _jobs.Finished, layer: Image) -> Generator[None, None, None]:
        """Show a run's result in steps, each in its own turn of the event loop.

        One turn doing all of it would stall the viewer for a few hundred
        milliseconds (each layer update and canvas redraw costs napari tens).
        """
        segmentation = outcome.segmentation
        self.segmentation, self._cube = segmentation, outcome.cube
        self.model = segmentation.model
        existing = next((r for c, r in self._results if c is layer), None)
        fresh, self._fresh = self._fresh, None
        shown = yield from show_results(
            self.viewer, segmentation, layer,
            latent_layers=self.settings.latent_layers.value, existing=existing, fresh=fresh,
        )
        self._results = [(c, r) for c, r in self._results if c is not layer] + [(layer, shown)]
        yield
        self._show_summary()

    def _next_step(self) -> None:
        """Take the next step of showing the result; end the run after the last."""
        if self._showing is None:
            return
        try:
            next(self._showing)
        except BaseException as error:
            # The last step, or a failed one: either way the run is over.
            self._showing = None
            self._end_run_when_shown()
            if not isinstance(error, StopIteration):
                raise
            return
        self._step_timer.start()

    def _show_summary(self) -> None:
        """Describe the result: text, the criteria plot (drawn in a worker), k."""
        segmentation = self.segmentation
        seconds = sum(segmentation.timings.values())
        self.progress_bar.setValue(_STEPS)  # a re-cluster reports one early step only
        self.stage_label.setText(f"Done in {seconds:.1f} s.")
        sizes = segmentation.cluster_sizes
        self.metrics_label.setText(
            f"{segmentation.k} clusters of {min(sizes)}–{max(sizes)} pixels "
            f"({segmentation.n_pixels} pixels segmented)"
        )
        self.result_label.setText(
            f"{segmentation.k_reason.rstrip('.')}. "
            "Click a k on the plot to re-cluster without training."
        )
        self.criteria_plot.show_criteria(segmentation.criteria, segmentation.k)
        self.k_spin.setValue(segmentation.k)
        config = segmentation.config
        # A model applied without training was trained on another cube, whose name it does not keep.
        provenance = "trained on" if segmentation.history else "applied, without training, to"
        self.model_label.setText(
            f"{config.model.upper()}, latent size {config.latent_dim}, k = {segmentation.k}, "
            f"{provenance} {segmentation.cube_name or 'a cube'}."
        )

    def _on_aborted(self) -> None:
        self._discard_run_layers()
        self.stage_label.setText("Cancelled; nothing was changed.")

    def _on_errored(self, error: Exception) -> None:
        # napari reports the error itself (with its traceback: it is a bug, not a bad input).
        self._discard_run_layers()
        self.stage_label.setText(f"Failed: {error}")

    def _on_finished(self) -> None:
        self._worker_done = True
        self._end_run_when_shown()

    def _end_run_when_shown(self) -> None:
        """End the run once its worker has finished and its result is shown."""
        if self._worker_done and self._showing is None:
            self._end_run()

    def _end_run(self) -> None:
        self.worker = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
        self._set_busy(False)

    # ----------------------------------------------------------------- models

    def save_model(self, path: str | Path) -> None:
        """Write :attr:`model` to ``path`` (a ``.pt`` file), in a worker."""
        if self.model is None:
            show_error("no model to save yet: train one first")
            return
        self._run_io(_jobs.save_model_job, path, self.model, done=self._on_saved)

    def load_model(self, path: str | Path) -> None:
        """Read a model saved with Save model, in a worker; then Apply model uses it."""
        self._run_io(_jobs.load_model_job, path, done=self._on_loaded)

    def _run_io(self, job: Any, *args: Any, done: Any) -> None:
        def finished(result: Any) -> None:
            if isinstance(result, _jobs.Failed):
                show_error(result.message)
            else:
                done(result)

        _background.run(partial(job, *args), finished, background=True, owner=self)

    def _on_saved(self, path: Path) -> None:
        show_info(f"model saved to {path}")

    def _on_loaded(self, model: Any) -> None:
        self.model = model
        config = model.config
        self.model_label.setText(
            f"Loaded: {config.model.upper()}, latent size {config.latent_dim}, k = {model.k}. "
            "Choose a cube and Apply model."
        )
        self._set_busy(self.is_busy)

    # ---------------------------------------------------------------- exports

    def export_tiff(self, path: str | Path) -> Path:
        """Write the latest cluster map as a TIFF label map; returns the path."""
        layer = self._clusters_layer()
        if layer is None:
            raise InputError("no cluster map to export: train first")
        return export_labels_tiff(path, layer)

    def export_csv(self, path: str | Path) -> Path:
        """Write the latest clusters' mean and std spectra as CSV; returns the path."""
        if self.segmentation is None or self._run_layer is None:
            raise InputError("no clusters to export: train first")
        return export_spectra_csv(path, self.segmentation, spectral_axis(self._run_layer).title)

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

    def _export(self, write: Any, path: str) -> None:
        try:
            written = write(path)
        except InputError as error:
            show_error(str(error))
            return
        show_info(f"saved {written}")


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


def _deferred(parent: QWidget, callback: Callable[[], None]) -> QTimer:
    """A zero-delay single-shot timer: ``start()`` runs ``callback`` at the next loop turn."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(0)
    timer.timeout.connect(callback)
    return timer
