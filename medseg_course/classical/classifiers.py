"""Pixel classifiers: hand-made features, a few labelled pixels, and a classifier per pixel.

The recipe of ilastik [1]_ and of the Trainable Weka Segmentation: describe every pixel by a
vector of filter responses (:mod:`medseg_course.classical.features`), label a few pixels of each
class (scribbles), train a classifier on those rows, and predict every pixel of new images.

This module holds the pieces, each small enough to read:

* :func:`sample_pixels` and :func:`training_pixels`: a few labelled pixels per class, seeded,
  and the ``(N, F)`` design matrix with its ``(N,)`` labels;
* :func:`standardize`: zero mean and unit variance with the *training* statistics;
* :class:`LogisticRegression`: binary logistic regression written in NumPy, trained by
  gradient descent (:func:`logistic_step` is one step) with Nesterov momentum;
* :class:`GaussianNaiveBayes`: the generative alternative, in NumPy;
* :class:`PixelClassifier`, :func:`fit_pixel_classifier`, :func:`segment_pixel_classifier`:
  the whole pipeline on DSB2018-like samples (one model per image modality by default);
* :func:`split_by_group` and :func:`volume_slices`: train/test splits by patient, and 2D
  slices of 3D volumes.

scikit-learn is not needed here; any estimator with ``fit`` and ``predict_proba`` (a
``sklearn.ensemble.RandomForestClassifier``, say) can be plugged into
:func:`fit_pixel_classifier`.

Introduced in 04_classifiers.

References
----------
.. [1] Berg et al. "ilastik: interactive machine learning for (bio)image analysis", Nature
   Methods 16, 1226-1232, 2019. doi:10.1038/s41592-019-0582-9
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from medseg_course.classical.features import (
    DEFAULT_FEATURES,
    DEFAULT_SIGMAS,
    _check_features,
    _check_sigmas,
    feature_families,
    feature_names,
    pixel_features,
)

__all__ = [
    "DEFAULT_N_PER_CLASS",
    "GaussianNaiveBayes",
    "LogisticRegression",
    "PixelClassifier",
    "default_pixel_classifier",
    "fit_pixel_classifier",
    "logistic_loss",
    "logistic_step",
    "match_channels",
    "sample_pixels",
    "segment_pixel_classifier",
    "split_by_group",
    "standardize",
    "training_pixels",
    "volume_slices",
]

#: Labelled pixels drawn per class and per training image by default.
DEFAULT_N_PER_CLASS = 100
#: Luminance weights (ITU-R BT.709), the same as the DSB2018 loader's ``channels=1``.
_RGB_TO_GRAY = np.array([0.2125, 0.7154, 0.0721], dtype=np.float32)
_SEED_HELP = "pass an int (repeatable), a numpy.random.Generator, or None"
#: Pixels classified at once by PixelClassifier.predict_proba (bounds the memory of a large image).
_CHUNK = 65536


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _rng(seed, name: str = "seed") -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng(int(np.random.randint(0, 2**63 - 1, dtype=np.int64)))
    if isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0:
        return np.random.default_rng(int(seed))
    raise TypeError(f"{name} must be None, a non-negative int or a numpy.random.Generator, got "
                    f"{type(seed).__name__} {seed!r}; {_SEED_HELP}")


def _check_positive_int(value, name: str, fix: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}" + (f"; {fix}" if fix else ""))
    return int(value)


def _check_nonneg(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_mask(mask, name: str = "mask") -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype.kind not in "biu":
        raise TypeError(f"{name} must be a boolean or integer label map, got dtype {arr.dtype}; "
                        f"threshold probabilities first, e.g. {name} > 0.5")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2D (H, W), got shape {arr.shape}")
    return arr


def _check_design(X, name: str = "X") -> np.ndarray:
    arr = np.asarray(X)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a numeric (N, F) array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2D (N samples, F features), got shape {arr.shape}; "
                         f"a feature stack (F, H, W) becomes one with {name}.reshape(F, -1).T")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; check the features that made it")
    return arr.astype(np.float64, copy=False)


def _check_binary_labels(y, n: int, name: str = "y") -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must be 1D with one label per row of X ({n}), got shape {arr.shape}")
    if arr.dtype.kind not in "biuf" or not np.all(np.isin(arr, (0, 1))):
        raise ValueError(f"{name} must hold the labels 0 and 1 only, got values "
                         f"{np.unique(arr)[:5].tolist()}; for a label map use y > 0")
    arr = arr.astype(np.float64)
    if arr.min() == arr.max():
        raise ValueError(f"{name} holds one class only ({int(arr[0])}); a classifier needs labelled "
                         "pixels of both classes")
    return arr


# --------------------------------------------------------------------------------------------
# labelled pixels and the design matrix
# --------------------------------------------------------------------------------------------
def sample_pixels(mask, n_per_class: int = DEFAULT_N_PER_CLASS, *, seed=None):
    """Draw a few labelled pixels of each class of a mask, at random positions (seeded).

    This stands in for a person's scribbles: a handful of pixels per class, not a full mask.

    Parameters
    ----------
    mask : (H, W) bool or int ndarray
        The labels (binary mask or label map).
    n_per_class : int
        Pixels drawn per class present in ``mask``, without replacement; a class with fewer
        pixels gives all of them.
    seed : None, int or numpy.random.Generator
        Random seed.

    Returns
    -------
    coords : (N, 2) ndarray of int64
        ``(row, column)`` of each drawn pixel, class by class in increasing label order.
    labels : (N,) ndarray of int64
        ``mask`` at those pixels.

    Examples
    --------
    >>> mask = np.zeros((10, 10), int); mask[2:5, 2:5] = 1      # 9 foreground pixels
    >>> coords, labels = sample_pixels(mask, 4, seed=0)
    >>> coords.shape, labels.tolist()
    ((8, 2), [0, 0, 0, 0, 1, 1, 1, 1])
    >>> bool(np.all(mask[coords[:, 0], coords[:, 1]] == labels))
    True

    Introduced in 04_classifiers.
    """
    mask = _check_mask(mask)
    n_per_class = _check_positive_int(n_per_class, "n_per_class")
    rng = _rng(seed)
    flat = mask.ravel()
    if flat.dtype == bool:
        flat = flat.astype(np.int64)
    picked = []
    for label in np.unique(flat):
        where = np.flatnonzero(flat == label)
        take = where if where.size <= n_per_class else rng.choice(where, n_per_class, replace=False)
        picked.append(np.sort(take))
    index = np.concatenate(picked)
    coords = np.stack(np.unravel_index(index, mask.shape), axis=1).astype(np.int64)
    return coords, flat[index].astype(np.int64)


def training_pixels(features, mask, n_per_class: int = DEFAULT_N_PER_CLASS, *, seed=None):
    """The design matrix of a few labelled pixels: their feature vectors and labels.

    Parameters
    ----------
    features : (F, H, W) ndarray
        A feature stack (:func:`~medseg_course.classical.features.pixel_features`).
    mask : (H, W) bool or int ndarray
        The labels.
    n_per_class : int
        Pixels drawn per class (see :func:`sample_pixels`).
    seed : None, int or numpy.random.Generator
        Random seed.

    Returns
    -------
    X : (N, F) ndarray
        One row per labelled pixel, one column per feature (the layout every classifier of
        NumPy and scikit-learn expects: samples first).
    y : (N,) ndarray of int64
        The label of each row.

    Examples
    --------
    >>> features = np.arange(2 * 4 * 5, dtype=float).reshape(2, 4, 5)   # F=2 planes
    >>> mask = np.zeros((4, 5), int); mask[0, :2] = 1
    >>> X, y = training_pixels(features, mask, 2, seed=0)
    >>> X.shape, y.tolist()
    ((4, 2), [0, 0, 1, 1])
    >>> X[y == 1].tolist()          # the pixels (0, 0) and (0, 1) of both planes
    [[0.0, 20.0], [1.0, 21.0]]

    Introduced in 04_classifiers.
    """
    feats = np.asarray(features)
    if feats.ndim != 3:
        raise ValueError(f"features must be a (F, H, W) stack, got shape {feats.shape}")
    mask = _check_mask(mask)
    if feats.shape[1:] != mask.shape:
        hint = ""
        if feats.shape[:2] == mask.shape:
            hint = "; it looks like (H, W, F): pass np.moveaxis(features, -1, 0)"
        raise ValueError(f"features (F, H, W) = {feats.shape} and mask {mask.shape} must cover the "
                         f"same pixels{hint}")
    coords, labels = sample_pixels(mask, n_per_class, seed=seed)
    return feats[:, coords[:, 0], coords[:, 1]].T, labels


def standardize(X_train, X_test, *, eps: float = 1e-12):
    """Scale every feature to zero mean and unit variance, with the training rows' statistics.

    Parameters
    ----------
    X_train : (N, F) ndarray
        Training rows; their per-feature mean and standard deviation are computed.
    X_test : (M, F) ndarray
        Other rows (test pixels, a whole image), transformed with the *same* mean and standard
        deviation: the test data must not decide its own scaling.
    eps : float
        A feature whose standard deviation is at most ``eps`` (constant) is only centred
        (divided by 1), as scikit-learn's ``StandardScaler`` does.

    Returns
    -------
    Z_train : (N, F) ndarray of float64
    Z_test : (M, F) ndarray of float64

    Notes
    -----
    Why: features live on very different scales (an intensity in ``[0, 1]``, a gradient of a
    few hundredths, a raw MRI intensity of thousands). Gradient descent takes one step size for
    all weights, so it crawls along the small-scale features; L2 regularisation penalises the
    weights of small-scale features more; distances (k-NN, k-means) are dominated by the
    large-scale ones. Trees and naive Bayes do not care.

    Examples
    --------
    >>> X_train = np.array([[0.0, 10.0], [2.0, 10.0]])
    >>> Z_train, Z_test = standardize(X_train, np.array([[1.0, 12.0]]))
    >>> Z_train.tolist(), Z_test.tolist()       # the constant column is only centred
    ([[-1.0, 0.0], [1.0, 0.0]], [[0.0, 2.0]])

    Introduced in 04_classifiers.
    """
    train = _check_design(X_train, "X_train")
    test = _check_design(X_test, "X_test")
    if test.shape[1] != train.shape[1]:
        raise ValueError(f"X_test must have the {train.shape[1]} features of X_train, got shape "
                         f"{test.shape}")
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std = np.where(std > eps, std, 1.0)
    return (train - mean) / std, (test - mean) / std


# --------------------------------------------------------------------------------------------
# logistic regression in NumPy
# --------------------------------------------------------------------------------------------
def _one_blas_thread():
    """A context that runs BLAS on one thread, where threadpoolctl is installed (it comes with
    scikit-learn). The matrix-vector products of gradient descent are too small to gain from
    threads, and on a shared machine waiting threads make them several times slower."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _sigmoid(z):
    # exp of a non-positive number only: no overflow for either sign
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logistic_loss(w, b, X, y, l2: float = 0.0) -> float:
    """Mean cross-entropy of a logistic model, plus ``l2 / 2 * ||w||**2``.

    Parameters
    ----------
    w : (F,) ndarray
        Weights.
    b : float
        Bias (intercept); not penalised.
    X : (N, F) ndarray
        Feature rows.
    y : (N,) ndarray of 0 and 1
        Labels.
    l2 : float
        Strength of the L2 penalty, ``>= 0``.

    Returns
    -------
    float
        ``mean(log(1 + exp(z)) - y * z) + l2 / 2 * w @ w`` with ``z = X @ w + b`` (computed
        without overflow).

    Examples
    --------
    >>> round(logistic_loss(np.zeros(2), 0.0, np.ones((4, 2)), np.array([0, 1, 0, 1])), 4)  # log 2
    0.6931

    Introduced in 04_classifiers.
    """
    X = _check_design(X)
    y = np.asarray(y, dtype=np.float64)
    z = X @ np.asarray(w, dtype=np.float64) + float(b)
    w = np.asarray(w, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * (w @ w))


def logistic_step(w, b, X, y, lr: float, l2: float = 0.0):
    """One gradient-descent step on :func:`logistic_loss`.

    Parameters
    ----------
    w : (F,) ndarray
        Current weights.
    b : float
        Current bias.
    X : (N, F) ndarray
        Feature rows (standardised: see :func:`standardize`).
    y : (N,) ndarray of 0 and 1
        Labels.
    lr : float
        Step size (learning rate), ``> 0``.
    l2 : float
        L2 penalty on ``w`` (not on ``b``), ``>= 0``.

    Returns
    -------
    w_new : (F,) ndarray of float64
        ``w - lr * (X.T @ (p - y) / N + l2 * w)``, with ``p = sigmoid(X @ w + b)``.
    b_new : float
        ``b - lr * mean(p - y)``.

    Notes
    -----
    The gradient of the mean cross-entropy is ``X.T @ (p - y) / N``: each row pulls the
    weights towards its features, in proportion to how wrong its predicted probability ``p``
    is. Stepping *against* the gradient lowers the loss when ``lr`` is small enough; with
    standardised features ``lr = 1`` is safe for the unpenalised loss, since its curvature is
    at most ``0.25 * largest eigenvalue of X.T @ X / N``.

    Examples
    --------
    >>> X = np.array([[-1.0], [1.0]]); y = np.array([0, 1])
    >>> w, b = logistic_step(np.zeros(1), 0.0, X, y, lr=1.0)
    >>> w.tolist(), b        # p = 0.5 everywhere: the step moves w towards the positive row
    ([0.5], 0.0)

    Introduced in 04_classifiers.
    """
    X = _check_design(X)
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (X.shape[1],):
        raise ValueError(f"w must have one weight per feature ({X.shape[1]},), got shape {w.shape}")
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have one label per row of X ({X.shape[0]},), got shape {y.shape}")
    if isinstance(lr, bool) or not isinstance(lr, Real) or not lr > 0:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    error = _sigmoid(X @ w + float(b)) - y          # (N,): how wrong each prediction is
    grad_w = X.T @ error / X.shape[0] + l2 * w       # (F,)
    grad_b = float(error.mean())
    return w - lr * grad_w, float(b) - lr * grad_b


class LogisticRegression:
    """Binary logistic regression in NumPy, trained by gradient descent.

    Minimises :func:`logistic_loss` (mean cross-entropy plus ``l2 / 2 * ||w||**2``, the bias
    not penalised), the same objective as scikit-learn's
    ``LogisticRegression(C=1 / (l2 * N))``.

    Parameters
    ----------
    l2 : float
        L2 penalty, ``>= 0``; a little (the default ``1e-3``) keeps the weights finite when the
        classes are separable, as they often are with a few labelled pixels.
    max_iter : int
        Most gradient steps.
    tol : float
        Stop when the largest component of the gradient falls below ``tol``.

    Attributes
    ----------
    coef_ : (F,) ndarray
        Weights after :meth:`fit`; with standardised features their magnitude says how much a
        feature moves the decision.
    intercept_ : float
    n_iter_ : int
        Steps taken.
    loss_history_ : list of float
        The loss at the point where each step's gradient was taken.

    Notes
    -----
    Each step is :func:`logistic_step` with the safe step size ``1 / L``, ``L`` the largest
    curvature of the loss (``0.25 * largest eigenvalue of [X 1].T @ [X 1] / N + l2``), taken
    from a point pushed ahead by Nesterov momentum, which makes it converge in far fewer
    steps on the strongly correlated multi-scale features [1]_. The loss is convex, so the
    result does not depend on the start.

    References
    ----------
    .. [1] Nesterov. *Introductory Lectures on Convex Optimization*, Kluwer, 2004, sec. 2.2.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    >>> model = LogisticRegression().fit(X, y)
    >>> float((model.predict(X) == y).mean())
    1.0
    >>> model.predict_proba(np.array([[5.0, 0.0]]))[:, 1] > 0.99
    array([ True])

    Introduced in 04_classifiers.
    """

    def __init__(self, l2: float = 1e-3, max_iter: int = 2000, tol: float = 1e-5):
        self.l2 = _check_nonneg(l2, "l2")
        self.max_iter = _check_positive_int(max_iter, "max_iter")
        self.tol = _check_nonneg(tol, "tol")

    def __repr__(self) -> str:
        return f"LogisticRegression(l2={self.l2:g}, max_iter={self.max_iter}, tol={self.tol:g})"

    def fit(self, X, y) -> "LogisticRegression":
        """Fit the weights on rows ``X`` (N, F) with labels ``y`` (N,) in {0, 1}; returns self."""
        X = _check_design(X)
        y = _check_binary_labels(y, X.shape[0])
        n, f = X.shape
        Xb = np.hstack([X, np.ones((n, 1))])
        curvature = 0.25 * float(np.linalg.eigvalsh(Xb.T @ Xb / n)[-1]) + self.l2
        lr = 1.0 / curvature
        mu = self.l2 if self.l2 > 0 else 0.0
        # momentum for a strongly convex loss (kappa = L / mu), or the general-convex schedule
        beta = (np.sqrt(curvature) - np.sqrt(mu)) / (np.sqrt(curvature) + np.sqrt(mu)) if mu else None
        with _one_blas_thread():
            self._descend(X, y, lr, beta)
        return self

    def _descend(self, X, y, lr, beta):
        n, f = X.shape
        w, b = np.zeros(f), 0.0
        w_prev, b_prev = w, b
        self.loss_history_ = []
        t = 1.0
        self.n_iter_ = 0
        for k in range(self.max_iter):
            if beta is None:
                t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
                m, t = (t - 1) / t_next, t_next
            else:
                m = beta
            vw, vb = w + m * (w - w_prev), b + m * (b - b_prev)   # look-ahead point
            z = X @ vw + vb
            error = _sigmoid(z) - y
            grad_w = X.T @ error / n + self.l2 * vw
            grad_b = float(error.mean())
            self.loss_history_.append(float(np.mean(np.logaddexp(0.0, z) - y * z)
                                            + 0.5 * self.l2 * (vw @ vw)))
            w_prev, b_prev = w, b
            w, b = vw - lr * grad_w, vb - lr * grad_b
            self.n_iter_ = k + 1
            if max(np.abs(grad_w).max(), abs(grad_b)) < self.tol:
                break
        self.coef_, self.intercept_ = w, float(b)

    def _fitted(self):
        if not hasattr(self, "coef_"):
            raise RuntimeError("this LogisticRegression is not fitted yet; call fit(X, y) first")

    def decision_function(self, X) -> np.ndarray:
        """The logit ``X @ coef_ + intercept_`` of each row, (N,)."""
        self._fitted()
        X = _check_design(X)
        if X.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"X must have the {self.coef_.shape[0]} features the model was fitted "
                             f"on, got shape {X.shape}")
        return X @ self.coef_ + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of class 0 and class 1, (N, 2), like scikit-learn's."""
        p = _sigmoid(self.decision_function(X))
        return np.stack([1.0 - p, p], axis=1)

    def predict(self, X) -> np.ndarray:
        """The class of each row, (N,) int64: 1 where the probability of class 1 exceeds 0.5."""
        return (self.decision_function(X) > 0).astype(np.int64)


# --------------------------------------------------------------------------------------------
# Gaussian naive Bayes in NumPy
# --------------------------------------------------------------------------------------------
class GaussianNaiveBayes:
    """Gaussian naive Bayes: one normal law per class and per feature, features independent.

    Parameters
    ----------
    var_smoothing : float
        Added to every variance, as a fraction of the largest feature variance (scikit-learn's
        ``GaussianNB`` default, ``1e-9``), so that a constant feature does not divide by zero.

    Attributes
    ----------
    classes_ : (K,) ndarray
    class_prior_ : (K,) ndarray
        Fraction of training rows in each class.
    theta_, var_ : (K, F) ndarray
        Per-class mean and variance of every feature.

    Notes
    -----
    A *generative* model: it describes how each class produces its features, and Bayes' rule
    turns that into ``P(class | features)``, whose log is (up to a constant)
    ``log prior_k - 1/2 sum_f [log(2 pi var_kf) + (x_f - theta_kf)**2 / var_kf]``. Treating the
    features as independent is wrong for multi-scale features (a Gaussian at sigma 2 and at
    sigma 4 tell much the same story), so it counts the same evidence several times and its
    probabilities come out too close to 0 and 1; its decisions can still be good. It needs no
    standardisation and no iterations.

    Examples
    --------
    >>> X = np.array([[0.0], [0.2], [1.0], [1.2]]); y = np.array([0, 0, 1, 1])
    >>> nb = GaussianNaiveBayes().fit(X, y)
    >>> nb.theta_.ravel().tolist(), nb.predict(np.array([[0.1], [1.1]])).tolist()
    ([0.1, 1.1], [0, 1])

    Introduced in 04_classifiers.
    """

    def __init__(self, var_smoothing: float = 1e-9):
        self.var_smoothing = _check_nonneg(var_smoothing, "var_smoothing")

    def __repr__(self) -> str:
        return f"GaussianNaiveBayes(var_smoothing={self.var_smoothing:g})"

    def fit(self, X, y) -> "GaussianNaiveBayes":
        """Per-class means, variances and priors of rows ``X`` (N, F) with labels ``y``."""
        X = _check_design(X)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have one label per row of X ({X.shape[0]},), got shape {y.shape}")
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise ValueError("y holds one class only; a classifier needs labelled rows of two classes")
        eps = self.var_smoothing * float(X.var(axis=0).max())
        self.theta_ = np.stack([X[y == c].mean(axis=0) for c in self.classes_])
        self.var_ = np.stack([X[y == c].var(axis=0) for c in self.classes_]) + eps
        self.class_prior_ = np.array([np.mean(y == c) for c in self.classes_])
        return self

    def joint_log_likelihood(self, X) -> np.ndarray:
        """``log P(class) + log p(features | class)`` of each row and class, (N, K)."""
        if not hasattr(self, "theta_"):
            raise RuntimeError("this GaussianNaiveBayes is not fitted yet; call fit(X, y) first")
        X = _check_design(X)
        if X.shape[1] != self.theta_.shape[1]:
            raise ValueError(f"X must have the {self.theta_.shape[1]} features the model was "
                             f"fitted on, got shape {X.shape}")
        out = np.empty((X.shape[0], self.classes_.size))
        for k in range(self.classes_.size):
            norm = -0.5 * np.sum(np.log(2 * np.pi * self.var_[k]))
            out[:, k] = (np.log(self.class_prior_[k]) + norm
                         - 0.5 * np.sum((X - self.theta_[k]) ** 2 / self.var_[k], axis=1))
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Posterior probability of each class, (N, K), by Bayes' rule (log-sum-exp)."""
        jll = self.joint_log_likelihood(X)
        jll -= jll.max(axis=1, keepdims=True)
        p = np.exp(jll)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, (N,)."""
        jll = self.joint_log_likelihood(X)
        return self.classes_[np.argmax(jll, axis=1)]


# --------------------------------------------------------------------------------------------
# the pixel classifier
# --------------------------------------------------------------------------------------------
def match_channels(image, n_channels: int) -> np.ndarray:
    """Give a ``(C, H, W)`` image ``n_channels`` channels: grey to RGB by repeating, RGB to grey
    by luminance (BT.709).

    Parameters
    ----------
    image : (H, W) or (C, H, W) ndarray
    n_channels : int
        1 or the image's own channel count, or 3 from a grey image.

    Returns
    -------
    (n_channels, H, W) ndarray of float32

    Examples
    --------
    >>> match_channels(np.ones((4, 5)), 3).shape
    (3, 4, 5)
    >>> match_channels(np.ones((3, 4, 5)), 1).shape
    (1, 4, 5)

    Introduced in 04_classifiers.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3:
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {np.shape(image)}")
    c = img.shape[0]
    if c == n_channels:
        return img
    if n_channels == 1 and c == 3:
        return np.tensordot(_RGB_TO_GRAY, img, axes=1)[None].astype(np.float32)
    if n_channels == 1:
        return img.mean(axis=0, keepdims=True)
    if c == 1:
        return np.repeat(img, n_channels, axis=0)
    raise ValueError(f"cannot turn an image of {c} channels into {n_channels}; pass an image with "
                     f"1 or {n_channels} channels")


def _features_for(image, n_channels: int, sigmas, features) -> np.ndarray:
    """pixel_features of ``match_channels(image, n_channels)``, computed once for a grey image."""
    if np.ndim(image) == 2 or np.shape(image)[0] == 1:
        # a grey image repeated into C channels has C copies of the same features
        one = pixel_features(image, sigmas, features)
        return np.concatenate([one] * n_channels) if n_channels > 1 else one
    return pixel_features(match_channels(image, n_channels), sigmas, features)


def _unpack(sample, i: int):
    """(image, mask, category) of a Sample-like object or an (image, mask[, category]) tuple."""
    if isinstance(sample, tuple):
        if len(sample) not in (2, 3):
            raise ValueError(f"samples[{i}] must be a Sample or an (image, mask[, category]) tuple, "
                             f"got a tuple of length {len(sample)}")
        return sample[0], sample[1], (sample[2] if len(sample) == 3 else None)
    if not (hasattr(sample, "image") and hasattr(sample, "mask")):
        raise TypeError(f"samples[{i}] must have .image and .mask (a Sample), or be an (image, mask) "
                        f"tuple, got {type(sample).__name__}")
    return sample.image, sample.mask, getattr(sample, "category", None)


_GROUPINGS = (None, "modality", "category")


def _group_key(group_by, category):
    if group_by is None:
        return "all"
    if category is None:
        return None
    return str(category).split("_")[0] if group_by == "modality" else str(category)


@dataclass
class _GroupModel:
    n_channels: int
    mean: np.ndarray
    scale: np.ndarray
    estimator: Any
    n_images: int
    X: np.ndarray   # (N, F) training rows, before standardisation
    y: np.ndarray   # (N,) their labels

    @property
    def n_pixels(self) -> int:
        return int(self.y.size)


class PixelClassifier:
    """A trained pixel classifier: feature bank, standardisation and one model per image group.

    Made by :func:`fit_pixel_classifier`; call :meth:`predict` on new images.

    Attributes
    ----------
    sigmas : tuple of float
        Scales of the feature bank.
    features : tuple of str
        Families of the feature bank.
    group_by : {None, "modality", "category"}
        How training images were grouped into separate models.
    threshold : float
        Foreground where the probability exceeds it.
    models : dict
        Group name (``"fluorescence"``, ``"brightfield"``, a category, or ``"all"``) -> model:
        its channel count, the mean and scale that standardise its features, the fitted
        estimator, the number of training images, and the training rows ``X`` (N, F) and
        labels ``y`` (N,) it was fitted on.

    Introduced in 04_classifiers.
    """

    def __init__(self, sigmas, features, group_by, threshold, models):
        self.sigmas, self.features = sigmas, features
        self.group_by, self.threshold, self.models = group_by, threshold, models

    def __repr__(self) -> str:
        groups = ", ".join(f"{k}: {m.n_pixels} px from {m.n_images} images"
                           for k, m in self.models.items())
        est = type(next(iter(self.models.values())).estimator).__name__
        return (f"PixelClassifier({est}, sigmas={self.sigmas}, features={self.features}, "
                f"groups {{{groups}}})")

    def _model(self, category):
        key = _group_key(self.group_by, category)
        if key is None:
            if len(self.models) == 1:
                return next(iter(self.models.values()))
            raise ValueError(f"category is needed to choose among the models {sorted(self.models)} "
                             f"(group_by={self.group_by!r}); pass sample.category")
        if key not in self.models:
            raise ValueError(f"no model for category {category!r} (group {key!r}): the training "
                             f"images covered {sorted(self.models)}; train with group_by=None, or "
                             "include images of that kind")
        return self.models[key]

    def with_classifier(self, classifier) -> "PixelClassifier":
        """The same features and labelled pixels, another classifier (refitted on them).

        Parameters
        ----------
        classifier : {"logistic", "naive_bayes"} or estimator
            As for :func:`fit_pixel_classifier`.

        Returns
        -------
        PixelClassifier
            A new classifier; this one is unchanged. Comparing the two compares the
            classifiers alone, on identical training rows.
        """
        _make_estimator(classifier)
        models = {}
        for key, m in self.models.items():
            estimator = _make_estimator(classifier)
            estimator.fit((m.X - m.mean) / m.scale, m.y)
            models[key] = dataclasses.replace(m, estimator=estimator)
        return PixelClassifier(self.sigmas, self.features, self.group_by, self.threshold, models)

    def with_features(self, features) -> "PixelClassifier":
        """The same labelled pixels and classifier, on fewer feature families (refitted).

        Parameters
        ----------
        features : str or sequence of str
            Families to keep, a subset of :attr:`features` (their order in this classifier is
            kept).

        Returns
        -------
        PixelClassifier
            A new classifier; this one is unchanged. Comparing the two measures what the
            dropped families contributed, on identical training pixels.
        """
        keep = _check_features(features)
        missing = [f for f in keep if f not in self.features]
        if missing:
            raise ValueError(f"features must be a subset of this classifier's {self.features}, got "
                             f"{missing[0]!r}")
        kept = tuple(f for f in self.features if f in keep)
        models = {}
        for key, m in self.models.items():
            families = feature_families(m.n_channels, self.sigmas, self.features)
            cols = [i for i, f in enumerate(families) if f in kept]
            estimator = _make_estimator(m.estimator)
            estimator.fit((m.X[:, cols] - m.mean[cols]) / m.scale[cols], m.y)
            models[key] = dataclasses.replace(m, mean=m.mean[cols], scale=m.scale[cols],
                                              estimator=estimator, X=m.X[:, cols])
        return PixelClassifier(self.sigmas, kept, self.group_by, self.threshold, models)

    def feature_names(self, category=None) -> list[str]:
        """Names of the features of the model that serves ``category``."""
        return feature_names(self._model(category).n_channels, self.sigmas, self.features)

    def estimator(self, category=None):
        """The fitted estimator of the model that serves ``category``."""
        return self._model(category).estimator

    def stack(self, image, category=None) -> np.ndarray:
        """The feature stack this classifier computes for ``image``, (F, H, W) float32."""
        model = self._model(category)
        return _features_for(image, model.n_channels, self.sigmas, self.features)

    def predict_proba(self, image, category=None, *, stack=None) -> np.ndarray:
        """Foreground probability of every pixel.

        Parameters
        ----------
        image : (H, W) or (C, H, W) ndarray
            Channel counts are matched to the model's (:func:`match_channels`).
        category : str, optional
            The image's category (``sample.category``); picks the model when there are several.
        stack : (F, H, W) ndarray, optional
            The image's features if already computed (:meth:`stack`); saves computing them again
            when several classifiers share one feature bank.

        Returns
        -------
        (H, W) ndarray of float32
        """
        model = self._model(category)
        if stack is None:
            stack = self.stack(image, category)
        f, h, w = stack.shape
        if f != model.mean.shape[0] or (h, w) != np.shape(image)[-2:]:
            raise ValueError(f"stack must be this classifier's features of the image, "
                             f"({model.mean.shape[0]}, {np.shape(image)[-2]}, {np.shape(image)[-1]}), "
                             f"got shape {stack.shape}; compute it with .stack(image, category)")
        flat = stack.reshape(f, -1)                                   # (F, H*W)
        out = np.empty(h * w, dtype=np.float32)
        for start in range(0, h * w, _CHUNK):                         # bounded memory
            rows = (flat[:, start:start + _CHUNK].T - model.mean) / model.scale   # (chunk, F)
            out[start:start + _CHUNK] = model.estimator.predict_proba(rows)[:, 1]
        return out.reshape(h, w)

    def predict(self, image, category=None, *, stack=None) -> np.ndarray:
        """Foreground mask, (H, W) bool: probability above :attr:`threshold`."""
        return self.predict_proba(image, category, stack=stack) > self.threshold


def _make_estimator(classifier):
    if isinstance(classifier, str):
        if classifier == "logistic":
            return LogisticRegression()
        if classifier == "naive_bayes":
            return GaussianNaiveBayes()
        raise ValueError(f"classifier must be 'logistic', 'naive_bayes' or an estimator with fit() "
                         f"and predict_proba(), got {classifier!r}")
    if not (hasattr(classifier, "fit") and hasattr(classifier, "predict_proba")):
        raise TypeError(f"classifier must be 'logistic', 'naive_bayes' or an estimator with fit() and "
                        f"predict_proba() (e.g. sklearn's RandomForestClassifier()), got "
                        f"{type(classifier).__name__}")
    if hasattr(classifier, "get_params"):
        try:
            from sklearn.base import clone
            return clone(classifier)
        except ImportError:  # pragma: no cover - an sklearn-like object without sklearn
            pass
    return copy.deepcopy(classifier)


def fit_pixel_classifier(samples, *, n_per_class: int = DEFAULT_N_PER_CLASS, sigmas=DEFAULT_SIGMAS,
                         features=DEFAULT_FEATURES, classifier="logistic", group_by="modality",
                         threshold: float = 0.5, seed=0, progress: bool = False) -> PixelClassifier:
    """Train a pixel classifier from a few labelled pixels of each training image.

    Parameters
    ----------
    samples : sequence of Sample, or of (image, mask[, category]) tuples
        Training images ``(C, H, W)`` or ``(H, W)`` with their masks ``(H, W)`` (every
        non-zero label is foreground). Use the training split only.
    n_per_class : int
        Labelled pixels drawn per class in each image (the "scribbles"); default 100.
    sigmas, features
        The feature bank (:func:`~medseg_course.classical.features.pixel_features`).
    classifier : {"logistic", "naive_bayes"} or estimator
        ``"logistic"`` (:class:`LogisticRegression`, the default), ``"naive_bayes"``
        (:class:`GaussianNaiveBayes`), or an unfitted estimator with ``fit`` and
        ``predict_proba`` (``sklearn.ensemble.RandomForestClassifier(...)``), copied for each
        group.
    group_by : {"modality", "category", None}
        Train one model per modality (the part of ``category`` before the first ``_``:
        fluorescence, brightfield), per category, or one model for all (None; images then get
        the largest channel count among them, see :func:`match_channels`).
    threshold : float
        Probability above which a pixel is foreground, in ``(0, 1)``.
    seed : None, int or numpy.random.Generator
        Seeds the pixel sampling (default 0: repeatable).
    progress : bool
        Show a progress bar over the images.

    Returns
    -------
    PixelClassifier

    Raises
    ------
    ValueError, TypeError
        Empty ``samples``, a sample without both classes in its group, an invalid option, or
        (with a grouping) a sample without a category.

    Notes
    -----
    Features are standardised with the mean and standard deviation of the training pixels of
    each group (the same numbers are applied at prediction). Pixels are drawn in equal numbers
    per class, so the classifier assumes both classes equally likely a priori; images where
    the foreground covers much less than half the pixels get slightly too much foreground, and
    raising ``threshold`` corrects it.

    Examples
    --------
    >>> from medseg_course.data.synthetic import make_nuclei2d
    >>> train = [(s.image, s.mask) for s in (make_nuclei2d((64, 64), 5, seed=i) for i in range(2))]
    >>> clf = fit_pixel_classifier(train, n_per_class=50, sigmas=(1, 2), group_by=None)
    >>> test = make_nuclei2d((64, 64), 5, seed=9)
    >>> pred = clf.predict(test.image)
    >>> pred.shape, pred.dtype, bool((pred == (test.mask > 0)).mean() > 0.95)
    ((64, 64), dtype('bool'), True)

    Introduced in 04_classifiers.
    """
    sigmas, features = _check_sigmas(sigmas), _check_features(features)
    n_per_class = _check_positive_int(n_per_class, "n_per_class")
    if group_by not in _GROUPINGS:
        raise ValueError(f"group_by must be 'modality', 'category' or None, got {group_by!r}")
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or not 0 < threshold < 1:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold!r}")
    _make_estimator(classifier)  # validates before the slow part
    samples = list(samples)
    if not samples:
        raise ValueError("samples is empty; pass the training images, e.g. "
                         "load_dataset('dsb2018', 'train')")
    rng = _rng(seed)

    groups: dict[str, list] = {}
    for i, sample in enumerate(samples):
        image, mask, category = _unpack(sample, i)
        key = _group_key(group_by, category)
        if key is None:
            raise ValueError(f"samples[{i}] has no category, which group_by={group_by!r} needs; pass "
                             "group_by=None to train one model for every image")
        groups.setdefault(key, []).append((i, image, mask))

    iterator = [(k, item) for k, items in groups.items() for item in items]
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(iterator, desc="features of training images")
    channels = {k: max(np.asarray(im).shape[0] if np.ndim(im) == 3 else 1 for _, im, _ in items)
                for k, items in groups.items()}
    rows: dict[str, list] = {k: [] for k in groups}
    labels: dict[str, list] = {k: [] for k in groups}
    for key, (i, image, mask) in iterator:
        mask = _check_mask(mask, f"samples[{i}].mask")
        if mask.shape != np.shape(image)[-2:]:
            raise ValueError(f"samples[{i}]: mask {mask.shape} and image {np.shape(image)} must cover "
                             "the same pixels")
        stack = _features_for(image, channels[key], sigmas, features)
        X, y = training_pixels(stack, mask > 0, n_per_class, seed=rng)
        rows[key].append(X)
        labels[key].append(y)

    models = {}
    for key in groups:
        X, y = np.concatenate(rows[key]).astype(np.float64), np.concatenate(labels[key])
        if np.unique(y).size < 2:
            raise ValueError(f"the training images of group {key!r} hold one class only; every "
                             "group needs foreground and background pixels")
        mean, std = X.mean(axis=0), X.std(axis=0)
        scale = np.where(std > 1e-12, std, 1.0)
        estimator = _make_estimator(classifier)
        estimator.fit((X - mean) / scale, y)
        models[key] = _GroupModel(channels[key], mean, scale, estimator, len(groups[key]), X, y)
    return PixelClassifier(sigmas, features, group_by, float(threshold), models)


def default_pixel_classifier(max_per_category: int | None = None) -> PixelClassifier:
    """The course's pixel classifier, trained on the DSB2018 training split (cached).

    :func:`fit_pixel_classifier` with its defaults (logistic regression on every feature
    family at scales 1, 2, 4 and 8, 100 labelled pixels per class and image, one model per
    modality, seed 0) on ``load_dataset("dsb2018", "train")``. The first call loads the data
    and trains (ten to twenty seconds on one core for the whole split); later calls with the
    same argument return the same object.

    Parameters
    ----------
    max_per_category : int, optional
        Train on at most this many images of each category (the first ones, in case order).
        Default: every training image, or 3 per category in fast mode (``MEDSEG_FAST=1``),
        which trains in a few seconds.

    Returns
    -------
    PixelClassifier

    Introduced in 04_classifiers.
    """
    from medseg_course.runtime import fast_mode

    if max_per_category is None and fast_mode():
        max_per_category = 3
    if max_per_category is not None:
        max_per_category = _check_positive_int(max_per_category, "max_per_category")
    return _trained_default(max_per_category)


@functools.lru_cache(maxsize=2)
def _trained_default(max_per_category):
    from medseg_course.data import load_dataset

    train = load_dataset("dsb2018", "train", cache=False, progress=False)
    counts: dict = {}
    keep = []
    for i, category in enumerate(train.categories):
        counts[category] = counts.get(category, 0) + 1
        if max_per_category is None or counts[category] <= max_per_category:
            keep.append(i)
    return fit_pixel_classifier(train[i] for i in keep)


def segment_pixel_classifier(image, category=None, *, model: PixelClassifier | None = None) -> np.ndarray:
    """Segment a DSB2018 image with a pixel classifier trained on the training split.

    Parameters
    ----------
    image : (C, H, W) or (H, W) ndarray
        ``sample.image``.
    category : str, optional
        ``sample.category``; chooses the fluorescence or the brightfield model (without it the
        modality is taken from the channel count: 3 channels is brightfield).
    model : PixelClassifier, optional
        A trained classifier; default :func:`default_pixel_classifier` (trained on first use).

    Returns
    -------
    (H, W) ndarray of bool

    Examples
    --------
    >>> from medseg_course.data import load_dataset
    >>> sample = load_dataset("dsb2018", "val")[0]                       # doctest: +SKIP
    >>> segment_pixel_classifier(sample.image, sample.category).shape    # doctest: +SKIP
    (256, 320)

    Introduced in 04_classifiers.
    """
    model = default_pixel_classifier() if model is None else model
    if category is None and model.group_by == "modality" and len(model.models) > 1:
        category = "brightfield" if np.ndim(image) == 3 and np.shape(image)[0] == 3 else "fluorescence"
    return model.predict(image, category)


# --------------------------------------------------------------------------------------------
# splits by patient, and 2D slices of volumes
# --------------------------------------------------------------------------------------------
def split_by_group(groups, n_train: int, *, seed=None):
    """Split items into train and test so that no group (patient, image) is in both.

    Parameters
    ----------
    groups : sequence
        The group of each item, e.g. the patient id of every slice.
    n_train : int
        Groups that go to training, chosen at random; the others are the test set.
    seed : None, int or numpy.random.Generator
        Random seed.

    Returns
    -------
    train_idx, test_idx : ndarray of int64
        Indices of the items, in increasing order.

    Notes
    -----
    Slices of one patient share the anatomy, the scanner and its intensity scale; pixels of one
    image share its staining and illumination. A test set that shares patients (or images) with
    the training set measures how well the method remembers them, not how it does on the next
    patient: this is **leakage**, and it makes every score optimistic.

    Examples
    --------
    >>> train, test = split_by_group(["a", "a", "b", "c", "c", "c"], 1, seed=0)
    >>> sorted(set(np.array(list("aabccc"))[train]) & set(np.array(list("aabccc"))[test]))
    []
    >>> len(train) + len(test)
    6

    Introduced in 04_classifiers.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.size == 0:
        raise ValueError(f"groups must be a non-empty 1D sequence of group ids, got shape {groups.shape}")
    names = np.unique(groups)
    n_train = _check_positive_int(n_train, "n_train")
    if n_train >= names.size:
        raise ValueError(f"n_train must be smaller than the number of groups ({names.size}) so that "
                         f"some are left to test, got {n_train}")
    chosen = _rng(seed).choice(names, n_train, replace=False)
    in_train = np.isin(groups, chosen)
    return np.flatnonzero(in_train), np.flatnonzero(~in_train)


def volume_slices(samples, *, axis: int = 0, min_foreground: int = 1, step: int = 1) -> list:
    """2D slices of 3D samples, as samples: for training 2D methods on volumes.

    Parameters
    ----------
    samples : sequence of Sample
        3D samples, ``image`` ``(C, D, H, W)``, ``mask`` ``(D, H, W)``.
    axis : {0, 1, 2}
        Spatial axis to cut (0 = D).
    min_foreground : int
        Keep slices with at least this many labelled pixels (0 keeps every slice).
    step : int
        Keep every ``step``-th of those slices.

    Returns
    -------
    list of Sample
        ``image`` ``(C, H, W)``, ``mask`` ``(H, W)``, ``case_id`` like ``"hippocampus_001/12"``,
        and ``meta["patient"]``, the case id of the volume (use it to split by patient).

    Introduced in 04_classifiers.
    """
    from medseg_course.data import Sample

    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2 (a spatial axis of (D, H, W)), got {axis!r}")
    step = _check_positive_int(step, "step")
    out = []
    for s in samples:
        image, mask = np.asarray(s.image), np.asarray(s.mask)
        if image.ndim != 4 or mask.ndim != 3:
            raise ValueError(f"volume_slices needs 3D samples (image (C, D, H, W), mask (D, H, W)), "
                             f"got image {image.shape} and mask {mask.shape} for {s.case_id!r}")
        spacing = None if s.spacing is None else tuple(v for i, v in enumerate(s.spacing) if i != axis)
        keep = [k for k in range(mask.shape[axis])
                if np.count_nonzero(np.take(mask, k, axis=axis)) >= min_foreground][::step]
        for k in keep:
            out.append(Sample(np.take(image, k, axis=axis + 1), np.take(mask, k, axis=axis),
                              f"{s.case_id}/{k}", spacing=spacing, category=None,
                              meta={"patient": s.case_id, "index": k, "axis": axis}))
    return out
