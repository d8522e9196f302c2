"""Tests for medseg_course.classical.clustering: hand-checkable cases, equality with scikit-learn's
KMeans from the same initial centres, 2D and 3D, and every validation error."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.cluster import KMeans

from medseg_course.classical import clustering as cl


def blobs(seed=0, n=60, centres=((0.0, 0.0), (3.0, 0.0), (0.0, 3.0)), spread=0.5):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(c, spread, (n, len(c))) for c in centres])


# --------------------------------------------------------------------------------------------
# k-means++
# --------------------------------------------------------------------------------------------
def test_kmeanspp_second_centre_follows_d_squared():
    # points 0, 1, 2, 10: after a first centre at 0, D^2 = 0, 1, 4, 100, so the second centre is
    # point 1, 2 or 3 with probabilities 1/105, 4/105, 100/105, and never point 0 again
    X = np.array([0.0, 1.0, 2.0, 10.0])
    seconds = []
    for seed in range(3000):
        _, idx = cl.kmeans_plusplus(X, 2, seed=seed)
        if idx[0] == 0:
            seconds.append(idx[1])
    freq = np.bincount(seconds, minlength=4) / len(seconds)
    assert len(seconds) > 600                        # the first centre is uniform: ~750 of 3000
    assert freq[0] == 0
    np.testing.assert_allclose(freq, [0, 1 / 105, 4 / 105, 100 / 105], atol=0.025)


def test_kmeanspp_never_picks_a_point_on_a_chosen_centre():
    X = np.array([[0.0], [0.0], [0.0], [5.0]])
    for seed in range(20):
        centers, idx = cl.kmeans_plusplus(X, 2, seed=seed)
        assert sorted(centers[:, 0].tolist()) == [0.0, 5.0]
        assert idx.dtype == np.int64 and centers.shape == (2, 1)


def test_kmeanspp_is_seeded_and_greedy_variant_is_at_least_as_good_on_average():
    X = blobs(1)
    a, b = cl.kmeans_plusplus(X, 3, seed=4), cl.kmeans_plusplus(X, 3, seed=4)
    np.testing.assert_array_equal(a[1], b[1])

    def cost(c):
        return cl._sqdist(X, c).min(axis=1).sum()

    plain = np.mean([cost(cl.kmeans_plusplus(X, 3, seed=s)[0]) for s in range(30)])
    greedy = np.mean([cost(cl.kmeans_plusplus(X, 3, seed=s, n_local_trials=3)[0]) for s in range(30)])
    assert greedy <= plain


def test_kmeanspp_refuses_fewer_distinct_points_than_k():
    with pytest.raises(ValueError, match="only 2 distinct point"):
        cl.kmeans_plusplus(np.array([1.0, 1.0, 2.0, 2.0]), 3)


# --------------------------------------------------------------------------------------------
# k-means
# --------------------------------------------------------------------------------------------
def test_kmeans_by_hand():
    X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    r = cl.kmeans(X, 2, init=np.array([[0.0], [1.0]]))
    assert r.centers.ravel().tolist() == [1.0, 11.0]
    assert r.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert r.inertia == 4.0 and r.converged and r.labels.dtype == np.int64


def test_kmeans_empty_cluster_takes_the_farthest_point_like_sklearn():
    X = np.array([[0.0], [1.0], [2.0], [10.0]])
    init = np.array([[0.0], [100.0]])               # centre 1 attracts nothing at first
    r = cl.kmeans(X, 2, init=init)
    assert r.centers.ravel().tolist() == [1.0, 10.0]
    sk = KMeans(2, init=init, n_init=1, algorithm="lloyd").fit(X)
    np.testing.assert_allclose(r.centers, sk.cluster_centers_)


@pytest.mark.parametrize("k, seed", [(2, 0), (3, 1), (5, 2)])
def test_kmeans_equals_sklearn_from_the_same_init(k, seed):
    X = blobs(seed, spread=0.9)
    init, _ = cl.kmeans_plusplus(X, k, seed=seed)
    r = cl.kmeans(X, k, init=init)
    sk = KMeans(k, init=init, n_init=1, algorithm="lloyd", tol=1e-4, max_iter=300).fit(X)
    np.testing.assert_array_equal(r.labels, sk.labels_)
    np.testing.assert_allclose(r.centers, sk.cluster_centers_, atol=1e-10)
    assert r.inertia == pytest.approx(sk.inertia_, rel=1e-10)
    assert r.n_iter == sk.n_iter_


def test_kmeans_restarts_keep_the_lowest_inertia_and_reach_sklearns_optimum():
    X = blobs(3, centres=((0, 0), (3, 0), (0, 3), (3, 3)), spread=0.4)
    best = cl.kmeans(X, 4, n_init=5, seed=0)
    singles = [cl.kmeans(X, 4, seed=s).inertia for s in range(5)]
    assert best.inertia <= min(singles) + 1e-9 or best.inertia <= np.median(singles)
    sk = KMeans(4, n_init=10, random_state=0).fit(X)
    assert best.inertia == pytest.approx(sk.inertia_, rel=1e-6)


def test_kmeans_max_iter_stops_early():
    X = blobs(4, spread=1.2)
    r = cl.kmeans(X, 3, init=X[:3], max_iter=1)
    assert r.n_iter == 1 and not r.converged
    np.testing.assert_array_equal(r.labels, np.argmin(cl._sqdist(X, r.centers), axis=1))


# --------------------------------------------------------------------------------------------
# label maps from images
# --------------------------------------------------------------------------------------------
def test_kmeans_segment_orders_clusters_darkest_first_whatever_the_seed():
    image = np.zeros((6, 9)); image[:, 3:6] = 0.5; image[:, 6:] = 1.0
    for seed in range(5):
        labels = cl.kmeans_segment(image, 3, seed=seed)
        assert labels[0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        assert labels.dtype == np.int64 and labels.shape == image.shape


def test_kmeans_segment_3d_volume_and_colour_image():
    vol = np.zeros((6, 5, 7)); vol[3:] = 1.0            # (D, H, W): D = 6 > 4, a grey volume
    labels = cl.kmeans_segment(vol, 2)
    assert labels.shape == (6, 5, 7) and labels[:3].max() == 0 and labels[3:].min() == 1
    # colour: red (mean 1/3) and white (mean 1) and black; clustered in RGB, ordered by channel mean
    rgb = np.zeros((3, 4, 6)); rgb[0, :, 2:4] = 1.0; rgb[:, :, 4:] = 1.0
    labels = cl.kmeans_segment(rgb, 3)
    assert labels.shape == (4, 6) and labels[0].tolist() == [0, 0, 1, 1, 2, 2]
    # (C, D, H, W) with one channel
    assert cl.kmeans_segment(vol[None], 2).shape == (6, 5, 7)


def test_colour_clusters_that_share_a_grey_level_are_separated():
    # red and green have the same channel mean: intensity cannot tell them apart, colour can
    rgb = np.zeros((3, 4, 4)); rgb[0, :, :2] = 0.9; rgb[1, :, 2:] = 0.9
    assert np.unique(cl.kmeans_segment(rgb, 2)[:, :2]).size == 1
    assert cl.kmeans_segment(rgb, 2)[0, 0] != cl.kmeans_segment(rgb, 2)[0, 3]
    with pytest.raises(ValueError, match="distinct"):
        cl.kmeans_segment(rgb.mean(0), 2)


def test_layout_rule_and_spatial_dims_override():
    small_volume = np.zeros((4, 8, 8)); small_volume[:, :, 4:] = 1.0   # 4 slices: read as 4 channels
    assert cl.kmeans_segment(small_volume, 2).shape == (8, 8)
    assert cl.kmeans_segment(small_volume, 2, spatial_dims=3).shape == (4, 8, 8)
    assert cl.kmeans_segment(np.zeros((2, 8, 8)) + np.arange(8), 2, spatial_dims=2).shape == (8, 8)


def test_order_by_and_feature_stacks():
    rgb = np.random.default_rng(0).random((3, 12, 10))
    feats = cl.pixel_features(rgb, "lab", smooth=1.0)
    assert feats.shape == (6, 12, 10) and feats.dtype == np.float32
    grey = rgb.mean(0)
    labels = cl.kmeans_segment(feats, 3, order_by=grey)       # (6, H, W) read as 2D via order_by
    means = [grey[labels == j].mean() for j in range(3)]
    assert labels.shape == (12, 10) and means == sorted(means)
    assert cl.pixel_features(rgb, "intensity").shape == (1, 12, 10)
    np.testing.assert_allclose(cl.pixel_features(rgb, "colour"), rgb.astype(np.float32))
    assert cl.pixel_features(np.zeros((5, 6, 7)), "intensity", smooth=1.0).shape == (2, 5, 6, 7)


# --------------------------------------------------------------------------------------------
# fuzzy c-means
# --------------------------------------------------------------------------------------------
def test_membership_formula_by_hand_and_zero_distance_guard():
    # centres 0 and 2: a point at 1 is shared equally; a point at 3 (d = 3 and 1), m = 2:
    # u_0 = 1 / (1 + (3/1)^2) = 0.1; a point on a centre belongs to it fully
    d2 = cl._sqdist(np.array([[1.0], [3.0], [2.0]]), np.array([[0.0], [2.0]])).T
    np.testing.assert_allclose(cl._memberships(d2, 2.0), [[0.5, 0.1, 0.0], [0.5, 0.9, 1.0]])
    # m = 1.5: exponent 2 / (m - 1) = 4: u_0 = 1 / (1 + 3^4) at the point 3
    assert cl._memberships(d2, 1.5)[0, 1] == pytest.approx(1 / 82)
    # very fuzzy m does not overflow and tends to 1/c
    np.testing.assert_allclose(cl._memberships(d2[:, :2] * 1e-12, 50.0), 0.5, atol=0.05)


def test_fcm_on_two_values_is_exact_and_has_no_nan():
    labels, u = cl.fuzzy_cmeans(np.array([[0.0, 0.0, 1.0, 1.0]] * 3), 2)
    assert labels[0].tolist() == [0, 0, 1, 1]
    assert np.all(np.isfinite(u)) and set(np.unique(u).tolist()) == {0.0, 1.0}


def test_fcm_single_cluster_centre_is_the_mean():
    r = cl.fcm(np.array([0.0, 2.0, 4.0]), 1)
    assert r.centers.ravel().tolist() == [2.0] and np.all(r.memberships == 1.0)


def test_fuzzy_cmeans_shapes_order_and_sums_2d_and_3d():
    rng = np.random.default_rng(0)
    image = np.where(np.arange(20)[None, :] < 10, 0.2, 0.8) + rng.normal(0, 0.05, (16, 20))
    labels, u = cl.fuzzy_cmeans(image, 2)
    assert labels.shape == (16, 20) and u.shape == (2, 16, 20) and u.dtype == np.float32
    np.testing.assert_allclose(u.sum(0), 1.0, atol=1e-6)
    np.testing.assert_array_equal(labels, np.argmax(u, axis=0))
    assert labels[:, :10].max() == 0 and labels[:, 10:].min() == 1     # darkest first
    vol = np.stack([image] * 6)
    labels3, u3 = cl.fuzzy_cmeans(vol, 2)
    assert labels3.shape == (6, 16, 20) and u3.shape == (2, 6, 16, 20)
    np.testing.assert_array_equal(labels3[0], labels)


def test_fcm_with_small_m_approaches_kmeans():
    X = blobs(5, spread=0.8)
    init, _ = cl.kmeans_plusplus(X, 3, seed=0)
    km = cl.kmeans(X, 3, init=init)
    r = cl.fcm(X, 3, m=1.05, init=init)
    assert np.mean(np.argmax(r.memberships, 0) == km.labels) > 0.99
    np.testing.assert_allclose(r.centers, km.centers, atol=0.05)


def test_fcm_stops_by_its_rule():
    X = blobs(6, spread=1.0)
    loose = cl.fcm(X, 3, tol=1e-2)
    tight = cl.fcm(X, 3, tol=1e-8)
    capped = cl.fcm(X, 3, tol=0.0, max_iter=3)
    assert loose.converged and tight.converged and loose.n_iter < tight.n_iter
    assert capped.n_iter == 3 and not capped.converged
    assert tight.objective <= loose.objective + 1e-9


def test_spatial_fcm_fixes_noise_and_reduces_to_fcm_at_alpha_zero():
    rng = np.random.default_rng(0)
    clean = np.zeros((40, 40)); clean[10:30, 10:30] = 1.0
    noisy = clean + rng.normal(0, 0.45, clean.shape)
    plain, u_plain = cl.fuzzy_cmeans(noisy, 2)
    same, u_same = cl.spatial_fuzzy_cmeans(noisy, 2, alpha=0.0)
    np.testing.assert_array_equal(plain, same)
    np.testing.assert_allclose(u_plain, u_same, atol=1e-6)
    for filt in ("mean", "median"):
        spatial, u = cl.spatial_fuzzy_cmeans(noisy, 2, alpha=3.0, filter=filt)
        assert (spatial != clean).sum() < 0.25 * (plain != clean).sum()
        np.testing.assert_allclose(u.sum(0), 1.0, atol=1e-6)
    vol = clean[None].repeat(8, 0) + rng.normal(0, 0.45, (8, 40, 40))
    labels3, _ = cl.spatial_fuzzy_cmeans(vol, 2, alpha=3.0)
    assert labels3.shape == (8, 40, 40) and (labels3 != clean).mean() < 0.05


def test_best_matching_cluster():
    labels = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    assert cl.best_matching_cluster(labels, labels == 2) == (2, 1.0)
    label, d = cl.best_matching_cluster(labels, np.array([[0, 0, 1, 1], [0, 0, 1, 1]]))
    assert label == 1 and d == pytest.approx(6 / 7)


# --------------------------------------------------------------------------------------------
# segment_* for the results table
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("segment", [cl.segment_kmeans, cl.segment_fcm, cl.segment_spatial_fcm])
def test_segment_functions_on_fluorescence_and_brightfield(segment):
    truth = np.zeros((24, 24), bool); truth[5:12, 5:12] = True; truth[15:20, 14:22] = True
    fluo = np.where(truth, 0.7, 0.1)[None].astype(np.float32)
    bright = np.stack([np.where(truth, 0.3, 0.95), np.where(truth, 0.1, 0.9), np.where(truth, 0.5, 0.92)])
    for image, category in [(fluo, "fluorescence_gray_256x256"), (bright, "brightfield_stained_color_256x320"),
                            (fluo[0], None)]:
        out = segment(image, category)
        assert out.dtype == bool and out.shape == (24, 24)
        np.testing.assert_array_equal(out, truth)
    assert not segment(np.full((1, 8, 8), 0.3)).any()     # constant image: nothing


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
IMG = np.random.default_rng(0).random((8, 8))


@pytest.mark.parametrize("call, error, message", [
    (lambda: cl.kmeans(IMG.ravel(), 2.0), TypeError, "k must be an int"),
    (lambda: cl.kmeans(IMG.ravel(), 0), ValueError, "k must be >= 1"),
    (lambda: cl.kmeans(IMG.ravel()[:3], 4), ValueError, "at most the number of points"),
    (lambda: cl.kmeans(np.zeros((2, 3, 4)), 2), ValueError, "feature matrix"),
    (lambda: cl.kmeans(np.array([1.0, np.nan]), 1), ValueError, "NaN"),
    (lambda: cl.kmeans(np.array(["a", "b"]), 1), TypeError, "numeric"),
    (lambda: cl.kmeans(np.zeros((0, 2)), 1), ValueError, "empty"),
    (lambda: cl.kmeans(IMG.ravel(), 2, init="random"), ValueError, "init must be 'k-means++'"),
    (lambda: cl.kmeans(IMG.ravel(), 2, init=np.zeros((3, 1))), ValueError, "shape (k, F)"),
    (lambda: cl.kmeans(IMG.ravel(), 2, init=np.array([[0.0], [np.inf]])), ValueError, "NaN or infinite centres"),
    (lambda: cl.kmeans(IMG.ravel(), 2, init=np.zeros((2, 1)), n_init=3), ValueError, "n_init must be 1"),
    (lambda: cl.kmeans(IMG.ravel(), 2, tol=-1), ValueError, "tol must be"),
    (lambda: cl.kmeans(IMG.ravel(), 2, max_iter=0), ValueError, "max_iter must be >= 1"),
    (lambda: cl.kmeans(IMG.ravel(), 2, seed=-1), TypeError, "seed must be"),
    (lambda: cl.kmeans_plusplus(IMG.ravel(), 2, n_local_trials=0), ValueError, "n_local_trials"),
    (lambda: cl.fcm(IMG.ravel(), 2, m=1.0), ValueError, "m must be a finite number > 1"),
    (lambda: cl.fcm(IMG.ravel(), 2, m="2"), TypeError, "m must be a number"),
    (lambda: cl.fcm(IMG.ravel(), 2, init=np.zeros((3, 1))), ValueError, "init must have shape"),
    (lambda: cl.fcm(IMG.ravel()[:2], 3), ValueError, "c must be at most"),
    (lambda: cl.kmeans_segment(np.zeros((2, 2, 2, 2, 2)), 2), ValueError, "(C, D, H, W)"),
    (lambda: cl.kmeans_segment(IMG, 2, spatial_dims=4), ValueError, "spatial_dims must be 2, 3"),
    (lambda: cl.kmeans_segment(np.zeros((2, 3, 4, 5)), 2, spatial_dims=2), ValueError, "spatial_dims=2"),
    (lambda: cl.kmeans_segment(np.zeros((0, 4)), 2), ValueError, "empty"),
    (lambda: cl.kmeans_segment(np.full((4, 4), np.nan), 2), ValueError, "NaN"),
    (lambda: cl.kmeans_segment(np.zeros((4, 4)), 2), ValueError, "distinct"),
    (lambda: cl.kmeans_segment(IMG, 2, order_by=np.zeros((3, 3))), ValueError, "order_by must have"),
    (lambda: cl.fuzzy_cmeans(IMG, 2, m=0.5), ValueError, "fuzzifier"),
    (lambda: cl.fuzzy_cmeans(IMG, 0), ValueError, "c must be >= 1"),
    (lambda: cl.fuzzy_cmeans(IMG, 2, tol=-1.0), ValueError, "tol must be"),
    (lambda: cl.spatial_fuzzy_cmeans(IMG, 2, alpha=-1), ValueError, "alpha must be"),
    (lambda: cl.spatial_fuzzy_cmeans(IMG, 2, size=0), ValueError, "size must be >= 1"),
    (lambda: cl.spatial_fuzzy_cmeans(IMG, 2, filter="gaussian"), ValueError, "filter must be"),
    (lambda: cl.pixel_features(IMG, "hsv"), ValueError, "space must be one of"),
    (lambda: cl.pixel_features(IMG, "lab"), ValueError, "needs an RGB image"),
    (lambda: cl.pixel_features(IMG, smooth=-1), ValueError, "smooth must be"),
    (lambda: cl.best_matching_cluster(IMG, IMG > 0.5), TypeError, "integer label map"),
    (lambda: cl.best_matching_cluster(np.zeros((2, 2), int), np.zeros((3, 3))), ValueError, "same shape"),
    (lambda: cl.segment_kmeans(np.zeros((1, 1, 4, 4))), ValueError, "DSB2018 sample"),
])
def test_validation_errors_name_the_parameter(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()
