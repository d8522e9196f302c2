"""The U-Net paper's pixel-weight map: balance the classes, and weigh the thin background gaps
between touching objects heavily so that the network learns to keep them apart.

Introduced in 08_unet.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

__all__ = ["unet_weight_map", "border_term", "balanced_class_weights"]


def _check_instances(instances) -> np.ndarray:
    if isinstance(instances, torch.Tensor):
        instances = instances.detach().cpu().numpy()
    a = np.asarray(instances)
    if a.dtype.kind not in "biu":
        if a.dtype.kind == "f" and a.size and np.array_equal(a, np.round(a)):
            a = a.astype(np.int64)
        else:
            raise TypeError(f"instances must be an integer label map (0 = background, 1..N = objects, "
                            f"e.g. sample.instances), got dtype {a.dtype}")
    if a.ndim not in (2, 3):
        raise ValueError(f"instances must be (H, W) or (D, H, W), got shape {a.shape}")
    if a.size and a.min() < 0:
        raise ValueError(f"instances must be non-negative labels, got a minimum of {a.min()}")
    return a.astype(np.int64, copy=False)


def _check_positive(value, name: str, allow_zero: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def balanced_class_weights(mask) -> np.ndarray:
    """Per-pixel class-balancing weights ``w_c``: each class present gets the same total weight.

    Introduced in 08_unet.

    Parameters
    ----------
    mask : (H, W) or (D, H, W) integer array
        Labels; every value > 0 is foreground.

    Returns
    -------
    float32 ndarray, same shape
        ``N / (K n_k)`` at the pixels of class ``k`` (``n_k`` its pixel count, ``K`` the number of
        classes present, ``N`` the pixel count), so the map's mean is 1.

    Examples
    --------
    >>> [round(float(v), 4) for v in balanced_class_weights(np.array([[0, 0, 0, 1]]))[0]]
    [0.6667, 0.6667, 0.6667, 2.0]
    """
    fg = np.asarray(mask) > 0
    n = fg.size
    counts = {True: int(fg.sum()), False: n - int(fg.sum())}
    k = sum(c > 0 for c in counts.values())
    out = np.empty(fg.shape, np.float32)
    for cls, c in counts.items():
        if c:
            out[fg == cls] = n / (k * c)
    return out


def border_term(instances, *, w0: float = 10.0, sigma: float = 5.0, cutoff: float = 5.0) -> np.ndarray:
    """``w0 * exp(-(d1 + d2)**2 / (2 sigma**2))`` on background pixels, 0 on objects.

    Introduced in 08_unet.

    Parameters
    ----------
    instances : (H, W) or (D, H, W) integer array
        0 = background, ``1..N`` = objects (``sample.instances``).
    w0 : float, default 10.0
    sigma : float, default 5.0
        In pixels; the paper's values.
    cutoff : float, default 5.0
        Distances are computed within ``cutoff * sigma`` pixels of each object (a pixel farther
        from its second-nearest object gets 0). The neglected weight is at most
        ``w0 * exp(-cutoff**2 / 2)``, 4e-5 of ``w0`` for the default.

    Returns
    -------
    float32 ndarray, same shape
        ``d1`` and ``d2`` are the Euclidean distances from a background pixel to the nearest and
        second-nearest object (to their nearest pixel); with fewer than two objects the term is 0.

    Examples
    --------
    >>> two = np.array([[1, 0, 2]])              # one background pixel between two objects
    >>> round(float(border_term(two, w0=10, sigma=1)[0, 1]), 4)  # d1 = d2 = 1: 10 exp(-2)
    1.3534
    """
    inst = _check_instances(instances)
    w0 = _check_positive(w0, "w0", allow_zero=True)
    sigma = _check_positive(sigma, "sigma")
    cutoff = _check_positive(cutoff, "cutoff")
    reach = int(math.ceil(cutoff * sigma))
    background = inst == 0
    d1 = np.full(inst.shape, np.inf)
    d2 = np.full(inst.shape, np.inf)
    for label, box in enumerate(ndimage.find_objects(inst), start=1):
        if box is None:
            continue
        # the object's bounding box grown by `reach`: the object lies inside it, so the distance
        # transform there is the exact distance to the object's nearest pixel
        window = tuple(slice(max(s.start - reach, 0), min(s.stop + reach, n)) for s, n in zip(box, inst.shape))
        d = ndimage.distance_transform_edt(inst[window] != label)
        a, b = d1[window], d2[window]
        closer = d < a
        b[:] = np.where(closer, a, np.minimum(b, d))
        a[:] = np.where(closer, d, a)
    term = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))  # inf -> 0
    return np.where(background, term, 0.0).astype(np.float32)


def unet_weight_map(instances, w0: float = 10.0, sigma: float = 5.0,
                    class_weights: Sequence[float] | None = None) -> np.ndarray:
    """The pixel-weight map of the U-Net paper (Ronneberger et al. 2015, equation 2).

    Introduced in 08_unet.

    Parameters
    ----------
    instances : (H, W) or (D, H, W) integer array
        0 = background, ``1..N`` = objects (``sample.instances`` for DSB2018). A binary mask works
        but has no touching objects to separate: label the objects first.
    w0 : float, default 10.0
        Peak weight of the border term.
    sigma : float, default 5.0
        Width of the border term, in pixels.
    class_weights : (w_background, w_foreground), optional
        The class-balancing term ``w_c``; by default :func:`balanced_class_weights` of this image
        (each class present gets the same total weight). ``(1, 1)`` switches balancing off.

    Returns
    -------
    float32 ndarray, same shape
        ``w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 sigma**2))``, the second term on
        background pixels only (:func:`border_term`): ``d1`` and ``d2`` are the distances to the
        nearest and the second-nearest object. Pass it as the ``weight_map`` of the course's
        losses (``weight_maps=`` of :class:`~medseg_course.data.loaders.PatchDataset`).

    Notes
    -----
    The gaps between touching nuclei are one or two pixels wide: a handful of pixels in an image,
    which an unweighted loss can ignore at almost no cost, merging the nuclei. With ``w0 = 10``
    and ``sigma = 5``, a background pixel with both neighbours 1 pixel away weighs
    ``w_c + 10 exp(-4 / 50) ~ w_c + 9.2``.

    References
    ----------
    .. [1] O. Ronneberger, P. Fischer and T. Brox, "U-Net: convolutional networks for biomedical
       image segmentation", MICCAI 2015, section 3.

    Examples
    --------
    >>> inst = np.array([[1, 1, 0, 2, 2]])
    >>> w = unet_weight_map(inst, w0=10, sigma=5, class_weights=(1, 1))
    >>> [round(float(v), 3) for v in w[0]]   # the gap pixel: 1 + 10 exp(-4 / 50)
    [1.0, 1.0, 10.231, 1.0, 1.0]
    """
    inst = _check_instances(instances)
    if class_weights is None:
        wc = balanced_class_weights(inst)
    else:
        if (isinstance(class_weights, (str, bytes)) or not isinstance(class_weights, Sequence)
                or len(class_weights) != 2):
            raise ValueError(f"class_weights must be (w_background, w_foreground) or None, got {class_weights!r}")
        wb = _check_positive(class_weights[0], "class_weights[0]", allow_zero=True)
        wf = _check_positive(class_weights[1], "class_weights[1]", allow_zero=True)
        wc = np.where(inst > 0, wf, wb).astype(np.float32)
    return (wc + border_term(inst, w0=w0, sigma=sigma)).astype(np.float32)
