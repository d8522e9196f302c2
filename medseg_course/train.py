"""Training and inference: a few small named functions around one frozen config.

* :class:`TrainConfig` -- every setting of a run (epochs, learning rate, early stopping, mixed
  precision, seed, ...), frozen, stored in every checkpoint;
* :func:`train_one_epoch`, :func:`evaluate` and :func:`fit` -- the loop, in the style of nanoGPT's
  ``train.py``: read them top to bottom to see what training does;
* :class:`History` -- per-epoch learning curves, what :func:`medseg_course.viz.plot_history` draws;
* :func:`save_checkpoint` / :func:`load_checkpoint` -- weights plus everything needed to rebuild
  the model, written atomically, read with ``torch.load(weights_only=True)``;
* :func:`predict` -- probabilities or labels for one image or volume, whole or by sliding window.

Batches
-------
A loader yields ``(image, target)`` or ``(image, target, weight_map)``: images
``(B, C, *spatial)`` float, targets ``(B, *spatial)`` integer labels (``(B,)`` for a patch
classifier), optional per-pixel weight maps ``(B, *spatial)`` passed to the loss as
``loss_fn(logits, target, weight_map)`` (:mod:`medseg_course.data.loaders` makes them).
The loss is any callable ``loss_fn(logits, target[, weight_map]) -> scalar``, e.g. from
:mod:`medseg_course.losses`.

Device, seed and budget come from the notebook: ``rt = setup()`` chooses the device (``fit`` and
``predict`` default to :func:`~medseg_course.runtime.choose_device`), and the budget enters through
the config, e.g. ``TrainConfig(epochs=rt.budget(full=40, fast=2))``. Nothing here reads the
environment.

Introduced in 06_cnn.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import itertools
import math
import numbers
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from medseg_course.metrics import confusion_counts_torch
from medseg_course.runtime import choose_device, seed_everything

__all__ = [
    "TrainConfig",
    "History",
    "Evaluation",
    "Checkpoint",
    "make_optimizer",
    "make_scheduler",
    "amp_dtype_for",
    "train_one_epoch",
    "evaluate",
    "fit",
    "save_checkpoint",
    "load_checkpoint",
    "predict",
]

_OPTIMIZERS = ("adamw", "adam", "sgd")
_SCHEDULES = ("constant", "cosine", "poly")
_CHECKPOINT_FORMAT = "medseg-course-checkpoint"
_CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run; frozen, and stored in each checkpoint.

    Introduced in 06_cnn.

    Attributes
    ----------
    epochs : int, default 20
        Maximum number of passes over the training loader.
    lr : float, default 1e-3
        Initial learning rate.
    weight_decay : float, default 1e-4
        Decoupled weight decay (AdamW) or L2 penalty (SGD, Adam).
    batch_size : int, default 8
        Recorded with the run; build the loaders with it
        (``make_loader(ds, batch_size=config.batch_size)``), ``fit`` itself takes ready loaders.
    optimizer : {"adamw", "adam", "sgd"}, default "adamw"
    momentum : float, default 0.9
        SGD only (Nesterov momentum, as nnU-Net's SGD).
    lr_schedule : {"constant", "cosine", "poly"}, default "constant"
        Learning rate per epoch: constant; cosine decay to 0 over ``epochs``; or nnU-Net's
        polynomial decay ``lr * (1 - epoch / epochs) ** 0.9``.
    patience : int, optional
        Early stopping: stop when the monitored value has not improved for ``patience``
        consecutive epochs. None (default) trains for all ``epochs``.
    min_delta : float, default 0.0
        Smallest change that counts as an improvement.
    monitor : str, default "val_dice"
        History key watched for early stopping and for the best checkpoint: ``"val_dice"``
        (higher is better) or ``"val_loss"`` (lower is better; any key containing ``"loss"``).
    amp : bool, default True
        Mixed precision on CUDA (see :func:`amp_dtype_for`); ignored on CPU and MPS.
    grad_clip : float, optional
        Clip the gradient norm to this value (nnU-Net uses 12).
    seed : int, default 0
        Seed set at the start of :func:`fit` (weights already made keep theirs).
    restore_best : bool, default True
        At the end, put back the weights of the best epoch.

    Examples
    --------
    >>> config = TrainConfig(epochs=30, lr=3e-4, patience=5)
    >>> config.epochs, config.monitor
    (30, 'val_dice')
    >>> dataclasses.replace(config, epochs=2).epochs  # a modified copy
    2
    """

    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 8
    optimizer: str = "adamw"
    momentum: float = 0.9
    lr_schedule: str = "constant"
    patience: int | None = None
    min_delta: float = 0.0
    monitor: str = "val_dice"
    amp: bool = True
    grad_clip: float | None = None
    seed: int = 0
    restore_best: bool = True

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("lr", "weight_decay", "momentum", "min_delta"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0 or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(_OPTIMIZERS)}, got {self.optimizer!r}")
        if self.lr_schedule not in _SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {list(_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.patience is not None and (isinstance(self.patience, bool)
                                          or not isinstance(self.patience, numbers.Integral)
                                          or self.patience < 1):
            raise ValueError(f"patience must be a positive int or None (no early stopping), got {self.patience!r}")
        if not isinstance(self.monitor, str) or not self.monitor:
            raise ValueError(f"monitor must be a history key such as 'val_dice' or 'val_loss', got {self.monitor!r}")
        if self.grad_clip is not None and (isinstance(self.grad_clip, bool)
                                           or not isinstance(self.grad_clip, numbers.Real)
                                           or not self.grad_clip > 0):
            raise ValueError(f"grad_clip must be a positive number or None, got {self.grad_clip!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")

    @property
    def mode(self) -> str:
        """``"min"`` if the monitored key is a loss, else ``"max"``."""
        return "min" if "loss" in self.monitor else "max"

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (what checkpoints store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """Rebuild a config from :meth:`to_dict`; unknown keys are refused."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig settings {unknown}; known: {sorted(names)}")
        return cls(**d)


class History(dict):
    """Learning curves: ``{key: [value per epoch]}``, the format ``viz.plot_history`` draws.

    Introduced in 06_cnn.

    Keys written by :func:`fit`: ``"epoch"`` (1, 2, ...), ``"train_loss"``, and with a validation
    loader ``"val_loss"``, ``"val_dice"`` (mean over the foreground classes) and, for more than
    one foreground class, ``"val_dice_<k>"`` per class ``k``. The learning rate and the duration of
    each epoch are kept apart, in :attr:`lr` and :attr:`seconds`, so that they do not share the
    metric panel of the plot.

    Attributes
    ----------
    monitor : str
        The key early stopping watched.
    mode : {"max", "min"}
    lr, seconds : list of float
        Learning rate and wall time of each epoch.
    stopped_early : bool
        True if :func:`fit` stopped before its last epoch.

    Examples
    --------
    >>> h = History(monitor="val_dice")
    >>> h.append({"epoch": 1, "train_loss": 0.7, "val_dice": 0.5})
    >>> h.append({"epoch": 2, "train_loss": 0.4, "val_dice": 0.8})
    >>> h["val_dice"], h.best_epoch, h.best
    ([0.5, 0.8], 2, 0.8)
    """

    def __init__(self, series: Mapping[str, Sequence[float]] | None = None, *, monitor: str = "val_dice",
                 lr: Sequence[float] = (), seconds: Sequence[float] = (), stopped_early: bool = False):
        super().__init__({str(k): [float(v) for v in vals] for k, vals in (series or {}).items()})
        self.monitor = monitor
        self.mode = "min" if "loss" in monitor else "max"
        self.lr = [float(v) for v in lr]
        self.seconds = [float(v) for v in seconds]
        self.stopped_early = bool(stopped_early)

    def append(self, record: Mapping[str, float], *, lr: float | None = None,
               seconds: float | None = None) -> None:
        """Add one epoch's values (keys missing from the record get NaN)."""
        n = max((len(v) for v in self.values()), default=0)
        for key in list(self) + [k for k in record if k not in self]:
            self.setdefault(key, [math.nan] * n).append(float(record.get(key, math.nan)))
        if lr is not None:
            self.lr.append(float(lr))
        if seconds is not None:
            self.seconds.append(float(seconds))

    @property
    def best_epoch(self) -> int | None:
        """Epoch (from ``"epoch"``, 1-based) of the best monitored value; None if none is finite."""
        values = np.asarray(self.get(self.monitor, []), dtype=float)
        if not np.isfinite(values).any():
            return None
        i = int(np.nanargmin(values) if self.mode == "min" else np.nanargmax(values))
        epochs = self.get("epoch")
        return int(epochs[i]) if epochs else i + 1

    @property
    def best(self) -> float | None:
        """Best monitored value, or None."""
        e = self.best_epoch
        if e is None:
            return None
        epochs = self.get("epoch") or list(range(1, len(self[self.monitor]) + 1))
        return self[self.monitor][epochs.index(e)]

    def to_dict(self) -> dict[str, Any]:
        """Plain lists and dicts (safe for ``torch.load(weights_only=True)`` and JSON)."""
        return {"series": {k: list(v) for k, v in self.items()}, "monitor": self.monitor,
                "lr": list(self.lr), "seconds": list(self.seconds), "stopped_early": self.stopped_early}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        """Rebuild from :meth:`to_dict`."""
        return cls(d["series"], monitor=d["monitor"], lr=d.get("lr", ()), seconds=d.get("seconds", ()),
                   stopped_early=d.get("stopped_early", False))

    def __repr__(self) -> str:
        n = len(self.get("epoch", []))
        best = "" if self.best_epoch is None else f", best {self.monitor}={self.best:.4g} at epoch {self.best_epoch}"
        stop = ", stopped early" if self.stopped_early else ""
        return f"History({n} epochs, keys {sorted(self)}{best}{stop})"


class Evaluation(NamedTuple):
    """What :func:`evaluate` returns.

    Attributes
    ----------
    loss : float
        Mean loss per sample (NaN without a loss function).
    dice : ndarray of float, shape (C,)
        Dice of each class over the whole loader: index ``k`` is class ``k`` (background at 0)
        for multi-class logits, the foreground alone for one binary channel. NaN for a class
        absent from both predictions and targets.
    mean_dice : float
        Mean Dice over the foreground classes (``dice[1:]``, or ``dice[0]`` when binary).
    """

    loss: float
    dice: np.ndarray
    mean_dice: float


# --------------------------------------------------------------------------------------------
# pieces of the loop
# --------------------------------------------------------------------------------------------


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer``, over the trainable parameters.

    Introduced in 06_cnn.

    Examples
    --------
    >>> make_optimizer(nn.Linear(2, 1), TrainConfig(optimizer="sgd", lr=0.1)).__class__.__name__
    'SGD'
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           nesterov=config.momentum > 0, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """Per-epoch learning-rate schedule named by ``config.lr_schedule``; call ``.step()`` per epoch.

    Introduced in 06_cnn.

    Examples
    --------
    >>> opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=1.0)
    >>> sched = make_scheduler(opt, TrainConfig(epochs=4, lr=1.0, lr_schedule="poly"))
    >>> [round(sched.lr_lambdas[0](epoch), 3) for epoch in range(5)]  # factor of lr per epoch
    [1.0, 0.772, 0.536, 0.287, 0.0]
    """
    E = config.epochs
    if config.lr_schedule == "cosine":
        factor = lambda e: 0.5 * (1 + math.cos(math.pi * min(e, E) / E))  # noqa: E731
    elif config.lr_schedule == "poly":
        factor = lambda e: (1 - min(e, E) / E) ** 0.9  # noqa: E731
    else:
        factor = lambda e: 1.0  # noqa: E731
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def amp_dtype_for(device, enabled: bool = True) -> torch.dtype | None:
    """The autocast dtype for mixed precision on ``device``, or None for full precision.

    Introduced in 06_cnn.

    Parameters
    ----------
    device : torch.device or str
    enabled : bool, default True
        ``config.amp``.

    Returns
    -------
    torch.dtype or None
        On CUDA: ``torch.bfloat16`` on GPUs of compute capability 8.0 or more (A100, H100,
        RTX 30xx and later), which have fast bf16 and need no loss scaling since bf16 keeps
        float32's exponent range; ``torch.float16`` on older GPUs (Colab's T4, V100), used with a
        gradient scaler to keep small gradients from underflowing. None on CPU and MPS: CPU
        autocast is slower than float32 for these small convolutional networks, and MPS
        autocast support varies by PyTorch version.

    Examples
    --------
    >>> amp_dtype_for("cpu") is None
    True
    """
    device = torch.device(device)
    if not enabled or device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


def _autocast(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def _unpack(batch, device: torch.device):
    """``(image, target[, weight_map])`` moved to ``device``."""
    if isinstance(batch, Mapping):
        batch = tuple(batch[k] for k in ("image", "mask", "weight") if k in batch)
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError(
            "each batch must be (image, target) or (image, target, weight_map); got "
            f"{type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}"
        )
    image, target = (t.to(device, non_blocking=True) for t in batch[:2])
    weight = batch[2].to(device, non_blocking=True) if len(batch) == 3 else None
    return image, target, weight


def _loss(loss_fn, logits, target, weight):
    return loss_fn(logits, target) if weight is None else loss_fn(logits, target, weight)


def train_one_epoch(model: nn.Module, loader, loss_fn, optimizer: torch.optim.Optimizer, *,
                    device=None, amp_dtype: torch.dtype | None = None, scaler=None,
                    grad_clip: float | None = None, progress: bool = False) -> float:
    """One pass over ``loader``, updating the model after each batch; returns the mean loss.

    Introduced in 06_cnn.

    Parameters
    ----------
    model : nn.Module
        Already on ``device``; put in train mode here.
    loader : iterable
        Batches ``(image, target)`` or ``(image, target, weight_map)``.
    loss_fn : callable
        ``loss_fn(logits, target[, weight_map])`` -> scalar tensor.
    optimizer : torch.optim.Optimizer
    device : torch.device, optional
        Where batches go; the model's device by default.
    amp_dtype : torch.dtype, optional
        Autocast dtype (:func:`amp_dtype_for`); None for full precision.
    scaler : torch.amp.GradScaler, optional
        Loss scaling for float16.
    grad_clip : float, optional
        Max gradient norm.
    progress : bool, default False
        Show a progress bar over the batches.

    Returns
    -------
    float
        Mean training loss per sample over the epoch (computed while the weights change).

    Raises
    ------
    FloatingPointError
        If the loss became NaN or infinite.
    """
    device = _model_device(model) if device is None else torch.device(device)
    model.train()
    total = torch.zeros((), device=device)
    count = 0
    bar = tqdm(loader, desc="train", leave=False, disable=not progress)
    for step, batch in enumerate(bar):
        image, target, weight = _unpack(batch, device)
        with _autocast(device, amp_dtype):
            logits = model(image)
            loss = _loss(loss_fn, logits, target, weight)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            if grad_clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
        n = image.shape[0]
        total += loss.detach().float() * n  # stays on the device: no synchronisation per step
        count += n
        if progress and step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}")
    if count == 0:
        raise ValueError("the training loader yielded no batch; check the dataset's length and drop_last")
    mean = float(total) / count
    if not math.isfinite(mean):
        raise FloatingPointError(
            f"the training loss became {mean}: lower the learning rate, check the inputs for NaN, "
            "or set TrainConfig(grad_clip=...)"
        )
    return mean


def _model_device(model: nn.Module) -> torch.device:
    p = next(itertools.chain(model.parameters(), model.buffers()), None)
    return p.device if p is not None else torch.device("cpu")


def _onehot_pair(logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None):
    """Boolean one-hot prediction and target ``(B', C, *spatial)`` with ignored pixels all False."""
    if target.ndim == logits.ndim and target.shape[1] == 1:
        target = target[:, 0]
    if logits.ndim == 2:  # a patch classifier: the batch is a set of pixels, seen as one image
        logits = logits.T[None, :, :, None]  # (1, K, B, 1)
        target = target[None, :, None]  # (1, B, 1)
    target = target.long()
    C = logits.shape[1]
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    t = target.masked_fill(~valid, 0)
    if C == 1:
        pred = (logits[:, 0] > 0) & valid  # sigmoid(z) > 0.5
        return pred[:, None], ((t == 1) & valid)[:, None]
    pred = F.one_hot(logits.argmax(1), C).movedim(-1, 1).bool()  # (B, C, *spatial)
    true = F.one_hot(t.clamp(0, C - 1), C).movedim(-1, 1).bool()
    v = valid[:, None]
    return pred & v, true & v


@torch.no_grad()
def evaluate(model: nn.Module, loader, loss_fn=None, *, device=None,
             amp_dtype: torch.dtype | None = None, ignore_index: int | None = None,
             progress: bool = False) -> Evaluation:
    """Loss and per-class Dice of ``model`` on every batch of ``loader``, without gradients.

    Introduced in 06_cnn.

    Parameters
    ----------
    model : nn.Module
        Run in eval mode; its previous mode is restored afterwards.
    loader : iterable
        Batches ``(image, target)`` or ``(image, target, weight_map)``.
    loss_fn : callable, optional
        As in :func:`train_one_epoch`; without it the loss is NaN.
    device : torch.device, optional
        The model's device by default.
    amp_dtype : torch.dtype, optional
    ignore_index : int, optional
        Label of unannotated pixels, left out of the Dice (the loss has its own setting).
    progress : bool, default False

    Returns
    -------
    Evaluation
        ``(loss, dice, mean_dice)``.

    Notes
    -----
    Predictions are ``logit > 0`` (sigmoid > 0.5) for one binary channel, the argmax over the
    channels otherwise. The Dice is computed from the true/false positive counts
    (:func:`medseg_course.metrics.confusion_counts_torch`) summed over **every pixel of the
    loader** (a "global" or "pseudo" Dice, as nnU-Net's online validation), not averaged per
    image: it stays defined when patches or images lack a class, and weighs each pixel equally.
    The per-image Dice of a final evaluation comes from :func:`medseg_course.metrics.dice`.

    Examples
    --------
    >>> model = nn.Conv2d(1, 1, 1)  # binary: one logit channel
    >>> with torch.no_grad():
    ...     _ = model.weight.fill_(1.0); _ = model.bias.fill_(-0.5)
    >>> image = torch.zeros(1, 1, 4, 4); image[..., :2] = 1.0
    >>> target = (image[:, 0] > 0).long()
    >>> evaluate(model, [(image, target)]).mean_dice
    1.0
    """
    device = _model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    try:
        total, count = 0.0, 0
        tp = fp = fn = None
        for batch in tqdm(loader, desc="val", leave=False, disable=not progress):
            image, target, weight = _unpack(batch, device)
            with _autocast(device, amp_dtype):
                logits = model(image)
                if loss_fn is not None:
                    total += float(_loss(loss_fn, logits, target, weight)) * image.shape[0]
            count += image.shape[0]
            pred, true = _onehot_pair(logits.float(), target, ignore_index)
            counts = confusion_counts_torch(pred, true)  # each (B', C)
            b_tp, b_fp, b_fn = (c.sum(0) for c in counts[:3])
            tp, fp, fn = (b_tp, b_fp, b_fn) if tp is None else (tp + b_tp, fp + b_fp, fn + b_fn)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("the validation loader yielded no batch")
    tp, fp, fn = (x.double().cpu().numpy() for x in (tp, fp, fn))
    den = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), np.nan)
    fg = dice if dice.size == 1 else dice[1:]
    mean = float(np.nanmean(fg)) if np.isfinite(fg).any() else math.nan
    loss = total / count if loss_fn is not None else math.nan
    return Evaluation(loss=loss, dice=dice, mean_dice=mean)


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def fit(model: nn.Module, train_loader, val_loader, loss_fn, config: TrainConfig, *, device=None,
        progress: bool = True, checkpoint_path: str | os.PathLike | None = None) -> History:
    """Train ``model``: epochs of :func:`train_one_epoch` and :func:`evaluate`, early stopping,
    best weights kept, checkpoints written.

    Introduced in 06_cnn.

    Parameters
    ----------
    model : nn.Module
        Moved to ``device`` and trained in place.
    train_loader : iterable
        Training batches ``(image, target[, weight_map])``, e.g. from
        :func:`medseg_course.data.loaders.make_loader`.
    val_loader : iterable or None
        Validation batches; None trains without validation (then ``patience`` must be None, and
        the best epoch is the one of lowest training loss).
    loss_fn : callable
        ``loss_fn(logits, target[, weight_map])``, e.g. ``medseg_course.losses.DiceCELoss()``.
        If it has an ``ignore_index`` attribute (the course's losses do), the validation Dice
        leaves those pixels out too.
    config : TrainConfig
    device : torch.device or str, optional
        :func:`~medseg_course.runtime.choose_device` by default (pass ``rt.device``).
    progress : bool, default True
        Progress bars over epochs and batches (``tqdm.auto``: widgets in Jupyter).
    checkpoint_path : str or path, optional
        Where to save the best model (each time the monitored value improves, and at the end),
        with :func:`save_checkpoint`.

    Returns
    -------
    History
        Per-epoch ``train_loss``, ``val_loss``, ``val_dice``...; ``viz.plot_history(history)``
        draws it.

    Raises
    ------
    FloatingPointError
        If the training loss becomes NaN or infinite.

    Notes
    -----
    Steps, in order: ``seed_everything(config.seed)``; build the optimizer
    (:func:`make_optimizer`) and the schedule (:func:`make_scheduler`); then per epoch train,
    validate, step the schedule, record. The monitored value (``config.monitor``) decides the
    best epoch; after ``config.patience`` epochs without improvement training stops, and with
    ``config.restore_best`` the model gets the best epoch's weights back.

    Mixed precision runs on CUDA only (:func:`amp_dtype_for`): bfloat16 where the GPU supports
    it, else float16 with a ``GradScaler``. On the CPU everything is float32, and two runs with
    the same seed and freshly made loaders give identical histories. On a GPU a few kernels are
    non-deterministic; values then differ in the last digits.

    Examples
    --------
    >>> from medseg_course.data.synthetic import make_dataset
    >>> from medseg_course.data.loaders import ImageDataset, make_loader
    >>> from medseg_course.losses import CrossEntropyLoss
    >>> data = ImageDataset(make_dataset(4, shape=(32, 32), n_objects=2, radius=4.0, seed=0))
    >>> model = nn.Conv2d(1, 2, 3, padding=1)
    >>> history = fit(model, make_loader(data, batch_size=2, shuffle=True), make_loader(data, batch_size=4),
    ...               CrossEntropyLoss(), TrainConfig(epochs=3, lr=0.05), device="cpu", progress=False)
    >>> len(history["val_dice"]), history["train_loss"][-1] < history["train_loss"][0]
    (3, True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}; e.g. TrainConfig(epochs=10)")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable as loss_fn(logits, target), got {type(loss_fn).__name__}")
    if val_loader is None and config.patience is not None:
        raise ValueError("early stopping (config.patience) needs a val_loader; pass one or set patience=None")
    if val_loader is None and config.monitor.startswith("val"):
        config = dataclasses.replace(config, monitor="train_loss")
    if config.monitor not in ("train_loss", "val_loss", "val_dice") and not config.monitor.startswith("val_dice_"):
        raise ValueError(
            f"config.monitor must be 'val_dice', 'val_loss', 'train_loss' or 'val_dice_<k>', got {config.monitor!r}"
        )
    device = choose_device() if device is None else torch.device(device)
    seed_everything(config.seed)
    model.to(device)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    amp_dtype = amp_dtype_for(device, config.amp)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    ignore_index = getattr(loss_fn, "ignore_index", None)
    history = History(monitor=config.monitor)
    best_value, best_epoch, best_state, bad_epochs = None, None, None, 0

    epochs = tqdm(range(1, config.epochs + 1), desc="epochs", disable=not progress)
    for epoch in epochs:
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        record = {"epoch": epoch}
        record["train_loss"] = train_one_epoch(model, train_loader, loss_fn, optimizer, device=device,
                                               amp_dtype=amp_dtype, scaler=scaler,
                                               grad_clip=config.grad_clip, progress=progress)
        if val_loader is not None:
            ev = evaluate(model, val_loader, loss_fn, device=device, amp_dtype=amp_dtype,
                          ignore_index=ignore_index, progress=progress)
            record["val_loss"], record["val_dice"] = ev.loss, ev.mean_dice
            if ev.dice.size > 2:  # several foreground classes: one curve each
                record.update({f"val_dice_{k}": float(d) for k, d in enumerate(ev.dice) if k > 0})
        scheduler.step()
        history.append(record, lr=lr, seconds=time.perf_counter() - start)
        if config.monitor not in record:
            raise ValueError(f"config.monitor {config.monitor!r} is not among the recorded keys {sorted(record)}")
        epochs.set_postfix({k: f"{v:.4f}" for k, v in record.items() if k != "epoch"})

        if _improved(record[config.monitor], best_value, config.mode, config.min_delta):
            best_value, best_epoch, bad_epochs = record[config.monitor], epoch, 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, model, config, history, epoch=epoch)
        else:
            bad_epochs += 1
            if config.patience is not None and bad_epochs >= config.patience:
                history.stopped_early = epoch < config.epochs
                break

    if config.restore_best and best_state is not None:
        model.load_state_dict(best_state)
    if checkpoint_path is not None:
        kept = best_epoch if config.restore_best and best_state is not None else epoch
        save_checkpoint(checkpoint_path, model, config, history, epoch=kept)
    return history


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` returns.

    Attributes
    ----------
    model : nn.Module
        Rebuilt with its constructor arguments, weights loaded, in eval mode.
    config : TrainConfig or None
    history : History or None
    epoch : int or None
        The epoch whose weights these are.
    model_class : str
        ``"module.ClassName"``.
    model_kwargs : dict
        The constructor arguments.
    extra : dict
        Whatever was passed as ``extra`` to :func:`save_checkpoint`.
    """

    model: nn.Module
    config: TrainConfig | None
    history: History | None
    epoch: int | None
    model_class: str
    model_kwargs: dict
    extra: dict


def _plain(value, where: str):
    """Check that ``value`` holds only types that ``torch.load(weights_only=True)`` accepts."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    raise TypeError(
        f"{where} is a {type(value).__name__}; checkpoints store only numbers, strings, None, "
        "lists, tuples, dicts and tensors, so that torch.load(weights_only=True) can read them"
    )


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: TrainConfig | None = None,
                    history: History | None = None, *, epoch: int | None = None,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write the weights with everything needed to rebuild the model, atomically.

    Introduced in 06_cnn.

    Parameters
    ----------
    path : str or path
        File to write (conventionally ``*.pt``); its folder is created if needed.
    model : nn.Module
        Must have ``init_kwargs``, a dict of its constructor arguments (every model of
        :mod:`medseg_course.models` records it). For your own model, set
        ``self.init_kwargs = dict(...)`` in ``__init__``.
    config : TrainConfig, optional
    history : History, optional
    epoch : int, optional
    extra : mapping, optional
        More plain values to keep (e.g. ``{"class_names": [...]}``).

    Returns
    -------
    pathlib.Path
        The path written.

    Notes
    -----
    The file is a dict of plain values, readable with ``torch.load(path, weights_only=True)``
    (which refuses to run code hidden in a pickle)::

        {"format", "version", "model_class": "medseg_course.models.fcn.FCN",
         "model_kwargs": {...}, "train_config": {...}, "history": {...}, "epoch": 12,
         "extra": {...}, "state_dict": {name: tensor}}

    It is written to a temporary file in the same folder, then moved over ``path`` with
    ``os.replace``: an interrupted save never leaves a truncated checkpoint behind.

    Examples
    --------
    >>> import tempfile, os
    >>> from medseg_course.models import FCN
    >>> path = save_checkpoint(os.path.join(tempfile.mkdtemp(), "fcn.pt"), FCN(1, 2, base_channels=4))
    >>> load_checkpoint(path).model_class
    'medseg_course.models.fcn.FCN'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    kwargs = getattr(model, "init_kwargs", None)
    if not isinstance(kwargs, Mapping):
        raise TypeError(
            f"{type(model).__name__} has no init_kwargs dict, so the checkpoint could not rebuild it; "
            "set self.init_kwargs = dict(<constructor arguments>) in its __init__"
        )
    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig or None, got {type(config).__name__}")
    cls = type(model)
    payload = {
        "format": _CHECKPOINT_FORMAT,
        "version": _CHECKPOINT_VERSION,
        "model_class": f"{cls.__module__}.{cls.__qualname__}",
        "model_kwargs": _plain(dict(kwargs), "model.init_kwargs"),
        "train_config": None if config is None else config.to_dict(),
        "history": None if history is None else _plain(history.to_dict(), "history"),
        "epoch": None if epoch is None else int(epoch),
        "extra": _plain(dict(extra or {}), "extra"),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _resolve_class(name: str):
    module, _, qualname = name.rpartition(".")
    if not module.startswith("medseg_course."):
        raise ValueError(
            f"the checkpoint's model class {name!r} is not part of medseg_course; for your own "
            "model pass it explicitly: load_checkpoint(path, model_class=MyModel)"
        )
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def load_checkpoint(path: str | os.PathLike, *, map_location="cpu", model_class=None) -> Checkpoint:
    """Read a checkpoint of :func:`save_checkpoint` and rebuild its model.

    Introduced in 06_cnn.

    Parameters
    ----------
    path : str or path
    map_location : str or torch.device, default "cpu"
        Where the tensors are loaded; move the model afterwards with ``.to(rt.device)``.
    model_class : type, optional
        The model's class, for models outside :mod:`medseg_course` (only classes of the package
        are looked up from the name stored in the file).

    Returns
    -------
    Checkpoint
        ``model`` (eval mode, on ``map_location``), ``config``, ``history``, ``epoch``...

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a course checkpoint, or its model class cannot be resolved.

    Notes
    -----
    Loads with ``torch.load(..., weights_only=True)``: only tensors and plain values are
    unpickled, so a checkpoint from an untrusted source cannot run code.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, Mapping) or payload.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a medseg-course checkpoint (written by save_checkpoint)")
    name = payload["model_class"]
    cls = model_class if model_class is not None else _resolve_class(name)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"model_class must be an nn.Module subclass, got {cls!r}")
    kwargs = dict(payload["model_kwargs"])
    model = cls(**kwargs)
    model.load_state_dict(payload["state_dict"])
    model.to(map_location).eval()
    cfg = payload.get("train_config")
    hist = payload.get("history")
    return Checkpoint(
        model=model,
        config=None if cfg is None else TrainConfig.from_dict(cfg),
        history=None if hist is None else History.from_dict(hist),
        epoch=payload.get("epoch"),
        model_class=name,
        model_kwargs=kwargs,
        extra=dict(payload.get("extra") or {}),
    )


# --------------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------------


def _as_image_tensor(image) -> torch.Tensor:
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a numpy array or torch tensor, got {type(image).__name__}")
    if image.ndim not in (3, 4):
        hint = "; add a channel axis with image[None]" if image.ndim == 2 else (
            "; pass one image at a time, e.g. batch[0]" if image.ndim == 5 else "")
        raise ValueError(
            f"image must be (C, H, W) or (C, D, H, W) (one image, channels first), got shape "
            f"{tuple(image.shape)}{hint}"
        )
    if not image.is_floating_point():
        image = image.float()
    return image


def _check_patch_size(patch_size, ndim: int) -> tuple[int, ...]:
    if isinstance(patch_size, numbers.Integral) and not isinstance(patch_size, bool):
        patch_size = (int(patch_size),) * ndim
    if (not isinstance(patch_size, Sequence) or len(patch_size) != ndim
            or not all(isinstance(p, numbers.Integral) and not isinstance(p, bool) and p > 0 for p in patch_size)):
        raise ValueError(f"patch_size must be None, an int or {ndim} positive ints, got {patch_size!r}")
    return tuple(int(p) for p in patch_size)


def _check_margin(margin, ndim: int) -> tuple[int, ...]:
    if isinstance(margin, numbers.Integral) and not isinstance(margin, bool):
        margin = (int(margin),) * ndim
    if (not isinstance(margin, Sequence) or len(margin) != ndim
            or not all(isinstance(m, numbers.Integral) and not isinstance(m, bool) and m >= 0 for m in margin)):
        raise ValueError(f"margin must be an int or {ndim} non-negative ints, got {margin!r}")
    return tuple(int(m) for m in margin)


def _window_starts(n: int, p: int, step: int) -> list[int]:
    """Window corners along one axis: every ``step``, plus one flush with the end."""
    if n <= p:
        return [0]
    starts = list(range(0, n - p + 1, step))
    if starts[-1] != n - p:
        starts.append(n - p)
    return starts


def _blend_weights(patch_size, blend: str, device) -> torch.Tensor:
    """Per-window weights ``(*patch_size)``: ones, or a Gaussian with sigma = patch / 8."""
    if blend == "constant":
        return torch.ones(patch_size, device=device)
    w = torch.ones((), device=device)
    for p in patch_size:
        x = torch.arange(p, device=device, dtype=torch.float32) - (p - 1) / 2
        g = torch.exp(-0.5 * (x / (p / 8)) ** 2)
        w = w[..., None] * g
    w = w / w.max()
    return w.clamp_min(1e-3)  # no zero weights at the corners: every pixel stays covered


def _margin_mask(starts, patch_size, margins, shape, device) -> torch.Tensor:
    """1 inside a window's trusted region: ``margin`` pixels trimmed from sides inside the image."""
    mask = torch.ones(patch_size, device=device)
    for axis, (s, p, m, n) in enumerate(zip(starts, patch_size, margins, shape)):
        if m == 0:
            continue
        index = [slice(None)] * len(patch_size)
        if s > 0:
            index[axis] = slice(0, m)
            mask[tuple(index)] = 0
        if s + p < n:
            index[axis] = slice(p - m, p)
            mask[tuple(index)] = 0
    return mask


def _sliding_window_logits(model, image, patch_size, overlap, margin, blend, batch_size):
    """Blended logits ``(1, K, *spatial)`` of ``model`` over windows of a ``(1, C, *spatial)`` image."""
    spatial = tuple(image.shape[2:])
    margins = _check_margin(margin, len(spatial))
    for p, m in zip(patch_size, margins):
        if p <= 2 * m:
            raise ValueError(f"patch_size {patch_size} must exceed twice the margin {margins} on every axis")
    padded = tuple(max(n, p) for n, p in zip(spatial, patch_size))
    if padded != spatial:  # an image smaller than the window: pad at the end, crop at the end
        pads = [x for n, q in zip(reversed(spatial), reversed(padded)) for x in (0, q - n)]
        image = F.pad(image, pads)
    steps = [max(1, int((p - 2 * m) * (1 - overlap))) for p, m in zip(patch_size, margins)]
    corners = list(itertools.product(*(_window_starts(n, p, s) for n, p, s in zip(padded, patch_size, steps))))
    base = _blend_weights(patch_size, blend, image.device)
    out = weights = None
    for i in range(0, len(corners), batch_size):
        chunk = corners[i:i + batch_size]
        windows = [tuple(slice(s, s + p) for s, p in zip(c, patch_size)) for c in chunk]
        logits = model(torch.cat([image[(slice(None), slice(None), *w)] for w in windows])).float()
        if logits.shape[2:] != tuple(patch_size):
            raise ValueError(
                f"the model maps a window {tuple(patch_size)} to logits {tuple(logits.shape)}: sliding "
                "windows need a model whose output has its input's spatial size"
            )
        if out is None:
            out = torch.zeros((1, logits.shape[1], *padded), device=image.device)
            weights = torch.zeros(padded, device=image.device)
        for c, w, lg in zip(chunk, windows, logits):
            wt = base * _margin_mask(c, patch_size, margins, padded, image.device)  # (*patch)
            out[(0, slice(None), *w)] += lg * wt
            weights[w] += wt
    out = out / weights
    return out[(slice(None), slice(None), *(slice(0, n) for n in spatial))]


@torch.no_grad()
def predict(model: nn.Module, image, *, device=None, patch_size=None, overlap: float = 0.5,
            margin=0, blend: str = "gaussian", batch_size: int = 4, output: str = "probabilities",
            threshold: float = 0.5) -> np.ndarray:
    """Segment one image or volume: probabilities or labels, whole or by sliding window.

    Introduced in 06_cnn.

    Parameters
    ----------
    model : nn.Module
        Returns logits ``(B, K, *spatial)`` for inputs ``(B, C, *spatial)``. Moved to ``device``
        (where it stays) and run in eval mode (its previous mode is restored afterwards).
    image : (C, H, W) or (C, D, H, W) array or tensor
        One image, channels first (``sample.image``).
    device : torch.device or str, optional
        :func:`~medseg_course.runtime.choose_device` by default.
    patch_size : int or tuple of int, optional
        None: the whole image in one pass. Otherwise windows of this size, ``overlap`` apart,
        their logits blended; for images larger than memory allows, or models trained on
        patches of one size.
    overlap : float, default 0.5
        Fraction of a window shared with the next, in ``[0, 1)``.
    margin : int or tuple of int, default 0
        Pixels trimmed from each window side that lies inside the image before blending (the
        U-Net paper's overlap-tile strategy): the prediction near a window's edge lacks context.
        With a margin at least the receptive-field radius of a stride-1 convolutional model, the
        sliding window gives exactly the whole-image result.
    blend : {"gaussian", "constant"}, default "gaussian"
        Window weights: a Gaussian (sigma = patch / 8, nnU-Net) that trusts window centres more,
        or equal weights.
    batch_size : int, default 4
        Windows per forward pass.
    output : {"probabilities", "labels", "logits"}, default "probabilities"
    threshold : float, default 0.5
        Foreground probability threshold for ``output="labels"`` with one binary channel.

    Returns
    -------
    ndarray
        ``"probabilities"``: float32 ``(K, *spatial)``, the sigmoid of one binary channel or the
        softmax over ``K`` channels. ``"labels"``: int64 ``(*spatial)``, comparable with
        ``sample.mask``. ``"logits"``: float32 ``(K, *spatial)``.

    Notes
    -----
    Windows start every ``(patch - 2 * margin) * (1 - overlap)`` pixels, plus one flush with
    the far border; an image smaller than a window is zero-padded at the end and the result
    cropped. The logits of all windows covering a pixel are averaged with the blend weights,
    then the sigmoid/softmax is applied once. The same code serves 2D and 3D.

    Examples
    --------
    >>> model = nn.Conv2d(1, 3, 3, padding=1)
    >>> image = np.random.default_rng(0).random((1, 40, 50), dtype=np.float32)
    >>> predict(model, image, device="cpu").shape
    (3, 40, 50)
    >>> whole = predict(model, image, device="cpu", output="logits")
    >>> tiled = predict(model, image, device="cpu", output="logits", patch_size=16, margin=1)
    >>> bool(np.allclose(whole, tiled, atol=1e-5))
    True
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if output not in ("probabilities", "labels", "logits"):
        raise ValueError(f"output must be 'probabilities', 'labels' or 'logits', got {output!r}")
    if blend not in ("gaussian", "constant"):
        raise ValueError(f"blend must be 'gaussian' or 'constant', got {blend!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, numbers.Real) or not 0 <= overlap < 1:
        raise ValueError(f"overlap must be a fraction in [0, 1), got {overlap!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    image = _as_image_tensor(image)
    ndim = image.ndim - 1
    device = choose_device() if device is None else torch.device(device)
    was_training = model.training
    model.to(device).eval()
    try:
        x = image[None].to(device, non_blocking=True)  # (1, C, *spatial)
        if patch_size is None:
            logits = model(x).float()  # (1, K, *spatial)
        else:
            logits = _sliding_window_logits(model, x, _check_patch_size(patch_size, ndim), float(overlap),
                                            margin, blend, int(batch_size))
    finally:
        model.train(was_training)
    if logits.shape[2:] != x.shape[2:]:
        raise ValueError(
            f"the model returned logits {tuple(logits.shape)} for an input {tuple(x.shape)}; predict "
            "needs outputs of the input's spatial size (for a PatchCNN use model.to_fcn())"
        )
    logits = logits[0]  # (K, *spatial)
    K = logits.shape[0]
    if output == "logits":
        return logits.cpu().numpy()
    probs = torch.sigmoid(logits) if K == 1 else torch.softmax(logits, dim=0)
    if output == "probabilities":
        return probs.cpu().numpy()
    labels = (probs[0] > threshold).long() if K == 1 else probs.argmax(0)
    return labels.cpu().numpy()
