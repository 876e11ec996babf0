"""Element and window maps from the "Cluster spectra" dock, in a real viewer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pytest
from matplotlib.backend_bases import MouseButton, MouseEvent

from conftest import RUN_TIMEOUT_MS
from napari_deepcube._layer_records import maps_record
from napari_deepcube._reader import cube_layer_data
from napari_deepcube._widgets._layers import spectral_axis, training_range
from napari_deepcube._widgets._spectrum_plot import SpectrumPlotWidget
from napari_deepcube.core.element_maps import (
    compute_maps,
    display_limits,
    line_window,
    parse_lines,
    rgb_composite,
)
from napari_deepcube.core.io.maps import read_maps_tiff
from napari_deepcube.core.synthetic import SyntheticCube, make_nebula, make_painting


@pytest.fixture(scope="module")
def sample_painting() -> SyntheticCube:
    """The cube File > Open Sample > DeepCube > MA-XRF painting opens, with its truth."""
    return make_painting(256, 256, 1024, seed=0)


@dataclass
class Sample:
    viewer: Any
    cube: Any
    plot: SpectrumPlotWidget
    errors: list[str]


@pytest.fixture
def sample(make_napari_viewer: Any, monkeypatch: pytest.MonkeyPatch) -> Sample:
    """A viewer with the painting sample opened as napari opens it, and the spectrum dock."""
    errors: list[str] = []
    for module in ("_element_maps", "_spectrum_plot"):
        monkeypatch.setattr(f"napari_deepcube._widgets.{module}.show_error", errors.append)
    viewer = make_napari_viewer()
    viewer.open_sample("napari-deepcube", "painting")
    plot = SpectrumPlotWidget(viewer)
    viewer.window.add_dock_widget(plot, name="Cluster spectra")
    return Sample(viewer, viewer.layers["painting"], plot, errors)


def _type_elements(plot: SpectrumPlotWidget, text: str) -> None:
    plot.elements.setText(text)
    plot.elements.editingFinished.emit()


def _core_maps(painting: SyntheticCube, text: str, present: tuple[str, ...] = ()) -> np.ndarray:
    axis = painting.cube.axis
    windows = [line_window(axis, line, present=present) for line in parse_lines(text)]
    return compute_maps(painting.cube.data, windows)


def test_picking_pb_la_adds_its_net_count_map(sample, sample_painting, qtbot):
    _type_elements(sample.plot, "Pb")
    assert sample.plot.maps.lines.text() == "Pb Lα"  # the main line of lead on a 0-40 keV axis
    sample.plot.maps.map_button.click()
    qtbot.waitUntil(lambda: "Pb Lα net counts" in sample.viewer.layers, timeout=RUN_TIMEOUT_MS)

    layer = sample.viewer.layers["Pb Lα net counts"]
    [expected] = _core_maps(sample_painting, "Pb La", ("Pb",))
    np.testing.assert_array_equal(layer.data, expected)
    assert layer.colormap.name == "inferno" and not layer.rgb
    assert tuple(layer.contrast_limits) == pytest.approx(display_limits(expected))
    truth = sample_painting.element_photons["Pb"]
    assert np.corrcoef(layer.data.ravel(), truth.ravel())[0, 1] > 0.9
    record = maps_record(layer.metadata)
    assert record.source == "painting" and record.windows[0]["quantity"] == "net counts"
    assert sample.viewer.layers.index(layer) > sample.viewer.layers.index(sample.cube)
    assert sample.errors == []


def test_clicking_a_line_name_on_the_plot_maps_it(sample, sample_painting, qtbot):
    """A click on the "Hg Lα" the plot names; the low background window of Hg's line
    avoids nothing, but Pb, also named, is avoided by the other maps."""
    _type_elements(sample.plot, "Hg, Pb")
    sample.plot.pick_pixel(100, 100)
    qtbot.waitUntil(lambda: bool(sample.plot.curves), timeout=RUN_TIMEOUT_MS)
    canvas = sample.plot.plot.canvas
    canvas.draw()
    [name] = [t for t in sample.plot.plot.figure.axes[0].texts if t.get_text().strip() == "Hg Lα"]
    box = name.get_window_extent()
    x, y = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    MouseEvent("button_press_event", canvas, x, y, MouseButton.LEFT)._process()
    MouseEvent("button_release_event", canvas, x, y, MouseButton.LEFT)._process()
    qtbot.waitUntil(lambda: "Hg Lα net counts" in sample.viewer.layers, timeout=RUN_TIMEOUT_MS)

    present = sample.plot.maps._present()
    assert {"Hg", "Pb"} <= set(present)
    [expected] = _core_maps(sample_painting, "Hg La", tuple(present))
    np.testing.assert_array_equal(sample.viewer.layers["Hg Lα net counts"].data, expected)


def test_several_lines_make_an_rgb_composite(sample, sample_painting, qtbot):
    sample.plot.maps.lines.setText("Pb La, Hg La, Cu Ka, Fe Ka")
    sample.plot.maps.rgb_button.click()
    name = "RGB Pb Lα · Hg Lα · Cu Kα"
    qtbot.waitUntil(lambda: name in sample.viewer.layers, timeout=RUN_TIMEOUT_MS)

    layer = sample.viewer.layers[name]
    maps = _core_maps(sample_painting, "Pb La, Hg La, Cu Ka")
    assert layer.rgb and layer.data.shape == (256, 256, 3)
    np.testing.assert_array_equal(layer.data, rgb_composite(list(maps)))
    np.testing.assert_array_equal(maps_record(layer.metadata).values, maps)
    # Red where lead white is, green where vermilion is, blue where azurite is.
    classes = list(sample_painting.class_names)
    for channel, pigment in enumerate(("lead white", "vermilion", "azurite")):
        inside = layer.data[sample_painting.labels == classes.index(pigment) + 1]
        assert inside[:, channel].mean() > 0.5 > np.delete(inside, channel, axis=1).mean()


def test_a_drag_in_map_mode_maps_the_window_and_leaves_the_training_range(sample, qtbot):
    plot = sample.plot
    plot.pick_pixel(10, 10)
    qtbot.waitUntil(lambda: bool(plot.curves), timeout=RUN_TIMEOUT_MS)
    plot.maps.drag_maps.setChecked(True)
    assert "drag to map that window" in plot.status.text()
    _drag(plot, 6.2, 6.6)
    layers = [layer.name for layer in sample.viewer.layers if layer.name.endswith(" sum")]
    assert len(layers) == 1 and layers[0].endswith("keV sum")
    layer = sample.viewer.layers[layers[0]]
    start, stop = maps_record(layer.metadata).windows[0]["window"]
    assert start == pytest.approx(6.2, abs=0.05) and stop == pytest.approx(6.6, abs=0.05)
    values = spectral_axis(sample.cube).values
    inside = (values >= start) & (values <= stop)
    np.testing.assert_allclose(layer.data, sample.cube.data[inside].sum(axis=0), rtol=1e-6)
    assert training_range(sample.cube) == ""

    plot.maps.drag_maps.setChecked(False)  # back to choosing the training range
    _drag(plot, 6.2, 6.6)
    assert training_range(sample.cube) != ""


def test_the_export_reads_back_as_float32_maps_with_their_lines(sample, sample_painting, tmp_path, qtbot):
    plot = sample.plot
    plot.maps.lines.setText("Pb La, Fe Ka")
    plot.maps.map_button.click()
    plot.maps.rgb_button.click()  # the same two maps: written once
    plot.maps.map_window(2.0, 3.0)
    qtbot.waitUntil(lambda: len(plot.maps.map_layers()) == 4, timeout=RUN_TIMEOUT_MS)

    maps, facts = read_maps_tiff(plot.maps.export(tmp_path / "maps.tif"))
    assert [(f["name"], f["quantity"], f["unit"]) for f in facts] == [
        ("Pb Lα", "net counts", "keV"), ("Fe Kα", "net counts", "keV"), ("2-3 keV", "sum", "keV"),
    ]
    assert maps.dtype == np.float32
    for image, fact in zip(maps, facts, strict=True):
        layer = sample.viewer.layers[f"{fact['name']} {fact['quantity']}"]
        np.testing.assert_array_equal(image, layer.data)
    np.testing.assert_array_equal(maps[1], _core_maps(sample_painting, "Fe Ka", ("Fe",))[0])


def test_a_lazy_cube_is_mapped_off_the_gui_thread(make_napari_viewer, sample_painting, qtbot):
    viewer = make_napari_viewer()
    data, kwargs, _ = cube_layer_data(sample_painting.cube, name="lazy painting")
    viewer.add_image(da.from_array(data, chunks=(256, 64, 256)), **kwargs)
    plot = SpectrumPlotWidget(viewer)
    viewer.window.add_dock_widget(plot, name="Cluster spectra")
    plot.maps.map_lines("Pb La")
    assert "Pb Lα net counts" not in viewer.layers  # not yet: a worker computes it
    qtbot.waitUntil(lambda: "Pb Lα net counts" in viewer.layers, timeout=RUN_TIMEOUT_MS)
    [expected] = _core_maps(sample_painting, "Pb La")
    np.testing.assert_array_equal(viewer.layers["Pb Lα net counts"].data, expected)


def test_any_cube_gets_window_maps_but_lines_need_an_energy_axis(make_napari_viewer, monkeypatch, qtbot):
    errors: list[str] = []
    monkeypatch.setattr("napari_deepcube._widgets._element_maps.show_error", errors.append)
    nebula = make_nebula(32, 32, seed=0)
    viewer = make_napari_viewer()
    data, kwargs, _ = cube_layer_data(nebula.cube, name="nebula")
    viewer.add_image(data, **kwargs)
    plot = SpectrumPlotWidget(viewer)
    viewer.window.add_dock_widget(plot, name="Cluster spectra")

    plot.maps.map_lines("Fe Ka")
    assert errors and "X-ray energy axis" in errors[-1] and "map a spectral window" in errors[-1]
    plot.maps.map_window(6540.0, 6590.0)  # around Hα
    layer = viewer.layers["6540-6590 Å mean"]
    chosen = (nebula.cube.spectral_values >= 6540) & (nebula.cube.spectral_values <= 6590)
    np.testing.assert_allclose(layer.data, nebula.cube.data[..., chosen].mean(axis=-1), rtol=1e-5, atol=1e-6)
    plot.maps.map_lines("Pb Kz")
    assert "no line 'Kz'" in errors[-1]


def _drag(plot: SpectrumPlotWidget, start: float, end: float) -> None:
    """Press at ``start``, move to ``end`` and release there (data units), as a mouse does on the plot."""
    canvas = plot.plot.canvas
    canvas.draw()
    axes = plot.plot.figure.axes[0]
    y_value = np.mean(axes.get_ylim())
    (x0, y0), (x1, y1) = (axes.transData.transform((x, y_value)) for x in (start, end))
    MouseEvent("button_press_event", canvas, x0, y0, MouseButton.LEFT)._process()
    MouseEvent("motion_notify_event", canvas, x1, y1, MouseButton.LEFT, buttons={MouseButton.LEFT})._process()
    MouseEvent("button_release_event", canvas, x1, y1, MouseButton.LEFT)._process()
