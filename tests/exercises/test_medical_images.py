"""Questions of 01_medical_images: references pass, typical wrong answers fail with their message."""

import numpy as np
import pytest

from medseg_course.exercises import Outcome
from medseg_course.exercises import medical_images as ex


def _solution(question, name):
    namespace = {"np": np}
    exec(question.solution_code, namespace)
    return namespace[name]


@pytest.mark.parametrize("question, name", [
    (ex.volume_ml, "my_volume_ml"), (ex.zscore, "my_zscore"), (ex.window, "my_window"), (ex.dice, "my_dice"),
])
def test_reference_and_solution_text_pass(question, name):
    assert question.check(question.reference).outcome is Outcome.CORRECT
    assert question.check(_solution(question, name)).outcome is Outcome.CORRECT


@pytest.mark.parametrize("question, wrong, message", [
    (ex.volume_ml, lambda m, s: np.count_nonzero(m) * np.prod(s), "1000 times too large"),
    (ex.volume_ml, lambda m, s: np.count_nonzero(m) / 1000, "ignores the voxel spacing"),
    (ex.volume_ml, lambda m, s: np.sum(m) * np.prod(s) / 1000, "adds up the labels"),
    (ex.zscore, lambda v: (v - v.min()) / (v.max() - v.min()), "min-max scaling"),
    (ex.zscore, lambda v: (v - v.mean()) / v.std(), "NaN or infinite"),   # the constant volume
    (ex.zscore, lambda v: v - v.mean(), "standard deviation of your result"),
    (ex.window, lambda im, level, width: (np.asarray(im, float) - (level - width / 2)) / width,
     "should be clipped to 0 and 1"),
    (ex.dice, lambda p, t: np.logical_and(p, t).sum() / max(np.logical_or(p, t).sum(), 1), "is the IoU"),
    (ex.dice, lambda p, t: 2 * np.logical_and(p, t).sum() / (np.sum(p) + np.sum(t)), "both masks are empty"),
    (ex.dice, lambda p, t: 1.0 if not (np.any(p) and np.any(t)) else
     2 * np.logical_and(p, t).sum() / (np.sum(p) + np.sum(t)), "exactly one mask is empty"),
    (ex.zscore, lambda v: (v - v.mean()) / max(np.std(v, ddof=1), 1e-8), "sample standard deviation"),
])
def test_typical_wrong_answers_get_their_message(question, wrong, message):
    with np.errstate(all="ignore"):
        result = question.check(wrong)
    assert result.outcome is Outcome.INCORRECT
    assert message in result.message


def test_summary_lists_every_question():
    assert [r["question"] for r in ex.summary()] == ["window", "volume_ml", "zscore", "dice"]
