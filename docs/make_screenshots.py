"""Regenerate the user guide's screenshots from a real napari session.

Opens napari with the MA-XRF painting sample, trains a small model through the
"Deep spectral segmentation" widget, selects a cluster, draws a region and
clicks a pixel in the "Cluster spectra" widget, shows the window at a laptop's
1366 x 768, trains again on a masked area and an energy range, then shows a
nebula pixel's spectrum with its emission lines, the painting's probability
maps and two of its clusters merged, a MUSE-like FITS file segmented with its STAT
variances, and Jasper Ridge's .npz (when
../shared/data exists), and saves PNGs in
``docs/images/``. Needs a display (``make docs-screenshots`` starts Xvfb when
there is none). Takes a few minutes on a laptop CPU.

Usage::

    python docs/make_screenshots.py [--out docs/images] [--epochs 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import napari
import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from qtpy.QtCore import QRect, Qt
from qtpy.QtWidgets import QApplication, QScrollArea, QWidget

from napari_deepcube._widgets._embedding_view import SELECTION_NAME, EmbeddingWidget
from napari_deepcube._widgets._layers import spectral_axis
from napari_deepcube._widgets._probability_layers import UNCERTAIN_NAME
from napari_deepcube._widgets._segment import SegmentationWidget
from napari_deepcube._widgets._spectrum_plot import SpectrumPlotWidget

#: Window size of the screenshots (pixels): a laptop screen.
WINDOW = (1500, 1000)
#: Height of the spectrum plot docked under the canvas (pixels).
PLOT_HEIGHT = 400
#: Size of the floating spectrum plot showing every cluster (pixels).
ALL_CLUSTERS_SIZE = (1000, 620)
#: Energy (keV) shown on the slider: lead's Lα line, the strongest in the painting.
PB_L_ALPHA_KEV = 10.55
#: The smallest common laptop screen (pixels).
LAPTOP = (1366, 768)
#: Clusters of the painting's soft-membership screenshot: one more than its six materials.
SPLIT_K = 7
#: Real data beside the repository (Jasper Ridge), shown when present.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def wait(condition: Callable[[], bool], timeout: float = 1800.0) -> None:
    """Run the event loop until ``condition()`` holds."""
    app = QApplication.instance()
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the session took too long")
        app.processEvents()
        time.sleep(0.01)


def settle(seconds: float = 0.5) -> None:
    """Let Qt and vispy finish drawing."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.instance().processEvents()
        time.sleep(0.01)


def grab(widget: QWidget, path: Path, *, crop: bool = False) -> None:
    """Save a picture of one widget (a dock); ``crop`` cuts the empty space below its content.

    A dock whose content scrolls is pictured whole: its content, not the part in view.
    """
    settle()
    for canvas in widget.findChildren(FigureCanvasQTAgg):
        canvas.draw()  # a grab paints the last drawn buffer: make it current
    area = widget.findChild(QScrollArea)
    if area is not None and area.widget() is not None:
        widget = area.widget()
    height = widget.height()
    if crop:
        height = min(height, widget.layout().sizeHint().height())
    widget.grab(QRect(0, 0, widget.width(), height)).save(str(path))
    print(f"wrote {path}")


def window_shot(viewer: napari.Viewer, path: Path) -> None:
    """Save the whole napari window, the image fitted to the canvas."""
    settle()
    viewer.reset_view()
    settle()
    viewer.screenshot(str(path), canvas_only=False)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    viewer = napari.Viewer(title="napari-deepcube")
    window = viewer.window._qt_window
    window.resize(*WINDOW)
    # The side docks take the full height, the bottom one only the width under the canvas.
    window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
    window.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
    viewer.open_sample("napari-deepcube", "painting")
    cube = viewer.layers["painting"]
    energies = spectral_axis(cube).values
    viewer.dims.set_current_step(0, int(np.argmin(np.abs(energies - PB_L_ALPHA_KEV))))
    # What Plugins > DeepCube does, with the spectrum plot placed under the canvas.
    segment = SegmentationWidget(viewer)
    plot = SpectrumPlotWidget(viewer)
    viewer.window.add_dock_widget(segment, name="Deep spectral segmentation", area="right")
    plot_dock = viewer.window.add_dock_widget(plot, name="Cluster spectra", area="bottom")
    plot_dock.setMinimumHeight(PLOT_HEIGHT)
    wait(lambda: segment.engine_ready)
    viewer.layers.selection.active = cube
    window_shot(viewer, out / "01-sample.png")

    segment.settings.set_values(epochs=args.epochs, n_train=8000, k=None, k_min=2, k_max=9)
    segment.train()
    # Mid-training: the preview map and the live read-outs.
    wait(lambda: segment.progress_bar.value() >= 30 or not segment.is_busy)
    window_shot(viewer, out / "02-training.png")
    wait(lambda: not segment.is_busy and not segment.criteria_plot.drawing)
    clusters = viewer.layers["clusters"]
    grab(segment, out / "03-segmentation-widget.png", crop=True)

    # Explore: a cluster, a pixel of it, and a region drawn across two paints.
    clusters.selected_label = 2
    height, width = clusters.data.shape
    rows, cols = np.nonzero(clusters.data == 2)
    middle = len(rows) // 2
    plot.pick_pixel(int(rows[middle]), int(cols[middle]))
    regions = plot.new_regions_layer()
    regions.add_rectangles(np.array([[0.30 * height, 0.55 * width], [0.45 * height, 0.75 * width]]))
    regions.mode = "pan_zoom"
    viewer.layers.selection.active = clusters
    wait(lambda: "R1" in plot.lines)
    window_shot(viewer, out / "04-session.png")
    grab(plot, out / "05-spectrum-plot.png")

    # Every cluster on a log scale needs room: float the plot as a larger window.
    plot_dock.setFloating(True)
    plot_dock.resize(*ALL_CLUSTERS_SIZE)
    plot.all_clusters.setChecked(True)
    plot.log_y.setChecked(True)
    grab(plot, out / "06-all-clusters.png")
    plot_dock.setFloating(False)
    plot.all_clusters.setChecked(False)
    plot.log_y.setChecked(False)

    # Both docks on a laptop screen: they scroll rather than push the window off it.
    window.resize(*LAPTOP)
    segment.details_button.setChecked(True)
    window_shot(viewer, out / "07-laptop-layout.png")

    # Restrict a run: only a painted area, learning only from 5.5-14 keV (Cu, Pb and Hg lines).
    window.resize(*WINDOW)
    segment.details_button.setChecked(False)
    regions.visible = False
    plot.regions_combo.set_layer(None)
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 10 : height * 6 // 10, width // 10 : width * 9 // 10] = 1
    mask_layer = viewer.add_labels(mask, name="mask", opacity=0.25)
    segment.mask_combo.set_layer(mask_layer)
    segment.settings.spectral_range.value = "5.5:14"  # what a drag across the plot writes
    segment.train()
    wait(lambda: not segment.is_busy and not segment.criteria_plot.drawing)
    viewer.layers.selection.active = clusters
    clusters.selected_label = 1
    window_shot(viewer, out / "10-restricted.png")
    viewer.close()
    embedding(out, args.epochs)
    emission_lines(out)
    maps_and_edits(out, args.epochs)
    fits_variances(out, args.epochs)
    if SHARED_DATA.is_dir():
        jasper(out)


def embedding(out: Path, epochs: int) -> None:
    """The latent embedding beside the map: one cluster lassoed, a pixel marked, the selection's spectrum.

    The lasso is the outline of the cluster that lies most apart on the plot
    (its convex hull holds the fewest points of other clusters); its pixels
    become the "embedding selection" layer, which the spectrum plot takes as
    its regions.
    """
    from scipy.spatial import ConvexHull

    viewer = napari.Viewer(title="napari-deepcube")
    window = viewer.window._qt_window
    window.resize(*WINDOW)
    window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
    window.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
    viewer.open_sample("napari-deepcube", "painting")
    segment = SegmentationWidget(viewer)
    segment_dock = viewer.window.add_dock_widget(segment, name="Deep spectral segmentation", area="right")
    wait(lambda: segment.engine_ready)
    segment.settings.set_values(epochs=epochs, n_train=8000, k=None, k_min=2, k_max=9)
    segment.train()
    wait(lambda: not segment.is_busy and not segment.criteria_plot.drawing)
    viewer.window.remove_dock_widget(segment_dock)
    view = EmbeddingWidget(viewer)
    viewer.window.add_dock_widget(view, name="Latent embedding (linked to the map)", area="right")
    plot = SpectrumPlotWidget(viewer)
    plot_dock = viewer.window.add_dock_widget(plot, name="Cluster spectra", area="bottom")
    plot_dock.setMinimumHeight(PLOT_HEIGHT)
    wait(lambda: view.image is not None)
    projection, labels = view.projection, viewer.layers["clusters"].data
    clusters = projection.values_at_points(labels)
    hulls = {}
    for label in np.unique(clusters[clusters > 0]):
        mine = projection.points[clusters == label]
        hull = mine[ConvexHull(mine).vertices].astype(np.float64)
        hull = hull.mean(axis=0) + (hull - hull.mean(axis=0)) * 1.03
        strays = int((projection.in_polygon(hull) & (labels != label)).sum())
        hulls[int(label)] = (strays, hull)
    label = min(hulls, key=lambda key: hulls[key][0])
    hull = hulls[label][1]
    selection = view.select(projection.in_polygon(hull), np.vstack([hull, hull[:1]]))
    plot.regions_combo.set_layer(selection)
    # A pixel of the largest other cluster, off its cluster's centre (where the number is written).
    other = 1 if label != 1 else 2
    theirs = projection.points[clusters == other]
    offset = np.linalg.norm(theirs - np.median(theirs, axis=0), axis=1)
    pixel = projection.pixels[clusters == other][np.argsort(offset)[int(0.9 * offset.size)]]
    view.mark_pixel(*(int(v) for v in np.unravel_index(pixel, labels.shape)))
    viewer.layers.selection.active = viewer.layers[SELECTION_NAME]
    wait(lambda: f"{SELECTION_NAME} 1" in plot.lines)
    window_shot(viewer, out / "14-embedding.png")
    grab(view, out / "15-embedding-dock.png")
    viewer.close()


def emission_lines(out: Path) -> None:
    """A nebula pixel's spectrum, its optical emission lines marked."""
    viewer = napari.Viewer(title="napari-deepcube")
    viewer.open_sample("napari-deepcube", "nebula")
    plot = SpectrumPlotWidget(viewer)
    dock = viewer.window.add_dock_widget(plot, name="Cluster spectra", area="bottom")
    dock.setFloating(True)
    dock.resize(*ALL_CLUSTERS_SIZE)
    truth = viewer.layers["nebula ground truth"]
    rows, cols = np.nonzero(truth.data == 1)
    plot.pick_pixel(int(rows[len(rows) // 2]), int(cols[len(cols) // 2]))
    grab(plot, out / "08-emission-lines.png")
    viewer.close()


def maps_and_edits(out: Path, epochs: int) -> None:
    """The painting in one cluster too many: its soft memberships, then the two halves merged."""
    viewer = napari.Viewer(title="napari-deepcube")
    window = viewer.window._qt_window
    window.resize(*WINDOW)
    window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
    viewer.open_sample("napari-deepcube", "painting")
    segment = SegmentationWidget(viewer)
    plot = SpectrumPlotWidget(viewer)
    viewer.window.add_dock_widget(segment, name="Deep spectral segmentation", area="right")
    plot_dock = viewer.window.add_dock_widget(plot, name="Cluster spectra", area="bottom")
    plot_dock.setMinimumHeight(PLOT_HEIGHT)
    wait(lambda: segment.engine_ready)
    segment.settings.set_values(epochs=epochs, n_train=8000, k=None, k_min=2, k_max=9)
    segment.train()
    wait(lambda: not segment.is_busy and not segment.criteria_plot.drawing)
    # Every pixel of the painting is certain at the k the criteria choose; one more
    # cluster cuts a material in two, and its pixels hesitate between the halves.
    segment.pick_k(SPLIT_K)
    wait(lambda: not segment.is_busy and not segment.criteria_plot.drawing)
    segment.settings_section.collapse(animate=False)
    segment.tools_section.expand(animate=False)
    scroll = segment.findChild(QScrollArea)
    tools = segment.cluster_tools
    tools.maps_button.click()
    tools.uncertain_button.click()
    result = segment.segmentation
    assert result is not None
    doubtful = np.bincount(result.labels[result.uncertain()], minlength=result.k + 1)[1:]
    halves = [int(c) + 1 for c in np.argsort(-doubtful)[:2]]
    for index, layer in enumerate(tools.probability_layers):
        layer.visible = index + 1 == halves[0]
    for name in ("painting", "clusters", UNCERTAIN_NAME):
        viewer.layers[name].visible = False
    settle()
    scroll.ensureWidgetVisible(tools.undo_button)
    window_shot(viewer, out / "11-probability-maps.png")
    # The uncertain pixels over the cluster map: only where the material was cut in two.
    tools.probability_layers[halves[0] - 1].visible = False
    for name in ("clusters", UNCERTAIN_NAME):
        viewer.layers[name].visible = True
    window_shot(viewer, out / "12-uncertain-pixels.png")

    # The two halves merged again by hand, every cluster's spectrum plotted, Undo at hand.
    for layer in [*tools.probability_layers, tools.uncertain_layer]:
        viewer.layers.remove(layer)
    viewer.layers["clusters"].visible = True
    plot.all_clusters.setChecked(True)
    tools.merge_field.setText(", ".join(str(c) for c in sorted(halves)))
    tools.merge_button.click()
    wait(lambda: not segment.is_busy and not segment.criteria_plot.drawing)
    settle()
    scroll.ensureWidgetVisible(segment.result_label)
    scroll.ensureWidgetVisible(tools.undo_button)
    window_shot(viewer, out / "13-merged.png")
    viewer.close()


def fits_variances(out: Path, epochs: int) -> None:
    """A MUSE-like FITS file with DATA, STAT and DQ: the run divides by each pixel's noise from STAT."""
    from tempfile import TemporaryDirectory

    from astropy.io import fits
    from astropy.wcs import WCS

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from stress import VARIANTS

    stressed = VARIANTS["nebula/heteroscedastic"](0, 64)
    axes = WCS(naxis=3)
    axes.wcs.ctype = ["RA---TAN", "DEC--TAN", "AWAV"]
    axes.wcs.cunit = ["deg", "deg", "Angstrom"]
    step = float(stressed.spectral_values[1] - stressed.spectral_values[0])
    axes.wcs.crval = [150.0, 2.0, float(stressed.spectral_values[0])]
    axes.wcs.cdelt = [-5.6e-5, 5.6e-5, step]
    axes.wcs.crpix = [1.0, 1.0, 1.0]
    header = axes.to_header()
    assert stressed.variance is not None
    cubes = {"DATA": stressed.data, "STAT": stressed.variance, "DQ": np.zeros(stressed.data.shape, np.int32)}
    with TemporaryDirectory() as folder:
        path = Path(folder) / "nebula_muse.fits"
        hdus = [fits.ImageHDU(np.moveaxis(c, -1, 0), header=header, name=name) for name, c in cubes.items()]
        fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(path)
        viewer = napari.Viewer(title="napari-deepcube")
        viewer.window._qt_window.resize(*WINDOW)
        viewer.open(path, plugin="napari-deepcube")
        segment = SegmentationWidget(viewer)
        viewer.window.add_dock_widget(segment, name="Deep spectral segmentation", area="right")
        wait(lambda: segment.engine_ready)
        segment.settings.set_values(epochs=epochs, k=None)
        segment.train()
        wait(lambda: not segment.is_busy and not segment.criteria_plot.drawing)
        window_shot(viewer, out / "16-fits-variances.png")
        viewer.close()


def jasper(out: Path) -> None:
    """Jasper Ridge's .npz: the cube, its labels as Labels and its abundances as a stack."""
    viewer = napari.Viewer(title="napari-deepcube")
    viewer.window._qt_window.resize(*WINDOW)
    viewer.open(SHARED_DATA / "jasper_ridge" / "jasper_ridge.npz", plugin="napari-deepcube")
    # The ground truth in view; the cube (on top) hidden for it.
    viewer.layers["jasper_ridge [labels]"].visible = True
    viewer.layers["jasper_ridge"].visible = False
    segment = SegmentationWidget(viewer)
    viewer.window.add_dock_widget(segment, name="Deep spectral segmentation", area="right")
    window_shot(viewer, out / "09-jasper-npz.png")
    viewer.close()


if __name__ == "__main__":
    main()
