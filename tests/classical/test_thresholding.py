"""Thresholding: hand-checkable answers, equality with scikit-image, and every validation error."""

import numpy as np
import pytest
from scipy import ndimage
from skimage import data as skdata
from skimage.exposure import histogram as sk_histogram
from skimage.filters import threshold_local, threshold_multiotsu, threshold_otsu

from medseg_course import metrics
from medseg_course.classical import thresholding as th
from medseg_course.data import synthetic
from medseg_course.data.transforms import nuclei_bright


def _real_images():
    """Real and synthetic test images: skimage's samples (uint8 and float), DSB2018, an MRI volume."""
    images = {}
    for name in ("camera", "coins", "moon", "page"):
        img = getattr(skdata, name)()
        images[name] = img
        images[name + "_float32"] = img.astype(np.float32) / 255
        images[name + "_float64_shifted"] = img / 255.0 - 0.3
    rng = np.random.default_rng(0)
    scene = synthetic.make_nuclei2d(shape=(96, 96), n_objects=8, seed=0)
    images["synthetic_nuclei_noisy"] = scene.image + rng.normal(0, 0.1, scene.image.shape).astype(np.float32)
    images["int16_negative"] = rng.integers(-200, 300, (40, 50)).astype(np.int16)
    try:
        from medseg_course import data

        dsb = data.load_dataset("dsb2018", split="train")
        for i in (0, 1, 20, 52, 96):
            s = dsb[i]
            images[f"dsb_{s.category[:12]}_{i}"] = nuclei_bright(s.image, s.category)
        hippo = data.load_dataset("msd-hippocampus", split="train")
        images["hippocampus_volume_zscored"] = hippo[0].image[0]
        images["hippocampus_volume_raw"] = data.load_dataset("msd-hippocampus", split="train",
                                                             normalize=False)[1].image[0]
    except Exception:  # pragma: no cover - without the dataset copies only the samples run
        pass
    return images


IMAGES = _real_images()


# --------------------------------------------------------------------------------------------
# threshold_mask
# --------------------------------------------------------------------------------------------

def test_threshold_mask_is_strict_and_boolean():
    out = th.threshold_mask(np.array([[1, 2], [3, 4]]), 2)
    assert out.dtype == bool and out.tolist() == [[False, False], [True, True]]


def test_threshold_mask_accepts_a_threshold_image():
    image = np.array([0.2, 0.5, 0.8])
    assert th.threshold_mask(image, np.array([0.3, 0.6, 0.6])).tolist() == [False, False, True]


@pytest.mark.parametrize("image, threshold, error, message", [
    (np.ones((3, 3), bool), 0.5, TypeError, "already a mask"),
    (np.ones((3, 3), complex), 0.5, TypeError, "real numbers"),
    (np.zeros((0, 4)), 0.5, ValueError, "is empty"),
    (np.array([0.0, np.nan]), 0.5, ValueError, "NaN or infinite"),
    (np.zeros((3, 3)), "0.5", TypeError, "threshold must be a number"),
    (np.zeros((3, 3)), np.zeros((2, 2)), ValueError, "does not match image of shape (3, 3)"),
])
def test_threshold_mask_validation(image, threshold, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        th.threshold_mask(image, threshold)


# --------------------------------------------------------------------------------------------
# histogram and Otsu
# --------------------------------------------------------------------------------------------

def test_histogram_by_hand():
    counts, centers = th.histogram(np.array([0.0, 0.0, 0.1, 1.0]), nbins=4)
    assert counts.tolist() == [3, 0, 0, 1]
    assert centers.tolist() == [0.125, 0.375, 0.625, 0.875]
    counts, centers = th.histogram(np.array([[3, 5], [5, 5]], dtype=np.uint8))
    assert counts.tolist() == [1, 0, 3] and centers.tolist() == [3, 4, 5]


@pytest.mark.parametrize("name", ["camera", "camera_float32", "coins_float64_shifted", "int16_negative"])
def test_histogram_equals_skimage(name):
    counts, centers = th.histogram(IMAGES[name])
    sk_counts, sk_centers = sk_histogram(IMAGES[name])
    np.testing.assert_array_equal(counts, sk_counts)
    np.testing.assert_array_equal(centers, sk_centers)


def test_between_class_variance_by_hand():
    # bins at 0 and 1 with 2 pixels each: w0 = w1 = 1/2, (mu0 - mu1)^2 = 1
    assert th.between_class_variance([2, 2], [0.0, 1.0]).tolist() == [0.25]
    # split after bin 0 of [1, 1, 2] at [0, 1, 2]: w0 = 1/4, mu0 = 0, w1 = 3/4, mu1 = 5/3
    var = th.between_class_variance([1, 1, 2], [0.0, 1.0, 2.0])
    assert var[0] == pytest.approx(0.25 * 0.75 * (5 / 3) ** 2)


def test_total_variance_is_within_plus_between_for_every_split():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 50, 32).astype(float)
    x = np.linspace(-1.0, 3.0, 32)
    p = counts / counts.sum()
    total = np.sum(p * x**2) - np.sum(p * x) ** 2
    between = th.between_class_variance(counts, x)
    for k in range(31):
        within = 0.0
        for part in (slice(0, k + 1), slice(k + 1, None)):
            w = p[part].sum()
            if w > 0:
                mu = np.sum(p[part] * x[part]) / w
                within += np.sum(p[part] * (x[part] - mu) ** 2)
        assert within + between[k] == pytest.approx(total)


def test_otsu_from_histogram_ties_go_to_the_first_split_and_empty_ends_are_not_nan():
    # the empty bins 2 and 3 give three splits with the same classes: the first wins
    assert th.otsu_from_histogram([5, 3, 0, 0, 4, 6], [0, 1, 2, 3, 4, 5]) == 1.0
    counts = [0, 0, 4, 4, 0, 4, 4, 0]
    assert np.all(np.isfinite(th.between_class_variance(counts, np.arange(8.0))))
    assert th.otsu_from_histogram(counts, np.arange(8.0)) == 3.0


def test_otsu_threshold_by_hand():
    image = np.array([[0.1, 0.2, 0.8], [0.1, 0.9, 0.8]])
    t = th.otsu_threshold(image)
    assert 0.2 <= t < 0.8
    assert th.otsu_threshold(np.full((4, 4), 7.0)) == 7.0       # constant image: its value
    assert isinstance(th.otsu_threshold(np.arange(10)), float)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_otsu_threshold_equals_skimage(name):
    image = IMAGES[name]
    assert th.otsu_threshold(image) == threshold_otsu(image)


@pytest.mark.parametrize("nbins", [2, 16, 100, 1000])
def test_otsu_threshold_equals_skimage_for_other_bin_counts(nbins):
    image = IMAGES["camera_float32"]
    assert th.otsu_threshold(image, nbins=nbins) == threshold_otsu(image, nbins=nbins)


@pytest.mark.parametrize("call, error, message", [
    (lambda: th.otsu_threshold(np.ones((4, 4), bool)), TypeError, "already a mask"),
    (lambda: th.otsu_threshold(np.array([1.0, np.inf])), ValueError, "NaN or infinite"),
    (lambda: th.otsu_threshold(np.zeros(0)), ValueError, "empty"),
    (lambda: th.otsu_threshold(np.arange(4.0), nbins=1), ValueError, "nbins must be an integer >= 2"),
    (lambda: th.otsu_threshold(np.arange(4.0), nbins=2.5), ValueError, "nbins must be an integer >= 2"),
    (lambda: th.otsu_from_histogram([1, 2, 3], [0, 1]), ValueError, "one value per bin"),
    (lambda: th.otsu_from_histogram([3], [0]), ValueError, "at least 2 bins"),
    (lambda: th.otsu_from_histogram([1, -1], [0, 1]), ValueError, "non-negative"),
    (lambda: th.otsu_from_histogram([0, 0], [0, 1]), ValueError, "not all zero"),
    (lambda: th.otsu_from_histogram([1, 1], [1, 0]), ValueError, "strictly increasing"),
    (lambda: th.otsu_from_histogram([[1, 1]], [[0, 1]]), ValueError, "1D array"),
])
def test_otsu_validation(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------------------------
# multi-level Otsu
# --------------------------------------------------------------------------------------------

def _criterion(image, thresholds):
    """Between-class variance of a split of the histogram (float64), for comparing two answers."""
    counts, centers = th.histogram(image)
    p = counts / counts.sum()
    x = np.asarray(centers, dtype=np.float64)
    labels = np.digitize(x, np.asarray(thresholds, dtype=np.float64), right=True)
    mu = np.sum(p * x)
    total = 0.0
    for k in range(len(thresholds) + 1):
        w = p[labels == k].sum()
        if w > 0:
            total += w * (np.sum(p[labels == k] * x[labels == k]) / w - mu) ** 2
    return total


def test_multi_otsu_by_hand():
    image = np.repeat([0.0, 0.5, 1.0], 4)
    t = th.multi_otsu_thresholds(image, classes=3, nbins=8)
    assert th.apply_thresholds(image, t).tolist() == [0] * 4 + [1] * 4 + [2] * 4
    image = np.repeat([0.0, 1.0, 2.0, 10.0], [5, 5, 5, 1]).astype(float)   # 4 occupied bins, 4 classes
    assert th.apply_thresholds(image, th.multi_otsu_thresholds(image, classes=4)).max() == 3


@pytest.mark.parametrize("name", ["camera", "coins_float32", "moon", "synthetic_nuclei_noisy"])
def test_two_classes_is_otsu(name):
    image = IMAGES[name]
    assert th.multi_otsu_thresholds(image, classes=2).tolist() == [th.otsu_threshold(image)]


@pytest.mark.parametrize("name", ["camera", "coins", "page", "camera_float32", "synthetic_nuclei_noisy"])
def test_multi_otsu_equals_skimage(name):
    image = IMAGES[name]
    np.testing.assert_array_equal(th.multi_otsu_thresholds(image, classes=3),
                                  threshold_multiotsu(image, classes=3))


@pytest.mark.parametrize("name", sorted(IMAGES))
@pytest.mark.parametrize("classes", [3, 4])
def test_multi_otsu_is_at_least_as_good_as_skimage(name, classes):
    """Where the thresholds differ, it is because scikit-image searches in float32: ours reach a
    between-class variance (in float64) at least as high, and the two agree to 1e-4."""
    image = IMAGES[name]
    ours, theirs = th.multi_otsu_thresholds(image, classes), threshold_multiotsu(image, classes)
    assert np.all(np.diff(ours) > 0)
    c_ours, c_theirs = _criterion(image, ours), _criterion(image, theirs)
    assert c_ours >= c_theirs * (1 - 1e-12)
    assert c_ours == pytest.approx(c_theirs, rel=1e-4)


@pytest.mark.parametrize("call, error, message", [
    (lambda: th.multi_otsu_thresholds(np.arange(10.0), classes=1), ValueError, "classes must be an integer >= 2"),
    (lambda: th.multi_otsu_thresholds(np.repeat([0.0, 1.0], 5), classes=3), ValueError, "only 2 occupied"),
    (lambda: th.multi_otsu_thresholds(np.arange(5000, dtype=np.int32)), ValueError, "astype\\(float\\)"),
    (lambda: th.apply_thresholds(np.arange(4.0), [2.0, 1.0]), ValueError, "increasing"),
    (lambda: th.apply_thresholds(np.arange(4.0), []), ValueError, "non-empty"),
])
def test_multi_otsu_validation(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_apply_thresholds_keeps_ties_in_the_lower_class():
    assert th.apply_thresholds(np.array([0.0, 1.0, 1.5, 2.0, 3.0]), [1.0, 2.0]).tolist() == [0, 0, 1, 1, 2]


# --------------------------------------------------------------------------------------------
# local thresholds
# --------------------------------------------------------------------------------------------

def test_local_mean_by_hand():
    assert th.local_mean(np.array([[0.0, 0.0, 9.0]]), 3).tolist() == [[0.0, 3.0, 6.0]]
    assert th.local_mean(np.ones((5, 5)), 5).tolist() == np.ones((5, 5)).tolist()


@pytest.mark.parametrize("shape, size", [((40, 50), 3), ((40, 50), 15), ((7, 9), 21), ((12, 10, 8), (3, 5, 7)),
                                         ((30,), 11)])
def test_local_mean_equals_uniform_filter(shape, size):
    image = np.random.default_rng(2).random(shape) * 100
    np.testing.assert_allclose(th.local_mean(image, size), ndimage.uniform_filter(image, size, mode="reflect"),
                               rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("method", ["mean", "gaussian"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("block", [3, 31, (5, 9)])
def test_local_threshold_equals_skimage(method, dtype, block):
    image = (np.random.default_rng(3).random((48, 60)) * 200).astype(dtype)
    ours = th.local_threshold(image, block, method=method, offset=-2.5)
    theirs = threshold_local(image, block, method=method, offset=-2.5)
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)


def test_local_threshold_follows_illumination():
    image = np.tile(np.linspace(0.0, 1.0, 9), (3, 1))
    image[1, 2] += 0.3
    image[1, 7] += 0.3
    mask = image > th.local_threshold(image, 3, method="mean", offset=-0.1)
    assert np.argwhere(mask).tolist() == [[1, 2], [1, 7]]


@pytest.mark.parametrize("call, error, message", [
    (lambda: th.local_threshold(np.zeros((5, 5)), 4), ValueError, "odd positive integer"),
    (lambda: th.local_threshold(np.zeros((5, 5)), 0), ValueError, "odd positive integer"),
    (lambda: th.local_threshold(np.zeros((5, 5)), (3, 3, 3)), ValueError, "one per axis \\(2\\)"),
    (lambda: th.local_threshold(np.zeros((5, 5)), 3, method="median"), ValueError, "'gaussian' or 'mean'"),
    (lambda: th.local_threshold(np.zeros((5, 5)), 3, offset="1"), TypeError, "offset must be a finite real"),
    (lambda: th.local_threshold(np.zeros((5, 5)), 3, offset=np.nan), TypeError, "offset must be a finite real"),
    (lambda: th.local_mean(np.zeros((5, 5), bool), 3), TypeError, "already a mask"),
])
def test_local_threshold_validation(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------------------------
# the oracle
# --------------------------------------------------------------------------------------------

def test_best_threshold_by_hand():
    image = np.array([0.0, 0.2, 0.5, 0.55, 0.8, 1.0])
    target = np.array([0, 0, 1, 1, 0, 0])
    one = th.best_threshold(image, target)
    assert one.dice == pytest.approx(2 / 3) and one.mask.tolist() == [False, False, True, True, True, True]
    both = th.best_threshold(image, target, interval=True)
    assert both.dice == 1.0 and both.mask.tolist() == [False, False, True, True, False, False]
    assert both.low < 0.5 and 0.55 <= both.high < 0.8


def test_best_threshold_is_the_best_of_all_cuts():
    rng = np.random.default_rng(4)
    image = rng.random((30, 30))
    target = image + rng.normal(0, 0.3, image.shape) > 0.6
    result = th.best_threshold(image, target, nbins=64)
    assert result.dice == pytest.approx(metrics.dice(result.mask, target))
    edges = np.linspace(image.min(), image.max(), 65)
    brute = max(metrics.dice(image > e, target) for e in edges[:-1])
    assert result.dice >= brute - 1e-12
    interval = th.best_threshold(image, target, interval=True, nbins=64)
    assert interval.dice >= result.dice
    assert interval.dice == pytest.approx(metrics.dice(interval.mask, target))
    for r in (result, interval):        # the mask is exactly low < image <= high
        np.testing.assert_array_equal(r.mask, (image > r.low) & (image <= r.high))


def test_best_threshold_on_a_volume_and_empty_target():
    volume = np.random.default_rng(5).random((6, 8, 7))
    result = th.best_threshold(volume, np.zeros(volume.shape, int))
    assert result.dice == 1.0 and not result.mask.any() and result.mask.shape == volume.shape


@pytest.mark.parametrize("call, error, message", [
    (lambda: th.best_threshold(np.zeros((4, 4)), np.zeros((4, 5))), ValueError, "target must have the image's shape"),
    (lambda: th.best_threshold(np.zeros((4, 4)), np.zeros((4, 4))), TypeError, "boolean or integer mask"),
    (lambda: th.best_threshold(np.zeros((4, 4)), np.zeros((4, 4), int), nbins=1), ValueError, "nbins"),
])
def test_best_threshold_validation(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --------------------------------------------------------------------------------------------
# recipes for DSB2018 samples
# --------------------------------------------------------------------------------------------

SEGMENTERS = [th.segment_otsu, th.segment_smoothed_otsu, th.segment_multiotsu, th.segment_adaptive]


@pytest.mark.parametrize("segment", SEGMENTERS)
def test_segmenters_find_a_bright_square_and_a_dark_one(segment):
    fluo = np.full((1, 48, 56), 0.1, np.float32)
    fluo[0, 10:30, 12:36] = 0.9
    mask = segment(fluo, "fluorescence_gray_256x256")
    assert mask.shape == (48, 56) and mask.dtype == bool
    assert metrics.dice(mask, fluo[0] > 0.5) > 0.9
    bright = np.repeat(1.0 - fluo, 3, axis=0)           # dark nucleus on a bright field, RGB
    assert metrics.dice(segment(bright, "brightfield_stained_color_256x320"), fluo[0] > 0.5) > 0.9
    assert metrics.dice(segment(bright), fluo[0] > 0.5) > 0.9  # polarity detected without a category


@pytest.mark.parametrize("segment", SEGMENTERS)
def test_segmenters_validate_their_input(segment):
    with pytest.raises(ValueError, match="np.moveaxis"):
        segment(np.zeros((32, 32, 3)))
    with pytest.raises(ValueError, match="2D or 3D"):
        segment(np.zeros((1, 1, 8, 8)))
    with pytest.raises(TypeError, match="category must be a string"):
        segment(np.zeros((1, 8, 8)), category=3)


def test_segment_otsu_on_a_constant_image_is_empty():
    for segment in SEGMENTERS:
        assert not segment(np.full((1, 8, 8), 0.3)).any()


def test_segmenter_parameters_are_validated():
    with pytest.raises(ValueError, match="classes must be an integer >= 2"):
        th.segment_multiotsu(np.zeros((1, 8, 8)), classes=1)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        th.segment_smoothed_otsu(np.zeros((1, 8, 8)), sigma=-1.0)
    with pytest.raises(TypeError, match="margin must be a finite real"):
        th.segment_adaptive(np.zeros((1, 8, 8)), margin="0.2")
    with pytest.raises(ValueError, match="odd positive integer"):
        th.segment_adaptive(np.zeros((1, 8, 8)), block_size=10)
