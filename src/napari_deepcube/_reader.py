"""napari reader: a spectral datacube file becomes one Image layer (C, H, W).

The core keeps cubes as (H, W, C); napari shows them as (C, H, W) so that the
spectral axis is the slider. The transposition is a view (numpy, memmap) or a
lazy operation (dask), so a cube read lazily stays lazy. The spectral axis
travels in the layer's :class:`~._layer_records.CubeRecord` (see
:func:`cube_layer_data`), where the widgets find it again; a label map made
by the plugin (ground truth, clusters) carries its class names in a
:class:`~._layer_records.LabelsRecord` (:func:`labels_layer_data`). A label
map TIFF the plugin wrote opens again as a Labels layer, in its colours.
The arrays an .npz keeps beside its cube open with it, hidden below it: a
label map (an integer (H, W) array named like labels) as Labels, per-pixel
maps (H, W, n) such as abundances as an image stack that is not offered as
a cube (:class:`~._layer_records.MapsRecord`).

This module must stay light: napari imports it to open a file, and opening a
file must not import torch or Qt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._layer_records import METADATA_KEY, CubeRecord, LabelsRecord, MapsRecord
from .core import io
from .core.cube import Datacube
from .core.errors import InputError
from .core.io import npy
from .core.io._dispatch import claims
from .core.io.labels import COLORS_KEY
from .core.palette import label_colors
from .core.spectral import SpectralAxis

#: Pixels sampled to choose the contrast limits (eager cubes).
_CONTRAST_PIXELS = 4096
#: Rows sampled to choose the contrast limits of a lazy cube: each row may
#: cost one chunk read from disk, so keep this small.
_CONTRAST_ROWS_LAZY = 4

LayerData = tuple[Any, dict[str, Any], str]
PathLike = str | Path
ReaderFunction = Callable[[PathLike | Sequence[PathLike]], list[LayerData]]


def get_reader(path: PathLike | Sequence[PathLike]) -> ReaderFunction | None:
    """Return :func:`read_cubes` if every path holds a spectral cube or our label map, else None.

    Declining (None) lets napari try its other readers, so a plain 2-D TIFF or
    an RGB picture still opens as an ordinary image. A damaged file of a format
    the plugin reads is taken, so that :func:`read_cubes` says what is wrong
    with it rather than napari saying that no reader was found.
    """
    paths = _as_paths(path)
    if not paths or not all(_takes(Path(p)) for p in paths):
        return None
    return read_cubes


def _takes(path: Path) -> bool:
    """Whether the plugin reads ``path``: a cube, our label map, or a damaged file of our formats."""
    if io.is_label_map_tiff(path):
        return True
    try:
        return bool(io.list_datasets(path))
    except InputError:
        return claims(path)


def read_cubes(path: PathLike | Sequence[PathLike]) -> list[LayerData]:
    """Read every cube in ``path`` (one or several files) as Image layer data.

    A container (HDF5, .npz, .mat, zarr) holding several 3-D arrays gives one
    layer per array, named ``"<file> [<dataset>]"``, unless the format names
    one cube that stands for the file (:func:`~.core.io.default_dataset`: a
    FITS file's science cube, DQ-flagged voxels masked, as the command line
    reads it, its STAT and DQ HDUs only qualifying it: the STAT variances
    kept in the layer's record for a run; an instrument file's
    spectrum image, its electron or white-light images as hidden layers
    below it). A file or array that turns
    out to be unreadable is reported as a napari notification (the core's
    message names the problem and the fix) and gives no layer; the others
    still open.
    """
    layers: list[LayerData] = []
    for one in _as_paths(path):
        try:
            layers.extend(_read_file(Path(one)))
        except InputError as error:
            _notify_error(str(error))
    if any(kind == "image" for _, _, kind in layers):
        label_the_slider()
    # napari's "handled, but nothing to show" sentinel: no second reader is tried.
    return layers or [(None,)]  # type: ignore[list-item]


def _read_file(path: Path) -> list[LayerData]:
    if io.is_label_map_tiff(path):
        return [label_map_layer_data(path)]
    datasets = io.list_datasets(path)
    default = io.default_dataset(path, datasets)
    if default is not None:
        cube = io.read_cube(path, dataset=default)
        return [*_companion_layers(path), *_beside_cube(path, cube), cube_layer_data(cube)]
    if len(datasets) <= 1:
        return [cube_layer_data(io.read_cube(path))]
    layers = []
    for info in datasets:
        try:
            cube = io.read_cube(path, dataset=info.name)
        except InputError as error:
            _notify_error(str(error))
            continue
        layers.append(cube_layer_data(cube, name=f"{path.stem} [{info.name}]"))
    return layers


def _companion_layers(path: Path) -> list[LayerData]:
    """The file's 2-D images (an electron or white-light image) as hidden layers under its cube.

    Hidden, because the cube above covers them; placed by the file's own
    calibration on the cube's pixel grid.
    """
    layers: list[LayerData] = []
    for image in io.companion_images(path):
        kwargs: dict[str, Any] = {
            "name": f"{path.stem} [{image.name}]",
            "scale": image.scale,
            "translate": image.translate,
            "visible": False,
            "rgb": image.data.ndim == 3,
        }
        if image.data.ndim == 2:
            kwargs["colormap"] = "gray"
        layers.append((image.data, kwargs, "image"))
    return layers


def _beside_cube(path: Path, cube: Datacube) -> list[LayerData]:
    """The label maps and per-pixel maps an .npz keeps beside its cube, as hidden layers."""
    if cube.metadata.get("format") != "npz":
        return []
    maps = npy.pixel_maps(path, cube.image_shape)
    layers = []
    for key, array in maps.arrays.items():
        name = f"{path.stem} [{key}]"
        if _looks_like_labels(key, array):
            k = int(array.max())
            record = LabelsRecord(
                k=k, source=str(path), class_names=maps.class_names if len(maps.class_names) == k else (),
                description=f"{key!r} in {path.name}",
            )
            data, kwargs, kind = labels_layer_data(array, name=name, record=record)
        elif array.ndim == 3:
            n_maps = array.shape[2]
            names = maps.class_names if len(maps.class_names) == n_maps else ()
            data, kind = spectral_first(array), "image"
            kwargs = {
                "name": name, "metadata": {METADATA_KEY: MapsRecord(names, str(path))},
                "axis_labels": (key, "y", "x"), "colormap": "viridis",
            }
        else:
            continue
        layers.append((data, {**kwargs, "visible": False}, kind))
    return layers


def _looks_like_labels(key: str, array: np.ndarray) -> bool:
    """An integer (H, W) map of non-negative classes, named like labels (not an electron image)."""
    return (
        array.ndim == 2 and array.dtype.kind in "iu" and "label" in key.lower()
        and array.size > 0 and int(array.min()) >= 0
    )


def cube_layer_data(cube: Datacube, *, name: str | None = None) -> LayerData:
    """Image layer data (C, H, W) for ``cube``, with its spectral axis and variances in the metadata.

    Parameters
    ----------
    cube
        The datacube, eager or lazy.
    name
        Layer name; defaults to the cube's name.

    Returns
    -------
    tuple
        ``(data, kwargs, "image")`` as napari readers return it.
    """
    record = CubeRecord(
        cube.axis, str(cube.metadata.get("source", "")), str(cube.metadata.get("format", "")),
        variance=cube.variance,
    )
    kwargs: dict[str, Any] = {
        "name": name or cube.name or "cube",
        "metadata": {METADATA_KEY: record, "file": dict(cube.metadata)},
        "contrast_limits": contrast_limits(cube),
        "axis_labels": (cube.spectral_label, "y", "x"),
        "colormap": "magma",
    }
    return spectral_first(cube.data), kwargs, "image"


def labels_layer_data(
    labels: np.ndarray,
    *,
    name: str,
    record: LabelsRecord | None = None,
) -> LayerData:
    """Labels layer data for a (H, W) map numbered 1..k, coloured like the plots.

    Parameters
    ----------
    labels
        Label map, 0 = left out.
    name
        Layer name.
    record
        The map's record (class names, k, source...); by default a plain
        label map of k = its largest label.

    Returns
    -------
    tuple
        ``(labels, kwargs, "labels")``.
    """
    if record is None:
        record = LabelsRecord(k=int(labels.max()) if labels.size else 0)
    kwargs: dict[str, Any] = {
        "name": name,
        "metadata": {METADATA_KEY: record},
        "colormap": label_colormap(record.k),
        "axis_labels": ("y", "x"),
        "opacity": 0.6,
    }
    return labels, kwargs, "labels"


def label_map_layer_data(path: Path) -> LayerData:
    """Labels layer data for a label map TIFF the plugin wrote, with its colours and facts.

    Raises
    ------
    InputError
        If the file cannot be read as a label map.
    """
    labels, facts = io.read_labels_tiff(path)
    k = _int_fact(facts, "k", int(labels.max()) if labels.size else 0)
    names = facts.get("class_names")
    record = LabelsRecord(
        k=k,
        source=str(facts.get("source", "")),
        class_names=tuple(str(n) for n in names) if isinstance(names, list) else (),
        description=f"read from {path.name}",
        k_reason=str(facts.get("k_reason", "")),
        axis=_axis_fact(facts),
    )
    data, kwargs, kind = labels_layer_data(labels, name=path.stem, record=record)
    colors = facts.get(COLORS_KEY)  # row i: label i's colour, from label 0
    if colors is not None and len(colors) > 1:
        kwargs["colormap"] = _colormap(np.asarray(colors, dtype=np.float64)[1:, :3] / 255.0)
    return data, kwargs, kind


def _int_fact(facts: dict[str, Any], key: str, default: int) -> int:
    value = facts.get(key)
    return value if isinstance(value, int) and value >= 0 else default


def _axis_fact(facts: dict[str, Any]) -> SpectralAxis | None:
    """The spectral axis a label map TIFF recorded, None when absent or unreadable."""
    values = facts.get("spectral_values")
    if not isinstance(values, list) or not values:
        return None
    try:
        return SpectralAxis.build(
            len(values), values, str(facts.get("spectral_unit", "")) or None,
            str(facts.get("spectral_label", "")) or None,
        )
    except (InputError, TypeError, ValueError):
        return None


def label_colormap(k: int) -> Any:
    """A napari colormap giving labels 1..k the plugin's palette (see ``core.palette``).

    Labels beyond k (painted by hand) show grey rather than vanish.
    """
    return _colormap(label_colors(k)[1:, :3])


def _colormap(rgb: np.ndarray) -> Any:
    """A napari colormap giving label i + 1 the colour ``rgb[i]``: 0 transparent, others grey."""
    from napari.utils.colormaps import DirectLabelColormap

    colors: dict[int | None, Any] = {0: np.zeros(4)}
    colors.update({i: np.append(c, 1.0) for i, c in enumerate(rgb, start=1)})
    colors[None] = np.array([0.6, 0.6, 0.6, 1.0])
    return DirectLabelColormap(color_dict=colors)


def spectral_first(data: Any) -> Any:
    """(H, W, C) -> (C, H, W) without copying: a numpy view or a lazy transpose."""
    if isinstance(data, np.ndarray):
        return np.moveaxis(data, -1, 0)
    if hasattr(data, "transpose"):
        return data.transpose(2, 0, 1)
    import dask.array as da  # only for lazy arrays without a transpose (h5py, zarr)

    return da.from_array(data).transpose(2, 0, 1)


def contrast_limits(cube: Datacube) -> tuple[float, float]:
    """Contrast limits from percentiles of a sample of pixels, never a full pass.

    The limits are the 0.5th and 99.8th percentiles over every channel of the
    sampled pixels: one setting that shows both the strong peak channels
    (saturated at the top) and the weaker ones.
    """
    height, width = cube.image_shape
    n_rows = min(height, _CONTRAST_ROWS_LAZY if cube.is_lazy else 64)
    rows = np.unique(np.linspace(0, height - 1, n_rows).round().astype(np.intp))
    per_row = max(1, _CONTRAST_PIXELS // rows.size)
    cols = np.unique(np.linspace(0, width - 1, min(width, per_row)).round().astype(np.intp))
    grid_rows, grid_cols = np.meshgrid(rows, cols, indexing="ij")
    sample = cube.spectra(grid_rows.ravel(), grid_cols.ravel())
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, [0.5, 99.8]))
    return (low, high) if high > low else (low, low + 1.0)


def _as_paths(path: PathLike | Sequence[PathLike]) -> list[PathLike]:
    return [path] if isinstance(path, str | Path) else list(path)


def label_the_slider() -> None:
    """Name the spectral slider's position in the cube's units, in the viewer opening a cube."""
    # Imported here: napari is present whenever napari calls this reader.
    from napari import current_viewer

    from ._slider_label import follow_spectral_slider

    viewer = current_viewer()
    if viewer is not None:
        follow_spectral_slider(viewer)


def _notify_error(message: str) -> None:
    # Imported here: napari is present whenever napari calls this reader.
    from napari.utils.notifications import show_error

    show_error(message)
