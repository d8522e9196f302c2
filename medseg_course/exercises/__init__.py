"""Graded exercises: the engine, and one module of questions per notebook.

In a notebook::

    from medseg_course.exercises import TODO, welcome as ex
    ex.foreground_fraction.hint(1)
    fraction = ex.foreground_fraction.check(my_foreground_fraction).value
    ex.summary()

See :mod:`medseg_course.exercises.engine` for how checks work. Introduced in 00_welcome.
"""

from medseg_course.exercises.engine import (
    RESULT_MIME,
    TODO,
    CallWatcher,
    Case,
    CheckResult,
    FunctionQuestion,
    Incorrect,
    ModelQuestion,
    NotAttempted,
    Outcome,
    Question,
    ValueQuestion,
    as_number,
    compare_values,
    results,
    summary,
)

__all__ = [
    "RESULT_MIME", "TODO", "CallWatcher", "Case", "CheckResult", "FunctionQuestion", "Incorrect", "ModelQuestion", "NotAttempted", "as_number",
    "Outcome", "Question", "ValueQuestion", "compare_values", "results", "summary",
    "questions_of",
]


def questions_of(module) -> list[Question]:
    """The questions a notebook's exercise module defines, in the order they appear in it."""
    return list(module.QUESTIONS)
