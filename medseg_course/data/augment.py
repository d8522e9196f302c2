"""Data augmentation beyond flips: elastic deformation (U-Net paper) and intensity changes.

* :func:`coarse_displacement` and :func:`warp` -- the two halves of an elastic deformation: a
  smooth random displacement field, and resampling an array along it;
* :func:`elastic_deform` -- both at once, the same deformation for an image (linear
  interpolation) and its label maps or weight maps (nearest neighbour, so labels stay labels);
* :func:`random_gamma`, :func:`random_brightness_contrast`, :func:`gaussian_noise` -- intensity
  augmentation for images scaled to about ``[0, 1]``;
* :class:`AugmentedDataset` -- wraps a patch dataset (:class:`~medseg_course.data.loaders.PatchDataset`)
  and applies them to each item, then crops the centre.

Every random function takes a NumPy generator ``rng`` (``np.random.default_rng(seed)``): the same
generator state gives the same result. 2D and 3D arrays go through the same code; the number of
spatial axes is the label map's ``ndim`` (or ``spatial_dims``).

Introduced in 08_unet.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

__all__ = [
    "coarse_displacement",
    "warp",
    "elastic_deform",
    "random_gamma",
    "random_brightness_contrast",
    "gaussian_noise",
    "AugmentedDataset",
]

_MODES = ("reflect", "mirror", "nearest", "constant", "wrap")


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _check_rng(rng) -> np.random.Generator:
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (numbers.Integral, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)) or an int seed, "
                        f"got {type(rng).__name__}")
    return rng


def _per_axis(value, ndim: int, name: str, *, integer: bool = False, minimum: float = 0.0) -> tuple:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, kind) and not isinstance(value, bool):
        value = (value,) * ndim
    if (not isinstance(value, Sequence) or len(value) != ndim
            or not all(isinstance(v, kind) and not isinstance(v, bool) and v >= minimum for v in value)):
        what = "int" if integer else "number"
        raise ValueError(f"{name} must be a {what} >= {minimum:g} or {ndim} of them (one per spatial axis), "
                         f"got {value!r}")
    return tuple(int(v) if integer else float(v) for v in value)


def _as_array(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}")
    return a


def _check_range(value, name: str, low_min: float = 0.0) -> tuple[float, float]:
    if (not isinstance(value, Sequence) or len(value) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
            or not low_min <= value[0] <= value[1]):
        raise ValueError(f"{name} must be a (low, high) pair with {low_min:g} <= low <= high, got {value!r}")
    return float(value[0]), float(value[1])


# --------------------------------------------------------------------------------------------
# elastic deformation
# --------------------------------------------------------------------------------------------


def coarse_displacement(shape, *, grid: int | Sequence[int] = 3, std: float | Sequence[float] = 10.0,
                        rng=None) -> np.ndarray:
    """A smooth random displacement field: Gaussian vectors on a coarse grid, interpolated bicubically.

    Introduced in 08_unet.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape ``(H, W)`` or ``(D, H, W)`` of the arrays to deform.
    grid : int or tuple of int, default 3
        Number of control points along each axis (at least 2), spread evenly from the first to
        the last pixel: the U-Net paper's "coarse 3 by 3 grid".
    std : float or tuple of float, default 10.0
        Standard deviation of each displacement component, in pixels (per axis if a tuple): the
        paper's "Gaussian distribution with 10 pixels standard deviation". 0 gives the identity.
    rng : numpy Generator or int, optional
        Source of randomness (a seed makes a new generator).

    Returns
    -------
    (ndim, *shape) float32 ndarray
        ``u[a]`` is the displacement along axis ``a`` of every pixel: the output pixel ``x`` takes
        its value from ``x + u(x)`` of the input (see :func:`warp`).

    Notes
    -----
    The control-point vectors are interpolated with cubic splines (``scipy.ndimage.map_coordinates``,
    ``order=3``), the "bicubic interpolation" of Ronneberger et al.; the field is smooth, so
    neighbouring pixels move together and shapes bend rather than tear. Where the field's
    gradient exceeds 1 the mapping folds; with 3 control points and ``std`` well below the image
    size it does not.

    References
    ----------
    .. [1] O. Ronneberger, P. Fischer and T. Brox, "U-Net: convolutional networks for biomedical
       image segmentation", MICCAI 2015, section 3.1.

    Examples
    --------
    >>> u = coarse_displacement((64, 48), rng=0)
    >>> u.shape, u.dtype
    ((2, 64, 48), dtype('float32'))
    >>> float(np.abs(coarse_displacement((8, 8), std=0.0, rng=0)).max())
    0.0
    """
    if (not isinstance(shape, Sequence) or len(shape) not in (2, 3)
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in shape)):
        raise ValueError(f"shape must be 2 or 3 positive ints, (H, W) or (D, H, W), got {shape!r}")
    ndim = len(shape)
    grid = _per_axis(grid, ndim, "grid", integer=True, minimum=2)
    std = _per_axis(std, ndim, "std")
    rng = _check_rng(rng)
    coarse = rng.normal(size=(ndim, *grid)) * np.asarray(std).reshape(ndim, *([1] * ndim))  # (ndim, *grid)
    # where each pixel falls on the control-point grid: 0 .. grid - 1 from the first to the last pixel
    axes = [np.linspace(0, g - 1, n) for g, n in zip(grid, shape)]
    coords = np.stack(np.meshgrid(*axes, indexing="ij"))  # (ndim, *shape)
    field = np.stack([ndimage.map_coordinates(c, coords, order=3, mode="nearest") for c in coarse])
    return field.astype(np.float32)  # (ndim, *shape)


def warp(array, displacement, *, order: int = 1, mode: str = "reflect", cval: float = 0.0) -> np.ndarray:
    """Resample ``array`` along a displacement field: ``out[x] = array[x + u(x)]``.

    Introduced in 08_unet.

    Parameters
    ----------
    array : (*lead, *spatial) ndarray or tensor
        Any leading axes (channels) are warped alike; the last ``displacement.shape[0]`` axes are
        spatial and must match ``displacement.shape[1:]``.
    displacement : (ndim, *spatial) ndarray
        From :func:`coarse_displacement`.
    order : int, default 1
        Interpolation order: 1 (linear) for images, 0 (nearest neighbour) for labels, so that
        every output value is one of the input's labels.
    mode : {"reflect", "mirror", "nearest", "constant", "wrap"}, default "reflect"
        How values beyond the border are filled (``scipy.ndimage`` modes); ``"reflect"`` mirrors
        the image as the U-Net paper does for its tiles.
    cval : float, default 0.0
        Fill value of ``mode="constant"``.

    Returns
    -------
    ndarray
        Same shape and dtype as ``array``.

    Examples
    --------
    >>> a = np.arange(12.0).reshape(3, 4)
    >>> u = np.zeros((2, 3, 4), np.float32); u[1] = 1.0   # every pixel reads its right neighbour
    >>> warp(a, u, order=0)[0].tolist()
    [1.0, 2.0, 3.0, 3.0]
    """
    a = _as_array(array, "array")
    u = np.asarray(displacement, dtype=np.float64)
    ndim = u.shape[0] if u.ndim >= 1 else 0
    if u.ndim != ndim + 1 or ndim not in (2, 3):
        raise ValueError(f"displacement must be (ndim, *spatial) with ndim 2 or 3, got shape {u.shape}")
    if a.ndim < ndim or a.shape[a.ndim - ndim:] != u.shape[1:]:
        raise ValueError(f"array's last {ndim} axes {a.shape[max(a.ndim - ndim, 0):]} must match the "
                         f"displacement's spatial shape {u.shape[1:]}")
    if order not in (0, 1, 3):
        raise ValueError(f"order must be 0 (nearest, for labels), 1 (linear, for images) or 3, got {order!r}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {list(_MODES)}, got {mode!r}")
    grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in u.shape[1:]], indexing="ij")
    coords = np.stack(grid) + u  # (ndim, *spatial): where each output pixel reads
    lead = a.shape[:a.ndim - ndim]
    flat = a.reshape(-1, *u.shape[1:])
    out = np.empty_like(flat)
    for i, channel in enumerate(flat):
        src = channel if channel.dtype.kind == "f" or order == 0 else channel.astype(np.float64)
        res = ndimage.map_coordinates(src, coords, order=order, mode=mode, cval=cval, prefilter=order > 1)
        out[i] = np.rint(res) if out.dtype.kind in "biu" and order > 0 else res
    return out.reshape(*lead, *u.shape[1:])


def elastic_deform(image, *labels, grid: int | Sequence[int] = 3, std: float | Sequence[float] = 10.0,
                   rng=None, spatial_dims: int | None = None, mode: str = "reflect") -> tuple[np.ndarray, ...]:
    """Deform an image and its label maps with the same random smooth displacement (U-Net paper).

    Introduced in 08_unet.

    Parameters
    ----------
    image : (*spatial) or (C, *spatial) ndarray or tensor
        Interpolated linearly.
    *labels : (*spatial) ndarrays or tensors
        Masks, instance maps, weight maps: resampled by nearest neighbour, so that every output
        value is an input value (labels stay labels, instance ids stay whole numbers).
    grid, std :
        See :func:`coarse_displacement` (3 control points per axis, 10 pixels by default).
    rng : numpy Generator or int, optional
        Source of randomness: the same generator state gives the same deformation.
    spatial_dims : {2, 3}, optional
        Number of spatial axes; by default the first label's ``ndim``, else ``image.ndim``. Give
        it for a multi-channel image without labels.
    mode : str, default "reflect"
        Border handling (see :func:`warp`), the same for every array.

    Returns
    -------
    tuple of ndarray
        ``(image, *labels)`` deformed, each with its input's shape and dtype.

    Notes
    -----
    Near the border a deformation reads pixels from outside the array, which ``mode`` invents
    (mirrored by default). To train on deformed patches without those invented borders, deform
    a larger patch and crop its centre (:class:`AugmentedDataset` does).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image, mask = rng.random((32, 40)), (rng.random((32, 40)) > 0.5).astype(np.int64)
    >>> im2, m2 = elastic_deform(image, mask, rng=1)
    >>> im2.shape, m2.dtype, sorted(np.unique(m2).tolist())
    ((32, 40), dtype('int64'), [0, 1])
    """
    image = _as_array(image, "image")
    labels = [_as_array(m, f"labels[{i}]") for i, m in enumerate(labels)]
    if spatial_dims is None:
        spatial_dims = labels[0].ndim if labels else image.ndim
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r} (pass spatial_dims= for a "
                         "multi-channel image without labels)")
    spatial = image.shape[image.ndim - spatial_dims:] if image.ndim >= spatial_dims else None
    if spatial is None or image.ndim not in (spatial_dims, spatial_dims + 1):
        raise ValueError(f"image must be (*spatial) or (C, *spatial) with {spatial_dims} spatial axes, "
                         f"got shape {image.shape}")
    for i, m in enumerate(labels):
        if m.shape != spatial:
            raise ValueError(f"labels[{i}] must have the image's spatial shape {spatial}, got {m.shape}")
    u = coarse_displacement(tuple(int(n) for n in spatial), grid=grid, std=std, rng=rng)
    return (warp(image, u, order=1, mode=mode), *(warp(m, u, order=0, mode=mode) for m in labels))


# --------------------------------------------------------------------------------------------
# intensity augmentation
# --------------------------------------------------------------------------------------------


def random_gamma(image, rng=None, gamma_range: tuple[float, float] = (0.7, 1.5)) -> np.ndarray:
    """Raise an image to a random power, keeping its range: ``lo + (hi - lo) * t ** gamma``.

    Introduced in 08_unet.

    Parameters
    ----------
    image : ndarray or tensor
        Any shape; ``t = (image - min) / (max - min)``.
    rng : numpy Generator or int, optional
    gamma_range : (float, float), default (0.7, 1.5)
        ``gamma`` is drawn log-uniformly between them (0 < low <= high): as often brighter
        (gamma < 1) as darker.

    Returns
    -------
    float32 ndarray
        Same shape; a constant image comes back unchanged.

    Examples
    --------
    >>> random_gamma(np.array([0.0, 0.25, 1.0]), rng=0, gamma_range=(2.0, 2.0)).tolist()
    [0.0, 0.0625, 1.0]
    """
    a = _as_array(image, "image").astype(np.float32)
    lo_g, hi_g = _check_range(gamma_range, "gamma_range", low_min=1e-6)
    rng = _check_rng(rng)
    gamma = float(np.exp(rng.uniform(np.log(lo_g), np.log(hi_g))))
    if a.size == 0:
        return a
    lo, hi = float(a.min()), float(a.max())
    if hi - lo <= 0:
        return a
    return (lo + (hi - lo) * ((a - lo) / (hi - lo)) ** gamma).astype(np.float32)


def random_brightness_contrast(image, rng=None, brightness: float = 0.1,
                               contrast: tuple[float, float] = (0.75, 1.25)) -> np.ndarray:
    """Scale an image's contrast about its mean and shift its brightness by random amounts.

    Introduced in 08_unet.

    Parameters
    ----------
    image : ndarray or tensor
    rng : numpy Generator or int, optional
    brightness : float, default 0.1
        The shift is drawn uniformly from ``[-brightness, brightness]`` (in image units).
    contrast : (float, float), default (0.75, 1.25)
        The factor is drawn uniformly from this range.

    Returns
    -------
    float32 ndarray
        ``mean + c * (image - mean) + b``; not clipped.

    Examples
    --------
    >>> out = random_brightness_contrast(np.array([0.0, 1.0]), rng=0, brightness=0.0, contrast=(2.0, 2.0))
    >>> out.tolist()
    [-0.5, 1.5]
    """
    a = _as_array(image, "image").astype(np.float32)
    if not isinstance(brightness, numbers.Real) or isinstance(brightness, bool) or brightness < 0:
        raise ValueError(f"brightness must be a non-negative number, got {brightness!r}")
    c_lo, c_hi = _check_range(contrast, "contrast")
    rng = _check_rng(rng)
    c = rng.uniform(c_lo, c_hi)
    b = rng.uniform(-brightness, brightness)
    mean = float(a.mean()) if a.size else 0.0
    return (mean + c * (a - mean) + b).astype(np.float32)


def gaussian_noise(image, rng=None, std: tuple[float, float] = (0.0, 0.05)) -> np.ndarray:
    """Add Gaussian noise whose standard deviation is itself drawn uniformly from ``std``.

    Introduced in 08_unet.

    Parameters
    ----------
    image : ndarray or tensor
    rng : numpy Generator or int, optional
    std : (float, float), default (0.0, 0.05)
        Range of the noise's standard deviation, in image units.

    Returns
    -------
    float32 ndarray

    Examples
    --------
    >>> gaussian_noise(np.zeros(3), rng=0, std=(0.0, 0.0)).tolist()
    [0.0, 0.0, 0.0]
    """
    a = _as_array(image, "image").astype(np.float32)
    lo, hi = _check_range(std, "std")
    rng = _check_rng(rng)
    sigma = rng.uniform(lo, hi)
    return (a + rng.normal(0.0, 1.0, size=a.shape) * sigma).astype(np.float32)


# --------------------------------------------------------------------------------------------
# a dataset wrapper
# --------------------------------------------------------------------------------------------


class AugmentedDataset(Dataset):
    """Elastic deformation and intensity augmentation on the items of another dataset, then a centre crop.

    Introduced in 08_unet.

    Parameters
    ----------
    dataset : Dataset
        Yields ``(image (C, *spatial), mask (*spatial)[, weight (*spatial)])`` tensors, e.g. a
        :class:`~medseg_course.data.loaders.PatchDataset` (with ``augment=True`` for flips and
        rotations as well).
    crop : int or tuple of int, optional
        Centre crop applied last. Draw patches ``2 * margin`` larger than the crop and the
        deformation near the crop's border reads real pixels instead of mirrored ones. None
        keeps the size.
    elastic : float, default 0.5
        Probability of an elastic deformation (:func:`elastic_deform`) of an item.
    grid, std :
        The deformation's control points and displacement scale (:func:`coarse_displacement`).
    gamma : float, default 0.0
        Probability of :func:`random_gamma` (range ``gamma_range``).
    gamma_range : (float, float), default (0.7, 1.5)
    brightness_contrast : float, default 0.0
        Probability of :func:`random_brightness_contrast` (default amounts).
    noise : float, default 0.0
        Probability of :func:`gaussian_noise` (default range).

    Notes
    -----
    Random draws: each item seeds a NumPy generator from PyTorch's global generator, which
    :func:`~medseg_course.train.fit` (and each DataLoader worker) seeds, so training runs are
    repeatable exactly as with the wrapped dataset. Intensity changes apply to the image only;
    masks and weight maps follow the geometry only.

    Examples
    --------
    >>> from medseg_course.data.loaders import PatchDataset
    >>> from medseg_course.data.synthetic import make_dataset
    >>> base = PatchDataset(make_dataset(2, "nuclei2d", shape=(64, 64), n_objects=4, seed=0), 48)
    >>> ds = AugmentedDataset(base, crop=32, elastic=1.0, gamma=0.5)
    >>> [tuple(t.shape) for t in ds[0]]
    [(1, 32, 32), (32, 32)]
    """

    def __init__(self, dataset: Dataset, *, crop=None, elastic: float = 0.5,
                 grid: int | Sequence[int] = 3, std: float | Sequence[float] = 10.0, gamma: float = 0.0,
                 gamma_range: tuple[float, float] = (0.7, 1.5), brightness_contrast: float = 0.0,
                 noise: float = 0.0):
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError(f"dataset must be a map-style Dataset, got {type(dataset).__name__}")
        for name, p in [("elastic", elastic), ("gamma", gamma), ("brightness_contrast", brightness_contrast),
                        ("noise", noise)]:
            if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
                raise ValueError(f"{name} is a probability in [0, 1], got {p!r}")
        self.dataset = dataset
        self.crop = crop
        self.elastic, self.gamma, self.brightness_contrast, self.noise = (
            float(elastic), float(gamma), float(brightness_contrast), float(noise))
        self.grid, self.std = grid, std
        self.gamma_range = _check_range(gamma_range, "gamma_range", low_min=1e-6)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        item = self.dataset[index]
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ValueError("the wrapped dataset must yield (image, mask) or (image, mask, weight)")
        image, *labels = [_as_array(t, "item") for t in item]
        spatial_dims = labels[0].ndim
        rng = np.random.default_rng(int(torch.randint(2**62, (1,)).item()))
        if self.elastic and rng.random() < self.elastic:
            image, *labels = elastic_deform(image, *labels, grid=self.grid, std=self.std, rng=rng,
                                            spatial_dims=spatial_dims)
        if self.crop is not None:
            size = _per_axis(self.crop, spatial_dims, "crop", integer=True, minimum=1)
            spatial = labels[0].shape
            if any(c > n for c, n in zip(size, spatial)):
                raise ValueError(f"crop {size} is larger than the items' spatial shape {spatial}")
            window = tuple(slice((n - c) // 2, (n - c) // 2 + c) for n, c in zip(spatial, size))
            image = image[(Ellipsis, *window)]
            labels = [m[window] for m in labels]
        if self.gamma and rng.random() < self.gamma:
            image = random_gamma(image, rng, self.gamma_range)
        if self.brightness_contrast and rng.random() < self.brightness_contrast:
            image = random_brightness_contrast(image, rng)
        if self.noise and rng.random() < self.noise:
            image = gaussian_noise(image, rng)
        out = [torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))]
        out += [torch.from_numpy(np.ascontiguousarray(m)) for m in labels]
        return tuple(out)
