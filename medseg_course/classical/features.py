"""Pixel features: a documented bank of filters that describe each pixel by its neighbourhood.

A pixel classifier does not see an image, it sees a table: one row per pixel, one column per
*feature*. The features here are the classic ones of interactive pixel classifiers such as
ilastik [1]_ and the Trainable Weka Segmentation [2]_: the intensity, and filter responses at
several scales ``sigma`` (in pixels), each a Gaussian-derivative filter so that every scale sees
a neighbourhood of radius about ``3 * sigma``:

==============  =====================================================  ========================
family          what it computes, per channel and per ``sigma``         what it responds to
==============  =====================================================  ========================
``intensity``   the channel itself (no scale)                          bright or dark pixels
``gaussian``    ``G_sigma * I``: Gaussian smoothing                     mean brightness nearby,
                                                                        robust to noise
``gradient``    ``|grad(G_sigma * I)|``: gradient magnitude            edges (object borders)
``log``         ``laplacian(G_sigma * I)``: Laplacian of Gaussian      blobs of radius
                                                                        ``~ sigma * sqrt(2)``
                                                                        (negative inside
                                                                        bright blobs)
``std``         ``sqrt(G_sigma * I**2 - (G_sigma * I)**2)``: local      texture, local contrast
                standard deviation in a Gaussian window
``hessian``     the two eigenvalues ``l1 >= l2`` of the Hessian of     blob (both < 0), ridge
                ``G_sigma * I`` (two features per ``sigma``)            (one < 0), saddle
==============  =====================================================  ========================

Every filter comes from :mod:`scipy.ndimage` with its default border mode ``"reflect"`` (the
image mirrored at its edge). The stack is ``(F, H, W)``, channel-first like the images of the
course, float32, in a fixed order: channel, then family (in the order given), then ``sigma``
(:func:`feature_names` gives each plane's name).

Introduced in 04_classifiers.

References
----------
.. [1] Berg et al. "ilastik: interactive machine learning for (bio)image analysis", Nature
   Methods 16, 1226-1232, 2019. doi:10.1038/s41592-019-0582-9
.. [2] Arganda-Carreras et al. "Trainable Weka Segmentation: a machine learning tool for
   microscopy pixel classification", Bioinformatics 33(15), 2424-2426, 2017.
   doi:10.1093/bioinformatics/btx180
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from scipy import ndimage

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_SIGMAS",
    "FEATURE_FAMILIES",
    "feature_families",
    "feature_names",
    "hessian_eigenvalues",
    "local_std",
    "n_features",
    "pixel_features",
]

#: Every family of the bank, in its canonical order.
FEATURE_FAMILIES = ("intensity", "gaussian", "gradient", "log", "std", "hessian")
#: The families used by default: all of them.
DEFAULT_FEATURES = FEATURE_FAMILIES
#: Default scales in pixels: from fine detail (1) to the size of a large nucleus (8).
DEFAULT_SIGMAS = (1.0, 2.0, 4.0, 8.0)

#: Planes each family adds per channel and sigma (``intensity`` has no sigma: 1 per channel).
_PLANES = {"intensity": 1, "gaussian": 1, "gradient": 1, "log": 1, "std": 1, "hessian": 2}
_SHORT = {"gaussian": "gaussian", "gradient": "gradient", "log": "LoG", "std": "std"}


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------
def _check_sigmas(sigmas) -> tuple[float, ...]:
    if isinstance(sigmas, Real) and not isinstance(sigmas, bool):
        sigmas = (sigmas,)
    try:
        values = tuple(sigmas)
    except TypeError:
        raise TypeError(f"sigmas must be a sequence of positive numbers, e.g. (1, 2, 4), got "
                        f"{type(sigmas).__name__} {sigmas!r}") from None
    if not values:
        raise ValueError("sigmas must hold at least one scale, e.g. (1, 2, 4); got an empty sequence")
    out = []
    for s in values:
        if isinstance(s, bool) or not isinstance(s, Real) or not np.isfinite(s) or s <= 0:
            raise ValueError(f"sigmas must be positive finite numbers (scales in pixels), got {values!r}")
        out.append(float(s))
    if len(set(out)) != len(out):
        raise ValueError(f"sigmas must not repeat a scale, got {values!r}")
    return tuple(out)


def _check_features(features) -> tuple[str, ...]:
    if isinstance(features, str):
        features = (features,)
    try:
        values = tuple(features)
    except TypeError:
        raise TypeError(f"features must be a sequence of family names from {FEATURE_FAMILIES}, "
                        f"got {type(features).__name__} {features!r}") from None
    if not values:
        raise ValueError(f"features must name at least one family from {FEATURE_FAMILIES}, got "
                         "an empty sequence")
    unknown = [f for f in values if f not in FEATURE_FAMILIES]
    if unknown:
        raise ValueError(f"unknown feature family {unknown[0]!r} in features={values!r}; choose "
                         f"from {FEATURE_FAMILIES}")
    if len(set(values)) != len(values):
        raise ValueError(f"features must not repeat a family, got {values!r}")
    return values


def _as_channels(image, name: str = "image") -> np.ndarray:
    """Validate an (H, W) or (C, H, W) image; return it as (C, H, W) float32."""
    arr = np.asarray(image)
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real-valued numeric array, got dtype {arr.dtype}; "
                        f"convert it with {name}.astype(np.float32)")
    if arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim != 3:
        raise ValueError(f"{name} must be (H, W) or channel-first (C, H, W), got shape {arr.shape}")
    elif arr.shape[0] > 4 and arr.shape[-1] <= 4:
        raise ValueError(f"{name} has shape {arr.shape}, which looks channel-last (H, W, C); the "
                         f"course is channel-first: pass np.moveaxis({name}, -1, 0)")
    if min(arr.shape[1:]) < 2:
        raise ValueError(f"{name} must be at least 2x2 pixels, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; replace them first, "
                         f"e.g. np.nan_to_num({name})")
    return arr.astype(np.float32, copy=False)


def _channel_labels(n_channels: int) -> list[str]:
    if n_channels == 1:
        return [""]
    if n_channels == 3:
        return ["R ", "G ", "B "]
    return [f"c{i} " for i in range(n_channels)]


# --------------------------------------------------------------------------------------------
# single filters
# --------------------------------------------------------------------------------------------
def local_std(image, sigma: float) -> np.ndarray:
    """Local standard deviation of a 2D image in a Gaussian window of scale ``sigma``.

    Parameters
    ----------
    image : (H, W) ndarray
    sigma : float
        Standard deviation of the Gaussian window, in pixels, ``> 0``.

    Returns
    -------
    (H, W) ndarray of float32
        ``sqrt(max(G * I**2 - (G * I)**2, 0))``: zero on a flat region, large on texture and
        near edges.

    Examples
    --------
    >>> flat = np.full((8, 8), 3.0)
    >>> float(local_std(flat, 1.0).max())
    0.0
    >>> stripes = np.tile([0.0, 1.0], (8, 4))        # alternating columns 0, 1, 0, 1, ...
    >>> round(float(local_std(stripes, 2.0)[4, 4]), 2)  # close to the global std, 0.5
    0.5

    Introduced in 04_classifiers.
    """
    (sigma,) = _check_sigmas(sigma)
    img = _as_channels(image)
    if img.shape[0] != 1:
        raise ValueError(f"image must be 2D (H, W), got shape {np.shape(image)}; call it per channel")
    img = img[0].astype(np.float64)
    mean = ndimage.gaussian_filter(img, sigma)
    var = ndimage.gaussian_filter(img * img, sigma) - mean * mean
    return np.sqrt(np.maximum(var, 0.0)).astype(np.float32)


def hessian_eigenvalues(image, sigma: float) -> np.ndarray:
    """Eigenvalues of the Hessian of the Gaussian-smoothed 2D image, largest first.

    Parameters
    ----------
    image : (H, W) ndarray
    sigma : float
        Scale of the Gaussian derivatives, in pixels, ``> 0``.

    Returns
    -------
    (2, H, W) ndarray of float32
        ``l1 >= l2`` at every pixel. Inside a bright blob both are negative; on a bright ridge
        ``l2 << 0`` and ``l1 ~ 0``; on a dark blob both are positive.

    Notes
    -----
    With ``Hrr``, ``Hrc``, ``Hcc`` the second Gaussian derivatives (rows, columns), the
    eigenvalues of the symmetric 2x2 matrix are
    ``(Hrr + Hcc) / 2 +- sqrt(((Hrr - Hcc) / 2)**2 + Hrc**2)``. Their sum is the Laplacian of
    Gaussian. ``skimage.feature.hessian_matrix_eigvals(hessian_matrix(image, sigma,
    mode="reflect", order="rc", use_gaussian_derivatives=True))`` computes the same quantity
    as two first derivatives at scale ``sigma / sqrt(2)``; on a smooth image the two agree to
    within 1 % of the range away from the border, and differ within about ``3 * sigma`` of it
    (the derivative of a mirrored image is not the mirrored derivative).

    Examples
    --------
    >>> rr, cc = np.mgrid[-10:11, -10:11]
    >>> blob = np.exp(-(rr**2 + cc**2) / 8.0)        # a bright Gaussian blob
    >>> l1, l2 = hessian_eigenvalues(blob, 1.0)[:, 10, 10]
    >>> bool(l1 < 0 and l2 < 0), bool(np.isclose(l1, l2))   # a blob: both negative, equal
    (True, True)

    Introduced in 04_classifiers.
    """
    (sigma,) = _check_sigmas(sigma)
    img = _as_channels(image)
    if img.shape[0] != 1:
        raise ValueError(f"image must be 2D (H, W), got shape {np.shape(image)}; call it per channel")
    img = img[0].astype(np.float64)
    hrr = ndimage.gaussian_filter(img, sigma, order=(2, 0))
    hcc = ndimage.gaussian_filter(img, sigma, order=(0, 2))
    hrc = ndimage.gaussian_filter(img, sigma, order=(1, 1))
    mean = (hrr + hcc) / 2
    radius = np.sqrt(((hrr - hcc) / 2) ** 2 + hrc**2)
    return np.stack([mean + radius, mean - radius]).astype(np.float32)


# --------------------------------------------------------------------------------------------
# the bank
# --------------------------------------------------------------------------------------------
def n_features(n_channels: int = 1, sigmas=DEFAULT_SIGMAS, features=DEFAULT_FEATURES) -> int:
    """Number of planes ``F`` that :func:`pixel_features` returns.

    Parameters
    ----------
    n_channels : int
        Channels of the image (1 grey, 3 RGB).
    sigmas, features
        As for :func:`pixel_features`.

    Returns
    -------
    int
        ``n_channels * (intensity + sum over the other families of planes * len(sigmas))``.

    Examples
    --------
    >>> n_features(1, sigmas=(1, 2), features=("intensity", "gaussian", "gradient"))
    5
    >>> n_features(3)        # RGB, every family, 4 scales: 3 * (1 + 4 * 6)
    75

    Introduced in 04_classifiers.
    """
    if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
        raise ValueError(f"n_channels must be a positive int, got {n_channels!r}")
    sigmas, features = _check_sigmas(sigmas), _check_features(features)
    per_channel = sum(_PLANES[f] * (1 if f == "intensity" else len(sigmas)) for f in features)
    return int(n_channels) * per_channel


def feature_names(n_channels: int = 1, sigmas=DEFAULT_SIGMAS, features=DEFAULT_FEATURES) -> list[str]:
    """The name of each plane of :func:`pixel_features`, in the same order.

    Parameters
    ----------
    n_channels : int
        Channels of the image; with 3 the names start with ``"R "``, ``"G "``, ``"B "``, with
        another number above 1 with ``"c0 "``, ``"c1 "``...
    sigmas, features
        As for :func:`pixel_features`.

    Returns
    -------
    list of str
        ``F`` names such as ``"intensity"``, ``"gaussian σ=2"``, ``"LoG σ=4"``,
        ``"hessian λ1 σ=1"``.

    Examples
    --------
    >>> feature_names(1, sigmas=(1, 2), features=("intensity", "gaussian", "gradient"))
    ['intensity', 'gaussian σ=1', 'gaussian σ=2', 'gradient σ=1', 'gradient σ=2']
    >>> feature_names(3, sigmas=(2,), features=("log",))
    ['R LoG σ=2', 'G LoG σ=2', 'B LoG σ=2']

    Introduced in 04_classifiers.
    """
    n_features(n_channels, sigmas, features)  # validates the arguments
    sigmas, features = _check_sigmas(sigmas), _check_features(features)
    names = []
    for prefix in _channel_labels(int(n_channels)):
        for family in features:
            if family == "intensity":
                names.append(prefix + "intensity")
                continue
            for s in sigmas:
                scale = f"σ={s:g}"
                if family == "hessian":
                    names += [f"{prefix}hessian λ1 {scale}", f"{prefix}hessian λ2 {scale}"]
                else:
                    names.append(f"{prefix}{_SHORT[family]} {scale}")
    return names


def feature_families(n_channels: int = 1, sigmas=DEFAULT_SIGMAS, features=DEFAULT_FEATURES) -> list[str]:
    """The family of each plane of :func:`pixel_features`, in the same order.

    Parameters
    ----------
    n_channels, sigmas, features
        As for :func:`feature_names`.

    Returns
    -------
    list of str
        ``F`` family names; select planes of one family with
        ``[i for i, f in enumerate(families) if f == "log"]``.

    Examples
    --------
    >>> feature_families(1, sigmas=(1, 2), features=("intensity", "hessian"))
    ['intensity', 'hessian', 'hessian', 'hessian', 'hessian']

    Introduced in 04_classifiers.
    """
    n_features(n_channels, sigmas, features)  # validates the arguments
    sigmas, features = _check_sigmas(sigmas), _check_features(features)
    one = [f for f in features for _ in range(_PLANES[f] * (1 if f == "intensity" else len(sigmas)))]
    return one * int(n_channels)


def pixel_features(image, sigmas=DEFAULT_SIGMAS, features=DEFAULT_FEATURES) -> np.ndarray:
    """The feature stack of an image: every family of the bank at every scale, per channel.

    Parameters
    ----------
    image : (H, W) or (C, H, W) ndarray
        Grey or channel-first image (the course's loaders give ``(C, H, W)``; an RGB
        brightfield image gets its features computed on each of its 3 channels).
    sigmas : float or sequence of float
        Scales in pixels, each ``> 0``; default :data:`DEFAULT_SIGMAS` ``(1, 2, 4, 8)``.
    features : str or sequence of str
        Families from :data:`FEATURE_FAMILIES`, in the order they should appear:
        ``"intensity"``, ``"gaussian"``, ``"gradient"``, ``"log"``, ``"std"``, ``"hessian"``
        (see the module docstring). Default: all of them.

    Returns
    -------
    (F, H, W) ndarray of float32
        One plane per feature: for each channel, for each family, for each sigma (hessian
        gives two planes per sigma, ``l1`` then ``l2``). ``F`` is :func:`n_features` and
        :func:`feature_names` names the planes.

    Raises
    ------
    TypeError
        If ``image`` is not numeric, or ``sigmas`` / ``features`` are not sequences.
    ValueError
        If ``image`` is not (H, W) or (C, H, W) (a channel-last (H, W, C) image is detected and
        the fix named), holds NaN, or a sigma or family name is invalid.

    Notes
    -----
    The features are computed at every pixel, so a classifier can predict every pixel; only a
    few of them need labels. Scales should span the sizes of the structures: a filter of scale
    ``sigma`` sees about ``3 * sigma`` pixels around each pixel. The responses are not
    normalised: a classifier should standardise them with statistics of its training pixels.

    Examples
    --------
    >>> image = np.zeros((32, 40), np.float32); image[10:20, 12:24] = 1.0
    >>> stack = pixel_features(image, sigmas=(1, 2), features=("intensity", "gaussian", "gradient"))
    >>> stack.shape, stack.dtype
    ((5, 32, 40), dtype('float32'))
    >>> bool(np.array_equal(stack[0], image))                # plane 0 is the intensity
    True
    >>> edge, inside = stack[3, 10, 18], stack[3, 15, 18]   # gradient σ=1: at the border vs inside
    >>> bool(edge > 0.3 and inside < 1e-3)
    True
    >>> pixel_features(np.zeros((3, 16, 16)), sigmas=2).shape   # RGB: 3 * (1 + 6) planes
    (21, 16, 16)

    Introduced in 04_classifiers.
    """
    img = _as_channels(image)
    sigmas, features = _check_sigmas(sigmas), _check_features(features)
    n_ch, height, width = img.shape
    out = np.empty((n_features(n_ch, sigmas, features), height, width), dtype=np.float32)
    k = 0
    for channel in img:
        for family in features:
            if family == "intensity":
                out[k] = channel
                k += 1
                continue
            for s in sigmas:
                if family == "gaussian":
                    out[k] = ndimage.gaussian_filter(channel, s)
                elif family == "gradient":
                    out[k] = ndimage.gaussian_gradient_magnitude(channel, s)
                elif family == "log":
                    out[k] = ndimage.gaussian_laplace(channel, s)
                elif family == "std":
                    out[k] = local_std(channel, s)
                else:  # hessian
                    out[k:k + 2] = hessian_eigenvalues(channel, s)
                    k += 1
                k += 1
    return out
