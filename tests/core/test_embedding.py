"""The embedding view's computations: 2-D projections of the latents, the density image, hit tests."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from scipy.spatial import ConvexHull
from sklearn.decomposition import PCA

from napari_deepcube.core import embedding
from napari_deepcube.core.config import SegmentConfig
from napari_deepcube.core.embedding import (
    MAX_BINS,
    MIN_BINS,
    MIN_OPACITY,
    density_bins,
    density_image,
    label_anchors,
    project_latents,
)
from napari_deepcube.core.errors import InputError
from napari_deepcube.core.palette import label_colors
from napari_deepcube.core.pipeline import segment

#: Centres of three well separated blobs in a 4-D latent space.
CENTRES = np.array([[0.0, 0.0, 0.0, 0.0], [6.0, 1.0, 0.0, 0.0], [0.0, 7.0, 2.0, 0.0]])


def blobs(rng: np.random.Generator, height: int = 30, width: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 4) latents of three blobs and the (H, W) blob (1..3) of each pixel; row 0 left out."""
    labels = rng.integers(1, 4, size=(height, width))
    labels[0] = 0
    latents = CENTRES[np.maximum(labels, 1) - 1] + rng.normal(0.0, 0.3, size=(height, width, 4))
    latents[labels == 0] = np.nan
    return latents.astype(np.float32), labels


def test_principal_axes_are_those_of_the_segmented_pixels_latents(rng):
    latents, labels = blobs(rng)
    projection = project_latents(latents)

    assert projection.method == "pca" and projection.embedded == projection.n_points
    np.testing.assert_array_equal(projection.pixels, np.flatnonzero(labels > 0))
    reference = PCA(n_components=2).fit(latents[labels > 0])
    expected = reference.transform(latents[labels > 0])
    # Equal up to the sign of each axis (fixed here, free in scikit-learn).
    signs = np.sign(np.sum(expected * projection.points, axis=0))
    np.testing.assert_allclose(projection.points, expected * signs, atol=1e-4)
    assert projection.explained == pytest.approx(reference.explained_variance_ratio_.sum(), rel=1e-5)


def test_latents_on_disk_project_like_latents_in_memory(rng, monkeypatch):
    dask_array = pytest.importorskip("dask.array")
    monkeypatch.setattr(embedding, "_BLOCK", 200)  # several bands of 5 rows
    latents, labels = blobs(rng)
    in_memory = project_latents(latents)
    on_disk = project_latents(dask_array.from_array(latents, chunks=(7, 40, 4)))
    np.testing.assert_array_equal(on_disk.pixels, np.flatnonzero(labels > 0))
    np.testing.assert_array_equal(on_disk.pixels, in_memory.pixels)
    np.testing.assert_allclose(on_disk.points, in_memory.points, atol=1e-5)


def test_a_one_dimensional_latent_space_projects_on_a_line(rng):
    latents = rng.normal(size=(10, 12, 1)).astype(np.float32)
    projection = project_latents(latents)

    assert np.all(projection.points[:, 1] == 0.0)
    np.testing.assert_allclose(
        np.abs(projection.points[:, 0]), np.abs(latents.ravel() - latents.mean()), atol=1e-5
    )


def test_the_same_latents_give_the_same_picture(rng):
    latents, _ = blobs(rng)
    first, second = project_latents(latents), project_latents(latents.copy())
    np.testing.assert_array_equal(first.points, second.points)
    # The axes' signs do not depend on the eigensolver: each axis grows with the latent
    # dimension that loads it most (dimension 0 for the first blob layout's widest spread).
    segmented = np.isfinite(latents[..., 0])
    for flip in (1.0, -1.0):
        x = project_latents(flip * latents).points[:, 0]
        loadings = [np.corrcoef(x, flip * latents[segmented][:, d])[0, 1] for d in range(4)]
        assert loadings[int(np.argmax(np.abs(loadings)))] > 0


def test_a_pixel_maps_to_its_own_point_and_a_left_out_pixel_to_none(rng):
    latents, _ = blobs(rng)
    projection = project_latents(latents)

    for row, col in [(1, 0), (5, 17), (29, 39)]:
        index = np.flatnonzero(projection.pixels == row * 40 + col)[0]
        np.testing.assert_array_equal(projection.point_of(row, col), projection.points[index])
    assert projection.point_of(0, 3) is None  # row 0 is left out
    assert projection.point_of(30, 0) is None and projection.point_of(-1, 0) is None


def test_a_polygon_around_one_blob_selects_exactly_its_pixels(rng):
    latents, labels = blobs(rng)
    projection = project_latents(latents)
    mine = projection.values_at_points(labels) == 2
    hull = projection.points[mine][ConvexHull(projection.points[mine]).vertices]
    # Grown by 1 % about its centre, so that the hull's own vertices are inside.
    polygon = hull.mean(axis=0) + (hull - hull.mean(axis=0)) * 1.01

    np.testing.assert_array_equal(projection.in_polygon(polygon), labels == 2)
    assert not projection.in_polygon(polygon[:2]).any()  # a lasso of two points encloses nothing


def test_a_rectangle_selects_the_pixels_whose_points_it_contains(rng):
    latents, _ = blobs(rng)
    projection = project_latents(latents)
    x, y = projection.points[:, 0], projection.points[:, 1]
    low, high = np.percentile(x, 30), np.percentile(x, 70)
    expected = np.zeros(projection.image_shape, dtype=bool)
    expected.ravel()[projection.pixels[(x >= low) & (x <= high) & (y >= 0.0) & (y <= 50.0)]] = True

    np.testing.assert_array_equal(projection.in_rectangle((high, low), (50.0, 0.0)), expected)
    assert 0 < expected.sum() < projection.n_points


def test_tsne_embeds_a_sample_and_places_the_rest_among_their_neighbours(rng, monkeypatch):
    monkeypatch.setattr(embedding, "NONLINEAR_SAMPLE", 300)
    latents, labels = blobs(rng)
    # Pixel (1, 1) repeats pixel (1, 0)'s latents exactly: wherever that one lands, it lands too.
    latents[1, 1] = latents[1, 0]
    projection = project_latents(latents, "tsne", seed=3)

    assert projection.method == "tsne" and projection.embedded == 300
    assert projection.explained is None
    blob = projection.values_at_points(labels)
    # Each blob stays apart from the others: every point's nearest other point is of its blob.
    distances = np.linalg.norm(projection.points[:, None] - projection.points[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert np.mean(blob[distances.argmin(axis=1)] == blob) > 0.99
    np.testing.assert_allclose(projection.point_of(1, 1), projection.point_of(1, 0), atol=1e-3)
    again = project_latents(latents, "tsne", seed=3)
    np.testing.assert_array_equal(again.points, projection.points)


@pytest.mark.skipif(importlib.util.find_spec("umap") is not None, reason="umap-learn is installed")
def test_umap_without_umap_learn_says_what_to_install(rng):
    latents, _ = blobs(rng)
    assert "umap" not in embedding.available_methods()
    with pytest.raises(InputError, match="pip install umap-learn"):
        project_latents(latents, "umap")


def test_umap_embeds_when_installed(rng, monkeypatch):
    pytest.importorskip("umap")
    monkeypatch.setattr(embedding, "NONLINEAR_SAMPLE", 300)
    latents, labels = blobs(rng)
    projection = project_latents(latents, "umap", seed=0)
    assert projection.embedded == 300 and projection.n_points == int((labels > 0).sum())


def test_an_unknown_projection_is_named():
    with pytest.raises(InputError, match="unknown projection 'mds'"):
        project_latents(np.zeros((2, 2, 3), dtype=np.float32), "mds")


def test_the_density_image_colours_bins_like_their_clusters_and_shades_by_log_count():
    colors = label_colors(2)
    # Four points of cluster 1 in the bottom-left bin, one of cluster 2 in the top-right,
    # one of each in the bottom-right, one left-out point (label 0) in the top-left.
    points = np.array(
        [[0.1, 0.1]] * 4 + [[0.9, 0.9], [0.9, 0.1], [0.8, 0.2], [0.1, 0.9]], dtype=np.float32
    )
    labels = np.array([1, 1, 1, 1, 2, 1, 2, 0])
    image = density_image(points, labels, colors, (0.0, 1.0, 0.0, 1.0), bins=2)

    assert image.shape == (2, 2, 4)
    np.testing.assert_allclose(image[0, 0], [*colors[1, :3], 1.0], rtol=1e-6)  # the densest bin
    top_right = MIN_OPACITY + (1 - MIN_OPACITY) * np.log(2) / np.log(5)
    np.testing.assert_allclose(image[1, 1], [*colors[2, :3], top_right], rtol=1e-6)
    mixed = MIN_OPACITY + (1 - MIN_OPACITY) * np.log(3) / np.log(5)
    np.testing.assert_allclose(image[0, 1], [*(colors[1, :3] + colors[2, :3]) / 2, mixed], rtol=1e-6)
    assert image[1, 0, 3] == 0.0  # a left-out pixel is not drawn


def test_the_density_image_leaves_out_points_beyond_its_extent():
    points = np.array([[5.0, 5.0], [0.5, 0.5]], dtype=np.float32)
    image = density_image(points, np.array([1, 1]), label_colors(1), (0.0, 1.0, 0.0, 1.0), bins=4)
    assert np.count_nonzero(image[..., 3]) == 1 and image[2, 2, 3] == 1.0


def test_bins_grow_with_the_points_within_bounds():
    assert density_bins(10) == MIN_BINS
    assert density_bins(256 * 256) == MAX_BINS
    assert density_bins(100 * 100) == 200
    assert density_bins(4_000_000) == MAX_BINS


def test_every_point_lies_inside_the_extent(rng):
    latents, _ = blobs(rng)
    projection = project_latents(latents)
    left, right, bottom, top = projection.extent()
    x, y = projection.points.T
    assert left < x.min() and x.max() < right and bottom < y.min() and y.max() < top


def test_cluster_numbers_sit_at_their_median_points():
    points = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 0.0], [9.0, 9.0], [4.0, 4.0]])
    labels = np.array([1, 1, 1, 3, 3])
    anchors = label_anchors(points, labels, k=3)
    assert sorted(anchors) == [1, 3]
    np.testing.assert_array_equal(anchors[1], [1.0, 0.0])
    np.testing.assert_array_equal(anchors[3], [6.5, 6.5])


def test_a_real_segmentations_latents_project_its_segmented_pixels(small_painting):
    result = segment(small_painting.cube, SegmentConfig(seed=0, epochs=4, n_train=1500, k=4))
    projection = project_latents(result.latents)

    everything = np.ones(projection.n_points, dtype=bool)
    np.testing.assert_array_equal(projection.pixels_where(everything), result.labels > 0)
    clusters = projection.values_at_points(result.labels)
    image = density_image(
        projection.points, clusters, label_colors(result.k), projection.extent(),
        density_bins(projection.n_points),
    )
    assert image[..., 3].max() == 1.0 and (image[..., 3] > 0).sum() > 100
