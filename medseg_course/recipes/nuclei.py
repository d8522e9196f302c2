"""The course's 2D recipe for DSB2018 nuclei: a U-Net, its training data, its inference.

One frozen :class:`NucleiRecipe` holds every setting (model width, patches, augmentation, loss,
schedule, test-time augmentation, postprocessing); three functions use it::

    from medseg_course.recipes.nuclei import NucleiRecipe, train_nuclei_unet, evaluate_nuclei

    model, history = train_nuclei_unet(rt=rt)             # rt.budget(full=..., fast=...) sizes it
    scores = evaluate_nuclei(model, "val")                # per-image Dice, per category
    print(scores.table())

Inputs are :func:`nuclei_inputs` images: one grey channel with bright nuclei
(:func:`~medseg_course.data.transforms.nuclei_bright`), values in ``[0, 1]``; the model returns
one binary logit channel.

Introduced in 08_unet.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from scipy import ndimage

__all__ = [
    "NucleiRecipe",
    "FAST_RECIPE",
    "NucleiScores",
    "nuclei_inputs",
    "build_model",
    "make_loss",
    "make_train_loader",
    "crop_repeats",
    "train_nuclei_unet",
    "predict_nuclei",
    "postprocess",
    "evaluate_nuclei",
    "instance_f1",
    "dice_by_offset",
    "short_category",
]

_LOSSES = ("ce", "dice", "dice_ce")


@dataclass(frozen=True)
class NucleiRecipe:
    """Every setting of the 2D nuclei recipe; frozen (``dataclasses.replace`` makes a variant).

    Introduced in 08_unet.

    Attributes
    ----------
    features : tuple of int, default (16, 32, 64, 128, 256)
        :class:`~medseg_course.models.UNet` channels per level (depth 4).
    norm : {"group", "batch", "instance", None}, default "group"
        Group norm normalises each image with its own statistics: no running averages that lag
        behind the weights in short runs, and a network that does not care about an image's
        overall brightness.
    patch_size : int, default 128
        Side of the square training crops.
    patches_per_image : int, default 4
        Crops per training image and epoch.
    foreground_fraction : float, default 0.5
        Share of crops centred on a nucleus pixel.
    max_repeats : int, default 1
        Images with more nucleus pixels give more crops per epoch: ``round(n / median)`` times
        ``patches_per_image``, ``n`` the image's nucleus pixels, clipped to ``[1, max_repeats]``
        (1: every image the same number of crops). Large images with many nuclei otherwise get
        as few crops as small ones with a handful.
    batch_size : int, default 8
    epochs : int, default 24
        Full-budget epochs (:func:`train_nuclei_unet` takes the fast value from ``fast_epochs``).
    fast_epochs : int, default 2
    lr : float, default 3e-3
        AdamW, decayed by ``lr_schedule``.
    weight_decay : float, default 1e-4
    lr_schedule : {"cosine", "poly", "constant"}, default "cosine"
    loss : {"dice_ce", "ce", "dice"}, default "dice_ce"
    batch_dice : bool, default True
        Dice over the whole batch (crops without nuclei do not give a noisy per-crop Dice).
    border_weights : bool, default False
        Weigh the loss with :func:`~medseg_course.data.weights.unet_weight_map` (``w0``, ``sigma``).
    w0, sigma : float, default 10.0 and 5.0
    flips : bool, default True
        Random flips and 90-degree rotations.
    elastic : float, default 0.5
        Probability of an elastic deformation of a crop
        (:func:`~medseg_course.data.augment.elastic_deform`; ``elastic_std`` pixels on a 3 x 3 grid).
    elastic_std : float, default 8.0
    margin : int, default 16
        Crops are drawn ``2 * margin`` larger, deformed, then cropped to ``patch_size``.
    gamma : float, default 0.3
        Probability of a random gamma (0.7 to 1.5).
    brightness_contrast : float, default 0.3
    noise : float, default 0.0
        Probabilities of the other intensity augmentations.
    tta : bool, default True
        Test-time augmentation: the mean probability over the 8 flips/rotations of an image.
    threshold : float, default 0.5
    min_size : int, default 0
        Remove predicted objects smaller than this many pixels.
    fill_holes : bool, default True
        Fill holes inside predicted objects.
    seed : int, default 0
    """

    features: tuple[int, ...] = (16, 32, 64, 128, 256)
    norm: str | None = "group"
    upsample: str = "deconv"
    patch_size: int = 128
    patches_per_image: int = 4
    foreground_fraction: float = 0.5
    max_repeats: int = 1
    batch_size: int = 8
    epochs: int = 24
    fast_epochs: int = 2
    lr: float = 3e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"
    loss: str = "dice_ce"
    batch_dice: bool = True
    border_weights: bool = False
    w0: float = 10.0
    sigma: float = 5.0
    flips: bool = True
    elastic: float = 0.5
    elastic_std: float = 8.0
    margin: int = 16
    gamma: float = 0.3
    brightness_contrast: float = 0.3
    noise: float = 0.0
    tta: bool = True
    threshold: float = 0.5
    min_size: int = 0
    fill_holes: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {list(_LOSSES)}, got {self.loss!r}")
        for name in ("patch_size", "patches_per_image", "max_repeats", "batch_size", "epochs", "fast_epochs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("foreground_fraction", "elastic", "gamma", "brightness_contrast", "noise"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0 <= v <= 1:
                raise ValueError(f"{name} is a probability in [0, 1], got {v!r}")
        if not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")
        object.__setattr__(self, "features", tuple(int(f) for f in self.features))

    def to_dict(self) -> dict:
        """The settings as a plain dict (for checkpoints and reports)."""
        return dataclasses.asdict(self)


#: A recipe small enough for the fast budget (CI, the grader): a narrow U-Net on 64 x 64 crops.
FAST_RECIPE = NucleiRecipe(features=(8, 16, 32, 64), patch_size=64, patches_per_image=2, batch_size=8,
                           fast_epochs=3, elastic=0.3, margin=8)


def short_category(category: str) -> str:
    """``"fluorescence_gray_256x256"`` -> ``"fluorescence_256x256"`` (table labels).

    Introduced in 08_unet.

    Examples
    --------
    >>> short_category("brightfield_stained_color_256x320")
    'brightfield_256x320'
    """
    return str(category).replace("_gray", "").replace("_stained_color", "")


def _binary_int64(mask: np.ndarray) -> np.ndarray:
    """``mask > 0`` as int64; ``mask`` itself when it already is exactly that."""
    if mask.dtype == np.int64 and mask.min(initial=0) >= 0 and mask.max(initial=0) <= 1:
        return mask
    return (mask > 0).astype(np.int64)


def nuclei_inputs(split: str = "train", n: int | None = None, *, dataset: str = "dsb2018"):
    """Images and masks of a DSB2018 split as the recipe's models take them.

    Introduced in 08_unet.

    Parameters
    ----------
    split : {"train", "val", "test"}, default "train"
    n : int, optional
        Keep the first ``n`` images (case-id order); all by default.
    dataset : str, default "dsb2018"

    Returns
    -------
    samples : list of Sample
        As loaded (``.image``, ``.mask``, ``.instances``, ``.category``, ``.case_id``).
    pairs : list of ((1, H, W) float32, (H, W) int64)
        ``nuclei_bright`` images and binary masks. A sample's mask that is already 0/1 int64 (DSB2018's
        are) is shared with the pair, not copied: one copy less of every mask on Binder's 2 GB.
    """
    from medseg_course.data import load_dataset
    from medseg_course.data.transforms import nuclei_bright

    if n is not None and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
        raise ValueError(f"n must be a positive int or None, got {n!r}")
    ds = load_dataset(dataset, split=split)
    samples = [ds[i] for i in range(len(ds) if n is None else min(n, len(ds)))]
    pairs = [(nuclei_bright(s.image, s.category)[None], _binary_int64(s.mask)) for s in samples]
    return samples, pairs


def build_model(recipe: NucleiRecipe | None = None) -> nn.Module:
    """The recipe's U-Net: one grey channel in, one binary logit channel out.

    Introduced in 08_unet.

    Examples
    --------
    >>> model = build_model(FAST_RECIPE)
    >>> model(torch.zeros(1, 1, 40, 50)).shape
    torch.Size([1, 1, 40, 50])
    """
    from medseg_course.models import UNet

    r = NucleiRecipe() if recipe is None else recipe
    return UNet(1, 1, features=r.features, norm=r.norm, upsample=r.upsample)


def make_loss(recipe: NucleiRecipe | None = None):
    """The recipe's loss module (:mod:`medseg_course.losses`).

    Introduced in 08_unet.
    """
    from medseg_course.losses import CrossEntropyLoss, DiceCELoss, DiceLoss

    r = NucleiRecipe() if recipe is None else recipe
    if r.loss == "ce":
        return CrossEntropyLoss()
    if r.loss == "dice":
        return DiceLoss(batch_dice=r.batch_dice)
    return DiceCELoss(batch_dice=r.batch_dice)


def crop_repeats(pairs, max_repeats: int) -> list[int]:
    """How many times each training image enters an epoch: by its nucleus pixels, relative to the median image.

    Introduced in 08_unet.

    Examples
    --------
    >>> masks = [np.ones((4, 4)), np.ones((2, 4)), np.zeros((4, 4)), np.ones((8, 8))]
    >>> crop_repeats([(None, m) for m in masks], 3)
    [1, 1, 1, 3]
    """
    if isinstance(max_repeats, bool) or not isinstance(max_repeats, numbers.Integral) or max_repeats < 1:
        raise ValueError(f"max_repeats must be a positive int, got {max_repeats!r}")
    counts = np.array([np.count_nonzero(np.asarray(m)) for _, m in pairs], dtype=float)
    median = max(float(np.median(counts)), 1.0)
    return [int(k) for k in np.clip(np.round(counts / median), 1, max_repeats)]


def make_train_loader(pairs, recipe: NucleiRecipe | None = None, *, instances=None, seed: int | None = None):
    """Random augmented crops of the training images, batched.

    Introduced in 08_unet.

    Parameters
    ----------
    pairs : list of ((1, H, W), (H, W))
        From :func:`nuclei_inputs`.
    recipe : NucleiRecipe, optional
    instances : list of (H, W) int arrays, optional
        Instance maps, needed when ``recipe.border_weights``.
    seed : int, optional
        The loader's seed (shuffling); ``recipe.seed`` by default.

    Returns
    -------
    torch.utils.data.DataLoader
        Batches ``(image (B, 1, P, P), mask (B, P, P)[, weight (B, P, P)])``.
    """
    from medseg_course.data.augment import AugmentedDataset
    from medseg_course.data.loaders import PatchDataset, make_loader
    from medseg_course.data.weights import unet_weight_map

    r = NucleiRecipe() if recipe is None else recipe
    weight_maps = None
    if r.border_weights:
        if instances is None:
            raise ValueError("recipe.border_weights needs the instance maps: pass instances=[s.instances ...]")
        if len(instances) != len(pairs):
            raise ValueError(f"instances must hold one map per image ({len(pairs)}), got {len(instances)}")
        weight_maps = [unet_weight_map(inst, w0=r.w0, sigma=r.sigma) for inst in instances]
    repeats = crop_repeats(pairs, r.max_repeats)
    pairs = [p for p, k in zip(pairs, repeats) for _ in range(k)]
    if weight_maps is not None:
        weight_maps = [w for w, k in zip(weight_maps, repeats) for _ in range(k)]
    margin = r.margin if r.elastic > 0 else 0
    crops = PatchDataset(pairs, r.patch_size + 2 * margin, patches_per_image=r.patches_per_image,
                         foreground_fraction=r.foreground_fraction, augment=r.flips, weight_maps=weight_maps)
    data = AugmentedDataset(crops, crop=r.patch_size, elastic=r.elastic, std=r.elastic_std, gamma=r.gamma,
                            brightness_contrast=r.brightness_contrast, noise=r.noise)
    return make_loader(data, batch_size=r.batch_size, shuffle=True, drop_last=True,
                       seed=r.seed if seed is None else seed)


def train_nuclei_unet(model: nn.Module | None = None, rt=None, *, recipe: NucleiRecipe | None = None,
                      epochs: int | None = None, train=None, val=None, progress: bool = True):
    """Train a U-Net on DSB2018 nuclei with the course's recipe.

    Introduced in 08_unet.

    Parameters
    ----------
    model : nn.Module, optional
        Takes ``(B, 1, H, W)`` and returns ``(B, 1, H, W)`` logits; :func:`build_model` of the
        recipe by default. Trained in place.
    rt : Runtime, optional
        From :func:`medseg_course.runtime.setup`: its device, and its budget through
        ``rt.budget(full=recipe.epochs, fast=recipe.fast_epochs)``. Without it: the CPU/GPU that
        :func:`~medseg_course.runtime.choose_device` picks, and the fast budget if
        ``MEDSEG_FAST=1``.
    recipe : NucleiRecipe, optional
        ``rt.budget(full=NucleiRecipe(), fast=FAST_RECIPE)`` by default.
    epochs : int, optional
        Overrides the budget's number of epochs.
    train, val : list of (image, mask) pairs, optional
        Training and validation data; the DSB2018 train and val splits (:func:`nuclei_inputs`)
        by default. ``train`` may be ``(samples, pairs)`` from :func:`nuclei_inputs`, which the
        border weights need (instance maps).
    progress : bool, default True

    Returns
    -------
    model : nn.Module
        Trained, in eval mode, with the weights of its best validation epoch.
    history : History
        Learning curves (``viz.plot_history``).
    """
    from medseg_course.data.loaders import ImageDataset, make_loader
    from medseg_course.runtime import choose_device, fast_mode
    from medseg_course.train import TrainConfig, fit

    fast = rt.fast if rt is not None else fast_mode()
    r = recipe if recipe is not None else (FAST_RECIPE if fast else NucleiRecipe())
    if not isinstance(r, NucleiRecipe):
        raise TypeError(f"recipe must be a NucleiRecipe, got {type(r).__name__}")
    if epochs is None:
        epochs = rt.budget(full=r.epochs, fast=r.fast_epochs) if rt is not None else (
            r.fast_epochs if fast else r.epochs)
    device = rt.device if rt is not None else choose_device()
    instances = None
    if train is None:
        samples, train = nuclei_inputs("train")
        instances = [s.instances for s in samples]
    elif isinstance(train, tuple) and len(train) == 2 and isinstance(train[1], list):
        samples, train = train
        instances = [s.instances for s in samples]
    if val is None:
        _, val = nuclei_inputs("val", n=6 if fast else None)
    model = build_model(r) if model is None else model
    loader = make_train_loader(train, r, instances=instances)
    val_loader = make_loader(ImageDataset(val), batch_size=1) if val else None
    config = TrainConfig(epochs=int(epochs), lr=r.lr, weight_decay=r.weight_decay, lr_schedule=r.lr_schedule,
                         batch_size=r.batch_size, seed=r.seed)
    history = fit(model, loader, val_loader, make_loss(r), config, device=device, progress=progress)
    return model.eval(), history


# --------------------------------------------------------------------------------------------
# inference and evaluation
# --------------------------------------------------------------------------------------------


_DIHEDRAL = [(k, flip) for flip in (False, True) for k in range(4)]  # the 8 flips/rotations of a square


def predict_nuclei(model: nn.Module, image, *, tta: bool = True, device=None) -> np.ndarray:
    """Foreground probability of one image, optionally averaged over its 8 flips and rotations.

    Introduced in 08_unet.

    Parameters
    ----------
    model : nn.Module
        Returns ``(B, 1, H, W)`` binary logits (or ``(B, K, H, W)``, nuclei = classes 1..K-1).
    image : (1, H, W) array or tensor
        A :func:`nuclei_inputs` image.
    tta : bool, default True
        Test-time augmentation: run the model on the image rotated by 0, 90, 180, 270 degrees,
        with and without a flip, undo each transform on the output, and average the
        probabilities.
    device : torch.device or str, optional
        The model's device by default.

    Returns
    -------
    (H, W) float32 ndarray
        Probability of nucleus.

    Examples
    --------
    >>> model = build_model(FAST_RECIPE)
    >>> predict_nuclei(model, np.zeros((1, 24, 30), np.float32)).shape
    (24, 30)
    """
    x = torch.as_tensor(np.asarray(image, dtype=np.float32) if not isinstance(image, torch.Tensor) else image)
    if x.ndim != 3:
        raise ValueError(f"image must be (C, H, W), got shape {tuple(x.shape)}")
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    x = x[None].to(device)  # (1, C, H, W)
    total = None
    try:
        with torch.no_grad():
            for k, flip in (_DIHEDRAL if tta else [(0, False)]):
                t = x.flip(-1) if flip else x
                t = torch.rot90(t, k, dims=(-2, -1))
                logits = model(t).float()  # (1, K, h, w)
                probs = torch.sigmoid(logits[:, :1]) if logits.shape[1] == 1 else \
                    1 - torch.softmax(logits, dim=1)[:, :1]  # (1, 1, h, w)
                probs = torch.rot90(probs, -k, dims=(-2, -1))
                probs = probs.flip(-1) if flip else probs
                total = probs if total is None else total + probs
    finally:
        model.train(was_training)
    return (total[0, 0] / (8 if tta else 1)).cpu().numpy().astype(np.float32)


def postprocess(mask, *, min_size: int = 0, fill_holes: bool = True) -> np.ndarray:
    """Fill holes inside objects and remove objects smaller than ``min_size`` pixels.

    Introduced in 08_unet.

    Parameters
    ----------
    mask : (H, W) bool array
    min_size : int, default 0
        Connected components (8-connectivity) with fewer pixels are removed.
    fill_holes : bool, default True

    Returns
    -------
    (H, W) bool ndarray

    Examples
    --------
    >>> m = np.zeros((7, 7), bool); m[1:5, 1:5] = True; m[2, 2] = False; m[6, 6] = True
    >>> out = postprocess(m, min_size=2)
    >>> bool(out[2, 2]), bool(out[6, 6])
    (True, False)
    """
    m = np.asarray(mask).astype(bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be (H, W), got shape {m.shape}")
    if isinstance(min_size, bool) or not isinstance(min_size, numbers.Integral) or min_size < 0:
        raise ValueError(f"min_size must be a non-negative int, got {min_size!r}")
    if fill_holes:
        m = ndimage.binary_fill_holes(m)
    if min_size > 1:
        labels, n = ndimage.label(m, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        small = sizes < min_size
        small[0] = False
        m = m & ~small[labels]
    return m


def instance_f1(pred, instances, *, iou: float = 0.5) -> tuple[float, int, int, int]:
    """How many nuclei a binary prediction recovers as separate objects: F1 at an IoU threshold.

    Introduced in 08_unet.

    Parameters
    ----------
    pred : (H, W) bool array
        Predicted mask; its connected components (4-connectivity) are the predicted nuclei.
    instances : (H, W) int array
        True nuclei, 0 = background.
    iou : float, default 0.5
        A predicted and a true nucleus match when their IoU exceeds this (above 0.5 a nucleus can
        match at most one object, so matches are one-to-one).

    Returns
    -------
    f1 : float
        ``2 TP / (n_pred + n_true)`` (1.0 when both are empty).
    tp, n_pred, n_true : int

    Notes
    -----
    Pixel Dice barely notices two touching nuclei predicted as one blob; this count does: the
    blob matches neither nucleus (its IoU with each is about 0.5 or less), two misses and one
    false object.

    Examples
    --------
    >>> inst = np.zeros((5, 9), int); inst[1:4, 1:4] = 1; inst[1:4, 4:7] = 2   # two touching nuclei
    >>> instance_f1(inst > 0, inst)[:3]   # predicted as one blob
    (0.0, 0, 1)
    >>> gap = inst > 0; gap[:, 4] = False   # a one-pixel gap separates them
    >>> round(instance_f1(gap, inst)[0], 3)
    1.0
    """
    if not 0 < iou < 1:
        raise ValueError(f"iou must be in (0, 1), got {iou!r}")
    p = np.asarray(pred).astype(bool)
    t = np.asarray(instances)
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"pred and instances must be (H, W) arrays of one shape, got {p.shape} and {t.shape}")
    labels, n_pred = ndimage.label(p)
    true_ids = np.unique(t[t > 0])
    n_true = int(true_ids.size)
    if n_pred == 0 or n_true == 0:
        return (1.0 if n_pred == n_true else 0.0), 0, int(n_pred), n_true
    t_idx = np.where(t > 0, np.searchsorted(true_ids, t) + 1, 0)  # true nuclei numbered 1 .. n_true
    inter = np.zeros((n_pred + 1, n_true + 1), np.int64)
    np.add.at(inter, (labels.ravel(), t_idx.ravel()), 1)
    area_p, area_t = inter.sum(1), inter.sum(0)
    union = area_p[1:, None] + area_t[None, 1:] - inter[1:, 1:]
    tp = int(np.count_nonzero(inter[1:, 1:] > iou * union))
    return 2 * tp / (n_pred + n_true), tp, int(n_pred), n_true


def dice_by_offset(pred, truth, max_offset: int = 3) -> np.ndarray:
    """Dice of a prediction whose outline is moved out or in by whole pixels: how much of the error is an offset.

    Introduced in 08_unet.

    Parameters
    ----------
    pred, truth : (H, W) bool arrays
        Predicted and true masks.
    max_offset : int, default 3
        Offsets ``-max_offset .. max_offset`` pixels are tried: ``k > 0`` grows the prediction by
        ``k`` binary dilations, ``k < 0`` shrinks it by ``-k`` erosions (4-connectivity, a diamond
        of radius ``|k|``).

    Returns
    -------
    (2 * max_offset + 1,) float ndarray
        Dice for offsets ``-max_offset, ..., 0, ..., max_offset``; entry ``max_offset`` is the
        prediction as it is.

    Notes
    -----
    Taking the best entry per image is an **oracle**: it looks at the truth to choose. Its mean
    over a split bounds what any rule that only moves outlines (a threshold, a dilation) could
    gain, and shows where annotators drew outlines wider or tighter than the model learned.

    Examples
    --------
    >>> truth = np.zeros((9, 9), bool); truth[2:7, 2:7] = True
    >>> pred = np.zeros((9, 9), bool); pred[3:6, 3:6] = True      # one pixel too tight on every side
    >>> scores = dice_by_offset(pred, truth, max_offset=1)
    >>> [round(float(s), 3) for s in scores], int(np.argmax(scores)) - 1
    ([0.077, 0.529, 0.913], 1)
    """
    from medseg_course import metrics

    p, t = np.asarray(pred).astype(bool), np.asarray(truth).astype(bool)
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"pred and truth must be (H, W) masks of one shape, got {p.shape} and {t.shape}")
    if isinstance(max_offset, bool) or not isinstance(max_offset, numbers.Integral) or max_offset < 0:
        raise ValueError(f"max_offset must be a non-negative int, got {max_offset!r}")
    grown, shrunk = [p], [p]
    for _ in range(int(max_offset)):
        grown.append(ndimage.binary_dilation(grown[-1]))
        shrunk.append(ndimage.binary_erosion(shrunk[-1]))
    masks = shrunk[:0:-1] + grown  # offsets -max .. -1, then 0 .. +max
    return np.array([metrics.dice(m, t) for m in masks])


@dataclass
class NucleiScores:
    """Per-image Dice of a model on a DSB2018 split, with per-category means.

    Introduced in 08_unet.

    Attributes
    ----------
    dice : (N,) ndarray
    case_ids, categories : list of str
    split : str
    masks : list of (H, W) bool ndarray
        The predicted masks (after postprocessing).
    """

    dice: np.ndarray
    case_ids: list
    categories: list
    split: str
    masks: list = dataclasses.field(default_factory=list, repr=False)

    @property
    def mean(self) -> float:
        """Mean per-image Dice over the split."""
        return float(np.mean(self.dice))

    def by_category(self) -> dict[str, tuple[int, float]]:
        """``{category: (number of images, mean Dice)}`` with short names, plus ``"all"``."""
        cats = [short_category(c) for c in self.categories]
        out = {c: (int(sum(k == c for k in cats)), float(np.mean([d for d, k in zip(self.dice, cats) if k == c])))
               for c in sorted(set(cats))}
        out["all"] = (len(cats), self.mean)
        return out

    def table(self) -> str:
        """The per-category means as aligned text."""
        lines = [f"{'category':<24}{'n':>4}{'Dice':>8}"]
        lines += [f"{c:<24}{n:>4}{d:>8.3f}" for c, (n, d) in self.by_category().items()]
        return "\n".join(lines)


def evaluate_nuclei(model: nn.Module, split="val", *, tta: bool = True, threshold: float = 0.5,
                    min_size: int = 0, fill_holes: bool = True, device=None, n: int | None = None,
                    keep_masks: bool = False) -> NucleiScores:
    """Per-image Dice of ``model`` on a DSB2018 split, with test-time augmentation and postprocessing.

    Introduced in 08_unet.

    Parameters
    ----------
    model : nn.Module
        Takes :func:`nuclei_inputs` images ``(B, 1, H, W)``, returns binary logits.
    split : str or (samples, pairs), default "val"
        A split name (``"val"``, ``"test"``), or the output of :func:`nuclei_inputs`.
    tta : bool, default True
        See :func:`predict_nuclei`.
    threshold : float, default 0.5
    min_size : int, default 0
    fill_holes : bool, default True
        See :func:`postprocess`.
    device : torch.device or str, optional
    n : int, optional
        Only the first ``n`` images of the split.
    keep_masks : bool, default False
        Keep the predicted masks in the result.

    Returns
    -------
    NucleiScores
    """
    from medseg_course import metrics

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    samples, pairs = nuclei_inputs(split, n=n) if isinstance(split, str) else split
    dice, masks = [], []
    for image, truth in pairs:
        prob = predict_nuclei(model, image, tta=tta, device=device)
        pred = postprocess(prob > threshold, min_size=min_size, fill_holes=fill_holes)
        dice.append(metrics.dice(pred, truth > 0))
        if keep_masks:
            masks.append(pred)
    name = split if isinstance(split, str) else getattr(samples[0], "split", "custom") if samples else "custom"
    return NucleiScores(dice=np.asarray(dice), case_ids=[s.case_id for s in samples],
                        categories=[s.category for s in samples], split=str(name), masks=masks)
