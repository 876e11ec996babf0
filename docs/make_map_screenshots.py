"""Take the user guide's element-map screenshots from a real napari session.

Opens the MA-XRF painting sample with the "Cluster spectra" dock under the
canvas, types the elements Pb, Hg and Cu, maps their main lines one by one
and as an RGB composite, maps a dragged window, shows the dock on a
laptop's 1366 x 768 screen, then does the same on the
real Ag / Al / Cu SEM-EDS scan in ../shared/data when it is there. Saves
PNGs in ``docs/images/maps-*.png``. Needs a display (run it under
``scripts/with-display.sh`` when there is none); takes under a minute.

Usage::

    python docs/make_map_screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import napari
import numpy as np
from make_screenshots import LAPTOP, PLOT_HEIGHT, SHARED_DATA, WINDOW, grab, wait, window_shot
from qtpy.QtCore import Qt

from napari_deepcube._widgets._spectrum_plot import SpectrumPlotWidget

#: The real SEM-EDS scan shown, when ../shared/data holds it.
EDS_SCAN = SHARED_DATA / "eds_bruker_sem" / "bruker_sem_eds_50x50_AgAlCu.npz"


def _viewer_with_plot() -> tuple[napari.Viewer, SpectrumPlotWidget]:
    viewer = napari.Viewer(title="napari-deepcube")
    window = viewer.window._qt_window
    window.resize(*WINDOW)
    window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
    plot = SpectrumPlotWidget(viewer)
    dock = viewer.window.add_dock_widget(plot, name="Cluster spectra", area="bottom")
    dock.setMinimumHeight(PLOT_HEIGHT)
    return viewer, plot


def _type_elements(plot: SpectrumPlotWidget, text: str) -> None:
    plot.elements.setText(text)
    plot.elements.editingFinished.emit()


def painting(out: Path) -> None:
    """Pb Lα net counts over the painting, then Pb / Hg / Cu as red, green and blue."""
    viewer, plot = _viewer_with_plot()
    viewer.open_sample("napari-deepcube", "painting")
    truth = viewer.layers["painting ground truth"]
    lead_white = list(truth.metadata["deepcube"].class_names).index("lead white") + 1
    rows, cols = np.nonzero(truth.data == lead_white)
    plot.pick_pixel(int(rows[len(rows) // 2]), int(cols[len(cols) // 2]))
    _type_elements(plot, "Pb, Hg, Cu")
    plot.maps.map_lines()
    wait(lambda: "Cu Kα net counts" in viewer.layers)
    for name in ("Hg Lα net counts", "Cu Kα net counts"):
        viewer.layers[name].visible = False
    viewer.layers.selection.active = viewer.layers["Pb Lα net counts"]
    window_shot(viewer, out / "maps-01-pb-la.png")

    plot.maps.map_rgb()
    wait(lambda: "RGB Pb Lα · Hg Lα · Cu Kα" in viewer.layers)
    window_shot(viewer, out / "maps-02-rgb.png")

    plot.maps.drag_maps.setChecked(True)
    plot.maps.map_window(3.2, 4.2)  # what a drag across 3.2-4.2 keV does: the Ca K lines of the ground
    wait(lambda: "3.2-4.2 keV sum" in viewer.layers)
    grab(plot, out / "maps-03-controls.png")
    viewer.close()


def laptop(out: Path) -> None:
    """The dock where Plugins > DeepCube puts it, on a 1366 x 768 screen, with an element map."""
    viewer = napari.Viewer(title="napari-deepcube")
    viewer.window._qt_window.resize(*LAPTOP)
    viewer.open_sample("napari-deepcube", "painting")
    plot = SpectrumPlotWidget(viewer)
    viewer.window.add_dock_widget(plot, name="Cluster spectra")
    _type_elements(plot, "Pb, Hg, Cu")
    plot.maps.map_rgb()
    wait(lambda: "RGB Pb Lα · Hg Lα · Cu Kα" in viewer.layers)
    wait(lambda: bool(plot.curves) or not plot.status.text().startswith("computing"))
    window_shot(viewer, out / "maps-04-laptop.png")
    viewer.close()


def eds_scan(out: Path) -> None:
    """The Ag / Al / Cu SEM-EDS scan: Ag Lα, Al Kα and Cu Kα as red, green and blue."""
    viewer, plot = _viewer_with_plot()
    viewer.open(EDS_SCAN, plugin="napari-deepcube")
    plot.pick_pixel(25, 25)
    _type_elements(plot, "Ag, Al, Cu")
    plot.maps.map_rgb()
    wait(lambda: any(layer.name.startswith("RGB") for layer in viewer.layers))
    window_shot(viewer, out / "maps-05-eds-rgb.png")
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    painting(args.out)
    laptop(args.out)
    if EDS_SCAN.is_file():
        eds_scan(args.out)


if __name__ == "__main__":
    main()
