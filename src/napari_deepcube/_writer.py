"""napari writer: a Labels layer saved as a TIFF label map (File > Save Selected Layer(s)).

The map keeps what TIFF can hold: uint8/uint16 values with 0 = left out, the
layer's colours as a palette (uint8 maps) and in the JSON description, and
the facts of the layer's :class:`~._layer_records.LabelsRecord` (k, class
names, spectral axis) beside them. :func:`write_label_map` is shared with the
segmentation widget's Export button, so both write the same file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._layer_records import labels_record
from .core.errors import InputError
from .core.io import write_labels_tiff
from .core.io.outputs import output_transaction


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one Labels layer to ``path``; return the paths written.

    Parameters
    ----------
    path
        Destination ``.tif``/``.tiff``.
    data
        The layer's (H, W) integer data.
    meta
        The layer's state as napari passes it (``colormap``, ``metadata``, ``name``).

    Returns
    -------
    list of str
        ``[path]``, or ``[]`` when the layer cannot be saved as a label map (the
        reason is shown as a notification).
    """
    try:
        write_label_map(
            path,
            np.asarray(data),
            colormap=meta.get("colormap"),
            metadata=meta.get("metadata") or {},
            name=meta.get("name", ""),
        )
    except InputError as error:
        from napari.utils.notifications import show_error

        show_error(str(error))
        return []
    return [str(Path(path))]


def write_label_map(
    path: str | Path,
    labels: np.ndarray,
    *,
    colormap: Any,
    metadata: Mapping[str, Any],
    name: str = "",
) -> None:
    """Write ``labels`` with the colours of ``colormap`` and the facts of ``metadata``.

    Raises
    ------
    InputError
        If ``labels`` is not a 2-D map of non-negative integers, ``path`` is
        the cube the labels were made from, or the file cannot be written.
    """
    record = labels_tiff_record(metadata, name=name)
    source = record.get("source")
    with output_transaction(inputs=[Path(source)] if isinstance(source, str) and source else []):
        write_labels_tiff(path, labels, colors=label_colors_of(colormap, labels), metadata=record)


def label_colors_of(colormap: Any, labels: np.ndarray) -> np.ndarray | None:
    """RGBA colours (max + 1, 4) of labels 0..max under a napari label colormap.

    Raises
    ------
    InputError
        If ``colormap`` is neither None nor a napari label colormap.
    """
    if colormap is None or labels.size == 0 or labels.dtype.kind not in "iu":
        return None
    if not callable(getattr(colormap, "map", None)):
        raise InputError(
            f"the layer's colormap is a {type(colormap).__name__}, not a napari label colormap; "
            "save a Labels layer, or pass its layer.colormap"
        )
    top = int(labels.max())
    return np.asarray(colormap.map(np.arange(top + 1, dtype=labels.dtype)), dtype=np.float64)


def labels_tiff_record(metadata: Mapping[str, Any], *, name: str = "") -> dict[str, Any]:
    """The JSON-ready facts of a layer's ``metadata`` that a label map TIFF keeps.

    A layer without the plugin's record (made by another plugin, or holding
    something else under the plugin's key) keeps its name only.

    Raises
    ------
    InputError
        If ``metadata`` is not a mapping.
    """
    if not isinstance(metadata, Mapping):
        raise InputError(
            f"the layer's metadata is a {type(metadata).__name__}, not a dict; "
            "give the layer a dict as metadata"
        )
    kept: dict[str, Any] = {"name": name} if name else {}
    record = labels_record(metadata)
    if record is not None:
        kept.update(record.tiff_facts())
    return kept
