"""Questions of 04_classifiers: references pass, typical wrong answers fail with their message."""

import numpy as np
import pytest
from scipy import ndimage

from medseg_course.exercises import Outcome
from medseg_course.exercises import classifiers as ex


def _solution(question, name):
    namespace = {"np": np, "ndimage": ndimage}
    exec(question.solution_code, namespace)
    return namespace[name]


CASES = [
    (ex.feature_stack, "my_feature_stack"),
    (ex.training_pixels, "my_training_pixels"),
    (ex.standardize, "my_standardize"),
    (ex.logistic_step, "my_logistic_step"),
    (ex.split_by_patient, "my_split_by_patient"),
]


@pytest.mark.parametrize("question, name", CASES, ids=[c[1] for c in CASES])
def test_reference_and_solution_text_pass(question, name):
    assert question.check(question.reference).outcome is Outcome.CORRECT
    assert question.check(_solution(question, name)).outcome is Outcome.CORRECT


def test_stub_is_not_attempted():
    def stub(*args):
        raise NotImplementedError

    for question, _ in CASES:
        assert question.check(stub).outcome is Outcome.NOT_ATTEMPTED


# -- typical wrong answers -----------------------------------------------------------------------

def _planes(image, sigmas, gradient=ndimage.gaussian_gradient_magnitude, smooth=ndimage.gaussian_filter,
            intensity=True):
    image = np.asarray(image, dtype=np.float32)
    planes = [image] if intensity else []
    planes += [smooth(image, s) for s in sigmas]
    planes += [gradient(image, s) for s in sigmas]
    return planes


def _sobel_of_smoothed(image, s):
    g = ndimage.gaussian_filter(image, s)
    return np.hypot(ndimage.sobel(g, 0), ndimage.sobel(g, 1))


def _interleaved(image, sigmas):
    image = np.asarray(image, dtype=np.float32)
    planes = [image]
    for s in sigmas:
        planes += [ndimage.gaussian_filter(image, s), ndimage.gaussian_gradient_magnitude(image, s)]
    return np.stack(planes)


WRONG_STACKS = [
    (lambda im, s: np.stack(_planes(im, s), axis=-1), "(H, W, F)"),
    (lambda im, s: _planes(im, s), "stack them"),
    (lambda im, s: np.stack(_planes(im, s, intensity=False)), "leave out the first plane"),
    (_interleaved, "wrong order"),
    (lambda im, s: np.stack(_planes(im, s, gradient=_sobel_of_smoothed)), "gradient planes"),
    (lambda im, s: np.stack(_planes(im, s, smooth=lambda a, x: ndimage.uniform_filter(a, int(2 * x + 1)))),
     "Gaussian planes"),
    (lambda im, s: np.stack(_planes(im, s, smooth=lambda a, x: ndimage.gaussian_filter(a, x, mode="nearest"),
                                    gradient=lambda a, x: ndimage.gaussian_gradient_magnitude(a, x, mode="nearest"))),
     "near the border"),
    (lambda im, s: np.stack([im] + [ndimage.gaussian_filter(im, x) for x in s]
                            + [ndimage.gaussian_gradient_magnitude(im, x) for x in s]), "convert the image to float"),
]


@pytest.mark.parametrize("wrong, message", WRONG_STACKS, ids=[m for _, m in WRONG_STACKS])
def test_feature_stack_mistakes(wrong, message):
    result = ex.feature_stack.check(wrong)
    assert result.outcome is Outcome.INCORRECT
    assert message in result.message


def _pixels_transposed(features, mask, n, rng):
    X, y = ex.reference_training_pixels(features, mask, n, rng)
    return X.T, y


def _pixels_bad_reshape(features, mask, n, rng):
    X, y = ex.reference_training_pixels(features, mask, n, rng)
    flat = features.reshape(-1, features.shape[0])          # mixes planes
    labels = mask.ravel()
    index = np.concatenate([rng.choice(np.flatnonzero(labels == c), n, replace=False) for c in (0, 1)])
    return flat[index], labels[index]


def _pixels_first(features, mask, n, rng):
    labels = mask.ravel()
    index = np.concatenate([np.flatnonzero(labels == c)[:n] for c in (0, 1)])
    return features.reshape(features.shape[0], -1)[:, index].T, labels[index]


def _pixels_replace(features, mask, n, rng):
    labels = mask.ravel()
    index = np.concatenate([rng.choice(np.flatnonzero(labels == c)[:5], n, replace=True) for c in (0, 1)])
    return features.reshape(features.shape[0], -1)[:, index].T, labels[index]


def _pixels_wrong_labels(features, mask, n, rng):
    X, y = ex.reference_training_pixels(features, mask, n, rng)
    return X, y[::-1].copy()


def _pixels_unbalanced(features, mask, n, rng):
    labels = mask.ravel()
    index = rng.choice(labels.size, 2 * n, replace=False)
    return features.reshape(features.shape[0], -1)[:, index].T, labels[index]


WRONG_PIXELS = [
    (_pixels_transposed, "(F, N): transpose"),
    (_pixels_bad_reshape, "not the feature vector of any pixel"),
    (_pixels_first, "reading order"),
    (_pixels_replace, "drawn twice"),
    (_pixels_wrong_labels, "take the labels from the mask"),
    (_pixels_unbalanced, "exactly n_per_class"),
    (lambda f, m, n, rng: ex.reference_training_pixels(f, m, n, rng)[0], "two things"),
]


@pytest.mark.parametrize("wrong, message", WRONG_PIXELS, ids=[m for _, m in WRONG_PIXELS])
def test_training_pixels_mistakes(wrong, message):
    result = ex.training_pixels.check(wrong)
    assert result.outcome is Outcome.INCORRECT
    assert message in result.message


def _safe(sd):
    return np.where(sd > 0, sd, 1.0)


WRONG_STANDARDIZE = [
    (lambda a, b: (a, b), "unchanged"),
    (lambda a, b: ((a - a.mean(0)) / a.std(0), (b - a.mean(0)) / a.std(0)), "NaN or infinite"),
    (lambda a, b: ((a - a.mean(0)) / _safe(a.std(0)), (b - b.mean(0)) / _safe(b.std(0))), "own mean"),
    (lambda a, b: ((a - a.mean(1, keepdims=True)) / a.std(1, keepdims=True),
                   (b - b.mean(1, keepdims=True)) / b.std(1, keepdims=True)), "per row"),
    (lambda a, b: ((a - a.mean()) / a.std(), (b - a.mean()) / a.std()), "whole matrix"),
    (lambda a, b: (a - a.mean(0)) / _safe(a.std(0)), "two things"),
]


@pytest.mark.parametrize("wrong, message", WRONG_STANDARDIZE, ids=[m for _, m in WRONG_STANDARDIZE])
def test_standardize_mistakes(wrong, message):
    with np.errstate(all="ignore"):
        result = ex.standardize.check(wrong)
    assert result.outcome is Outcome.INCORRECT
    assert message in result.message


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


WRONG_STEPS = [
    (lambda w, b, X, y, lr, l2=0.0: (w + lr * (X.T @ (_sig(X @ w + b) - y) / len(y) + l2 * w),
                                     b + lr * np.mean(_sig(X @ w + b) - y)), "stepped up the gradient"),
    (lambda w, b, X, y, lr, l2=0.0: (w - lr * (X.T @ (y - _sig(X @ w + b)) / len(y) - l2 * w),
                                     b - lr * np.mean(y - _sig(X @ w + b))), "stepped up the gradient"),
    (lambda w, b, X, y, lr, l2=0.0: (w - lr * (X.T @ (_sig(X @ w + b) - y) + l2 * w),
                                     b - lr * np.sum(_sig(X @ w + b) - y)), "times too large"),
    (lambda w, b, X, y, lr, l2=0.0: (w - lr * (X.T @ (X @ w + b - y) / len(y) + l2 * w),
                                     b - lr * np.mean(X @ w + b - y)), "sigmoid"),
    (lambda w, b, X, y, lr, l2=0.0: (w - lr * (X.T @ (_sig(X @ w + b) - y) / len(y)),
                                     b - lr * np.mean(_sig(X @ w + b) - y)), "left out the L2 penalty"),
    (lambda w, b, X, y, lr, l2=0.0: (w - lr * (X.T @ (_sig(X @ w + b) - y) / len(y) + l2 * w),
                                     b - lr * (np.mean(_sig(X @ w + b) - y) + l2 * b)), "penalised the bias"),
    (lambda w, b, X, y, lr, l2=0.0: (w - lr * (X.T @ (_sig(X @ w + b) - y) / len(y) + l2 * w), b),
     "bias is not"),
    (lambda w, b, X, y, lr, l2=0.0: w, "two things"),
]


@pytest.mark.parametrize("wrong, message", WRONG_STEPS, ids=[f"{i}-{m}" for i, (_, m) in enumerate(WRONG_STEPS)])
def test_logistic_step_mistakes(wrong, message):
    result = ex.logistic_step.check(wrong)
    assert result.outcome is Outcome.INCORRECT
    assert message in result.message


def _split_random_slices(patients, n_train, rng):
    perm = rng.permutation(len(patients))
    k = len(patients) // 2
    return np.sort(perm[:k]), np.sort(perm[k:])


def _split_masks(patients, n_train, rng):
    patients = np.asarray(patients)
    in_train = np.isin(patients, rng.choice(np.unique(patients), n_train, replace=False))
    return in_train, ~in_train


def _split_wrong_count(patients, n_train, rng):
    patients = np.asarray(patients)
    in_train = np.isin(patients, rng.choice(np.unique(patients), n_train + 1, replace=False))
    return np.flatnonzero(in_train), np.flatnonzero(~in_train)


def _split_drop(patients, n_train, rng):
    train, test = ex.reference_split_by_patient(patients, n_train, rng)
    return train, test[1:]


WRONG_SPLITS = [
    (_split_random_slices, "leakage"),
    (_split_masks, "not boolean masks"),
    (_split_wrong_count, "were asked for"),
    (_split_drop, "exactly one of the two sets"),
]


@pytest.mark.parametrize("wrong, message", WRONG_SPLITS, ids=[m for _, m in WRONG_SPLITS])
def test_split_mistakes(wrong, message):
    result = ex.split_by_patient.check(wrong)
    assert result.outcome is Outcome.INCORRECT
    assert message in result.message


def test_summary_lists_every_question_in_notebook_order():
    assert [r["question"] for r in ex.summary()] == [
        "feature_stack", "training_pixels", "standardize", "logistic_step", "split_by_patient"]


def test_feature_stack_rounded_integer_filters():
    def late_float(image, sigmas):
        return np.stack([image] + [ndimage.gaussian_filter(image, s) for s in sigmas]
                        + [ndimage.gaussian_gradient_magnitude(image, s) for s in sigmas]).astype(np.float32)

    result = ex.feature_stack.check(late_float)
    assert result.outcome is Outcome.INCORRECT
    assert "integer image" in result.message
