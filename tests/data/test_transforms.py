"""Intensity transforms: values checked by hand, input left untouched, errors explained."""

import numpy as np
import pytest

from medseg_course.data.transforms import percentile_normalize, window, zscore


def test_zscore_by_hand_and_with_a_mask():
    image = np.array([[0.0, 0.0], [2.0, 4.0]])
    out = zscore(image, mask=image > 0)            # foreground mean 3, std 1
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[-3.0, -3.0], [-1.0, 1.0]])
    assert image[1, 1] == 4.0                      # input unchanged


def test_zscore_of_a_constant_image_is_zero():
    assert np.all(zscore(np.full((3, 3), 7.0)) == 0)


def test_percentile_normalize_clips_outliers():
    image = np.concatenate([np.linspace(0, 1, 999), [1e6]])
    out = percentile_normalize(image, low=0, high=99)
    assert out.min() == 0 and out.max() == 1
    assert np.median(out) == pytest.approx(0.5, abs=0.02)  # the outlier no longer squeezes the rest


def test_window_by_hand():
    np.testing.assert_allclose(window(np.array([-160.0, 40.0, 140.0]), level=40, width=400),
                               [0.0, 0.5, 0.75])


@pytest.mark.parametrize("call, message", [
    (lambda: window(np.zeros(3), level=0, width=0), "width must be a positive number"),
    (lambda: percentile_normalize(np.zeros(3), low=50, high=10), "need 0 <= low < high <= 100"),
    (lambda: zscore(np.array([1.0, np.nan])), "NaN or infinite"),
    (lambda: zscore(np.array([])), "is empty"),
    (lambda: zscore(np.array(["a"])), "must be a numeric array"),
    (lambda: zscore(np.zeros((2, 2)), mask=np.zeros(3, bool)), "mask must have the image's shape"),
    (lambda: zscore(np.zeros((2, 2)), mask=np.zeros((2, 2), bool)), "mask selects no pixels"),
])
def test_errors_name_the_problem(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_nuclei_bright_inverts_brightfield_and_averages_channels():
    from medseg_course.data.transforms import nuclei_bright

    dark_nucleus = np.full((3, 4, 4), 0.9); dark_nucleus[:, 1, 1] = 0.1
    out = nuclei_bright(dark_nucleus)
    assert out.shape == (4, 4) and out[1, 1] == out.max() and out[0, 0] == out.min()
    fluo = np.zeros((1, 4, 4)); fluo[0, 2, 2] = 1.0
    assert nuclei_bright(fluo)[2, 2] == 1.0                            # already bright: unchanged
    assert nuclei_bright(fluo, category="brightfield_x")[2, 2] == 0.0  # the category decides
    with pytest.raises(ValueError, match=r"must be \(H, W\) or \(C, H, W\)"):
        nuclei_bright(np.zeros((1, 1, 2, 2)))
