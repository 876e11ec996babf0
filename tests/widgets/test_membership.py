"""Soft memberships in the viewer: a probability layer per cluster, the uncertain pixels, their export."""

from __future__ import annotations

import numpy as np
import tifffile

from napari_deepcube._widgets._membership import probability_name, uncertain_name
from napari_deepcube.core.palette import label_colors


def test_each_probability_layer_is_the_results_posterior(session):
    session.run()
    segmentation = session.segment.segmentation
    assert session.segment.probabilities_button.isEnabled()

    session.segment.probabilities_button.click()

    for cluster in range(1, segmentation.k + 1):
        layer = session.viewer.layers[probability_name(cluster)]
        assert np.array_equal(layer.data, segmentation.probabilities[..., cluster - 1])
        assert np.allclose(layer.colormap.colors[-1], label_colors(segmentation.k)[cluster])
        assert tuple(layer.contrast_limits) == (0.0, 1.0)
    assert probability_name(segmentation.k + 1) not in session.viewer.layers


def test_a_smaller_k_leaves_no_probability_layer_of_a_cluster_gone(session, qtbot):
    session.run()
    session.segment.show_probabilities()
    k = session.segment.segmentation.k
    session.run(lambda: session.segment.pick_k(k - 1))

    session.segment.show_probabilities()

    names = [layer.name for layer in session.viewer.layers]
    assert probability_name(k - 1) in names and probability_name(k) not in names


def test_uncertain_pixels_are_those_below_the_threshold(session):
    session.run(k=8)  # more clusters than classes: some classes cut in two, with pixels between
    segmentation = session.segment.segmentation
    session.segment.threshold_spin.setValue(0.95)

    session.segment.uncertain_button.click()

    layer = session.viewer.layers[uncertain_name(0.95)]
    expected = (segmentation.labels > 0) & (segmentation.confidence < 0.95)
    assert 0 < expected.sum() < expected.size
    assert np.array_equal(layer.data.astype(bool), expected)


def test_the_probability_export_reads_back_a_page_per_cluster(session, tmp_path):
    session.run()
    segmentation = session.segment.segmentation

    written = session.segment.export_probabilities(tmp_path / "probabilities.tif")

    pages = tifffile.imread(written)
    assert pages.shape == (segmentation.k, *segmentation.labels.shape)
    assert np.array_equal(pages, np.moveaxis(np.asarray(segmentation.probabilities), -1, 0))
