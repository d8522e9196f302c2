"""The U-Net weight map: a hand-computed case, an independent brute-force implementation, 3D,
class balancing, and errors."""

import math

import numpy as np
import pytest
from scipy import ndimage

from medseg_course.data.weights import balanced_class_weights, border_term, unet_weight_map


def _two_bars():
    """3 x 7: object 1 in columns 0-1, object 2 in columns 5-6, background in columns 2-4."""
    inst = np.zeros((3, 7), np.int64)
    inst[:, 0:2] = 1
    inst[:, 5:7] = 2
    return inst


def test_hand_computed_two_bars():
    # every background pixel lies at distance 1, 2, 3 from one bar and 3, 2, 1 from the other:
    # d1 + d2 = 4 everywhere in the gap, so the border term is w0 exp(-16 / (2 sigma^2)).
    inst = _two_bars()
    w0, sigma = 10.0, 2.0
    gap = w0 * math.exp(-16 / (2 * sigma**2))  # 10 e^-2 = 1.3534
    border = border_term(inst, w0=w0, sigma=sigma)
    assert np.allclose(border[:, 2:5], gap) and np.all(border[:, :2] == 0) and np.all(border[:, 5:] == 0)
    # class balancing: 12 object pixels, 9 background, N = 21, K = 2: 21/24 and 21/18
    w = unet_weight_map(inst, w0=w0, sigma=sigma)
    assert np.allclose(w[:, :2], 21 / 24) and np.allclose(w[:, 5:], 21 / 24)
    assert np.allclose(w[:, 2:5], 21 / 18 + gap)
    w = unet_weight_map(inst, w0=w0, sigma=sigma, class_weights=(1.0, 3.0))
    assert np.allclose(w[:, :2], 3.0) and np.allclose(w[:, 2:5], 1.0 + gap)


def test_touching_nuclei_gap_gets_the_largest_weight():
    inst = np.zeros((20, 20), np.int64)
    inst[5:15, 3:9] = 1
    inst[5:15, 10:16] = 2  # a one-pixel gap in column 9
    w = unet_weight_map(inst, class_weights=(1, 1))
    assert np.isclose(w[10, 9], 1 + 10 * math.exp(-4 / 50))  # d1 = d2 = 1
    assert w[10, 9] == w.max()
    assert w[0, 0] < w[10, 9] / 2


def _brute_force(inst, w0, sigma):
    """Independent version: full-image distance transforms, sorted per pixel."""
    labels = [k for k in np.unique(inst) if k > 0]
    if len(labels) < 2:
        return np.zeros(inst.shape)
    d = np.sort(np.stack([ndimage.distance_transform_edt(inst != k) for k in labels]), axis=0)
    return np.where(inst == 0, w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2)), 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force_on_random_blobs(seed):
    rng = np.random.default_rng(seed)
    blobs = ndimage.gaussian_filter(rng.random((48, 56)), 2) > 0.52
    inst, n = ndimage.label(blobs)
    assert n >= 3
    ours = border_term(inst, w0=10, sigma=5, cutoff=20)  # cutoff larger than the image: exact
    np.testing.assert_allclose(ours, _brute_force(inst, 10, 5), rtol=1e-5, atol=1e-6)
    approx = border_term(inst, w0=10, sigma=5)  # default cutoff: within w0 exp(-12.5)
    assert np.abs(approx - _brute_force(inst, 10, 5)).max() <= 10 * math.exp(-12.5) + 1e-6


def test_non_contiguous_labels_3d_and_single_object():
    inst = np.zeros((6, 12, 12), np.int64)
    inst[1:5, 1:5, 1:5] = 3
    inst[1:5, 7:11, 7:11] = 9  # labels need not be 1..N
    ours = border_term(inst, w0=5, sigma=3, cutoff=20)
    np.testing.assert_allclose(ours, _brute_force(inst, 5, 3), rtol=1e-5, atol=1e-6)
    single = np.zeros((10, 10), np.int64)
    single[2:5, 2:5] = 1
    assert not border_term(single).any()
    assert np.allclose(unet_weight_map(np.zeros((4, 4), np.int64)), 1.0)  # no object: balanced = 1


def test_balanced_class_weights_have_mean_one():
    rng = np.random.default_rng(0)
    mask = (rng.random((30, 40)) > 0.8).astype(np.int64)
    w = balanced_class_weights(mask)
    assert w.mean() == pytest.approx(1.0)
    assert w[mask > 0].sum() == pytest.approx(w[mask == 0].sum())


@pytest.mark.parametrize("instances, kwargs, error, message", [
    (np.zeros((4, 4)) + 0.5, {}, TypeError, "integer label map"),
    (np.zeros(4, np.int64), {}, ValueError, r"must be \(H, W\) or \(D, H, W\)"),
    (-np.ones((4, 4), np.int64), {}, ValueError, "non-negative labels"),
    (np.zeros((4, 4), np.int64), {"sigma": 0}, ValueError, "sigma must be a finite number > 0"),
    (np.zeros((4, 4), np.int64), {"class_weights": (1.0,)}, ValueError, "class_weights must be"),
])
def test_errors(instances, kwargs, error, message):
    with pytest.raises(error, match=message):
        unet_weight_map(instances, **kwargs)


def test_accepts_whole_float_labels():
    assert np.allclose(unet_weight_map(_two_bars().astype(float)), unet_weight_map(_two_bars()))
