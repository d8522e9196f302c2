"""Questions of notebook 02_thresholding: a threshold mask, a threshold chosen by eye, Otsu's
threshold from a histogram, and an adaptive (local mean) threshold.

Introduced in 02_thresholding.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from medseg_course.classical import thresholding as th
from medseg_course.exercises.engine import (
    Case,
    FunctionQuestion,
    Incorrect,
    Question,
    as_number,
    compare_values,
)
from medseg_course.exercises.engine import summary as _summary

NOTEBOOK = "02_thresholding"


# -- 1. a threshold mask -------------------------------------------------------------------------

def reference_threshold_mask(image, t):
    """``image > t`` as a boolean mask (delegates to :func:`medseg_course.classical.thresholding.threshold_mask`).

    Introduced in 02_thresholding.
    """
    return th.threshold_mask(image, t)


def _mask_cases(device):
    yield Case((np.array([[0.1, 0.5, 0.9], [0.5, 0.7, 0.2]]), 0.5), label="a 2x3 image with two pixels equal to t")
    rng = np.random.default_rng(20)
    yield Case((rng.integers(0, 256, (24, 32), dtype=np.uint8), 100), label="a uint8 image")
    yield Case((rng.normal(0.0, 1.0, (6, 10, 8)).astype(np.float32), -0.25), label="a float32 volume")


def _compare_mask(got, expected, case):
    image, t = case.args
    got_np = np.asarray(got) if isinstance(got, np.ndarray) else got
    if isinstance(got_np, np.ndarray) and got_np.shape == expected.shape:
        if got_np.dtype != bool:
            values = np.unique(got_np)[:4].tolist()
            raise Incorrect(f"Your mask has dtype {got_np.dtype} (values {values}); a mask is boolean. "
                            "The comparison image > t already gives one: return it without converting.")
        if np.array_equal(got_np, ~expected):
            raise Incorrect("Your mask is the complement of the foreground: the objects here are bright, "
                            "so they are the pixels whose intensity is above the threshold.")
        if np.array_equal(got_np, image >= t) and not np.array_equal(image >= t, expected):
            raise Incorrect("Pixels exactly equal to the threshold should stay background: the course "
                            "(like scikit-image) uses a strict comparison, image > t.")
    compare_values(got, expected, what="Your mask", check_dtype="bool")


threshold_mask = FunctionQuestion(
    NOTEBOOK, "threshold_mask", "A global threshold: the mask of the bright pixels", points=1,
    reference=reference_threshold_mask, cases=_mask_cases, compare=_compare_mask,
    hints=["A comparison between a NumPy array and a number is done pixel by pixel and gives a boolean array.",
           "return image > t"],
    solution_code='''
    def my_threshold_mask(image, t):
        return image > t
    ''',
)


# -- 2. a threshold chosen by eye ----------------------------------------------------------------

#: The DSB2018 training image of the explorer: bright and dim nuclei on a dark background.
MANUAL_CASE = "564fa390d9a9c26f986bf860d9091cbd84244bc1c8e3c9369f2f2e5b5fd99b92"
#: The Dice a threshold chosen by eye must reach on it.
MANUAL_GOAL = 0.85


@functools.lru_cache(maxsize=1)
def _manual_image() -> tuple[np.ndarray, np.ndarray]:
    from medseg_course import data
    from medseg_course.data.transforms import nuclei_bright

    sample = data.load_dataset("dsb2018", split="train")[MANUAL_CASE]
    return nuclei_bright(sample.image, sample.category), sample.mask > 0


def manual_image() -> tuple[np.ndarray, np.ndarray]:
    """The explorer's DSB2018 training image: its grey image (nuclei bright, (H, W) float32) and
    its binary ground truth ((H, W) bool), fresh copies on every call.

    Introduced in 02_thresholding.
    """
    grey, truth = _manual_image()
    return grey.copy(), truth.copy()


class ThresholdChoiceQuestion(Question):
    """A threshold for :func:`manual_image`, correct when its Dice reaches :data:`MANUAL_GOAL`.

    The feedback says whether a wrong value is too low (background taken in) or too high (nucleus
    pixels missed), without revealing a good value. Introduced in 02_thresholding.
    """

    kind = "value"

    def grade(self, answer):
        t = as_number(answer, what="Your threshold")
        grey, truth = _manual_image()
        from medseg_course import metrics

        mask = grey > t
        score = float(metrics.dice(mask, truth))
        if score >= MANUAL_GOAL:
            return
        if not grey.min() <= t < grey.max():
            raise Incorrect(f"Your threshold {t:g} lies outside the image's intensities "
                            f"({grey.min():.2f} to {grey.max():.2f}), so the mask is "
                            f"{'empty' if t >= grey.max() else 'the whole image'}.")
        missed = 1.0 - float(mask[truth].mean())
        extra = float(mask[~truth].mean())
        if missed > extra:
            raise Incorrect(f"Dice {score:.3f} is below {MANUAL_GOAL}: the threshold is too high, the mask "
                            f"misses {missed:.0%} of the nucleus pixels (the dim nuclei and the edges). "
                            "Try a lower value.")
        raise Incorrect(f"Dice {score:.3f} is below {MANUAL_GOAL}: the threshold is too low, the mask "
                        f"takes in {extra:.0%} of the background pixels. Try a higher value.")


manual_threshold = ThresholdChoiceQuestion(
    NOTEBOOK, "manual_threshold", f"A threshold chosen by eye (Dice at least {MANUAL_GOAL})", points=1,
    reference=0.15,
    hints=["Look at the histogram: the big peak at the left is the background. The threshold belongs just "
           "to the right of it, far below the brightest nuclei.",
           "Watch the colours in the explorer: blue (missed) regions grow as t rises, because the dim "
           "nuclei vanish first; vermillion (haze taken in) grows as t falls. Look for the value where "
           "both are small, and let the check's 'too low' or 'too high' guide you."],
    solution_code='''
    my_threshold = 0.15
    ''',
)


# -- 3. Otsu from a histogram -------------------------------------------------------------------

def reference_otsu(counts, centers) -> float:
    """Otsu's threshold from a histogram (delegates to
    :func:`medseg_course.classical.thresholding.otsu_from_histogram`).

    Introduced in 02_thresholding.
    """
    return th.otsu_from_histogram(counts, centers)


def _otsu_cases(device):
    yield Case((np.array([4.0, 3.0, 1.0, 1.0, 2.0, 5.0]), np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0])),
               label="a 6-bin histogram (intensities 10 to 60)")
    rng = np.random.default_rng(21)
    pixels = np.concatenate([rng.normal(0.25, 0.06, 6000), rng.normal(0.7, 0.1, 2000)])
    counts, edges = np.histogram(pixels, bins=64)
    yield Case((counts, (edges[:-1] + edges[1:]) / 2), label="a 64-bin histogram of a bimodal image")
    counts = np.zeros(256, dtype=np.int64)
    counts[40:90] = rng.integers(50, 120, 50)
    counts[150:200] = rng.integers(5, 30, 50)
    yield Case((counts, np.arange(256) / 255.0),
               label="256 bins, empty at both ends and between the two modes")
    skewed = np.concatenate([rng.normal(0.2, 0.03, 9000), rng.normal(0.5, 0.15, 1000)])
    counts, edges = np.histogram(skewed, bins=100)
    yield Case((counts, (edges[:-1] + edges[1:]) / 2), label="a 100-bin histogram, small bright class")


def _criteria(counts, centers):
    """Otsu's criterion and the usual mistakes, over splits k = 0..n-2 (NaN where a class is empty)."""
    c = np.asarray(counts, dtype=np.float64)
    x = np.asarray(centers, dtype=np.float64)
    p = c / c.sum()
    w0 = np.cumsum(p)[:-1]
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        mu0 = np.cumsum(p * x)[:-1] / w0
        mu1 = (np.sum(p * x) - np.cumsum(p * x)[:-1]) / w1
        var0 = np.cumsum(p * x**2)[:-1] / w0 - mu0**2
        var1 = (np.sum(p * x**2) - np.cumsum(p * x**2)[:-1]) / w1 - mu1**2
    return {
        "between": w0 * w1 * (mu0 - mu1) ** 2,
        "within": w0 * var0 + w1 * var1,
        "unweighted": (mu0 - mu1) ** 2,
    }


def _compare_otsu(got, expected, case):
    counts, centers = (np.asarray(a) for a in case.args)
    value = as_number(got, what="Your function")
    if np.isnan(value):
        raise Incorrect("Your function returned NaN. Where one class is empty its mean is 0/0 = NaN: give "
                        "those thresholds a criterion of 0 (np.where(w0 * w1 > 0, ..., 0)).")
    if np.isclose(value, expected, rtol=1e-9, atol=1e-12):
        return
    k = int(np.flatnonzero(np.asarray(centers) == expected)[0])
    nearest = int(np.argmin(np.abs(np.asarray(centers, dtype=np.float64) - value)))
    if nearest == k and np.isclose(value, expected, rtol=1e-6, atol=1e-12):
        return  # the right bin centre, rounded (e.g. returned as np.float32, as th.histogram gives)
    crit = _criteria(counts, centers)
    between = np.nan_to_num(th.between_class_variance(counts, centers))
    n = len(centers)
    if float(value).is_integer() and int(value) == k and not np.isclose(centers[k], k):
        raise Incorrect(f"Your function returned {int(value)}, the index of the best bin. Return the "
                        "intensity of that bin instead: centers[index].")
    if k + 1 < n and np.isclose(value, centers[k + 1]):
        raise Incorrect("Your threshold is one bin too high. Splitting after bin k puts bins 0..k in the "
                        "background, so the threshold is the last background bin, centers[k], and "
                        "image > threshold is the foreground.")
    if k >= 1 and np.isclose(value, centers[k - 1]):
        raise Incorrect("Your threshold is one bin too low: check how your criterion's index k lines up "
                        "with the bins (a split after bin k has bins 0..k in the background).")
    with np.errstate(invalid="ignore"):
        nan_first = centers[int(np.argmax(crit["between"]))]
    if np.any(np.isnan(crit["between"])) and np.isclose(value, nan_first):
        raise Incorrect("Your criterion is NaN where a class is empty (0/0), and np.argmax treats NaN as "
                        "the largest value. Give those thresholds a criterion of 0, e.g. "
                        "np.where(w0 * w1 > 0, w0 * w1 * (mu0 - mu1)**2, 0).")
    if np.isclose(value, centers[int(np.nanargmax(crit["within"]))]):
        raise Incorrect("You maximised the within-class variance. Otsu minimises it, which is the same "
                        "as maximising the between-class variance w0 * w1 * (mu0 - mu1)**2.")
    if np.isclose(value, centers[int(np.nanargmax(crit["unweighted"]))]):
        raise Incorrect("You maximised (mu0 - mu1)**2 without the class weights w0 * w1. Without them the "
                        "criterion prefers cutting off a tiny class at one end of the histogram.")
    if np.isclose(value, centers[-1]):
        raise Incorrect("Your threshold is the last bin centre: no pixel is brighter than it, so the "
                        "foreground would be empty. The last split to consider is after bin n - 2.")
    match = np.flatnonzero(np.isclose(centers, value))
    if match.size and nearest != k:
        j = nearest if nearest in match else int(match[0])
        if np.isclose(between[j], between[k], rtol=1e-9):
            raise Incorrect("Several thresholds tie for the largest between-class variance (empty bins "
                            "between the modes do not change it); return the first, as np.argmax does.")
        raise Incorrect(f"Your threshold is a bin centre, but its between-class variance is "
                        f"{1 - between[j] / between[k]:.1%} below the best one. Compute "
                        "w0 * w1 * (mu0 - mu1)**2 for every split and take the largest.")
    if np.isclose(value, np.average(centers, weights=counts)):
        raise Incorrect("Your threshold is the mean intensity of the histogram. That is a fair first guess "
                        "(the starting point of the iterative 'isodata' method), but Otsu's threshold is "
                        "the split that maximises w0 * w1 * (mu0 - mu1)**2.")
    raise Incorrect(f"Your threshold {value:.6g} is not one of the bin centres. Otsu's threshold is the "
                    "centre of the last background bin, centers[k], for the best split k.")


otsu = FunctionQuestion(
    NOTEBOOK, "otsu", "Otsu's threshold from a histogram", points=3,
    reference=reference_otsu, cases=_otsu_cases, compare=_compare_otsu,
    hints=["Normalise the counts to probabilities p. For a split after bin k: w0 = p[:k+1].sum(), "
           "mu0 = (p * centers)[:k+1].sum() / w0, and the same for bins k+1.. (class 1).",
           "np.cumsum gives w0 and the first moment for every k at once; w1 = 1 - w0 and the class-1 "
           "moment is the total minus the class-0 one. Drop the last split (class 1 empty there).",
           "Criterion: w0 * w1 * (mu0 - mu1)**2, set to 0 where a class is empty; return "
           "centers[np.argmax(criterion)]."],
    solution_code='''
    def my_otsu(counts, centers):
        p = np.asarray(counts, dtype=float) / np.sum(counts)
        x = np.asarray(centers, dtype=float)
        w0 = np.cumsum(p)[:-1]                # background = bins 0..k
        w1 = 1.0 - w0
        m0 = np.cumsum(p * x)[:-1]
        m1 = np.sum(p * x) - m0
        with np.errstate(divide="ignore", invalid="ignore"):
            between = w0 * w1 * (m0 / w0 - m1 / w1) ** 2
        between = np.where((w0 > 0) & (w1 > 0), between, 0.0)
        return float(x[np.argmax(between)])
    ''',
)


# -- 4. an adaptive threshold --------------------------------------------------------------------

def reference_adaptive_threshold(image, block_size, offset):
    """``image > local mean - offset``, with the local mean of a ``block_size`` box and a mirrored
    border (delegates to :func:`medseg_course.classical.thresholding.local_threshold`).

    Introduced in 02_thresholding.
    """
    return th.threshold_mask(image, th.local_threshold(image, block_size, method="mean", offset=offset))


def _adaptive_cases(device):
    rng = np.random.default_rng(22)
    y, x = np.mgrid[0:48, 0:64]
    ramp = 0.2 + 0.6 * x / 63.0
    spots = ((y - 20) ** 2 + (x - 15) ** 2 < 25) | ((y - 30) ** 2 + (x - 50) ** 2 < 25)
    yield Case((ramp + 0.25 * spots + rng.normal(0, 0.02, ramp.shape), 15, -0.05),
               label="spots on an illumination ramp, block 15, offset -0.05")
    image = (40 + 120 * (x / 63.0) + 60 * spots + rng.normal(0, 6, ramp.shape)).clip(0, 255).astype(np.uint8)
    yield Case((image, 11, -4.0), label="a uint8 image, block 11, offset -4.0")
    yield Case((rng.random((20, 24)), 7, 0.1), label="random noise, block 7, offset 0.1")


def _compare_adaptive(got, expected, case):
    image, block, offset = case.args
    img = np.asarray(image, dtype=np.float64)
    mean = ndimage.uniform_filter(img, block, mode="reflect")
    if isinstance(got, np.ndarray) and got.shape == expected.shape:
        if got.dtype.kind == "f" and not np.all(np.isin(got, (0.0, 1.0))):
            raise Incorrect("Your function returned the threshold image (floats). Compare the image with it "
                            "to get the mask: image > threshold.")
        if got.dtype != bool:
            raise Incorrect(f"Your mask has dtype {got.dtype}; return the boolean array that the comparison "
                            "image > threshold gives.")
        close = np.abs(img - (mean - offset)) < 1e-7 * max(1.0, float(np.abs(img).max()))
        wrong = (got != expected) & ~close
        if not wrong.any():
            return
        if np.array_equal(got, img > mean + offset):
            raise Incorrect("The offset is subtracted from the local mean: threshold = local mean - offset "
                            "(a negative offset then asks for pixels brighter than their surroundings).")
        if np.array_equal(got, img > img.mean() - offset):
            raise Incorrect("Your threshold is the mean of the whole image. An adaptive threshold uses the "
                            "mean of a block_size x block_size window around each pixel "
                            "(scipy.ndimage.uniform_filter).")
        if np.asarray(image).dtype.kind in "iu":
            truncated = ndimage.uniform_filter(np.asarray(image), block, mode="reflect").astype(np.float64)
            if np.array_equal(got, img > truncated - offset):
                raise Incorrect("On the uint8 image your local means are rounded to integers: "
                                "uniform_filter returns the input's dtype. Convert first: "
                                "image.astype(float).")
        r = block // 2
        interior = np.zeros(img.shape, dtype=bool)
        interior[r:img.shape[0] - r, r:img.shape[1] - r] = True
        if not (wrong & interior).any():
            raise Incorrect("Your mask is right inside the image but wrong near the border (within "
                            "block_size // 2 pixels of it): mirror the image there, as uniform_filter's default "
                            "mode='reflect' does (mode='constant' pads with zeros).")
    compare_values(got, expected, what="Your mask", check_dtype="bool")


adaptive_threshold = FunctionQuestion(
    NOTEBOOK, "adaptive_threshold", "An adaptive threshold: local mean minus an offset", points=2,
    reference=reference_adaptive_threshold, cases=_adaptive_cases, compare=_compare_adaptive,
    hints=["scipy.ndimage.uniform_filter(image, size=block_size) is the mean of the block_size x block_size "
           "window around every pixel (the border is mirrored by default).",
           "Convert to float first (uniform_filter keeps the input's dtype, so a uint8 image gets rounded "
           "means), then return image > local_mean - offset."],
    solution_code='''
    from scipy import ndimage

    def my_adaptive_threshold(image, block_size, offset):
        image = np.asarray(image, dtype=float)
        local_mean = ndimage.uniform_filter(image, size=block_size, mode="reflect")
        return image > local_mean - offset
    ''',
)

QUESTIONS: list[Question] = [threshold_mask, manual_threshold, otsu, adaptive_threshold]


def summary():
    """Show this notebook's progress table. Introduced in 02_thresholding."""
    return _summary(QUESTIONS)


__all__ = ["QUESTIONS", "summary", "threshold_mask", "manual_threshold", "otsu", "adaptive_threshold",
           "manual_image"]
