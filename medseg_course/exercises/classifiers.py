"""Questions of notebook 04_classifiers: feature stack, labelled pixels, standardisation, the
logistic-regression step, and a train/test split by patient.

Introduced in 04_classifiers.
"""

from __future__ import annotations

import numpy as np

from medseg_course.classical import classifiers as _clf
from medseg_course.classical.features import pixel_features
from medseg_course.exercises.engine import Case, FunctionQuestion, Incorrect, Question, compare_values, describe
from medseg_course.exercises.engine import summary as _summary

NOTEBOOK = "04_classifiers"


def _np(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return value


def _pair(got, what: str, names: str):
    """``got`` as a pair, or Incorrect saying that two things were expected."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Incorrect(f"Your function should return two things, {names}, as a tuple "
                        f"(return {names}), but it returned {describe(got)}.")
    return _np(got[0]), _np(got[1])


# -- 1. the feature stack ------------------------------------------------------------------------

_STACK_FEATURES = ("intensity", "gaussian", "gradient")


def reference_feature_stack(image, sigmas):
    """Intensity, Gaussian smoothing at each sigma, gradient magnitude at each sigma: (F, H, W).

    Parameters
    ----------
    image : (H, W) ndarray
    sigmas : sequence of float

    Returns
    -------
    (1 + 2 * len(sigmas), H, W) ndarray of float32

    Examples
    --------
    >>> reference_feature_stack(np.zeros((8, 10)), [1, 2]).shape
    (5, 8, 10)

    Introduced in 04_classifiers.
    """
    return pixel_features(image, sigmas, features=_STACK_FEATURES)


def _stack_cases(device):
    rng = np.random.default_rng(40)
    yy, xx = np.mgrid[:40, :48]
    blobs = np.exp(-((yy - 14) ** 2 + (xx - 16) ** 2) / 40.0) + np.exp(-((yy - 28) ** 2 + (xx - 34) ** 2) / 20.0)
    yield Case(((blobs + 0.1 * rng.standard_normal(blobs.shape)).astype(np.float32), [1.0, 2.0, 4.0]),
               label="two noisy blobs, sigmas [1, 2, 4]")
    yield Case((rng.random((24, 31)), (1.5, 3.0)), label="a random float64 image, sigmas (1.5, 3)")
    yield Case(((blobs * 200).astype(np.uint8), [2.0]), label="a uint8 image, sigma [2]")


def _compare_stack(got, expected, case):
    image, sigmas = case.args
    n = len(sigmas)
    got = _np(got)
    if isinstance(got, (list, tuple)):
        raise Incorrect(f"Your function returned a {type(got).__name__} of {len(got)} planes; stack them "
                        "into one array of shape (F, H, W) with np.stack(planes).")
    if not isinstance(got, np.ndarray):
        raise Incorrect(f"Your function should return an array of shape {expected.shape}, but it "
                        f"returned {describe(got)}.")
    f, h, w = expected.shape
    if got.shape == (h, w, f):
        raise Incorrect(f"Your stack has shape {got.shape}, that is (H, W, F): the features must come "
                        f"first, (F, H, W) = {expected.shape}. Use np.stack(planes) (axis=0), not "
                        "np.stack(planes, axis=-1) or np.dstack.")
    if got.ndim == 3 and got.shape[1:] == (h, w) and got.shape[0] == f - 1:
        raise Incorrect(f"Your stack has {got.shape[0]} planes but {f} were expected: 1 intensity + "
                        f"{n} Gaussian + {n} gradient. Did you leave out the first plane, the image "
                        "itself?")
    if got.ndim != 3 or got.shape[1:] != (h, w) or got.shape[0] != f:
        raise Incorrect(f"Your stack has shape {got.shape}, but (F, H, W) = {expected.shape} was "
                        f"expected: F = 1 + 2 * len(sigmas) planes of the image's size.")
    if got.dtype.kind != "f":
        raise Incorrect(f"Your stack has dtype {got.dtype}. Filters of an integer image round their "
                        "results to integers: convert the image to float first, "
                        "image = image.astype(np.float32).")
    if not np.all(np.isfinite(got)):
        raise Incorrect("Your stack contains NaN or infinite values.")

    def close(a, b, sl=np.s_[:, :]):
        return np.allclose(a[sl], b[sl], rtol=1e-4, atol=1e-4)

    if all(close(a, b) for a, b in zip(got, expected)):
        return
    matched = [any(close(g, e) for e in expected) for g in got]
    if all(matched):
        raise Incorrect("Each of your planes is right, but they are in the wrong order. The order is: "
                        "the intensity, then the Gaussian at every sigma, then the gradient magnitude "
                        "at every sigma.")
    if not close(got[0], expected[0]):
        raise Incorrect("Your first plane is not the image itself: plane 0 is the intensity, "
                        "unfiltered (as float).")
    border = int(np.ceil(4 * max(sigmas))) + 1
    inner = np.s_[border:-border, border:-border] if min(h, w) > 2 * border + 2 else np.s_[:, :]
    wrong_g = [k for k in range(1, 1 + n) if not close(got[k], expected[k])]
    wrong_d = [k for k in range(1 + n, 1 + 2 * n) if not close(got[k], expected[k])]
    if all(close(got[k], expected[k], inner) for k in wrong_g + wrong_d):
        raise Incorrect("Your planes are right except near the border of the image: use the default "
                        "border mode of scipy.ndimage (mode='reflect'), e.g. "
                        "ndimage.gaussian_filter(image, sigma).")
    if np.asarray(image).dtype.kind in "iu":
        raise Incorrect("Your stack is wrong on the uint8 image only: filters of an integer image "
                        "round their results to integers. Convert the image to float before "
                        "filtering, image = image.astype(np.float32).")
    if wrong_g:
        raise Incorrect(f"Your Gaussian planes (1 to {n}) differ from the expected ones: plane 1 + i "
                        "is ndimage.gaussian_filter(image, sigmas[i]), the image smoothed by a "
                        "Gaussian of standard deviation sigmas[i] (not a filter of that size).")
    raise Incorrect(f"Your intensity and Gaussian planes are right, but the gradient planes "
                    f"({n + 1} to {2 * n}) differ: use ndimage.gaussian_gradient_magnitude(image, "
                    "sigma), the length of the gradient computed with Gaussian derivatives (a "
                    "Sobel filter or np.gradient of the smoothed image gives other values).")


feature_stack = FunctionQuestion(
    NOTEBOOK, "feature_stack", "A feature stack (F, H, W): intensity, Gaussians, gradient magnitudes",
    points=2, reference=reference_feature_stack, cases=_stack_cases, compare=_compare_stack,
    hints=["Make a list of 2D planes: the image (as float), then ndimage.gaussian_filter(image, s) "
           "for each s in sigmas, then ndimage.gaussian_gradient_magnitude(image, s) for each s.",
           "np.stack(planes) stacks along a new first axis and gives (F, H, W)."],
    solution_code='''
    def my_feature_stack(image, sigmas):
        image = np.asarray(image, dtype=np.float32)
        planes = [image]
        planes += [ndimage.gaussian_filter(image, s) for s in sigmas]
        planes += [ndimage.gaussian_gradient_magnitude(image, s) for s in sigmas]
        return np.stack(planes)
    ''',
)


# -- 2. labelled pixels and the design matrix --------------------------------------------------

def reference_training_pixels(features, mask, n_per_class, rng):
    """``n_per_class`` random pixels of each class: their feature rows ``X`` (N, F) and labels ``y``.

    Delegates to :func:`medseg_course.classical.classifiers.training_pixels`.

    Introduced in 04_classifiers.
    """
    return _clf.training_pixels(features, mask, n_per_class, seed=rng)


def _pixels_cases(device):
    rng = np.random.default_rng(41)
    mask = np.zeros((20, 24), np.int64)
    mask[4:12, 5:15] = 1
    yield Case((rng.standard_normal((3, 20, 24)), mask, 15, np.random.default_rng(0)),
               label="F=3 features of a 20x24 image, 15 pixels per class")
    mask2 = np.zeros((30, 26), np.int64)
    mask2[15:, :] = 1
    mask2[2:6, 20:24] = 1
    yield Case((rng.random((5, 30, 26)).astype(np.float32), mask2, 40, np.random.default_rng(1)),
               label="F=5 features of a 30x26 image, 40 pixels per class")


def _compare_pixels(got, expected, case):
    features, mask, n, _ = case.args
    f = features.shape[0]
    X, y = _pair(got, "X, y", "X, y")
    if not isinstance(X, np.ndarray) or not isinstance(y, np.ndarray):
        raise Incorrect(f"X and y should be NumPy arrays, but they are {describe(X)} and {describe(y)}.")
    if X.ndim == 2 and X.shape[0] == f and X.shape[1] == 2 * n and f != 2 * n:
        raise Incorrect(f"X has shape {X.shape}, that is (F, N): transpose it. A design matrix has one "
                        "row per labelled pixel and one column per feature, (N, F).")
    if X.ndim != 2 or X.shape[1] != f:
        raise Incorrect(f"X has shape {X.shape}, but it should be (N, F) with F = {f} columns, one per "
                        "feature plane.")
    if y.shape != (X.shape[0],):
        raise Incorrect(f"y has shape {y.shape}, but it should hold one label per row of X, shape "
                        f"({X.shape[0]},).")
    if X.shape[0] != 2 * n:
        raise Incorrect(f"X has {X.shape[0]} rows, but {n} pixels of each of the 2 classes make "
                        f"{2 * n}.")
    counts = [int(np.sum(y == c)) for c in (0, 1)]
    if counts != [n, n]:
        raise Incorrect(f"y holds {counts[0]} background (0) and {counts[1]} foreground (1) labels; "
                        f"draw exactly n_per_class = {n} pixels of each class.")
    # every row must be the feature vector of one pixel, labelled as in the mask
    table = {tuple(np.round(features[:, r, c].astype(np.float64), 6)): (r, c)
             for r in range(mask.shape[0]) for c in range(mask.shape[1])}
    pixels = []
    for i, row in enumerate(X.astype(np.float64)):
        where = table.get(tuple(np.round(row, 6)))
        if where is None:
            raise Incorrect(f"Row {i} of X is not the feature vector of any pixel. Row k should be "
                            "features[:, r, c] for the k-th drawn pixel (r, c): all F planes at one "
                            "pixel. (features.reshape(-1, F) mixes planes; features.reshape(F, -1).T "
                            "does not.)")
        if mask[where] != y[i]:
            raise Incorrect(f"Row {i} of X comes from pixel {where}, whose label in the mask is "
                            f"{mask[where]}, but y[{i}] = {y[i]}: take the labels from the mask at the "
                            "same pixels.")
        pixels.append(where)
    if len(set(pixels)) != len(pixels):
        raise Incorrect("Some pixels were drawn twice: sample without replacement, "
                        "rng.choice(candidates, n_per_class, replace=False).")
    flat = np.array([r * mask.shape[1] + c for r, c in pixels])
    for c in (0, 1):
        first = np.flatnonzero(mask.ravel() == c)[:n]
        if set(flat[y == c]) == set(first):
            raise Incorrect(f"The pixels of class {c} are the first {n} of that class in reading order "
                            "(the top rows of the image). Draw them at random, with rng.choice, so "
                            "that they cover the whole image.")


training_pixels = FunctionQuestion(
    NOTEBOOK, "training_pixels", "A few labelled pixels: the design matrix X (N, F) and labels y",
    points=2, reference=reference_training_pixels, cases=_pixels_cases, compare=_compare_pixels,
    hints=["For each class c in (0, 1): the flat indices of its pixels are np.flatnonzero(mask.ravel() == c); "
           "draw n_per_class of them with rng.choice(..., n_per_class, replace=False).",
           "features.reshape(F, -1) has one column per pixel (in the order of mask.ravel()); "
           "index its columns with the drawn indices and transpose to get (N, F) rows."],
    solution_code='''
    def my_training_pixels(features, mask, n_per_class, rng):
        flat = features.reshape(features.shape[0], -1)        # (F, H*W)
        labels = np.asarray(mask).ravel()
        chosen = [rng.choice(np.flatnonzero(labels == c), n_per_class, replace=False) for c in (0, 1)]
        index = np.concatenate(chosen)
        return flat[:, index].T, labels[index]
    ''',
)


# -- 3. standardisation ------------------------------------------------------------------------

def _standardize_cases(device):
    rng = np.random.default_rng(42)
    scales = np.array([1.0, 0.01, 250.0, 3.0])
    X_train = rng.standard_normal((60, 4)) * scales + np.array([0.5, 0.02, 800.0, -2.0])
    X_test = rng.standard_normal((25, 4)) * scales * 1.5 + np.array([0.8, 0.0, 1000.0, 0.0])
    yield Case((X_train, X_test), label="4 features on very different scales")
    X2 = rng.random((40, 3)).astype(np.float32)
    X2[:, 1] = 7.0
    yield Case((X2, rng.random((10, 3)).astype(np.float32) + 1.0), label="a constant feature (column 1)")


def _compare_standardize(got, expected, case):
    X_train, X_test = (np.asarray(a, dtype=np.float64) for a in case.args)
    Z_train, Z_test = _pair(got, "Z_train, Z_test", "Z_train, Z_test")
    for name, z, ref in (("Z_train", Z_train, expected[0]), ("Z_test", Z_test, expected[1])):
        if not isinstance(z, np.ndarray) or z.shape != ref.shape:
            raise Incorrect(f"{name} should be an array of shape {ref.shape}, but it is {describe(z)}.")
        if z.dtype.kind != "f":
            raise Incorrect(f"{name} has dtype {z.dtype}; standardised features are floats.")
    if not (np.all(np.isfinite(Z_train)) and np.all(np.isfinite(Z_test))):
        raise Incorrect("Your result contains NaN or infinite values. A constant feature has standard "
                        "deviation 0: divide by 1 there instead (it is then only centred), e.g. "
                        "std = np.where(std > 0, std, 1.0).")
    if np.allclose(Z_train, X_train) and np.allclose(Z_test, X_test):
        raise Incorrect("Your function returns the features unchanged: subtract the mean of each "
                        "feature and divide by its standard deviation.")
    if np.allclose(Z_train, expected[0], rtol=1e-4, atol=1e-5):
        mu, sd = X_test.mean(0), X_test.std(0)
        own = (X_test - mu) / np.where(sd > 0, sd, 1.0)
        if np.allclose(Z_test, own, rtol=1e-4, atol=1e-5) and not np.allclose(own, expected[1]):
            raise Incorrect("Z_test was standardised with the test rows' own mean and standard "
                            "deviation. Use the training statistics for both: the classifier's weights "
                            "were fitted on that scale, and the test data must not decide its own "
                            "scaling (with one test image, its own statistics hide exactly the "
                            "differences you want to measure).")
    for axis, what in ((1, "per row (axis=1)"), (None, "over the whole matrix")):
        mu, sd = X_train.mean(axis=axis, keepdims=True), X_train.std(axis=axis, keepdims=True)
        if np.allclose(Z_train, (X_train - mu) / np.where(sd > 0, sd, 1.0), rtol=1e-4, atol=1e-5):
            raise Incorrect(f"You computed the mean and standard deviation {what}. Standardise each "
                            "feature (each column) on its own: X_train.mean(axis=0), "
                            "X_train.std(axis=0).")
    compare_values(Z_train, expected[0], what="Z_train", rtol=1e-4, atol=1e-5)
    compare_values(Z_test, expected[1], what="Z_test", rtol=1e-4, atol=1e-5)


standardize = FunctionQuestion(
    NOTEBOOK, "standardize", "Standardise features with the training statistics", points=2,
    reference=_clf.standardize, cases=_standardize_cases, compare=_compare_standardize,
    hints=["One mean and one standard deviation per feature (column) of X_train: axis=0.",
           "Apply the same two vectors to X_test. Where the standard deviation is 0, divide by 1."],
    solution_code='''
    def my_standardize(X_train, X_test):
        mean = X_train.mean(axis=0)
        std = X_train.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        return (X_train - mean) / std, (X_test - mean) / std
    ''',
)


# -- 4. one step of gradient descent -----------------------------------------------------------

def _step_cases(device):
    rng = np.random.default_rng(43)
    X = rng.standard_normal((50, 3))
    y = (X[:, 0] - X[:, 2] + 0.3 * rng.standard_normal(50) > 0).astype(np.int64)
    yield Case((np.zeros(3), 0.0, X, y, 0.5, 0.0), label="from zero weights, lr=0.5, l2=0")
    w = np.array([0.8, -0.3, -1.1])
    yield Case((w, 0.4, X, y, 0.1, 0.0), label="from w = [0.8, -0.3, -1.1], b = 0.4, lr=0.1")
    X2 = rng.standard_normal((80, 4))
    y2 = (X2.sum(1) > 0.5).astype(np.int64)
    yield Case((np.array([0.5, 0.5, -0.2, 1.0]), -0.3, X2, y2, 0.2, 0.1),
               label="with an L2 penalty l2=0.1")


def _compare_step(got, expected, case):
    w, b, X, y, lr, l2 = case.args
    w_new, b_new = _pair(got, "w_new, b_new", "w_new, b_new")
    w_exp, b_exp = expected
    if not isinstance(w_new, np.ndarray) or w_new.shape != w_exp.shape:
        raise Incorrect(f"w_new should be an array of shape {w_exp.shape}, one weight per feature, but "
                        f"it is {describe(w_new)}.")
    try:
        b_val = float(np.asarray(b_new).reshape(()))
    except (TypeError, ValueError):
        raise Incorrect(f"b_new should be one number, but it is {describe(b_new)}.") from None
    if np.allclose(w_new, w_exp, rtol=1e-5, atol=1e-7) and np.isclose(b_val, b_exp, rtol=1e-5, atol=1e-7):
        return
    n = X.shape[0]
    z = X @ w + b
    p = 1.0 / (1.0 + np.exp(-z))
    gw, gb = X.T @ (p - y) / n + l2 * w, float(np.mean(p - y))

    def is_(w_try, b_try):
        return np.allclose(w_new, w_try, rtol=1e-5, atol=1e-7) and np.isclose(b_val, b_try, rtol=1e-5, atol=1e-7)

    if is_(w + lr * gw, b + lr * gb) or is_(w + lr * (X.T @ (p - y) / n - l2 * w), b + lr * gb):
        raise Incorrect("You stepped up the gradient, which raises the loss. Gradient descent "
                        "subtracts it: w - lr * grad_w (with grad_w = X.T @ (p - y) / N + l2 * w).")
    if is_(w - lr * (X.T @ (p - y) + l2 * w), b - lr * np.sum(p - y)) or \
            is_(w - lr * (X.T @ (p - y) + n * l2 * w), b - lr * np.sum(p - y)):
        raise Incorrect(f"Your step is N = {n} times too large: the loss is the mean over the rows, "
                        "so its gradient is X.T @ (p - y) / N (use .mean() for the bias).")
    gz = X.T @ (z - y) / n + l2 * w
    if is_(w - lr * gz, b - lr * np.mean(z - y)):
        raise Incorrect("You used the logit z = X @ w + b in place of the probability. The error of "
                        "each row is p - y with p = 1 / (1 + np.exp(-z)), the sigmoid of z.")
    if l2 and is_(w - lr * (gw - l2 * w), b - lr * gb):
        raise Incorrect("You left out the L2 penalty: its gradient adds l2 * w to grad_w.")
    if l2 and is_(w - lr * gw, b - lr * (gb + l2 * b)):
        raise Incorrect("You penalised the bias too. The L2 term is l2 / 2 * ||w||^2, on the weights "
                        "only: grad_b is just np.mean(p - y).")
    if np.allclose(w_new, w_exp, rtol=1e-5, atol=1e-7):
        raise Incorrect("Your weights are right but the bias is not: b_new = b - lr * np.mean(p - y).")
    raise Incorrect("Your step gives other weights than expected. Compute p = sigmoid(X @ w + b), "
                    "then grad_w = X.T @ (p - y) / N + l2 * w and grad_b = mean(p - y), and return "
                    "(w - lr * grad_w, b - lr * grad_b).")


logistic_step = FunctionQuestion(
    NOTEBOOK, "logistic_step", "One gradient-descent step of logistic regression", points=3,
    reference=_clf.logistic_step, cases=_step_cases, compare=_compare_step,
    hints=["p = 1 / (1 + np.exp(-(X @ w + b))) is the predicted probability of each row; p - y is its error.",
           "grad_w = X.T @ (p - y) / len(y) + l2 * w; grad_b = np.mean(p - y); then step against them."],
    solution_code='''
    def my_logistic_step(w, b, X, y, lr, l2=0.0):
        p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
        grad_w = X.T @ (p - y) / len(y) + l2 * w
        grad_b = np.mean(p - y)
        return w - lr * grad_w, b - lr * grad_b
    ''',
)


# -- 5. a split by patient ---------------------------------------------------------------------

def reference_split_by_patient(patients, n_train, rng):
    """Indices of the training and test slices, ``n_train`` random patients in training.

    Delegates to :func:`medseg_course.classical.classifiers.split_by_group`.

    Introduced in 04_classifiers.
    """
    return _clf.split_by_group(patients, n_train, seed=rng)


def _split_cases(device):
    rng = np.random.default_rng(44)
    # lists, as the notebook builds them (the engine's in-place check compares arrays numerically)
    patients = np.repeat([f"hippocampus_{i:03d}" for i in (1, 3, 4, 6, 7, 8)], [5, 7, 4, 6, 5, 8])
    yield Case((patients.tolist(), 2, np.random.default_rng(0)), label="34 slices of 6 patients, 2 for training")
    shuffled = rng.permutation(np.repeat(["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"], 4))
    yield Case((shuffled.tolist(), 5, np.random.default_rng(1)),
               label="32 slices of 8 patients in shuffled order, 5 for training")


def _compare_split(got, expected, case):
    patients, n_train, _ = case.args
    patients = np.asarray(patients)
    train, test = _pair(got, "train_idx, test_idx", "train_idx, test_idx")
    try:
        train = np.asarray(train).ravel()
        test = np.asarray(test).ravel()
    except Exception:  # noqa: BLE001 - reported below
        raise Incorrect("train_idx and test_idx should be arrays of slice indices.") from None
    if train.dtype == bool or test.dtype == bool:
        raise Incorrect("Return indices (np.flatnonzero(in_train)), not boolean masks.")
    if train.dtype.kind not in "iu" or test.dtype.kind not in "iu":
        raise Incorrect(f"train_idx and test_idx should hold integer indices, got dtypes {train.dtype} "
                        f"and {test.dtype}.")
    both = np.concatenate([train, test])
    if both.size and (both.min() < 0 or both.max() >= patients.size):
        raise Incorrect(f"Some indices fall outside 0..{patients.size - 1}.")
    if sorted(both.tolist()) != list(range(patients.size)):
        raise Incorrect(f"Every slice must be in exactly one of the two sets: there are {patients.size} "
                        f"slices, and your sets hold {train.size} + {test.size} indices "
                        f"({np.unique(both).size} distinct).")
    shared = sorted(set(patients[train]) & set(patients[test]))
    if shared:
        raise Incorrect(f"Patient {shared[0]} has slices in both the training and the test set "
                        f"({len(shared)} patient(s) are shared). That is leakage: the test then "
                        "measures how well the classifier remembers those patients, not how it does "
                        "on new ones. Choose the training patients first, then give each set all the "
                        "slices of its patients.")
    n_got = np.unique(patients[train]).size
    if n_got != n_train:
        raise Incorrect(f"Your training set holds the slices of {n_got} patients, but n_train = "
                        f"{n_train} patients were asked for.")


split_by_patient = FunctionQuestion(
    NOTEBOOK, "split_by_patient", "A train/test split by patient, without leakage", points=2,
    reference=reference_split_by_patient, cases=_split_cases, compare=_compare_split,
    hints=["Work with the distinct patients, np.unique(patients): choose n_train of them with "
           "rng.choice(..., n_train, replace=False).",
           "np.isin(patients, chosen) marks the training slices; np.flatnonzero turns a mask into indices."],
    solution_code='''
    def my_split_by_patient(patients, n_train, rng):
        patients = np.asarray(patients)
        chosen = rng.choice(np.unique(patients), n_train, replace=False)
        in_train = np.isin(patients, chosen)
        return np.flatnonzero(in_train), np.flatnonzero(~in_train)
    ''',
)

QUESTIONS: list[Question] = [feature_stack, training_pixels, standardize, logistic_step, split_by_patient]


def summary():
    """Show this notebook's progress table. Introduced in 04_classifiers."""
    return _summary(QUESTIONS)
