"""Questions of notebook 06_cnn: a 2D convolution by hand, the output-size formula, the receptive
field of a layer stack, and a trained patch classifier (model-graded on held-out DSB2018 images).

Introduced in 06_cnn.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F

from medseg_course import cnn_basics
from medseg_course.exercises.engine import (
    CallWatcher,
    Case,
    FunctionQuestion,
    Incorrect,
    ModelQuestion,
    Question,
    as_number,
    compare_values,
    describe,
)
from medseg_course.exercises.engine import summary as _summary

NOTEBOOK = "06_cnn"


# -- 1. a 2D convolution by hand -----------------------------------------------------------------

def reference_conv2d(x, weight, bias=None, stride=1, padding=0):
    """2D cross-correlation with stride and zero padding, as ``torch.nn.functional.conv2d``
    (delegates to :func:`medseg_course.cnn_basics.conv2d_reference`).

    Introduced in 06_cnn.
    """
    return cnn_basics.conv2d_reference(x, weight, bias, stride=stride, padding=padding)


def _conv_cases(device):
    g = torch.Generator().manual_seed(60)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device)

    yield Case((randn(1, 1, 6, 7), randn(1, 1, 3, 3)),
               label="one 6x7 image, one 3x3 kernel, no bias, stride 1, no padding")
    yield Case((randn(2, 3, 8, 9), randn(4, 3, 3, 2), randn(4)), {"padding": 1},
               label="2 images of 3 channels, 4 filters of 3x2, a bias, padding 1")
    yield Case((randn(1, 2, 11, 10), randn(3, 2, 5, 5), randn(3)), {"stride": 2, "padding": 2},
               label="an 11x10 image of 2 channels, 3 filters of 5x5, stride 2, padding 2")
    yield Case((randn(2, 2, 10, 10), randn(2, 2, 3, 3), randn(2)), {"stride": 3},
               label="2 input and 2 output channels, 3x3 filters, stride 3")


def _as_tensor(value) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return torch.from_numpy(value.astype(np.float64))
    return None


def _size_diagnosis(n: int, k: int, s: int, p: int) -> dict[int, str]:
    """Output sides of the usual mistakes, mapped to what to say about each."""
    formula = "floor((n + 2 * padding - k) / stride) + 1"
    out = {}
    for size, message in [
        ((n + 2 * p - k) // s, f"one less than expected: the formula ends with + 1 ({formula}); "
                               "a kernel as large as the padded input still gives one output"),
        ((n + p - k) // s + 1, "padding adds zeros on both sides of each axis, so the padded side is "
                               "n + 2 * padding"),
        ((n - k) // s + 1, "the padding is missing: add `padding` zeros on every side first (F.pad)"),
        (n + 2 * p - k + 1, "the stride is ignored: with stride s, compute only every s-th position"),
        (-(-(n + 2 * p - k) // s) + 1, f"the division is rounded up; positions where the kernel would stick "
                                       f"out of the padded input are dropped: {formula}"),
        (n, "the output keeps the input's size, but that only happens for 'same' padding and stride 1"),
    ]:
        out[size] = f"{out[size]}; or {message}" if size in out else message
    return out


def _compare_conv(got, expected, case):
    x, weight = case.args[0], case.args[1]
    bias = case.args[2] if len(case.args) > 2 else None
    stride, padding = case.kwargs.get("stride", 1), case.kwargs.get("padding", 0)
    g = _as_tensor(got)
    if g is None:
        raise Incorrect(f"Your function should return a tensor (or array) of shape {tuple(expected.shape)}, "
                        f"but it returned {describe(got)}.")
    if tuple(g.shape) != tuple(expected.shape):
        B, C_out, H_out, W_out = expected.shape
        if g.ndim != 4:
            raise Incorrect(f"Your output has shape {tuple(g.shape)}; a convolution of a (B, C_in, H, W) batch "
                            f"returns (B, C_out, H_out, W_out) = {tuple(expected.shape)}. Keep the batch axis and "
                            "one output channel per filter (weight.shape[0]).")
        if tuple(g.shape[:2]) != (B, C_out):
            hint = ""
            if g.shape[1] == x.shape[1] and x.shape[1] != C_out:
                hint = (" Your axis 1 has the number of input channels: each output channel sums its "
                        "filter's response over all input channels (weight is (C_out, C_in, kH, kW)).")
            raise Incorrect(f"Your output has shape {tuple(g.shape)}, but (B, C_out, ...) = ({B}, {C_out}, ...) "
                            f"was expected.{hint}")
        if H_out != W_out and tuple(g.shape[2:]) == (W_out, H_out):
            raise Incorrect(f"Your output is (..., {W_out}, {H_out}): height and width are swapped. Keep the "
                            "layout (B, C_out, H_out, W_out): rows (axis 2) come from the input's height and the "
                            "kernel's kH, columns (axis 3) from its width and kW.")
        for axis, name in ((2, "height"), (3, "width")):
            n, k = x.shape[axis], weight.shape[axis]
            if g.shape[axis] != expected.shape[axis]:
                why = _size_diagnosis(n, k, stride, padding).get(int(g.shape[axis]),
                                                                "check the output-size formula in the text")
                raise Incorrect(f"Your output {name} is {g.shape[axis]}, but {expected.shape[axis]} was expected "
                                f"(input {name} {n}, kernel {k}, stride {stride}, padding {padding}): {why}.")
    if not torch.isfinite(g).all():
        raise Incorrect("Your output contains NaN or infinite values: is every output position written "
                        "(torch.empty leaves garbage; start from torch.zeros)?")

    conv = functools.partial(F.conv2d, stride=stride, padding=padding)
    # Tolerance per output value, scaled by the sum of the magnitudes of its terms: an answer that
    # accumulates in float32 (torch.zeros' default dtype) is right, to float32 rounding.
    scale = conv(x.abs(), weight.abs(), None if bias is None else bias.abs())

    def same(other):
        return bool(((g - other.double()).abs() <= 1e-5 * scale + 1e-6).all())

    if same(expected):
        return
    if same(conv(x, weight.flip(2, 3), bias)):
        raise Incorrect("Your result is the true convolution: the kernel is flipped (as in "
                        "scipy.ndimage.convolve). PyTorch's conv2d is a cross-correlation: "
                        "out[i, j] = sum_{u, v} w[u, v] * x[s*i + u, s*j + v], without flipping.")
    if weight.shape[2] > 1 and weight.shape[3] > 1 and (same(conv(x, weight.flip(2), bias))
                                                        or same(conv(x, weight.flip(3), bias))):
        raise Incorrect("Your kernel is flipped along one axis (rows or columns). PyTorch's conv2d does not "
                        "flip it at all: out[i, j] = sum_{u, v} w[u, v] * x[s*i + u, s*j + v].")
    if bias is not None and same(conv(x, weight)):
        raise Incorrect("Your result is right except for the bias: add bias[o] to every pixel of output "
                        "channel o (bias[None, :, None, None] broadcasts it).")
    if weight.shape[0] == weight.shape[1] and same(conv(x, weight.transpose(0, 1), bias)):
        raise Incorrect("You read the weight's channel axes the wrong way round: weight is "
                        "(C_out, C_in, kH, kW), so weight[o, c] is the kernel from input channel c to "
                        "output channel o.")
    C_in = x.shape[1]
    if C_in > 1:
        summed = conv(x, weight)
        with_bias = (lambda t: t) if bias is None else (lambda t: t + bias[None, :, None, None])
        if same(with_bias(summed / C_in)):
            raise Incorrect("Your result is the mean over the input channels; a convolution sums the "
                            "contributions of all input channels.")
        if same(with_bias(conv(x[:, :1], weight[:, :1]))):
            raise Incorrect("Only the first input channel contributes to your result; a convolution sums "
                            "over all C_in input channels.")
    if padding:
        for mode, what in (("replicate", "repeats the border pixels"), ("reflect", "mirrors the image at its border")):
            if same(F.conv2d(F.pad(x, (padding,) * 4, mode=mode), weight, bias, stride=stride)):
                raise Incorrect(f"Your padding {what}; conv2d pads with zeros (F.pad(x, (p, p, p, p)) does).")
    compare_values(g, expected, what="Your output", rtol=1e-6, atol=1e-8)


#: Library functions an answer must not call (the check compares with F.conv2d); nn.Conv2d and nn.Unfold
#: go through these.
_LIBRARY_CONVOLUTIONS = ((F, "conv2d", "F.conv2d / nn.Conv2d"), (torch, "conv2d", "torch.conv2d"),
                         (F, "unfold", "F.unfold / nn.Unfold"))


class ConvolutionQuestion(FunctionQuestion):
    """:class:`FunctionQuestion` that also refuses an answer calling PyTorch's own convolution.

    The check compares with ``F.conv2d``, so an answer that calls it (or ``nn.Conv2d``, or
    ``F.unfold``) would pass without writing the sum the exercise asks for. Introduced in 06_cnn.
    """

    def grade(self, answer):
        if not callable(answer):
            return super().grade(answer)
        calls = CallWatcher(_LIBRARY_CONVOLUTIONS)
        with calls.watching():
            super().grade(calls.watch(answer))  # a wrong result is reported first, whatever it calls
        if calls.used:
            raise Incorrect(f"Your function calls {' and '.join(calls.used)}. The exercise is to write the sum "
                            "yourself (the check compares with F.conv2d, so calling it proves nothing): loop over "
                            "the kernel taps, multiply shifted copies of the padded input by the weights, and add "
                            "them up (hint 2).")


conv2d = ConvolutionQuestion(
    NOTEBOOK, "conv2d", "A 2D convolution (cross-correlation) with stride and padding", points=3,
    reference=reference_conv2d, cases=_conv_cases, compare=_compare_conv,
    hints=["Pad first: xp = F.pad(x, (padding, padding, padding, padding)). The output side is "
           "(n + 2 * padding - k) // stride + 1.",
           "Loop over the kernel taps (u, v), not over pixels: the tap (u, v) multiplies the shifted "
           "image xp[:, :, u : u + stride * (H_out - 1) + 1 : stride, v : ...] (shape (B, C_in, H_out, W_out)) "
           "by weight[:, :, u, v] (shape (C_out, C_in)) and sums over C_in.",
           "torch.einsum('bchw,oc->bohw', shifted, weight[:, :, u, v]) does that product and sum; add it to "
           "an output of zeros, then add bias[None, :, None, None] if there is a bias."],
    solution_code='''
    def my_conv2d(x, weight, bias=None, stride=1, padding=0):
        kh, kw = weight.shape[2:]
        xp = F.pad(x, (padding, padding, padding, padding))
        H_out = (x.shape[2] + 2 * padding - kh) // stride + 1
        W_out = (x.shape[3] + 2 * padding - kw) // stride + 1
        out = x.new_zeros(x.shape[0], weight.shape[0], H_out, W_out)
        for u in range(kh):
            for v in range(kw):
                shifted = xp[:, :, u:u + stride * (H_out - 1) + 1:stride, v:v + stride * (W_out - 1) + 1:stride]
                out += torch.einsum("bchw,oc->bohw", shifted, weight[:, :, u, v])
        if bias is not None:
            out += bias[None, :, None, None]
        return out
    ''',
)


# -- 2. the output-size formula ------------------------------------------------------------------

def reference_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
    """Output side of a convolution or pooling (delegates to
    :func:`medseg_course.cnn_basics.conv_output_size`).

    Introduced in 06_cnn.
    """
    return cnn_basics.conv_output_size(n, kernel_size, stride, padding, dilation)


def _size_cases(device):
    yield Case((28, 3), label="n=28, a 3x3 kernel")
    yield Case((28, 3), {"padding": 1}, label="n=28, kernel 3, padding 1")
    yield Case((43, 3), {"stride": 2}, label="n=43, 3x3 pooling with stride 2")
    yield Case((224, 11), {"stride": 4, "padding": 2}, label="AlexNet's first layer: n=224, kernel 11, stride 4, padding 2")
    yield Case((13, 2), {"stride": 2}, label="n=13, 2x2 pooling with stride 2 (an odd side)")
    yield Case((32, 5), {"stride": 2, "padding": 2}, label="n=32, kernel 5, stride 2, padding 2")
    yield Case((20, 3), {"dilation": 2}, label="n=20, kernel 3, dilation 2")
    yield Case((30, 3), {"stride": 2, "padding": 4, "dilation": 4}, label="n=30, kernel 3, stride 2, padding 4, dilation 4")


def _compare_size(got, expected, case):
    n, k = case.args
    s, p, d = (case.kwargs.get(name, default) for name, default in (("stride", 1), ("padding", 0), ("dilation", 1)))
    if isinstance(got, (float, np.floating)):
        value = float(got)
        if not math.isfinite(value) or value != int(value):
            raise Incorrect(f"Your function returned {value:g}, not a whole number of pixels: use floor "
                            "division, (...) // stride, which drops the positions where the kernel would "
                            "stick out of the padded input.")
        raise Incorrect(f"Your function returned the float {value!r}; an output size is an int. Use floor "
                        "division // instead of /, or int(...).")
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, numbers.Integral):
        raise Incorrect(f"Your function should return one int, but it returned {describe(got)}.")
    value = int(got)
    if value == expected:
        return
    span = d * (k - 1) + 1
    mistakes = [
        ((n + 2 * p - span) // s, "You forgot the + 1: a kernel as large as the padded input still has one "
                                  "output position."),
        ((n + 2 * p - k) // s + 1, "The dilation is ignored: a kernel of k taps spaced d apart spans "
                                   "d * (k - 1) + 1 pixels."),
        ((n + p - span) // s + 1, "Padding adds zeros on both sides of the axis: the padded side is "
                                  "n + 2 * padding."),
        ((n - span) // s + 1, "The padding is missing: the kernel slides over n + 2 * padding pixels."),
        (n + 2 * p - span + 1, "The stride is ignored: the kernel moves stride pixels at a time."),
        (-(-(n + 2 * p - span) // s) + 1, "You rounded up. PyTorch (ceil_mode=False) drops a last position "
                                          "where the kernel would stick out of the padded input: round down."),
        ((n + 2 * p - span + 1) // s, "Close: subtract the kernel's span, divide by the stride (rounding "
                                      "down), then add 1."),
    ]
    matches = [message for size, message in mistakes if value == size]
    if matches:
        why = matches[0] if len(matches) == 1 else "Either: " + " Or: ".join(matches)
        raise Incorrect(f"{why} (Your function returned {value}, {expected} was expected.)")
    raise Incorrect(f"Your function returned {value}, but {expected} was expected.")


output_size = FunctionQuestion(
    NOTEBOOK, "output_size", "The output size of a convolution or pooling", points=1,
    reference=reference_output_size, cases=_size_cases, compare=_compare_size,
    hints=["Count the positions where the kernel fits entirely inside the padded input (n + 2 * padding "
           "pixels), moving stride pixels at a time.",
           "A dilated kernel spans dilation * (kernel_size - 1) + 1 pixels. The result is "
           "(n + 2 * padding - span) // stride + 1."],
    solution_code='''
    def my_output_size(n, kernel_size, stride=1, padding=0, dilation=1):
        span = dilation * (kernel_size - 1) + 1
        return (n + 2 * padding - span) // stride + 1
    ''',
)


# -- 3. the receptive field ----------------------------------------------------------------------

def reference_receptive_field(layers):
    """Receptive field of a stack of (kernel_size, stride) layers (delegates to
    :func:`medseg_course.cnn_basics.receptive_field`).

    Introduced in 06_cnn.
    """
    return cnn_basics.receptive_field(layers)


def _rf_cases(device):
    yield Case(([(3, 1), (3, 1)],), label="two 3x3 convolutions")
    yield Case(([(3, 1), (3, 2), (3, 1)],), label="conv 3x3, pooling 3x3 stride 2, conv 3x3")
    yield Case(([(3, 1), (3, 2)] * 3 + [(3, 1)],), label="the PatchCNN of patch 45 (fc1 as a 3x3 layer)")
    yield Case(([(2, 2)] * 5,), label="five 2x2 poolings with stride 2")
    yield Case(([(11, 4), (3, 2), (5, 1), (3, 2), (3, 1), (3, 1), (3, 1), (3, 2)],),
               label="AlexNet's convolutions and poolings")


def _rf_variants(layers):
    """Receptive fields given by the usual mistakes."""
    ks = [k for k, s in layers]
    r_own = 1
    j = 1
    for k, s in layers:
        j *= s
        r_own += (k - 1) * j
    r_rev, j = 1, 1
    for k, s in reversed(layers):
        r_rev += (k - 1) * j
        j *= s
    return [
        (1 + sum(k - 1 for k in ks), "You ignored the strides. After a layer of stride s, neighbouring "
                                     "positions are s times further apart in the input, so every later "
                                     "kernel covers s times more input pixels."),
        (r_own, "You multiplied the jump by a layer's stride before using it for that layer. A layer's "
                "stride spaces out the outputs of that layer, so it only affects the layers after it: "
                "first r += (k - 1) * j, then j *= s."),
        (int(np.prod([s for k, s in layers])), "That is the jump (the product of the strides), the distance "
                                              "between neighbouring outputs in input pixels, not the "
                                              "receptive field."),
        (r_rev, "You went through the layers in reverse order; the list is first layer first, and the jump "
                "grows from the input side."),
        (sum(ks), "Adding kernel sizes counts the centre pixel of each kernel again: start from r = 1 and "
                  "add (k - 1) * jump for each layer."),
    ]


def _compare_rf(got, expected, case):
    (layers,) = case.args
    if isinstance(got, (bool, np.bool_)):
        raise Incorrect(f"Your function should return one int, but it returned {describe(got)}.")
    if isinstance(got, (tuple, list)):
        raise Incorrect(f"Your function returned {describe(got)}; return only the receptive field (an int).")
    value = as_number(got, what="Your function")
    if value != int(value):
        raise Incorrect(f"Your function returned {value:g}, not a whole number of pixels.")
    value = int(value)
    if value == expected:
        return
    matches = [message for size, message in _rf_variants(layers) if value == size]
    if matches:
        why = matches[0] if len(matches) == 1 else "Either: " + " Or: ".join(matches)
        raise Incorrect(f"{why} (Your function returned {value}, {expected} was expected.)")
    raise Incorrect(f"Your function returned {value}, but {expected} was expected.")


receptive_field = FunctionQuestion(
    NOTEBOOK, "receptive_field", "The receptive field of a stack of convolutions and poolings", points=2,
    reference=reference_receptive_field, cases=_rf_cases, compare=_compare_rf,
    hints=["Keep two numbers while walking from the first layer to the last: r, the receptive field so far "
           "(1 before any layer), and j, the distance in input pixels between neighbouring positions of "
           "the current layer's input (1 at the image).",
           "A layer with kernel k adds k - 1 positions of its input to the field, each j input pixels apart: "
           "r += (k - 1) * j. Only then does its stride spread its outputs: j *= s."],
    solution_code='''
    def my_receptive_field(layers):
        r, j = 1, 1
        for k, s in layers:
            r += (k - 1) * j
            j *= s
        return r
    ''',
)


# -- 4. a trained patch classifier ---------------------------------------------------------------

#: Balanced accuracy (mean of the per-class accuracies) that a trained patch classifier must reach
#: on the held-out centre pixels of :func:`held_out_pixels`.
PATCH_GOAL = 0.88
#: Pixels of each class drawn from every held-out image.
PIXELS_PER_CLASS = 50
#: Settings of the reference model (and of the exercise's recipe).
EXERCISE_PATCH = 29
REFERENCE_KWARGS = dict(in_channels=1, out_channels=2, patch_size=EXERCISE_PATCH, channels=(16, 32, 64), hidden=64)


@functools.lru_cache(maxsize=1)
def _held_out_images() -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """(grey image, mask, chosen flat pixel indices) for every DSB2018 test image on disk."""
    from medseg_course import data
    from medseg_course.data.transforms import nuclei_bright

    out = []
    for s in data.load_dataset("dsb2018", split="test", cache=False, progress=False):
        grey, mask = nuclei_bright(s.image, s.category), s.mask > 0
        rng = np.random.default_rng(int(s.case_id[:12], 16))  # per image: independent of the others
        picks = []
        for label in (False, True):
            pixels = np.flatnonzero(mask.ravel() == label)
            picks.append(rng.choice(pixels, size=min(PIXELS_PER_CLASS, pixels.size), replace=False))
        out.append((grey, mask, np.concatenate(picks)))
    return tuple(out)


def held_out_pixels(patch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The check's held-out centre pixels: patches and labels from the DSB2018 test split.

    Introduced in 06_cnn.

    Parameters
    ----------
    patch_size : int
        Odd side of the patches.

    Returns
    -------
    patches : (N, 1, P, P) torch.Tensor of float32
        Patches of ``nuclei_bright(sample.image, sample.category)``, zero-padded at the image
        borders as :class:`~medseg_course.data.loaders.CentrePixelDataset` pads them.
    labels : (N,) torch.Tensor of int64
        1 for nucleus, 0 for background: :data:`PIXELS_PER_CLASS` of each per image, drawn with
        a seed derived from the image's id (the same pixels whatever the patch size).
    """
    if isinstance(patch_size, bool) or not isinstance(patch_size, numbers.Integral) or patch_size < 1 \
            or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be an odd positive int, got {patch_size!r}")
    r = int(patch_size) // 2
    patches, labels = [], []
    for grey, mask, picks in _held_out_images():
        padded = np.pad(grey, r)
        ys, xs = np.divmod(picks, mask.shape[1])
        patches += [padded[y:y + patch_size, x:x + patch_size] for y, x in zip(ys, xs)]
        labels.append(mask.ravel()[picks])
    x = torch.from_numpy(np.stack(patches)[:, None].astype(np.float32))
    return x, torch.from_numpy(np.concatenate(labels).astype(np.int64))


def _model_dtype(model) -> torch.dtype:
    """The floating dtype of the model's weights (float32 when it has none)."""
    p = next((p for p in model.parameters() if p.is_floating_point()), None)
    return p.dtype if p is not None else torch.float32


def _predict_labels(model, patches: torch.Tensor, device, batch_size: int = 256) -> torch.Tensor:
    preds = []
    dtype = _model_dtype(model)  # a model trained in float64 gets float64 patches
    for i in range(0, len(patches), batch_size):
        logits = model(patches[i:i + batch_size].to(device=device, dtype=dtype)).float()
        preds.append((logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1))
    return torch.cat(preds).cpu()


def balanced_accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over the classes present of the fraction of their pixels predicted right.

    Introduced in 06_cnn.

    Examples
    --------
    >>> balanced_accuracy(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 1, 1]))
    0.75
    """
    return float(np.mean([(pred[labels == c] == c).float().mean().item() for c in labels.unique()]))


def evaluate_patch_classifier(model, device) -> float:
    """The check's score: balanced accuracy of ``model`` on :func:`held_out_pixels`.

    Introduced in 06_cnn.
    """
    patches, labels = held_out_pixels(int(model.patch_size))
    return balanced_accuracy(_predict_labels(model, patches, device), labels)


def train_reference_patch_cnn(*, steps: int | None = None, per_category: int | None = 6, device=None):
    """Train the reference PatchCNN of the exercise: the recipe of its solution.

    Introduced in 06_cnn.

    Parameters
    ----------
    steps : int, optional
        Batches of 64 patches; 120 in fast mode (``MEDSEG_FAST=1``), 600 otherwise.
    per_category : int or None, default 6
        First training images of each DSB2018 category used (in case-id order): 24 images, which
        keeps the memory of this fallback small (the notebook's exercise trains on all of them in
        full mode); None uses them all.
    device : torch.device or str, optional
        :func:`~medseg_course.runtime.choose_device` by default.

    Returns
    -------
    PatchCNN
        In eval mode, on ``device``.
    """
    from medseg_course import data
    from medseg_course.data.loaders import CentrePixelDataset, make_loader
    from medseg_course.data.transforms import nuclei_bright
    from medseg_course.models import PatchCNN
    from medseg_course.runtime import choose_device, fast_mode, seed_everything

    steps = (120 if fast_mode() else 600) if steps is None else int(steps)
    device = choose_device() if device is None else torch.device(device)
    train = data.load_dataset("dsb2018", split="train", cache=False, progress=False)
    ids = [case for category in sorted(set(train.categories))
           for case in [c for c, k in zip(train.case_ids, train.categories) if k == category][:per_category]]
    pairs = [(nuclei_bright(s.image, s.category), (s.mask > 0).astype(np.int64)) for s in train.subset(ids)]
    seed_everything(0)
    model = PatchCNN(**REFERENCE_KWARGS).to(device)
    loader = make_loader(CentrePixelDataset(pairs, EXERCISE_PATCH, length=64 * steps, augment=True),
                         batch_size=64, shuffle=True, seed=0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=len(loader))
    model.train()
    for patches, labels in loader:
        patches, labels = patches.to(device), labels.to(device)
        loss = F.cross_entropy(model(patches), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return model.eval()


class PatchClassifierQuestion(ModelQuestion):
    """A trained patch classifier, scored by its balanced accuracy on held-out DSB2018 pixels.

    Before scoring, the model is tried on two patches so that a model of the wrong kind gets a
    message about patches (not whole images). A model that scores too low and whose batch norms
    never saw a batch in training mode is told to train first. Introduced in 06_cnn.
    """

    def grade(self, answer):
        if isinstance(answer, torch.nn.Module):
            P = getattr(answer, "patch_size", None)
            if isinstance(P, bool) or not isinstance(P, numbers.Integral) or P < 1 or P % 2 == 0:
                raise Incorrect("The check feeds your model square patches and needs their (odd) side: your "
                                f"model's patch_size attribute is {P!r}. Pass the PatchCNN you trained.")
            params = list(answer.parameters())
            device = params[0].device if params else torch.device("cpu")
            probe = torch.zeros(2, 1, int(P), int(P), device=device, dtype=_model_dtype(answer))
            trial = copy.deepcopy(answer).eval()
            try:
                with torch.no_grad():
                    out = trial(probe)
            except Exception as exc:
                advice = ("The check feeds one grey channel (nuclei_bright): build the PatchCNN with in_channels=1."
                          if "channel" in str(exc) else
                          "The check feeds patches of shape (B, 1, P, P), P = patch_size, on your model's device.")
                raise Incorrect(f"Your model raised {type(exc).__name__} on a batch of patches of shape "
                                f"{tuple(probe.shape)}: {exc}\n{advice}") from None
            if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
                raise Incorrect(f"For patches of shape {tuple(probe.shape)} your model returned "
                                f"{describe(out)}; a patch classifier returns logits (B, K), one row per patch.")
            try:
                return super().grade(answer)
            except Incorrect:
                # Only now: a model trained in eval mode (batch norm never updated) can still score well.
                if self._untrained(answer):
                    raise Incorrect("Your model's batch norms never saw a batch in training mode, so its weights "
                                    "are most likely still their random initial values: train it first (run your "
                                    "training loop on it, in training mode: model.train()), then pass it to the "
                                    "check.") from None
                raise
        return super().grade(answer)

    @staticmethod
    def _untrained(model) -> bool:
        bn = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        return bool(bn) and all(int(m.num_batches_tracked) == 0 for m in bn)


patch_cnn = PatchClassifierQuestion(
    NOTEBOOK, "patch_cnn", "Train a PatchCNN that labels the centre pixel of a patch", points=4,
    reference=train_reference_patch_cnn, evaluate=evaluate_patch_classifier, threshold=PATCH_GOAL,
    metric="balanced accuracy",
    hints_below=("Check the five steps of each iteration (logits, loss, zero_grad, backward, step), that the "
                 "labels are the centre pixels' classes, and that the learning rate is about 1e-3 to 3e-3."),
    hints=["Each iteration: logits = model(patches) (shape (B, 2)); loss = F.cross_entropy(logits, labels); "
           "then optimizer.zero_grad(), loss.backward(), optimizer.step(), schedule.step().",
           "zero_grad must come before backward: PyTorch adds new gradients to the old ones. Store "
           "loss.item() (a number), not the loss tensor, which keeps the whole graph alive."],
    solution_code='''
    def train_patch_cnn(model, loader, lr=2e-3):
        model.to(rt.device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=len(loader))
        losses = []
        for patches, labels in tqdm(loader, desc="training the PatchCNN"):
            patches, labels = patches.to(rt.device), labels.to(rt.device)
            logits = model(patches)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        return losses

    my_model = PatchCNN(in_channels=1, out_channels=2, patch_size=EXERCISE_PATCH, channels=(16, 32, 64), hidden=64)
    my_losses = train_patch_cnn(my_model, train_loader)
    ''',
)

QUESTIONS: list[Question] = [conv2d, output_size, receptive_field, patch_cnn]


def summary():
    """Show this notebook's progress table. Introduced in 06_cnn."""
    return _summary(QUESTIONS)


__all__ = ["QUESTIONS", "summary", "conv2d", "output_size", "receptive_field", "patch_cnn", "PATCH_GOAL",
           "held_out_pixels", "balanced_accuracy", "evaluate_patch_classifier", "train_reference_patch_cnn"]
