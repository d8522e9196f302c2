"""The exercise engine: questions that check a student's answer and keep the notebook running.

A question is an object with ``check(answer)``, ``hint(n)`` and ``solution()``. The answer is
always passed in explicitly (a function, an array, a number, a model); nothing is read from the
notebook's globals. Every check ends in one of three outcomes::

    correct        the answer passed every test; the notebook continues with it
    incorrect      it failed a test (or raised); the notebook continues with the reference
    not attempted  the placeholder is still there; the notebook continues with the reference

so that "Restart and run all" never fails, whatever the student has done. :meth:`Question.check`
returns a :class:`CheckResult` whose ``value`` is what the notebook should continue with.

Each check also emits a machine-readable record (the MIME type :data:`RESULT_MIME`) in the cell's
output, which ``medseg-course grade`` collects.

Introduced in 00_welcome.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import functools
import html
import json
import textwrap
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

#: MIME type of the machine-readable record that every check displays.
RESULT_MIME = "application/vnd.medseg-course.check+json"


class Outcome(str, enum.Enum):
    """The three outcomes of a check."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NOT_ATTEMPTED = "not attempted"


class Placeholder:
    """The value a notebook ships in place of an answer: ``answer = TODO``."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "TODO"


#: Put this where the student must fill in a value; checks report it as not attempted.
TODO = Placeholder()


class _Shown(str):
    """Text that was already shown: a cell ending with ``q.hint(1)`` does not echo it again."""

    def _ipython_display_(self) -> None:
        pass


class Incorrect(Exception):
    """Raised inside a test to say the answer is wrong; the message is shown to the student."""


class NotAttempted(Exception):
    """Raised inside a test when the answer is still the placeholder."""


@dataclass(frozen=True)
class CheckResult:
    """What a check found, and what the notebook should continue with.

    Attributes
    ----------
    question : str
        The question's id, ``"<notebook>/<name>"``.
    outcome : Outcome
    points, max_points : float
    message : str
        Feedback for the student.
    value : object
        The student's answer if correct, else the reference solution.
    used : str
        ``"yours"`` or ``"reference"``: which one ``value`` is.
    """

    question: str
    outcome: Outcome
    points: float
    max_points: float
    message: str
    value: Any = field(repr=False, compare=False)
    used: str

    @property
    def correct(self) -> bool:
        return self.outcome is Outcome.CORRECT

    def record(self) -> dict:
        """The machine-readable record (JSON-serialisable) used for grading."""
        notebook, _, name = self.question.partition("/")
        return {
            "question": self.question,
            "notebook": notebook,
            "name": name,
            "outcome": self.outcome.value,
            "points": self.points,
            "max_points": self.max_points,
            "used": self.used,
            "message": self.message,
        }

    def __repr__(self) -> str:
        return (f"CheckResult({self.question}: {self.outcome.value}, "
                f"{self.points:g}/{self.max_points:g} points, using {self.used})")


# The latest result of every question checked in this kernel, by question id.
_RESULTS: dict[str, CheckResult] = {}


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ != "TerminalInteractiveShell"


_STYLE = {
    Outcome.CORRECT: ("#e6f4ea", "#1e7e34", "Correct"),
    Outcome.INCORRECT: ("#fdecea", "#b02a37", "Not yet"),
    Outcome.NOT_ATTEMPTED: ("#fff8e1", "#8a6d00", "Not attempted"),
}


def _show(text: str, html_body: str, record: dict | None = None) -> None:
    """Show feedback: rich in a notebook, plain text elsewhere."""
    if _in_kernel():
        from IPython.display import display

        bundle = {"text/plain": text, "text/html": html_body}
        if record is not None:
            bundle[RESULT_MIME] = record
        display(bundle, raw=True)
    else:
        print(text)


def _box(outcome: Outcome, title: str, body: str) -> str:
    bg, fg, label = _STYLE[outcome]
    body_html = html.escape(body).replace("\n", "<br>")
    return (f'<div style="background:{bg};border-left:6px solid {fg};padding:8px 12px;'
            f'margin:4px 0;font-family:sans-serif;color:#222">'
            f'<b style="color:{fg}">{label}</b> &middot; <b>{html.escape(title)}</b><br>'
            f'<span style="font-family:monospace;white-space:pre-wrap">{body_html}</span></div>')


class Question:
    """A graded question.

    Subclasses implement :meth:`grade`, which raises :class:`Incorrect` with a message for the
    student, :class:`NotAttempted`, or returns normally when the answer is right. Everything
    else (catching the student's exceptions, choosing what the notebook continues with,
    showing feedback, recording the outcome) happens here.

    Parameters
    ----------
    notebook : str
        The notebook stem, e.g. ``"00_welcome"``.
    name : str
        Short identifier, unique in the notebook, e.g. ``"dice"``.
    title : str
        One line describing the task.
    points : float
        Points for a correct answer.
    reference : object
        What the notebook continues with when the answer is not correct.
    hints : sequence of str
        Progressive hints; ``hint(1)`` is the gentlest.
    solution_code : str
        The reference solution as the student would write it in the exercise cell. Shown by
        :meth:`solution`, and injected by the test harness to check that the notebook's checks
        pass with it.
    """

    kind = "value"

    def __init__(self, notebook: str, name: str, title: str, points: float, reference: Any,
                 hints: Sequence[str] = (), solution_code: str = ""):
        if points <= 0:
            raise ValueError(f"points must be positive, got {points!r}")
        self.notebook = notebook
        self.name = name
        self.title = title
        self.points = float(points)
        self.reference = reference
        self.hints = tuple(hints)
        self.solution_code = textwrap.dedent(solution_code).strip("\n")

    @property
    def id(self) -> str:
        return f"{self.notebook}/{self.name}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}: {self.title} ({self.points:g} points)>"

    # -- what subclasses implement -------------------------------------------------------
    def grade(self, answer: Any) -> str | None:
        """Raise :class:`Incorrect` or :class:`NotAttempted`, or return if ``answer`` is right.

        May return a sentence that is shown with the praise (e.g. the score a model reached).
        """
        raise NotImplementedError

    def reference_value(self) -> Any:
        """What the notebook continues with when the answer is not correct."""
        return self.reference

    # -- the student's interface ---------------------------------------------------------
    def check(self, answer: Any = TODO) -> CheckResult:
        """Check ``answer``, show feedback, and return what the notebook should continue with.

        Never raises because of the answer: exceptions from the student's code become an
        ``incorrect`` outcome whose message names the inputs that triggered them.
        """
        if _is_placeholder(answer):
            outcome, message = Outcome.NOT_ATTEMPTED, self._not_attempted_message()
        else:
            try:
                praise = self.grade(answer)
            except NotAttempted as exc:
                outcome, message = Outcome.NOT_ATTEMPTED, str(exc) or self._not_attempted_message()
            except Incorrect as exc:
                outcome, message = Outcome.INCORRECT, str(exc)
            except Exception as exc:  # a bug in the answer that grade() did not anticipate
                outcome, message = Outcome.INCORRECT, (
                    f"Checking your answer raised {type(exc).__name__}: {exc}\n"
                    "Look at the types and shapes your answer works with, then try again."
                )
            else:
                outcome, message = Outcome.CORRECT, ("Well done: your answer passed every test. "
                                                     "The notebook continues with it.")
                if praise:
                    message = f"{praise}\n{message}"
        correct = outcome is Outcome.CORRECT
        if not correct:
            message += "\nThe notebook continues with the reference solution for now."
        result = CheckResult(
            question=self.id, outcome=outcome, points=self.points if correct else 0.0,
            max_points=self.points, message=message,
            value=answer if correct else self.reference_value(),
            used="yours" if correct else "reference",
        )
        _RESULTS[self.id] = result
        text = f"[{_STYLE[outcome][2]}] {self.title}\n{message}"
        _show(text, _box(outcome, self.title, message), result.record())
        return result

    def hint(self, n: int = 1) -> str:
        """Show hint number ``n`` (1 is the gentlest) and return its text."""
        if not self.hints:
            text = "This question has no hints."
        elif not isinstance(n, int) or not 1 <= n <= len(self.hints):
            text = f"Hints are numbered 1 to {len(self.hints)}; you asked for {n!r}."
        else:
            text = f"Hint {n}/{len(self.hints)}: {self.hints[n - 1]}"
        _show(text, f'<div style="font-family:sans-serif">{html.escape(text)}</div>')
        return _Shown(text)

    def solution(self) -> str:
        """Show the reference solution and return its code."""
        code = self.solution_code or "(no solution text for this question)"
        _show(f"Solution to {self.title}:\n{code}",
              f"<b>Solution to {html.escape(self.title)}</b><pre>{html.escape(code)}</pre>")
        return _Shown(code)

    def _not_attempted_message(self) -> str:
        return ("You have not attempted this yet: replace the placeholder in the exercise cell, "
                "run it, then run this check again.")


def _is_placeholder(answer: Any) -> bool:
    return answer is TODO or answer is None or answer is Ellipsis


# -- helpers for subclasses -------------------------------------------------------------------

def describe(value: Any) -> str:
    """A short description of a value for feedback: type, shape and dtype, not its contents."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        return f"a torch tensor of shape {tuple(value.shape)}, dtype {value.dtype}, on {value.device}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape}, dtype {value.dtype}"
    if isinstance(value, (bool, np.bool_)):
        return f"the boolean {value!r}"
    if isinstance(value, (int, float, np.number)):
        return f"the number {value!r}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"


def _as_numpy(value: Any) -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value


def compare_values(got: Any, expected: Any, *, what: str = "your answer", rtol: float = 1e-5,
                   atol: float = 1e-6, check_dtype: str | None = None) -> None:
    """Raise :class:`Incorrect` with a specific message unless ``got`` matches ``expected``.

    Checks, in order: type (array-like vs number), shape, dtype kind (``check_dtype`` is
    ``"float"``, ``"int"``, ``"bool"`` or None), NaN/inf, then values (within tolerance).
    The message says what came back and what to try, without revealing the expected values.
    """
    got_np, exp_np = _as_numpy(got), _as_numpy(expected)
    if np.isscalar(exp_np) or (isinstance(exp_np, np.ndarray) and exp_np.ndim == 0):
        if isinstance(got_np, np.ndarray) and got_np.size == 1:
            got_np = got_np.reshape(())
        if not (np.isscalar(got_np) or (isinstance(got_np, np.ndarray) and got_np.ndim == 0)):
            raise Incorrect(f"{what} should be a single number, but it is {describe(got)}.")
        try:
            g = float(got_np)
        except (TypeError, ValueError):
            raise Incorrect(f"{what} should be a number, but it is {describe(got)}.") from None
        if not np.isfinite(g):
            raise Incorrect(f"{what} is {g}, not a finite number. Look for a division by zero "
                            "or the log of zero.")
        if not np.isclose(g, float(exp_np), rtol=rtol, atol=atol):
            raise Incorrect(f"{what} is {g:.6g}, which is not the expected value.")
        return
    if not isinstance(got_np, np.ndarray):
        raise Incorrect(f"{what} should be an array of shape {np.shape(exp_np)}, "
                        f"but it is {describe(got)}.")
    if got_np.shape != exp_np.shape:
        raise Incorrect(f"{what} has shape {got_np.shape}, but shape {exp_np.shape} was expected. "
                        "Check which axes you reduce over, and that you keep the input's shape.")
    kinds = {"float": "f", "int": "iu", "bool": "b"}
    if check_dtype is not None and got_np.dtype.kind not in kinds[check_dtype]:
        raise Incorrect(f"{what} has dtype {got_np.dtype}, but a {check_dtype} array was expected.")
    if got_np.dtype.kind in "fc" and not np.all(np.isfinite(got_np)):
        n = int(np.size(got_np) - np.count_nonzero(np.isfinite(got_np)))
        raise Incorrect(f"{what} contains {n} NaN or infinite value(s). Look for a division by zero "
                        "(for example a constant image) or the log of zero.")
    if exp_np.dtype.kind == "b" or got_np.dtype.kind == "b":
        wrong = int(np.count_nonzero(got_np.astype(bool) != exp_np.astype(bool)))
        if wrong:
            raise Incorrect(f"{what} differs from the expected mask at {wrong} of {exp_np.size} "
                            "positions.")
        return
    if not np.allclose(got_np, exp_np, rtol=rtol, atol=atol):
        err = float(np.max(np.abs(got_np.astype(np.float64) - exp_np.astype(np.float64))))
        raise Incorrect(f"{what} has the right shape but wrong values (largest error {err:.3g}).")


def as_number(value: Any, *, what: str = "Your function", unit: str = "") -> float:
    """``value`` as a float, or :class:`Incorrect` saying that one number was expected.

    Accepts Python and NumPy numbers, 0-d or one-element arrays and tensors; refuses booleans.
    """
    value = _as_numpy(value)
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        suffix = f" ({unit})" if unit else ""
        raise Incorrect(f"{what} should return one number{suffix}, but it returned {describe(value)}.")
    return float(value)


class ValueQuestion(Question):
    """A question whose answer is a value (a number, an array) compared with an expected one.

    Parameters
    ----------
    expected : object
        The correct value (also the reference the notebook continues with).
    rtol, atol : float
        Tolerances for numbers and arrays.
    """

    kind = "value"

    def __init__(self, notebook: str, name: str, title: str, points: float, expected: Any, *,
                 rtol: float = 1e-5, atol: float = 1e-6, **kwargs):
        super().__init__(notebook, name, title, points, reference=expected, **kwargs)
        self.rtol, self.atol = rtol, atol

    def grade(self, answer: Any) -> None:
        compare_values(answer, self.reference, what="Your answer", rtol=self.rtol, atol=self.atol)


@dataclass(frozen=True)
class Case:
    """One test input for a :class:`FunctionQuestion`: positional and keyword arguments."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def describe(self) -> str:
        parts = [describe(a) for a in self.args] + [f"{k}={describe(v)}" for k, v in self.kwargs.items()]
        text = ", ".join(parts)
        return f"{self.label} ({text})" if self.label else f"({text})"


def _snapshot(value: Any) -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    return None


def _unchanged(before: Any, after: Any) -> bool:
    if before is None:
        return True
    b, a = _as_numpy(before), _as_numpy(after)
    if b.shape != a.shape:
        return False
    nan_aware = b.dtype.kind in "fc" and getattr(a, "dtype", b.dtype).kind in "fc"
    return bool(np.array_equal(b, a, equal_nan=nan_aware))


class CallWatcher:
    """Which of some library functions a student's function called, only while that function runs.

    A check that compares an answer with a library function (``F.conv2d``) or a module's own
    ``forward`` proves nothing if the answer just calls it: the question watches those functions
    and refuses the answer afterwards. Introduced in 06_cnn.

    Parameters
    ----------
    watched : sequence of (owner, attribute name, label)
        The attributes to wrap while :meth:`watching` is active (a module such as
        ``torch.nn.functional``, or a class, whose method is then watched for every instance);
        ``label`` is how a message names them.

    Examples
    --------
    >>> import math
    >>> calls = CallWatcher([(math, "sqrt", "math.sqrt")])
    >>> with calls.watching():
    ...     _ = math.sqrt(4.0)                          # the check's own calls do not count
    ...     _ = calls.watch(lambda v: math.sqrt(v))(9.0)
    >>> calls.used
    ['math.sqrt']
    """

    def __init__(self, watched):
        self.watched = tuple(watched)
        self.active = False
        self.used: list[str] = []

    @contextlib.contextmanager
    def watching(self):
        """Wrap the watched attributes for the duration of a ``with`` block, then restore them."""
        originals = [(owner, name, getattr(owner, name)) for owner, name, _ in self.watched]

        def tripwire(fn, label):
            @functools.wraps(fn)
            def call(*args, **kwargs):
                if self.active and label not in self.used:
                    self.used.append(label)
                return fn(*args, **kwargs)
            return call

        try:
            for (owner, name, label), (_, _, fn) in zip(self.watched, originals):
                setattr(owner, name, tripwire(fn, label))
            yield self
        finally:
            for owner, name, fn in originals:
                setattr(owner, name, fn)

    def watch(self, answer):
        """``answer``, wrapped so that calls count only while it runs."""
        @functools.wraps(answer)
        def watched(*args, **kwargs):
            self.active = True
            try:
                return answer(*args, **kwargs)
            finally:
                self.active = False
        return watched


class FunctionQuestion(Question):
    """A question whose answer is a function, called on test cases and compared with a reference.

    Parameters
    ----------
    reference : callable
        The reference implementation.
    cases : callable
        ``cases(device) -> iterable of Case``; called afresh for each check so that tests never
        share state. ``device`` is where tensors should be made (the runtime's device).
    compare : callable, optional
        ``compare(got, expected, case)``; raises :class:`Incorrect`. Defaults to
        :func:`compare_values` with this question's tolerances and ``check_dtype``.
    """

    kind = "function"

    def __init__(self, notebook: str, name: str, title: str, points: float,
                 reference: Callable, cases: Callable[[Any], Iterable[Case]], *,
                 compare: Callable[[Any, Any, Case], None] | None = None, rtol: float = 1e-5,
                 atol: float = 1e-6, check_dtype: str | None = None, device: Any = "cpu",
                 **kwargs):
        super().__init__(notebook, name, title, points, reference=reference, **kwargs)
        self.cases = cases
        self.compare = compare
        self.rtol, self.atol, self.check_dtype = rtol, atol, check_dtype
        self.device = device

    def grade(self, answer: Any) -> None:
        if not callable(answer):
            raise Incorrect(f"Pass your function itself (without calling it), but this is {describe(answer)}.")
        for case in self.cases(self.device):
            expected = self.reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
            before = [_snapshot(a) for a in args] + [_snapshot(v) for v in kwargs.values()]
            try:
                got = answer(*args, **kwargs)
            except NotImplementedError:
                raise NotAttempted() from None
            except Exception as exc:
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                raise Incorrect(
                    f"Your function raised {type(exc).__name__}: {exc}\n"
                    f"  on the inputs {case.describe()}\n"
                    f"  at line {frame.lineno}: {frame.line}"
                ) from None
            after = list(args) + list(kwargs.values())
            for b, a in zip(before, after):
                if not _unchanged(b, a):
                    raise Incorrect(
                        "Your function changed its input in place (on the inputs "
                        f"{case.describe()}). Work on a copy, e.g. image = image.astype(float), "
                        "so the caller's array stays as it was."
                    )
            try:
                if self.compare is not None:
                    self.compare(got, expected, case)
                else:
                    compare_values(got, expected, what="Your function's result", rtol=self.rtol,
                                   atol=self.atol, check_dtype=self.check_dtype)
            except Incorrect as exc:
                raise Incorrect(f"{exc}\n  on the inputs {case.describe()}") from None


class ModelQuestion(Question):
    """A question whose answer is a trained model, scored by the check on held-out data it keeps to itself.

    The check evaluates a copy of the model (the student's model, its mode and its weights are
    left as they were) on the device the model lives on, under ``torch.no_grad()``.

    Parameters
    ----------
    reference : callable
        ``reference() -> torch.nn.Module``: builds (or trains) the reference model, called only
        when the notebook has to continue with it.
    evaluate : callable
        ``evaluate(model, device) -> float``: the score of a model in eval mode on the check's own
        held-out data (higher is better). It must not depend on anything the student controls.
    threshold : float
        The score a correct answer reaches.
    metric : str
        Name of the score in messages, e.g. ``"Dice"``.
    hints_below : str
        What to try when the score is below the threshold.

    Introduced in 06_cnn.
    """

    kind = "model"

    def __init__(self, notebook: str, name: str, title: str, points: float,
                 reference: Callable[[], Any], *, evaluate: Callable[[Any, Any], float],
                 threshold: float, metric: str = "Dice", hints_below: str = "", **kwargs):
        super().__init__(notebook, name, title, points, reference=reference, **kwargs)
        self.evaluate = evaluate
        self.threshold = float(threshold)
        self.metric = metric
        self.hints_below = hints_below
        self._reference_model = None

    def reference_value(self) -> Any:
        if self._reference_model is None:
            self._reference_model = self.reference()
        return self._reference_model

    def grade(self, answer: Any) -> str:
        import torch

        if not isinstance(answer, torch.nn.Module):
            raise Incorrect(f"Pass your trained model (a torch.nn.Module), but this is {describe(answer)}.")
        params = list(answer.parameters())
        device = params[0].device if params else torch.device("cpu")
        model = copy.deepcopy(answer).eval()
        with torch.no_grad():
            try:
                score = float(self.evaluate(model, device))
            except Incorrect:
                raise
            except Exception as exc:
                raise Incorrect(f"Running your model on the check's images raised {type(exc).__name__}: "
                                f"{exc}\nDoes it take input shaped like the training batches, channels "
                                "first, and return logits of the input's spatial size?") from None
        if not np.isfinite(score):
            raise Incorrect(f"Your model's {self.metric} on held-out data is {score}: its outputs contain NaN. "
                            "Lower the learning rate, or check the loss for a log of zero.")
        if score < self.threshold:
            advice = f"\n{self.hints_below}" if self.hints_below else ""
            raise Incorrect(f"Your model reaches {self.metric} {score:.3f} on held-out images that the check "
                            f"keeps to itself; {self.threshold:.2f} is needed.{advice}")
        return f"Your model reaches {self.metric} {score:.3f} on held-out images (needed {self.threshold:.2f}), on {device}."


def results(notebook: str | None = None) -> list[CheckResult]:
    """The latest check result of each question checked in this kernel (optionally one notebook's)."""
    return [r for qid, r in _RESULTS.items() if notebook is None or qid.startswith(notebook + "/")]


def summary(questions: Sequence[Question]) -> list[dict]:
    """Show a progress table for ``questions`` and return its rows.

    Questions never checked in this kernel are shown as not attempted.
    """
    rows = []
    for q in questions:
        r = _RESULTS.get(q.id)
        rows.append({"question": q.name, "title": q.title,
                     "outcome": (r.outcome if r else Outcome.NOT_ATTEMPTED).value,
                     "points": r.points if r else 0.0, "max_points": q.points})
    got = sum(r["points"] for r in rows)
    total = sum(r["max_points"] for r in rows)
    width = max([len(r["question"]) for r in rows] + [8])
    lines = [f"{'question':<{width}}  {'outcome':<14} points"]
    lines += [f"{r['question']:<{width}}  {r['outcome']:<14} {r['points']:g}/{r['max_points']:g}" for r in rows]
    lines.append(f"{'total':<{width}}  {'':<14} {got:g}/{total:g}")
    cells = "".join(
        f"<tr><td>{html.escape(r['question'])}</td><td style='text-align:left'>{html.escape(r['title'])}</td>"
        f"<td style='background:{_STYLE[Outcome(r['outcome'])][0]}'>{r['outcome']}</td>"
        f"<td>{r['points']:g}/{r['max_points']:g}</td></tr>" for r in rows)
    table = (f"<table><tr><th>question</th><th>task</th><th>outcome</th><th>points</th></tr>{cells}"
             f"<tr><td colspan=3><b>total</b></td><td><b>{got:g}/{total:g}</b></td></tr></table>")
    _show("\n".join(lines), table)
    return rows


def dumps(result: CheckResult) -> str:
    """The machine-readable record of ``result`` as one JSON line."""
    return json.dumps(result.record(), sort_keys=True)
