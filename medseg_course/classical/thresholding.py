"""Thresholding: one intensity cut (global, Otsu), several cuts (multi-level Otsu), a cut that
follows the image (local / adaptive), and the oracle that says how good any cut could be.

Every function works on a grey image of any dimension (a 2D slide or a 3D volume) unless it says
otherwise, never modifies its input, and follows one convention: **a pixel is foreground when its
intensity is strictly greater than the threshold** (``image > t``), as in scikit-image.

The ``segment_*`` functions are the one-line recipes the course's results table runs on the
DSB2018 nuclei images: they take ``sample.image`` (C, H, W) and ``sample.category`` and return a
boolean (H, W) mask.

Introduced in 02_thresholding.
"""

from __future__ import annotations

import itertools
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from medseg_course.data.transforms import nuclei_bright

__all__ = [
    "threshold_mask",
    "histogram",
    "between_class_variance",
    "otsu_from_histogram",
    "otsu_threshold",
    "multi_otsu_thresholds",
    "apply_thresholds",
    "local_mean",
    "local_threshold",
    "ThresholdSearch",
    "best_threshold",
    "segment_otsu",
    "segment_smoothed_otsu",
    "segment_multiotsu",
    "segment_adaptive",
]


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------

def _check_image(image, name: str = "image", *, ndim: tuple[int, ...] | None = None) -> np.ndarray:
    """A real-valued, finite, non-empty array (not a mask, not complex), returned as given."""
    arr = np.asarray(image)
    if arr.dtype == bool:
        raise TypeError(f"{name} is a boolean array, i.e. already a mask; pass the grey-level "
                        "image (convert with image.astype(float) if you really mean 0/1 values)")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass an image with at least one pixel")
    if ndim is not None and arr.ndim not in ndim:
        wanted = " or ".join(f"{d}D" for d in ndim)
        raise ValueError(f"{name} must be {wanted}, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; replace them first, "
                         "e.g. np.nan_to_num(image)")
    return arr


def _check_nbins(nbins) -> int:
    if isinstance(nbins, bool) or not isinstance(nbins, Integral) or nbins < 2:
        raise ValueError(f"nbins must be an integer >= 2, got {nbins!r}; 256 is the usual choice")
    return int(nbins)


def _check_real(value, name: str, fix: str = "") -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}" + (f"; {fix}" if fix else ""))
    return float(value)


def _check_block_size(block_size, ndim: int) -> tuple[int, ...]:
    sizes = (block_size,) * ndim if np.isscalar(block_size) else tuple(block_size)
    if len(sizes) != ndim:
        raise ValueError(f"block_size must be one odd integer or one per axis ({ndim}), got {block_size!r}")
    for b in sizes:
        if isinstance(b, bool) or not isinstance(b, Integral) or b < 1 or b % 2 == 0:
            raise ValueError(f"block_size must be an odd positive integer (3, 5, ..., 51), got {block_size!r}; "
                             "an odd window has a centre pixel")
    return tuple(int(b) for b in sizes)


# --------------------------------------------------------------------------------------------
# a global threshold
# --------------------------------------------------------------------------------------------

def threshold_mask(image, threshold) -> np.ndarray:
    """The foreground of ``image`` above one threshold: ``image > threshold``.

    Parameters
    ----------
    image : ndarray, any shape
        Grey-level intensities.
    threshold : float or ndarray broadcastable to ``image``
        A global threshold, or a threshold image (one value per pixel, as
        :func:`local_threshold` returns).

    Returns
    -------
    ndarray of bool, same shape as ``image``
        True where the intensity is strictly greater than the threshold.

    Raises
    ------
    TypeError
        If ``image`` is not a real-valued array, or ``threshold`` is not a number or an array.
    ValueError
        If a threshold image does not broadcast to ``image``.

    Examples
    --------
    >>> threshold_mask(np.array([0.1, 0.5, 0.9]), 0.5)  # 0.5 itself stays background
    array([False, False,  True])

    Introduced in 02_thresholding.
    """
    arr = _check_image(image)
    t = np.asarray(threshold)
    if t.dtype.kind not in "iuf":
        raise TypeError(f"threshold must be a number or an array of numbers, got {threshold!r}")
    try:
        np.broadcast_shapes(t.shape, arr.shape)
    except ValueError:
        raise ValueError(f"threshold of shape {t.shape} does not match image of shape {arr.shape}; "
                         "pass one number or a threshold image of the image's shape") from None
    return np.asarray(arr > t)


# --------------------------------------------------------------------------------------------
# Otsu
# --------------------------------------------------------------------------------------------

def histogram(image, nbins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The intensity histogram Otsu's method works on: counts and bin centres.

    Parameters
    ----------
    image : ndarray, any shape
        Grey-level intensities.
    nbins : int, default 256
        Number of equal-width bins spanning ``[image.min(), image.max()]`` for float images.
        Integer images get one bin per integer value from their minimum to their maximum instead
        (``nbins`` is ignored), as in :func:`skimage.exposure.histogram`.

    Returns
    -------
    counts : (nbins,) ndarray of int64
        Number of pixels in each bin.
    centers : (nbins,) ndarray of float
        The intensity at the centre of each bin (same float type as a float image).

    Raises
    ------
    TypeError, ValueError
        If ``image`` is not a finite real-valued array, or ``nbins < 2``.

    Examples
    --------
    >>> counts, centers = histogram(np.array([0.0, 0.0, 0.1, 1.0]), nbins=4)
    >>> counts.tolist(), centers.tolist()
    ([3, 0, 0, 1], [0.125, 0.375, 0.625, 0.875])
    >>> histogram(np.array([[3, 5], [5, 5]], dtype=np.uint8))[0].tolist()  # one bin per integer 3, 4, 5
    [1, 0, 3]

    Introduced in 02_thresholding.
    """
    arr = _check_image(image)
    nbins = _check_nbins(nbins)
    flat = arr.ravel()
    if arr.dtype.kind in "iu":
        lo, hi = int(flat.min()), int(flat.max())
        counts = np.bincount((flat.astype(np.int64) - lo), minlength=hi - lo + 1)
        return counts.astype(np.int64), np.arange(lo, hi + 1)
    counts, edges = np.histogram(flat, bins=nbins)  # range = [min, max], edges in the image's float type
    return counts.astype(np.int64), (edges[:-1] + edges[1:]) / 2


def _check_histogram(counts, centers) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(counts)
    x = np.asarray(centers)
    if c.dtype.kind not in "iuf" or c.ndim != 1:
        raise ValueError(f"counts must be a 1D array of numbers, got {c.dtype} of shape {c.shape}")
    if x.shape != c.shape or x.dtype.kind not in "iuf":
        raise ValueError(f"centers must be a 1D array of numbers with one value per bin ({c.shape[0]}), "
                         f"got shape {x.shape}")
    if c.size < 2:
        raise ValueError(f"a histogram needs at least 2 bins to place a threshold between them, got {c.size}")
    if not np.all(np.isfinite(c)) or np.any(c < 0) or c.sum() <= 0:
        raise ValueError("counts must be finite, non-negative and not all zero (they count pixels)")
    if not np.all(np.isfinite(x)) or np.any(np.diff(x) <= 0):
        raise ValueError("centers must be finite and strictly increasing (one intensity per bin, in order)")
    return c.astype(np.float64), x


def between_class_variance(counts, centers) -> np.ndarray:
    """Otsu's criterion for every threshold a histogram allows.

    Splitting after bin ``k`` puts bins ``0..k`` in class 0 (background) and bins ``k+1..`` in
    class 1 (foreground). With ``w0, w1`` the fractions of pixels and ``mu0, mu1`` the mean
    intensities of the two classes, the between-class variance is
    ``sigma_B^2(k) = w0 * w1 * (mu0 - mu1)^2``.

    Parameters
    ----------
    counts : (n,) array_like
        Pixel counts per bin (non-negative, not all zero).
    centers : (n,) array_like
        Intensity of each bin, strictly increasing.

    Returns
    -------
    (n - 1,) ndarray of float64
        ``sigma_B^2`` for a split after bin 0, 1, ..., n-2 (in squared intensity units). A split
        that leaves one class empty scores 0.

    Raises
    ------
    ValueError
        If the histogram is not valid (see ``counts`` and ``centers``).

    Notes
    -----
    The total variance is the sum of the within-class and between-class variances
    (``sigma^2 = w0 sigma0^2 + w1 sigma1^2 + sigma_B^2``) and does not depend on the threshold,
    so maximising ``sigma_B^2`` and minimising the within-class variance choose the same
    threshold; ``sigma_B^2`` needs only cumulative sums, so every threshold costs O(1).

    Examples
    --------
    Two bins of 2 pixels each, at intensities 0 and 1: w0 = w1 = 1/2, mu0 - mu1 = -1.

    >>> between_class_variance([2, 2], [0.0, 1.0]).tolist()
    [0.25]

    Introduced in 02_thresholding.
    """
    c, x = _check_histogram(counts, centers)
    p = c / c.sum()
    w0 = np.cumsum(p)[:-1]                       # class 0 = bins 0..k: weight
    m0 = np.cumsum(p * x)[:-1]                   # and first moment
    w1 = np.cumsum(p[::-1])[::-1][1:]            # class 1 = bins k+1..n-1, summed from its end
    m1 = np.cumsum((p * x)[::-1])[::-1][1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        mu0 = np.where(w0 > 0, m0 / w0, 0.0)
        mu1 = np.where(w1 > 0, m1 / w1, 0.0)
    return np.where((w0 > 0) & (w1 > 0), w0 * w1 * (mu0 - mu1) ** 2, 0.0)


def otsu_from_histogram(counts, centers) -> float:
    """Otsu's threshold from a histogram: the bin centre that maximises the between-class variance.

    Parameters
    ----------
    counts : (n,) array_like
        Pixel counts per bin.
    centers : (n,) array_like
        Intensity of each bin, strictly increasing.

    Returns
    -------
    float
        ``centers[k]`` for the split ``k`` maximising :func:`between_class_variance`: the last
        bin of the background, so that ``image > threshold`` is the foreground. Ties go to the
        lowest ``k`` (``np.argmax``).

    Raises
    ------
    ValueError
        If the histogram is not valid.

    Examples
    --------
    >>> otsu_from_histogram([5, 3, 0, 0, 4, 6], [0, 1, 2, 3, 4, 5])  # ties over the empty bins
    1.0

    Introduced in 02_thresholding.
    """
    variance = between_class_variance(counts, centers)
    return float(np.asarray(centers)[int(np.argmax(variance))])


def otsu_threshold(image, nbins: int = 256) -> float:
    """Otsu's threshold of a grey image, computed from its histogram.

    Otsu's method picks the threshold that best separates the intensity histogram into two
    classes: the one maximising the between-class variance ``w0 * w1 * (mu0 - mu1)^2``
    (equivalently, minimising the pixel-weighted variance within the classes).

    Parameters
    ----------
    image : ndarray, any shape
        Grey-level intensities (one channel: convert colour images first, for example with
        :func:`medseg_course.data.transforms.nuclei_bright`).
    nbins : int, default 256
        Histogram bins over the image's range (float images; integer images use one bin per
        integer value, see :func:`histogram`).

    Returns
    -------
    float
        The threshold; ``image > threshold`` is the bright class. A constant image returns its
        value (nothing is brighter).

    Raises
    ------
    TypeError, ValueError
        If ``image`` is not a finite real-valued array, or ``nbins < 2``.

    Notes
    -----
    The result equals :func:`skimage.filters.threshold_otsu` on the same input (same bins and
    bin centres; the criterion is computed in float64 here, in float32 there, which can only
    matter for near-exact ties). The cost is one pass over the pixels for the histogram, then
    O(nbins) for all thresholds.

    References
    ----------
    .. [1] N. Otsu, "A threshold selection method from gray-level histograms", IEEE Transactions
       on Systems, Man, and Cybernetics 9(1), 62-66, 1979. doi:10.1109/TSMC.1979.4310076

    Examples
    --------
    >>> image = np.array([[0.1, 0.2, 0.8], [0.1, 0.9, 0.8]])
    >>> t = otsu_threshold(image)
    >>> 0.2 <= t < 0.8
    True
    >>> (image > t).astype(int)
    array([[0, 0, 1],
           [0, 1, 1]])

    Introduced in 02_thresholding.
    """
    arr = _check_image(image)
    nbins = _check_nbins(nbins)
    lo, hi = arr.min(), arr.max()
    if lo == hi:
        return float(lo)
    counts, centers = histogram(arr, nbins)
    return otsu_from_histogram(counts, centers)


# --------------------------------------------------------------------------------------------
# multi-level Otsu
# --------------------------------------------------------------------------------------------

_MAX_MULTI_BINS = 1024


def multi_otsu_thresholds(image, classes: int = 3, nbins: int = 256) -> np.ndarray:
    """Otsu's method for several classes: ``classes - 1`` thresholds maximising the
    between-class variance.

    Parameters
    ----------
    image : ndarray, any shape
        Grey-level intensities.
    classes : int, default 3
        Number of intensity classes, ``>= 2`` (``classes=2`` gives :func:`otsu_threshold`).
    nbins : int, default 256
        Histogram bins (see :func:`histogram`).

    Returns
    -------
    (classes - 1,) ndarray of float
        Increasing thresholds, each the last bin centre of a class; turn them into a label map
        with :func:`apply_thresholds`.

    Raises
    ------
    TypeError, ValueError
        If ``image`` is not a finite real array, ``classes < 2``, the histogram has fewer
        occupied bins than ``classes``, or an integer image spans more than 1024 values.

    Notes
    -----
    With ``p`` the bin probabilities, a split into classes with weights ``W_k`` and first moments
    ``S_k`` has between-class variance ``sum_k S_k^2 / W_k - mu^2``, a sum of independent terms.
    Dynamic programming over the bins therefore finds the exact optimum in
    O(classes * nbins^2) operations, where trying every combination costs O(nbins^(classes-1)).
    The answer equals :func:`skimage.filters.threshold_multiotsu` (which uses the look-up-table
    search of Liao et al.) up to exact ties.

    References
    ----------
    .. [1] P.-S. Liao, T.-S. Chen, P.-C. Chung, "A fast algorithm for multilevel thresholding",
       Journal of Information Science and Engineering 17(5), 713-727, 2001.

    Examples
    --------
    >>> image = np.repeat([0.0, 0.5, 1.0], 4)
    >>> t = multi_otsu_thresholds(image, classes=3, nbins=8)
    >>> apply_thresholds(image, t).tolist()
    [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]

    Introduced in 02_thresholding.
    """
    arr = _check_image(image)
    if isinstance(classes, bool) or not isinstance(classes, Integral) or classes < 2:
        raise ValueError(f"classes must be an integer >= 2, got {classes!r}")
    counts, centers = histogram(arr, _check_nbins(nbins))
    if counts.size > _MAX_MULTI_BINS:
        raise ValueError(f"the integer image spans {counts.size} values, one histogram bin each: too many "
                         f"for multi-level Otsu (at most {_MAX_MULTI_BINS}); convert it to float, "
                         "image.astype(float), to use nbins equal bins")
    occupied = np.flatnonzero(counts)
    if occupied.size < classes:
        raise ValueError(f"the image has only {occupied.size} occupied histogram bins, too few for "
                         f"{classes} classes; lower classes or raise nbins")
    if occupied.size == classes:          # one class per occupied bin
        return np.asarray(centers[occupied[:-1]], dtype=float)
    p = counts / counts.sum()
    P = np.concatenate([[0.0], np.cumsum(p)])            # P[j] = sum of p[0..j-1]
    S = np.concatenate([[0.0], np.cumsum(p * np.asarray(centers, dtype=np.float64))])
    n = p.size
    i, j = np.triu_indices(n + 1, k=1)                    # class = bins i..j-1, i < j
    w = P[j] - P[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(w > 0, (S[j] - S[i]) ** 2 / w, 0.0)
    score = np.full((n + 1, n + 1), -np.inf)
    score[i, j] = term                                   # score[i, j]: one class of bins i..j-1
    best = score[0].copy()                               # best[j]: bins 0..j-1 in one class
    back = []
    for _ in range(classes - 1):
        total = best[:, None] + score                    # last class bins i..j-1 after the others
        arg = np.argmax(total, axis=0)                   # first maximum: lowest split
        best = total[arg, np.arange(n + 1)]
        back.append(arg)
    cuts, j = [], n
    for arg in reversed(back):
        j = int(arg[j])
        cuts.append(j)                                   # a class starts at bin j
    return np.asarray(centers[np.array(cuts[::-1]) - 1], dtype=float)


def apply_thresholds(image, thresholds) -> np.ndarray:
    """The class of every pixel given increasing thresholds: 0 up to the first, 1 up to the
    second, and so on (``t[k-1] < x <= t[k]`` is class ``k``).

    Parameters
    ----------
    image : ndarray, any shape
    thresholds : (K,) array_like
        Increasing thresholds, e.g. from :func:`multi_otsu_thresholds`.

    Returns
    -------
    ndarray of int64, same shape as ``image``
        Labels ``0..K``. With one threshold it is ``image > t`` as integers.

    Raises
    ------
    ValueError
        If ``thresholds`` is empty or not increasing.

    Notes
    -----
    A pixel equal to a threshold stays in the lower class, as with ``image > t``.
    (``np.digitize(image, t)``, used in scikit-image's example, puts it in the upper class.)

    Examples
    --------
    >>> apply_thresholds(np.array([0.0, 1.0, 1.5, 2.0, 3.0]), [1.0, 2.0]).tolist()
    [0, 0, 1, 1, 2]

    Introduced in 02_thresholding.
    """
    arr = _check_image(image)
    t = np.asarray(thresholds, dtype=np.float64).ravel()
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ValueError(f"thresholds must be a non-empty increasing sequence of numbers, got {thresholds!r}")
    return np.digitize(arr, t, right=True).astype(np.int64)


# --------------------------------------------------------------------------------------------
# local (adaptive) thresholds
# --------------------------------------------------------------------------------------------

def local_mean(image, size) -> np.ndarray:
    """Mean of every ``size``-wide box around each pixel, with an integral image.

    Parameters
    ----------
    image : ndarray, any dimension
        Grey-level intensities.
    size : int or sequence of int
        Odd box width per axis (one number for all axes).

    Returns
    -------
    ndarray of float64, same shape as ``image``
        The local mean. Beyond the border the image is mirrored (``d c b a | a b c d``), as in
        :func:`scipy.ndimage.uniform_filter` with ``mode="reflect"``, which gives the same values.

    Raises
    ------
    TypeError, ValueError
        If ``image`` is not a finite real array, or ``size`` is not odd and positive.

    Notes
    -----
    The integral image (summed-area table) ``I[y, x] = sum of image[:y, :x]`` turns any box sum
    into four look-ups, ``I[y1, x1] - I[y0, x1] - I[y1, x0] + I[y0, x0]`` (2^d in d dimensions),
    so the cost does not depend on the box size. This is how adaptive thresholding with large
    windows stays fast (Bradley and Roth, 2007).

    References
    ----------
    .. [1] F. C. Crow, "Summed-area tables for texture mapping", SIGGRAPH 1984.
    .. [2] D. Bradley, G. Roth, "Adaptive thresholding using the integral image", Journal of
       Graphics Tools 12(2), 13-21, 2007.

    Examples
    --------
    >>> local_mean(np.array([[0.0, 0.0, 9.0]]), 3).tolist()   # mirrored border: 0 | 0 0 9 | 9
    [[0.0, 3.0, 6.0]]

    Introduced in 02_thresholding.
    """
    arr = _check_image(image).astype(np.float64)
    sizes = _check_block_size(size, arr.ndim)
    radii = [b // 2 for b in sizes]
    centre = float(arr.mean())             # summing deviations keeps the running sums small (fewer rounding errors)
    padded = np.pad(arr - centre, [(r, r) for r in radii], mode="symmetric")
    table = padded
    for axis in range(arr.ndim):                          # integral image, with a leading 0 row
        table = np.cumsum(table, axis=axis)
        table = np.concatenate([np.zeros_like(np.take(table, [0], axis=axis)), table], axis=axis)
    total = np.zeros(arr.shape)
    for corner in itertools.product((0, 1), repeat=arr.ndim):
        index = tuple(slice(b, b + n) if hi else slice(0, n) for hi, b, n in zip(corner, sizes, arr.shape))
        sign = (-1) ** (arr.ndim - sum(corner))
        total += sign * table[index]
    return total / float(np.prod(sizes)) + centre


def local_threshold(image, block_size, *, method: str = "gaussian", offset: float = 0.0) -> np.ndarray:
    """A threshold image: the local (weighted) mean around each pixel, minus ``offset``.

    Parameters
    ----------
    image : ndarray, any dimension
        Grey-level intensities.
    block_size : int or sequence of int
        Odd size of the neighbourhood per axis. Choose it larger than the objects (about 2 to 3
        diameters), else the local mean inside a large object is the object itself.
    method : {"gaussian", "mean"}, default "gaussian"
        ``"mean"``: the box mean (:func:`local_mean`); ``"gaussian"``: a Gaussian-weighted mean
        with ``sigma = (block_size - 1) / 6``, so the window holds 99.7 % of the weight.
    offset : float, default 0
        Subtracted from the local mean. A negative offset asks a pixel to be brighter than its
        surroundings by ``-offset`` to count as foreground, which keeps flat background noise out.

    Returns
    -------
    ndarray of float, same shape as ``image``
        The threshold of each pixel; the foreground is ``image > local_threshold(...)``.
        float32 for float32 images, float64 otherwise.

    Raises
    ------
    TypeError, ValueError
        If an argument is invalid; the message names it.

    Notes
    -----
    Equals :func:`skimage.filters.threshold_local` with ``mode="reflect"`` (its default) for
    these two methods.

    Examples
    --------
    A ramp of illumination with two bright spots: no global threshold finds both, the local one does.

    >>> image = np.tile(np.linspace(0.0, 1.0, 9), (3, 1)); image[1, 2] += 0.3; image[1, 7] += 0.3
    >>> (image > local_threshold(image, 3, method="mean", offset=-0.1)).astype(int)
    array([[0, 0, 0, 0, 0, 0, 0, 0, 0],
           [0, 0, 1, 0, 0, 0, 0, 1, 0],
           [0, 0, 0, 0, 0, 0, 0, 0, 0]])

    Introduced in 02_thresholding.
    """
    arr = _check_image(image)
    sizes = _check_block_size(block_size, arr.ndim)
    offset = _check_real(offset, "offset", "it is an intensity, e.g. -0.02")
    out_dtype = np.float32 if arr.dtype == np.float32 else np.float64
    if method == "mean":
        mean = local_mean(arr, sizes)
    elif method == "gaussian":
        sigma = tuple((b - 1) / 6.0 for b in sizes)
        mean = ndimage.gaussian_filter(arr.astype(out_dtype), sigma, mode="reflect")
    else:
        raise ValueError(f"method must be 'gaussian' or 'mean', got {method!r}")
    return (mean - offset).astype(out_dtype)


# --------------------------------------------------------------------------------------------
# the oracle: the best any single threshold can do
# --------------------------------------------------------------------------------------------

class ThresholdSearch(NamedTuple):
    """The result of :func:`best_threshold`.

    Attributes
    ----------
    low, high : float
        The mask is exactly ``(image > low) & (image <= high)``; ``low`` is ``-inf`` when the
        interval starts at the image's minimum, ``high`` is ``inf`` when it ends at its maximum.
        With ``interval=False``, ``high`` is ``inf`` and ``low`` is the best threshold.
    dice : float
        Dice of ``mask`` against the target.
    mask : ndarray of bool
        The best mask itself.

    Introduced in 02_thresholding.
    """

    low: float
    high: float
    dice: float
    mask: np.ndarray


def best_threshold(image, target, *, interval: bool = False, nbins: int = 256) -> ThresholdSearch:
    """The best Dice any intensity threshold can reach on ``image``, knowing the answer.

    An oracle, not a method: it looks at the ground truth. It bounds what thresholding can do on
    an image: if even the best cut scores a low Dice, the structure cannot be told from its
    surroundings by intensity alone.

    Parameters
    ----------
    image : ndarray, any shape
        Grey-level intensities.
    target : ndarray of bool or int, same shape
        The ground-truth mask (non-zero = object).
    interval : bool, default False
        False: one threshold, bright objects (``image > t``). True: an intensity interval
        ``low < image <= high``, for a structure that is neither the darkest nor the brightest.
    nbins : int, default 256
        Candidate thresholds are the edges of ``nbins`` equal bins over the image's range.

    Returns
    -------
    ThresholdSearch
        ``low``, ``high``, ``dice`` and the ``mask`` that reaches it.

    Raises
    ------
    TypeError, ValueError
        If the inputs are invalid or their shapes differ.

    Notes
    -----
    Dice of a set of whole bins is ``2 T / (A + |target|)`` with ``A`` the pixels and ``T`` the
    target pixels in those bins; cumulative sums give it for every one of the
    ``nbins (nbins + 1) / 2`` intervals at once.

    Examples
    --------
    >>> image = np.array([0.0, 0.2, 0.5, 0.55, 0.8, 1.0])
    >>> target = np.array([0, 0, 1, 1, 0, 0])
    >>> best_threshold(image, target).dice                       # one cut keeps 0.8 and 1.0 too
    0.6666666666666666
    >>> r = best_threshold(image, target, interval=True); r.dice, r.mask.astype(int).tolist()
    (1.0, [0, 0, 1, 1, 0, 0])

    Introduced in 02_thresholding.
    """
    arr = _check_image(image).astype(np.float64)
    truth = np.asarray(target)
    if truth.shape != arr.shape:
        raise ValueError(f"target must have the image's shape {arr.shape}, got {truth.shape}")
    if truth.dtype.kind not in "biu":
        raise TypeError(f"target must be a boolean or integer mask, got dtype {truth.dtype}")
    truth = truth != 0
    nbins = _check_nbins(nbins)
    lo, hi = arr.min(), arr.max()
    if lo == hi:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, nbins + 1)
    bins = np.clip(np.searchsorted(edges, arr.ravel(), side="left") - 1, 0, nbins - 1)
    all_counts = np.bincount(bins, minlength=nbins).astype(np.float64)
    obj_counts = np.bincount(bins, weights=truth.ravel().astype(np.float64), minlength=nbins)
    A = np.concatenate([[0.0], np.cumsum(all_counts)])
    T = np.concatenate([[0.0], np.cumsum(obj_counts)])
    n_truth = float(truth.sum())
    if interval:
        i, j = np.triu_indices(nbins + 1, k=1)          # bins i..j-1
    else:
        i, j = np.arange(nbins + 1), np.full(nbins + 1, nbins)    # bins i..nbins-1 (i = nbins: empty)
    size, hit = A[j] - A[i], T[j] - T[i]
    denom = size + n_truth
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(denom > 0, 2.0 * hit / denom, 1.0)
    k = int(np.argmax(dice))
    first, last = int(i[k]), int(j[k])
    mask = ((bins >= first) & (bins < last)).reshape(arr.shape)
    # bin b holds (edges[b], edges[b+1]] (the first bin also holds the minimum)
    low = float(edges[first]) if first > 0 else -np.inf
    high = float(edges[last]) if last < nbins else np.inf
    return ThresholdSearch(low, high, float(dice[k]), mask)


# --------------------------------------------------------------------------------------------
# recipes for DSB2018 samples (the course's results table)
# --------------------------------------------------------------------------------------------

def _sample_grey(image, category) -> np.ndarray:
    arr = _check_image(image, ndim=(2, 3))
    if arr.ndim == 3 and arr.shape[0] not in (1, 3):
        raise ValueError(f"image must be (H, W) or channel-first (C, H, W) with C = 1 or 3, got shape "
                         f"{arr.shape}; for a channel-last image use np.moveaxis(image, -1, 0)")
    if category is not None and not isinstance(category, str):
        raise TypeError(f"category must be a string such as sample.category, or None, got {category!r}")
    return nuclei_bright(arr, category)


def segment_otsu(image, category=None) -> np.ndarray:
    """Nuclei by one global Otsu threshold (bright nuclei after :func:`nuclei_bright`).

    Parameters
    ----------
    image : (C, H, W) or (H, W) ndarray
        A DSB2018 ``sample.image`` (C = 1 fluorescence, 3 brightfield).
    category : str, optional
        ``sample.category``; brightfield images are inverted (detected when omitted).

    Returns
    -------
    (H, W) ndarray of bool

    Examples
    --------
    >>> image = np.zeros((1, 8, 8), np.float32); image[0, 2:5, 2:5] = 1.0
    >>> int(segment_otsu(image).sum())
    9

    Introduced in 02_thresholding.
    """
    grey = _sample_grey(image, category)
    return grey > otsu_threshold(grey)


def segment_smoothed_otsu(image, category=None, *, sigma: float = 1.0) -> np.ndarray:
    """Nuclei by Otsu's threshold after Gaussian smoothing (``sigma`` in pixels).

    Smoothing averages the noise away before the cut (fewer speckles and holes) at the price of
    slightly rounder, shifted boundaries; 1 pixel is a good compromise on DSB2018.

    Parameters
    ----------
    image : (C, H, W) or (H, W) ndarray
    category : str, optional
    sigma : float, default 1.0
        Standard deviation of the Gaussian in pixels, ``>= 0``.

    Returns
    -------
    (H, W) ndarray of bool

    Examples
    --------
    A square under strong noise: Otsu alone leaves dozens of speckles, smoothing first leaves one object.

    >>> from scipy import ndimage
    >>> image = np.zeros((1, 32, 32)); image[0, 8:24, 8:24] = 1.0
    >>> noisy = image + np.random.default_rng(0).normal(0, 0.5, image.shape)
    >>> ndimage.label(segment_otsu(noisy))[1], ndimage.label(segment_smoothed_otsu(noisy))[1]
    (82, 1)

    Introduced in 02_thresholding.
    """
    sigma = _check_real(sigma, "sigma", "it is the Gaussian's standard deviation in pixels, e.g. 1.0")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    grey = _sample_grey(image, category)
    if sigma > 0:
        grey = ndimage.gaussian_filter(grey, sigma, mode="reflect")
    return grey > otsu_threshold(grey)


def segment_multiotsu(image, category=None, *, classes: int = 3) -> np.ndarray:
    """Nuclei as everything above the lowest of ``classes - 1`` multi-Otsu thresholds.

    With three classes (background, dim nuclei, bright nuclei), dim nuclei that one Otsu
    threshold would put in the background are kept.

    Parameters
    ----------
    image : (C, H, W) or (H, W) ndarray
    category : str, optional
    classes : int, default 3
        Number of intensity classes (fewer when the image has fewer distinct grey levels).

    Returns
    -------
    (H, W) ndarray of bool

    Examples
    --------
    >>> image = np.zeros((1, 8, 8), np.float32); image[0, 1:3, 1:3] = 0.4; image[0, 5:7, 5:7] = 1.0
    >>> int(segment_multiotsu(image).sum())     # the dim square and the bright one
    8

    Introduced in 02_thresholding.
    """
    grey = _sample_grey(image, category)
    if isinstance(classes, bool) or not isinstance(classes, Integral) or classes < 2:
        raise ValueError(f"classes must be an integer >= 2, got {classes!r}")
    occupied = int(np.count_nonzero(histogram(grey)[0]))
    if occupied < 2:
        return np.zeros(grey.shape, dtype=bool)
    return grey > multi_otsu_thresholds(grey, classes=min(classes, occupied))[0]


def segment_adaptive(image, category=None, *, block_size: int = 151, margin: float = 0.2) -> np.ndarray:
    """Nuclei by a local threshold: brighter than the Gaussian-weighted mean of their
    surroundings by a fraction of the nucleus-background contrast.

    Parameters
    ----------
    image : (C, H, W) or (H, W) ndarray
        A DSB2018 ``sample.image``.
    category : str, optional
        ``sample.category``; brightfield images are inverted (detected when omitted).
    block_size : int, default 151
        Odd window width in pixels (Gaussian ``sigma = (block_size - 1) / 6``, 25 px by default):
        several nucleus diameters, so that a clump of nuclei does not raise its own threshold.
    margin : float, default 0.2
        How far above its local mean a pixel must be, as a fraction of the image's contrast (the
        difference between the mean intensities of Otsu's two classes). Expressed this way one
        setting suits dim and bright images alike; the threshold image is
        ``local_threshold(grey, block_size, offset=-margin * contrast)``.

    Returns
    -------
    (H, W) ndarray of bool

    Notes
    -----
    ``block_size=151, margin=0.2`` scored best on the DSB2018 training split among block sizes
    31 to 201 and margins 0.1 to 0.5 (see 02_thresholding).

    Examples
    --------
    >>> image = np.zeros((1, 32, 32), np.float32); image[0, 10:16, 10:16] = 1.0
    >>> int(segment_adaptive(image, block_size=21).sum())
    36

    Introduced in 02_thresholding.
    """
    grey = _sample_grey(image, category).astype(np.float64)
    margin = _check_real(margin, "margin", "it is a fraction of the contrast, e.g. 0.2")
    _check_block_size(block_size, 2)
    t = otsu_threshold(grey)
    above, below = grey > t, grey <= t
    if not above.any():                    # a constant image: nothing stands out
        return np.zeros(grey.shape, dtype=bool)
    contrast = float(grey[above].mean() - grey[below].mean())
    return grey > local_threshold(grey, block_size, method="gaussian", offset=-margin * contrast)
