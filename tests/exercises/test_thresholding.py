"""Questions of 02_thresholding: references pass, typical wrong answers fail with their message."""

import numpy as np
import pytest
from scipy import ndimage

from medseg_course.exercises import Outcome
from medseg_course.exercises import thresholding as ex


def _solution(question, name):
    namespace = {"np": np}
    exec(question.solution_code, namespace)
    return namespace[name]


@pytest.mark.parametrize("question, name", [
    (ex.threshold_mask, "my_threshold_mask"), (ex.otsu, "my_otsu"),
    (ex.adaptive_threshold, "my_adaptive_threshold"),
])
def test_reference_and_solution_text_pass(question, name):
    assert question.check(question.reference).outcome is Outcome.CORRECT
    assert question.check(_solution(question, name)).outcome is Outcome.CORRECT


# -- Otsu: the usual mistakes, written as a student would -----------------------------------------

def _moments(counts, centers):
    p = np.asarray(counts, float) / np.sum(counts)
    x = np.asarray(centers, float)
    w0 = np.cumsum(p)[:-1]
    w1 = 1 - w0
    m0 = np.cumsum(p * x)[:-1]
    m1 = np.sum(p * x) - m0
    return p, x, w0, w1, m0, m1


def otsu_index(counts, centers):
    p, x, w0, w1, m0, m1 = _moments(counts, centers)
    with np.errstate(all="ignore"):
        between = np.nan_to_num(w0 * w1 * (m0 / w0 - m1 / w1) ** 2)
    return int(np.argmax(between))


def otsu_one_too_high(counts, centers):
    return float(np.asarray(centers)[otsu_index(counts, centers) + 1])


def otsu_nan(counts, centers):
    p, x, w0, w1, m0, m1 = _moments(counts, centers)
    with np.errstate(all="ignore"):
        between = w0 * w1 * (m0 / w0 - m1 / w1) ** 2
    return float(x[np.argmax(between)])


def otsu_within_max(counts, centers):
    p, x, w0, w1, m0, m1 = _moments(counts, centers)
    q0 = np.cumsum(p * x**2)[:-1]
    q1 = np.sum(p * x**2) - q0
    with np.errstate(all="ignore"):
        within = np.nan_to_num(q0 - m0**2 / w0) + np.nan_to_num(q1 - m1**2 / w1)
    return float(x[np.argmax(within)])


def otsu_unweighted(counts, centers):
    p, x, w0, w1, m0, m1 = _moments(counts, centers)
    with np.errstate(all="ignore"):
        crit = np.nan_to_num((m0 / w0 - m1 / w1) ** 2)
    return float(x[np.argmax(crit)])


def otsu_last_tie(counts, centers):
    p, x, w0, w1, m0, m1 = _moments(counts, centers)
    with np.errstate(all="ignore"):
        between = np.nan_to_num(w0 * w1 * (m0 / w0 - m1 / w1) ** 2)
    return float(x[len(between) - 1 - np.argmax(between[::-1])])


def otsu_mean(counts, centers):
    return float(np.average(centers, weights=counts))


def otsu_float32(counts, centers):
    """A correct answer computed in float32, as the notebook's own th.histogram centres are."""
    p, x, w0, w1, m0, m1 = _moments(counts, centers)
    with np.errstate(all="ignore"):
        between = np.nan_to_num(w0 * w1 * (m0 / w0 - m1 / w1) ** 2)
    return np.asarray(centers, dtype=np.float32)[np.argmax(between)]


def test_otsu_accepts_the_right_bin_centre_in_float32():
    result = ex.otsu.check(otsu_float32)
    assert result.outcome is Outcome.CORRECT, result.message
    assert "tie" not in result.message


def test_otsu_float32_of_a_later_tied_bin_still_gets_the_tie_message():
    result = ex.otsu.check(lambda c, x: np.float32(otsu_last_tie(c, x)))
    assert result.outcome is Outcome.INCORRECT
    assert "return the first" in result.message, result.message


# -- adaptive: the usual mistakes ------------------------------------------------------------------

def adaptive_plus(image, block, offset):
    image = np.asarray(image, float)
    return image > ndimage.uniform_filter(image, block) + offset


def adaptive_global(image, block, offset):
    image = np.asarray(image, float)
    return image > image.mean() - offset


def adaptive_uint8(image, block, offset):
    return image > ndimage.uniform_filter(image, block) - offset


def adaptive_constant_border(image, block, offset):
    image = np.asarray(image, float)
    return image > ndimage.uniform_filter(image, block, mode="constant") - offset


def adaptive_threshold_image(image, block, offset):
    return ndimage.uniform_filter(np.asarray(image, float), block) - offset


@pytest.mark.parametrize("question, wrong, message", [
    (ex.threshold_mask, lambda im, t: (im > t).astype(np.uint8), "a mask is boolean"),
    (ex.threshold_mask, lambda im, t: (im > t) * 1.0, "a mask is boolean"),
    (ex.threshold_mask, lambda im, t: im <= t, "complement of the foreground"),
    (ex.threshold_mask, lambda im, t: im >= t, "strict comparison"),
    (ex.otsu, otsu_index, "the index of the best bin"),
    (ex.otsu, otsu_one_too_high, "one bin too high"),
    (ex.otsu, otsu_nan, "np.argmax treats NaN"),
    (ex.otsu, otsu_within_max, "maximised the within-class variance"),
    (ex.otsu, otsu_unweighted, "without the class weights"),
    (ex.otsu, otsu_last_tie, "return the first"),
    (ex.otsu, otsu_mean, "mean intensity of the histogram"),
    (ex.otsu, lambda c, x: float(np.asarray(x)[4]), "below the best one"),
    (ex.otsu, lambda c, x: float(np.asarray(x)[-1]), "the last bin centre"),
    (ex.otsu, lambda c, x: float(np.asarray(x)[0] + 0.001), "not one of the bin centres"),
    (ex.otsu, lambda c, x: np.array([0.5, 0.6]), "should return one number"),
    (ex.otsu, lambda c, x: float("nan"), "returned NaN"),
    (ex.adaptive_threshold, adaptive_plus, "offset is subtracted"),
    (ex.adaptive_threshold, adaptive_global, "mean of the whole image"),
    (ex.adaptive_threshold, adaptive_uint8, "rounded to integers"),
    (ex.adaptive_threshold, adaptive_constant_border, "near the border"),
    (ex.adaptive_threshold, adaptive_threshold_image, "returned the threshold image"),
    (ex.adaptive_threshold, lambda im, b, o: (np.asarray(im, float) > 0.5).astype(int), "return the boolean"),
])
def test_typical_wrong_answers_get_their_message(question, wrong, message):
    result = question.check(wrong)
    assert result.outcome is Outcome.INCORRECT
    assert message in result.message, result.message


def test_functions_that_raise_or_modify_their_input_are_reported():
    def in_place(image, t):
        image[...] = 0
        return image > t

    assert "changed its input in place" in ex.threshold_mask.check(in_place).message
    assert ex.otsu.check(lambda c, x: 1 / 0).outcome is Outcome.INCORRECT


def test_not_attempted_stub():
    def stub(counts, centers):
        raise NotImplementedError

    assert ex.otsu.check(stub).outcome is Outcome.NOT_ATTEMPTED


# -- the threshold chosen by eye ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def manual():
    try:
        return ex.manual_image()
    except Exception as err:  # pragma: no cover - only without the dataset copy
        pytest.skip(f"DSB2018 not available: {err}")


def test_manual_threshold_reference_reaches_the_goal(manual):
    from medseg_course import metrics

    grey, truth = manual
    assert metrics.dice(grey > ex.manual_threshold.reference, truth) >= ex.MANUAL_GOAL
    namespace = {}
    exec(ex.manual_threshold.solution_code, namespace)
    assert ex.manual_threshold.check(namespace["my_threshold"]).outcome is Outcome.CORRECT


@pytest.mark.parametrize("answer, message", [
    (0.05, "too low"), (0.4, "too high"), (1.5, "outside the image's intensities"),
    ("0.15", "should return one number"), (np.array([0.1, 0.2]), "should return one number"),
])
def test_manual_threshold_wrong_answers(manual, answer, message):
    result = ex.manual_threshold.check(answer)
    assert result.outcome is Outcome.INCORRECT
    assert message in result.message, result.message


def test_summary_lists_every_question_in_notebook_order():
    assert [r["question"] for r in ex.summary()] == ["threshold_mask", "manual_threshold", "otsu",
                                                     "adaptive_threshold"]
