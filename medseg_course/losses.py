"""Segmentation losses: cross-entropy (binary and multi-class, weighted), soft Dice, Dice + CE.

Inputs
------
Every loss takes raw **logits** (the model's output; the sigmoid/softmax is applied here) and an
integer **label map**:

* ``logits``: ``(B, C, *spatial)`` float, ``spatial`` being ``(H, W)``, ``(D, H, W)`` or nothing
  (a patch classifier's ``(B, K)``).

  - ``C = 1``: **binary** segmentation. The single channel is the foreground logit ``z``;
    ``p = sigmoid(z)`` is the foreground probability, and the cross-entropy is the binary one
    (``binary_cross_entropy_with_logits``).
  - ``C >= 2``: **multi-class**, one logit per class, ``p = softmax(z)`` over the channel axis
    (``cross_entropy``). Binary problems can use this form too, with ``C = 2``.

* ``target``: ``(B, *spatial)`` (or ``(B, 1, *spatial)``) integer labels, ``0 .. C - 1``
  (0/1 when ``C = 1``), the ``mask`` of the course's samples, batched.
* ``weight_map`` (optional): ``(B, *spatial)`` (or ``(B, 1, *spatial)``) non-negative per-pixel
  weights ``m_i``, e.g. the U-Net border-weight map. A 0/1 map is a **mask**: pixels with weight 0
  do not count at all (sparse annotation: only labelled pixels).
* ``ignore_index`` (optional): a label value (e.g. ``-1`` or ``255``) meaning "not annotated";
  those pixels are left out exactly as weight 0 would.

Weights combine into one factor per pixel, ``w_i = class_weights[y_i] * m_i * [y_i != ignore]``,
and every "mean" is the weighted mean ``sum_i w_i l_i / sum_i w_i`` (PyTorch's convention for
class weights and ``ignore_index``). With no weights at all it is the plain mean over pixels.

Deep supervision
----------------
:class:`DeepSupervisionLoss` wraps any of these losses for networks that return one output per
level while training (``UNetPlusPlus(deep_supervision=True)``): the weighted mean of the base loss
over the outputs (introduced in 10_unetpp).

Introduced in 06_cnn.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "cross_entropy",
    "soft_dice_loss",
    "dice_ce_loss",
    "CrossEntropyLoss",
    "DiceLoss",
    "DiceCELoss",
    "inverse_frequency_weights",
    "deep_supervision_loss",
    "DeepSupervisionLoss",
]

_REDUCTIONS = ("mean", "sum", "none")


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------


def _check_reduction(reduction, allowed=_REDUCTIONS) -> str:
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {list(allowed)}, got {reduction!r}")
    return reduction


def _check_ignore_index(ignore_index):
    if ignore_index is None:
        return None
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an int label such as -1 or 255, or None, got {ignore_index!r}")
    return int(ignore_index)


def _check_nonneg(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _check_class_weights(class_weights) -> torch.Tensor | None:
    if class_weights is None:
        return None
    w = torch.as_tensor(class_weights, dtype=torch.float32)
    if w.ndim != 1 or w.numel() == 0:
        raise ValueError(
            f"class_weights must be a 1D sequence with one weight per class, got shape {tuple(w.shape)}"
        )
    if not torch.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"class_weights must be finite and non-negative, got {w.tolist()}")
    return w


def _as_label_map(x: torch.Tensor, name: str, logits: torch.Tensor) -> torch.Tensor:
    """Drop a singleton channel axis so that ``x`` has the logits' shape without the channel."""
    if x.ndim == logits.ndim and x.ndim >= 2 and x.shape[1] == 1:
        x = x[:, 0]
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(x.shape) != expected:
        raise ValueError(
            f"{name} must have shape (B, *spatial) = {expected} to match logits "
            f"{tuple(logits.shape)} (channel axis removed), got {tuple(x.shape)}"
        )
    return x


def _prepare(logits, target, weight_map, ignore_index):
    """Validate the inputs; return (float logits, safe labels, per-pixel weights or None)."""
    if isinstance(logits, (list, tuple)):
        raise TypeError(
            f"logits is a {type(logits).__name__} of {len(logits)} outputs, not one tensor: the model "
            "returns one output per level (deep supervision, e.g. UNetPlusPlus in training mode); wrap "
            "the loss so that it scores every output: DeepSupervisionLoss(loss_fn)"
        )
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError(
            f"logits must be a float torch.Tensor (the model's raw output), got "
            f"{type(logits).__name__}{'' if not isinstance(logits, torch.Tensor) else ' ' + str(logits.dtype)}"
        )
    if logits.ndim < 2:
        raise ValueError(f"logits must have shape (B, C, *spatial), got {tuple(logits.shape)}")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor of labels, got {type(target).__name__}; use torch.as_tensor(target)")
    if target.is_floating_point() or target.is_complex():
        raise TypeError(
            f"target must hold integer class labels, got {target.dtype}; convert with target.long() "
            "(soft labels are not supported)"
        )
    if target.device != logits.device:
        raise ValueError(f"target is on {target.device} but logits on {logits.device}; move it with .to(logits.device)")
    target = _as_label_map(target, "target", logits).long()
    C = logits.shape[1]
    n_labels = 2 if C == 1 else C
    valid = None
    if ignore_index is not None:
        valid = target != ignore_index
        target = target.masked_fill(~valid, 0)
    if target.numel() and (target.min() < 0 or target.max() >= n_labels):
        lo, hi = int(target.min()), int(target.max())
        what = "0/1 labels for one logit channel (binary)" if C == 1 else f"labels 0..{C - 1} for {C} channels"
        raise ValueError(
            f"target holds labels from {lo} to {hi}, but logits with C={C} need {what}; "
            "check the model's out_channels, or pass ignore_index for unlabelled pixels"
        )
    w = None
    if weight_map is not None:
        if not isinstance(weight_map, torch.Tensor):
            raise TypeError(f"weight_map must be a torch.Tensor, got {type(weight_map).__name__}")
        w = _as_label_map(weight_map.to(logits.device), "weight_map", logits).float()
    if valid is not None:
        w = valid.float() if w is None else w * valid
    return logits.float(), target, w


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return values.mean()
    den = weights.sum().clamp_min(torch.finfo(weights.dtype).tiny)  # 0 labelled pixels -> loss 0
    return (values * weights).sum() / den


# --------------------------------------------------------------------------------------------
# functional losses
# --------------------------------------------------------------------------------------------


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, *, class_weights=None,
                  weight_map: torch.Tensor | None = None, ignore_index: int | None = None,
                  reduction: str = "mean") -> torch.Tensor:
    """Pixel-wise cross-entropy, binary (1 logit channel) or multi-class (C channels), weighted.

    Introduced in 06_cnn.

    Parameters
    ----------
    logits : (B, C, *spatial) torch.Tensor
        Raw scores; ``C = 1`` for binary, ``C >= 2`` for multi-class (see the module notes).
    target : (B, *spatial) or (B, 1, *spatial) integer torch.Tensor
        Labels ``0 .. C - 1`` (0/1 for ``C = 1``).
    class_weights : sequence of float, optional
        Weight of each class, length ``C`` (2 for binary: background, foreground); see
        :func:`inverse_frequency_weights`.
    weight_map : (B, *spatial) torch.Tensor, optional
        Per-pixel weights (U-Net border weights), or a 0/1 mask of labelled pixels.
    ignore_index : int, optional
        Label of unannotated pixels, left out of the loss.
    reduction : {"mean", "sum", "none"}, default "mean"
        ``"none"`` returns the weighted per-pixel losses ``w_i l_i``, shape ``(B, *spatial)``.

    Returns
    -------
    torch.Tensor
        A scalar, or ``(B, *spatial)`` for ``reduction="none"``.

    Notes
    -----
    Per pixel ``i`` with label ``y_i`` and logits ``z_i``::

        multi-class (C >= 2):  l_i = -log softmax(z_i)[y_i] = -z_i[y_i] + log sum_k exp(z_i[k])
        binary (C = 1):        l_i = -(y_i log sigmoid(z_i) + (1 - y_i) log(1 - sigmoid(z_i)))

    and the result is ``sum_i w_i l_i / sum_i w_i`` with ``w_i`` the product of the class weight,
    the weight map and the ignore mask (1 where absent). It equals
    ``F.cross_entropy(logits, target, weight=class_weights, ignore_index=ignore_index)``; a batch
    without any labelled pixel gives 0. Both forms are computed from logits with the log-sum-exp
    trick, never as ``log(softmax)``, which would overflow.

    Examples
    --------
    Two pixels, logits of two classes; by hand ``l = log(1 + e^-2)`` and ``log(1 + e^2)``:

    >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])  # (B=1, C=2, W=2)
    >>> target = torch.tensor([[0, 1]])                      # (B=1, W=2)
    >>> cross_entropy(logits, target, reduction="none")
    tensor([[0.1269, 0.6931]])
    >>> cross_entropy(logits, target, ignore_index=None, class_weights=[1.0, 3.0])
    tensor(0.5516)
    """
    _check_reduction(reduction)
    ignore_index = _check_ignore_index(ignore_index)
    cw = _check_class_weights(class_weights)
    logits, target, w = _prepare(logits, target, weight_map, ignore_index)
    C = logits.shape[1]
    if C == 1:
        loss = F.binary_cross_entropy_with_logits(logits[:, 0], target.float(), reduction="none")
    else:
        loss = F.cross_entropy(logits, target, reduction="none")  # (B, *spatial)
    if cw is not None:
        n_labels = 2 if C == 1 else C
        if cw.numel() != n_labels:
            raise ValueError(
                f"class_weights must have {n_labels} entries "
                f"({'background, foreground' if C == 1 else 'one per channel'}), got {cw.numel()}"
            )
        cw_i = cw.to(logits.device)[target]
        w = cw_i if w is None else w * cw_i
    if reduction == "none":
        return loss if w is None else loss * w
    if reduction == "sum":
        return loss.sum() if w is None else (loss * w).sum()
    return _weighted_mean(loss, w)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, smooth: float = 1.0,
                   include_background: bool = True, batch_dice: bool = False,
                   weight_map: torch.Tensor | None = None, ignore_index: int | None = None,
                   reduction: str = "mean") -> torch.Tensor:
    """Soft Dice loss: one minus the Dice of the predicted probabilities, per class.

    Introduced in 06_cnn.

    Parameters
    ----------
    logits : (B, C, *spatial) torch.Tensor
        Raw scores; ``C = 1`` binary (sigmoid), ``C >= 2`` multi-class (softmax).
    target : (B, *spatial) or (B, 1, *spatial) integer torch.Tensor
    smooth : float, default 1.0
        Added to numerator and denominator. It keeps the loss defined when a class is absent from
        both prediction and target (the Dice is then 1, the loss 0) and softens the gradient of
        tiny structures; 1e-5 makes the loss closer to the hard Dice.
    include_background : bool, default True
        Multi-class only: keep class 0 in the mean. ``C = 1`` always scores the foreground only.
    batch_dice : bool, default False
        Sum over the whole batch before dividing (one Dice per class for the batch, nnU-Net's
        ``batch_dice``), instead of one Dice per image and class. Steadier when many patches are
        empty of a class.
    weight_map : (B, *spatial) torch.Tensor, optional
        Per-pixel weights ``m_i`` inside the sums; a 0/1 map masks pixels out.
    ignore_index : int, optional
        Label of unannotated pixels, left out of every sum.
    reduction : {"mean", "none"}, default "mean"
        ``"none"``: the loss per image and class ``(B, C')`` (``(C',)`` with ``batch_dice``),
        ``C'`` the classes kept.

    Returns
    -------
    torch.Tensor
        Scalar in ``[0, 1]`` (mean over images and kept classes), or the unreduced losses.

    Notes
    -----
    With probabilities ``p_ic`` (sigmoid or softmax), one-hot targets ``g_ic`` and pixel weights
    ``w_i`` (weight map times ignore mask, 1 when absent)::

        Dice_c = (2 sum_i w_i p_ic g_ic + smooth) / (sum_i w_i p_ic + sum_i w_i g_ic + smooth)
        loss   = 1 - mean_c Dice_c

    the sums running over the pixels of one image (or of the batch with ``batch_dice``). The
    denominator uses plain sums (the Dice of sets), not the squares of V-Net. Because it is a
    ratio per class, a small structure counts as much as a large one, which is why Dice losses
    help with class imbalance; it is also why they are noisy on patches where a class is absent
    or tiny (``smooth`` and ``batch_dice`` mitigate it, Dice + CE more so).

    References
    ----------
    .. [1] F. Milletari, N. Navab and S.-A. Ahmadi, "V-Net", 3DV 2016.
    .. [2] C. Sudre et al., "Generalised Dice overlap as a deep learning loss function for highly
       unbalanced segmentations", DLMIA 2017.

    Examples
    --------
    Binary, one image of 4 pixels, a confident and correct prediction on 2 of them:

    >>> logits = torch.tensor([[[[10.0, 10.0, -10.0, -10.0]]]])  # (1, 1, 1, 4)
    >>> target = torch.tensor([[[1, 1, 0, 0]]])                    # (1, 1, 4)
    >>> round(soft_dice_loss(logits, target, smooth=0.0).item(), 4)
    0.0
    >>> round(soft_dice_loss(torch.zeros(1, 1, 1, 4), target, smooth=0.0).item(), 4)  # p = 0.5
    0.5
    """
    _check_reduction(reduction, ("mean", "none"))
    smooth = _check_nonneg(smooth, "smooth")
    ignore_index = _check_ignore_index(ignore_index)
    logits, target, w = _prepare(logits, target, weight_map, ignore_index)
    C = logits.shape[1]
    if C == 1:
        probs = torch.sigmoid(logits)  # (B, 1, *spatial)
        onehot = (target == 1).unsqueeze(1).float()  # (B, 1, *spatial)
    else:
        probs = torch.softmax(logits, dim=1)  # (B, C, *spatial)
        onehot = F.one_hot(target, C).movedim(-1, 1).float()  # (B, C, *spatial)
    if w is not None:
        w = w.unsqueeze(1)  # (B, 1, *spatial), broadcast over classes
        inter, p_sum, g_sum = w * probs * onehot, w * probs, w * onehot
    else:
        inter, p_sum, g_sum = probs * onehot, probs, onehot
    dims = tuple(range(2, logits.ndim))
    if batch_dice:
        dims = (0, *dims)
    if dims:
        inter, p_sum, g_sum = inter.sum(dims), p_sum.sum(dims), g_sum.sum(dims)  # (B, C) or (C,)
    den = p_sum + g_sum + smooth
    dice = (2 * inter + smooth) / den.clamp_min(torch.finfo(den.dtype).tiny)
    if C > 1 and not include_background:
        dice = dice[..., 1:]
    loss = 1 - dice
    return loss if reduction == "none" else loss.mean()


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, *, lambda_ce: float = 1.0,
                 lambda_dice: float = 1.0, class_weights=None, smooth: float = 1.0,
                 include_background: bool = True, batch_dice: bool = False,
                 weight_map: torch.Tensor | None = None,
                 ignore_index: int | None = None) -> torch.Tensor:
    """Weighted sum of cross-entropy and soft Dice: ``lambda_ce * CE + lambda_dice * Dice``.

    Introduced in 06_cnn.

    Parameters
    ----------
    logits, target
        As :func:`cross_entropy`.
    lambda_ce, lambda_dice : float, default 1.0
    class_weights : sequence of float, optional
        Used by the cross-entropy term only.
    smooth, include_background, batch_dice
        Of the Dice term (see :func:`soft_dice_loss`).
    weight_map : (B, *spatial) torch.Tensor, optional
        Used by both terms (a 0/1 mask removes pixels from both).
    ignore_index : int, optional
        Used by both terms.

    Returns
    -------
    torch.Tensor
        A scalar.

    Notes
    -----
    The combination nnU-Net trains with: the cross-entropy gives smooth, well-calibrated
    per-pixel gradients from the first step, the Dice term keeps small structures from being
    swamped by the background.

    References
    ----------
    .. [1] F. Isensee et al., "nnU-Net: a self-configuring method for deep learning-based
       biomedical image segmentation", Nature Methods 18, 2021.

    Examples
    --------
    >>> logits, target = torch.zeros(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long)
    >>> ce = cross_entropy(logits, target); dice = soft_dice_loss(logits, target)
    >>> bool(torch.isclose(dice_ce_loss(logits, target), ce + dice))
    True
    """
    lambda_ce = _check_nonneg(lambda_ce, "lambda_ce")
    lambda_dice = _check_nonneg(lambda_dice, "lambda_dice")
    ce = cross_entropy(logits, target, class_weights=class_weights, weight_map=weight_map,
                       ignore_index=ignore_index)
    dice = soft_dice_loss(logits, target, smooth=smooth, include_background=include_background,
                          batch_dice=batch_dice, weight_map=weight_map, ignore_index=ignore_index)
    return lambda_ce * ce + lambda_dice * dice


def inverse_frequency_weights(masks, num_classes: int, *, ignore_index: int | None = None) -> torch.Tensor:
    """Class weights inversely proportional to class frequency ("balanced" weights).

    Introduced in 06_cnn.

    Parameters
    ----------
    masks : array_like or sequence of array_like
        Label maps (any shapes), e.g. ``[s.mask for s in train_samples]``.
    num_classes : int
        K; labels must lie in ``0 .. K - 1`` (except ``ignore_index``).
    ignore_index : int, optional
        Label not counted.

    Returns
    -------
    (K,) torch.Tensor
        ``w_k = N / (K n_k)`` with ``n_k`` the pixel count of class ``k`` and ``N = sum_k n_k``
        (scikit-learn's ``class_weight="balanced"``): every class then contributes the same
        total weight. An absent class gets weight 0.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.array([[0, 0, 0, 1]])
    >>> inverse_frequency_weights([mask], 2)
    tensor([0.6667, 2.0000])
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    ignore_index = _check_ignore_index(ignore_index)
    if isinstance(masks, (np.ndarray, torch.Tensor)):
        masks = [masks]
    counts = np.zeros(num_classes, dtype=np.int64)
    for m in masks:
        a = np.asarray(m.detach().cpu() if isinstance(m, torch.Tensor) else m)
        if a.dtype.kind not in "biu":
            raise TypeError(f"masks must hold integer labels, got dtype {a.dtype}")
        a = a.ravel().astype(np.int64)
        if ignore_index is not None:
            a = a[a != ignore_index]
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"masks hold labels {a.min()}..{a.max()}, outside 0..{num_classes - 1}")
        counts += np.bincount(a, minlength=num_classes)
    total = counts.sum()
    w = np.where(counts > 0, total / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.as_tensor(w, dtype=torch.float32)


# --------------------------------------------------------------------------------------------
# modules
# --------------------------------------------------------------------------------------------


class _Loss(nn.Module):
    def __init__(self, class_weights=None, ignore_index=None):
        super().__init__()
        self.ignore_index = _check_ignore_index(ignore_index)
        cw = _check_class_weights(class_weights)
        self.register_buffer("class_weights", cw, persistent=False)


class CrossEntropyLoss(_Loss):
    """:func:`cross_entropy` as a module: ``loss_fn(logits, target, weight_map=None)``.

    Introduced in 06_cnn.

    Unlike ``torch.nn.CrossEntropyLoss`` it also takes binary logits with one channel
    (binary cross-entropy), per-pixel weight maps, and integer targets ``(B, 1, *spatial)``.

    Parameters
    ----------
    class_weights : sequence of float, optional
    ignore_index : int, optional
    reduction : {"mean", "sum", "none"}, default "mean"

    Examples
    --------
    >>> loss_fn = CrossEntropyLoss(ignore_index=-1)
    >>> target = torch.tensor([[0, -1]])  # the second pixel is not annotated
    >>> loss_fn(torch.tensor([[[2.0, 5.0], [0.0, -5.0]]]), target)
    tensor(0.1269)
    """

    def __init__(self, *, class_weights=None, ignore_index: int | None = None, reduction: str = "mean"):
        super().__init__(class_weights, ignore_index)
        self.reduction = _check_reduction(reduction)

    def forward(self, logits, target, weight_map=None):
        return cross_entropy(logits, target, class_weights=self.class_weights, weight_map=weight_map,
                             ignore_index=self.ignore_index, reduction=self.reduction)


class DiceLoss(_Loss):
    """:func:`soft_dice_loss` as a module: ``loss_fn(logits, target, weight_map=None)``.

    Introduced in 06_cnn.

    Parameters
    ----------
    smooth : float, default 1.0
    include_background : bool, default True
    batch_dice : bool, default False
    ignore_index : int, optional

    Examples
    --------
    >>> DiceLoss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long)).shape
    torch.Size([])
    """

    def __init__(self, *, smooth: float = 1.0, include_background: bool = True,
                 batch_dice: bool = False, ignore_index: int | None = None):
        super().__init__(None, ignore_index)
        self.smooth = _check_nonneg(smooth, "smooth")
        self.include_background = bool(include_background)
        self.batch_dice = bool(batch_dice)

    def forward(self, logits, target, weight_map=None):
        return soft_dice_loss(logits, target, smooth=self.smooth,
                              include_background=self.include_background,
                              batch_dice=self.batch_dice, weight_map=weight_map,
                              ignore_index=self.ignore_index)


class DiceCELoss(_Loss):
    """:func:`dice_ce_loss` as a module: ``loss_fn(logits, target, weight_map=None)``.

    Introduced in 06_cnn.

    Parameters
    ----------
    lambda_ce, lambda_dice : float, default 1.0
    class_weights : sequence of float, optional
    smooth : float, default 1.0
    include_background : bool, default True
    batch_dice : bool, default False
    ignore_index : int, optional

    Examples
    --------
    >>> loss_fn = DiceCELoss(include_background=False)
    >>> loss_fn(torch.zeros(2, 3, 8, 8, requires_grad=True), torch.ones(2, 8, 8, dtype=torch.long)).requires_grad
    True
    """

    def __init__(self, *, lambda_ce: float = 1.0, lambda_dice: float = 1.0, class_weights=None,
                 smooth: float = 1.0, include_background: bool = True, batch_dice: bool = False,
                 ignore_index: int | None = None):
        super().__init__(class_weights, ignore_index)
        self.lambda_ce = _check_nonneg(lambda_ce, "lambda_ce")
        self.lambda_dice = _check_nonneg(lambda_dice, "lambda_dice")
        self.smooth = _check_nonneg(smooth, "smooth")
        self.include_background = bool(include_background)
        self.batch_dice = bool(batch_dice)

    def forward(self, logits, target, weight_map=None):
        return dice_ce_loss(logits, target, lambda_ce=self.lambda_ce, lambda_dice=self.lambda_dice,
                            class_weights=self.class_weights, smooth=self.smooth,
                            include_background=self.include_background,
                            batch_dice=self.batch_dice, weight_map=weight_map,
                            ignore_index=self.ignore_index)


# --------------------------------------------------------------------------------------------
# deep supervision
# --------------------------------------------------------------------------------------------


def _check_level_weights(weights) -> tuple[float, ...] | None:
    if weights is None:
        return None
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().tolist()
    if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__") or len(weights) == 0:
        raise ValueError(f"weights must be None or a non-empty sequence with one weight per output, got {weights!r}")
    ws = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(w) or w < 0:
            raise ValueError(f"weights must be finite non-negative numbers, got {list(weights)!r}")
        ws.append(float(w))
    if sum(ws) <= 0:
        raise ValueError(f"weights must not all be zero, got {ws}; give the output(s) to train a positive weight")
    return tuple(ws)


def deep_supervision_loss(outputs, target: torch.Tensor, loss_fn, *, weights=None,
                          weight_map: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean of ``loss_fn`` over the outputs of a deeply supervised network.

    Introduced in 10_unetpp.

    Parameters
    ----------
    outputs : sequence of (B, C, *spatial) torch.Tensor, or one tensor
        Logits of every supervised output, e.g. the list that ``UNetPlusPlus(deep_supervision=True)``
        returns in training mode (levels L1 .. L4, each of the input's size). A single tensor
        (what the network returns in eval mode) is scored by ``loss_fn`` alone.
    target : (B, *spatial) integer torch.Tensor
        The labels, shared by every output.
    loss_fn : callable
        ``loss_fn(logits, target[, weight_map]) -> scalar``, e.g. :class:`DiceCELoss`.
    weights : sequence of float, optional
        One non-negative weight per output, normalised here to sum to 1. None (default): equal
        weights, the plain mean, as in the UNet++ paper.
    weight_map : (B, *spatial) torch.Tensor, optional
        Passed on to ``loss_fn`` for every output.

    Returns
    -------
    torch.Tensor
        A scalar: ``sum_k w_k loss_fn(outputs[k], target) / sum_k w_k``, differentiable with
        respect to every output of non-zero weight.

    Raises
    ------
    ValueError
        If ``outputs`` is empty, or ``weights`` is not one non-negative number per output.

    Notes
    -----
    Averaging (rather than summing) keeps the loss on the scale of one output's loss, so the
    learning rate that suits a network without deep supervision still suits it. With weights
    ``(0, ..., 0, 1)`` only the last output trains: that is a UNet++ without deep supervision.

    References
    ----------
    .. [1] Z. Zhou, M. M. R. Siddiquee, N. Tajbakhsh and J. Liang, "UNet++: A nested U-Net
       architecture for medical image segmentation", DLMIA 2018.
    .. [2] C.-Y. Lee et al., "Deeply-supervised nets", AISTATS 2015.

    Examples
    --------
    >>> target = torch.zeros(1, 4, 4, dtype=torch.long)
    >>> outputs = [torch.full((1, 1, 4, 4), v) for v in (0.0, -2.0, -4.0)]  # binary logits
    >>> losses = [round(cross_entropy(o, target).item(), 4) for o in outputs]
    >>> losses
    [0.6931, 0.1269, 0.0181]
    >>> round(deep_supervision_loss(outputs, target, cross_entropy).item(), 4)  # their mean
    0.2794
    >>> round(deep_supervision_loss(outputs, target, cross_entropy, weights=[0, 1, 3]).item(), 4)
    0.0453
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(logits, target), got {type(loss_fn).__name__}")

    def one(logits):
        return loss_fn(logits, target) if weight_map is None else loss_fn(logits, target, weight_map)

    if isinstance(outputs, torch.Tensor):
        return one(outputs)
    if not isinstance(outputs, (list, tuple)):
        raise TypeError(
            f"outputs must be a list of logits tensors (one per supervised level) or one tensor, "
            f"got {type(outputs).__name__}"
        )
    if len(outputs) == 0:
        raise ValueError("outputs is empty: the network returned no output to score")
    ws = _check_level_weights(weights)
    if ws is None:
        ws = (1.0,) * len(outputs)
    elif len(ws) != len(outputs):
        raise ValueError(
            f"weights has {len(ws)} entries but the network returned {len(outputs)} outputs; give one "
            f"weight per output (levels L1 .. L{len(outputs)} of a UNet++), or None for equal weights"
        )
    total = sum(ws)
    loss = None
    for w, logits in zip(ws, outputs):
        if w == 0:
            continue  # not computed: an output of weight 0 does not train
        term = (w / total) * one(logits)
        loss = term if loss is None else loss + term
    return loss


class DeepSupervisionLoss(nn.Module):
    """A loss over every output of a deeply supervised network: the weighted mean of ``base_loss``.

    Introduced in 10_unetpp.

    ``loss_fn(outputs, target, weight_map=None)`` takes the list of logits that
    ``UNetPlusPlus(deep_supervision=True)`` returns in training mode, or a single tensor (what
    it returns in eval mode, so that :func:`medseg_course.train.evaluate` scores the output
    used for prediction with ``base_loss`` itself). It works unchanged with
    :func:`medseg_course.train.fit`.

    Parameters
    ----------
    base_loss : callable
        ``base_loss(logits, target[, weight_map])``, e.g. :class:`DiceCELoss`.
    weights : sequence of float, optional
        One weight per output, normalised to sum to 1; None for equal weights (the UNet++ paper).

    Attributes
    ----------
    ignore_index : int or None
        The base loss's, so that ``fit`` leaves the same pixels out of the validation Dice.

    Notes
    -----
    See :func:`deep_supervision_loss`. In training the loss is the mean over the levels; in
    evaluation it is the base loss of the one output the network returns, so ``train_loss`` and
    ``val_loss`` of a history are not the same quantity.

    Examples
    --------
    >>> loss_fn = DeepSupervisionLoss(DiceCELoss())
    >>> target = torch.zeros(2, 8, 8, dtype=torch.long)
    >>> outputs = [torch.zeros(2, 1, 8, 8, requires_grad=True) for _ in range(4)]
    >>> loss = loss_fn(outputs, target)
    >>> bool(torch.isclose(loss, DiceCELoss()(outputs[0], target))), loss.requires_grad
    (True, True)
    >>> loss_fn(outputs[0], target).shape  # one tensor: the base loss
    torch.Size([])
    """

    def __init__(self, base_loss, weights=None):
        super().__init__()
        if not callable(base_loss):
            raise TypeError(
                f"base_loss must be a loss callable as base_loss(logits, target), e.g. DiceCELoss(), "
                f"got {type(base_loss).__name__}"
            )
        if isinstance(base_loss, DeepSupervisionLoss):
            raise TypeError("base_loss is already a DeepSupervisionLoss; pass the loss of one output, "
                            "e.g. DiceCELoss()")
        self.base_loss = base_loss
        self.weights = _check_level_weights(weights)

    @property
    def ignore_index(self):
        return getattr(self.base_loss, "ignore_index", None)

    def forward(self, outputs, target, weight_map=None):
        return deep_supervision_loss(outputs, target, self.base_loss, weights=self.weights, weight_map=weight_map)

    def extra_repr(self) -> str:
        return f"weights={self.weights}" if self.weights is not None else "weights=equal"
