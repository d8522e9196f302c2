"""Questions of 05_clustering: references pass, typical wrong answers fail with their message."""

import numpy as np
import pytest

from medseg_course.classical import clustering
from medseg_course.exercises import Outcome
from medseg_course.exercises import clustering as ex


def _solution(question, name):
    namespace = {"np": np, "assign": ex.reference_assign, "update": ex.reference_update}
    exec(question.solution_code, namespace)
    return namespace[name]


@pytest.mark.parametrize("question, name", [
    (ex.assign, "my_assign"), (ex.update, "my_update"), (ex.lloyd, "my_kmeans"),
    (ex.memberships, "my_memberships"),
])
def test_reference_and_solution_text_pass(question, name):
    assert question.check(question.reference).outcome is Outcome.CORRECT
    assert question.check(_solution(question, name)).outcome is Outcome.CORRECT


def test_unsquared_euclidean_distances_are_accepted_too():
    # the square root changes no assignment, not even in the tie case (lowest index wins)
    def sqrt_assign(X, centers):
        return np.argmin(np.sqrt(((X[:, None, :] - centers[None]) ** 2).sum(-1)), axis=1)

    assert ex.assign.check(sqrt_assign).outcome is Outcome.CORRECT


def _d2(X, centers):
    return ((X[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)


def _update_nan(X, labels, centers):
    return np.stack([X[labels == j].mean(axis=0) for j in range(len(centers))])


def _update_zero(X, labels, centers):
    return np.stack([X[labels == j].sum(axis=0) / max((labels == j).sum(), 1) for j in range(len(centers))])


def _update_in_place(X, labels, centers):
    for j in range(len(centers)):
        if (labels == j).any():
            centers[j] = X[labels == j].mean(axis=0)
    return centers


def _lloyd_once(X, centers, max_iter=100):
    labels = ex.reference_assign(X, centers)
    centers = ex.reference_update(X, labels, centers)
    return centers, ex.reference_assign(X, centers)


def _lloyd_stale_labels(X, centers, max_iter=100):
    labels = ex.reference_assign(X, centers)
    for _ in range(max_iter):
        old = labels
        centers = ex.reference_update(X, labels, centers)
        labels = ex.reference_assign(X, centers)
        if np.array_equal(labels, old):
            break
    # returns the labels of the centres before the last update on the max_iter=1 case
    return centers, (old if max_iter == 1 else labels)


def _lloyd_ignores_max_iter(X, centers, max_iter=100):
    return ex.reference_lloyd(X, centers, 100)


def _memberships(power, squared=False, guard=True, axis=0, transpose=False, share="equally"):
    def f(X, centers, m):
        d2 = _d2(X, centers).T
        d = d2 if squared else np.sqrt(d2)
        with np.errstate(all="ignore"):
            u = 1.0 / ((d[:, None, :] / d[None, :, :]) ** power(m)).sum(axis=1)
        if guard:
            on = np.any(d == 0, axis=0)
            z = (d == 0)[:, on]
            if share == "equally":
                u[:, on] = z / z.sum(axis=0)
            elif share == "first":      # the 1 goes to the first of the coinciding centres
                u[:, on] = (np.arange(len(d))[:, None] == np.argmax(z, axis=0)[None]).astype(float)
            else:                       # a 1 for every coinciding centre
                u[:, on] = z.astype(float)
        if axis == 1:
            u = u / u.sum(axis=1, keepdims=True)
        return u.T if transpose else u
    return f


def _memberships_pointwise(X, centers, m):
    u = _memberships(lambda m: 2 / (m - 1))(X, centers, m)
    return u / u.sum(axis=1, keepdims=True)


def _memberships_unnormalised(X, centers, m):
    d = np.sqrt(_d2(X, centers).T)
    with np.errstate(divide="ignore"):
        u = 1.0 / d ** (2 / (m - 1))
    return np.where(d == 0, 1.0, u)


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")
@pytest.mark.parametrize("question, wrong, message", [
    (ex.assign, lambda X, C: _d2(X, C), "distance matrix"),
    (ex.assign, lambda X, C: np.argmin(_d2(X, C), axis=0), "one per centre"),
    (ex.assign, lambda X, C: np.argmin(_d2(X, C), axis=0) if len(X) == len(C) else ex.reference_assign(X, C),
     "over the wrong axis"),
    (ex.assign, lambda X, C: np.argmax(_d2(X, C), axis=1), "FARTHEST"),
    (ex.assign, lambda X, C: np.argmin(np.abs(X[:, None] - C[None]).sum(-1), axis=1), "Manhattan"),
    (ex.assign, lambda X, C: np.argmin((X[:, None] - C[None]).sum(-1), axis=1), "Square the differences"),
    (ex.assign, lambda X, C: np.argmin(((X - C) ** 2).sum(-1)), "could not be broadcast"),
    (ex.assign, lambda X, C: np.argmin(_d2(X, C), axis=1).astype(float), "are floats"),
    (ex.update, _update_nan, "mean of nothing is NaN"),
    (ex.update, _update_zero, "your centre for it is 0"),
    (ex.update, lambda X, L, C: np.stack([X[L == j].sum(0) if (L == j).any() else C[j] for j in range(len(C))]),
     "SUMS of their points"),
    (ex.update, lambda X, L, C: np.repeat(X.mean(0)[None], len(C), axis=0), "mean of ALL points"),
    (ex.update, lambda X, L, C: ex.reference_update(X, L, C).T, "transposed"),
    (ex.update, _update_in_place, "changed its input in place"),
    (ex.lloyd, _lloyd_once, "after ONE update"),
    (ex.lloyd, lambda X, C, max_iter=100: (C, ex.reference_assign(X, C)), "initial ones"),
    (ex.lloyd, _lloyd_ignores_max_iter, "max_iter=1"),
    (ex.lloyd, lambda X, C: ex.reference_lloyd(X, C), "must accept max_iter="),
    (ex.lloyd, _lloyd_stale_labels, "do not belong to them"),
    (ex.lloyd, lambda X, C, max_iter=100: ex.reference_lloyd(X, C, max_iter)[::-1], "order is (centers, labels)"),
    (ex.lloyd, lambda X, C, max_iter=100: ex.reference_lloyd(X, C, max_iter)[0], "Return two things"),
    (ex.memberships, _memberships(lambda m: 2 / (m - 1), guard=False), "divides by zero"),
    (ex.memberships, _memberships(lambda m: 2 / (m - 1), squared=True), "SQUARED distances"),
    (ex.memberships, _memberships(lambda m: 1 / (m - 1)), "uses 1/(m-1)"),
    (ex.memberships, _memberships(lambda m: 2 / (m - 1), transpose=True), "one row per POINT"),
    (ex.memberships, _memberships_pointwise, "sum to 1 over the POINTS"),
    (ex.memberships, _memberships(lambda m: 2 / (m - 1), share="first"), "shares the membership 1 equally"),
    (ex.memberships, _memberships(lambda m: 2 / (m - 1), share="each"), "shares the membership 1 equally"),
    (ex.memberships, _memberships_unnormalised, "must sum to 1 over the clusters"),
    (ex.memberships, lambda X, C, m: (np.arange(len(C))[:, None] == np.argmin(_d2(X, C), 1)[None]).astype(float),
     "hard k-means assignment"),
])
def test_typical_wrong_answers_get_their_message(question, wrong, message):
    with np.errstate(all="ignore"):
        result = question.check(wrong)
    assert result.outcome is Outcome.INCORRECT
    assert message in result.message, result.message


def test_not_attempted():
    def stub(X, centers):
        raise NotImplementedError

    assert ex.assign.check(stub).outcome is Outcome.NOT_ATTEMPTED


def test_the_exercise_steps_rebuild_the_library_kmeans():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.2, (40, 3)) for c in (0.0, 1.0, 2.0)])
    init = X[[0, 1, 2]]
    centers, labels = ex.reference_lloyd(X, init)
    result = clustering.kmeans(X, 3, init=init, tol=0.0)
    np.testing.assert_allclose(centers, result.centers)
    np.testing.assert_array_equal(labels, result.labels)


def test_the_exercise_memberships_match_the_library():
    rng = np.random.default_rng(1)
    X, centers = rng.random((50, 2)), rng.random((3, 2))
    d2 = clustering._sqdist(X, centers).T
    np.testing.assert_allclose(ex.reference_memberships(X, centers, 2.0), clustering._memberships(d2, 2.0))
    np.testing.assert_allclose(ex.reference_memberships(X, centers, 1.3), clustering._memberships(d2, 1.3))


def test_summary_lists_every_question():
    assert [r["question"] for r in ex.summary()] == ["assign", "update", "lloyd", "memberships"]
