"""Opening cubes in a real viewer: the plugin's reader, sample data and widgets from the menu."""

from __future__ import annotations

import npe2
import numpy as np
import pytest
import tifffile
from napari.layers import Labels

from napari_deepcube._layer_records import LabelsRecord, cube_record, labels_record
from napari_deepcube._reader import labels_layer_data
from napari_deepcube._widgets._segment import SegmentationWidget
from napari_deepcube.core.cube import Datacube
from napari_deepcube.core.io import write_cube


def test_file_open_reads_a_cube_through_the_plugin(make_napari_viewer, tmp_path, painting):
    path = tmp_path / "scan.tif"
    write_cube(path, painting.cube)
    viewer = make_napari_viewer()

    (layer,) = viewer.open(path, plugin="napari-deepcube")

    assert layer.name == "scan"
    assert layer.data.shape == (256, 48, 48)
    np.testing.assert_array_equal(layer.data[100], painting.cube.data[..., 100])
    record = cube_record(layer.metadata, 256)
    assert record is not None and record.axis.unit == "keV"
    np.testing.assert_allclose(record.axis.values, painting.cube.spectral_values)
    # The slider is named after the energy of the channel it shows (see test_slider_label.py).
    assert viewer.dims.axis_labels[0].endswith(" keV")


def test_the_plugin_is_offered_for_cubes_and_declines_pictures(make_napari_viewer, tmp_path):
    cube = tmp_path / "cube.npy"
    np.save(cube, np.random.default_rng(0).poisson(2.0, (16, 12, 40)).astype(np.float32))
    picture = tmp_path / "picture.tif"
    tifffile.imwrite(picture, np.arange(20 * 30, dtype=np.uint16).reshape(20, 30))
    viewer = make_napari_viewer()
    manager = npe2.PluginManager.instance()

    readers = {r.plugin_name for r in manager.iter_compatible_readers([str(cube)])}
    assert "napari-deepcube" in readers
    (cube_layer,) = viewer.open(cube, plugin="napari-deepcube")
    assert cube_layer.data.shape == (40, 16, 12) and "deepcube" in cube_layer.metadata

    # The pattern matches, but the reader declines: napari opens the picture itself.
    (picture_layer,) = viewer.open(picture)
    assert picture_layer.data.shape == (20, 30) and "deepcube" not in picture_layer.metadata


def test_sample_data_opens_the_cube_and_its_ground_truth_hidden_below(make_napari_viewer):
    viewer = make_napari_viewer()

    viewer.open_sample("napari-deepcube", "nebula")

    truth, cube = viewer.layers  # bottom to top
    assert not truth.visible and cube.visible
    assert viewer.layers.selection.active is cube
    assert cube.data.shape == (3681, 128, 128)
    assert cube_record(cube.metadata, 3681).axis.title == "Wavelength (Å)"
    assert truth.data.shape == (128, 128)
    record = labels_record(truth.metadata)
    assert record.k == len(record.class_names) == int(truth.data.max())


def test_both_widgets_open_from_the_plugins_menu(make_napari_viewer, painting):
    viewer = make_napari_viewer()
    viewer.add_image(np.moveaxis(Datacube.from_array(painting.cube.data).data, -1, 0))

    _, segment = viewer.window.add_plugin_dock_widget("napari-deepcube", "Deep spectral segmentation")
    _, plot = viewer.window.add_plugin_dock_widget("napari-deepcube", "Cluster spectra")

    assert segment.cube_combo.layer is viewer.layers[0]
    assert plot.cube_layer is viewer.layers[0]


def test_a_label_map_the_plugin_saved_opens_again_as_labels_in_its_colours(
    make_napari_viewer, tmp_path, painting
):
    viewer = make_napari_viewer()
    record = LabelsRecord(k=int(painting.labels.max()), class_names=tuple(painting.class_names))
    data, kwargs, _ = labels_layer_data(painting.labels, name="truth", record=record)
    saved = viewer.add_labels(data, **kwargs)
    path = tmp_path / "truth.tif"
    viewer.layers.selection = {saved}
    viewer.layers.save(str(path), selected=True, plugin="napari-deepcube")

    (layer,) = viewer.open(path, plugin="napari-deepcube")

    assert isinstance(layer, Labels)
    np.testing.assert_array_equal(layer.data, painting.labels)
    values = np.arange(record.k + 1, dtype=layer.data.dtype)
    np.testing.assert_allclose(
        layer.colormap.map(values), saved.colormap.map(values), atol=1 / 255
    )
    assert labels_record(layer.metadata).class_names == record.class_names
    # A cube written as a TIFF stack is still a cube.
    write_cube(tmp_path / "cube.tif", painting.cube)
    (cube,) = viewer.open(tmp_path / "cube.tif", plugin="napari-deepcube")
    assert cube.data.ndim == 3 and not isinstance(cube, Labels)


def test_jasper_ridge_opens_its_labels_as_labels_and_offers_only_its_cube(
    make_napari_viewer, shared_data
):
    viewer = make_napari_viewer()

    viewer.open(shared_data / "jasper_ridge" / "jasper_ridge.npz", plugin="napari-deepcube")
    segment = SegmentationWidget(viewer)

    labels, abundances, cube = viewer.layers  # bottom to top
    assert isinstance(labels, Labels) and labels.data.shape == (100, 100) and not labels.visible
    assert labels_record(labels.metadata).class_names == ("1-tree", "2-water", "3-dirt", "4-road")
    assert abundances.data.shape == (4, 100, 100) and not abundances.visible
    assert cube.data.shape == (198, 100, 100) and cube.visible
    offered = [segment.cube_combo.itemText(i) for i in range(segment.cube_combo.count())]
    assert offered == [cube.name]


def test_a_muse_fits_opens_as_its_data_cube_with_dq_flagged_voxels_masked(
    make_napari_viewer, tmp_path, painting
):
    fits = pytest.importorskip("astropy.io.fits")
    data = np.moveaxis(painting.cube.data, -1, 0).astype(np.float32)  # (λ, y, x)
    quality = np.zeros(data.shape, np.int32)
    quality[:, 5, 7] = 1  # one bad spaxel
    quality[40, 10:20, 3] = 4  # a few bad voxels in one plane
    path = tmp_path / "muse.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(data, name="DATA"),
            fits.ImageHDU(np.ones_like(data), name="STAT"),
            fits.ImageHDU(quality, name="DQ"),
        ]
    ).writeto(path)
    viewer = make_napari_viewer()

    (layer,) = viewer.open(path, plugin="napari-deepcube")
    segment = SegmentationWidget(viewer)

    shown = np.asarray(layer.data)
    assert np.isnan(shown[quality != 0]).all()
    np.testing.assert_array_equal(shown[quality == 0], data[quality == 0])
    assert [segment.cube_combo.itemText(i) for i in range(segment.cube_combo.count())] == ["muse"]
