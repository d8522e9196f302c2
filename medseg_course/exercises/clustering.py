"""Questions of notebook 05_clustering: the assignment and update steps of k-means, Lloyd's loop,
and the fuzzy c-means memberships.

Introduced in 05_clustering.
"""

from __future__ import annotations

import numpy as np

from medseg_course.exercises.engine import Case, FunctionQuestion, Incorrect, Question, compare_values, describe
from medseg_course.exercises.engine import summary as _summary

NOTEBOOK = "05_clustering"

_BROADCAST_TIP = (
    "Broadcasting tip: X is (N, F) and centers is (k, F). X[:, None, :] - centers[None, :, :] has "
    "shape (N, k, F): every (point, centre) pair. Sum the squares over the LAST axis (the features) "
    "to get the (N, k) distance matrix.")


class _Question(FunctionQuestion):
    """A FunctionQuestion that adds the broadcasting tip to "could not be broadcast" errors."""

    def grade(self, answer):
        try:
            super().grade(answer)
        except Incorrect as exc:
            message = str(exc)
            if "could not be broadcast" in message:
                raise Incorrect(f"{message}\n{_BROADCAST_TIP}") from None
            raise


def _array(value, what):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise Incorrect(f"{what} should be a NumPy array, but it is {describe(value)}.")
    return value


# -- 1. assignment step -------------------------------------------------------------------------

def reference_assign(X, centers):
    """Index of the nearest centre for each point (squared Euclidean distance; ties: lowest index).

    Parameters
    ----------
    X : (N, F) ndarray
        Points, one row per pixel.
    centers : (k, F) ndarray

    Returns
    -------
    (N,) ndarray of int64

    Examples
    --------
    >>> reference_assign(np.array([[0.0], [4.0], [9.0]]), np.array([[1.0], [8.0]])).tolist()
    [0, 0, 1]

    Introduced in 05_clustering.
    """
    X = np.asarray(X, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    d2 = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)    # (N, k)
    return np.argmin(d2, axis=1)


def _assign_cases(device):
    yield Case((np.array([[0.1], [0.15], [0.2], [0.7], [0.8], [0.55]]), np.array([[0.1], [0.8]])),
               label="six grey pixels, two centres")
    rng = np.random.default_rng(5)
    yield Case((rng.random((40, 3)), rng.random((4, 3))), label="40 RGB pixels, four centres")
    yield Case((np.array([[0.0, 0.0], [2.0, 1.9], [3.1, 0.2]]), np.array([[2.0, 2.0], [3.0, 0.0]])),
               label="points where the Manhattan and Euclidean nearest centres differ")
    yield Case((rng.random((5, 2)), rng.random((5, 2))), label="as many points as centres (5 and 5)")
    yield Case((np.array([[0.5], [0.0], [1.0]]), np.array([[0.0], [1.0]])),
               label="a point exactly halfway between two centres (the lowest index wins)")


def _compare_assign(got, expected, case):
    X, centers = (np.asarray(a, dtype=np.float64) for a in case.args)
    n, k = len(X), len(centers)
    got = _array(got, "Your labels")
    diff = X[:, None, :] - centers[None, :, :]
    d2 = (diff ** 2).sum(axis=2)
    if got.shape == (n, k) and n != k or (got.ndim == 2 and got.shape == d2.shape and got.dtype.kind == "f"):
        raise Incorrect("You returned the (N, k) distance matrix. The labels are the index of the "
                        "smallest distance in each row: np.argmin(d2, axis=1).")
    if got.ndim == 0:
        raise Incorrect("Your function returned a single number. Did you compute X - centers "
                        "directly? That pairs point i with centre i only. " + _BROADCAST_TIP)
    if got.shape == (k,) and n != k:
        raise Incorrect(f"Your function returned {k} values, one per centre, but one label per point "
                        f"({n}) is expected: take the argmin over the centres axis (axis=1 of an "
                        "(N, k) distance matrix).")
    if got.shape == expected.shape:
        if np.array_equal(got, np.argmin(d2, axis=0)) and not np.array_equal(got, expected):
            raise Incorrect("Your labels give, for each centre, its nearest point: the argmin runs "
                            "over the wrong axis. In an (N, k) distance matrix, reduce over axis=1.")
        if np.array_equal(got, np.argmax(d2, axis=1)) and not np.array_equal(got, expected):
            raise Incorrect("Each point went to its FARTHEST centre: use np.argmin, not np.argmax.")
        l1 = np.argmin(np.abs(diff).sum(axis=2), axis=1)
        if np.array_equal(got, l1) and not np.array_equal(got, expected):
            raise Incorrect("Your labels follow the Manhattan distance (sum of |x - c|). k-means uses "
                            "the Euclidean distance: sum the SQUARED differences over the features.")
        signed = np.argmin(diff.sum(axis=2), axis=1)
        if np.array_equal(got, signed) and not np.array_equal(got, expected):
            raise Incorrect("Square the differences before summing them: summed signed differences "
                            "cancel out (and can be negative), so they are not a distance.")
        if got.dtype.kind == "f" and np.array_equal(got, expected):
            raise Incorrect("Your labels are floats; labels are integer indices (np.argmin returns "
                            "integers, which can index arrays).")
    compare_values(got, expected, what="Your labels", check_dtype="int")


assign = _Question(
    NOTEBOOK, "assign", "k-means assignment step: the nearest centre of every point", points=2,
    reference=reference_assign, cases=_assign_cases, compare=_compare_assign,
    hints=["Build the (N, k) matrix of squared distances between every point and every centre, "
           "then take the index of the smallest one in each row.",
           "X[:, None, :] - centers[None, :, :] has shape (N, k, F); square it, .sum(axis=2), then "
           "np.argmin(..., axis=1). No square root is needed: it would not change which is smallest."],
    solution_code='''
    def my_assign(X, centers):
        d2 = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)   # (N, k)
        return np.argmin(d2, axis=1)
    ''',
)


# -- 2. update step -----------------------------------------------------------------------------

def reference_update(X, labels, centers):
    """New centres: the mean of the points assigned to each cluster; an empty cluster keeps its centre.

    Parameters
    ----------
    X : (N, F) ndarray
    labels : (N,) ndarray of int
        Cluster of each point, in ``0 .. k-1``.
    centers : (k, F) ndarray
        The current centres (not modified).

    Returns
    -------
    (k, F) ndarray of float64

    Examples
    --------
    >>> X = np.array([[0.0], [2.0], [10.0]])
    >>> reference_update(X, np.array([0, 0, 1]), np.array([[0.0], [9.0], [5.0]])).ravel().tolist()
    [1.0, 10.0, 5.0]

    Introduced in 05_clustering.
    """
    X = np.asarray(X, dtype=np.float64)
    new = np.array(centers, dtype=np.float64)
    for j in range(len(new)):
        members = X[labels == j]
        if len(members):
            new[j] = members.mean(axis=0)
    return new


def _update_cases(device):
    X = np.array([[0.1], [0.2], [0.3], [0.8], [0.9]])
    yield Case((X, np.array([0, 0, 0, 1, 1]), np.array([[0.0], [1.0]])), label="five grey pixels, two clusters")
    rng = np.random.default_rng(6)
    X = rng.random((30, 3))
    yield Case((X, rng.integers(0, 3, 30), rng.random((3, 3))), label="30 RGB pixels, three clusters")
    yield Case((np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 8.0]]), np.array([0, 2, 2, 0]),
                np.array([[1.0, 1.0], [9.0, 9.0], [5.0, 5.0]])),
               label="cluster 1 received no points")
    yield Case((rng.random((12, 4)), np.repeat([0, 1, 2, 3], 3), rng.random((4, 4))),
               label="four features, four clusters (F = k)")


def _compare_update(got, expected, case):
    X, labels, centers = case.args
    X = np.asarray(X, dtype=np.float64)
    k, f = centers.shape
    got = _array(got, "Your centres")
    counts = np.bincount(labels, minlength=k)
    empty = np.flatnonzero(counts == 0)
    if got.shape == (f, k) and f != k:
        raise Incorrect(f"Your centres have shape {got.shape}: transposed. One row per cluster, one "
                        f"column per feature: shape (k, F) = {(k, f)}.")
    if got.shape == expected.shape and got.dtype.kind == "f":
        if empty.size and np.isnan(got[empty]).any():
            raise Incorrect(f"Cluster {int(empty[0])} received no points, and the mean of nothing is NaN. "
                            "The rule: an empty cluster keeps its current centre (centers[j]).")
        if empty.size and np.allclose(got[empty], 0) and not np.allclose(expected[empty], 0):
            raise Incorrect(f"Cluster {int(empty[0])} received no points and your centre for it is 0. "
                            "The rule: an empty cluster keeps its current centre (centers[j]).")
        sums = np.stack([X[labels == j].sum(axis=0) for j in range(k)])
        if np.allclose(got[counts > 0], sums[counts > 0]) and not np.allclose(got, expected):
            raise Incorrect("Your centres are the SUMS of their points: divide by the number of points "
                            "in each cluster (or use .mean(axis=0)).")
        if np.allclose(got, X.mean(axis=0)[None, :]) and not np.allclose(got, expected):
            raise Incorrect("Every centre is the mean of ALL points: select each cluster's points first, "
                            "X[labels == j].")
    compare_values(got, expected, what="Your centres", check_dtype="float")


update = _Question(
    NOTEBOOK, "update", "k-means update step: each centre moves to the mean of its points", points=2,
    reference=reference_update, cases=_update_cases, compare=_compare_update,
    hints=["For each cluster j, the points of cluster j are X[labels == j]; their mean over axis 0 "
           "(the points) is the new centre, a vector of F features.",
           "Start from a copy, new = centers.astype(float) (a copy: never change the caller's array), "
           "and overwrite row j only when cluster j has at least one point."],
    solution_code='''
    def my_update(X, labels, centers):
        new = centers.astype(float)          # a copy: empty clusters keep their centre
        for j in range(len(centers)):
            members = X[labels == j]
            if len(members) > 0:
                new[j] = members.mean(axis=0)
        return new
    ''',
)


# -- 3. Lloyd's loop ----------------------------------------------------------------------------

def reference_lloyd(X, centers, max_iter=100):
    """k-means from given centres: alternate assignment and update until the labels stop changing.

    Parameters
    ----------
    X : (N, F) ndarray
    centers : (k, F) ndarray
        Initial centres (not modified).
    max_iter : int
        Most updates of the centres.

    Returns
    -------
    centers : (k, F) ndarray of float64
        The centres after the last update.
    labels : (N,) ndarray of int
        The labels of those centres (``reference_assign(X, centers)``).

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    >>> centers, labels = reference_lloyd(X, np.array([[0.0], [1.0]]))
    >>> centers.ravel().tolist(), labels.tolist()
    ([1.0, 10.5], [0, 0, 0, 1, 1])

    Introduced in 05_clustering.
    """
    centers = np.array(centers, dtype=np.float64)
    labels = reference_assign(X, centers)
    for _ in range(max_iter):
        centers = reference_update(X, labels, centers)
        new = reference_assign(X, centers)
        if np.array_equal(new, labels):
            break
        labels = new
    return centers, labels


def _lloyd_cases(device):
    X = np.array([[0.0], [1.0], [2.0], [3.0], [10.0], [11.0], [12.0]])
    yield Case((X, np.array([[0.0], [1.0]])), label="seven grey pixels, a poor start")
    rng = np.random.default_rng(7)
    blobs = np.concatenate([rng.normal(c, 0.3, (15, 2)) for c in ([0, 0], [3, 0], [0, 3])])
    yield Case((blobs, blobs[[0, 1, 2]].copy()), label="three 2D blobs, all centres started in one")
    yield Case((X, np.array([[0.0], [1.0]])), {"max_iter": 1}, label="max_iter=1")


def _compare_lloyd(got, expected, case):
    X = np.asarray(case.args[0], dtype=np.float64)
    exp_centers, exp_labels = expected
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Incorrect(f"Return two things, centers and labels (return centers, labels); your function "
                        f"returned {describe(got)}.")
    centers, labels = got
    centers, labels = _array(centers, "The centres you return"), _array(labels, "The labels you return")
    if centers.ndim == 1 and labels.ndim == 2:
        raise Incorrect("You returned (labels, centers); the order is (centers, labels).")
    if centers.shape == exp_centers.shape and labels.shape == exp_labels.shape:
        init = np.asarray(case.args[1], dtype=np.float64)
        one = reference_update(X, reference_assign(X, init), init)
        max_iter = case.kwargs.get("max_iter", 100)
        if (np.allclose(centers, one) and not np.allclose(centers, exp_centers)):
            raise Incorrect("Your centres are those after ONE update. Repeat assignment and update until "
                            "the labels stop changing (or max_iter updates).")
        if np.allclose(centers, init) and not np.allclose(centers, exp_centers):
            raise Incorrect("Your centres are the initial ones: update them in the loop "
                            "(centers = update(X, labels, centers)).")
        if max_iter < 100 and not np.allclose(centers, exp_centers):
            raise Incorrect(f"With max_iter={max_iter} the loop must stop after {max_iter} update(s) of "
                            "the centres; yours ran a different number.")
        if np.allclose(centers, exp_centers) and not np.array_equal(labels, reference_assign(X, centers)):
            raise Incorrect("Your centres are right, but your labels do not belong to them (they are "
                            "from before the last update). Return the labels of the returned centres.")
    compare_values(centers, exp_centers, what="Your centres", check_dtype="float")
    compare_values(labels, exp_labels, what="Your labels", check_dtype="int")


class _LloydQuestion(FunctionQuestion):
    """A FunctionQuestion that explains a missing ``max_iter`` parameter instead of showing the
    TypeError raised where the check calls the function."""

    def grade(self, answer):
        try:
            super().grade(answer)
        except Incorrect as exc:
            if "unexpected keyword argument 'max_iter'" in str(exc):
                raise Incorrect("Your function must accept max_iter= (the largest number of updates): "
                                "define it as def my_kmeans(X, centers, max_iter=100).") from None
            raise


lloyd = _LloydQuestion(
    NOTEBOOK, "lloyd", "Lloyd's loop: alternate the two steps until nothing changes", points=2,
    reference=reference_lloyd, cases=_lloyd_cases, compare=_compare_lloyd,
    hints=["Assign once before the loop. In the loop: update the centres, assign again, and stop "
           "(break) when the new labels equal the old ones (np.array_equal).",
           "for _ in range(max_iter): centers = update(X, labels, centers); new = assign(X, centers); "
           "if np.array_equal(new, labels): break; labels = new. Then return centers, labels."],
    solution_code='''
    def my_kmeans(X, centers, max_iter=100):
        labels = assign(X, centers)
        for _ in range(max_iter):
            centers = update(X, labels, centers)
            new_labels = assign(X, centers)
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
        return centers, labels
    ''',
)


# -- 4. fuzzy memberships -----------------------------------------------------------------------

def reference_memberships(X, centers, m):
    """Fuzzy c-means memberships ``(c, N)``: ``u_ik = 1 / sum_j (d_ik / d_jk)^(2/(m-1))``.

    Parameters
    ----------
    X : (N, F) ndarray
    centers : (c, F) ndarray
    m : float
        Fuzzifier, ``> 1``.

    Returns
    -------
    (c, N) ndarray of float64
        Column ``k`` sums to 1. A point on a centre (``d = 0``) has membership 1 there and 0
        elsewhere (shared equally if it lies on several centres).

    Examples
    --------
    >>> u = reference_memberships(np.array([[0.0], [1.0], [3.0]]), np.array([[0.0], [2.0]]), 2.0)
    >>> np.round(u, 2).tolist()
    [[1.0, 0.5, 0.1], [0.0, 0.5, 0.9]]

    Introduced in 05_clustering.
    """
    X = np.asarray(X, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    d = np.sqrt(((X[None, :, :] - centers[:, None, :]) ** 2).sum(axis=2))   # (c, N)
    on_centre = np.any(d == 0, axis=0)
    safe = np.where(d == 0, 1.0, d)
    u = 1.0 / ((safe[:, None, :] / safe[None, :, :]) ** (2.0 / (m - 1.0))).sum(axis=1)
    zero = (d == 0)[:, on_centre]
    u[:, on_centre] = zero / zero.sum(axis=0)
    return u


def _membership_cases(device):
    yield Case((np.array([[0.1], [0.3], [0.45], [0.7], [0.9]]), np.array([[0.2], [0.8]]), 2.0),
               label="five grey pixels, two centres, m=2")
    rng = np.random.default_rng(8)
    yield Case((rng.random((20, 3)), rng.random((3, 3)), 1.5), label="20 RGB pixels, three centres, m=1.5")
    yield Case((np.array([[0.0], [0.25], [1.0], [0.6]]), np.array([[0.0], [1.0]]), 2.0),
               label="two pixels lying exactly on a centre")
    yield Case((rng.random((6, 2)), rng.random((4, 2)), 3.0), label="six points, four centres, m=3")
    yield Case((np.array([[0.0], [0.4], [1.0], [0.7]]), np.array([[0.0], [1.0], [0.0]]), 2.0),
               label="two coinciding centres (0 and 0), one pixel lying on them")


def _formula(d, m, power):
    with np.errstate(all="ignore"):
        return 1.0 / ((d[:, None, :] / d[None, :, :]) ** power).sum(axis=1)


def _compare_memberships(got, expected, case):
    X, centers, m = case.args
    X, centers = np.asarray(X, dtype=np.float64), np.asarray(centers, dtype=np.float64)
    c, n = expected.shape
    got = _array(got, "Your memberships")
    if got.shape == (n, c) and n != c:
        raise Incorrect(f"Your memberships have shape {got.shape}: one row per POINT. The expected layout "
                        f"is one row per cluster, (c, N) = {(c, n)}, so that u[i] is the membership map "
                        "of cluster i.")
    if got.shape == expected.shape and got.dtype.kind == "f":
        if not np.all(np.isfinite(got)):
            raise Incorrect("Your memberships contain NaN or inf: a point lying exactly on a centre has "
                            "d = 0, and d_ik / d_jk divides by zero. Guard it: such a point belongs to "
                            "that centre with membership 1 (0 for the others).")
        d2 = ((X[None, :, :] - centers[:, None, :]) ** 2).sum(axis=2)
        d = np.sqrt(d2)
        safe = ~np.any(d == 0, axis=0)
        several = (d == 0).sum(axis=0) > 1
        if several.any() and not np.allclose(got[:, several], expected[:, several], rtol=1e-5, atol=1e-7):
            k = int(np.flatnonzero(several)[0])
            share = 1.0 / int((d[:, k] == 0).sum())
            raise Incorrect(f"Point {k} lies exactly on {int((d[:, k] == 0).sum())} coinciding centres. It "
                            f"shares the membership 1 equally among them ({share:.3g} each, 0 elsewhere): "
                            f"its column is (d[:, k] == 0) / (d[:, k] == 0).sum(). Yours is "
                            f"{np.round(got[:, k], 3).tolist()}.")
        wrong_d = _formula(d2, m, 2.0 / (m - 1.0))
        if np.allclose(got[:, safe], wrong_d[:, safe]) and not np.allclose(got, expected):
            raise Incorrect("You used SQUARED distances with the exponent 2/(m-1). The formula uses the "
                            "distances d = sqrt(d²); with squared distances the exponent is 1/(m-1).")
        wrong_p = _formula(d, m, 1.0 / (m - 1.0))
        if np.allclose(got[:, safe], wrong_p[:, safe]) and not np.allclose(got, expected):
            raise Incorrect("The exponent is 2/(m-1), applied to the distance ratio d_ik / d_jk; yours "
                            "uses 1/(m-1).")
        sums0, sums1 = got.sum(axis=0), got.sum(axis=1)
        if np.allclose(sums1, 1.0) and not np.allclose(sums0, 1.0):
            raise Incorrect("Your memberships sum to 1 over the POINTS (axis 1). Each point's "
                            "memberships must sum to 1 over the clusters: u.sum(axis=0) == 1.")
        if not np.allclose(sums0, 1.0, atol=1e-6):
            raise Incorrect(f"The memberships of a point must sum to 1 over the clusters, but yours sum "
                            f"to values between {sums0.min():.3g} and {sums0.max():.3g}. Check the sum "
                            "over j in the denominator (it includes j = i).")
        hard = np.zeros_like(expected)
        hard[np.argmin(d2, axis=0), np.arange(n)] = 1.0
        if np.allclose(got, hard) and not np.allclose(got, expected):
            raise Incorrect("Your memberships are 0 or 1: that is the hard k-means assignment. Fuzzy "
                            "memberships share each point between all centres.")
    compare_values(got, expected, what="Your memberships", rtol=1e-5, atol=1e-7, check_dtype="float")


memberships = _Question(
    NOTEBOOK, "memberships", "Fuzzy c-means memberships, with the zero-distance guard", points=3,
    reference=reference_memberships, cases=_membership_cases, compare=_compare_memberships,
    hints=["First the (c, N) matrix of distances d[i, k] = ||x_k - v_i|| (np.sqrt of the summed "
           "squared differences). Then u[i, k] = 1 / sum over j of (d[i, k] / d[j, k]) ** (2 / (m - 1)).",
           "With d of shape (c, N), d[:, None, :] / d[None, :, :] has shape (c, c, N): entry [i, j, k] is "
           "d_ik / d_jk; sum over axis 1 (j). For the points with a zero distance (np.any(d == 0, axis=0)) "
           "replace their column by (d[:, k] == 0) / number of zeros."],
    solution_code='''
    def my_memberships(X, centers, m):
        d = np.sqrt(((X[None, :, :] - centers[:, None, :]) ** 2).sum(axis=2))   # (c, N)
        on_centre = np.any(d == 0, axis=0)
        safe = np.where(d == 0, 1.0, d)               # avoid 0 / 0; fixed below
        ratio = safe[:, None, :] / safe[None, :, :]   # (c, c, N): d_ik / d_jk
        u = 1.0 / (ratio ** (2.0 / (m - 1.0))).sum(axis=1)
        zero = (d == 0)[:, on_centre]
        u[:, on_centre] = zero / zero.sum(axis=0)
        return u
    ''',
)

QUESTIONS: list[Question] = [assign, update, lloyd, memberships]


def summary():
    """Show this notebook's progress table."""
    return _summary(QUESTIONS)
