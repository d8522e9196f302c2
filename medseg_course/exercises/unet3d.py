"""Questions of notebook 09_unet3d: the activation memory of a 3D U-Net's encoder, the loss masked
to the labelled voxels of a sparse annotation, and a trained 3D network scored on held-out volumes.

Introduced in 09_unet3d.
"""

from __future__ import annotations

import copy
import functools
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from medseg_course.exercises.engine import (
    Case,
    FunctionQuestion,
    Incorrect,
    ModelQuestion,
    Question,
    as_number,
    describe,
)
from medseg_course.exercises.engine import summary as _summary

NOTEBOOK = "09_unet3d"


# -- 1. activation memory of a 3D U-Net's encoder ----------------------------------------------------

def reference_encoder_activation_bytes(batch, features, spatial_shape, bytes_per_element=4) -> int:
    """Bytes of the feature maps output by the levels of a 3D U-Net's encoder.

    Introduced in 09_unet3d.

    Parameters
    ----------
    batch : int
        Volumes per batch ``B``.
    features : sequence of int
        Channels of each level, ``features[0]`` at full resolution (``UNet3D(features=...)``).
    spatial_shape : (int, int, int)
        ``(D, H, W)`` of the input.
    bytes_per_element : int, default 4
        4 for float32, 2 for float16/bfloat16.

    Returns
    -------
    int
        ``sum_l B * features[l] * prod(n_l) * bytes_per_element``, with ``n_0 = (D, H, W)`` and each
        level's size half the previous one, rounded down (2x2x2 max pooling).

    Examples
    --------
    >>> reference_encoder_activation_bytes(1, (16, 32), (8, 8, 8))  # 16 * 512 + 32 * 64 elements
    40960
    """
    total, size = 0, [int(n) for n in spatial_shape]
    for level, f in enumerate(features):
        if level > 0:
            size = [n // 2 for n in size]
        total += batch * f * math.prod(size)
    return int(total * bytes_per_element)


#: (batch, features, (D, H, W), bytes per element, what it is)
MEMORY_CASES = (
    (2, (16, 32, 64, 128), (40, 56, 40), 4, "the recipe's UNet3D on the training box, batch 2"),
    (1, (16, 32, 64, 128), (40, 56, 40), 4, "the same, one volume"),
    (4, (8, 16, 32), (32, 48, 32), 2, "a smaller net in float16, batch 4"),
    (1, (32, 64, 128, 256), (64, 64, 64), 4, "a 64^3 crop"),
    (1, (32, 64, 128, 256, 320), (128, 128, 128), 4, "nnU-Net-like, a 128^3 patch"),
    (2, (16, 32, 64), (36, 50, 35), 4, "a volume whose sizes pooling rounds down"),
    (3, (4, 8), (9, 7, 5), 8, "odd sizes, float64"),
    (1, (64, 128, 256, 512), (116, 132, 132), 4, "the paper's input size (Cicek et al.), same padding"),
)


def measured_encoder_bytes(batch, features, spatial_shape, bytes_per_element=4) -> int:
    """The same quantity measured: run the encoder of a ``UNet3D`` level by level and add up the bytes of
    each level's output.

    Introduced in 09_unet3d.

    Notes
    -----
    The network runs on PyTorch's ``meta`` device, which computes every output's shape (and
    dtype) without computing, or storing, any value: the real modules, at no cost. The channel
    count of each output is ``features[level]`` by construction; the measured quantity is the
    spatial size that the convolutions and poolings produce.

    Examples
    --------
    >>> measured_encoder_bytes(1, (16, 32), (8, 8, 8))
    40960
    """
    from medseg_course.models import UNet3D

    dtype = {2: torch.bfloat16, 4: torch.float32, 8: torch.float64}[int(bytes_per_element)]
    with torch.device("meta"):  # weights made on the meta device too: no memory, no initialisation cost
        model = UNet3D(1, 1, features=list(features), norm=None).to(dtype=dtype).eval()
    x = torch.zeros(batch, 1, *spatial_shape, device="meta", dtype=dtype)
    total = 0
    with torch.no_grad():
        for level in range(len(features)):
            x = model.encoder0(x) if level == 0 else model.downs[level - 1](x)  # (B, features[level], *n_level)
            total += x.numel() * x.element_size()
    return int(total)


def encoder_memory_table(fn=reference_encoder_activation_bytes) -> list[dict]:
    """Every case of :data:`MEMORY_CASES` with ``fn``'s bytes and the measured bytes.

    Introduced in 09_unet3d.

    Examples
    --------
    >>> rows = encoder_memory_table()
    >>> all(r["formula"] == r["measured"] for r in rows)
    True
    """
    rows = []
    for b, f, shape, nbytes, label in MEMORY_CASES:
        rows.append(dict(batch=b, features=f, shape=shape, bytes_per_element=nbytes, what=label,
                         formula=fn(b, f, shape, nbytes), measured=measured_encoder_bytes(b, f, shape, nbytes)))
    return rows


def _memory_cases(device):
    for b, f, shape, nbytes, label in MEMORY_CASES:
        yield Case((b, f, shape), dict(bytes_per_element=nbytes), label=label)


def _encoder_variant(batch, features, shape, nbytes, *, halve=None, floor=True, first_pooled=False):
    total, size = 0.0, [float(n) for n in shape]
    halve = range(len(shape)) if halve is None else halve
    for level, f in enumerate(features):
        if level > 0 or first_pooled:
            size = [(n // 2 if floor else n / 2) if i in halve else n for i, n in enumerate(size)]
        total += batch * f * math.prod(size)
    return total * nbytes


def _compare_memory(got, expected, case):
    b, f, shape = case.args
    nbytes = case.kwargs["bytes_per_element"]
    value = as_number(got, what="Your function", unit="bytes")
    if value == expected:
        return
    if b > 1 and math.isclose(value * b, expected):
        raise Incorrect("You forgot the batch: every volume of the batch has its own feature maps, so multiply "
                        "by the batch size B.")
    if nbytes > 1 and math.isclose(value * nbytes, expected):
        raise Incorrect("That is a number of elements, not of bytes: multiply by bytes_per_element (4 for float32).")
    if math.isclose(value, expected * 8):
        raise Incorrect("That is a number of bits: one byte is 8 bits, and bytes_per_element already counts bytes.")
    if math.isclose(value, _encoder_variant(b, f, shape, nbytes, halve=(1, 2))) and len(f) > 1:
        raise Incorrect("Your deeper levels are too large: you halved only H and W, as in 2D. A 3D max pooling "
                        "halves D as well, so each level has 8 times fewer voxels than the one above, not 4.")
    if math.isclose(value, b * f[0] * math.prod(shape) * nbytes):
        raise Incorrect("You counted the first level only: add the feature maps of every level of the encoder, "
                        "features[0] at full size, features[1] at half size, and so on.")
    if math.isclose(value, _encoder_variant(b, f, shape, nbytes, floor=False)):
        raise Incorrect("Your sizes are not whole numbers of voxels: max pooling with a 2x2x2 window drops an odd "
                        "last slice, so each size is n // 2, rounded down at every level.")
    if math.isclose(value, _encoder_variant(b, f, shape, nbytes, first_pooled=True)):
        raise Incorrect("Level 0 is at the input's full resolution: the first pooling comes after it.")
    if len(f) > 1 and math.isclose(value, _encoder_variant(b, f[:-1], shape, nbytes)):
        raise Incorrect("You left out the deepest level, the bottleneck: it is a level of the encoder too "
                        "(len(features) levels in all, the last one with features[-1] channels).")
    if math.isclose(value, 2 * expected):
        raise Incorrect("You counted two maps per level, one for each convolution. Count one map per level: the "
                        "output of its double convolution (the first convolution's output has the same size; the "
                        "question is about the level outputs).")
    raise Incorrect(f"Your function returned {value:g} bytes, which is not what the encoder holds. For each level l: "
                    "B * features[l] * D_l * H_l * W_l elements, with every size halved (rounded down) from one "
                    "level to the next; add the levels and multiply by bytes_per_element.")


activation_memory = FunctionQuestion(
    NOTEBOOK, "activation_memory", "Activation memory of a 3D U-Net's encoder", points=1,
    reference=reference_encoder_activation_bytes, cases=_memory_cases, compare=_compare_memory,
    hints=["One feature map (B, C, D, H, W) of float32 holds B * C * D * H * W numbers of 4 bytes each.",
           "Level l has features[l] channels and sizes (D // 2**l, H // 2**l, W // 2**l), halving one level at a "
           "time and rounding down each time; sum over the levels.",
           "size = list(spatial_shape); total = 0; for level, f in enumerate(features): (if level: size = "
           "[n // 2 for n in size]); total += batch * f * prod(size); return total * bytes_per_element"],
    solution_code='''
    def my_encoder_activation_bytes(batch, features, spatial_shape, bytes_per_element=4):
        size, total = list(spatial_shape), 0
        for level, channels in enumerate(features):
            if level > 0:
                size = [n // 2 for n in size]      # 2x2x2 max pooling, rounding down
            total += batch * channels * size[0] * size[1] * size[2]
        return total * bytes_per_element
    ''',
)


# -- 2. the loss masked to labelled voxels -------------------------------------------------------

def reference_masked_cross_entropy(logits, target, ignore_index=-1) -> torch.Tensor:
    """Cross-entropy averaged over the labelled voxels only (sparse annotation).

    Introduced in 09_unet3d.

    Parameters
    ----------
    logits : (B, C, *spatial) torch.Tensor
    target : (B, *spatial) integer torch.Tensor
        Labels ``0 .. C - 1``, or ``ignore_index`` where the voxel is not annotated.
    ignore_index : int, default -1

    Returns
    -------
    torch.Tensor
        A scalar: ``sum_i m_i l_i / sum_i m_i`` with ``l_i = -log softmax(z_i)[y_i]`` and ``m_i``
        1 on labelled voxels, 0 elsewhere; 0 (with a gradient of zeros) when no voxel is labelled.

    Examples
    --------
    >>> logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])  # (B=1, C=2, W=2)
    >>> reference_masked_cross_entropy(logits, torch.tensor([[0, -1]]))  # the first voxel alone
    tensor(0.1269)
    """
    labelled = target != ignore_index  # (B, *spatial)
    safe = target.masked_fill(~labelled, 0)  # any valid class: its loss is multiplied by 0
    loss = F.cross_entropy(logits, safe, reduction="none")  # (B, *spatial)
    m = labelled.to(loss.dtype)
    return (loss * m).sum() / m.sum().clamp_min(1)


def _sparse_case(shape, classes, labelled, seed, ignore=-1, per_image=None):
    g = torch.Generator().manual_seed(seed)
    B = shape[0]
    logits = (2 * torch.randn(B, classes, *shape[1:], generator=g)).requires_grad_()
    target = torch.randint(0, classes, shape, generator=g)
    keep = torch.rand(shape, generator=g) < labelled
    if per_image is not None:  # a different share of labelled voxels in each image
        keep = torch.stack([torch.rand(shape[1:], generator=g) < p for p in per_image])
    return logits, target.masked_fill(~keep, ignore)


def _loss_cases(device):
    logits, target = _sparse_case((2, 4, 5, 6), 3, 0.3, 0)
    yield Case((logits, target), label="3 classes, volumes 4x5x6, 30 % of the voxels labelled")
    logits, target = _sparse_case((2, 6, 8, 8), 3, 0.5, 1, per_image=(0.05, 0.9))
    yield Case((logits, target), label="two volumes, 5 % and 90 % of their voxels labelled")
    logits, target = _sparse_case((1, 3, 4, 4), 2, 1.0, 2)
    yield Case((logits, target), label="every voxel labelled")
    logits, target = _sparse_case((2, 3, 4, 5), 4, 0.4, 3, ignore=255)
    yield Case((logits, target), dict(ignore_index=255), label="ignore_index=255")
    logits, target = _sparse_case((3, 7, 9), 3, 0.2, 4)
    yield Case((logits, target), label="2D images (B, C, H, W)")
    logits, target = _sparse_case((1, 3, 4, 4), 3, 0.0, 5)
    yield Case((logits, target), label="no voxel labelled at all")


def _compare_loss(got, expected, case):
    logits, target = case.args[:2]
    ignore = case.kwargs.get("ignore_index", -1)
    if isinstance(got, (float, int, np.floating)):
        raise Incorrect("Your function returned a Python number: return the torch tensor itself (loss.item() or "
                        "float(loss) cut it off from autograd, and training needs its gradient).")
    if not isinstance(got, torch.Tensor):
        raise Incorrect(f"Your function should return a scalar torch tensor, but it returned {describe(got)}.")
    if got.numel() != 1:
        raise Incorrect(f"Your loss has shape {tuple(got.shape)}: reduce it to one number (a scalar), the mean "
                        "over the labelled voxels.")
    g = float(got.detach().reshape(()))
    e = float(expected.detach())
    labelled = target != ignore
    if not math.isfinite(g):
        if not labelled.any():
            raise Incorrect("Your loss is NaN when no voxel is labelled (0 / 0). Such a batch happens with very "
                            "sparse labels: return 0 then, e.g. divide by mask.sum().clamp_min(1).")
        raise Incorrect(f"Your loss is {g}: look for a log of zero or a division by zero.")
    if math.isclose(g, e, rel_tol=1e-5, abs_tol=1e-6):
        return
    with torch.no_grad():
        ce = F.cross_entropy(logits, target.masked_fill(~labelled, 0), reduction="none")
        m = labelled.float()
        alts = [
            ((ce * m).sum() / m.numel(), "You divided by the number of ALL voxels: the mean runs over the labelled "
                                         "ones only, so divide by the number of labelled voxels."),
            (ce.mean(), "You counted the unlabelled voxels as background (label 0): they must not count at all, "
                        "neither in the sum nor in the number of voxels you divide by."),
            ((ce * m).sum(), "That is the sum of the losses: divide it by the number of labelled voxels."),
            (torch.stack([(c * k).sum() / k.sum().clamp_min(1) for c, k in zip(ce, m)]).mean(),
             "You averaged each volume on its own, then the volumes: every labelled voxel must weigh the same, "
             "so divide the sum over the whole batch by the number of labelled voxels in the whole batch."),
        ]
    for alt, msg in alts:
        if math.isclose(g, float(alt), rel_tol=1e-5, abs_tol=1e-6):
            raise Incorrect(msg)
    if ignore != -1:
        raise Incorrect(f"Your loss is wrong when ignore_index={ignore}: use the ignore_index argument, not -1 "
                        "written into the code.")
    raise Incorrect(f"Your loss is {g:.6g}, which is not the mean cross-entropy of the labelled voxels. Per voxel "
                    "the loss is -log softmax(logits)[label]; average it over the voxels whose label is not "
                    "ignore_index.")


class _MaskedLossQuestion(FunctionQuestion):
    """Checks the values, then that the gradient reaches labelled voxels only, and as the reference's."""

    def grade(self, answer):
        super().grade(answer)
        for case in self.cases(self.device):
            logits, target = case.args
            kwargs = copy.deepcopy(case.kwargs)
            ignore = kwargs.get("ignore_index", -1)
            mine = logits.detach().clone().requires_grad_()
            ref = logits.detach().clone().requires_grad_()
            loss = answer(mine, target.clone(), **kwargs)
            if isinstance(loss, torch.Tensor) and loss.grad_fn is None and not (target != ignore).any():
                raise Incorrect("When no voxel is labelled, your loss is a constant cut off from autograd (such as "
                                "torch.tensor(0.)), and training calls .backward() on every batch's loss, which "
                                "fails on it. Return a zero that still depends on the logits: divide the masked "
                                "sum by mask.sum().clamp_min(1), or return logits.sum() * 0."
                                f"\n  on the inputs {case.describe()}")
            if not isinstance(loss, torch.Tensor) or loss.grad_fn is None:
                raise Incorrect("Your loss has no gradient: it was computed outside autograd (with .item(), "
                                ".detach(), NumPy or under torch.no_grad()). Keep every step in torch."
                                f"\n  on the inputs {case.describe()}")
            loss.reshape(()).backward()
            self.reference(ref, target.clone(), **copy.deepcopy(case.kwargs)).backward()
            grad = mine.grad if mine.grad is not None else torch.zeros_like(mine)
            unlabelled = (target == ignore).unsqueeze(1).expand_as(grad)
            if torch.any(grad[unlabelled] != 0):
                raise Incorrect("Unlabelled voxels receive a gradient from your loss: their logits must not "
                                "influence it at all (mask the per-voxel losses, not the logits)."
                                f"\n  on the inputs {case.describe()}")
            if not torch.allclose(grad, ref.grad, rtol=1e-4, atol=1e-7):
                raise Incorrect("Your loss has the right value but not the right gradient: compute it from the "
                                "logits with differentiable torch operations."
                                f"\n  on the inputs {case.describe()}")


masked_loss = _MaskedLossQuestion(
    NOTEBOOK, "masked_loss", "Cross-entropy on the labelled voxels only", points=2,
    reference=reference_masked_cross_entropy, cases=_loss_cases, compare=_compare_loss,
    hints=["Compute the cross-entropy of every voxel with F.cross_entropy(..., reduction='none'); it needs valid "
           "labels everywhere, so first replace ignore_index by any class (e.g. 0) in a copy of the target.",
           "Then multiply the per-voxel losses by a 0/1 mask of the labelled voxels (target != ignore_index), sum, "
           "and divide by the number of labelled voxels; use .clamp_min(1) so that a batch without labels gives 0.",
           "labelled = target != ignore_index; loss = F.cross_entropy(logits, target.masked_fill(~labelled, 0), "
           "reduction='none'); m = labelled.float(); return (loss * m).sum() / m.sum().clamp_min(1)"],
    solution_code='''
    def my_masked_cross_entropy(logits, target, ignore_index=-1):
        labelled = target != ignore_index                      # (B, *spatial)
        safe = target.masked_fill(~labelled, 0)                # a valid class; its loss is masked below
        loss = F.cross_entropy(logits, safe, reduction="none") # (B, *spatial)
        m = labelled.float()
        return (loss * m).sum() / m.sum().clamp_min(1)
    ''',
)


# -- 3. a trained 3D network, scored on held-out volumes ------------------------------------------

#: The held-out volumes: the Hippocampus test split, which the notebook never loads.
HELD_OUT_SPLIT = "test"
#: Mean Dice (anterior and posterior, per case) a trained model must reach on them.
MODEL_GOAL = 0.65


@functools.lru_cache(maxsize=1)
def _held_out():
    from medseg_course.recipes.hippocampus import load_hippocampus

    return tuple(load_hippocampus(HELD_OUT_SPLIT))


def held_out_dice(model: nn.Module, device=None) -> float:
    """Mean Dice of ``model`` over the anterior and posterior hippocampus of the held-out volumes.

    Introduced in 09_unet3d.

    Parameters
    ----------
    model : nn.Module
        Takes ``(B, 1, D, H, W)`` z-scored volumes (as ``load_dataset`` gives them) and returns
        logits ``(B, 3, D, H, W)``; or a 2D network (``spatial_dims == 2``), run slice by slice.
    device : optional
        Where the model runs; its own device by default.

    Returns
    -------
    float
        :func:`~medseg_course.recipes.hippocampus.evaluate_hippocampus` on the test split, with
        the recipe's sliding window and largest-component postprocessing, without test-time flips.
    """
    from medseg_course.recipes.hippocampus import evaluate_hippocampus

    return evaluate_hippocampus(model, samples=_held_out(), tta=False, lcc=True, device=device).mean


#: Budget of the reference model: epochs, training volumes (None: all 143) and widths, per mode.
REFERENCE_BUDGET = {"fast": dict(epochs=3, volumes=32, features=(12, 24, 48, 96)),
                    "full": dict(epochs=8, volumes=None, features=(16, 32, 64, 128))}


def train_reference_unet3d(epochs: int | None = None, *, device=None, progress: bool = False) -> nn.Module:
    """The reference answer of :data:`train_unet3d`: the course's recipe with a small budget.

    Introduced in 09_unet3d.

    Parameters
    ----------
    epochs : int, optional
        :data:`REFERENCE_BUDGET` for the runtime's budget by default (``MEDSEG_FAST=1``: fast, 3
        epochs on the first 32 training volumes, 48 steps).
    device : optional
    progress : bool, default False

    Returns
    -------
    UNet3D
        In eval mode, on ``device``.

    Notes
    -----
    Width matters more than depth of training here: with 8 channels in the first level, 150 steps
    did not learn the anterior class at all (Dice 0), where 12 or 16 channels learned both
    classes within 50 steps.
    """
    from medseg_course.recipes.hippocampus import HippocampusRecipe, load_hippocampus, train_hippocampus
    from medseg_course.runtime import fast_mode

    budget = REFERENCE_BUDGET["fast" if fast_mode() else "full"]
    recipe = HippocampusRecipe(epochs=budget["epochs"] if epochs is None else epochs, features=budget["features"])
    model, _ = train_hippocampus(recipe, load_hippocampus("train", budget["volumes"]), device=device,
                                 progress=progress)
    return model


train_unet3d = ModelQuestion(
    NOTEBOOK, "train_unet3d", f"Train a 3D network that reaches a mean Dice of {MODEL_GOAL} on held-out volumes",
    points=3, reference=train_reference_unet3d, evaluate=held_out_dice, threshold=MODEL_GOAL,
    metric="mean Dice (anterior, posterior)",
    hints_below=("Look at the training loss: if it still falls, train for more epochs; if it is stuck, check that "
                 "the network has 3 output channels and that the loss sees the labels 0, 1 and 2. Flipping along "
                 "axis D or H teaches the network that the head of the hippocampus can be where its tail is: "
                 "flip along W only."),
    hints=["The recipe does the work: recipe.train_hippocampus(HippocampusRecipe(epochs=...), train_volumes, "
           "device=rt.device) returns (model, history).",
           "Use rt.budget(full=..., fast=...) for the epochs, so that the grader's fast run stays short: 3 epochs "
           "on 32 volumes (48 steps) already pass in fast mode.",
           "Width matters: features (12, 24, 48, 96) or (16, 32, 64, 128) learn both classes within 50 steps; with 8 "
           "channels in the first level the anterior class was still not found after 150 steps."],
    solution_code='''
    my_model, my_history = recipe.train_hippocampus(
        HippocampusRecipe(epochs=rt.budget(full=8, fast=3),
                          features=rt.budget(full=(16, 32, 64, 128), fast=(12, 24, 48, 96))),
        recipe.load_hippocampus("train", rt.budget(full=None, fast=32)), device=rt.device)
    ''',
)

QUESTIONS: list[Question] = [activation_memory, masked_loss, train_unet3d]


def summary():
    """Show this notebook's progress table. Introduced in 09_unet3d."""
    return _summary(QUESTIONS)


__all__ = ["QUESTIONS", "summary", "activation_memory", "masked_loss", "train_unet3d", "MEMORY_CASES",
           "MODEL_GOAL", "REFERENCE_BUDGET", "encoder_memory_table", "measured_encoder_bytes",
           "held_out_dice", "train_reference_unet3d", "reference_encoder_activation_bytes",
           "reference_masked_cross_entropy"]
