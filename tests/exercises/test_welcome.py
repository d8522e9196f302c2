"""Questions of 00_welcome: the reference passes, typical wrong answers fail with their message."""

import numpy as np
import pytest

from medseg_course.exercises import Outcome
from medseg_course.exercises import welcome as ex


def _solution_namespace(question):
    namespace = {"np": np}
    exec(question.solution_code, namespace)
    return namespace


def test_reference_and_solution_text_pass():
    assert ex.foreground_fraction.check(ex.reference_foreground_fraction).outcome is Outcome.CORRECT
    solution = _solution_namespace(ex.foreground_fraction)["my_foreground_fraction"]
    assert ex.foreground_fraction.check(solution).outcome is Outcome.CORRECT
    assert ex.count_objects.check(_solution_namespace(ex.count_objects)["n_objects"]).correct


def test_summing_labels_is_caught_with_its_own_message():
    result = ex.foreground_fraction.check(lambda m: np.sum(m) / np.size(m))
    assert result.outcome is Outcome.INCORRECT
    assert "adds up the labels" in result.message


def test_counting_background_is_caught():
    result = ex.foreground_fraction.check(lambda m: np.count_nonzero(np.asarray(m) == 0) / np.size(m))
    assert result.outcome is Outcome.INCORRECT
    assert "not the fraction of non-background pixels" in result.message


def test_wrong_object_count():
    result = ex.count_objects.check(4)
    assert result.outcome is Outcome.INCORRECT and "not the expected value" in result.message
    result = ex.count_objects.check(2)
    assert result.outcome is Outcome.INCORRECT and "number of classes" in result.message


def test_float32_and_tensor_answers_are_accepted():
    import torch

    assert ex.foreground_fraction.check(lambda m: (np.asarray(m) != 0).mean(dtype=np.float32)).correct
    assert ex.foreground_fraction.check(lambda m: torch.as_tensor(m).ne(0).float().mean()).correct


@pytest.mark.parametrize("wrong, message", [
    (lambda m: np.count_nonzero(m), "the number of foreground pixels"),
    (lambda m: 100 * np.count_nonzero(m) / np.size(m), "a percentage"),
])
def test_count_and_percentage_get_their_own_message(wrong, message):
    result = ex.foreground_fraction.check(wrong)
    assert result.outcome is Outcome.INCORRECT and message in result.message


def test_summary_lists_every_question():
    rows = ex.summary()
    assert [r["question"] for r in rows] == ["foreground_fraction", "count_objects"]
