"""Segmentation metrics: overlap (Dice, IoU, precision, recall) and surface distances
(Hausdorff, HD95, ASSD), in numpy for one case and in torch for a batch.

Introduced in 01_medical_images.

Inputs
------
The numpy functions (:func:`dice`, :func:`hd95`, ...) score **one case**: ``pred`` and ``target``
are 2D ``(H, W)`` or 3D ``(D, H, W)`` arrays of the same shape. Without ``labels`` they must be
binary masks (bool, or numbers equal to 0 or 1) and the result is a ``float``. With
``labels=[l1, l2, ...]`` they are integer label maps and the result is a ``(len(labels),)`` array
whose ``i``-th value scores the class ``labels[i]`` (mask ``pred == labels[i]`` against
``target == labels[i]``), in the order given.

The torch functions (:func:`dice_torch`, :func:`hd95_torch`, ...) score **a batch** on the
device of their inputs and return a ``(B, C)`` tensor: either one-hot / multi-label masks
``(B, C, H, W)`` or ``(B, C, D, H, W)``, or, with ``num_classes=K``, label maps
``(B, 1, H, W)`` / ``(B, 1, D, H, W)`` that are one-hot encoded to ``C = K`` channels, class 0
(usually background) included. They give the same numbers as the numpy functions.

Probabilities and logits are not masks: threshold first (``pred > 0.5``) or take the argmax over
the class axis. Every function refuses non-whole float values with a message saying so.

Definitions
-----------
Overlap metrics come from the confusion counts of :func:`confusion_counts` (true positives TP,
false positives FP, false negatives FN; nnU-Net's ``compute_tp_fp_fn_tn``)::

    dice = 2 TP / (2 TP + FP + FN)      iou    = TP / (TP + FP + FN)
    precision = TP / (TP + FP)          recall = TP / (TP + FN)

Surface distances come from :func:`surface_distances`. The *boundary* of a mask is its foreground
voxels that have at least one face neighbour (4-connectivity in 2D, 6 in 3D) in the background or
outside the array, i.e. ``mask & ~binary_erosion(mask)``. For every boundary voxel of one mask we
take the Euclidean distance, in physical units given by ``spacing``, from its centre to the centre
of the nearest boundary voxel of the other mask (``scipy.ndimage.distance_transform_edt`` with
``sampling=spacing``). With ``d_pt`` the distances from the prediction's boundary to the target's
and ``d_tp`` the reverse::

    hausdorff = max(max(d_pt), max(d_tp))
    hd95      = max(percentile(d_pt, 95), percentile(d_tp, 95))
    assd      = (sum(d_pt) + sum(d_tp)) / (len(d_pt) + len(d_tp))

These are MONAI's conventions (``compute_hausdorff_distance`` with ``percentile=95`` and
``compute_average_surface_distance`` with ``symmetric=True``), and the tests check that both
libraries agree. Other libraries differ slightly: MedPy's ``hd95`` takes one percentile of both
directions pooled; DeepMind's ``surface-distance`` weights each boundary element by its surface
area. Percentiles use linear interpolation (numpy's default).

Empty masks
-----------
One rule for every function, numpy and torch:

=========================  =================================  =================================
case                       dice, iou, precision, recall       hausdorff, hd95, assd
=========================  =================================  =================================
both masks empty           ``empty`` (default 1.0)            ``empty`` (default 0.0)
exactly one mask empty     0.0                                ``inf``
both masks non-empty       the formula                        the formula
=========================  =================================  =================================

Both empty means "nothing to find and nothing found": perfect agreement, so the default is the
best value of the metric. Pass ``empty=np.nan`` to leave such cases out of averages taken with
``np.nanmean``. When exactly one mask is empty nothing overlaps, so every overlap metric is 0
(scikit-learn's ``zero_division=0`` for the 0/0 precision or recall), and the distance from a
point to an empty set is infinite. Challenges often replace that ``inf`` by a worst-case value
such as the image diagonal before averaging; do that explicitly, where you can see it.

References
----------
.. [1] L. Maier-Hein et al., "Metrics reloaded: recommendations for image analysis validation",
   Nature Methods 21, 2024.
.. [2] F. Isensee et al., "nnU-Net", Nature Methods 18, 2021 (``compute_tp_fp_fn_tn``).
.. [3] S. Nikolov et al., "Clinically applicable segmentation of head and neck anatomy for
   radiotherapy", JMIR 23, 2021 (DeepMind ``surface-distance``).
.. [4] MONAI Consortium, ``monai.metrics`` (``compute_dice``, ``compute_hausdorff_distance``).
"""

from __future__ import annotations

import math
import numbers
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

__all__ = [
    "ConfusionCounts",
    "confusion_counts",
    "dice",
    "iou",
    "precision",
    "recall",
    "surface_distances",
    "hausdorff",
    "hd95",
    "assd",
    "boundary_f_score",
    "segmentation_report",
    "confusion_counts_torch",
    "dice_torch",
    "iou_torch",
    "precision_torch",
    "recall_torch",
    "hausdorff_torch",
    "hd95_torch",
    "assd_torch",
]

#: The metrics of :func:`segmentation_report`, in the order they appear in it.
REPORT_METRICS = ("dice", "iou", "precision", "recall", "hausdorff", "hd95", "assd")

# Elements per chunk in the torch distance transform: 2**20 float64 values are 8 MiB.
_CHUNK_ELEMENTS = 2**20


class ConfusionCounts(NamedTuple):
    """True/false positive/negative voxel counts (see :func:`confusion_counts`)."""

    tp: object
    fp: object
    fn: object
    tn: object


# --------------------------------------------------------------------------------------------
# input validation (numpy)
# --------------------------------------------------------------------------------------------


def _as_numeric_array(x, name):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be a numeric array (bool, integer or float), got dtype {arr.dtype}; "
            f"convert it first, e.g. np.asarray({name}, dtype=np.int64)"
        )
    return arr


def _probability_message(name, arr, batched=False):
    finite = arr[np.isfinite(arr)] if arr.size else arr
    rng = f" (values from {finite.min():.3g} to {finite.max():.3g})" if finite.size else ""
    argmax = "argmax(dim=1, keepdim=True)" if batched else "argmax(axis=0)"
    return (
        f"{name} has float values that are not whole numbers{rng}: it looks like probabilities "
        f"or logits, not a mask. Threshold first, e.g. {name} > 0.5 for probabilities "
        f"({name} > 0 for logits), or take the {argmax} of multi-class scores"
    )


def _check_mask(x, name, *, binary):
    """Validate one mask or label map for the numpy metrics; binary masks come back as bool."""
    arr = _as_numeric_array(x, name)
    if arr.ndim not in (2, 3):
        hint = (
            "; for a batch (B, C, ...) use the *_torch functions or score each case in a loop"
            if arr.ndim > 3
            else "; reshape it to the image grid"
        )
        raise ValueError(
            f"{name} must be a 2D (H, W) or 3D (D, H, W) mask, got shape {arr.shape}{hint}"
        )
    if arr.dtype.kind == "b":
        return arr
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf values; a mask holds 0/1 or class labels")
        if not np.array_equal(arr, np.round(arr)):
            raise ValueError(_probability_message(name, arr))
    if binary:
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            values = np.unique(arr)
            shown = ", ".join(str(v) for v in values[:10].tolist()) + (", ..." if values.size > 10 else "")
            foreground = [v for v in values.tolist() if v != 0][:3]
            raise ValueError(
                f"{name} must be a binary mask (only 0 and 1) when labels is None, but it contains "
                f"the values [{shown}]: it looks like a label map. Pass labels={foreground} to "
                f"score each class, or make it binary first, e.g. {name} == {foreground[0]}"
            )
        return arr.astype(bool)
    return arr


def _check_labels(labels):
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise TypeError(
            f"labels must be a sequence of integer class labels such as [1, 2], got {labels!r}; "
            f"for a single class pass a list, e.g. labels=[{labels!r}]"
        )
    values = list(labels)
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(
                f"labels must hold integers (class values of the label maps), got {v!r} "
                f"of type {type(v).__name__} in {values!r}"
            )
    if not values:
        raise ValueError("labels must name at least one class, got an empty sequence; pass e.g. labels=[1]")
    if len(set(values)) != len(values):
        raise ValueError(f"labels must not repeat a class, got {values!r}")
    return tuple(int(v) for v in values)


def _check_pair(pred, target, labels):
    labels = _check_labels(labels)
    p = _check_mask(pred, "pred", binary=labels is None)
    t = _check_mask(target, "target", binary=labels is None)
    if p.shape != t.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {p.shape} and target {t.shape}; "
            "resample or crop one onto the other's grid first"
        )
    return p, t, labels


def _check_spacing(spacing, ndim, name="spacing"):
    axes = "(y, x) for an (H, W) mask" if ndim == 2 else "(z, y, x) for a (D, H, W) mask"
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, numbers.Real) and not isinstance(spacing, (bool, np.bool_)):
        values = (float(spacing),) * ndim
    else:
        try:
            values = tuple(float(s) for s in spacing)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} must be a number or a sequence of {ndim} numbers, one per axis in the "
                f"order {axes}, got {spacing!r}"
            ) from None
        if len(values) != ndim:
            raise ValueError(
                f"{name} must have one value per axis of the mask ({ndim}, in the order {axes}), "
                f"got {len(values)} values {values}"
            )
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name} must hold positive, finite voxel sizes, got {values}")
    return values


def _check_real(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number (float('nan') allowed), got {value!r}")
    return float(value)


def _check_percentile(percentile):
    q = _check_real(percentile, "percentile")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile!r}; for HD95 pass 95")
    return q


def _class_masks(p, t, labels):
    """Yield one (pred, target) pair of boolean masks per class."""
    if labels is None:
        yield p, t
    else:
        for label in labels:
            yield p == label, t == label


# --------------------------------------------------------------------------------------------
# overlap metrics (numpy)
# --------------------------------------------------------------------------------------------


def _counts(p, t):
    tp = int(np.count_nonzero(p & t))
    fp = int(np.count_nonzero(p)) - tp
    fn = int(np.count_nonzero(t)) - tp
    return tp, fp, fn, p.size - tp - fp - fn


def confusion_counts(pred, target, *, labels=None):
    """Count true/false positives/negatives, the basis of every overlap metric.

    Introduced in 01_medical_images.

    Parameters
    ----------
    pred, target : (H, W) or (D, H, W) array_like
        Binary masks (bool or 0/1), or integer label maps when ``labels`` is given.
    labels : sequence of int, optional
        Class values to count, one result per class in this order.

    Returns
    -------
    ConfusionCounts
        Named tuple ``(tp, fp, fn, tn)``: ints for binary masks, ``(len(labels),)`` int64
        arrays with ``labels``. ``tp + fp + fn + tn`` is the number of voxels.

    Raises
    ------
    ValueError
        If the shapes differ, a mask is not binary without ``labels``, or holds probabilities.

    Notes
    -----
    ``tp = |P & T|``, ``fp = |P & ~T|``, ``fn = |~P & T|``, ``tn = |~P & ~T|`` for the masks
    ``P = pred == label`` and ``T = target == label`` (nnU-Net's ``compute_tp_fp_fn_tn``).

    References
    ----------
    .. [1] F. Isensee et al., "nnU-Net", Nature Methods 18, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> target = np.array([[0, 1, 1], [0, 1, 1], [0, 0, 0]])
    >>> pred = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 0]])
    >>> confusion_counts(pred, target)
    ConfusionCounts(tp=2, fp=1, fn=2, tn=4)
    >>> confusion_counts(pred * 2, target * 2, labels=[0, 2]).tp
    array([4, 2])
    """
    p, t, labels = _check_pair(pred, target, labels)
    counts = [_counts(pm, tm) for pm, tm in _class_masks(p, t, labels)]
    if labels is None:
        return ConfusionCounts(*counts[0])
    arr = np.array(counts, dtype=np.int64).reshape(-1, 4)
    return ConfusionCounts(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])


def _ratio(num, den, both_empty, empty, lib=np):
    """num / den, 0 where den == 0, ``empty`` where both masks are empty."""
    if lib is np:
        out = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        return np.where(both_empty, empty, out)
    out = torch.where(den > 0, num / den.clamp_min(1), torch.zeros_like(num))
    return torch.where(both_empty, torch.full_like(out, empty), out)


def _overlap_terms(kind, tp, fp, fn):
    if kind == "dice":
        return 2 * tp, 2 * tp + fp + fn
    if kind == "iou":
        return tp, tp + fp + fn
    if kind == "precision":
        return tp, tp + fp
    return tp, tp + fn  # recall


def _overlap(kind, pred, target, labels, empty):
    empty = _check_real(empty, "empty")
    counts = confusion_counts(pred, target, labels=labels)
    tp, fp, fn = (np.asarray(c, dtype=np.float64) for c in counts[:3])
    num, den = _overlap_terms(kind, tp, fp, fn)
    out = _ratio(num, den, tp + fp + fn == 0, empty)
    return float(out) if labels is None else out


def _wrap(text, indent="    "):
    """Wrap a paragraph inserted into a docstring template (indented, 96 columns)."""
    return textwrap.fill(text, width=96 - len(indent), subsequent_indent=indent)


_OVERLAP_DOC = """{summary}

    Introduced in 01_medical_images.

    Parameters
    ----------
    pred, target : (H, W) or (D, H, W) array_like
        Prediction and ground truth: binary masks (bool or 0/1), or integer label maps when
        ``labels`` is given. Threshold probabilities first (``pred > 0.5``).
    labels : sequence of int, optional
        Classes to score in label maps; one value per class, in this order.
    empty : float, default 1.0
        Value returned for a class absent from both masks. ``np.nan`` leaves such cases out of
        ``np.nanmean``.

    Returns
    -------
    float or (len(labels),) ndarray
        In [0, 1], higher is better. A float for binary masks, one value per class with ``labels``.

    Raises
    ------
    ValueError
        If the shapes differ, a mask is not binary without ``labels``, holds probabilities, or is
        not 2D/3D.
    TypeError
        If ``labels`` or ``empty`` has the wrong type.

    Notes
    -----
    ``{formula}``

    from :func:`confusion_counts`. Empty masks: both empty gives ``empty``; exactly one empty
    gives 0.0 (see the module docstring).

    {extra}

    References
    ----------
    {reference}

    Examples
    --------
    A 20x20 square and the same square shifted by 2 pixels overlap on 20x18 pixels:

    >>> import numpy as np
    >>> target = np.zeros((32, 32), dtype=bool); target[6:26, 6:26] = True
    >>> pred = np.roll(target, 2, axis=1)
    >>> round({name}(pred, target), 4)
    {value}
    >>> {name}(np.zeros((4, 4)), np.zeros((4, 4)))  # both empty
    1.0
    >>> {name}(pred * 1, target * 2, labels=[1, 2])  # label maps: classes 1 and 2
    array([0., 0.])
    """


def dice(pred, target, *, labels=None, empty=1.0):
    return _overlap("dice", pred, target, labels, empty)


def iou(pred, target, *, labels=None, empty=1.0):
    return _overlap("iou", pred, target, labels, empty)


def precision(pred, target, *, labels=None, empty=1.0):
    return _overlap("precision", pred, target, labels, empty)


def recall(pred, target, *, labels=None, empty=1.0):
    return _overlap("recall", pred, target, labels, empty)


dice.__doc__ = _OVERLAP_DOC.format(
    summary="Dice similarity coefficient (F1 score) between a predicted and a true mask.",
    name="dice",
    formula="dice = 2 TP / (2 TP + FP + FN) = 2 |P & T| / (|P| + |T|)",
    extra=_wrap("Dice = 2 IoU / (1 + IoU), so the two rank predictions identically."),
    reference=_wrap(".. [1] L. R. Dice, \"Measures of the amount of ecologic association between "
    "species\", Ecology 26(3), 1945.", "       "),
    value="0.9",
)
iou.__doc__ = _OVERLAP_DOC.format(
    summary="Intersection over union (Jaccard index) between a predicted and a true mask.",
    name="iou",
    formula="iou = TP / (TP + FP + FN) = |P & T| / |P | T|",
    extra=_wrap("IoU = Dice / (2 - Dice)."),
    reference=_wrap(".. [1] P. Jaccard, \"The distribution of the flora in the alpine zone\", "
    "New Phytologist 11(2), 1912.", "       "),
    value="0.8182",
)
precision.__doc__ = _OVERLAP_DOC.format(
    summary="Precision (positive predictive value): the fraction of the prediction that is right.",
    name="precision",
    formula="precision = TP / (TP + FP)",
    extra=_wrap("An empty prediction of a non-empty target scores 0.0 (scikit-learn's "
    "``zero_division=0``)."),
    reference=_wrap(".. [1] L. Maier-Hein et al., \"Metrics reloaded\", Nature Methods 21, 2024.", "       "),
    value="0.9",
)
recall.__doc__ = _OVERLAP_DOC.format(
    summary="Recall (sensitivity): the fraction of the target that the prediction finds.",
    name="recall",
    formula="recall = TP / (TP + FN)",
    extra=_wrap("A non-empty prediction of an empty target scores 0.0 (scikit-learn's "
    "``zero_division=0``)."),
    reference=_wrap(".. [1] L. Maier-Hein et al., \"Metrics reloaded\", Nature Methods 21, 2024.", "       "),
    value="0.9",
)


# --------------------------------------------------------------------------------------------
# surface distances (numpy)
# --------------------------------------------------------------------------------------------


def _boundary(mask):
    """Foreground voxels with a face neighbour in the background or outside the array."""
    structure = ndi.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndi.binary_erosion(mask, structure=structure, border_value=0)


def _surface_distances(p, t, spacing):
    """Boundary-to-boundary distances for two validated boolean masks."""
    union = p | t
    if not union.any():
        return np.empty(0), np.empty(0)
    # Crop to the union's bounding box plus one voxel: every boundary voxel stays inside, and
    # the voxels added around it are background, so erosion and distances are unchanged.
    box = ndi.find_objects(union.view(np.uint8))[0]
    crop = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, p.shape))
    bp, bt = _boundary(p[crop]), _boundary(t[crop])
    if not bt.any():  # no target: every predicted boundary voxel is infinitely far from it
        return np.full(np.count_nonzero(bp), np.inf), np.empty(0)
    if not bp.any():
        return np.empty(0), np.full(np.count_nonzero(bt), np.inf)
    d_pt = ndi.distance_transform_edt(~bt, sampling=spacing)[bp]
    d_tp = ndi.distance_transform_edt(~bp, sampling=spacing)[bt]
    return d_pt, d_tp


def surface_distances(pred, target, *, spacing=None):
    """Distances between the boundaries of two binary masks, in both directions.

    The one helper behind :func:`hausdorff`, :func:`hd95` and :func:`assd`; plot its output as a
    histogram to see where a prediction goes wrong.

    Introduced in 01_medical_images.

    Parameters
    ----------
    pred, target : (H, W) or (D, H, W) array_like
        Binary masks (bool or 0/1) of the same shape.
    spacing : float or sequence of float, optional
        Voxel size along each axis, in the array's axis order (``(z, y, x)`` for ``(D, H, W)``),
        e.g. millimetres; a single number means isotropic voxels. Default: 1 per axis.

    Returns
    -------
    pred_to_target : (N_pred,) ndarray
        For each boundary voxel of ``pred``, the distance to the nearest boundary voxel of
        ``target``; ``inf`` for all of them if ``target`` is empty.
    target_to_pred : (N_target,) ndarray
        The same from ``target`` to ``pred``.

    Raises
    ------
    ValueError
        If the shapes differ, a mask is not binary, or ``spacing`` has the wrong length.

    Notes
    -----
    The boundary of a mask is ``mask & ~binary_erosion(mask)`` with face connectivity, the
    array's edge counting as background. Distances are between voxel centres, computed with
    ``scipy.ndimage.distance_transform_edt(~boundary, sampling=spacing)`` on the bounding box of
    both masks (DeepMind ``surface-distance``, MONAI ``get_surface_distance``). The order of the
    distances is that of ``np.nonzero`` on the cropped boundary; only their values matter.

    References
    ----------
    .. [1] S. Nikolov et al., JMIR 23, 2021 (DeepMind ``surface-distance``).

    Examples
    --------
    >>> import numpy as np
    >>> target = np.zeros((8, 8), dtype=bool); target[2:5, 2:5] = True
    >>> pred = np.roll(target, 1, axis=0)
    >>> d_pt, d_tp = surface_distances(pred, target, spacing=(2.0, 1.0))
    >>> d_pt.size, d_tp.size  # a 3x3 square has 8 boundary pixels
    (8, 8)
    >>> sorted(d_pt.tolist())
    [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0]
    """
    p, t, _ = _check_pair(pred, target, None)
    return _surface_distances(p, t, _check_spacing(spacing, p.ndim))


def _reduce_distances(kind, d_pt, d_tp, percentile, empty):
    if d_pt.size == 0 and d_tp.size == 0:
        return empty
    if d_pt.size == 0 or d_tp.size == 0:
        return math.inf
    if kind == "hausdorff":
        return float(max(d_pt.max(), d_tp.max()))
    if kind == "hd95":
        return float(max(np.percentile(d_pt, percentile), np.percentile(d_tp, percentile)))
    return float((d_pt.sum() + d_tp.sum()) / (d_pt.size + d_tp.size))  # assd


def _distance(kind, pred, target, spacing, labels, empty, percentile=100.0):
    p, t, labels = _check_pair(pred, target, labels)
    spacing = _check_spacing(spacing, p.ndim)
    empty = _check_real(empty, "empty")
    values = [
        _reduce_distances(kind, *_surface_distances(pm, tm, spacing), percentile, empty)
        for pm, tm in _class_masks(p, t, labels)
    ]
    return values[0] if labels is None else np.array(values, dtype=np.float64)


_DISTANCE_DOC = """{summary}

    Introduced in 01_medical_images.

    Parameters
    ----------
    pred, target : (H, W) or (D, H, W) array_like
        Prediction and ground truth: binary masks (bool or 0/1), or integer label maps when
        ``labels`` is given. Threshold probabilities first (``pred > 0.5``).
    spacing : float or sequence of float, optional
        Voxel size along each axis in the array's axis order (``(z, y, x)`` for ``(D, H, W)``),
        e.g. millimetres; a single number means isotropic voxels. Default: 1 per axis, i.e.
        distances in voxels.{percentile_param}
    labels : sequence of int, optional
        Classes to score in label maps; one value per class, in this order.
    empty : float, default 0.0
        Value returned for a class absent from both masks. ``np.nan`` leaves such cases out of
        ``np.nanmean``.

    Returns
    -------
    float or (len(labels),) ndarray
        Distance in the units of ``spacing``, lower is better. ``inf`` when exactly one of the
        two masks is empty.

    Raises
    ------
    ValueError
        If the shapes differ, a mask is not binary without ``labels``, holds probabilities, is not
        2D/3D, or ``spacing`` does not have one positive value per axis.
    TypeError
        If ``labels``, ``spacing`` or ``empty`` has the wrong type.

    Notes
    -----
    ``{formula}``

    with ``d_pt`` and ``d_tp`` the boundary-to-boundary distances of :func:`surface_distances`,
    from the prediction to the target and back.

    {extra}

    Empty masks: both empty gives ``empty``; exactly one empty gives ``inf`` (see the module
    docstring).

    References
    ----------
    {reference}

    Examples
    --------
    A 20x20 square and the same square shifted by 2 pixels along x; with pixels of 0.5 mm
    along x the errors along x shrink by half:

    >>> import numpy as np
    >>> target = np.zeros((32, 32), dtype=bool); target[6:26, 6:26] = True
    >>> pred = np.roll(target, 2, axis=1)
    >>> {name}(pred, target)
    {value}
    >>> round({name}(pred, target, spacing=(1.0, 0.5)), 4)
    {value_half}
    >>> {name}(pred, np.zeros_like(target))  # exactly one empty
    inf
    """


def hausdorff(pred, target, *, spacing=None, labels=None, empty=0.0):
    return _distance("hausdorff", pred, target, spacing, labels, empty)


def hd95(pred, target, *, spacing=None, percentile=95.0, labels=None, empty=0.0):
    return _distance("hd95", pred, target, spacing, labels, empty, _check_percentile(percentile))


def assd(pred, target, *, spacing=None, labels=None, empty=0.0):
    return _distance("assd", pred, target, spacing, labels, empty)


hausdorff.__doc__ = _DISTANCE_DOC.format(
    summary="Hausdorff distance: the largest boundary error between two masks.",
    name="hausdorff",
    percentile_param="",
    formula="hausdorff = max(max(d_pt), max(d_tp))",
    extra=_wrap("A single stray voxel far away sets its value; :func:`hd95` is the robust variant."),
    reference=_wrap(".. [1] D. P. Huttenlocher et al., \"Comparing images using the Hausdorff "
    "distance\", IEEE TPAMI 15(9), 1993.", "       "),
    value="2.0",
    value_half="1.0",
)
hd95.__doc__ = _DISTANCE_DOC.format(
    summary="95th-percentile Hausdorff distance (HD95): a boundary error robust to outliers.",
    name="hd95",
    percentile_param="""
    percentile : float, default 95.0
        Percentile of each direction's distances, between 0 and 100; 100 gives :func:`hausdorff`.""",
    formula="hd95 = max(percentile(d_pt, q), percentile(d_tp, q))",
    extra=_wrap("The percentile is taken per direction with linear interpolation, then the larger "
    "is kept (MONAI's convention; MedPy pools both directions first, DeepMind weights by "
    "surface area)."),
    reference=_wrap(".. [1] L. Maier-Hein et al., \"Metrics reloaded\", Nature Methods 21, 2024.", "       "),
    value="2.0",
    value_half="1.0",
)
assd.__doc__ = _DISTANCE_DOC.format(
    summary="Average symmetric surface distance (ASSD) between two masks.",
    name="assd",
    percentile_param="",
    formula="assd = (sum(d_pt) + sum(d_tp)) / (len(d_pt) + len(d_tp))",
    extra=_wrap("Both directions are pooled before averaging (MONAI ``symmetric=True``, Heimann et al.)."),
    reference=_wrap(".. [1] T. Heimann et al., \"Comparison and evaluation of methods for liver "
    "segmentation from CT datasets\", IEEE TMI 28(8), 2009.", "       "),
    value="1.0",
    value_half="0.5132",
)


def boundary_f_score(pred, target, *, tolerance=2.0, spacing=None, labels=None, empty=1.0):
    """Boundary F-score: how much of each outline lies within ``tolerance`` of the other.

    Introduced in 07_fcn.

    Parameters
    ----------
    pred, target : (H, W) or (D, H, W) array_like
        Binary masks, or integer label maps with ``labels`` (as :func:`dice`).
    tolerance : float, default 2.0
        Largest distance, in the units of ``spacing``, at which a boundary voxel counts as found.
    spacing : float or sequence of float, optional
        Voxel size per axis (as :func:`hd95`); 1 per axis by default (pixels).
    labels : sequence of int, optional
        Classes to score in label maps.
    empty : float, default 1.0
        Value for a class absent from both masks.

    Returns
    -------
    float or (len(labels),) ndarray
        In [0, 1], higher is better; 0.0 when exactly one mask is empty (the overlap rule of the
        module docstring).

    Notes
    -----
    With ``d_pt`` and ``d_tp`` the boundary distances of :func:`surface_distances`::

        precision = mean(d_pt <= tolerance)     recall = mean(d_tp <= tolerance)
        boundary_f = 2 precision recall / (precision + recall)

    Dice barely moves when a boundary is a pixel or two off on a large object; this score sees
    it. It is the contour accuracy of the DAVIS benchmark and Csurka et al.'s BF score.

    References
    ----------
    .. [1] G. Csurka, D. Larlus, F. Perronnin, "What is a good evaluation measure for semantic
       segmentation?", BMVC 2013.

    Examples
    --------
    >>> import numpy as np
    >>> target = np.zeros((32, 32), dtype=bool); target[6:26, 6:26] = True
    >>> pred = np.roll(target, 2, axis=1)
    >>> boundary_f_score(pred, target, tolerance=2)
    1.0
    >>> round(boundary_f_score(pred, target, tolerance=1), 3)  # the vertical sides are 2 px off
    0.526
    """
    p, t, labels = _check_pair(pred, target, labels)
    spacing = _check_spacing(spacing, p.ndim)
    tolerance = _check_real(tolerance, "tolerance")
    if tolerance < 0:
        raise ValueError(f"tolerance must be a distance >= 0, got {tolerance}")
    empty = _check_real(empty, "empty")
    values = []
    for pm, tm in _class_masks(p, t, labels):
        if not pm.any() and not tm.any():
            values.append(empty)
            continue
        if not pm.any() or not tm.any():
            values.append(0.0)
            continue
        d_pt, d_tp = _surface_distances(pm, tm, spacing)
        prec, rec = float(np.mean(d_pt <= tolerance)), float(np.mean(d_tp <= tolerance))
        values.append(0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec))
    return values[0] if labels is None else np.array(values, dtype=np.float64)


def _class_key(label, class_names):
    if class_names is None:
        return label
    if isinstance(class_names, Mapping):
        return class_names.get(label, label)
    if 0 <= label < len(class_names):
        return class_names[label]
    return label


def segmentation_report(pred, target, *, labels=None, spacing=None, class_names=None,
                        percentile=95.0, empty_overlap=1.0, empty_distance=0.0):
    """Every metric of this module for one case, per class, as a dict ready to tabulate.

    Introduced in 01_medical_images.

    Parameters
    ----------
    pred, target : (H, W) or (D, H, W) array_like
        Binary masks, or integer label maps when ``labels`` is given.
    labels : sequence of int, optional
        Classes to report, in this order. Binary masks report one class, label 1.
    spacing : float or sequence of float, optional
        Voxel size per axis (``(z, y, x)`` for ``(D, H, W)``); see :func:`surface_distances`.
    class_names : sequence of str or mapping, optional
        Names used as keys: a mapping ``{label: name}``, or a sequence indexed by label value
        (``class_names[0]`` names the background). Classes without a name keep their label.
    percentile : float, default 95.0
        Percentile for the ``"hd95"`` entry.
    empty_overlap, empty_distance : float, default 1.0 and 0.0
        Values for classes absent from both masks (the ``empty`` of the overlap and of the
        distance metrics).

    Returns
    -------
    dict
        ``{class: {"dice", "iou", "precision", "recall", "hausdorff", "hd95", "assd",
        "target_volume", "pred_volume"}}``. Volumes are voxel counts times the voxel volume
        (e.g. mm^3 with spacing in mm). ``pandas.DataFrame(report).T`` gives a table.

    Raises
    ------
    ValueError
        For the invalid inputs listed in :func:`dice` and :func:`hausdorff`.

    Notes
    -----
    Each class's boundary distances are computed once and shared by the three distance metrics;
    the values equal those of the individual functions, with the same empty-mask rule.

    References
    ----------
    .. [1] L. Maier-Hein et al., "Metrics reloaded", Nature Methods 21, 2024: report an overlap
       and a boundary metric together, per class.

    Examples
    --------
    >>> import numpy as np
    >>> target = np.zeros((32, 32), dtype=int); target[6:26, 6:26] = 1; target[10:14, 10:14] = 2
    >>> pred = np.roll(target, 2, axis=1)
    >>> report = segmentation_report(pred, target, labels=[1, 2],
    ...                              class_names=["background", "organ", "lesion"])
    >>> list(report)
    ['organ', 'lesion']
    >>> {k: round(v, 3) for k, v in report["lesion"].items()}  # doctest: +NORMALIZE_WHITESPACE
    {'dice': 0.5, 'iou': 0.333, 'precision': 0.5, 'recall': 0.5, 'hausdorff': 2.0,
     'hd95': 2.0, 'assd': 1.0, 'target_volume': 16.0, 'pred_volume': 16.0}
    """
    p, t, checked = _check_pair(pred, target, labels)
    spacing = _check_spacing(spacing, p.ndim)
    q = _check_percentile(percentile)
    empty_overlap = _check_real(empty_overlap, "empty_overlap")
    empty_distance = _check_real(empty_distance, "empty_distance")
    if class_names is not None and not isinstance(class_names, (Mapping, Sequence)):
        raise TypeError(
            f"class_names must be a sequence indexed by label or a mapping {{label: name}}, "
            f"got {type(class_names).__name__}"
        )
    voxel_volume = float(np.prod(spacing))
    report = {}
    for label, (pm, tm) in zip(checked or (1,), _class_masks(p, t, checked)):
        tp, fp, fn, _ = (float(c) for c in _counts(pm, tm))
        entry = {}
        for kind in ("dice", "iou", "precision", "recall"):
            num, den = _overlap_terms(kind, tp, fp, fn)
            entry[kind] = empty_overlap if tp + fp + fn == 0 else (num / den if den > 0 else 0.0)
        d_pt, d_tp = _surface_distances(pm, tm, spacing)
        for kind in ("hausdorff", "hd95", "assd"):
            entry[kind] = _reduce_distances(kind, d_pt, d_tp, q, empty_distance)
        entry["target_volume"] = (tp + fn) * voxel_volume
        entry["pred_volume"] = (tp + fp) * voxel_volume
        report[_class_key(label, class_names)] = entry
    return report


# --------------------------------------------------------------------------------------------
# torch: batched versions
# --------------------------------------------------------------------------------------------


def _float_dtype(device):
    return torch.float32 if device.type == "mps" else torch.float64


def _check_binary_tensor(x, name):
    if x.dtype == torch.bool:
        return x
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf values; a mask holds 0/1 or class labels")
        if not torch.equal(x, x.round()):
            raise ValueError(_probability_message(name, x.detach().float().cpu().numpy(), batched=True))
    elif x.is_complex():
        raise TypeError(f"{name} must be a bool, integer or float tensor, got {x.dtype}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{name} must hold one-hot / binary masks (only 0 and 1) when num_classes is None, "
            f"but its values range from {x.min().item()} to {x.max().item()}: for label maps pass "
            f"num_classes and shape (B, 1, ...), e.g. {name}.unsqueeze(1)"
        )
    return x.bool()


def _check_batch(pred, target, num_classes):
    """Validate a batch for the torch metrics; return boolean (B, C, *spatial) masks."""
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"{name} must be a torch.Tensor, got {type(x).__name__}; use the numpy functions "
                f"(dice, hd95, ...) for one numpy case, or torch.as_tensor({name})"
            )
    if pred.device != target.device:
        raise ValueError(
            f"pred and target must be on the same device, got {pred.device} and {target.device}; "
            "move one with .to(other.device)"
        )
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {tuple(pred.shape)} and "
            f"target {tuple(target.shape)}"
        )
    if pred.ndim not in (4, 5):
        hint = (
            "; add the missing axes, e.g. x[None, None] for one 2D mask or x.unsqueeze(1) for "
            "a batch of label maps (B, H, W)"
            if pred.ndim < 4
            else ""
        )
        raise ValueError(
            f"pred and target must have shape (B, C, H, W) or (B, C, D, H, W), got "
            f"{tuple(pred.shape)}{hint}"
        )
    if num_classes is None:
        return _check_binary_tensor(pred, "pred"), _check_binary_tensor(target, "target")
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise TypeError(f"num_classes must be an int such as 3, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if pred.shape[1] != 1:
        raise ValueError(
            f"with num_classes, pred and target must be label maps of shape (B, 1, H, W) or "
            f"(B, 1, D, H, W), got {tuple(pred.shape)}; take scores.argmax(dim=1, keepdim=True), "
            f"or leave num_classes=None if the inputs are already one-hot"
        )
    out = []
    classes = torch.arange(num_classes, device=pred.device).view(1, -1, *([1] * (pred.ndim - 2)))
    for name, x in (("pred", pred), ("target", target)):
        if x.is_floating_point():
            if not torch.isfinite(x).all():
                raise ValueError(f"{name} contains NaN or inf values; a label map holds class labels")
            if not torch.equal(x, x.round()):
                raise ValueError(_probability_message(name, x.detach().float().cpu().numpy(), batched=True))
        elif x.is_complex():
            raise TypeError(f"{name} must be an integer or float tensor, got {x.dtype}")
        if x.numel() and (x.min() < 0 or x.max() >= num_classes):
            raise ValueError(
                f"{name} holds labels from {x.min().item()} to {x.max().item()}, outside "
                f"0..{num_classes - 1} for num_classes={num_classes}; raise num_classes to "
                f"{int(x.max().item()) + 1} or remap the labels"
            )
        out.append(x.long() == classes)
    return out[0], out[1]


def confusion_counts_torch(pred, target, *, num_classes=None):
    """Batched true/false positive/negative counts per case and class.

    Introduced in 01_medical_images.

    Parameters
    ----------
    pred, target : (B, C, H, W) or (B, C, D, H, W) torch.Tensor
        One-hot / multi-label masks (bool or 0/1). With ``num_classes`` they are label maps of
        shape ``(B, 1, ...)``, one-hot encoded to ``num_classes`` channels.
    num_classes : int, optional
        Number of classes K of label maps; channel ``k`` of the result is class ``k``.

    Returns
    -------
    ConfusionCounts
        ``(tp, fp, fn, tn)``, each a ``(B, C)`` int64 tensor on the inputs' device.

    Raises
    ------
    ValueError, TypeError
        For tensors of the wrong shape, device, values or type (see :func:`dice_torch`).

    Notes
    -----
    Equal to :func:`confusion_counts` applied to each case and class.

    References
    ----------
    .. [1] F. Isensee et al., "nnU-Net", Nature Methods 18, 2021 (``compute_tp_fp_fn_tn``).

    Examples
    --------
    >>> import torch
    >>> target = torch.zeros(2, 1, 4, 4, dtype=torch.long); target[:, :, :2] = 1
    >>> pred = torch.zeros_like(target); pred[:, :, 1:3] = 1
    >>> confusion_counts_torch(pred, target, num_classes=2).tp
    tensor([[4, 4],
            [4, 4]])
    """
    with torch.no_grad():
        p, t = _check_batch(pred, target, num_classes)
        tp = (p & t).flatten(2).sum(-1)
        np_ = p.flatten(2).sum(-1)
        nt = t.flatten(2).sum(-1)
        fp, fn = np_ - tp, nt - tp
        return ConfusionCounts(tp, fp, fn, p[0, 0].numel() - tp - fp - fn)


def _overlap_torch(kind, pred, target, num_classes, empty):
    empty = _check_real(empty, "empty")
    tp, fp, fn, _ = confusion_counts_torch(pred, target, num_classes=num_classes)
    dtype = _float_dtype(tp.device)
    tp, fp, fn = tp.to(dtype), fp.to(dtype), fn.to(dtype)
    num, den = _overlap_terms(kind, tp, fp, fn)
    return _ratio(num, den, tp + fp + fn == 0, empty, lib=torch)


_OVERLAP_TORCH_DOC = """Batched {what} per case and class, on the inputs' device (see :func:`{numpy_name}`).

    Introduced in 01_medical_images.

    Parameters
    ----------
    pred, target : (B, C, H, W) or (B, C, D, H, W) torch.Tensor
        One-hot / multi-label masks (bool or 0/1). With ``num_classes`` they are label maps of
        shape ``(B, 1, ...)`` (e.g. ``logits.argmax(dim=1, keepdim=True)``), one-hot encoded to
        ``num_classes`` channels, background included. Probabilities are refused: threshold first.
    num_classes : int, optional
        Number of classes K of label maps; column ``k`` of the result is class ``k``.
    empty : float, default 1.0
        Value for a (case, class) absent from both masks.

    Returns
    -------
    (B, C) torch.Tensor
        float64 (float32 on MPS), on the inputs' device. Drop the background column with
        ``[:, 1:]``; average over cases with ``.nanmean(0)``.

    Raises
    ------
    TypeError
        If an input is not a tensor, or ``num_classes``/``empty`` has the wrong type.
    ValueError
        If shapes or devices differ, inputs are not 4D/5D, hold probabilities, or label values are
        outside ``0..num_classes-1``.

    Notes
    -----
    Same formula and empty-mask rule as :func:`{numpy_name}`; runs without autograd.

    References
    ----------
    .. [1] MONAI Consortium, ``monai.metrics.compute_dice`` / ``compute_iou`` (batched layout).

    Examples
    --------
    Two cases of one class: the shifted square, then an empty prediction.

    >>> import torch
    >>> target = torch.zeros(2, 1, 32, 32, dtype=torch.bool); target[..., 6:26, 6:26] = True
    >>> pred = torch.roll(target, 2, dims=-1); pred[1] = False
    >>> {name}(pred, target)
    tensor([[{value}],
            [0.0000]], dtype=torch.float64)
    >>> {name}(pred.long(), target.long(), num_classes=2).shape  # label maps, classes 0 and 1
    torch.Size([2, 2])
    """


def dice_torch(pred, target, *, num_classes=None, empty=1.0):
    with torch.no_grad():
        return _overlap_torch("dice", pred, target, num_classes, empty)


def iou_torch(pred, target, *, num_classes=None, empty=1.0):
    with torch.no_grad():
        return _overlap_torch("iou", pred, target, num_classes, empty)


def precision_torch(pred, target, *, num_classes=None, empty=1.0):
    with torch.no_grad():
        return _overlap_torch("precision", pred, target, num_classes, empty)


def recall_torch(pred, target, *, num_classes=None, empty=1.0):
    with torch.no_grad():
        return _overlap_torch("recall", pred, target, num_classes, empty)


dice_torch.__doc__ = _OVERLAP_TORCH_DOC.format(
    what="Dice", numpy_name="dice", name="dice_torch", value="0.9000")
iou_torch.__doc__ = _OVERLAP_TORCH_DOC.format(
    what="IoU", numpy_name="iou", name="iou_torch", value="0.8182")
precision_torch.__doc__ = _OVERLAP_TORCH_DOC.format(
    what="precision", numpy_name="precision", name="precision_torch", value="0.9000")
recall_torch.__doc__ = _OVERLAP_TORCH_DOC.format(
    what="recall", numpy_name="recall", name="recall_torch", value="0.9000")


def _boundary_torch(x):
    """Boundary of boolean masks (N, *spatial): face connectivity, outside counts as background."""
    nd = x.ndim - 1
    padded = F.pad(x.to(torch.uint8), (1, 1) * nd).bool()
    interior = x.clone()
    for axis in range(1, nd + 1):
        for start in (0, 2):
            index = [slice(None)] + [slice(1, n + 1) for n in x.shape[1:]]
            index[axis] = slice(start, start + x.shape[axis])
            interior &= padded[tuple(index)]
    return x & ~interior


def _min_plus_along(f, dim, step):
    """out[..., i, ...] = min_j f[..., j, ...] + ((i - j) * step)**2 along ``dim`` (exact EDT pass)."""
    f = f.movedim(dim, -1)
    shape = f.shape
    length = shape[-1]
    g = f.reshape(-1, length)
    out = torch.full_like(g, math.inf)
    rows = torch.isfinite(g).any(1).nonzero().squeeze(1)  # lines that contain a site
    if rows.numel():
        idx = torch.arange(length, device=f.device, dtype=f.dtype)
        w = ((idx[:, None] - idx[None, :]) * step) ** 2  # (L, L), w[i, j]
        chunk = max(1, _CHUNK_ELEMENTS // (length * length))
        for s in range(0, rows.numel(), chunk):
            r = rows[s:s + chunk]
            out[r] = (g[r][:, None, :] + w).amin(-1)
    return out.reshape(shape).movedim(-1, dim)


def _nearest_site_sq_1d(sites, dim, step, dtype):
    """Squared distance along ``dim`` to the nearest True voxel on the same line (inf if none)."""
    shape = [1] * sites.ndim
    shape[dim] = sites.shape[dim]
    idx = torch.arange(sites.shape[dim], device=sites.device, dtype=dtype).view(shape)
    inf = torch.tensor(math.inf, dtype=dtype, device=sites.device)
    before = torch.where(sites, idx, -inf).cummax(dim).values
    after = torch.where(sites, idx, inf).flip(dim).cummin(dim).values.flip(dim)
    return (torch.minimum(idx - before, after - idx) * step) ** 2


def _edt_sq_at(sites, queries, spacing, dtype):
    """Squared Euclidean distance from each True voxel of ``queries`` to the nearest True voxel of
    ``sites`` (both (N, *spatial)); a dense tensor, inf where no site exists or not queried.

    Exact separable transform (Saito & Toriwaki 1994): nearest site along the first axis by two
    cumulative scans, a brute-force lower envelope along the middle axes, and along the last axis
    only at the queried voxels, all vectorised on the device.
    """
    f = _nearest_site_sq_1d(sites, 1, spacing[0], dtype)
    for axis in range(2, sites.ndim - 1):
        f = _min_plus_along(f, axis, spacing[axis - 1])
    where = queries.nonzero()  # (Q, 1 + ndim), row-major like boolean indexing
    out = torch.full(sites.shape, math.inf, dtype=dtype, device=sites.device)
    if where.shape[0]:
        length = sites.shape[-1]
        j = torch.arange(length, device=sites.device, dtype=dtype)
        chunk = max(1, _CHUNK_ELEMENTS // length)
        values = []
        for s in range(0, where.shape[0], chunk):
            w = where[s:s + chunk]
            lines = f[tuple(w[:, :-1].T)]  # (q, L): the line through each queried voxel
            offsets = ((w[:, -1:].to(dtype) - j) * spacing[-1]) ** 2
            values.append((lines + offsets).amin(1))
        out[queries] = torch.cat(values)
    return out


def _masked_percentile(values, mask, q):
    """Per-row percentile (linear interpolation, as numpy) of ``values`` where ``mask``; (N, M)."""
    n = mask.sum(1)
    srt = torch.where(mask, values, torch.full_like(values, math.inf)).sort(1).values
    pos = (q / 100.0) * (n - 1).clamp_min(0).to(values.dtype)
    lo = pos.floor().long()
    hi = pos.ceil().long()
    frac = pos - lo.to(values.dtype)
    a = srt.gather(1, lo[:, None]).squeeze(1)
    b = srt.gather(1, hi[:, None]).squeeze(1)
    diff = b - a
    return torch.where(frac >= 0.5, b - diff * (1 - frac), a + diff * frac)


def _distance_torch(kind, pred, target, spacing, num_classes, empty, percentile=100.0):
    empty = _check_real(empty, "empty")
    p, t = _check_batch(pred, target, num_classes)
    spatial = p.shape[2:]
    spacing = _check_spacing(spacing, len(spatial))
    B, C = p.shape[:2]
    dtype = _float_dtype(p.device)
    union = (p | t).flatten(0, 1).any(0)
    if not union.any():
        return torch.full((B, C), empty, dtype=dtype, device=p.device)
    crop = []  # bounding box of every mask in the batch, plus one voxel (see _surface_distances)
    for axis in range(len(spatial)):
        others = tuple(a for a in range(len(spatial)) if a != axis)
        hits = union.any(dim=others) if others else union
        nz = hits.nonzero().squeeze(1)
        crop.append(slice(max(int(nz[0]) - 1, 0), min(int(nz[-1]) + 2, spatial[axis])))
    p = p[(slice(None), slice(None), *crop)].flatten(0, 1)
    t = t[(slice(None), slice(None), *crop)].flatten(0, 1)
    bp, bt = _boundary_torch(p), _boundary_torch(t)
    d_pt = _edt_sq_at(bt, bp, spacing, dtype).sqrt().flatten(1)  # pred boundary -> target's
    d_tp = _edt_sq_at(bp, bt, spacing, dtype).sqrt().flatten(1)
    bp, bt = bp.flatten(1), bt.flatten(1)
    n_p, n_t = bp.sum(1), bt.sum(1)
    if kind == "hausdorff":
        ninf = torch.full_like(d_pt, -math.inf)
        value = torch.maximum(torch.where(bp, d_pt, ninf).amax(1), torch.where(bt, d_tp, ninf).amax(1))
    elif kind == "hd95":
        value = torch.maximum(_masked_percentile(d_pt, bp, percentile),
                              _masked_percentile(d_tp, bt, percentile))
    else:  # assd
        zero = torch.zeros_like(d_pt)
        total = torch.where(bp, d_pt, zero).sum(1) + torch.where(bt, d_tp, zero).sum(1)
        value = total / (n_p + n_t).clamp_min(1).to(dtype)
    value = torch.where((n_p == 0) ^ (n_t == 0), torch.full_like(value, math.inf), value)
    value = torch.where((n_p == 0) & (n_t == 0), torch.full_like(value, empty), value)
    return value.view(B, C)


_DISTANCE_TORCH_DOC = """Batched {what} per case and class, on the inputs' device (see :func:`{numpy_name}`).

    Introduced in 01_medical_images.

    Parameters
    ----------
    pred, target : (B, C, H, W) or (B, C, D, H, W) torch.Tensor
        One-hot / multi-label masks (bool or 0/1). With ``num_classes`` they are label maps of
        shape ``(B, 1, ...)``, one-hot encoded to ``num_classes`` channels, background included.
    spacing : float or sequence of float, optional
        Voxel size per spatial axis (``(z, y, x)`` for ``(D, H, W)``), shared by the batch.{percentile_param}
    num_classes : int, optional
        Number of classes K of label maps; column ``k`` of the result is class ``k``.
    empty : float, default 0.0
        Value for a (case, class) absent from both masks; ``inf`` where exactly one is empty.

    Returns
    -------
    (B, C) torch.Tensor
        float64 (float32 on MPS), in the units of ``spacing``, on the inputs' device.

    Raises
    ------
    TypeError, ValueError
        As :func:`dice_torch`, and for a ``spacing`` without one positive value per spatial axis.

    Notes
    -----
    Same definition and empty-mask rule as :func:`{numpy_name}`. Boundaries come from a
    face-connected erosion; distances from an exact separable Euclidean distance transform
    computed on the device, on the bounding box of all masks in the batch. In 3D its middle pass
    costs O(voxels x H), so very large volumes can be faster with :func:`{numpy_name}` on CPU.

    References
    ----------
    .. [1] T. Saito and J.-I. Toriwaki, "New algorithms for Euclidean distance transformation of
       an n-dimensional digitized picture", Pattern Recognition 27(11), 1994.
    .. [2] MONAI Consortium, ``monai.metrics.compute_hausdorff_distance`` (same conventions).

    Examples
    --------
    Two cases of one class: the shifted square, then an empty prediction.

    >>> import torch
    >>> target = torch.zeros(2, 1, 32, 32, dtype=torch.bool); target[..., 6:26, 6:26] = True
    >>> pred = torch.roll(target, 2, dims=-1); pred[1] = False
    >>> {name}(pred, target)
    tensor([[{value}],
            [inf]], dtype=torch.float64)
    """


def hausdorff_torch(pred, target, *, spacing=None, num_classes=None, empty=0.0):
    with torch.no_grad():
        return _distance_torch("hausdorff", pred, target, spacing, num_classes, empty)


def hd95_torch(pred, target, *, spacing=None, percentile=95.0, num_classes=None, empty=0.0):
    q = _check_percentile(percentile)
    with torch.no_grad():
        return _distance_torch("hd95", pred, target, spacing, num_classes, empty, q)


def assd_torch(pred, target, *, spacing=None, num_classes=None, empty=0.0):
    with torch.no_grad():
        return _distance_torch("assd", pred, target, spacing, num_classes, empty)


hausdorff_torch.__doc__ = _DISTANCE_TORCH_DOC.format(
    what="Hausdorff distance", numpy_name="hausdorff", name="hausdorff_torch",
    percentile_param="", value="2.")
hd95_torch.__doc__ = _DISTANCE_TORCH_DOC.format(
    what="percentile Hausdorff distance (HD95)", numpy_name="hd95", name="hd95_torch",
    percentile_param="""
    percentile : float, default 95.0
        Percentile of each direction's distances, between 0 and 100.""",
    value="2.")
assd_torch.__doc__ = _DISTANCE_TORCH_DOC.format(
    what="average symmetric surface distance", numpy_name="assd", name="assd_torch",
    percentile_param="", value="1.")
