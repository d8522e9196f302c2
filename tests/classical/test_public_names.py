"""The public names that outside tests rely on (issue 4), checked against independent implementations."""

import numpy as np
from skimage.filters import threshold_otsu
from skimage.segmentation import flood

from medseg_course import classical


def test_otsu_threshold_equals_scikit_image():
    rng = np.random.default_rng(0)
    image = np.concatenate([rng.normal(0.2, 0.05, 500), rng.normal(0.7, 0.1, 300)]).reshape(20, 40)
    assert classical.otsu_threshold(image) == threshold_otsu(image)


def test_region_grow_equals_flood_and_kmeans_orders_labels():
    image = np.zeros((9, 9)); image[2:5, 2:5] = 1.0; image[6:8, 6:8] = 1.0
    grown = classical.region_grow(image, [(3, 3)], tolerance=0.1, connectivity=1)
    assert grown.dtype == bool and np.array_equal(grown, flood(image, (3, 3), tolerance=0.1, connectivity=1))
    labels = classical.kmeans_segment(image, k=2, seed=0)
    assert labels.shape == image.shape and labels[3, 3] == 1 and labels[0, 0] == 0  # brightest cluster last
    fuzzy_labels, memberships = classical.fuzzy_cmeans(image, c=2, m=2.0, seed=0)
    assert np.array_equal(fuzzy_labels, labels)
    np.testing.assert_allclose(memberships.sum(axis=0), 1.0, rtol=1e-5)
