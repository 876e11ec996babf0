"""The spectral slider is labelled in the cube's units, wherever the cube came from."""

from __future__ import annotations

from napari_deepcube._reader import cube_layer_data
from napari_deepcube._widgets._layers import spectral_axis
from napari_deepcube._widgets._segment import SegmentationWidget
from napari_deepcube._widgets._spectrum_plot import SpectrumPlotWidget


def _slider_label(viewer) -> str:
    """The text napari shows beside the spectral slider."""
    return viewer.window._qt_viewer.dims.slider_widgets[0].axis_label.text()


def test_the_slider_names_the_energy_and_wavelength_it_shows(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-deepcube", "painting")
    energies = spectral_axis(viewer.layers["painting"]).values

    viewer.dims.set_current_step(0, 263)

    assert _slider_label(viewer) == f"{energies[263]:.4g} keV"
    viewer.dims.set_current_step(0, 512)
    assert _slider_label(viewer) == f"{energies[512]:.4g} keV"

    # Another cube on top, on a wavelength axis: the slider follows the cube shown.
    viewer.open_sample("napari-deepcube", "nebula")
    viewer.dims.set_current_step(0, 1000)
    wavelengths = spectral_axis(viewer.layers["nebula"]).values
    assert _slider_label(viewer) == f"{wavelengths[1000]:.4g} Å"


def test_a_cube_added_by_code_is_labelled_once_a_widget_opens(make_napari_viewer, painting):
    viewer = make_napari_viewer()
    data, kwargs, _ = cube_layer_data(painting.cube, name="scan")
    viewer.add_image(data, **kwargs)
    assert _slider_label(viewer) == "Energy"  # napari alone: the layer's axis label

    SegmentationWidget(viewer)
    viewer.dims.set_current_step(0, 100)

    assert _slider_label(viewer) == f"{painting.cube.spectral_values[100]:.4g} keV"


def test_without_a_calibrated_cube_in_view_the_label_is_the_layers_own(make_napari_viewer, painting):
    viewer = make_napari_viewer()
    data, kwargs, _ = cube_layer_data(painting.cube, name="scan")
    calibrated = viewer.add_image(data, **kwargs)
    plain = viewer.add_image(data.copy(), name="plain", axis_labels=("band", "y", "x"))
    SegmentationWidget(viewer)
    viewer.layers.selection.active = calibrated
    viewer.dims.set_current_step(0, 100)
    assert _slider_label(viewer).endswith(" keV")

    calibrated.visible = False
    viewer.layers.selection.active = plain

    assert _slider_label(viewer) == "band"


def test_the_label_is_whole_on_a_laptop_screen_with_both_docks(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-deepcube", "nebula")  # the widest: "6563 Å" over 3681 channels
    viewer.window.add_dock_widget(SegmentationWidget(viewer), name="Deep spectral segmentation")
    viewer.window.add_dock_widget(SpectrumPlotWidget(viewer), name="Cluster spectra")
    window = viewer.window._qt_window
    window.resize(1366, 768)
    qtbot.waitUntil(lambda: window.width() == 1366)
    viewer.dims.set_current_step(0, 3000)
    qtbot.wait(50)

    label = viewer.window._qt_viewer.dims.slider_widgets[0].axis_label
    text_width = label.fontMetrics().horizontalAdvance(label.text())
    assert label.text().endswith(" Å")
    assert text_width <= label.width() - label.textMargins().left() - label.textMargins().right() - 4
