"""Questions of 03_region_growing: references pass, typical wrong answers fail with their message,
and an endless loop or deep recursion is stopped and reported, never hangs."""

import sys
import time
from collections import deque

import numpy as np
import pytest
from scipy import ndimage

from medseg_course.classical import region_growing as rg
from medseg_course.exercises import Outcome
from medseg_course.exercises import region_growing as ex


def _solution(question, name):
    namespace = {"np": np, "neighbours": rg.neighbours}
    exec(question.solution_code, namespace)
    return namespace[name]


@pytest.mark.parametrize("question, name", [
    (ex.neighbours, "my_neighbours"), (ex.region_grow, "my_region_grow"),
    (ex.region_grow_mean, "my_region_grow_mean"),
])
def test_reference_and_solution_text_pass(question, name):
    assert question.check(question.reference).outcome is Outcome.CORRECT
    assert question.check(_solution(question, name)).outcome is Outcome.CORRECT


def test_solution_uses_the_students_neighbours_function():
    """In the notebook, exercise 2 calls the student's neighbours(); a 2D-only one is enough."""
    solution_nb = _solution(ex.neighbours, "my_neighbours")
    namespace = {"np": np, "neighbours": solution_nb}
    exec(ex.region_grow.solution_code, namespace)
    assert ex.region_grow.check(namespace["my_region_grow"]).outcome is Outcome.CORRECT


# -- typical mistakes -------------------------------------------------------------------------------

def _neighbours(index, shape, connectivity=1, *, diagonal=None, bounds=True, itself=False):
    diagonal = connectivity == 2 if diagonal is None else diagonal
    out = []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if (dr, dc) == (0, 0) and not itself:
                continue
            if dr and dc and not diagonal:
                continue
            r, c = index[0] + dr, index[1] + dc
            if not bounds or (0 <= r < shape[0] and 0 <= c < shape[1]):
                out.append((r, c))
    return out


def _bfs(image, seed, tolerance, connectivity=1, *, against="seed", visited=True, strict=False,
         nb=None, to_float=True):
    image = np.asarray(image, dtype=float) if to_float else np.asarray(image)
    nb = nb or (lambda p, shape, c: _neighbours(p, shape, c))
    seed = tuple(seed)
    region = np.zeros(image.shape, dtype=bool)
    seen = np.zeros(image.shape, dtype=bool)
    region[seed] = seen[seed] = True
    queue = deque([seed])
    while queue:
        p = queue.popleft()
        for q in nb(p, image.shape, connectivity):
            if visited and seen[q]:
                continue
            seen[q] = True
            ref = image[seed] if against == "seed" else image[p]
            diff = abs(image[q] - ref)
            if (diff < tolerance) if strict else (diff <= tolerance):
                region[q] = True
                queue.append(q)
    return region


def _recursive(image, seed, tolerance, connectivity=1):
    image = np.asarray(image, dtype=float)
    region = np.zeros(image.shape, dtype=bool)

    def grow(p):
        region[p] = True
        for q in _neighbours(p, image.shape, connectivity):
            if not region[q] and abs(image[q] - image[tuple(seed)]) <= tolerance:
                grow(q)

    grow(tuple(seed))
    return region


def _mean(image, seed, tolerance, connectivity=1, *, fixed=False, diagonal=False, stop=True,
          exclude_region=True, strict=False, only_2d=False):
    image = np.asarray(image, dtype=float)
    ndim = 2 if only_2d else image.ndim
    structure = ndimage.generate_binary_structure(ndim, ndim if diagonal else connectivity)
    region = np.zeros(image.shape, dtype=bool)
    region[tuple(seed)] = True
    while True:
        ring = ndimage.binary_dilation(region, structure)
        if exclude_region:
            ring &= ~region
        ref = image[tuple(seed)] if fixed else image[region].mean()
        diff = np.abs(image - ref)
        new = ring & ((diff < tolerance) if strict else (diff <= tolerance))
        if stop and not new.any():
            return region
        region |= new


def _mean_no_retest(image, seed, tolerance, connectivity=1):
    image = np.asarray(image, dtype=float)
    structure = ndimage.generate_binary_structure(2, connectivity)
    region = np.zeros(image.shape, dtype=bool)
    region[tuple(seed)] = True
    tested = region.copy()
    while True:
        ring = ndimage.binary_dilation(region, structure) & ~tested
        new = ring & (np.abs(image - image[region].mean()) <= tolerance)
        tested |= ring
        if not new.any():
            return region
        region |= new


def _mean_sequential(image, seed, tolerance, connectivity=1):
    image = np.asarray(image, dtype=float)
    seed = tuple(seed)
    region = np.zeros(image.shape, dtype=bool)
    region[seed] = True
    total, count = image[seed], 1
    queue = deque([seed])
    while queue:
        p = queue.popleft()
        for q in _neighbours(p, image.shape, connectivity):
            if not region[q] and abs(image[q] - total / count) <= tolerance:
                region[q] = True
                total, count = total + image[q], count + 1
                queue.append(q)
    return region


@pytest.mark.parametrize("question, wrong, message", [
    (ex.neighbours, lambda i, s, c=1: _neighbours(i, s, c, diagonal=True), "contains the diagonal pixel"),
    (ex.neighbours, lambda i, s, c=1: _neighbours(i, s, c, diagonal=False), "diagonal pixels are neighbours too"),
    (ex.neighbours, lambda i, s, c=1: _neighbours(i, s, c, bounds=False), "negative index"),
    (ex.neighbours, lambda i, s, c=1: [q for q in _neighbours(i, s, c, bounds=False) if min(q) >= 0],
     "raises IndexError"),
    (ex.neighbours, lambda i, s, c=1: _neighbours(i, s, c, itself=True), "not its own neighbour"),
    (ex.neighbours, lambda i, s, c=1: _neighbours(i, s, c) * 2, "more than once"),
    (ex.neighbours, lambda i, s, c=1: _neighbours(i, s, c)[1:], "misses 1 neighbour"),
    (ex.neighbours, lambda i, s, c=1: len(_neighbours(i, s, c)), "list of (row, col) tuples"),
    (ex.region_grow, lambda im, s, t, c=1: _bfs(im, s, t, c, against="neighbour"), "not with the pixel you reached"),
    (ex.region_grow, lambda im, s, t, c=1: _bfs(im, s, t, 2), "steps between diagonal pixels"),
    (ex.region_grow, lambda im, s, t, c=1: _bfs(im, s, t, 1), "never steps between diagonal"),
    (ex.region_grow, lambda im, s, t, c=1: _bfs(im, s, t, c, strict=True), "use <= tolerance"),
    (ex.region_grow, lambda im, s, t, c=1: _bfs(im, s, t, c, to_float=False), "wrap around"),
    (ex.region_grow, lambda im, s, t, c=1: _bfs(im, s, t, c, nb=lambda p, shape, cc: [
        (q[0] % shape[0], q[1] % shape[1]) for q in _neighbours(p, shape, cc, bounds=False)]),
     "jumps across the image border"),
    (ex.region_grow, lambda im, s, t, c=1: _bfs(im, s, t, c, nb=lambda p, shape, cc: _neighbours(p, shape, cc)[:1]),
     "stops too early"),
    (ex.region_grow, lambda im, s, t, c=1: _bfs(im, s, t, c) & (np.arange(np.size(im)).reshape(np.shape(im)) > 0),
     "seed itself is not in your region"),
    (ex.region_grow, lambda im, s, t, c=1: _bfs(im, s, t, c, visited=False), "did not finish"),
    (ex.region_grow, _recursive, "recursion limit"),
    (ex.region_grow, lambda im, s, t, c=1: _bfs(im, s, t, c).astype(float) * 2, "a bool array was expected"),
    (ex.region_grow, lambda im, s, t, c=1: np.argwhere(_bfs(im, s, t, c)).tolist(), "should be an array"),
    (ex.region_grow_mean, lambda im, s, t, c=1: _mean(im, s, t, c, fixed=True), "fixed-tolerance one"),
    (ex.region_grow_mean, lambda im, s, t, c=1: _mean(im, s, t, c, diagonal=True), "steps between diagonal pixels"),
    (ex.region_grow_mean, _mean_no_retest, "never tests again"),
    (ex.region_grow_mean, lambda im, s, t, c=1: _mean(im, s, t, c, strict=True), "exactly `tolerance` away from the mean"),
    (ex.region_grow_mean, lambda im, s, t, c=1: _mean(im, s, t, c, only_2d=True), "fails on a 3D image"),
    (ex.region_grow_mean, lambda im, s, t, c=1: _mean(im, s, t, c, stop=False), "never stops"),
    (ex.region_grow_mean, lambda im, s, t, c=1: _mean(im, s, t, c, exclude_region=False), "never stops"),
])
def test_typical_wrong_answers_get_their_message(question, wrong, message):
    with np.errstate(all="ignore"):
        result = question.check(wrong)
    assert result.outcome is Outcome.INCORRECT
    assert message in result.message, result.message


def test_sequential_mean_update_is_recognised():
    """A BFS that updates the mean after each pixel is told why its region differs."""
    result = ex.region_grow_mean.check(_mean_sequential)
    assert result.outcome is Outcome.INCORRECT
    assert "never tests again" in result.message or "after every single pixel" in result.message


def test_endless_loop_is_stopped_quickly_and_tracing_restored():
    previous = sys.gettrace()

    def forever(image, seed, tolerance, connectivity=1):
        while True:
            pass

    start = time.perf_counter()
    result = ex.region_grow.check(forever)
    assert time.perf_counter() - start < 10
    assert "did not finish" in result.message and "a 4x4 integer image" in result.message
    assert sys.gettrace() is previous


def test_guard_is_not_swallowed_by_a_bare_except_exception():
    def stubborn(image, seed, tolerance, connectivity=1):
        try:
            while True:
                pass
        except Exception:
            return np.zeros(np.shape(image), bool)

    assert "did not finish" in ex.region_grow.check(stubborn).message


def test_not_attempted_and_not_callable():
    def stub(image, seed, tolerance, connectivity=1):
        raise NotImplementedError

    assert ex.region_grow.check(stub).outcome is Outcome.NOT_ATTEMPTED
    assert "Pass your function itself" in ex.region_grow.check(3).message


def test_summary_lists_every_question():
    assert [r["question"] for r in ex.summary()] == ["neighbours", "region_grow", "region_grow_mean"]
