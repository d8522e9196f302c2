"""Questions of notebook 03_region_growing: neighbourhoods, the region-growing loop, the running
mean criterion.

Every check runs the student's function under a step guard: a loop that never ends (a queue
that keeps receiving pixels it has already seen) is stopped after a number of Python lines
proportional to the image size and reported as such, so a check never hangs. The test images
are small.

Introduced in 03_region_growing.
"""

from __future__ import annotations

import sys
from collections import deque

import numpy as np

from medseg_course.classical import region_growing as rg
from medseg_course.exercises.engine import Case, FunctionQuestion, Incorrect, Question, compare_values, describe
from medseg_course.exercises.engine import summary as _summary

NOTEBOOK = "03_region_growing"


# -- the step guard -----------------------------------------------------------------------------

class _Stopped(BaseException):
    """Raised inside the student's code by the step guard. A BaseException, so that the student's
    own ``except Exception`` blocks do not swallow it."""


def _step_limit(args) -> int:
    image = np.asarray(args[0]) if args else np.zeros(1)
    return 400 * int(image.size) + 20_000


def _guarded(fn, loop_message: str, recursion_message: str):
    """``fn`` run under a budget of Python line events (see :func:`_step_limit`)."""

    def call(*args, **kwargs):
        budget = _step_limit(args)
        steps = 0

        def local(frame, event, arg):
            nonlocal steps
            if event == "line":
                steps += 1
                if steps > budget:
                    raise _Stopped(loop_message.format(budget=budget))
            return local

        def start(frame, event, arg):
            return local

        previous = sys.gettrace()
        sys.settrace(start)
        try:
            return fn(*args, **kwargs)
        except RecursionError:
            raise _Stopped(recursion_message) from None
        finally:
            sys.settrace(previous)

    return call


class _GuardedQuestion(FunctionQuestion):
    """A :class:`FunctionQuestion` whose answer runs under the step guard, and whose messages
    for an endless loop and for deep recursion are specific to the question."""

    def __init__(self, *args, loop_message: str, recursion_message: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.loop_message = loop_message
        self.recursion_message = recursion_message

    def grade(self, answer) -> None:
        if not callable(answer):
            return super().grade(answer)
        current = {}
        cases = self.cases

        def tracking(device):
            for case in cases(device):
                current["case"] = case
                yield case

        self.cases = tracking
        try:
            super().grade(_guarded(answer, self.loop_message, self.recursion_message))
        except _Stopped as stop:
            where = current["case"].describe() if "case" in current else "the first test"
            raise Incorrect(f"{stop}\n  on the inputs {where}") from None
        except Incorrect as exc:
            case = current.get("case")
            if (case is not None and str(exc).startswith("Your function raised")
                    and np.ndim(case.args[0]) == 3):
                raise Incorrect("Your function fails on a 3D image. Nothing in it may assume two "
                                "dimensions: build the neighbourhood from image.ndim (e.g. "
                                "ndimage.generate_binary_structure(image.ndim, connectivity)).\n"
                                + str(exc)) from None
            raise
        finally:
            self.cases = cases


# -- 1. neighbours --------------------------------------------------------------------------------

def _neighbour_cases(device):
    yield Case(((2, 3), (5, 6), 1), label="an interior pixel, 4-neighbourhood")
    yield Case(((2, 3), (5, 6), 2), label="an interior pixel, 8-neighbourhood")
    yield Case(((0, 0), (5, 6), 1), label="the top-left corner, 4-neighbourhood")
    yield Case(((0, 0), (5, 6), 2), label="the top-left corner, 8-neighbourhood")
    yield Case(((4, 5), (5, 6), 2), label="the bottom-right corner, 8-neighbourhood")
    yield Case(((0, 3), (5, 6), 2), label="a pixel on the top edge, 8-neighbourhood")
    yield Case(((2, 5), (5, 6), 1), label="a pixel on the right edge, 4-neighbourhood")
    yield Case(((0, 2), (1, 4), 2), label="a pixel of a one-row image, 8-neighbourhood")


def _as_index_set(got, what="Your function"):
    try:
        items = list(got)
        pixels = [tuple(int(v) for v in q) for q in items]
    except (TypeError, ValueError):
        raise Incorrect(f"{what} should return a list of (row, col) tuples, but it returned "
                        f"{describe(got)}.") from None
    if any(len(q) != 2 for q in pixels):
        raise Incorrect(f"{what} should return (row, col) pairs, but one of its items has "
                        f"{len(next(q for q in pixels if len(q) != 2))} entries.")
    return pixels


def _compare_neighbours(got, expected, case):
    index, shape, connectivity = case.args
    pixels = _as_index_set(got)
    found, wanted = set(pixels), set(expected)
    if tuple(index) in found:
        raise Incorrect("Your list contains the pixel itself; a pixel is not its own neighbour "
                        "(skip the offset (0, 0)).")
    if len(pixels) != len(found):
        raise Incorrect("Your list contains the same neighbour more than once; each should appear "
                        "once.")
    negative = [q for q in found if min(q) < 0]
    if negative:
        raise Incorrect(f"Your list contains {negative[0]}, which lies outside the image. In Python "
                        "a negative index counts from the end (image[-1] is the last row), so it "
                        "would silently wrap around to the other side: keep only neighbours with "
                        "0 <= row < shape[0] and 0 <= col < shape[1].")
    beyond = [q for q in found if q[0] >= shape[0] or q[1] >= shape[1]]
    if beyond:
        raise Incorrect(f"Your list contains {beyond[0]}, which lies outside the image of shape "
                        f"{tuple(shape)} (indexing it raises IndexError): keep only neighbours with "
                        "0 <= row < shape[0] and 0 <= col < shape[1].")
    diagonal = {q for q in found if q[0] != index[0] and q[1] != index[1]}
    if connectivity == 1 and diagonal:
        raise Incorrect(f"With connectivity=1 (the 4-neighbourhood) only the pixels that share an "
                        f"edge are neighbours, but your list contains the diagonal pixel "
                        f"{sorted(diagonal)[0]}.")
    missing = wanted - found
    if connectivity == 2 and missing and all(q[0] != index[0] and q[1] != index[1] for q in missing):
        raise Incorrect("With connectivity=2 (the 8-neighbourhood) the diagonal pixels are "
                        f"neighbours too, but your list misses {sorted(missing)[0]}.")
    if missing:
        raise Incorrect(f"Your list misses {len(missing)} neighbour(s), e.g. {sorted(missing)[0]}.")
    extra = found - wanted
    if extra:  # pragma: no cover - every extra pixel is caught above
        raise Incorrect(f"Your list contains {sorted(extra)[0]}, which is not a neighbour.")


neighbours = FunctionQuestion(
    NOTEBOOK, "neighbours", "The neighbours of a pixel, 4- or 8-connectivity", points=1,
    reference=rg.neighbours, cases=_neighbour_cases, compare=_compare_neighbours,
    hints=["Loop over the offsets dr, dc in (-1, 0, 1), skip (0, 0), and with connectivity=1 also "
           "skip the diagonal offsets (both dr and dc non-zero).",
           "Keep (row + dr, col + dc) only if 0 <= row + dr < shape[0] and 0 <= col + dc < shape[1]; "
           "Python would accept -1 as an index, which is the last row, not a neighbour."],
    solution_code='''
    def my_neighbours(index, shape, connectivity=1):
        row, col = index
        result = []
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if (dr, dc) == (0, 0):
                    continue
                if connectivity == 1 and dr != 0 and dc != 0:
                    continue  # a diagonal neighbour: only in the 8-neighbourhood
                r, c = row + dr, col + dc
                if 0 <= r < shape[0] and 0 <= c < shape[1]:
                    result.append((r, c))
        return result
    ''',
)


# -- 2. the region-growing loop (fixed tolerance) ---------------------------------------------------

def _bfs(image, seed, tolerance, connectivity, *, compare="seed", strict=False, wrap=False):
    """Variants of the fixed-tolerance BFS, to recognise typical mistakes."""
    image = np.asarray(image, dtype=np.float64)
    shape = image.shape
    offsets = rg.neighbour_offsets(2, connectivity)
    seed = tuple(seed)
    region = np.zeros(shape, dtype=bool)
    region[seed] = True
    queue = deque([seed])
    while queue:
        p = queue.popleft()
        for d in offsets:
            q = (p[0] + int(d[0]), p[1] + int(d[1]))
            if wrap:
                q = (q[0] % shape[0], q[1] % shape[1])
            elif not (0 <= q[0] < shape[0] and 0 <= q[1] < shape[1]):
                continue
            if region[q]:
                continue
            ref = image[seed] if compare == "seed" else image[p]
            diff = abs(image[q] - ref)
            if diff < tolerance if strict else diff <= tolerance:
                region[q] = True
                queue.append(q)
    return region


def _grow_cases(device):
    rng = np.random.default_rng(30)
    blobs = np.array([[1, 1, 5, 7],
                      [1, 9, 5, 7],
                      [2, 1, 1, 7],
                      [9, 9, 2, 8]], dtype=np.int64)
    yield Case((blobs, (0, 0), 1), label="a 4x4 integer image")
    ramp = np.tile(np.linspace(0.0, 0.9, 10), (6, 1)) + 0.01 * rng.random((6, 10))
    yield Case((ramp, (3, 0), 0.25), label="a smooth ramp from left to right")
    checker = np.array([[0.9, 0.1, 0.1, 0.1, 0.1],
                        [0.1, 0.9, 0.1, 0.1, 0.1],
                        [0.1, 0.1, 0.9, 0.9, 0.1],
                        [0.1, 0.1, 0.1, 0.1, 0.9],
                        [0.9, 0.1, 0.1, 0.1, 0.1]]) + 0.02 * rng.random((5, 5))
    yield Case((checker, (0, 0), 0.1, 1), label="a diagonal line, 4-neighbourhood")
    yield Case((checker, (0, 0), 0.1, 2), label="a diagonal line, 8-neighbourhood")
    bands = np.array([[3, 5, 5, 7, 8],
                      [3, 5, 6, 7, 9],
                      [2, 4, 5, 7, 9]], dtype=np.int64)
    yield Case((bands, (0, 1), 2), label="intensities exactly `tolerance` away from the seed")
    border = np.full((6, 7), 0.8)
    border[:, 0] = 0.2
    border[2, 6] = 0.2
    border += 0.01 * rng.random((6, 7))
    yield Case((border, (2, 0), 0.1), label="a seed on the left border")
    uint8 = np.array([[200, 190, 185, 60],
                      [210, 100, 180, 70],
                      [215, 220, 178, 50]], dtype=np.uint8)
    yield Case((uint8, (0, 0), 20), label="a uint8 image")
    flat = 0.5 + 0.01 * rng.random((60, 60))
    yield Case((flat, (30, 30), 0.2), label="a 60x60 image where every pixel joins")


def _compare_grow(got, expected, case):
    image, seed, tolerance = case.args[:3]
    connectivity = case.args[3] if len(case.args) > 3 else 1
    got_np = np.asarray(got) if not hasattr(got, "detach") else got.detach().cpu().numpy()
    if isinstance(got_np, np.ndarray) and got_np.shape == expected.shape and got_np.dtype.kind in "biuf" \
            and np.all(np.isin(got_np, (0, 1))):
        region = got_np.astype(bool)
        if not np.array_equal(region, expected):
            values = np.asarray(image, dtype=np.float64)
            if _looks_uint8_wrapped(image, seed, tolerance, connectivity, region):
                raise Incorrect("On a uint8 image your differences wrap around: np.uint8(190) - "
                                "np.uint8(200) is 246, not -10. Convert the image to float first, "
                                "e.g. image = np.asarray(image, dtype=float).")
            if not region[tuple(seed)]:
                raise Incorrect("The seed itself is not in your region; it always belongs to it "
                                "(mark it before the loop starts).")
            outside = np.abs(values - values[tuple(seed)]) > tolerance
            if np.any(region & outside):
                raise Incorrect("Your region contains pixels whose intensity differs from the seed's "
                                "by more than `tolerance`. Compare every candidate with the value of "
                                "the seed, image[seed], not with the pixel you reached it from: "
                                "otherwise the region creeps along slow intensity changes.")
            if connectivity == 1 and np.array_equal(region, _bfs(image, seed, tolerance, 2)):
                raise Incorrect("Your region steps between diagonal pixels, but connectivity=1 (the "
                                "4-neighbourhood) allows only steps to pixels that share an edge.")
            if connectivity == 2 and np.array_equal(region, _bfs(image, seed, tolerance, 1)):
                raise Incorrect("Your region never steps between diagonal pixels, but connectivity=2 "
                                "(the 8-neighbourhood) allows them.")
            if np.array_equal(region, _bfs(image, seed, tolerance, connectivity, strict=True)):
                raise Incorrect("Your region leaves out pixels exactly `tolerance` away from the seed. "
                                "They belong to it: use <= tolerance, as skimage.segmentation.flood "
                                "does.")
            if np.array_equal(region, _bfs(image, seed, tolerance, connectivity, wrap=True)):
                raise Incorrect("Your region jumps across the image border: a neighbour at index -1 "
                                "is the last row or column in Python. Keep only neighbours inside "
                                "the image (use your neighbours() function).")
            if np.all(region <= expected):
                raise Incorrect(f"Your region stops too early: it misses {int((expected & ~region).sum())} "
                                "pixel(s) connected to the seed through pixels within tolerance. Put "
                                "every pixel that joins the region in the queue, so that its own "
                                "neighbours are examined too.")
    compare_values(got, expected, what="Your region", check_dtype="bool")


def _uint8_wrapped(image, seed, tolerance, connectivity):
    """The BFS with uint8 arithmetic (differences modulo 256)."""
    image = np.asarray(image)
    shape = image.shape
    seed = tuple(seed)
    region = np.zeros(shape, dtype=bool)
    region[seed] = True
    queue = deque([seed])
    while queue:
        p = queue.popleft()
        for q in rg.neighbours(p, shape, connectivity):
            if not region[q] and int((int(image[q]) - int(image[seed])) % 256) <= tolerance:
                region[q] = True
                queue.append(q)
    return region


def _looks_uint8_wrapped(image, seed, tolerance, connectivity, region) -> bool:
    """True if ``region`` is what uint8 wrap-around gives (either operand order)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        return False
    forward = _uint8_wrapped(image, seed, tolerance, connectivity)
    backward = _uint8_wrapped(np.uint8(255) - image, seed, tolerance, connectivity)  # seed - pixel
    return bool(np.array_equal(region, forward) or np.array_equal(region, backward))


_LOOP_GROW = ("Your function did not finish within {budget} Python steps on a small image: the loop "
              "probably never ends. A pixel that is put back in the queue each time one of its "
              "neighbours is examined keeps the queue from ever emptying. Mark every pixel as visited "
              "when you first look at it, and skip visited pixels.")
_RECURSION = ("Your function hit Python's recursion limit (about 1000 nested calls). A recursive "
              "grow(pixel) calls itself once per pixel of the region, and real regions have "
              "thousands: keep a queue (collections.deque) of the pixels still to examine instead.")

region_grow = _GuardedQuestion(
    NOTEBOOK, "region_grow", "Region growing from one seed with a queue (fixed tolerance)", points=3,
    reference=rg.region_grow_bfs, cases=_grow_cases, compare=_compare_grow,
    loop_message=_LOOP_GROW, recursion_message=_RECURSION,
    hints=["Start with region = visited = np.zeros(image.shape, bool), mark the seed in both, and put "
           "it in a deque. While the queue is not empty: pop a pixel, and for each of its neighbours "
           "(your neighbours() function) that is not visited, mark it visited; if it is within "
           "tolerance of the seed's value, add it to the region and to the queue.",
           "Compare with the seed's value (image[seed]), not with the current pixel, and use "
           "abs(image[q] - seed_value) <= tolerance. Convert the image to float first: uint8 "
           "differences wrap around."],
    solution_code='''
    from collections import deque

    def my_region_grow(image, seed, tolerance, connectivity=1):
        image = np.asarray(image, dtype=float)
        seed = tuple(seed)
        seed_value = image[seed]
        region = np.zeros(image.shape, dtype=bool)
        visited = np.zeros(image.shape, dtype=bool)
        region[seed] = visited[seed] = True
        queue = deque([seed])
        while queue:
            p = queue.popleft()
            for q in neighbours(p, image.shape, connectivity):
                if not visited[q]:
                    visited[q] = True
                    if abs(image[q] - seed_value) <= tolerance:
                        region[q] = True
                        queue.append(q)
        return region
    ''',
)


# -- 3. the running-mean criterion ----------------------------------------------------------------

def reference_region_grow_mean(image, seed, tolerance, connectivity=1):
    """Running-mean region growing from one seed: :func:`medseg_course.classical.region_grow`
    with ``criterion="mean"``.

    Parameters
    ----------
    image : (H, W) or (D, H, W) array_like
    seed : tuple of int
    tolerance : float
    connectivity : int, default 1

    Returns
    -------
    ndarray of bool, same shape as ``image``

    Examples
    --------
    >>> image = np.array([[0.0, 0.1, 0.2, 0.3, 0.4, 0.9]])
    >>> reference_region_grow_mean(image, (0, 0), 0.22).astype(int)  # the mean follows the ramp
    array([[1, 1, 1, 1, 0, 0]])
    >>> rg.region_grow(image, (0, 0), 0.22).astype(int)  # the seed's value does not
    array([[1, 1, 1, 0, 0, 0]])

    Introduced in 03_region_growing.
    """
    return rg.region_grow(image, [tuple(seed)], tolerance, connectivity, criterion="mean")


def _mean_variant(image, seed, tolerance, connectivity, *, reconsider=True, sequential=False,
                  strict=False):
    """Variants of the running-mean growth, to recognise typical mistakes.

    ``reconsider=False``: a pixel rejected once is never tested again. ``sequential=True``: a
    breadth-first search that updates the mean after every pixel that joins. ``strict=True``:
    ``< tolerance`` instead of ``<= tolerance``."""
    image = np.asarray(image, dtype=np.float64)
    seed = tuple(seed)
    region = np.zeros(image.shape, dtype=bool)
    region[seed] = True
    total, count = image[seed], 1
    if sequential:
        visited = region.copy()
        queue = deque([seed])
        while queue:
            p = queue.popleft()
            for q in rg.neighbours(p, image.shape, connectivity):
                if not visited[q]:
                    visited[q] = True
                    if abs(image[q] - total / count) <= tolerance:
                        region[q] = True
                        total, count = total + image[q], count + 1
                        queue.append(q)
        return region
    rejected = np.zeros(image.shape, dtype=bool)
    offsets = rg.neighbour_offsets(image.ndim, connectivity)
    while True:
        ring = np.zeros(image.shape, dtype=bool)
        for p in zip(*np.nonzero(region)):
            for d in offsets:
                q = tuple(int(a + b) for a, b in zip(p, d))
                if all(0 <= i < n for i, n in zip(q, image.shape)):
                    ring[q] = True
        ring &= ~region
        if not reconsider:
            ring &= ~rejected
        mean = image[region].mean()
        diff = np.abs(image - mean)
        new = ring & ((diff < tolerance) if strict else (diff <= tolerance))
        rejected |= ring & ~new
        if not new.any():
            return region
        region |= new


def _mean_cases(device):
    rng = np.random.default_rng(31)
    drift = np.array([[0.0, 0.1, 0.2, 0.3, 0.4, 0.9]]) + 0.003 * rng.random((1, 6))
    yield Case((drift, (0, 0), 0.22), label="a slow ramp in one row")
    late = np.array([[0.28, 0.0, 0.1, 0.2, 0.2, 0.2],
                     [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]]) + 0.003 * rng.random((2, 6))
    yield Case((late, (0, 1), 0.15), label="a pixel rejected early that fits the mean later")
    noisy = 0.3 + 0.1 * rng.standard_normal((12, 12))
    noisy[3:9, 3:9] += 0.4
    yield Case((noisy, (6, 6), 0.25), label="a noisy bright square")
    yield Case((noisy, (6, 6), 0.25, 2), label="a noisy bright square, 8-neighbourhood")
    checker = np.array([[0.9, 0.1, 0.1, 0.1],
                        [0.1, 0.9, 0.1, 0.1],
                        [0.1, 0.1, 0.9, 0.9],
                        [0.1, 0.1, 0.1, 0.1]]) + 0.02 * rng.random((4, 4))
    yield Case((checker, (0, 0), 0.1, 1), label="a diagonal line, 4-neighbourhood")
    smooth = np.add.outer(np.linspace(0, 1, 20), np.linspace(0, 0.5, 20)) + 0.002 * rng.random((20, 20))
    yield Case((smooth, (0, 0), 0.1), label="a 20x20 gradient")
    tie = np.array([[10, 10, 13, 20],
                    [10, 10, 10, 20]])
    yield Case((tie, (0, 0), 3), label="a small integer image, one pixel exactly `tolerance` from the mean")
    volume = 0.2 + 0.02 * rng.random((5, 5, 5))
    volume[1:4, 1:4, 1:4] += 0.5
    volume[0, 2, 2] += 0.45         # joins through a face of the cube
    volume[4, 4, 4] += 0.5          # touches the cube only at a corner
    yield Case((volume, (2, 2, 2), 0.2), label="a 5x5x5 volume (3D), 6-neighbourhood")
    yield Case((volume, (2, 2, 2), 0.2, 3), label="a 5x5x5 volume (3D), 26-neighbourhood")


def _compare_mean(got, expected, case):
    image, seed, tolerance = case.args[:3]
    connectivity = case.args[3] if len(case.args) > 3 else 1
    got_np = np.asarray(got) if not hasattr(got, "detach") else got.detach().cpu().numpy()
    if isinstance(got_np, np.ndarray) and got_np.shape == expected.shape and got_np.dtype.kind in "biuf" \
            and np.all(np.isin(got_np, (0, 1))):
        region = got_np.astype(bool)
        if not np.array_equal(region, expected):
            if not region[tuple(seed)]:
                raise Incorrect("The seed itself is not in your region; start with a region that "
                                "holds only the seed.")
            if np.array_equal(region, rg.region_grow(image, [tuple(seed)], tolerance, connectivity)):
                raise Incorrect("Your region is the fixed-tolerance one: you compare with the seed's "
                                "value. Compare with the mean of the region as it is now "
                                "(image[region].mean()), recomputed after every ring.")
            if np.array_equal(region, _mean_variant(image, seed, tolerance, connectivity, strict=True)):
                raise Incorrect("Your region leaves out a pixel exactly `tolerance` away from the mean "
                                "of the region. The criterion is |value - mean| <= tolerance: a pixel at "
                                "exactly the tolerance joins.")
            if connectivity == 1 and np.array_equal(
                    region, reference_region_grow_mean(image, seed, tolerance, 2)):
                raise Incorrect("Your region steps between diagonal pixels, but connectivity=1 (the "
                                "4-neighbourhood) allows only steps to pixels that share an edge. "
                                "Build the structuring element with "
                                "ndimage.generate_binary_structure(image.ndim, connectivity).")
            if np.array_equal(region, _mean_variant(image, seed, tolerance, connectivity, reconsider=False)):
                raise Incorrect("Your region never tests again a pixel that was rejected once. When "
                                "the mean moves, a pixel rejected earlier may now be within "
                                "tolerance: at every step test the whole ring of pixels adjacent to "
                                "the region.")
            if np.array_equal(region, _mean_variant(image, seed, tolerance, connectivity, sequential=True)):
                raise Incorrect("You update the mean after every single pixel. This exercise tests a "
                                "whole ring against the mean of the region before that ring, then "
                                "updates the mean, so that the result does not depend on the order "
                                "in which pixels are visited.")
    compare_values(got, expected, what="Your region", check_dtype="bool")


_LOOP_MEAN = ("Your function did not finish within {budget} Python steps on a small image: the loop "
              "never stops. Stop as soon as a pass adds no new pixel, and make sure the ring holds only "
              "pixels outside the region (dilation & ~region), or it is never empty.")

region_grow_mean = _GuardedQuestion(
    NOTEBOOK, "region_grow_mean", "Region growing with a running-mean criterion, ring by ring",
    points=3, reference=reference_region_grow_mean, cases=_mean_cases, compare=_compare_mean,
    loop_message=_LOOP_MEAN, recursion_message=_RECURSION,
    hints=["The ring of candidates is ndimage.binary_dilation(region, structure) & ~region, with "
           "structure = ndimage.generate_binary_structure(image.ndim, connectivity).",
           "Loop: ring; mean = image[region].mean(); new = ring & (np.abs(image - mean) <= tolerance); "
           "if new has no pixel, return the region; otherwise region |= new."],
    solution_code='''
    from scipy import ndimage

    def my_region_grow_mean(image, seed, tolerance, connectivity=1):
        image = np.asarray(image, dtype=float)
        structure = ndimage.generate_binary_structure(image.ndim, connectivity)
        region = np.zeros(image.shape, dtype=bool)
        region[tuple(seed)] = True
        while True:
            ring = ndimage.binary_dilation(region, structure) & ~region
            mean = image[region].mean()
            new = ring & (np.abs(image - mean) <= tolerance)
            if not new.any():
                return region
            region |= new
    ''',
)

QUESTIONS: list[Question] = [neighbours, region_grow, region_grow_mean]


def summary():
    """Show this notebook's progress table."""
    return _summary(QUESTIONS)
