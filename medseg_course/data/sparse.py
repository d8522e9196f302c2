"""Sparse annotation, as in the 3D U-Net paper: labels on a few slices, the rest unannotated.

Cicek et al. (2016) trained their 3D U-Net from volumes in which an annotator had labelled only a
few slices; every other voxel was marked "unlabelled", and the loss ignored it (weight 0).
This module makes such masks from fully labelled ones, so that the effect of the fraction of
labelled slices can be measured:

* :func:`choose_slices` -- which slices of an axis are labelled (evenly spread or random, seeded);
* :func:`sparsify` -- a mask whose unlabelled voxels hold ``ignore_index`` (default -1);
* :func:`sparsify_samples` -- the same for a list of samples, a different draw per volume;
* :func:`labelled_voxels` and :func:`labelled_fraction` -- the annotated voxels, for masking a
  loss and for reporting how much was labelled.

A sparse mask plugs into the course's losses through their ``ignore_index``
(``DiceCELoss(ignore_index=-1)``): unlabelled voxels then count neither in the cross-entropy
nor in the soft Dice, and receive no gradient.

References
----------
O. Cicek, A. Abdulkadir, S. S. Lienkamp, T. Brox, O. Ronneberger. 3D U-Net: Learning Dense
Volumetric Segmentation from Sparse Annotation. MICCAI 2016, arXiv:1606.06650.

Introduced in 09_unet3d.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

__all__ = ["IGNORE", "choose_slices", "sparsify", "sparsify_samples", "labelled_voxels", "labelled_fraction"]

#: The label of unannotated voxels in sparse masks.
IGNORE = -1
_SPREADS = ("even", "random")


def _check_fraction(fraction) -> float:
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1] (the share of slices that keep their labels), got {fraction!r}")
    return float(fraction)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def choose_slices(n_slices: int, fraction: float, *, seed=0, spread: str = "even",
                  min_slices: int = 1) -> np.ndarray:
    """Indices of the slices that keep their labels, out of ``n_slices``.

    Introduced in 09_unet3d.

    Parameters
    ----------
    n_slices : int
        Slices along the axis.
    fraction : float in (0, 1]
        Share of slices to keep: ``max(min_slices, round(fraction * n_slices))`` of them.
    seed : int or numpy Generator, default 0
    spread : {"even", "random"}, default "even"
        ``"even"``: equally spaced, from a random start (an annotator labelling every k-th
        slice); ``"random"``: a random subset.
    min_slices : int, default 1

    Returns
    -------
    ndarray of int
        Sorted, distinct indices in ``[0, n_slices)``.

    Examples
    --------
    >>> choose_slices(40, 0.1, seed=0)
    array([ 6, 16, 26, 36])
    >>> len(choose_slices(40, 0.1, spread="random")), len(choose_slices(40, 0.001))
    (4, 1)
    """
    if isinstance(n_slices, bool) or not isinstance(n_slices, numbers.Integral) or n_slices < 1:
        raise ValueError(f"n_slices must be a positive int, got {n_slices!r}")
    fraction = _check_fraction(fraction)
    if spread not in _SPREADS:
        raise ValueError(f"spread must be one of {list(_SPREADS)}, got {spread!r}")
    if isinstance(min_slices, bool) or not isinstance(min_slices, numbers.Integral) or min_slices < 1:
        raise ValueError(f"min_slices must be a positive int, got {min_slices!r}")
    rng = _rng(seed)
    n, k = int(n_slices), min(int(n_slices), max(int(min_slices), int(round(fraction * n_slices))))
    if spread == "random":
        return np.sort(rng.choice(n, size=k, replace=False))
    step = n / k
    start = rng.uniform(0, step)
    return np.unique(np.minimum((start + step * np.arange(k)).astype(int), n - 1))


def sparsify(mask, fraction: float, *, axis: int | Sequence[int] = 0, seed=0, spread: str = "even",
             ignore_index: int = IGNORE) -> np.ndarray:
    """A copy of ``mask`` with labels on a fraction of its slices only; ``ignore_index`` elsewhere.

    Introduced in 09_unet3d.

    Parameters
    ----------
    mask : (D, H, W) or (H, W) int array
        A fully labelled mask.
    fraction : float in (0, 1]
        Share of slices (along each axis in ``axis``) that keep their labels.
    axis : int or sequence of int, default 0
        The axis cut into slices. Several axes label orthogonal slices along each, as in Cicek et
        al.; a voxel is labelled if it lies on a kept slice of any of them.
    seed : int or numpy Generator, default 0
    spread : {"even", "random"}, default "even"
        See :func:`choose_slices`.
    ignore_index : int, default -1
        Label of unannotated voxels; must not be a label of ``mask``.

    Returns
    -------
    ndarray of int64
        Same shape as ``mask``.

    Examples
    --------
    >>> mask = np.arange(6).reshape(6, 1) % 3 * np.ones((6, 2), int)
    >>> sparsify(mask, 0.5, seed=0)[:, 0].tolist()
    [-1, 1, -1, 0, -1, 2]
    """
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biu":
        raise TypeError(f"mask must hold integer labels, got dtype {mask.dtype}")
    if mask.ndim < 2:
        raise ValueError(f"mask must be 2D or 3D (slices along an axis), got shape {mask.shape}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    if np.any(mask == ignore_index):
        raise ValueError(f"mask already holds the label {ignore_index}; pick another ignore_index (e.g. -1 or 255)")
    axes = (axis,) if isinstance(axis, numbers.Integral) and not isinstance(axis, bool) else tuple(axis)
    if not axes or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) and -mask.ndim <= a < mask.ndim
                           for a in axes):
        raise ValueError(f"axis must be an axis of the mask (shape {mask.shape}) or a sequence of them, got {axis!r}")
    rng = _rng(seed)
    keep = np.zeros(mask.shape, dtype=bool)
    for a in axes:
        a = int(a) % mask.ndim
        index = [slice(None)] * mask.ndim
        index[a] = choose_slices(mask.shape[a], fraction, seed=rng, spread=spread)
        keep[tuple(index)] = True
    return np.where(keep, mask.astype(np.int64), np.int64(ignore_index))


def sparsify_samples(samples, fraction: float, *, axis: int | Sequence[int] = 0, seed: int = 0,
                     spread: str = "even", ignore_index: int = IGNORE) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sparse ``(image, mask)`` pairs for a list of samples: each volume gets its own draw of slices.

    Introduced in 09_unet3d.

    Parameters
    ----------
    samples : sequence
        Samples (``.image``, ``.mask``) or ``(image, mask)`` pairs.
    fraction, axis, spread, ignore_index
        As in :func:`sparsify`.
    seed : int, default 0
        Volume ``i`` uses the generator of ``(seed, i)``: the same volumes get the same slices
        whatever the other volumes are.

    Returns
    -------
    list of (image, sparse mask) pairs
        The images are the samples' own arrays (not copied).

    Examples
    --------
    >>> pairs = sparsify_samples([(np.zeros((1, 10, 4, 4)), np.zeros((10, 4, 4), int))], 0.2)
    >>> labelled_fraction([m for _, m in pairs])
    0.2
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    out = []
    for i, s in enumerate(samples):
        image, mask = (s.image, s.mask) if hasattr(s, "image") and hasattr(s, "mask") else s
        rng = np.random.default_rng([int(seed), i])
        out.append((image, sparsify(mask, fraction, axis=axis, seed=rng, spread=spread, ignore_index=ignore_index)))
    return out


def labelled_voxels(mask, ignore_index: int = IGNORE) -> np.ndarray:
    """Boolean array: True where ``mask`` is annotated (``mask != ignore_index``).

    Introduced in 09_unet3d.

    Examples
    --------
    >>> labelled_voxels(np.array([0, -1, 2])).tolist()
    [True, False, True]
    """
    return np.asarray(mask) != ignore_index


def labelled_fraction(masks, ignore_index: int = IGNORE) -> float:
    """Share of annotated voxels over one mask or a list of masks (pooled).

    Introduced in 09_unet3d.

    Examples
    --------
    >>> labelled_fraction([np.array([0, -1]), np.array([1, 1, -1, -1])])
    0.5
    """
    if isinstance(masks, np.ndarray):
        masks = [masks]
    masks = [np.asarray(m) for m in masks]
    total = sum(m.size for m in masks)
    if total == 0:
        raise ValueError("masks hold no voxel")
    return float(sum(np.count_nonzero(m != ignore_index) for m in masks) / total)
