"""The exercise engine: outcomes, messages, safety of checks."""

import numpy as np
import pytest
import torch

from medseg_course.exercises import (
    TODO, Case, FunctionQuestion, Incorrect, Outcome, ValueQuestion, compare_values, results,
)
from medseg_course.exercises.engine import RESULT_MIME


def _double(x):
    return x * 2.0


def _cases(device):
    yield Case((np.arange(6, dtype=np.float64).reshape(2, 3),), label="a small array")
    yield Case((torch.ones(2, 2, device=device),), label="a tensor")


def make_question(**kwargs):
    return FunctionQuestion("99_test", "double", "Double an array", points=3, reference=_double,
                            cases=_cases, hints=["Multiply by two.", "x * 2"],
                            solution_code="def f(x):\n    return x * 2", **kwargs)


def test_correct_answer_continues_with_the_students_function(capsys):
    q = make_question()
    answer = lambda x: x + x  # noqa: E731
    result = q.check(answer)
    assert result.outcome is Outcome.CORRECT
    assert result.points == 3 and result.max_points == 3
    assert result.value is answer and result.used == "yours"
    assert "passed every test" in capsys.readouterr().out


@pytest.mark.parametrize("placeholder", [TODO, None, ...])
def test_placeholders_are_not_attempted(placeholder):
    result = make_question().check(placeholder)
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert result.value is _double and result.used == "reference"
    assert result.points == 0


def test_not_implemented_function_is_not_attempted():
    def stub(x):
        raise NotImplementedError

    assert make_question().check(stub).outcome is Outcome.NOT_ATTEMPTED


def test_exception_in_student_code_is_reported_with_its_inputs():
    def broken(x):
        return x.reshape(7)

    result = make_question().check(broken)
    assert result.outcome is Outcome.INCORRECT
    assert "raised" in result.message and "ValueError" in result.message
    assert "a small array" in result.message and "shape (2, 3)" in result.message
    assert "continues with the reference" in result.message


def test_in_place_modification_is_caught():
    def in_place(x):
        x *= 2
        return x

    result = make_question().check(in_place)
    assert result.outcome is Outcome.INCORRECT
    assert "changed its input in place" in result.message


def test_wrong_shape_dtype_nan_and_type_each_get_their_message():
    with pytest.raises(Incorrect, match="has shape"):
        compare_values(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(Incorrect, match="dtype"):
        compare_values(np.zeros(3, dtype=int), np.zeros(3), check_dtype="float")
    with pytest.raises(Incorrect, match="NaN"):
        compare_values(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(Incorrect, match="should be an array"):
        compare_values([1.0, 2.0], np.array([1.0, 2.0]))
    with pytest.raises(Incorrect, match="single number"):
        compare_values(np.zeros(3), 1.0)
    with pytest.raises(Incorrect, match="not a finite number"):
        compare_values(float("inf"), 1.0)
    with pytest.raises(Incorrect, match="wrong values"):
        compare_values(np.ones(3), np.zeros(3))
    with pytest.raises(Incorrect, match="differs from the expected mask at 1 of 3"):
        compare_values(np.array([True, False, True]), np.array([True, True, True]))
    compare_values(torch.tensor([1.0, 2.0]), np.array([1.0, 2.0]))  # tensors compare as arrays


def test_non_callable_answer_to_a_function_question():
    result = make_question().check(np.zeros(3))
    assert result.outcome is Outcome.INCORRECT
    assert "Pass your function itself" in result.message


def test_value_question_does_not_reveal_the_expected_value():
    q = ValueQuestion("99_test", "answer", "The answer", points=1, expected=42)
    result = q.check(41)
    assert result.outcome is Outcome.INCORRECT and "42" not in result.message
    assert q.check(42).outcome is Outcome.CORRECT


def test_hints_and_solution(capsys):
    q = make_question()
    assert q.hint(1).endswith("Multiply by two.")
    assert "numbered 1 to 2" in q.hint(5)
    assert q.solution() == "def f(x):\n    return x * 2"


def test_results_keep_the_latest_outcome_and_record_is_json_ready():
    q = make_question()
    q.check(TODO)
    q.check(lambda x: x * 2)
    latest = [r for r in results("99_test") if r.question == "99_test/double"]
    assert len(latest) == 1 and latest[0].outcome is Outcome.CORRECT
    record = latest[0].record()
    assert record["outcome"] == "correct" and record["notebook"] == "99_test" and record["points"] == 3


def test_check_emits_the_machine_readable_record_in_a_kernel(monkeypatch):
    shown = []
    monkeypatch.setattr("medseg_course.exercises.engine._in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    make_question().check(TODO)
    assert shown and shown[-1][RESULT_MIME]["outcome"] == "not attempted"


def test_points_must_be_positive():
    with pytest.raises(ValueError, match="points must be positive"):
        ValueQuestion("99_test", "x", "x", points=0, expected=1)


def test_as_number_accepts_numbers_and_refuses_the_rest():
    from medseg_course.exercises import as_number

    assert as_number(np.float32(0.5)) == 0.5 and as_number(torch.tensor([2.0])) == 2.0
    with pytest.raises(Incorrect, match=r"should return one number \(mL\), but it returned a NumPy array"):
        as_number(np.zeros(3), unit="mL")
    with pytest.raises(Incorrect, match="the boolean True"):
        as_number(True)


class _Threshold(torch.nn.Module):
    """A one-parameter 'model' whose score the test controls through its bias."""

    def __init__(self, bias):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.tensor(float(bias)))

    def forward(self, x):
        return x + self.bias


def _model_question(built):
    from medseg_course.exercises import ModelQuestion

    def evaluate(model, device):
        assert not model.training and not torch.is_grad_enabled()
        x = torch.zeros(1, 1, 4, 4, device=device)
        return float(torch.sigmoid(model(x)).mean())

    def reference():
        built.append(1)
        return _Threshold(5.0)

    return ModelQuestion("99_test", "model", "Train a model", points=4, reference=reference,
                         evaluate=evaluate, threshold=0.8, hints_below="Train for longer.")


def test_model_question_scores_a_copy_on_held_out_data():
    built = []
    q = _model_question(built)
    good = _Threshold(3.0).train()
    result = q.check(good)
    assert result.correct and result.value is good and "reaches Dice 0.953" in result.message
    assert good.training, "the student's model must stay in the mode it was in"
    assert built == [], "the reference is only built when the notebook needs it"


def test_model_question_below_threshold_nan_and_wrong_type():
    built = []
    q = _model_question(built)
    low = q.check(_Threshold(0.0))
    assert low.outcome is Outcome.INCORRECT and "0.500" in low.message and "Train for longer." in low.message
    assert isinstance(low.value, _Threshold) and built == [1]
    assert "NaN" in q.check(_Threshold(float("nan"))).message
    assert "Pass your trained model" in q.check(np.zeros(3)).message
