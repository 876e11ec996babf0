"""A one-page overview figure of a segmentation, drawn without a screen."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from .cube import Datacube, finite_or_zero
from .io.outputs import atomic_write
from .kselect import likelihood_criterion
from .palette import label_colors
from .segmentation import Segmentation


def summary_image(cube: Datacube) -> np.ndarray:
    """Total signal of each pixel (H, W), the cube's "panchromatic" image."""
    image = np.zeros(cube.image_shape)
    for rows, block in cube.iter_blocks():
        image[rows] = finite_or_zero(block).sum(axis=-1)
    return image


def save_overview(
    path: str | os.PathLike[str],
    cube: Datacube,
    segmentation: Segmentation,
    truth: np.ndarray | None = None,
) -> Path:
    """Save a PNG: summary image, cluster map (and ground truth), mean spectra, criteria.

    Parameters
    ----------
    path
        Target ``.png``, written atomically.
    cube
        The segmented cube.
    segmentation
        Its segmentation.
    truth
        Optional ground-truth labels (H, W) shown beside the cluster map.
    """
    k = segmentation.k
    colors = label_colors(k)
    cmap = ListedColormap(colors)
    n_maps = 3 if truth is None else 4
    figure = Figure(figsize=(4.2 * n_maps, 8.4), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, n_maps)
    image = summary_image(cube)
    low, high = np.percentile(image[cube.mask], [1, 99.5]) if cube.n_valid else (0, 1)
    axes = figure.add_subplot(grid[0, 0])
    axes.imshow(image, cmap="gray", vmin=low, vmax=high)
    axes.set_title(f"{cube.name or 'cube'}: total signal")
    axes = figure.add_subplot(grid[0, 1])
    axes.imshow(segmentation.labels, cmap=cmap, vmin=0, vmax=k, interpolation="nearest")
    axes.set_title(f"clusters (k = {k})")
    if truth is not None:
        axes = figure.add_subplot(grid[0, 2])
        n_true = int(truth.max())
        axes.imshow(
            truth,
            cmap=ListedColormap(label_colors(n_true)),
            vmin=0,
            vmax=n_true,
            interpolation="nearest",
        )
        axes.set_title(f"ground truth (k = {n_true})")
    axes = figure.add_subplot(grid[0, n_maps - 1])
    axes.imshow(segmentation.confidence, cmap="magma", vmin=0, vmax=1)
    axes.set_title("confidence (max posterior)")
    for axes in figure.axes:
        axes.set_xticks([])
        axes.set_yticks([])
    spectra_axes = figure.add_subplot(grid[1, : n_maps - 1])
    x = segmentation.axis.values
    for label in range(1, k + 1):
        mean = segmentation.mean_spectra[label - 1]
        spectra_axes.plot(
            x,
            mean,
            color=colors[label],
            lw=1.2,
            label=f"{label} ({segmentation.cluster_sizes[label - 1]} px)",
        )
    spectra_axes.set_yscale("symlog" if np.any(segmentation.mean_spectra < 0) else "log")
    spectra_axes.set_xlabel(cube.axis_title)
    spectra_axes.set_ylabel("mean signal per pixel")
    spectra_axes.set_title("cluster mean spectra")
    spectra_axes.legend(fontsize="small", ncols=2)
    criteria_axes = figure.add_subplot(grid[1, n_maps - 1])
    _plot_criteria(criteria_axes, segmentation)
    with atomic_write(Path(path)) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    return Path(path)


def _plot_criteria(axes: Axes, segmentation: Segmentation) -> None:
    silhouette = segmentation.criteria.get("silhouette", {})
    if not silhouette:
        axes.text(0.5, 0.5, f"k = {segmentation.k} was fixed", ha="center", va="center")
        axes.set_axis_off()
        return
    ks = sorted(silhouette)
    axes.plot(ks, [silhouette[k] for k in ks], "o-", color="tab:blue", label="silhouette")
    axes.set_xlabel("k")
    axes.set_ylabel("silhouette", color="tab:blue")
    axes.axvline(segmentation.k, color="gray", ls="--")
    deciding = likelihood_criterion(segmentation.criteria)
    if deciding:
        name, label, higher_is_better = deciding
        twin = axes.twinx()
        twin.plot(ks, [segmentation.criteria[name][k] for k in ks], "s-", color="tab:red", label=label)
        twin.set_ylabel(f"{label} ({'higher' if higher_is_better else 'lower'} is better)", color="tab:red")
    axes.set_title("choice of k")
