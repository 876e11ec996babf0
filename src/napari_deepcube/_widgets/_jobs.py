"""The work the segmentation widget runs in napari thread workers.

Each job is a generator of :class:`~napari_deepcube.core.pipeline.Progress`
events whose return value is a :class:`~.._layer_records.SegmentationRun` or a
:class:`Failed`, so a
GeneratorWorker streams progress to the GUI and ``worker.quit()`` stops the
job at its next event.

The torch-backed core (config, pipeline, checkpoint) is imported inside the
jobs, never at module level, so that napari starts, opens files and shows
the widget without loading torch. :func:`start_loading_engine` imports it in
a background thread as soon as the widget opens: import work holds the GIL
in bursts of up to half a second, so it must be over before training starts,
when the viewer has to stay responsive.

A bad input (:class:`~napari_deepcube.core.errors.InputError`) is returned
as :class:`Failed`, shown as a notification; any other exception is a bug
and reaches napari's error reporting with its traceback.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .._layer_records import SegmentationRun
from ..core.cube import Datacube
from ..core.errors import InputError
from ..core.spectral import SpectralAxis
from ._layers import spectral_last

if TYPE_CHECKING:
    from ..core.config import SegmentConfig
    from ..core.pipeline import Progress
    from ..core.segmentation import FittedModel, Segmentation

_T = TypeVar("_T")

_engine_lock = threading.Lock()
_engine_thread: threading.Thread | None = None
_engine_done = threading.Event()


@dataclass(frozen=True)
class CubeSource:
    """What a job needs of a cube layer, captured on the GUI thread.

    ``mask`` (H, W), when given, restricts the run to its True pixels
    (checked with :func:`~napari_deepcube.core.selection.pixel_mask`).
    ``variance`` (H, W, C) are the per-voxel variances read with the cube
    (a FITS STAT), or None.
    """

    data: Any
    axis: SpectralAxis
    name: str
    source: str
    mask: np.ndarray | None = None
    variance: Any = None

    def build(self) -> Datacube:
        """The Datacube (a full pass to find the valid pixels), restricted to the mask."""
        cube = Datacube.from_array(
            spectral_last(self.data),
            spectral_values=self.axis.values,
            spectral_unit=self.axis.unit,
            spectral_label=self.axis.label,
            name=self.name,
            metadata={"source": self.source},
            variance=self.variance,
        )
        return cube if self.mask is None else cube.with_mask(self.mask)


@dataclass(frozen=True)
class Failed:
    """A job stopped by a bad input; ``message`` names the problem and the fix."""

    message: str


#: A job's result: the segmentation and the cube it segments, or why it stopped.
Outcome = SegmentationRun | Failed


def start_loading_engine() -> None:
    """Import the torch-backed core in a background thread (once per process).

    A plain daemon thread, not a napari worker: it holds no Qt object, so
    napari may close (and Python exit) while torch is still loading.
    """
    global _engine_thread
    with _engine_lock:
        if _engine_thread is None:
            _engine_thread = threading.Thread(
                target=_load_engine, name="deepcube-engine", daemon=True
            )
            _engine_thread.start()


def engine_loaded() -> bool:
    """True once the background import is over (a run started earlier waits for it)."""
    return _engine_done.is_set()


def _load_engine() -> None:
    # A failure here (or Python exiting mid-import) is not reported: a run
    # imports the same modules and then reports a real failure itself.
    with contextlib.suppress(Exception):
        # napari's first Labels layer draws its colours with colorconv, which skimage loads on
        # first use: 0.1 s of the click on Train otherwise.
        import skimage.color.colorconv  # noqa: F401

        from ..core import checkpoint, pipeline  # noqa: F401

        _compile_label_colouring()
    _engine_done.set()


def _compile_label_colouring() -> None:
    """Have napari compile (numba) its colouring of the uint8 label maps a run shows.

    Done on the first Labels layer otherwise: the preview made at Train, which
    held the GUI thread 2.4 s (a profile of the widget's run).
    """
    import numpy as np

    from .._reader import label_colormap

    label_colormap(2).map(np.arange(3, dtype=np.uint8))


def make_config(settings: dict[str, Any]) -> SegmentConfig:
    """A ``SegmentConfig`` from the widget's settings (``preset`` picks the base)."""
    from ..core.config import SegmentConfig

    return SegmentConfig.from_preset(**settings)


def segment_job(
    source: CubeSource, settings: dict[str, Any], model: FittedModel | None = None
) -> Generator[Progress, None, Outcome]:
    """Train (or apply ``model``) and cluster; yields Progress, returns the outcome.

    Parameters
    ----------
    source
        The cube.
    settings
        The widget's settings (see :func:`make_config`); ignored but for the
        device, seed, use of the variances and rest frame asked for when
        ``model`` is given, whose own config is reused (a rest frame asked of a
        model trained without one is refused).
    model
        A loaded ``FittedModel`` to apply without training, or None to train.
    """
    from ..core.pipeline import segment_steps

    try:
        if model is None:
            config = make_config(settings)
        else:
            config = model.config.with_changes(
                device=settings["device"],
                seed=settings["seed"],
                variance=settings["variance"],
                rest_frame=settings["rest_frame"],
            )
        # The core computes on the cores other programs leave free, as for `deepcube segment`.
        cube = source.build()
        segmentation = yield from segment_steps(cube, config, model=model)
    except InputError as error:
        return Failed(str(error))
    return SegmentationRun(segmentation, cube)


def recluster_job(
    segmentation: Segmentation, cube: Datacube, k: int
) -> Generator[Progress, None, Outcome]:
    """Cluster the trained embedding again into ``k`` clusters (no training)."""
    from ..core.pipeline import Progress, recluster
    from ..core.threads import computing_on, run_threads

    yield Progress("recluster", 0.05, f"clustering into k={k}", k=k)
    try:
        with computing_on(run_threads()):  # as a run does (see core.threads)
            result = recluster(segmentation, cube, k)
    except InputError as error:
        return Failed(str(error))
    return SegmentationRun(result, cube)


def edit_job(
    edit: Callable[[], Segmentation], cube: Datacube, description: str
) -> Generator[Progress, None, Outcome]:
    """A segmentation edited by hand (see :mod:`~napari_deepcube.core.editing`), or an earlier one (undo)."""
    from ..core.pipeline import Progress
    from ..core.threads import computing_on, run_threads

    yield Progress("edit", 0.05, description)
    try:
        with computing_on(run_threads()):  # as a run does (see core.threads)
            result = edit()
    except InputError as error:
        return Failed(str(error))
    return SegmentationRun(result, cube)


def load_model_job(path: str | Path) -> FittedModel | Failed:
    """The fitted model in ``path``, or :class:`Failed`."""
    from ..core.checkpoint import load_model

    return guarded(lambda: load_model(path))


def save_model_job(path: str | Path, model: FittedModel) -> Path | Failed:
    """Write ``model`` to ``path``; returns the path written, or :class:`Failed`."""
    from ..core.checkpoint import save_model

    return guarded(lambda: save_model(path, model))


def guarded(function: Callable[[], _T]) -> _T | Failed:
    """``function()``, or :class:`Failed` with the message of the InputError it raised."""
    try:
        return function()
    except InputError as error:
        return Failed(str(error))

