"""Questions of notebook 00_welcome: a warm-up that shows how checks, hints and solutions work.

Introduced in 00_welcome.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medseg_course.exercises.engine import Case, FunctionQuestion, Incorrect, Question, ValueQuestion, as_number
from medseg_course.exercises.engine import summary as _summary

NOTEBOOK = "00_welcome"


def toy_label_map() -> np.ndarray:
    """A 12x12 label map with three objects: two of class 1 and one of class 2.

    Returns
    -------
    (12, 12) ndarray of int64
        0 is background.

    Examples
    --------
    >>> toy_label_map().shape
    (12, 12)
    """
    labels = np.zeros((12, 12), dtype=np.int64)
    labels[1:4, 1:5] = 1
    labels[6:11, 2:5] = 2
    labels[5:9, 7:11] = 1
    return labels


def reference_foreground_fraction(mask):
    """Fraction of pixels (or voxels) that are not background (label 0).

    Parameters
    ----------
    mask : ndarray of int or bool, any shape
        A binary mask or a label map.

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    >>> reference_foreground_fraction(np.array([[0, 1], [2, 0]]))
    0.5
    """
    mask = np.asarray(mask)
    if mask.size == 0:
        raise ValueError("mask is empty (size 0); pass an array with at least one pixel")
    return float(np.count_nonzero(mask) / mask.size)


def _fraction_cases(device):
    rng = np.random.default_rng(0)
    yield Case((np.array([[0, 1], [1, 1]]),), label="a 2x2 binary mask")
    yield Case((toy_label_map(),), label="a label map with classes 1 and 2")
    yield Case((rng.random((5, 6, 7)) > 0.7,), label="a 3D boolean mask")
    yield Case((np.zeros((4, 4), dtype=np.uint8),), label="an empty mask")


def _compare_fraction(got, expected, case):
    got = as_number(got)
    mask = np.asarray(case.args[0])
    if np.isclose(got, expected, rtol=1e-6, atol=1e-7):
        return
    if np.count_nonzero(mask) > 1 and np.isclose(got, np.count_nonzero(mask)):
        raise Incorrect(f"Your function returned {got:g}, the number of foreground pixels. A fraction "
                        "divides that count by the total number of pixels.")
    if np.isclose(got, 100 * expected) and expected > 0:
        raise Incorrect(f"Your function returned {got:g}: a percentage. Return a fraction between 0 and 1.")
    if not 0.0 <= float(got) <= 1.0:
        raise Incorrect(f"Your function returned {float(got):.4g}, but a fraction lies between 0 and 1. "
                        "Do you count label 2 twice? Count pixels that are not 0 instead of summing labels.")
    if mask.max(initial=0) > 1 and np.isclose(float(got), mask.sum() / mask.size):
        raise Incorrect("Your function adds up the labels, so a pixel of class 2 counts twice. "
                        "Count the pixels that are not 0 instead.")
    if not np.isclose(got, expected, rtol=1e-6, atol=1e-7):
        raise Incorrect(f"Your function returned {float(got):.4g}, which is not the fraction of "
                        "non-background pixels.")


foreground_fraction = FunctionQuestion(
    NOTEBOOK, "foreground_fraction", "Fraction of the image that is foreground", points=2,
    reference=reference_foreground_fraction, cases=_fraction_cases, compare=_compare_fraction,
    hints=[
        "Background is label 0; every other label, whatever its value, is foreground.",
        "np.count_nonzero(mask) counts the pixels that are not 0; mask.size counts them all.",
    ],
    solution_code='''
    def my_foreground_fraction(mask):
        mask = np.asarray(mask)
        return np.count_nonzero(mask) / mask.size
    ''',
)

class _CountObjects(ValueQuestion):
    def grade(self, answer):
        if as_number(answer, what="Your answer") == 2:
            raise Incorrect("2 is the number of classes (1 and 2). The question asks for separate regions: "
                            "two regions of the same class still count as two objects.")
        super().grade(answer)


count_objects = _CountObjects(
    NOTEBOOK, "count_objects", "Count the objects in the toy label map", points=1,
    expected=int(ndimage.label(toy_label_map() > 0)[1]),
    hints=["Look at the figure: count the separate coloured regions, whatever their colour."],
    solution_code="n_objects = 3",
)

QUESTIONS: list[Question] = [foreground_fraction, count_objects]


def summary():
    """Show this notebook's progress table."""
    return _summary(QUESTIONS)
