"""The course's 3D recipe for MSD Task04 Hippocampus: data, augmentation, loss, schedule, inference.

Every piece of the recipe is named here, so that notebook 09 and ``benchmarks/bench_unet3d.py``
run the same thing:

* :class:`HippocampusRecipe` -- every setting, frozen (model width, box, augmentation, optimiser,
  schedule, budget in epochs **or** in minutes of training, test-time flips, postprocessing);
* :func:`training_set` -- the training volumes placed at a random position in a fixed box
  (``40 x 56 x 40`` voxels, a multiple of 8 for three poolings), flipped left-right only, with
  small intensity changes; :func:`slices` gives the 2D slices of the same volumes;
* :func:`train_hippocampus` -- the training loop (AdamW, per-step polynomial decay, Dice +
  cross-entropy), with a wall-clock budget (``minutes=``) when the question is "how good after
  15 minutes";
* :func:`predict_volume` / :func:`segment` -- sliding-window inference with Gaussian overlap
  blending (:func:`medseg_course.train.predict`), test-time flips, and
  :func:`largest_component` postprocessing; 2D models are run slice by slice;
* :func:`evaluate_hippocampus` -- per-case Dice of the anterior and posterior hippocampus on a
  split, and their mean (:class:`HippocampusScores`).

Orientation
-----------
In every volume of the dataset the anterior part (label 1) lies at larger ``H`` and smaller
``D`` than the posterior part (label 2): ``D`` and ``H`` carry the anterior-posterior and
superior-inferior directions, and flipping them would put the head of the hippocampus where its
tail belongs, an image that no scanner produces. The centroids of the two labels hardly differ
along ``W``, the left-right axis: a left hippocampus mirrored along ``W`` looks like a right one,
with the same labels. :data:`LEFT_RIGHT_AXIS` is therefore the only flip used, in training and at
test time.

Introduced in 09_unet3d.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from scipy import ndimage
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from medseg_course.data.loaders import PatchDataset, make_loader
from medseg_course.losses import DiceCELoss
from medseg_course.runtime import choose_device, seed_everything
from medseg_course.train import History, TrainConfig, amp_dtype_for, evaluate, make_optimizer, predict

__all__ = [
    "DATASET",
    "CLASS_NAMES",
    "LEFT_RIGHT_AXIS",
    "BOX",
    "HippocampusRecipe",
    "HippocampusScores",
    "load_hippocampus",
    "training_set",
    "slices",
    "build_model",
    "make_loss",
    "train_hippocampus",
    "predict_volume",
    "largest_component",
    "segment",
    "evaluate_hippocampus",
]

#: The registry name of MSD Task04 Hippocampus.
DATASET = "msd-hippocampus"
#: Label ``k`` is ``CLASS_NAMES[k]``.
CLASS_NAMES = ("background", "anterior", "posterior")
#: The left-right axis of the ``(D, H, W)`` volumes: the only label-safe flip (see the module notes).
LEFT_RIGHT_AXIS = 2
#: The training box ``(D, H, W)``: about the size of the largest volumes (45 x 58 x 42 in the
#: training split, 35.5 x 50 x 35 on average), a multiple of 8 on every axis.
BOX = (40, 56, 40)


# --------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------


def _check_int_tuple(value, name: str, length: int | None = None, minimum: int = 1) -> tuple[int, ...]:
    if (isinstance(value, (str, bytes)) or not isinstance(value, Sequence)
            or (length is not None and len(value) != length)
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= minimum
                       for v in value)):
        n = f"{length} " if length is not None else ""
        raise ValueError(f"{name} must be a sequence of {n}ints >= {minimum}, got {value!r}")
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class HippocampusRecipe:
    """Every setting of the course's Hippocampus recipe.

    Introduced in 09_unet3d.

    Attributes
    ----------
    spatial_dims : {3, 2}, default 3
        3: a :class:`~medseg_course.models.UNet3D` on whole volumes; 2: a 2D
        :class:`~medseg_course.models.UNet` on the ``(H, W)`` slices of the volumes, applied slice by
        slice (the baseline the 3D network is compared with).
    features : tuple of int, default (16, 32, 64, 128)
        Channels per level (three poolings).
    norm, act : str, default "instance", "leakyrelu"
        Instance norm and leaky ReLU, as nnU-Net for 3D (small batches make batch statistics
        noisy).
    box : (int, int, int), default :data:`BOX`
        Training crop ``(D, H, W)``; 2D training uses its ``(H, W)``. Also the sliding window of
        :func:`predict_volume`.
    shift : int, default 4
        Random translations of up to ``shift`` voxels: each volume is centred in a zero-padded
        array ``2 * shift`` larger than the box (or than itself, if larger), from which the box is
        cut at a random position.
    flip_axes : tuple of int, default (:data:`LEFT_RIGHT_AXIS`,)
        Spatial axes flipped with probability 1/2 in training, and averaged over at test time.
    intensity : float, default 0.1
        Intensity augmentation: ``x * a + b`` with ``a`` in ``[1 - s, 1 + s]`` and ``b`` in
        ``[-s, s]`` (the volumes are z-scored); 0 switches it off.
    batch_size : int, default 2
        Volumes per step (2D: slices per step are ``batch_size * box[0]``).
    optimizer : {"adamw", "adam", "sgd"}, default "adamw"
    lr : float, default 3e-3
        Initial learning rate, decayed per step as ``lr * (1 - t) ** 0.9`` (nnU-Net's polynomial
        schedule), ``t`` the fraction of the budget spent.
    weight_decay : float, default 3e-5
    momentum : float, default 0.99
        SGD only (Nesterov).
    epochs : int, default 40
        Passes over the training volumes, when ``minutes`` is None.
    minutes : float, optional
        A wall-clock budget of training instead: the schedule decays over elapsed time, and
        training stops when it is spent (validation time is not counted).
    lambda_dice : float, default 1.0
        Weight of the soft Dice term next to the cross-entropy (weight 1).
    tta : bool, default True
        Test-time augmentation: average the probabilities over the flips of ``flip_axes``.
    lcc : bool, default True
        Keep the largest connected component of each foreground class.
    overlap : float, default 0.5
        Overlap of the sliding windows (volumes larger than ``box``).
    seed : int, default 0

    Examples
    --------
    >>> recipe = HippocampusRecipe(epochs=2)
    >>> recipe.box, recipe.flip_axes, dataclasses.replace(recipe, minutes=15.0).minutes
    ((40, 56, 40), (2,), 15.0)
    """

    spatial_dims: int = 3
    features: tuple[int, ...] = (16, 32, 64, 128)
    norm: str | None = "instance"
    act: str = "leakyrelu"
    box: tuple[int, int, int] = BOX
    shift: int = 4
    flip_axes: tuple[int, ...] = (LEFT_RIGHT_AXIS,)
    intensity: float = 0.1
    batch_size: int = 2
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 3e-5
    momentum: float = 0.99
    epochs: int = 40
    minutes: float | None = None
    lambda_dice: float = 1.0
    tta: bool = True
    lcc: bool = True
    overlap: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if self.spatial_dims not in (2, 3) or isinstance(self.spatial_dims, bool):
            raise ValueError(f"spatial_dims must be 3 (UNet3D) or 2 (slice-wise UNet), got {self.spatial_dims!r}")
        object.__setattr__(self, "features", _check_int_tuple(self.features, "features"))
        object.__setattr__(self, "box", _check_int_tuple(self.box, "box", 3))
        object.__setattr__(self, "flip_axes", _check_int_tuple(self.flip_axes, "flip_axes", minimum=0))
        if any(a > 2 for a in self.flip_axes):
            raise ValueError(f"flip_axes are axes of (D, H, W): 0, 1 or 2, got {self.flip_axes!r}")
        if self.spatial_dims == 2 and 0 in self.flip_axes:
            raise ValueError("a 2D slice-wise model sees (H, W) slices: flip_axes may hold 1 and 2 only")
        for name in ("shift", "epochs", "batch_size", "seed"):
            v = getattr(self, name)
            low = 1 if name in ("epochs", "batch_size") else 0
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
        for name in ("intensity", "lr", "weight_decay", "momentum", "lambda_dice"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.minutes is not None and (isinstance(self.minutes, bool) or not isinstance(self.minutes, numbers.Real)
                                         or not self.minutes > 0):
            raise ValueError(f"minutes must be a positive number (a training budget) or None, got {self.minutes!r}")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap!r}")
        TrainConfig(optimizer=self.optimizer, lr=self.lr, weight_decay=self.weight_decay)  # validates them

    def to_dict(self) -> dict:
        """The settings as plain values (for checkpoints and reports)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def load_hippocampus(split: str = "train", n: int | None = None, *, progress: bool = False) -> list:
    """The samples of one split of MSD Hippocampus (z-scored per volume), optionally the first ``n``.

    Introduced in 09_unet3d.

    Parameters
    ----------
    split : {"train", "val", "test"}
    n : int, optional
        Keep the first ``n`` cases (fast runs).
    progress : bool, default False

    Returns
    -------
    list of Sample
        ``image (1, D, H, W)`` float32, ``mask (D, H, W)`` int64 with labels 0, 1, 2.
    """
    from medseg_course import data

    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
        raise ValueError(f"n must be a positive int or None (all cases), got {n!r}")
    ds = data.load_dataset(DATASET, split=split, progress=progress)
    k = len(ds) if n is None else min(int(n), len(ds))
    return [ds[i] for i in range(k)]


def _pair(item) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(item, "image") and hasattr(item, "mask"):
        image, mask = item.image, item.mask
    else:
        image, mask = item
    image = np.asarray(image, dtype=np.float32)
    mask = np.asarray(mask)
    if image.ndim == mask.ndim:
        image = image[None]
    if mask.ndim != 3 or image.shape[1:] != mask.shape:
        raise ValueError(f"expected a volume image (C, D, H, W) and mask (D, H, W), got {image.shape} and {mask.shape}")
    return image, mask.astype(np.int64)


class _Augment(Dataset):
    """Random flips along chosen axes and a random intensity scale and shift, on items of ``base``."""

    def __init__(self, base: Dataset, flip_axes: Sequence[int], intensity: float):
        self.base, self.flip_axes, self.intensity = base, tuple(flip_axes), float(intensity)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, mask = self.base[index][:2]
        draws = torch.rand(len(self.flip_axes) + 2)  # PyTorch's generator: seeded by the training loop
        axes = [a - 3 for a, d in zip(self.flip_axes, draws) if d < 0.5]  # counted from the end
        if axes:
            image, mask = image.flip(axes), mask.flip(axes)
        if self.intensity > 0:
            s = self.intensity
            image = image * (1 + s * (2 * draws[-2] - 1)) + s * (2 * draws[-1] - 1)
        return image.contiguous(), mask.contiguous()


def _pad(array: np.ndarray, widths, value) -> np.ndarray:
    lead = [(0, 0)] * (array.ndim - len(widths))
    return np.pad(array, lead + list(widths), constant_values=value)


def training_set(samples, recipe: HippocampusRecipe | None = None, *, mask_pad_value: int = 0) -> Dataset:
    """The recipe's training items: each volume at a random position in the box, augmented.

    Introduced in 09_unet3d.

    Parameters
    ----------
    samples : sequence
        Samples or ``(image, mask)`` pairs of volumes (e.g. :func:`load_hippocampus`); masks may
        hold an ignore label (sparse annotation, :mod:`medseg_course.data.sparse`).
    recipe : HippocampusRecipe, optional
        ``box``, ``shift``, ``flip_axes``, ``intensity`` (and ``spatial_dims``: 2 gives
        :func:`slices` instead, with the same augmentation).
    mask_pad_value : int, default 0
        Label of the padding around a volume: 0 (it is outside the head crop, background), or the
        ignore label of sparse masks, so that padding does not count as annotated.

    Returns
    -------
    torch.utils.data.Dataset
        Items ``(image (1, *box) float32, mask (*box) int64)``, one per volume (2D: one per
        slice, ``(1, H, W)`` and ``(H, W)`` with ``(H, W) = box[1:]``).

    Notes
    -----
    Each volume is zero-padded, centred, to ``max(size, box) + 2 * shift`` along each axis, and a
    box-sized crop is drawn uniformly (:class:`~medseg_course.data.loaders.PatchDataset`): the
    volume moves by up to ``shift`` voxels from the centre of the box; a volume larger than the
    box loses a few border slices, and at some positions the tip of the hippocampus with them
    (25 of the 143 training volumes are larger than the box along some axis; each epoch places
    them anew).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> vols = [(rng.normal(size=(30, 45, 33)).astype(np.float32), np.zeros((30, 45, 33), int))]
    >>> image, mask = training_set(vols)[0]
    >>> tuple(image.shape), tuple(mask.shape)
    ((1, 40, 56, 40), (40, 56, 40))
    """
    recipe = HippocampusRecipe() if recipe is None else recipe
    pairs = [_pair(s) for s in samples]
    if not pairs:
        raise ValueError("samples is empty: pass at least one volume")
    if recipe.spatial_dims == 2:
        base = PatchDataset(slices(pairs), recipe.box[1:], pad_value=0.0, mask_pad_value=mask_pad_value)
    else:
        boxed = []
        for im, m in pairs:  # centred in max(size, box) + 2 * shift: every crop is a shift of up to `shift`
            w = [((max(n, b) - n) // 2 + recipe.shift, max(n, b) - n - (max(n, b) - n) // 2 + recipe.shift)
                 for n, b in zip(m.shape, recipe.box)]
            boxed.append((_pad(im, w, 0.0), _pad(m, w, mask_pad_value)))
        base = PatchDataset(boxed, recipe.box, pad_value=0.0, mask_pad_value=mask_pad_value)
    return _Augment(base, recipe.flip_axes, recipe.intensity)


def slices(samples, axis: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every 2D slice of every volume, as ``(image (C, h, w), mask (h, w))`` pairs.

    Introduced in 09_unet3d.

    Parameters
    ----------
    samples : sequence
        Samples or ``(image (C, D, H, W), mask (D, H, W))`` pairs.
    axis : {0, 1, 2}, default 0
        Spatial axis cut: 0 gives ``(H, W)`` slices.

    Examples
    --------
    >>> pairs = slices([(np.zeros((1, 3, 4, 5), np.float32), np.zeros((3, 4, 5), int))])
    >>> len(pairs), pairs[0][0].shape, pairs[0][1].shape
    (3, (1, 4, 5), (4, 5))
    """
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be a spatial axis of (D, H, W): 0, 1 or 2, got {axis!r}")
    out = []
    for s in samples:
        image, mask = _pair(s)
        for k in range(mask.shape[axis]):
            out.append((np.ascontiguousarray(np.take(image, k, axis=axis + 1)),
                        np.ascontiguousarray(np.take(mask, k, axis=axis))))
    return out


# --------------------------------------------------------------------------------------------
# model, loss, training
# --------------------------------------------------------------------------------------------


def build_model(recipe: HippocampusRecipe | None = None) -> nn.Module:
    """The recipe's network: ``UNet3D`` (or a 2D ``UNet`` for ``spatial_dims=2``), 1 channel in, 3 out.

    Introduced in 09_unet3d.

    Examples
    --------
    >>> type(build_model()).__name__, type(build_model(HippocampusRecipe(spatial_dims=2))).__name__
    ('UNet3D', 'UNet')
    """
    from medseg_course.models import UNet, UNet3D

    recipe = HippocampusRecipe() if recipe is None else recipe
    kw = dict(features=recipe.features, norm=recipe.norm, act=recipe.act)
    if recipe.spatial_dims == 3:
        return UNet3D(1, len(CLASS_NAMES), **kw)
    return UNet(1, len(CLASS_NAMES), spatial_dims=2, **kw)


def make_loss(recipe: HippocampusRecipe | None = None, *, ignore_index: int | None = None) -> DiceCELoss:
    """The recipe's loss: cross-entropy plus soft Dice of the two foreground classes.

    Introduced in 09_unet3d.

    The Dice term leaves the background out (it is 95 % of the voxels and its Dice is always
    near 1) and pools each class over the batch (``batch_dice``), which keeps it steady on
    crops where a class is small; ``ignore_index`` masks unannotated voxels out of both terms.

    Examples
    --------
    >>> loss_fn = make_loss(ignore_index=-1)
    >>> loss_fn.ignore_index, loss_fn.include_background
    (-1, False)
    """
    recipe = HippocampusRecipe() if recipe is None else recipe
    return DiceCELoss(lambda_dice=recipe.lambda_dice, include_background=False, batch_dice=True,
                      ignore_index=ignore_index)


def _poly(fraction: float) -> float:
    return max(0.0, 1.0 - fraction) ** 0.9


def train_hippocampus(recipe: HippocampusRecipe | None = None, train=None, val=None, *, loss_fn=None,
                      ignore_index: int | None = None, device=None, progress: bool = True):
    """Train the recipe's network on the Hippocampus training volumes.

    Introduced in 09_unet3d.

    Parameters
    ----------
    recipe : HippocampusRecipe, optional
        The settings; the budget is ``recipe.epochs``, or ``recipe.minutes`` of training.
    train : sequence, optional
        Training samples or ``(image, mask)`` pairs; the whole training split by default.
        Masks may hold the ``ignore_index`` of ``loss_fn`` (sparse annotation).
    val : sequence, optional
        Validation volumes: after each epoch the Dice of each class over them is recorded
        (whole volumes, no test-time flips), as ``val_dice``, ``val_dice_1``, ``val_dice_2``.
    loss_fn : callable, optional
        ``loss_fn(logits, target)``; :func:`make_loss` (with ``ignore_index``) by default.
    ignore_index : int, optional
        Label of unannotated voxels in the ``train`` masks (sparse annotation): the padding around
        the volumes gets it too, so that it does not count as annotated background. By default the
        ``ignore_index`` attribute of ``loss_fn``, if it has one.
    device : torch.device or str, optional
        :func:`~medseg_course.runtime.choose_device` by default.
    progress : bool, default True
        A progress bar over the steps.

    Returns
    -------
    model : nn.Module
        The trained network at the end of the schedule (the learning rate has decayed to
        about 0, so there is no "best epoch" to pick), in eval mode, on ``device``.
    history : medseg_course.train.History
        Per epoch: ``train_loss`` (and validation Dice); ``history.seconds`` the training time
        of each epoch, ``history.lr`` its first learning rate, ``history.steps`` the number of
        optimiser steps taken in all.

    Notes
    -----
    Per step: forward, loss, backward, AdamW step, then the learning rate is set to
    ``lr * (1 - t) ** 0.9`` with ``t`` the fraction of the budget spent (steps, or seconds with
    ``minutes``). With ``epochs`` two runs with the same seed give the same model on the CPU;
    with ``minutes`` the number of steps depends on the machine's speed.
    """
    recipe = HippocampusRecipe() if recipe is None else recipe
    if not isinstance(recipe, HippocampusRecipe):
        raise TypeError(f"recipe must be a HippocampusRecipe, got {type(recipe).__name__}")
    device = choose_device() if device is None else torch.device(device)
    seed_everything(recipe.seed)
    if loss_fn is None:
        loss_fn = make_loss(recipe, ignore_index=ignore_index)
    ignore = getattr(loss_fn, "ignore_index", None) if ignore_index is None else ignore_index
    samples = load_hippocampus("train") if train is None else train
    dataset = training_set(samples, recipe, mask_pad_value=0 if ignore is None else ignore)
    batch = recipe.batch_size * (recipe.box[0] if recipe.spatial_dims == 2 else 1)
    loader = make_loader(dataset, batch_size=batch, shuffle=True, seed=recipe.seed,
                         drop_last=len(dataset) >= batch, pin_memory=device.type == "cuda")
    val_loader = None
    if val is not None:  # one batch per volume: (1, 1, D, H, W), or its D slices (D, 1, H, W) for 2D
        val_loader = []
        for image, mask in (_pair(s) for s in val):
            x, y = torch.from_numpy(image)[None], torch.from_numpy(mask)[None]
            val_loader.append((x, y) if recipe.spatial_dims == 3 else (x[0].movedim(1, 0), y[0]))

    model = build_model(recipe).to(device)
    config = TrainConfig(optimizer=recipe.optimizer, lr=recipe.lr, weight_decay=recipe.weight_decay,
                         momentum=recipe.momentum, batch_size=batch, seed=recipe.seed)
    optimizer = make_optimizer(model, config)
    amp_dtype = amp_dtype_for(device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    budget_s = None if recipe.minutes is None else 60.0 * recipe.minutes
    total_steps = recipe.epochs * len(loader)
    history = History(monitor="val_dice" if val_loader is not None else "train_loss")

    bar = tqdm(total=total_steps if budget_s is None else int(budget_s), disable=not progress,
               desc="train 3D" if recipe.spatial_dims == 3 else "train 2D",
               unit="step" if budget_s is None else "s")
    step, trained_s, done = 0, 0.0, False
    for epoch in itertools.count(1):
        model.train()
        start, epoch_lr = time.perf_counter(), optimizer.param_groups[0]["lr"]
        total, count = torch.zeros((), device=device), 0
        for image, target in loader:
            image, target = image.to(device, non_blocking=True), target.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = loss_fn(model(image), target)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            total += loss.detach().float() * image.shape[0]
            count += image.shape[0]
            step += 1
            elapsed = trained_s + time.perf_counter() - start
            fraction = step / total_steps if budget_s is None else elapsed / budget_s
            for group in optimizer.param_groups:
                group["lr"] = recipe.lr * _poly(fraction)
            bar.update(1 if budget_s is None else int(elapsed) - bar.n)
            if fraction >= 1:
                done = True
                break
        seconds = time.perf_counter() - start
        trained_s += seconds
        record = {"epoch": epoch, "train_loss": float(total) / max(count, 1)}
        if not math.isfinite(record["train_loss"]):
            raise FloatingPointError(f"the training loss became {record['train_loss']}: lower recipe.lr")
        if val_loader is not None:
            ev = evaluate(model, val_loader, device=device, amp_dtype=amp_dtype)
            record["val_dice"] = ev.mean_dice
            record.update({f"val_dice_{k}": float(d) for k, d in enumerate(ev.dice) if k > 0})
        history.append(record, lr=epoch_lr, seconds=seconds)
        bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "epoch"})
        if done or (budget_s is None and epoch >= recipe.epochs):
            break
    bar.close()
    history.steps = step
    return model.eval(), history


# --------------------------------------------------------------------------------------------
# inference and evaluation
# --------------------------------------------------------------------------------------------


def _model_device(model: nn.Module):
    p = next(itertools.chain(model.parameters(), model.buffers()), None)
    return p.device if p is not None else torch.device("cpu")


def _flip_sets(flip_axes: Sequence[int]):
    """Every subset of ``flip_axes``: the flips averaged at test time (2 ** len(flip_axes) passes)."""
    axes = tuple(flip_axes)
    return [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]


@torch.no_grad()
def _slicewise_logits(model: nn.Module, image: np.ndarray, device, batch: int = 64) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(image)).float().movedim(1, 0)  # (D, C, H, W)
    outs = [model(x[i:i + batch].to(device)).float().cpu() for i in range(0, x.shape[0], batch)]
    return torch.cat(outs).movedim(0, 1).numpy()  # (K, D, H, W)


def predict_volume(model: nn.Module, image, *, box=BOX, overlap: float = 0.5, flip_axes=(LEFT_RIGHT_AXIS,),
                   tta: bool = True, device=None) -> np.ndarray:
    """Class probabilities of one volume: sliding windows with Gaussian blending, test-time flips.

    Introduced in 09_unet3d.

    Parameters
    ----------
    model : nn.Module
        A 3D network ``(B, 1, D, H, W) -> (B, K, D, H, W)`` logits, or a 2D one (attribute
        ``spatial_dims == 2``), which is run on the ``(H, W)`` slices.
    image : (1, D, H, W) array
    box : (int, int, int)
        Window of the sliding window (3D): a volume larger than it along an axis is covered by
        windows ``overlap`` apart, their logits blended with Gaussian weights
        (:func:`medseg_course.train.predict`); a smaller one is padded.
    overlap : float, default 0.5
    flip_axes : tuple of int
        Axes of ``(D, H, W)`` flipped for test-time augmentation.
    tta : bool, default True
        Average the probabilities of the ``2 ** len(flip_axes)`` flipped inputs (each flipped
        back).
    device : optional
        The model's device by default.

    Returns
    -------
    (K, D, H, W) ndarray of float32

    Examples
    --------
    >>> model = nn.Conv3d(1, 3, 3, padding=1)
    >>> predict_volume(model, np.zeros((1, 20, 30, 20), np.float32), box=(16, 16, 16)).shape
    (3, 20, 30, 20)
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 4:
        raise ValueError(f"image must be one volume (C, D, H, W), got shape {image.shape}")
    device = _model_device(model) if device is None else torch.device(device)
    two_d = getattr(model, "spatial_dims", 3) == 2
    flips = _flip_sets(flip_axes) if tta else [()]
    probs = None
    was_training = model.training
    model.eval()
    try:
        for axes in flips:
            a = tuple(x + 1 for x in axes)  # axes of (C, D, H, W)
            x = np.flip(image, a) if a else image
            if two_d:
                logits = torch.from_numpy(_slicewise_logits(model, x, device))
                p = torch.softmax(logits, dim=0).numpy()
            else:
                window = None if all(n <= b for n, b in zip(x.shape[1:], box)) else tuple(box)
                p = predict(model, np.ascontiguousarray(x), device=device, patch_size=window, overlap=overlap)
            p = np.flip(p, a) if a else p
            probs = p if probs is None else probs + p
    finally:
        model.train(was_training)
    return np.ascontiguousarray(probs / len(flips), dtype=np.float32)


def largest_component(labels, classes=(1, 2)) -> np.ndarray:
    """Keep, for each class, only its largest connected component (26-connectivity); the rest
    becomes background.

    Introduced in 09_unet3d.

    Parameters
    ----------
    labels : (D, H, W) or (H, W) int array
    classes : sequence of int, default (1, 2)

    Returns
    -------
    ndarray
        A copy of ``labels``.

    Examples
    --------
    >>> labels = np.zeros((1, 8), int); labels[0, :3] = 1; labels[0, 5] = 1; labels[0, 7] = 2
    >>> largest_component(labels).tolist()
    [[1, 1, 1, 0, 0, 0, 0, 2]]
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "biu":
        raise TypeError(f"labels must be an integer label map, got dtype {labels.dtype}")
    out = labels.copy()
    structure = np.ones((3,) * labels.ndim, dtype=bool)
    for k in classes:
        comp, n = ndimage.label(labels == k, structure=structure)
        if n > 1:
            sizes = np.bincount(comp.ravel())
            sizes[0] = 0
            out[(comp > 0) & (comp != int(np.argmax(sizes)))] = 0
    return out


def segment(model: nn.Module, image, recipe: HippocampusRecipe | None = None, *, tta: bool | None = None,
            lcc: bool | None = None, device=None) -> np.ndarray:
    """Labels ``(D, H, W)`` for one volume: :func:`predict_volume`, argmax, :func:`largest_component`.

    Introduced in 09_unet3d.

    Parameters
    ----------
    model : nn.Module
    image : (1, D, H, W) array
    recipe : HippocampusRecipe, optional
        ``box``, ``overlap``, ``flip_axes``, ``tta``, ``lcc``.
    tta, lcc : bool, optional
        Override the recipe's.
    device : optional
    """
    recipe = HippocampusRecipe() if recipe is None else recipe
    tta = recipe.tta if tta is None else tta
    lcc = recipe.lcc if lcc is None else lcc
    probs = predict_volume(model, image, box=recipe.box, overlap=recipe.overlap, flip_axes=recipe.flip_axes,
                           tta=tta, device=device)
    labels = probs.argmax(0)
    return largest_component(labels) if lcc else labels


@dataclass(frozen=True)
class HippocampusScores:
    """Per-case Dice of the anterior and posterior hippocampus, as :func:`evaluate_hippocampus` returns.

    Introduced in 09_unet3d.

    Attributes
    ----------
    case_ids : tuple of str
    dice : (N, 2) ndarray
        Column 0 anterior, column 1 posterior (empty in both prediction and truth: 1).
    split : str
    """

    case_ids: tuple
    dice: np.ndarray
    split: str = ""

    @property
    def anterior(self) -> float:
        """Mean Dice of the anterior hippocampus over the cases."""
        return float(self.dice[:, 0].mean())

    @property
    def posterior(self) -> float:
        """Mean Dice of the posterior hippocampus over the cases."""
        return float(self.dice[:, 1].mean())

    @property
    def mean(self) -> float:
        """The mean of :attr:`anterior` and :attr:`posterior` (the issue's target metric)."""
        return float(self.dice.mean())

    def __str__(self) -> str:
        where = f" on {len(self.case_ids)} {self.split} volumes" if self.split else ""
        return (f"Dice{where}: anterior {self.anterior:.4f}, posterior {self.posterior:.4f}, "
                f"mean {self.mean:.4f}")


def evaluate_hippocampus(model: nn.Module, split: str = "test", *, samples=None,
                         recipe: HippocampusRecipe | None = None, tta: bool | None = None,
                         lcc: bool | None = None, device=None, progress: bool = False) -> HippocampusScores:
    """Per-case Dice of ``model`` on a split of MSD Hippocampus, anterior and posterior.

    Introduced in 09_unet3d.

    Parameters
    ----------
    model : nn.Module
        3D (``(B, 1, D, H, W)`` in) or 2D (``spatial_dims == 2``, run slice by slice); returns
        logits of the three classes.
    split : {"test", "val", "train"}, default "test"
        Ignored when ``samples`` is given.
    samples : sequence, optional
        Volumes to score instead of a split (samples with ``case_id``, or ``(image, mask)`` pairs).
    recipe : HippocampusRecipe, optional
        Inference settings (sliding window box and overlap, flips, ``tta``, ``lcc``).
    tta, lcc : bool, optional
        Override the recipe's test-time flips and largest-component postprocessing.
    device : optional
        The model's device by default.
    progress : bool, default False

    Returns
    -------
    HippocampusScores
        ``.dice`` per case and class, ``.anterior``, ``.posterior``, ``.mean``.

    Notes
    -----
    Each case is scored on its own (:func:`medseg_course.metrics.dice` of each class), then
    averaged over cases, as the Medical Segmentation Decathlon does; a class absent from
    both the prediction and the truth scores 1.
    """
    from medseg_course import metrics

    if samples is None:
        samples = load_hippocampus(split)
    else:
        split = ""
    ids, scores = [], []
    for i, s in enumerate(tqdm(samples, desc="evaluate", disable=not progress, leave=False)):
        image, mask = _pair(s)
        labels = segment(model, image, recipe, tta=tta, lcc=lcc, device=device)
        scores.append(metrics.dice(labels, mask, labels=[1, 2]))
        ids.append(getattr(s, "case_id", str(i)))
    return HippocampusScores(tuple(ids), np.asarray(scores, dtype=np.float64), split)
