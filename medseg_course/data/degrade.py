"""Degradations: one knob for each thing that makes a medical image hard to segment.

Every function here takes an image (2D ``(H, W)`` or 3D ``(D, H, W)``), applies one physical
degradation and returns a new array; the input is never modified. Each knob has a *neutral* value
that returns the image unchanged (0 for blur, bias and noise; 1 for the contrast factor), so a
notebook can sweep one knob while holding the others fixed and plot how a segmentation method
degrades ("Dice vs noise level").

Intensity units
---------------
The synthetic generators (:mod:`medseg_course.data.synthetic`) produce clean images in ``[0, 1]``,
where 1 is the reference signal level. Every noise knob is measured in those units: ``noise`` is
the standard deviation of the noise at intensity 1, i.e. ``1 / SNR`` of a unit signal. The
contrast-to-noise ratio of an object of contrast ``c`` (object minus background intensity) is then
``CNR = c / noise`` for additive noise; :func:`cnr` measures it on any image. Noise is *not*
expressed relative to the contrast on purpose: in a scanner the noise level is set by the
acquisition and the contrast by the tissue, and a low-contrast object is hard precisely because the
noise does not shrink with it. To sweep CNR at fixed contrast ``c``, use ``noise = c / CNR``.

The order of :func:`degrade` follows the imaging chain: contrast of the tissue, blur by the point
spread function (PSF), multiplicative bias field (coil sensitivity, uneven illumination), then
acquisition noise.

Seeds
-----
Every random function takes ``seed``: an ``int`` (same seed, bitwise same output), a
:class:`numpy.random.Generator` (used and advanced), or ``None``, which draws a seed from NumPy's
global generator, the one that :func:`medseg_course.runtime.setup` seeds, so a notebook that called
``setup`` stays repeatable (the convention of scikit-learn's ``random_state=None``).

Introduced in 01_medical_images.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from numpy.polynomial import legendre
from scipy import ndimage

__all__ = [
    "NOISE_MODELS",
    "Degradation",
    "add_gaussian_noise",
    "add_poisson_noise",
    "add_rician_noise",
    "add_speckle_noise",
    "adjust_contrast",
    "apply_bias_field",
    "bias_field",
    "cnr",
    "degrade",
    "gaussian_blur",
]

#: The noise models that :func:`degrade` knows, by name.
NOISE_MODELS = ("gaussian", "poisson", "rician", "speckle")

_SEED_HELP = "pass an int (repeatable), a numpy.random.Generator, or None"


# --------------------------------------------------------------------------------------------
# Private helpers shared with medseg_course.data.synthetic
# --------------------------------------------------------------------------------------------
def _as_generator(seed, name: str = "seed") -> np.random.Generator:
    """Turn ``seed`` (None, non-negative int or Generator) into a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        # The global legacy state is what runtime.setup() seeds: repeatable after setup().
        return np.random.default_rng(int(np.random.randint(0, 2**63 - 1, dtype=np.int64)))
    if isinstance(seed, Integral) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {seed!r}; {_SEED_HELP}")
        return np.random.default_rng(int(seed))
    raise TypeError(f"{name} must be None, an int or a numpy.random.Generator, got "
                    f"{type(seed).__name__} {seed!r}; {_SEED_HELP}")


def _spawn(seed, n: int, name: str = "seed") -> list[np.random.Generator]:
    """``n`` independent generators derived from ``seed``.

    Each knob gets its own stream, so switching one knob on or off does not change the random
    numbers another knob sees.
    """
    if isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0:
        entropy = int(seed)
    else:
        entropy = int(_as_generator(seed, name).integers(0, 2**63 - 1))
    return [np.random.default_rng(s) for s in np.random.SeedSequence(entropy).spawn(n)]


def _check_image(image, name: str = "image") -> tuple[np.ndarray, np.dtype]:
    """Validate an image; return it as float64 and the dtype the result should have."""
    if isinstance(image, np.ndarray):
        arr = image
    else:
        try:
            arr = np.asarray(image)
        except Exception as exc:  # noqa: BLE001 - re-raised with advice
            raise TypeError(f"{name} must be a numpy array, got {type(image).__name__}") from exc
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer)
                                 or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must be a real-valued numeric array, got dtype {arr.dtype}; "
                        f"convert it with {name}.astype(np.float32)")
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be 2D (H, W) or 3D (D, H, W), got shape {arr.shape}; "
                         "pass a single channel, e.g. image[..., 0] or image[0]")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values; replace them first, "
                         f"e.g. np.nan_to_num({name})")
    out_dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    return arr.astype(np.float64), np.dtype(out_dtype)


def _check_number(value, name: str, *, low: float = 0.0, high: float = math.inf,
                  low_open: bool = False, high_open: bool = False, allow_inf: bool = False,
                  fix: str = "") -> float:
    """Validate a real number in an interval; return it as a float."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {value!r}" + (f"; {fix}" if fix else ""))
    too_low = v <= low if low_open else v < low
    too_high = v >= high if high_open else v > high
    if too_low or too_high:
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lo}{low:g}, {high:g}{hi}, got {value!r}"
                         + (f"; {fix}" if fix else ""))
    return v


def _check_spacing(spacing, ndim: int, name: str = "spacing") -> tuple[float, ...]:
    """Voxel spacing as a tuple of ``ndim`` positive floats (None means 1 per axis)."""
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, Real) and not isinstance(spacing, bool):
        spacing = (spacing,) * ndim
    try:
        values = tuple(spacing)
    except TypeError:
        raise TypeError(f"{name} must be a number or a sequence of {ndim} numbers, got "
                        f"{type(spacing).__name__} {spacing!r}") from None
    if len(values) != ndim:
        raise ValueError(f"{name} must have one entry per image axis ({ndim}), got {spacing!r}")
    return tuple(_check_number(v, name, low=0.0, low_open=True,
                               fix="spacing is the voxel size per axis, e.g. (1.0, 1.0, 2.5) mm")
                 for v in values)


def _check_sigma(sigma, ndim: int, name: str = "sigma") -> tuple[float, ...]:
    """A non-negative scalar or per-axis sequence of sigmas."""
    if isinstance(sigma, Real) and not isinstance(sigma, bool):
        s = _check_number(sigma, name, fix="it is a standard deviation in physical units")
        return (s,) * ndim
    try:
        values = tuple(sigma)
    except TypeError:
        raise TypeError(f"{name} must be a number or a sequence of {ndim} numbers, got "
                        f"{type(sigma).__name__} {sigma!r}") from None
    if len(values) != ndim:
        raise ValueError(f"{name} must have one entry per image axis ({ndim}), got {sigma!r}")
    return tuple(_check_number(v, name, fix="it is a standard deviation in physical units")
                 for v in values)


def _finish(out: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(out, dtype=dtype)


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------
def cnr(image, mask, *, denominator: str = "pooled") -> float:
    """Contrast-to-noise ratio of an object against its background.

    Parameters
    ----------
    image : (H, W) or (D, H, W) ndarray
        The image.
    mask : ndarray, same shape as ``image``
        Object mask: non-zero voxels are the object, zero voxels the background (a multi-class
        label map is treated as "any label" vs background).
    denominator : {"pooled", "background"}
        ``"pooled"`` divides by ``sqrt((var_object + var_background) / 2)``, which is symmetric
        and suits signal-dependent noise (Poisson, speckle); ``"background"`` divides by the
        standard deviation of the background alone, the definition common in MRI and CT.

    Returns
    -------
    float
        ``|mean_object - mean_background| / std``. ``inf`` for a noise-free image with contrast,
        ``0.0`` for a flat one.

    Raises
    ------
    ValueError
        If the shapes differ, one region is empty, or ``denominator`` is unknown.

    Notes
    -----
    The CNR decides how hard an object is to separate from its background by intensity alone:
    with Gaussian noise, two classes whose means differ by ``CNR`` standard deviations overlap in
    a fraction ``Phi(-CNR / 2)`` of each class at the best threshold, so CNR 1 means about 31 % of
    the pixels of each class are on the wrong side of any threshold, and CNR 4 about 2 %.

    References
    ----------
    .. [1] Bushberg, Seibert, Leidholdt, Boone. *The Essential Physics of Medical Imaging*,
       3rd ed., Lippincott Williams & Wilkins, 2012, ch. 4 (contrast, noise and CNR).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((4, 4)); image[:2] = 1.0
    >>> mask = image > 0.5
    >>> cnr(image, mask)
    inf
    >>> truth = np.zeros((100, 100), dtype=bool); truth[:50] = True
    >>> noisy = add_gaussian_noise(np.where(truth, 0.6, 0.2), 0.1, seed=0)
    >>> round(cnr(noisy, truth), 1)          # contrast 0.4 / noise 0.1
    4.0

    Introduced in 01_medical_images.
    """
    img, _ = _check_image(image)
    m = np.asarray(mask)
    if m.shape != img.shape:
        raise ValueError(f"mask must have the shape of image {img.shape}, got {m.shape}")
    if denominator not in ("pooled", "background"):
        raise ValueError(f"denominator must be 'pooled' or 'background', got {denominator!r}")
    obj = m != 0
    n_obj = int(obj.sum())
    if n_obj == 0 or n_obj == obj.size:
        raise ValueError(f"mask must contain both object (non-zero) and background (zero) "
                         f"voxels, got {n_obj} object voxels out of {obj.size}")
    fg, bg = img[obj], img[~obj]
    diff = abs(float(fg.mean()) - float(bg.mean()))
    if denominator == "pooled":
        std = math.sqrt((float(fg.var()) + float(bg.var())) / 2.0)
    else:
        std = float(bg.std())
    if std == 0.0:
        return math.inf if diff > 0 else 0.0
    return diff / std


# --------------------------------------------------------------------------------------------
# Deterministic degradations
# --------------------------------------------------------------------------------------------
def adjust_contrast(image, factor: float, *, level: float | None = None) -> np.ndarray:
    """Scale every intensity difference from a fixed level: low contrast.

    Parameters
    ----------
    image : (H, W) or (D, H, W) ndarray
        The image.
    factor : float
        Contrast factor, ``>= 0``. 1 leaves the image unchanged, 0.5 halves the contrast of every
        object against the level, 0 gives a flat image at ``level``.
    level : float, optional
        The intensity that stays fixed. Default: the median of the image, which is the
        background intensity whenever the background covers more than half of the image (true of
        every synthetic sample in this course).

    Returns
    -------
    ndarray, same shape as ``image``
        ``level + factor * (image - level)``; float32 unless ``image`` is float64.

    Notes
    -----
    Physics: contrast is the difference in the measured property of two tissues (T1 relaxation,
    X-ray attenuation, fluorescence). Grey and white matter in T1-weighted MRI differ by about
    30 %; a liver lesion on a non-contrast CT may differ from liver by under 10 HU out of a
    1000 HU window. Reducing the contrast at fixed noise lowers the CNR by the same factor.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[0.2, 0.2, 0.2], [0.2, 0.8, 0.2]], dtype=np.float32)
    >>> adjust_contrast(image, 0.5)
    array([[0.2, 0.2, 0.2],
           [0.2, 0.5, 0.2]], dtype=float32)

    Introduced in 01_medical_images.
    """
    img, dtype = _check_image(image)
    factor = _check_number(factor, "factor", fix="1 keeps the contrast, 0.5 halves it")
    if level is None:
        level = float(np.median(img))
    else:
        level = _check_number(level, "level", low=-math.inf)
    if factor == 1.0:
        return _finish(img, dtype)
    return _finish(level + factor * (img - level), dtype)


def gaussian_blur(image, sigma, *, spacing=None) -> np.ndarray:
    """Blur with a Gaussian point spread function whose width is given in physical units.

    Parameters
    ----------
    image : (H, W) or (D, H, W) ndarray
        The image.
    sigma : float or sequence of float
        Standard deviation of the Gaussian PSF in the units of ``spacing`` (e.g. mm), one value for
        all axes or one per axis. 0 leaves the image unchanged. The full width at half maximum is
        ``FWHM = 2 sqrt(2 ln 2) sigma ~ 2.355 sigma``.
    spacing : float or sequence of float, optional
        Voxel size per axis in the same units; default 1 (``sigma`` in pixels). With anisotropic
        voxels, e.g. ``(3.0, 1.0, 1.0)`` mm, the same physical blur spans fewer slices than pixels.

    Returns
    -------
    ndarray, same shape as ``image``
        The blurred image (edges handled by repeating the border value); float32 unless ``image``
        is float64.

    Notes
    -----
    Physics: every scanner images a point as a small blob, the PSF, set by detector size and
    focal spot (CT), k-space sampling (MRI), optics and diffraction (microscopy), beam width
    (ultrasound). The measured image is the true object convolved with the PSF, so edges become
    ramps and structures thinner than the FWHM lose contrast (the partial-volume effect): the
    boundary a segmentation draws is no longer where the intensity jumps.

    Examples
    --------
    >>> import numpy as np
    >>> edge = np.zeros((1, 8)); edge[:, 4:] = 1.0
    >>> np.round(gaussian_blur(edge, 1.0), 2)     # the step becomes a ramp
    array([[0.  , 0.  , 0.06, 0.3 , 0.7 , 0.94, 1.  , 1.  ]])

    Introduced in 01_medical_images.
    """
    img, dtype = _check_image(image)
    sig = _check_sigma(sigma, img.ndim)
    sp = _check_spacing(spacing, img.ndim)
    if all(s == 0.0 for s in sig):
        return _finish(img, dtype)
    sig_px = [s / d for s, d in zip(sig, sp)]
    return _finish(ndimage.gaussian_filter(img, sig_px, mode="nearest"), dtype)


# --------------------------------------------------------------------------------------------
# Bias field
# --------------------------------------------------------------------------------------------
def bias_field(shape, strength: float, *, order: int = 3, spacing=None, seed=None) -> np.ndarray:
    """A smooth random multiplicative bias field with a given strength.

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` or ``(D, H, W)``.
    strength : float
        In ``[0, 1)``: the largest relative deviation from 1, ``max |field - 1| = strength``. 0.2
        means intensities vary by up to +-20 % across the image. 0 gives a field of ones.
    order : int
        Highest total degree of the Legendre polynomial, 1 (a linear ramp) to 6. 2 or 3 looks like
        the slow shading of an MRI receive coil.
    spacing : float or sequence of float, optional
        Voxel size per axis; the field is smooth in physical space (same wiggliness per mm on every
        axis). Default 1.
    seed : None, int or numpy.random.Generator
        Random seed. For a given seed the shape of the field does not depend on ``strength``.

    Returns
    -------
    (H, W) or (D, H, W) ndarray of float64
        The field, with mean 1 and ``max |field - 1| == strength``.

    Notes
    -----
    The field is ``1 + strength * p(x) / max|p|`` with ``p`` a random polynomial of Legendre
    terms of total degree 1 to ``order`` (standard-normal coefficients divided by the degree, so
    low frequencies dominate), evaluated on physical coordinates scaled so that the longest axis
    spans ``[-1, 1]``, and centred to mean 0.

    Physics: in MRI the sensitivity of the receive coils and the inhomogeneity of the transmit
    field make the same tissue brighter near the coil and darker far away (typically 10 to 30 %
    at 1.5 T and 3 T, more with surface coils); in microscopy uneven illumination does the same
    (vignetting). The field multiplies the image, so a single global threshold cannot separate
    tissues whose intensities differ by less than the field's variation. N4 bias-field correction
    [1]_ estimates and divides out such a field.

    References
    ----------
    .. [1] Tustison et al. "N4ITK: Improved N3 bias correction", IEEE Trans. Med. Imaging 29(6),
       1310-1320, 2010. doi:10.1109/TMI.2010.2046908

    Examples
    --------
    >>> field = bias_field((64, 64), 0.2, seed=0)
    >>> field.shape, round(float(np.abs(field - 1).max()), 6), round(float(field.mean()), 6)
    ((64, 64), 0.2, 1.0)

    Introduced in 01_medical_images.
    """
    if isinstance(shape, Integral) or not hasattr(shape, "__len__"):
        raise TypeError(f"shape must be a tuple of 2 or 3 ints, got {shape!r}")
    shape = tuple(shape)
    if len(shape) not in (2, 3) or not all(isinstance(n, Integral) and not isinstance(n, bool)
                                           and n > 0 for n in shape):
        raise ValueError(f"shape must be a tuple of 2 or 3 positive ints, got {shape!r}")
    strength = _check_number(strength, "strength", high=1.0, high_open=True,
                             fix="it is the largest relative deviation, e.g. 0.2 for +-20 %")
    if isinstance(order, bool) or not isinstance(order, Integral) or not 1 <= order <= 6:
        raise ValueError(f"order must be an int from 1 to 6, got {order!r}; 2 or 3 gives "
                         "a realistic slow shading")
    sp = _check_spacing(spacing, len(shape))
    rng = _as_generator(seed)
    ndim = len(shape)
    # Draw the coefficients first, whatever the strength, so the field's shape depends on seed only.
    coef = rng.standard_normal((order + 1,) * ndim)
    if strength == 0.0:
        return np.ones(shape)
    degree = sum(np.indices(coef.shape))
    coef = np.where((degree >= 1) & (degree <= order), coef / np.maximum(degree, 1), 0.0)
    half = max((n - 1) * d / 2.0 for n, d in zip(shape, sp)) or 1.0
    coords = [(np.arange(n) - (n - 1) / 2.0) * d / half for n, d in zip(shape, sp)]
    grid = legendre.leggrid2d if ndim == 2 else legendre.leggrid3d
    p = grid(*coords, coef)
    p = p - p.mean()
    peak = float(np.abs(p).max())
    if peak == 0.0:  # a 1-pixel image: nothing can vary
        return np.ones(shape)
    return 1.0 + strength * (p / peak)


def apply_bias_field(image, strength: float, *, order: int = 3, spacing=None,
                     seed=None) -> np.ndarray:
    """Multiply an image by a smooth random bias field (intensity inhomogeneity).

    Parameters
    ----------
    image : (H, W) or (D, H, W) ndarray
        The image.
    strength : float
        In ``[0, 1)``: the field's largest relative deviation from 1 (see :func:`bias_field`).
        0 leaves the image unchanged.
    order : int
        Polynomial order of the field, 1 to 6.
    spacing : float or sequence of float, optional
        Voxel size per axis (default 1).
    seed : None, int or numpy.random.Generator
        Random seed.

    Returns
    -------
    ndarray, same shape as ``image``
        ``image * bias_field(image.shape, strength, ...)``; float32 unless ``image`` is float64.

    Notes
    -----
    See :func:`bias_field` for the physics. Because the field multiplies, it changes object and
    background intensities by the same factor locally: the *local* contrast shrinks or grows with
    the field, and the intensity of the same tissue differs between the two ends of the image.

    Examples
    --------
    >>> import numpy as np
    >>> flat = np.full((32, 32), 0.5, dtype=np.float32)
    >>> shaded = apply_bias_field(flat, 0.3, seed=0)
    >>> round(float(shaded.max() - shaded.min()), 2) <= 0.3
    True

    Introduced in 01_medical_images.
    """
    img, dtype = _check_image(image)
    field = bias_field(img.shape, strength, order=order, spacing=spacing, seed=seed)
    if strength == 0:
        return _finish(img, dtype)
    return _finish(img * field, dtype)


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------
def add_gaussian_noise(image, sigma: float, *, seed=None) -> np.ndarray:
    """Add white Gaussian noise of a given standard deviation.

    Parameters
    ----------
    image : (H, W) or (D, H, W) ndarray
        The clean image.
    sigma : float
        Standard deviation of the noise, in intensity units, ``>= 0``. 0 leaves the image
        unchanged. On images in ``[0, 1]``, ``sigma = 0.1`` is an SNR of 10 at intensity 1 and a
        CNR of ``contrast / 0.1``.
    seed : None, int or numpy.random.Generator
        Random seed. For a given seed the noise is ``sigma`` times the same standard-normal field,
        so a sweep over ``sigma`` changes only its amplitude (smooth "Dice vs noise" curves).

    Returns
    -------
    ndarray, same shape as ``image``
        ``image + sigma * z`` with ``z ~ N(0, 1)`` independent per voxel; float32 unless ``image``
        is float64. Not clipped: noise can push intensities below 0 or above 1, as in CT.

    Notes
    -----
    Physics: the sum of many small independent disturbances (thermal noise of the electronics,
    many-photon counting in CT after log transform) is Gaussian by the central limit theorem, with
    a standard deviation that does not depend on the signal. It is the usual model for CT and for
    high-SNR MRI.

    Examples
    --------
    >>> import numpy as np
    >>> noisy = add_gaussian_noise(np.zeros((200, 200)), 0.1, seed=0)
    >>> round(float(noisy.std()), 2)
    0.1

    Introduced in 01_medical_images.
    """
    img, dtype = _check_image(image)
    sigma = _check_number(sigma, "sigma", fix="it is the noise standard deviation, e.g. 0.1")
    rng = _as_generator(seed)
    if sigma == 0.0:
        return _finish(img, dtype)
    return _finish(img + sigma * rng.standard_normal(img.shape), dtype)


def add_poisson_noise(image, photons: float, *, seed=None) -> np.ndarray:
    """Photon-counting (shot) noise: Poisson counts with a given number of photons at intensity 1.

    Parameters
    ----------
    image : (H, W) or (D, H, W) ndarray
        The clean image, ``>= 0`` everywhere (it is an expected photon rate).
    photons : float
        Expected number of detected photons for a voxel of intensity 1, ``> 0``; ``inf`` leaves
        the image unchanged. Fewer photons, more noise: the relative noise at intensity ``I`` is
        ``1 / sqrt(photons * I)``, so ``photons = 100`` gives an SNR of 10 at intensity 1.
    seed : None, int or numpy.random.Generator
        Random seed.

    Returns
    -------
    ndarray, same shape as ``image``
        ``k / photons`` with ``k ~ Poisson(photons * image)``: mean ``image``, variance
        ``image / photons``; float32 unless ``image`` is float64.

    Raises
    ------
    ValueError
        If the image has negative values or ``photons`` is not positive.

    Notes
    -----
    Physics: light and X-rays arrive as discrete photons, and the number counted in a fixed time
    follows a Poisson law whose variance equals its mean. Bright regions are therefore noisier in
    absolute terms but cleaner in relative terms. This is the dominant noise of fluorescence
    microscopy, PET/SPECT and low-dose X-ray and CT (before reconstruction).

    References
    ----------
    .. [1] Bushberg et al. *The Essential Physics of Medical Imaging*, 3rd ed., 2012, ch. 4.

    Examples
    --------
    >>> import numpy as np
    >>> noisy = add_poisson_noise(np.full((200, 200), 0.5), photons=100, seed=0)
    >>> round(float(noisy.mean()), 2), round(float(noisy.var()), 3)   # variance = 0.5 / 100
    (0.5, 0.005)

    Introduced in 01_medical_images.
    """
    img, dtype = _check_image(image)
    photons = _check_number(photons, "photons", low=0.0, low_open=True, allow_inf=True,
                            fix="it is the expected photon count at intensity 1, e.g. 100")
    rng = _as_generator(seed)
    if math.isinf(photons):
        return _finish(img, dtype)
    lo = float(img.min())
    if lo < 0:
        raise ValueError(f"image must be non-negative for Poisson noise (it is an expected photon "
                         f"count), got a minimum of {lo:g}; shift or clip it, e.g. "
                         "np.clip(image, 0, None)")
    lam = img * photons
    if float(lam.max()) > 1e15:
        raise ValueError(f"photons * image must stay below 1e15 counts, got {float(lam.max()):.3g};"
                         " lower photons (noise would be invisible anyway)")
    return _finish(rng.poisson(lam) / photons, dtype)


def add_rician_noise(image, sigma: float, *, seed=None) -> np.ndarray:
    """Rician noise of magnitude MRI: Gaussian noise on two channels, then the modulus.

    Parameters
    ----------
    image : (H, W) or (D, H, W) ndarray
        The clean magnitude image (``>= 0`` for a physical image; negative values are taken as
        real-channel signals and lose their sign).
    sigma : float
        Standard deviation of the Gaussian noise in each of the real and imaginary channels,
        ``>= 0``. 0 leaves the image unchanged.
    seed : None, int or numpy.random.Generator
        Random seed. For a given seed the two normal fields are the same for every ``sigma``.

    Returns
    -------
    ndarray, same shape as ``image``
        ``sqrt((image + sigma * z1)**2 + (sigma * z2)**2)``, ``z1, z2 ~ N(0, 1)``; always
        ``>= 0``; float32 unless ``image`` is float64.

    Notes
    -----
    Physics: an MRI scanner measures a complex signal whose real and imaginary parts carry
    independent Gaussian thermal noise; the magnitude image shown to radiologists is the modulus,
    which follows a Rice distribution [1]_. Where the true signal ``A`` is high (``A / sigma > 3``)
    it is close to Gaussian with standard deviation ``sigma``; where it is zero (air, background)
    it is a Rayleigh distribution with mean ``sigma * sqrt(pi / 2) ~ 1.25 sigma``: the background is
    never black, and dark structures are biased upwards, which lowers their contrast.

    References
    ----------
    .. [1] Gudbjartsson and Patz. "The Rician distribution of noisy MRI data", Magn. Reson. Med.
       34(6), 910-914, 1995. doi:10.1002/mrm.1910340618

    Examples
    --------
    >>> import numpy as np
    >>> noisy = add_rician_noise(np.zeros((300, 300)), 0.1, seed=0)
    >>> round(float(noisy.mean()), 2), round(float(0.1 * np.sqrt(np.pi / 2)), 2)  # Rayleigh
    (0.13, 0.13)

    Introduced in 01_medical_images.
    """
    img, dtype = _check_image(image)
    sigma = _check_number(sigma, "sigma", fix="it is the per-channel noise standard deviation")
    rng = _as_generator(seed)
    if sigma == 0.0:
        return _finish(img, dtype)
    z = rng.standard_normal((2,) + img.shape)
    return _finish(np.hypot(img + sigma * z[0], sigma * z[1]), dtype)


def add_speckle_noise(image, std: float, *, seed=None) -> np.ndarray:
    """Multiplicative speckle of ultrasound: the image times gamma-distributed noise of mean 1.

    Parameters
    ----------
    image : (H, W) or (D, H, W) ndarray
        The clean image (the local mean echo intensity).
    std : float
        Standard deviation of the multiplicative noise (its coefficient of variation), ``>= 0``.
        0 leaves the image unchanged. ``std = 1`` is fully developed speckle of an intensity image
        (exponential law); ``std = 0.52`` matches the contrast of fully developed speckle on an
        envelope (amplitude) image, which is Rayleigh distributed; averaging ``L`` independent
        looks (compounding) gives ``std = 1 / sqrt(L)``.
    seed : None, int or numpy.random.Generator
        Random seed.

    Returns
    -------
    ndarray, same shape as ``image``
        ``image * g`` with ``g ~ Gamma(shape=1/std**2, scale=std**2)``: mean ``image``, standard
        deviation ``std * image``; float32 unless ``image`` is float64.

    Notes
    -----
    Physics: an ultrasound pulse is scattered by many sub-resolution scatterers in each
    resolution cell; their echoes add with random phases, so the received amplitude is a random
    walk whose length is Rayleigh distributed and whose intensity (squared amplitude) is
    exponential [1]_. The noise is multiplicative: its standard deviation grows with the echo
    strength, so bright organs are as grainy as dark ones relative to their level. The gamma law
    with shape ``L`` is the intensity of an ``L``-look average and contains both the exponential
    (``L = 1``) and, for ``L ~ 3.7``, the Rayleigh amplitude's coefficient of variation. Real
    speckle is also spatially correlated over the PSF size: blur the noisy image to mimic it.

    References
    ----------
    .. [1] Burckhardt. "Speckle in ultrasound B-mode scans", IEEE Trans. Sonics Ultrason. 25(1),
       1-6, 1978. doi:10.1109/T-SU.1978.31001

    Examples
    --------
    >>> import numpy as np
    >>> noisy = add_speckle_noise(np.full((200, 200), 0.5), 0.5, seed=0)
    >>> round(float(noisy.mean()), 2), round(float(noisy.std()), 2)
    (0.5, 0.25)

    Introduced in 01_medical_images.
    """
    img, dtype = _check_image(image)
    std = _check_number(std, "std", fix="it is the coefficient of variation, e.g. 0.5")
    rng = _as_generator(seed)
    if std == 0.0:
        return _finish(img, dtype)
    k = 1.0 / std**2
    return _finish(img * rng.gamma(k, 1.0 / k, size=img.shape), dtype)


# --------------------------------------------------------------------------------------------
# All knobs at once
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Degradation:
    """Settings of :func:`degrade`: one knob per difficulty, each neutral by default.

    Parameters
    ----------
    contrast : float
        Contrast factor ``>= 0`` around the background level (see :func:`adjust_contrast`);
        1 (neutral) keeps the contrast, 0.25 divides it, and the CNR, by 4.
    blur : float
        Standard deviation of the Gaussian PSF in physical units (the units of ``spacing``), ``>= 0``
        (see :func:`gaussian_blur`); 0 is neutral.
    bias : float
        Bias-field strength in ``[0, 1)``: largest relative deviation of the multiplicative field
        from 1 (see :func:`bias_field`); 0 is neutral.
    noise : float
        Noise level ``>= 0``: the standard deviation of the noise at intensity 1, i.e. ``1 / SNR``
        of a unit signal, whatever the model; 0 is neutral. See Notes for each model.
    noise_model : {"gaussian", "poisson", "rician", "speckle"}
        Which noise: CT-like additive, photon counting, magnitude MRI, or ultrasound speckle.
    bias_order : int
        Polynomial order of the bias field, 1 to 6.

    Notes
    -----
    How ``noise`` maps onto each model, so that the noise standard deviation at intensity 1 is
    ``noise`` in all four:

    ============  ==========================================  ==============================
    model         call                                        std at intensity ``I``
    ============  ==========================================  ==============================
    gaussian      ``add_gaussian_noise(x, sigma=noise)``      ``noise``
    poisson       ``add_poisson_noise(x, photons=1/noise**2)``  ``noise * sqrt(I)``
    rician        ``add_rician_noise(x, sigma=noise)``        ``~noise`` (``I >> noise``)
    speckle       ``add_speckle_noise(x, std=noise)``         ``noise * I``
    ============  ==========================================  ==============================

    The settings are frozen; derive variants with :func:`dataclasses.replace`, e.g. for a sweep
    ``[replace(base, noise=s) for s in (0.05, 0.1, 0.2)]``.

    Examples
    --------
    >>> Degradation(noise=0.1).is_identity, Degradation().is_identity
    (False, True)

    Introduced in 01_medical_images.
    """

    contrast: float = 1.0
    blur: float = 0.0
    bias: float = 0.0
    noise: float = 0.0
    noise_model: str = "gaussian"
    bias_order: int = 3

    def __post_init__(self):
        _check_number(self.contrast, "contrast", fix="1 keeps the contrast, 0.5 halves it")
        _check_number(self.blur, "blur", fix="it is the PSF sigma in physical units, e.g. 1.0")
        _check_number(self.bias, "bias", high=1.0, high_open=True,
                      fix="it is the largest relative deviation of the field, e.g. 0.2")
        _check_number(self.noise, "noise", fix="it is the noise std at intensity 1, e.g. 0.1")
        if self.noise_model not in NOISE_MODELS:
            raise ValueError(f"noise_model must be one of {NOISE_MODELS}, got {self.noise_model!r}")
        if (isinstance(self.bias_order, bool) or not isinstance(self.bias_order, Integral)
                or not 1 <= self.bias_order <= 6):
            raise ValueError(f"bias_order must be an int from 1 to 6, got {self.bias_order!r}")

    @property
    def is_identity(self) -> bool:
        """True when every knob is at its neutral value (the image comes back unchanged)."""
        return self.contrast == 1.0 and self.blur == 0 and self.bias == 0 and self.noise == 0


_KNOBS = tuple(f.name for f in dataclasses.fields(Degradation))


def degrade(image, settings: Degradation | None = None, *, spacing=None, seed=None,
            **knobs) -> np.ndarray:
    """Apply contrast loss, blur, bias field and noise, in the order of the imaging chain.

    Parameters
    ----------
    image : (H, W) or (D, H, W) ndarray
        The clean image, intensities in ``[0, 1]`` for the knob scales to mean what they say.
    settings : Degradation, optional
        All knobs at once. Keyword knobs override its fields.
    spacing : float or sequence of float, optional
        Voxel size per axis, for ``blur`` (and the bias field's smoothness) in physical units;
        pass ``sample.spacing`` for a synthetic sample. Default 1 (pixel units).
    seed : None, int or numpy.random.Generator
        Random seed. The bias field and the noise draw from separate streams, so for a given seed
        changing one knob never changes the random pattern of the other.
    **knobs
        Any field of :class:`Degradation`: ``contrast``, ``blur``, ``bias``, ``noise``,
        ``noise_model``, ``bias_order``.

    Returns
    -------
    ndarray, same shape as ``image``
        The degraded image, float32 unless ``image`` is float64. With every knob neutral it
        equals the input.

    Raises
    ------
    TypeError
        If a keyword is not a knob, or ``settings`` is not a :class:`Degradation`.
    ValueError
        If a knob is out of range (see :class:`Degradation`), or Poisson noise meets negative
        intensities.

    Notes
    -----
    Order: (1) :func:`adjust_contrast` around the image median (the background level), (2)
    :func:`gaussian_blur`, (3) :func:`apply_bias_field`, (4) the noise model. Noise comes last
    because it is added by the detector, after the object has been blurred and shaded.

    Examples
    --------
    >>> import numpy as np
    >>> clean = np.full((64, 64), 0.2, dtype=np.float32); clean[16:48, 16:48] = 0.8
    >>> mask = clean > 0.5
    >>> noisy = degrade(clean, noise=0.2, seed=0)        # contrast 0.6, noise 0.2
    >>> round(cnr(noisy, mask))                          # CNR = 0.6 / 0.2
    3
    >>> hard = degrade(clean, contrast=0.5, blur=1.5, bias=0.2, noise=0.2,
    ...                noise_model="rician", seed=0)
    >>> hard.shape, hard.dtype
    ((64, 64), dtype('float32'))
    >>> np.array_equal(degrade(clean), clean)
    True

    Introduced in 01_medical_images.
    """
    if settings is None:
        settings = Degradation()
    elif not isinstance(settings, Degradation):
        raise TypeError(f"settings must be a Degradation or None, got {type(settings).__name__}; "
                        "build one with Degradation(noise=0.1, ...) or pass the knobs as keywords")
    unknown = sorted(set(knobs) - set(_KNOBS))
    if unknown:
        raise TypeError(f"unknown knob(s) {unknown}; degrade accepts {list(_KNOBS)}")
    if knobs:
        settings = dataclasses.replace(settings, **knobs)
    img, dtype = _check_image(image)
    sp = _check_spacing(spacing, img.ndim)
    bias_rng, noise_rng = _spawn(seed, 2)
    if settings.contrast != 1.0:
        img = adjust_contrast(img, settings.contrast)
    if settings.blur > 0:
        img = gaussian_blur(img, settings.blur, spacing=sp)
    if settings.bias > 0:
        img = img * bias_field(img.shape, settings.bias, order=settings.bias_order, spacing=sp,
                               seed=bias_rng)
    if settings.noise > 0:
        model, s = settings.noise_model, settings.noise
        if model == "gaussian":
            img = add_gaussian_noise(img, s, seed=noise_rng)
        elif model == "poisson":
            img = add_poisson_noise(img, 1.0 / s**2, seed=noise_rng)
        elif model == "rician":
            img = add_rician_noise(img, s, seed=noise_rng)
        else:
            img = add_speckle_noise(img, s, seed=noise_rng)
    return _finish(img, dtype)
