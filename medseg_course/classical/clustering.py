"""Clustering for segmentation: k-means (with k-means++ seeding), fuzzy c-means, and a spatially
regularised fuzzy c-means (FCM_S1).

Clustering needs no labels: it groups pixels whose features (intensity, colour, smoothed
intensity) are close, and leaves it to us to say which group is the object. Every function here
works on 2D images and 3D volumes, grey or multi-channel, and numbers the clusters the same way:
**by mean intensity, darkest first**, so that label ``k - 1`` is the brightest cluster.

* :func:`kmeans_plusplus`, :func:`kmeans` and :func:`fcm` cluster a feature matrix ``(N, F)``;
* :func:`kmeans_segment`, :func:`fuzzy_cmeans` and :func:`spatial_fuzzy_cmeans` cluster the
  pixels of an image and return label maps of its spatial shape;
* :func:`pixel_features` builds feature spaces (intensity, colour, CIE Lab, smoothed copies);
* :func:`best_matching_cluster` scores every cluster against a ground-truth mask;
* :func:`segment_kmeans`, :func:`segment_fcm` and :func:`segment_spatial_fcm` segment the nuclei
  of a DSB2018 sample in one line, for the course's results table.

Image layout (``spatial_dims``)
-------------------------------
Images are ``(*spatial)`` or channel-first ``(C, *spatial)`` as the course's loaders return them.
With ``spatial_dims=None`` the layout is inferred: a 2D array is ``(H, W)``; a 4D array is
``(C, D, H, W)``; a 3D array is ``(C, H, W)`` when its first axis has at most 4 entries (every 2D
image of the course: C = 1 or 3), otherwise a grey volume ``(D, H, W)``. Pass ``spatial_dims=2``
or ``3`` to say which when that rule guesses wrong (a volume of 4 slices or fewer).

Introduced in 05_clustering.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy import ndimage

__all__ = [
    "KMeansResult", "FCMResult", "kmeans_plusplus", "kmeans", "fcm", "pixel_features",
    "kmeans_segment", "fuzzy_cmeans", "spatial_fuzzy_cmeans", "best_matching_cluster",
    "segment_kmeans", "segment_fcm", "segment_spatial_fcm", "FEATURE_SPACES",
]

#: The feature spaces :func:`pixel_features` knows.
FEATURE_SPACES = ("intensity", "colour", "lab")


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------
def _check_int(value, name: str, low: int, fix: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}" + (f"; {fix}" if fix else ""))
    return int(value)


def _check_real(value, name: str, *, low: float | None = None, low_open: bool = False,
                fix: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    bad = not np.isfinite(value) or (low is not None and (value <= low if low_open else value < low))
    if bad:
        bound = "" if low is None else f" {'>' if low_open else '>='} {low:g}"
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}"
                         + (f"; {fix}" if fix else ""))
    return value


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise TypeError(f"seed must be a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def _as_features(X, name: str = "X") -> np.ndarray:
    arr = np.asarray(X)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a feature matrix (N, F) (or (N,) for one feature), got "
                         f"shape {arr.shape}; for an image use kmeans_segment / fuzzy_cmeans")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass at least one point and feature")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; replace them first, "
                         "e.g. np.nan_to_num(X)")
    return arr


def _split_channels(image, spatial_dims, name: str = "image") -> np.ndarray:
    """``image`` as float64 ``(C, *spatial)``, following the module's layout rule."""
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if spatial_dims is not None and spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2, 3 or None (infer), got {spatial_dims!r}")
    if arr.ndim == 2 and spatial_dims in (None, 2):
        arr = arr[None]
    elif arr.ndim == 3 and spatial_dims is None:
        arr = arr if arr.shape[0] <= 4 else arr[None]
    elif arr.ndim == 3:
        arr = arr if spatial_dims == 2 else arr[None]
    elif arr.ndim == 4 and spatial_dims in (None, 3):
        pass
    else:
        raise ValueError(f"{name} must be (H, W), (C, H, W), (D, H, W) or (C, D, H, W), got shape "
                         f"{arr.shape}" + (f" with spatial_dims={spatial_dims}" if spatial_dims else ""))
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {np.shape(image)}); pass an image with pixels")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; replace them first, "
                         "e.g. np.nan_to_num(image)")
    return arr


def _check_order_by(order_by, spatial_shape) -> np.ndarray | None:
    if order_by is None:
        return None
    arr = np.asarray(order_by, dtype=np.float64)
    if arr.shape != tuple(spatial_shape):
        raise ValueError(f"order_by must have the image's spatial shape {tuple(spatial_shape)}, got "
                         f"{arr.shape}; pass one grey value per pixel, e.g. the channel average")
    return arr


def _dims_from(order_by, spatial_dims):
    """``order_by`` has the spatial shape, so its ndim settles the layout when not given."""
    if spatial_dims is None and order_by is not None and np.ndim(order_by) in (2, 3):
        return np.ndim(order_by)
    return spatial_dims


def _sqdist(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(N, k)`` between points ``(N, F)`` and centres ``(k, F)``.

    One vectorised pass over the points per centre (k is small): exact differences, no
    ``|x|^2 - 2 x.c + |c|^2`` cancellation. The result is the transpose of a C-ordered
    ``(k, N)`` array, so ``_sqdist(X, C).T`` is contiguous.
    """
    out = np.empty((C.shape[0], X.shape[0]))      # (k, N) in memory: fast reductions over k
    for j, c in enumerate(C):
        diff = X - c
        np.einsum("nf,nf->n", diff, diff, out=out[j])
    return out.T


# --------------------------------------------------------------------------------------------
# k-means++ and k-means on feature matrices
# --------------------------------------------------------------------------------------------
def kmeans_plusplus(X, k: int, seed=0, *, n_local_trials: int = 1):
    """k-means++ seeding: spread ``k`` initial centres by sampling proportionally to D².

    Parameters
    ----------
    X : (N, F) or (N,) array_like
        Points (one row per pixel, one column per feature).
    k : int
        Number of centres, ``1 <= k``; ``X`` must hold at least ``k`` distinct points.
    seed : int or numpy.random.Generator
        Random seed: the same seed gives the same centres.
    n_local_trials : int
        Candidates drawn per new centre. 1 (default) is the original algorithm [1]_; with more,
        the candidate that lowers the total D² most is kept (the "greedy" variant of
        scikit-learn, which uses ``2 + int(log(k))``).

    Returns
    -------
    centers : (k, F) ndarray of float64
    indices : (k,) ndarray of int64
        Rows of ``X`` chosen as centres, in the order they were chosen.

    Raises
    ------
    ValueError
        If ``X`` holds fewer than ``k`` distinct points (then every remaining point has D² = 0
        and no new centre can be drawn).

    Notes
    -----
    The first centre is a uniformly random point. Each next centre is point ``x`` with
    probability ``D(x)² / sum D²``, where ``D(x)`` is the distance from ``x`` to the nearest
    centre chosen so far: far points are likely, points on a chosen centre are impossible. The
    expected k-means cost of the seeding alone is within ``8 (ln k + 2)`` of the optimum [1]_.

    References
    ----------
    .. [1] Arthur and Vassilvitskii. "k-means++: the advantages of careful seeding", SODA 2007,
       1027-1035.

    Examples
    --------
    Two tight groups far apart: the second centre always lands in the other group.

    >>> X = np.array([[0.0], [0.1], [10.0], [10.1]])
    >>> centers, idx = kmeans_plusplus(X, 2, seed=0)
    >>> sorted(round(float(c), 1) for c in centers[:, 0] // 5)
    [0.0, 2.0]

    Introduced in 05_clustering.
    """
    X = _as_features(X)
    k = _check_int(k, "k", 1)
    n_local_trials = _check_int(n_local_trials, "n_local_trials", 1)
    rng = _rng(seed)
    n = X.shape[0]
    if k > n:
        raise ValueError(f"k must be at most the number of points ({n}), got k={k}")
    indices = np.empty(k, dtype=np.int64)
    indices[0] = rng.integers(n)
    d2 = _sqdist(X, X[indices[0]][None])[:, 0]
    for j in range(1, k):
        cum = np.cumsum(d2)
        total = cum[-1]
        if not total > 0:
            raise ValueError(f"X holds only {j} distinct point(s), fewer than k={k}: every point "
                             "already lies on a centre; lower k")
        draws = np.searchsorted(cum, rng.random(n_local_trials) * total, side="right")
        draws = np.minimum(draws, n - 1)
        if n_local_trials == 1:
            best = int(draws[0])
            best_d2 = np.minimum(d2, _sqdist(X, X[best][None])[:, 0])
        else:
            cand = np.minimum(d2[:, None], _sqdist(X, X[draws]))
            pick = int(np.argmin(cand.sum(0)))
            best, best_d2 = int(draws[pick]), cand[:, pick]
        indices[j] = best
        d2 = best_d2
    return X[indices].copy(), indices


@dataclass(frozen=True, eq=False)
class KMeansResult:
    """What :func:`kmeans` found.

    Attributes
    ----------
    centers : (k, F) ndarray of float64
        Cluster centres (in the order of ``init``, not sorted).
    labels : (N,) ndarray of int64
        Index of the nearest centre for each point (ties: the lowest index).
    inertia : float
        Sum of squared distances of the points to their centres (the k-means objective).
    n_iter : int
        Lloyd iterations run.
    converged : bool
        False when ``max_iter`` stopped the iterations.

    Introduced in 05_clustering.
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int
    converged: bool


def _assign(X, x_sq, centers):
    """Nearest centre of every point, and the ``(N, k)`` scores ``|c|² - 2 x.c`` (``d² - |x|²``).

    One matrix product instead of an ``(N, k, F)`` array of differences (scikit-learn computes
    its assignments the same way).
    """
    scores = (centers ** 2).sum(axis=1)[None, :] - 2.0 * (X @ centers.T)    # (N, k)
    labels = np.argmin(scores, axis=1)
    return labels, scores


def _lloyd(X, centers, max_iter, tol_abs):
    """Lloyd iterations from ``centers``; the rule for empty clusters is that of scikit-learn."""
    k = centers.shape[0]
    x_sq = np.einsum("nf,nf->n", X, X)
    labels = None
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        new_labels, scores = _assign(X, x_sq, centers)          # assignment step
        counts = np.bincount(new_labels, minlength=k)
        empty = np.flatnonzero(counts == 0)
        if empty.size:                                         # empty clusters: take the points
            d2 = np.take_along_axis(scores, new_labels[:, None], axis=1)[:, 0] + x_sq
            far = np.argsort(-d2, kind="stable")[:empty.size]  # farthest from their centres
            new_labels[far] = empty
            counts = np.bincount(new_labels, minlength=k)
        sums = np.stack([np.bincount(new_labels, weights=X[:, f], minlength=k)
                         for f in range(X.shape[1])], axis=1)
        new_centers = sums / np.maximum(counts, 1)[:, None]    # update step
        new_centers[counts == 0] = centers[counts == 0]
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if labels is not None and np.array_equal(new_labels, labels):
            converged = True                                   # nothing moved: a fixed point
            break
        labels = new_labels
        if shift <= tol_abs:
            converged = True
            break
    labels, _ = _assign(X, x_sq, centers)
    d2 = _sqdist(X, centers)[np.arange(len(X)), labels]        # exact, for the inertia
    return KMeansResult(centers, labels.astype(np.int64), float(d2.sum()), n_iter, converged)


def kmeans(X, k: int, *, init="k-means++", n_init: int = 1, max_iter: int = 300,
           tol: float = 1e-4, seed=0) -> KMeansResult:
    """k-means clustering (Lloyd's algorithm, vectorised) of a feature matrix.

    Parameters
    ----------
    X : (N, F) or (N,) array_like
        Points, one row per pixel.
    k : int
        Number of clusters, ``>= 1``.
    init : "k-means++" or (k, F) array_like
        k-means++ seeding (:func:`kmeans_plusplus`, one trial per centre), or explicit initial
        centres (then ``n_init`` must be 1).
    n_init : int
        Number of k-means++ restarts; the run with the lowest inertia is kept.
    max_iter : int
        Most Lloyd iterations per run.
    tol : float
        Stop when the centres moved less than this in total squared distance, relative to the
        mean variance of the features (scikit-learn's rule), ``>= 0``.
    seed : int or numpy.random.Generator
        Random seed of the seeding.

    Returns
    -------
    KMeansResult
        ``centers``, ``labels``, ``inertia``, ``n_iter``, ``converged``.

    Raises
    ------
    ValueError
        If ``init`` has the wrong shape, or ``X`` holds fewer than ``k`` distinct points.

    Notes
    -----
    Lloyd's algorithm alternates two steps until nothing changes:

    1. **assignment**: each point goes to its nearest centre (squared Euclidean distance; the
       square root would change no assignment, so it is never taken);
    2. **update**: each centre moves to the mean of its points.

    Each step lowers (never raises) the inertia, so the iterations stop at a local minimum;
    which one depends on the initial centres (hence k-means++ and ``n_init``). The run stops when
    the labels no longer change, or the centres moved less than ``tol`` (relative), or after
    ``max_iter`` iterations; the returned labels are always those of the returned centres.

    The assignment computes ``|c|² - 2 x.c`` with one matrix product rather than the
    ``(N, k, F)`` array of differences (same argmin, far less memory; scikit-learn does the same).
    A cluster left empty by the assignment step takes the points farthest from their centres
    (as scikit-learn does), so ``k`` clusters survive. With the same initial centres the result
    equals ``sklearn.cluster.KMeans(k, init=centers, n_init=1, algorithm="lloyd")`` up to
    floating-point rounding (checked in the course's tests and benchmark).

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    >>> result = kmeans(X, 2, init=np.array([[0.0], [1.0]]))
    >>> result.centers.ravel().tolist(), result.labels.tolist(), result.inertia
    ([1.0, 11.0], [0, 0, 0, 1, 1, 1], 4.0)

    Introduced in 05_clustering.
    """
    X = _as_features(X)
    k = _check_int(k, "k", 1)
    n_init = _check_int(n_init, "n_init", 1)
    max_iter = _check_int(max_iter, "max_iter", 1)
    tol = _check_real(tol, "tol", low=0.0)
    rng = _rng(seed)
    if k > X.shape[0]:
        raise ValueError(f"k must be at most the number of points ({X.shape[0]}), got k={k}")
    tol_abs = tol * float(np.mean(np.var(X, axis=0)))
    if isinstance(init, str):
        if init != "k-means++":
            raise ValueError(f"init must be 'k-means++' or a (k, F) array of centres, got {init!r}")
        best = None
        for _ in range(n_init):
            centers, _ = kmeans_plusplus(X, k, rng)
            result = _lloyd(X, centers, max_iter, tol_abs)
            if best is None or result.inertia < best.inertia:
                best = result
        return best
    centers = np.asarray(init, dtype=np.float64)
    if centers.ndim == 1 and X.shape[1] == 1:
        centers = centers[:, None]
    if centers.shape != (k, X.shape[1]):
        raise ValueError(f"init must be 'k-means++' or an array of shape (k, F) = {(k, X.shape[1])}, "
                         f"got shape {centers.shape}")
    if not np.all(np.isfinite(centers)):
        raise ValueError("init contains NaN or infinite centres")
    if n_init != 1:
        raise ValueError(f"n_init must be 1 when init gives the centres, got n_init={n_init}")
    return _lloyd(X, centers.copy(), max_iter, tol_abs)


# --------------------------------------------------------------------------------------------
# Fuzzy c-means on feature matrices
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FCMResult:
    """What :func:`fcm` found.

    Attributes
    ----------
    centers : (c, F) ndarray of float64
    memberships : (c, N) ndarray of float64
        ``memberships[i, n]`` is how much point ``n`` belongs to cluster ``i``; each column sums
        to 1.
    objective : float
        The FCM objective ``sum_i sum_n u_in^m d_in^2`` at the returned centres.
    n_iter : int
    converged : bool
        False when ``max_iter`` stopped the iterations.

    Introduced in 05_clustering.
    """

    centers: np.ndarray
    memberships: np.ndarray
    objective: float
    n_iter: int
    converged: bool


def _memberships(d2: np.ndarray, m: float) -> np.ndarray:
    """FCM memberships ``(c, N)`` from squared distances ``(c, N)``, with the zero-distance guard.

    ``u_in = 1 / sum_j (d_in / d_jn)^(2/(m-1))``, computed as ``(dmin²/d_in²)^(1/(m-1))``
    normalised, which never overflows. A point on a centre (``d = 0``) belongs to it fully (split
    equally if it lies on several).
    """
    dmin = d2.min(axis=0)
    zero = dmin <= 0
    safe = np.where(zero, 1.0, dmin)
    with np.errstate(divide="ignore"):
        w = safe / d2 if m == 2.0 else (safe / d2) ** (1.0 / (m - 1.0))
    if zero.any():
        on = (d2[:, zero] <= 0).astype(np.float64)
        w[:, zero] = on
    return w / w.sum(axis=0, keepdims=True)


def _fcm(X, c, m, rng, max_iter, tol, X_bar=None, alpha=0.0, init=None):
    if init is None:
        centers, _ = kmeans_plusplus(X, c, rng)
    else:
        centers = init

    def distances(V):
        d2 = _sqdist(X, V).T
        if X_bar is not None:
            d2 += alpha * _sqdist(X_bar, V).T
        return d2

    target = X if X_bar is None else (X + alpha * X_bar) / (1.0 + alpha)
    u = _memberships(distances(centers), m)
    converged, n_iter = False, 0
    for n_iter in range(1, max_iter + 1):
        um = u * u if m == 2.0 else u ** m
        centers = (um @ target) / um.sum(axis=1, keepdims=True)
        new_u = _memberships(distances(centers), m)
        change = float(np.max(np.abs(new_u - u)))
        u = new_u
        if change < tol:
            converged = True
            break
    objective = float(((u ** m) * distances(centers)).sum())
    return FCMResult(centers, u, objective, n_iter, converged)


def fcm(X, c: int, m: float = 2.0, *, seed=0, max_iter: int = 300, tol: float = 1e-4,
        init=None) -> FCMResult:
    """Fuzzy c-means clustering of a feature matrix (Bezdek's alternating optimisation).

    Parameters
    ----------
    X : (N, F) or (N,) array_like
        Points, one row per pixel.
    c : int
        Number of clusters, ``>= 1``.
    m : float
        Fuzzifier, ``> 1``: close to 1 the memberships become hard (k-means); 2 is the usual
        choice; large values make every membership tend to ``1 / c``.
    seed : int or numpy.random.Generator
        Seed of the k-means++ initial centres.
    max_iter : int
        Most iterations (default 300).
    tol : float
        Stop when no membership changed by more than ``tol`` in one iteration (default 1e-4).
    init : (c, F) array_like, optional
        Initial centres instead of k-means++.

    Returns
    -------
    FCMResult
        ``centers``, ``memberships`` ``(c, N)``, ``objective``, ``n_iter``, ``converged``.

    Notes
    -----
    FCM minimises ``J = sum_i sum_n u_in^m ||x_n - v_i||^2`` with ``sum_i u_in = 1`` for each
    point. Alternating the two optimal updates [1]_

    * memberships: ``u_in = 1 / sum_j (d_in / d_jn)^(2 / (m - 1))`` with ``d_in = ||x_n - v_i||``
      (a point lying on a centre gets membership 1 there: the zero-distance guard);
    * centres: ``v_i = sum_n u_in^m x_n / sum_n u_in^m``

    lowers ``J`` at every step. **Stopping rule**: the iterations stop when the largest change of
    any membership between two iterations falls below ``tol``, or after ``max_iter``
    iterations (``converged`` is then False).

    References
    ----------
    .. [1] Bezdek. *Pattern Recognition with Fuzzy Objective Function Algorithms*, Plenum, 1981.

    Examples
    --------
    >>> X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    >>> result = fcm(X, 2, seed=0)
    >>> np.round(np.sort(result.centers[:, 0]), 2).tolist()
    [1.0, 11.0]
    >>> bool(np.allclose(result.memberships.sum(axis=0), 1.0))
    True

    Introduced in 05_clustering.
    """
    X = _as_features(X)
    c = _check_int(c, "c", 1)
    m = _check_real(m, "m", low=1.0, low_open=True, fix="the fuzzifier must be > 1, e.g. 2.0")
    max_iter = _check_int(max_iter, "max_iter", 1)
    tol = _check_real(tol, "tol", low=0.0)
    rng = _rng(seed)
    if c > X.shape[0]:
        raise ValueError(f"c must be at most the number of points ({X.shape[0]}), got c={c}")
    if init is not None:
        init = np.asarray(init, dtype=np.float64)
        if init.shape != (c, X.shape[1]):
            raise ValueError(f"init must have shape (c, F) = {(c, X.shape[1])}, got {init.shape}")
    return _fcm(X, c, m, rng, max_iter, tol, init=init)


# --------------------------------------------------------------------------------------------
# Feature spaces
# --------------------------------------------------------------------------------------------
def pixel_features(image, space: str = "intensity", *, smooth: float = 0.0,
                   spatial_dims: int | None = None) -> np.ndarray:
    """Per-pixel feature stack for clustering: intensity, colour or CIE Lab, plus smoothed copies.

    Parameters
    ----------
    image : (H, W), (C, H, W), (D, H, W) or (C, D, H, W) array_like
        See the module's layout rule (``spatial_dims``).
    space : {"intensity", "colour", "lab"}
        ``"intensity"``: one feature, the average of the channels. ``"colour"`` (or ``"color"``):
        the channels as they are (RGB for brightfield). ``"lab"``: CIE L*a*b* of an RGB image in
        ``[0, 1]``, divided by 100 so that it has about the range of RGB; Euclidean distances in
        Lab follow perceived colour differences better than in RGB.
    smooth : float
        If ``> 0``, append a Gaussian-smoothed copy (standard deviation ``smooth`` pixels, spatial
        axes only) of every feature: each pixel then also carries its neighbourhood's mean.
    spatial_dims : {2, 3, None}
        See the module's layout rule.

    Returns
    -------
    (F, *spatial) ndarray of float32
        ``F`` = 1, C or 3 features, doubled when ``smooth > 0``. Feed it to
        :func:`kmeans_segment` with ``order_by`` the grey image (the features' average is not an
        intensity in Lab).

    Raises
    ------
    ValueError
        If ``space`` is unknown, ``"lab"`` is asked for an image without 3 channels, or
        ``smooth`` is negative.

    Examples
    --------
    >>> rgb = np.random.default_rng(0).random((3, 8, 10))
    >>> pixel_features(rgb, "intensity").shape, pixel_features(rgb, "lab", smooth=1.0).shape
    ((1, 8, 10), (6, 8, 10))

    Introduced in 05_clustering.
    """
    arr = _split_channels(image, spatial_dims)
    if not isinstance(space, str) or space.lower() not in FEATURE_SPACES + ("color", "rgb"):
        raise ValueError(f"space must be one of {FEATURE_SPACES}, got {space!r}")
    space = space.lower()
    smooth = _check_real(smooth, "smooth", low=0.0, fix="it is a Gaussian sigma in pixels, e.g. 2.0")
    if space == "intensity":
        feats = arr.mean(axis=0, keepdims=True)
    elif space in ("colour", "color", "rgb"):
        feats = arr
    else:
        if arr.shape[0] != 3:
            raise ValueError(f"space='lab' needs an RGB image with 3 channels, got {arr.shape[0]}; "
                             "use space='intensity' or 'colour' for grey images")
        from skimage.color import rgb2lab

        feats = np.moveaxis(rgb2lab(np.clip(np.moveaxis(arr, 0, -1), 0, 1)), -1, 0) / 100.0
    if smooth > 0:
        smoothed = np.stack([ndimage.gaussian_filter(f, smooth) for f in feats])
        feats = np.concatenate([feats, smoothed])
    return feats.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Images: label maps ordered by intensity
# --------------------------------------------------------------------------------------------
def _order(values: np.ndarray) -> np.ndarray:
    """``lut`` such that ``lut[old] = new`` numbers clusters by increasing ``values``."""
    rank = np.argsort(values, kind="stable")
    lut = np.empty_like(rank)
    lut[rank] = np.arange(len(rank))
    return lut


def _cluster_means(grey_flat: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of ``grey_flat`` per cluster; ``weights`` is ``(k, N)``."""
    total = weights.sum(axis=1)
    means = (weights @ grey_flat) / np.where(total > 0, total, 1.0)
    return np.where(total > 0, means, np.inf)


def kmeans_segment(image, k: int, seed=0, *, n_init: int = 1, max_iter: int = 300,
                   tol: float = 1e-4, order_by=None, spatial_dims: int | None = None) -> np.ndarray:
    """Cluster the pixels of an image with k-means; label map ordered by mean intensity.

    Parameters
    ----------
    image : (H, W), (C, H, W), (D, H, W) or (C, D, H, W) array_like
        Grey or multi-channel, 2D or 3D (see the module's layout rule). With several channels
        each pixel is the point ``(x_1, ..., x_C)``: the clustering happens in colour (or
        feature) space.
    k : int
        Number of clusters, ``>= 1``.
    seed : int or numpy.random.Generator
        Seed of the k-means++ initialisation.
    n_init, max_iter, tol
        As in :func:`kmeans`.
    order_by : ndarray of the spatial shape, optional
        Grey image that orders the clusters. Default: the average of the channels. When given,
        its number of dimensions also settles the layout (a stack of 6 features ``(6, H, W)``
        with a ``(H, W)`` ``order_by`` is a 2D image, not a volume).
    spatial_dims : {2, 3, None}
        See the module's layout rule.

    Returns
    -------
    ndarray of int64, the image's spatial shape
        Labels ``0 .. k-1``, **ordered by the cluster's mean intensity, darkest first**: for a
        multi-channel image the intensity is the average over the channels (or ``order_by``),
        so label ``k - 1`` is always the brightest cluster whatever the random seed.

    Raises
    ------
    ValueError
        If the image holds fewer than ``k`` distinct values (colours), or has a wrong shape.

    Examples
    --------
    >>> image = np.zeros((6, 6)); image[:, 3:] = 1.0; image[0, 0] = 0.5
    >>> labels = kmeans_segment(image, 3)
    >>> labels[0, :].tolist()
    [1, 0, 0, 2, 2, 2]
    >>> kmeans_segment(np.stack([image, image, image]), 2).shape   # RGB: clusters colours
    (6, 6)

    Introduced in 05_clustering.
    """
    arr = _split_channels(image, _dims_from(order_by, spatial_dims))
    spatial = arr.shape[1:]
    order = _check_order_by(order_by, spatial)
    X = arr.reshape(arr.shape[0], -1).T
    result = kmeans(X, k, n_init=n_init, max_iter=max_iter, tol=tol, seed=seed)
    grey = (order if order is not None else arr.mean(axis=0)).ravel()
    onehot = np.zeros((k, X.shape[0]))
    onehot[result.labels, np.arange(X.shape[0])] = 1.0
    lut = _order(_cluster_means(grey, onehot))
    return lut[result.labels].reshape(spatial).astype(np.int64)


def _fcm_image(arr, c, m, seed, max_iter, tol, order_by, alpha=0.0, size=3, filter="mean"):
    spatial = arr.shape[1:]
    order = _check_order_by(order_by, spatial)
    X = arr.reshape(arr.shape[0], -1).T
    if c > X.shape[0]:
        raise ValueError(f"c must be at most the number of pixels ({X.shape[0]}), got c={c}")
    X_bar = None
    if alpha > 0:
        filt = ndimage.uniform_filter if filter == "mean" else ndimage.median_filter
        X_bar = np.stack([filt(ch, size=size, mode="reflect") for ch in arr])
        X_bar = X_bar.reshape(arr.shape[0], -1).T
    result = _fcm(X, c, m, _rng(seed), max_iter, tol, X_bar=X_bar, alpha=alpha)
    grey = (order if order is not None else arr.mean(axis=0)).ravel()
    lut = _order(_cluster_means(grey, result.memberships ** m))
    u = np.empty_like(result.memberships)
    u[lut] = result.memberships
    labels = np.argmax(u, axis=0).reshape(spatial).astype(np.int64)
    return labels, u.reshape((c,) + spatial).astype(np.float32)


def fuzzy_cmeans(image, c: int, m: float = 2.0, seed=0, *, max_iter: int = 300,
                 tol: float = 1e-4, order_by=None, spatial_dims: int | None = None):
    """Fuzzy c-means of the pixels of an image: soft memberships and a hard label map.

    Parameters
    ----------
    image : (H, W), (C, H, W), (D, H, W) or (C, D, H, W) array_like
        Grey or multi-channel, 2D or 3D (see the module's layout rule).
    c : int
        Number of clusters, ``>= 1``.
    m : float
        Fuzzifier, ``> 1`` (default 2).
    seed : int or numpy.random.Generator
        Seed of the k-means++ initial centres.
    max_iter : int
        Most iterations (default 300).
    tol : float
        **Stopping rule**: stop when no membership changes by more than ``tol`` (default 1e-4)
        between two iterations, or after ``max_iter`` iterations.
    order_by : ndarray of the spatial shape, optional
        Grey image that orders the clusters. Default: the average of the channels. When given,
        its number of dimensions also settles the layout (a stack of 6 features ``(6, H, W)``
        with a ``(H, W)`` ``order_by`` is a 2D image, not a volume).
    spatial_dims : {2, 3, None}
        See the module's layout rule.

    Returns
    -------
    labels : ndarray of int64, the spatial shape
        ``argmax`` of the memberships, clusters numbered like :func:`kmeans_segment`: by centre
        intensity, darkest first (the intensity of a centre is the ``u^m``-weighted mean of the
        channel average, which is the channel average of the centre itself).
    memberships : (c, *spatial) ndarray of float32
        ``memberships[i]`` is the membership map of cluster ``i`` (same numbering as
        ``labels``); they sum to 1 over the clusters at every pixel.

    Notes
    -----
    See :func:`fcm` for the algorithm. The memberships say how ambiguous each pixel is: a pixel
    on a blurred boundary, or in a noisy region, has memberships near ``1 / c``.

    Examples
    --------
    >>> image = np.zeros((6, 6)); image[:, 3:] = 1.0; image[0, 0] = 0.4
    >>> labels, u = fuzzy_cmeans(image, 2)
    >>> labels[0].tolist(), u.shape, bool(np.allclose(u.sum(axis=0), 1))
    ([0, 0, 0, 1, 1, 1], (2, 6, 6), True)
    >>> round(float(u[1, 0, 0]), 2)        # the 0.4 pixel is partly bright
    0.3

    Introduced in 05_clustering.
    """
    arr = _split_channels(image, _dims_from(order_by, spatial_dims))
    c = _check_int(c, "c", 1)
    m = _check_real(m, "m", low=1.0, low_open=True, fix="the fuzzifier must be > 1, e.g. 2.0")
    max_iter = _check_int(max_iter, "max_iter", 1)
    tol = _check_real(tol, "tol", low=0.0)
    return _fcm_image(arr, c, m, seed, max_iter, tol, order_by)


def spatial_fuzzy_cmeans(image, c: int, m: float = 2.0, alpha: float = 2.0, seed=0, *,
                         size: int = 3, filter: str = "mean", max_iter: int = 300,
                         tol: float = 1e-4, order_by=None, spatial_dims: int | None = None):
    """Fuzzy c-means with a neighbourhood term (FCM_S1 of Chen and Zhang): robust to noise.

    Parameters
    ----------
    image : (H, W), (C, H, W), (D, H, W) or (C, D, H, W) array_like
        Grey or multi-channel, 2D or 3D (see the module's layout rule).
    c : int
        Number of clusters, ``>= 1``.
    m : float
        Fuzzifier, ``> 1``.
    alpha : float
        Weight of the neighbourhood term, ``>= 0``; 0 gives plain :func:`fuzzy_cmeans`. Larger
        values trust the neighbourhood more (less noise, rounder boundaries, lost thin
        structures).
    seed : int or numpy.random.Generator
        Seed of the k-means++ initial centres.
    size : int
        Side of the neighbourhood window (``size`` pixels along every spatial axis), ``>= 1``.
    filter : {"mean", "median"}
        How the neighbourhood is summarised: FCM_S1 (mean) or FCM_S2 (median, which keeps edges
        sharper and resists impulse noise).
    max_iter, tol, order_by, spatial_dims
        As in :func:`fuzzy_cmeans` (same stopping rule).

    Returns
    -------
    labels : ndarray of int64, the spatial shape
    memberships : (c, *spatial) ndarray of float32
        As in :func:`fuzzy_cmeans`.

    Notes
    -----
    FCM_S1 [1]_ adds to the FCM objective a term that pulls each pixel's memberships towards
    those its filtered neighbourhood ``x̄`` would get::

        J = sum_i sum_n u_in^m (||x_n - v_i||^2 + alpha ||x̄_n - v_i||^2)

    whose updates are ``u_in = 1 / sum_j (D_in / D_jn)^(1/(m-1))`` with
    ``D_in = ||x_n - v_i||^2 + alpha ||x̄_n - v_i||^2``, and
    ``v_i = sum_n u_in^m (x_n + alpha x̄_n) / ((1 + alpha) sum_n u_in^m)``.
    The filtered image is computed once, so an iteration costs about twice a plain FCM one.

    What it fixes: isolated noisy pixels, which the neighbourhood term outvotes. What it does not
    fix: a smooth **bias field**, which shifts the pixel and its neighbourhood alike, so both
    terms agree on the wrong cluster.

    References
    ----------
    .. [1] Chen and Zhang. "Robust image segmentation using FCM with spatial constraints based on
       new kernel-induced distance measure", IEEE Trans. Syst. Man Cybern. B 34(4), 1907-1916,
       2004. doi:10.1109/TSMCB.2004.831165

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clean = np.zeros((32, 32)); clean[8:24, 8:24] = 1.0
    >>> noisy = clean + rng.normal(0, 0.45, clean.shape)
    >>> plain, _ = fuzzy_cmeans(noisy, 2)
    >>> spatial, _ = spatial_fuzzy_cmeans(noisy, 2, alpha=3.0)
    >>> int((plain != clean).sum()) > 5 * int((spatial != clean).sum())
    True

    Introduced in 05_clustering.
    """
    arr = _split_channels(image, _dims_from(order_by, spatial_dims))
    c = _check_int(c, "c", 1)
    m = _check_real(m, "m", low=1.0, low_open=True, fix="the fuzzifier must be > 1, e.g. 2.0")
    alpha = _check_real(alpha, "alpha", low=0.0, fix="it weighs the neighbourhood term, e.g. 2.0")
    size = _check_int(size, "size", 1, fix="it is the window side in pixels, e.g. 3")
    if filter not in ("mean", "median"):
        raise ValueError(f"filter must be 'mean' (FCM_S1) or 'median' (FCM_S2), got {filter!r}")
    max_iter = _check_int(max_iter, "max_iter", 1)
    tol = _check_real(tol, "tol", low=0.0)
    return _fcm_image(arr, c, m, seed, max_iter, tol, order_by, alpha=alpha, size=size,
                      filter=filter)


def best_matching_cluster(labels, target):
    """The cluster that best matches a ground-truth mask, and its Dice.

    Parameters
    ----------
    labels : (*spatial) ndarray of int
        A cluster label map (e.g. from :func:`kmeans_segment`).
    target : (*spatial) ndarray
        Ground-truth mask; every non-zero pixel is foreground.

    Returns
    -------
    label : int
        The cluster whose mask ``labels == label`` has the highest Dice with ``target``.
    dice : float
        That Dice.

    Notes
    -----
    A diagnostic that uses the ground truth: it tells how good clustering *could* be if we knew
    which cluster to take. A segmentation method must pick the cluster without it (for nuclei:
    the brightest cluster after :func:`~medseg_course.data.transforms.nuclei_bright`).

    Examples
    --------
    >>> labels = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    >>> best_matching_cluster(labels, labels == 1)
    (1, 1.0)

    Introduced in 05_clustering.
    """
    from medseg_course.metrics import dice

    labels = np.asarray(labels)
    target = np.asarray(target)
    if labels.dtype.kind not in "iub":
        raise TypeError(f"labels must be an integer label map, got dtype {labels.dtype}")
    if labels.shape != target.shape:
        raise ValueError(f"labels and target must have the same shape, got {labels.shape} and "
                         f"{target.shape}")
    target = target != 0
    scores = {int(v): float(dice(labels == v, target)) for v in np.unique(labels)}
    best = max(scores, key=lambda v: (scores[v], -v))
    return best, scores[best]


# --------------------------------------------------------------------------------------------
# One-line nuclei segmentation for the results table
# --------------------------------------------------------------------------------------------
def _grey_for_nuclei(image, category):
    from medseg_course.data.transforms import nuclei_bright

    arr = np.asarray(image)
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must be a DSB2018 sample's (C, H, W) image (or (H, W)), got shape "
                         f"{arr.shape}")
    return nuclei_bright(arr, category)


def _nuclei_mask(labels, k):
    return labels == k - 1


def segment_kmeans(image, category: str | None = None, *, k: int = 2, seed=0) -> np.ndarray:
    """Nuclei by k-means: the brightest of ``k`` intensity clusters of the nuclei-bright image.

    Parameters
    ----------
    image : (C, H, W) or (H, W) ndarray
        A DSB2018 ``sample.image`` (C = 1 fluorescence, 3 brightfield).
    category : str, optional
        ``sample.category``; brightfield images are inverted so that nuclei are bright (see
        :func:`~medseg_course.data.transforms.nuclei_bright`, which guesses without it).
    k : int
        Number of clusters (default 2: nuclei against everything else).
    seed : int
        Seed of the k-means++ initialisation.

    Returns
    -------
    (H, W) ndarray of bool
        The brightest cluster (label ``k - 1``), which is the rule for picking the nuclei.

    Examples
    --------
    >>> image = np.full((1, 16, 16), 0.1); image[0, 4:9, 4:9] = 0.8
    >>> int(segment_kmeans(image).sum())
    25

    Introduced in 05_clustering.
    """
    grey = _grey_for_nuclei(image, category)
    if np.ptp(grey) == 0:
        return np.zeros(grey.shape, dtype=bool)
    return _nuclei_mask(kmeans_segment(grey, k, seed), k)


def segment_fcm(image, category: str | None = None, *, c: int = 2, m: float = 2.0,
                seed=0) -> np.ndarray:
    """Nuclei by fuzzy c-means: the brightest of ``c`` clusters (argmax of the memberships).

    Parameters
    ----------
    image : (C, H, W) or (H, W) ndarray
        A DSB2018 ``sample.image``.
    category : str, optional
        ``sample.category`` (see :func:`segment_kmeans`).
    c : int
        Number of clusters (default 2).
    m : float
        Fuzzifier (default 2).
    seed : int
        Seed of the initial centres.

    Returns
    -------
    (H, W) ndarray of bool

    Examples
    --------
    >>> image = np.full((1, 16, 16), 0.1); image[0, 4:9, 4:9] = 0.8
    >>> int(segment_fcm(image).sum())
    25

    Introduced in 05_clustering.
    """
    grey = _grey_for_nuclei(image, category)
    if np.ptp(grey) == 0:
        return np.zeros(grey.shape, dtype=bool)
    labels, _ = fuzzy_cmeans(grey, c, m, seed)
    return _nuclei_mask(labels, c)


def segment_spatial_fcm(image, category: str | None = None, *, c: int = 2, m: float = 2.0,
                        alpha: float = 2.0, size: int = 3, seed=0) -> np.ndarray:
    """Nuclei by spatial fuzzy c-means (FCM_S1): the brightest of ``c`` clusters.

    Parameters
    ----------
    image : (C, H, W) or (H, W) ndarray
        A DSB2018 ``sample.image``.
    category : str, optional
        ``sample.category`` (see :func:`segment_kmeans`).
    c, m, alpha, size
        As in :func:`spatial_fuzzy_cmeans` (defaults: 2 clusters, m = 2, alpha = 2, 3x3 mean).
    seed : int
        Seed of the initial centres.

    Returns
    -------
    (H, W) ndarray of bool

    Examples
    --------
    >>> image = np.full((1, 16, 16), 0.1); image[0, 4:9, 4:9] = 0.8
    >>> int(segment_spatial_fcm(image).sum())
    25

    Introduced in 05_clustering.
    """
    grey = _grey_for_nuclei(image, category)
    if np.ptp(grey) == 0:
        return np.zeros(grey.shape, dtype=bool)
    labels, _ = spatial_fuzzy_cmeans(grey, c, m, alpha, seed, size=size)
    return _nuclei_mask(labels, c)
