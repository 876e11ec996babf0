"""The segmentation dock's "Maps and edits" section: probability maps, uncertain pixels, cluster editing.

Probability maps and the uncertain pixels are layers made on request
(:mod:`._probability_layers`); once shown they follow every new result of
the cube (an edit, an undo, a re-cluster), so they never show a map that is
gone.

Merge, Split and Assign call :mod:`..core.editing` in the dock's worker, like
a re-cluster: the result replaces the clusters layer's data, colours and
record, so the spectrum plot, the reason shown and the exports follow it.
Undo and Redo show the result before or after an edit again, through the
same path; :class:`EditHistory` remembers them for each cube.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from napari.layers import Image, Labels, Layer, Shapes
from napari.utils.notifications import show_error
from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from .._layer_records import SegmentationRun
from ..core.errors import InputError
from ..core.segmentation import DEFAULT_CONFIDENCE_THRESHOLD
from . import _jobs
from ._layer_combo import LayerCombo
from ._layers import image_shape, labels_info
from ._probability_layers import show_probability_maps, show_uncertain
from ._regions import covered_pixels

if TYPE_CHECKING:
    import napari

    from ..core.segmentation import Segmentation

#: What the dock gives the section: the chosen cube layer, its clusters layer and its result.
Chosen = Callable[[], tuple[Image | None, Labels | None, SegmentationRun | None]]
#: Starts an edit job in the dock's worker: (job, its arguments, description, called with the result shown).
StartJob = Callable[..., None]
#: How a split re-clusters, as the widget names them (core.editing.SPLIT_METHODS).
SPLIT_METHOD_NAMES = {"in the embedding": "embedding", "under the likelihood": "likelihood"}


@dataclass
class _Stacks:
    done: list[tuple[Segmentation, Segmentation]] = field(default_factory=list)
    undone: list[tuple[Segmentation, Segmentation]] = field(default_factory=list)


class EditHistory:
    """The edits of each cube's clusters, as (before, after) results, to undo and redo.

    An undo is possible while the cube shows the result its last edit made;
    any other result (a new run, a re-cluster) leaves nothing to undo.
    """

    def __init__(self) -> None:
        self._stacks: dict[str, _Stacks] = {}

    def _of(self, cube_name: str) -> _Stacks:
        return self._stacks.setdefault(cube_name, _Stacks())

    def record(self, cube_name: str, before: Segmentation, after: Segmentation) -> None:
        """An edit was shown: it can be undone, and what was undone before can no longer be redone."""
        stacks = self._of(cube_name)
        stacks.done.append((before, after))
        stacks.undone.clear()

    def undoable(self, cube_name: str, current: Segmentation | None) -> Segmentation | None:
        """The result before the last edit, when ``current`` is what that edit made; else None."""
        done = self._of(cube_name).done
        return done[-1][0] if done and current is not None and done[-1][1] is current else None

    def redoable(self, cube_name: str, current: Segmentation | None) -> Segmentation | None:
        """The result the last undone edit made, when ``current`` is what it was made from; else None."""
        undone = self._of(cube_name).undone
        return undone[-1][1] if undone and current is not None and undone[-1][0] is current else None

    def undone(self, cube_name: str) -> None:
        """The last edit was undone (its result before is shown)."""
        stacks = self._of(cube_name)
        stacks.undone.append(stacks.done.pop())

    def redone(self, cube_name: str) -> None:
        """The last undone edit was made again."""
        stacks = self._of(cube_name)
        stacks.done.append(stacks.undone.pop())


def parse_clusters(text: str) -> list[int]:
    """Cluster numbers typed as ``"2, 3"`` or ``"2 3"``.

    Raises
    ------
    InputError
        If a word is not a whole number.
    """
    words = [word for word in re.split(r"[\s,;]+", text.strip()) if word]
    if not all(word.isdigit() for word in words):
        raise InputError(f"type cluster numbers separated by commas, such as 2, 3; got {text!r}")
    return [int(word) for word in words]


class ClusterTools(QWidget):
    """Probability maps, uncertain pixels, and merge / split / assign with undo, for the dock.

    Parameters
    ----------
    viewer
        The viewer.
    chosen
        The chosen cube layer, its clusters layer and its result.
    start
        Runs an edit job in the dock's worker: ``start(job, *args,
        description=..., shown=...)``; ``shown`` is called with the result
        once it is shown.
    """

    def __init__(self, viewer: napari.viewer.Viewer, chosen: Chosen, start: StartJob) -> None:
        super().__init__()
        self.viewer = viewer
        self._chosen = chosen
        self._start = start
        self.history = EditHistory()
        self.probability_layers: list[Image] = []
        self.uncertain_layer: Labels | None = None

        self.maps_button = QPushButton("Probability maps")
        self.maps_button.setToolTip("Show each cluster's probability as an image layer in its colour")
        self.maps_button.clicked.connect(self.show_probabilities)
        self.uncertain_button = QPushButton("Uncertain pixels")
        self.uncertain_button.setToolTip("Mark the pixels whose cluster's probability is under the threshold")
        self.uncertain_button.clicked.connect(self.show_uncertain)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.01, 1.0)
        self.threshold.setSingleStep(0.05)
        self.threshold.setValue(DEFAULT_CONFIDENCE_THRESHOLD)
        self.threshold.setPrefix("confidence < ")
        self.threshold.setToolTip("Confidence under which a pixel is uncertain")
        self.threshold.valueChanged.connect(self._follow_threshold)

        self.merge_field = QLineEdit()
        self.merge_field.setPlaceholderText("clusters, e.g. 2, 3")
        self.merge_button = QPushButton("Merge")
        self.merge_button.setToolTip("Make the typed clusters one cluster")
        self.merge_button.clicked.connect(self.merge)
        self.split_cluster = QSpinBox()
        self.split_cluster.setToolTip("The cluster to split")
        self.split_parts = QSpinBox()
        self.split_parts.setRange(2, 32)
        self.split_parts.setToolTip("Into how many clusters")
        self.split_method = QComboBox()
        self.split_method.addItems(list(SPLIT_METHOD_NAMES))
        self.split_method.setToolTip(
            "Re-cluster its pixels by k-means on their latent vectors, or with the likelihood "
            "mixture on their spectra (slower, finer)"
        )
        self.split_button = QPushButton("Split")
        self.split_button.clicked.connect(self.split)
        self.region_combo = LayerCombo(viewer, self._is_region_layer)
        self.region_combo.setToolTip(
            "A Labels layer painted (value > 0) or a Shapes layer drawn over the image"
        )
        self.assign_cluster = QSpinBox()
        self.assign_cluster.setToolTip("The cluster its pixels join; the highest number makes a new cluster")
        self.assign_button = QPushButton("Assign")
        self.assign_button.clicked.connect(self.assign)
        self.undo_button = QPushButton("Undo")
        self.undo_button.clicked.connect(self.undo)
        self.redo_button = QPushButton("Redo")
        self.redo_button.clicked.connect(self.redo)
        self._build_layout()
        self.set_enabled(False)

    def _build_layout(self) -> None:
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # Two or three widgets a row: the dock keeps the width the rest of it needs.
        rows: list[tuple[str, list[QWidget]]] = [
            ("Maps", [self.maps_button, self.uncertain_button]),
            ("Uncertain", [self.threshold]),
            ("Merge", [self.merge_field, self.merge_button]),
            ("Split", [self.split_cluster, QLabel("into"), self.split_parts, self.split_button]),
            ("", [self.split_method]),
            ("Assign", [self.region_combo]),
            ("to", [self.assign_cluster, self.assign_button]),
            ("", [self.undo_button, self.redo_button]),
        ]
        for label, widgets in rows:
            row = QHBoxLayout()
            for widget in widgets:
                row.addWidget(widget)
            if len(widgets) == 1:
                row.addStretch(1)
            layout.addRow(label, row)

    # ------------------------------------------------------------------ state

    def _is_region_layer(self, layer: Layer) -> bool:
        """A Shapes layer, or a 2-D Labels layer of the image's size that is no cluster map."""
        if isinstance(layer, Shapes):
            return True
        cube = self._chosen()[0]
        info = labels_info(layer)
        return (
            isinstance(layer, Labels) and layer.ndim == 2 and cube is not None
            and tuple(layer.data.shape) == image_shape(cube)
            and (info is None or info.kind == "labels")
        )

    def set_enabled(self, enabled: bool) -> None:
        """Enable the tools when the chosen cube has a result and the dock is idle."""
        for widget in (
            self.maps_button, self.uncertain_button, self.merge_field, self.merge_button, self.split_cluster,
            self.split_parts, self.split_method, self.split_button, self.region_combo,
            self.assign_cluster, self.assign_button,
        ):
            widget.setEnabled(enabled)
        cube, _, found = self._chosen()
        current = found.segmentation if found is not None else None
        name = cube.name if cube is not None else ""
        self.undo_button.setEnabled(enabled and self.history.undoable(name, current) is not None)
        self.redo_button.setEnabled(enabled and self.history.redoable(name, current) is not None)

    def show_result(self) -> None:
        """Follow the chosen cube's result: cluster ranges, and the maps already shown."""
        self.region_combo.refresh()
        _, clusters, found = self._chosen()
        if found is None or clusters is None:
            return
        k = found.segmentation.k
        self.split_cluster.setRange(1, k)
        self.assign_cluster.setRange(1, k + 1)
        if any(layer in self.viewer.layers for layer in self.probability_layers):
            self.show_probabilities()
        if self.uncertain_layer is not None and self.uncertain_layer in self.viewer.layers:
            self.show_uncertain()

    # ------------------------------------------------------------------- maps

    def show_probabilities(self) -> None:
        """Show (or update) each cluster's probability map."""
        _, clusters, found = self._chosen()
        if found is not None and clusters is not None:
            self.probability_layers = show_probability_maps(
                self.viewer, found.segmentation, clusters, self.probability_layers
            )

    def show_uncertain(self) -> None:
        """Show (or update) the pixels under the confidence threshold."""
        _, clusters, found = self._chosen()
        if found is not None and clusters is not None:
            self.uncertain_layer = show_uncertain(
                self.viewer, found.segmentation, clusters, self.threshold.value(), self.uncertain_layer
            )

    def _follow_threshold(self, value: float) -> None:
        if self.uncertain_layer is not None and self.uncertain_layer in self.viewer.layers:
            self.show_uncertain()

    # ------------------------------------------------------------------ edits

    def merge(self) -> None:
        """Merge the clusters typed in the Merge field."""
        try:
            clusters = parse_clusters(self.merge_field.text())
        except InputError as error:
            show_error(str(error))
            return
        from ..core.editing import merge

        self._edit(lambda segmentation, cube: merge(segmentation, clusters), f"Merging clusters {clusters}")

    def split(self) -> None:
        """Split the chosen cluster into the chosen number, by the chosen method."""
        from ..core.editing import split

        cluster, parts = self.split_cluster.value(), self.split_parts.value()
        method = SPLIT_METHOD_NAMES[self.split_method.currentText()]
        self._edit(
            lambda segmentation, cube: split(segmentation, cluster, parts, cube, method),
            f"Splitting cluster {cluster} into {parts}",
        )

    def assign(self) -> None:
        """Give the pixels of the chosen region layer to the chosen cluster."""
        cube_layer, region = self._chosen()[0], self.region_combo.layer
        if cube_layer is None or region is None:
            show_error("choose a region: paint a Labels layer or draw a Shapes layer over the image")
            return
        from ..core.editing import assign

        mask = covered_pixels(region, image_shape(cube_layer)) > 0  # type: ignore[arg-type]
        cluster = self.assign_cluster.value()
        self._edit(
            lambda segmentation, cube: assign(segmentation, mask, cluster, cube),
            f"Assigning {region.name!r} to cluster {cluster}",
        )

    def _edit(self, edit: Callable[[Segmentation, Any], Segmentation], description: str) -> None:
        cube_layer, _, found = self._chosen()
        if cube_layer is None or found is None:
            return
        before, name = found.segmentation, cube_layer.name

        def shown(result: SegmentationRun) -> None:
            self.history.record(name, before, result.segmentation)

        self._start(
            _jobs.edit_job, partial(edit, before, found.cube), found.cube, description,
            description=description, shown=shown,
        )

    def undo(self) -> None:
        """Show the result before the last edit again."""
        self._step_back_or_forth(undo=True)

    def redo(self) -> None:
        """Make the last undone edit again (its result, kept)."""
        self._step_back_or_forth(undo=False)

    def _step_back_or_forth(self, *, undo: bool) -> None:
        cube_layer, _, found = self._chosen()
        if cube_layer is None or found is None:
            return
        name = cube_layer.name
        target = (self.history.undoable if undo else self.history.redoable)(name, found.segmentation)
        if target is None:
            return
        moved = self.history.undone if undo else self.history.redone
        description = "Undo" if undo else "Redo"
        self._start(
            _jobs.edit_job, lambda: target, found.cube, description, description=description,
            shown=lambda result: moved(name),
        )
