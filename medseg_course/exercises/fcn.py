"""Questions of notebook 07_fcn: the output size of a transposed convolution, the bilinear
upsampling kernel, the FCN-8s skip fusion, and a trained FCN scored on held-out images.

Introduced in 07_fcn.
"""

from __future__ import annotations

import functools

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
from medseg_course.models import FCN, bilinear_kernel

NOTEBOOK = "07_fcn"


# -- 1. the output size of a transposed convolution -----------------------------------------------

def reference_conv_transpose_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1) -> int:
    """Length of the output of a transposed convolution along one axis (``nn.ConvTranspose2d``).

    Introduced in 07_fcn.

    Parameters
    ----------
    size : int
        Input length ``H_in``.
    kernel_size, stride, padding, output_padding, dilation : int
        The layer's settings along that axis.

    Returns
    -------
    int
        ``(H_in - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1``.

    Examples
    --------
    >>> reference_conv_transpose_size(4, 4, stride=2, padding=1)  # FCN's 2x upsampling
    8
    >>> reference_conv_transpose_size(5, 2, stride=2)  # U-Net's up-convolution
    10
    """
    return int((size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1)


#: (H_in, kernel_size, stride, padding, output_padding, dilation, what the layer is)
SIZE_CASES = (
    (4, 4, 2, 1, 0, 1, "FCN's in-network 2x upsampling"),
    (5, 2, 2, 0, 0, 1, "U-Net's 2x2 up-convolution"),
    (7, 3, 1, 1, 0, 1, "stride 1, 'same' padding"),
    (3, 3, 2, 1, 0, 1, "stride 2, odd kernel"),
    (3, 3, 2, 1, 1, 1, "the same with output_padding 1"),
    (10, 16, 8, 4, 0, 1, "8x upsampling (FCN-8s's last step)"),
    (4, 64, 32, 16, 0, 1, "32x upsampling (FCN-32s)"),
    (6, 3, 1, 0, 0, 2, "dilation 2"),
    (5, 3, 2, 0, 2, 3, "dilation 3 and output_padding 2"),
    (9, 5, 3, 2, 1, 1, "stride 3, kernel 5"),
    (1, 4, 2, 1, 0, 1, "a single input pixel"),
)


def _size_cases(device):
    for h, k, s, p, op, d, label in SIZE_CASES:
        yield Case((h, k), dict(stride=s, padding=p, output_padding=op, dilation=d), label=label)


def conv_transpose_size_table(fn=reference_conv_transpose_size) -> list[dict]:
    """Every case of :data:`SIZE_CASES` with ``fn``'s size and the size ``nn.ConvTranspose2d`` gives.

    Introduced in 07_fcn.

    Returns
    -------
    list of dict
        Keys ``h_in, kernel_size, stride, padding, output_padding, dilation, what, formula, torch``.

    Examples
    --------
    >>> rows = conv_transpose_size_table()
    >>> all(r["formula"] == r["torch"] for r in rows)
    True
    """
    rows = []
    for h, k, s, p, op, d, label in SIZE_CASES:
        layer = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op, dilation=d, bias=False)
        with torch.no_grad():
            out = layer(torch.zeros(1, 1, h, h)).shape[-1]
        rows.append(dict(h_in=h, kernel_size=k, stride=s, padding=p, output_padding=op, dilation=d,
                         what=label, formula=fn(h, k, stride=s, padding=p, output_padding=op, dilation=d),
                         torch=int(out)))
    return rows


#: The usual mistakes: (size they give for (h, k, s, p, op, d), what to tell the student).
_SIZE_MISTAKES = (
    (lambda h, k, s, p, op, d: (h + 2 * p - d * (k - 1) - 1) // s + 1,
     "That is the output size of an ordinary (strided) convolution. A transposed convolution goes the other way: "
     "it maps a size n back to the size whose convolution gives n, so the stride multiplies, (H_in - 1) * stride, "
     "instead of dividing."),
    (lambda h, k, s, p, op, d: h * s,
     "H_in * stride is the size only for some settings (U-Net's 2x2 up-convolution, FCN's kernel 4, stride 2, "
     "padding 1); in general the kernel's extent, the padding and output_padding count too."),
    (lambda h, k, s, p, op, d: reference_conv_transpose_size(h, k, s, p, op, d) - 1,
     "Your size is one too small: the kernel's extent is dilation * (kernel_size - 1) + 1 pixels, so the formula "
     "ends with + 1 (one input pixel and a 1-tap kernel give one output pixel)."),
    (lambda h, k, s, p, op, d: reference_conv_transpose_size(h, k, s, p, 0, d),
     "You left out output_padding: it adds that many rows at the end of the output (PyTorch's way of choosing "
     "between the several sizes that a strided convolution maps to the same n)."),
    (lambda h, k, s, p, op, d: reference_conv_transpose_size(h, k, s, p, 2 * op, d),
     "output_padding adds rows at one end of the output only: add it once, not twice."),
    (lambda h, k, s, p, op, d: reference_conv_transpose_size(h, k, s, p, op, 1),
     "You left out the dilation: a kernel of k taps dilated by d spans d * (k - 1) + 1 pixels, so the term is "
     "dilation * (kernel_size - 1)."),
    (lambda h, k, s, p, op, d: reference_conv_transpose_size(h, k, s, p, op, d) + p,
     "Padding is removed on both sides of the output: subtract 2 * padding, not padding."),
    (lambda h, k, s, p, op, d: reference_conv_transpose_size(h, k, s, p, op, d) + 4 * p,
     "A transposed convolution's padding removes rows from the output (it is the padding of the convolution it "
     "reverses): subtract 2 * padding instead of adding it."),
    (lambda h, k, s, p, op, d: reference_conv_transpose_size(h, k, s, p, op, d) + s,
     "Your size is one stride too large: n input pixels are n - 1 strides apart, so the first term is "
     "(H_in - 1) * stride, not H_in * stride."),
)


def _compare_size(got, expected, case):
    h, k = case.args
    kw = case.kwargs
    settings = (h, k, kw["stride"], kw["padding"], kw["output_padding"], kw["dilation"])
    if isinstance(got, (float, np.floating)) and float(got).is_integer():
        got = int(got)
    value = as_number(got, what="Your function")
    if value == expected:
        return
    # The cases run in the order of SIZE_CASES and every earlier one passed: keep only the mistakes
    # that agree with the formula on all of them, so that a coincidence on this case does not mislead.
    earlier = []
    for row in SIZE_CASES:
        if row[:6] == settings:
            break
        earlier.append(row[:6])
    why = [message for mistake, message in _SIZE_MISTAKES
           if mistake(*settings) == value
           and all(mistake(*c) == reference_conv_transpose_size(*c) for c in earlier)]
    if len(why) == 1:
        raise Incorrect(why[0])
    if why:
        raise Incorrect("Either: " + " Or: ".join(why))
    raise Incorrect(f"Your function returned {value:g}, which is not the size nn.ConvTranspose2d gives. Put the "
                    "terms together: input positions spread stride apart, the kernel's extent, minus the "
                    "padding on both sides, plus output_padding.")


conv_transpose_size = FunctionQuestion(
    NOTEBOOK, "conv_transpose_size", "The output size of a transposed convolution", points=1,
    reference=reference_conv_transpose_size, cases=_size_cases, compare=_compare_size,
    hints=["Without padding, stride 1 and dilation 1, each of the H_in input pixels paints a kernel of k pixels "
           "with a shift of one: H_in + k - 1 pixels. With stride s, the H_in stamps start s pixels apart.",
           "Dilation d stretches the kernel to d * (k - 1) + 1 pixels; padding p crops p rows at each end; "
           "output_padding adds rows at the end only.",
           "return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1"],
    solution_code='''
    def my_conv_transpose_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
        return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
    ''',
)


# -- 2. the bilinear upsampling kernel ------------------------------------------------------------

def reference_bilinear_kernel(kernel_size) -> np.ndarray:
    """The ``(k, k)`` bilinear kernel of a transposed convolution (one channel of
    :func:`medseg_course.models.bilinear_kernel`).

    Introduced in 07_fcn.

    Examples
    --------
    >>> reference_bilinear_kernel(4)[0].tolist()
    [0.0625, 0.1875, 0.1875, 0.0625]
    """
    return bilinear_kernel(1, 1, int(kernel_size))[0, 0].numpy()


KERNEL_SIZES = (4, 2, 3, 6, 5, 8, 16)


def _kernel_cases(device):
    for k in KERNEL_SIZES:
        kind = "even" if k % 2 == 0 else "odd"
        yield Case((k,), label=f"kernel_size {k} ({kind})")


def upsample_with_kernel(image, kernel, factor: int) -> torch.Tensor:
    """Upsample a ``(H, W)`` image by ``factor`` with a transposed convolution whose weight is ``kernel``.

    Introduced in 07_fcn.

    Parameters
    ----------
    image : (H, W) array or tensor
    kernel : (k, k) array or tensor
        ``k = 2 * factor`` for an even factor, ``2 * factor - 1`` for an odd one (the sizes of
        :func:`medseg_course.models.bilinear_kernel`).
    factor : int

    Returns
    -------
    (factor * H, factor * W) torch.Tensor
        ``conv_transpose2d`` with stride ``factor``, padding ``(k - factor) // 2`` and ``kernel`` as
        its weight.

    Examples
    --------
    >>> up = upsample_with_kernel(np.ones((3, 3), np.float32), reference_bilinear_kernel(4), 2)
    >>> tuple(up.shape), float(up[2, 2])
    ((6, 6), 1.0)
    """
    w = torch.as_tensor(np.asarray(kernel, dtype=np.float32))
    k = w.shape[-1]
    if w.shape != (k, k) or k < factor or (k - factor) % 2:
        raise ValueError(f"kernel must be (k, k) with k - factor even and k >= factor ({factor}), got {tuple(w.shape)}")
    x = torch.as_tensor(np.asarray(image, dtype=np.float32))[None, None]
    with torch.no_grad():
        return F.conv_transpose2d(x, w.reshape(1, 1, k, k), stride=factor, padding=(k - factor) // 2)[0, 0]


def _compare_kernel(got, expected, case):
    (k,) = case.args
    g = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else got
    if isinstance(g, (list, tuple)):  # a nested list of numbers is as good as an array
        try:
            g = np.asarray(g, dtype=np.float64)
        except (TypeError, ValueError):
            pass
    if not isinstance(g, np.ndarray):
        raise Incorrect(f"Your function should return a ({k}, {k}) array, but it returned {describe(got)}.")
    if g.shape == (k,):
        raise Incorrect(f"Your kernel is one-dimensional, shape ({k},). The 2D bilinear kernel is the outer product "
                        "of the 1D kernel with itself: np.outer(w, w).")
    if g.shape != (k, k):
        raise Incorrect(f"Your kernel has shape {g.shape}; a ({k}, {k}) array was expected "
                        "(one weight per tap of a square kernel).")
    if g.dtype.kind not in "f":
        raise Incorrect(f"Your kernel has dtype {g.dtype}; return floats.")
    if not np.all(np.isfinite(g)):
        raise Incorrect("Your kernel contains NaN or infinite values.")
    atol = 1e-6 if g.dtype.itemsize >= 4 else 1e-3  # float16 stores 3 significant digits
    g = g.astype(np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if np.allclose(g, e, atol=atol):
        return
    if not np.allclose(g, g.T, atol=1e-9) or not np.allclose(g, g[::-1, ::-1], atol=1e-9):
        raise Incorrect(f"Your kernel for k = {k} is not symmetric about its centre. Its k taps are 0 .. k - 1, "
                        "so their centre is at (k - 1) / 2 (between two taps when k is even).")
    if g.sum() > 0 and np.allclose(g / g.sum(), e / e.sum(), atol=1e-7):
        raise Incorrect(f"Your kernel has the right shape but is scaled: its weights sum to {g.sum():.4g}. In "
                        "bilinear interpolation each OUTPUT pixel's weights sum to 1; an input pixel's kernel "
                        "is spread over stride x stride outputs and sums to stride**2. Do not normalise it: "
                        "w(i) = 1 - |i - c| / f is already right, with a peak near 1.")
    f = (k + 1) // 2
    c = (k - 1) / 2
    i = np.arange(k)
    for denom, msg in [(k, "the kernel size k"), (k / 2, "k / 2"), (k // 2, "k // 2 (rounded down)")]:
        w = 1 - np.abs(i - c) / denom
        if denom and denom != f and np.allclose(g, np.outer(w, w), atol=max(atol, 1e-7)):
            raise Incorrect(f"You divided |i - c| by {msg}; the denominator is the upsampling factor "
                            "f = ceil(k / 2) (k = 2f for even kernels, 2f - 1 for odd ones).")
    raise Incorrect(f"Your kernel for k = {k} has the right shape but not the bilinear weights "
                    f"(largest error {np.abs(g - e).max():.3g}). With f = ceil(k / 2) and c = (k - 1) / 2, the "
                    "1D weights are w(i) = 1 - |i - c| / f for i = 0 .. k - 1.")


bilinear = FunctionQuestion(
    NOTEBOOK, "bilinear", "The bilinear kernel of a transposed convolution", points=2,
    reference=reference_bilinear_kernel, cases=_kernel_cases, compare=_compare_kernel,
    hints=["Start in 1D. With stride f, an output pixel lies between two input pixels; its weights are 1 - distance / f "
           "for each, a 'tent' of half-width f centred on the kernel's middle.",
           "f = (k + 1) // 2 and the centre c = (k - 1) / 2 (for k = 4: f = 2, c = 1.5, w = [0.25, 0.75, 0.75, 0.25]).",
           "i = np.arange(k); w = 1 - np.abs(i - c) / f; return np.outer(w, w)"],
    solution_code='''
    def my_bilinear_kernel(kernel_size):
        k = kernel_size
        f = (k + 1) // 2                 # the upsampling factor
        c = (k - 1) / 2                  # the centre of the k taps
        w = 1 - np.abs(np.arange(k) - c) / f
        return np.outer(w, w)
    ''',
)


# -- 3. the FCN-8s skip fusion ---------------------------------------------------------------------

def reference_fcn8s_scores(net, pool3, pool4, pool5) -> torch.Tensor:
    """FCN-8s's class scores at stride 8, from the features of its backbone.

    Introduced in 07_fcn.

    Parameters
    ----------
    net : FCN
        An ``FCN(variant="8s")``: its layers ``fc6, fc7, score_fr, up2_fr, score_pool4,
        up2_pool4, score_pool3`` are used.
    pool3, pool4, pool5 : (B, C_i, N / 8), (B, C_j, N / 16), (B, C_j, N / 32) torch.Tensor
        Backbone features at strides 8, 16 and 32.

    Returns
    -------
    (B, K, N / 8) torch.Tensor
        ``up2_pool4(up2_fr(score_fr(fc7(fc6(pool5)))) + score_pool4(pool4)) + score_pool3(pool3)``.
    """
    score = net.score_fr(net.fc7(net.fc6(pool5)))  # (B, K, N/32)
    score = net.up2_fr(score) + net.score_pool4(pool4)  # (B, K, N/16)
    return net.up2_pool4(score) + net.score_pool3(pool3)  # (B, K, N/8)


def skip_net(seed: int = 0, out_channels: int = 2, base_channels: int = 4) -> FCN:
    """An untrained FCN-8s (eval mode) whose skip scores and upsamplings are random, not zero/bilinear.

    A freshly built FCN starts with zero skip weights (training starts from FCN-32s), which would hide a
    missing skip; the check uses this net instead. Introduced in 07_fcn.
    """
    g = torch.Generator().manual_seed(seed)
    net = FCN(1, out_channels, "8s", base_channels=base_channels, norm=None).eval()
    with torch.no_grad():
        for name in ("score_pool4", "score_pool3", "up2_fr", "up2_pool4"):
            for p in getattr(net, name).parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return net


def skip_features(net: FCN, size=(64, 96), batch: int = 2, seed: int = 0):
    """``(pool3, pool4, pool5)`` of ``net`` for a random ``(batch, 1, *size)`` input (sides multiples of 32).

    Introduced in 07_fcn.
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, 1, *size, generator=g)
    with torch.no_grad():
        pool3 = net.stage3(net.stage2(net.stage1(x)))
        pool4 = net.stage4(pool3)
        pool5 = net.stage5(pool4)
    return pool3, pool4, pool5


def _skip_cases(device):
    for seed, size, batch, k in [(0, (64, 96), 2, 2), (1, (96, 64), 1, 1), (2, (128, 160), 1, 3)]:
        net = skip_net(seed, out_channels=k)
        feats = tuple(f.to(device) for f in skip_features(net, size, batch, seed))
        net = net.to(device)
        yield Case((net, *feats), label=f"a random FCN-8s with {k} class(es), input {size[0]}x{size[1]}")


def _compare_skips(got, expected, case):
    net, pool3, pool4, pool5 = case.args
    if not isinstance(got, torch.Tensor):
        raise Incorrect(f"Your function should return a torch tensor of scores, but it returned {describe(got)}.")
    got = got.detach()
    e = expected.detach()
    if got.ndim == 4 and got.shape[:2] == e.shape[:2] and got.shape[2:] != e.shape[2:]:
        stride8 = tuple(e.shape[2:])
        ratio = got.shape[2] / e.shape[2]
        if ratio == 0.5:
            raise Incorrect(f"Your scores have size {tuple(got.shape[2:])}, stride 16: that is FCN-16s. Upsample them "
                            f"by 2 once more (net.up2_pool4) and add the pool3 scores (net.score_pool3(pool3)), "
                            f"to reach stride 8, size {stride8}.")
        if ratio == 0.25:
            raise Incorrect(f"Your scores have size {tuple(got.shape[2:])}, stride 32: no skip was fused. Go up by 2 "
                            "twice, adding the pool4 then the pool3 scores.")
        if ratio == 8:
            raise Incorrect("Your scores have the image's size: stop at stride 8 (size of pool3); the notebook does "
                            "the last 8x interpolation itself.")
    if got.shape != e.shape:
        raise Incorrect(f"Your scores have shape {tuple(got.shape)}, but {tuple(e.shape)} was expected "
                        "(batch, classes, and the height and width of pool3).")
    if torch.allclose(got, e, rtol=1e-4, atol=1e-5):
        return
    interpolated = ("You upsampled with F.interpolate. FCN's in-network upsamplings are the learnable transposed "
                    "convolutions net.up2_fr and net.up2_pool4 (they start as bilinear interpolation, then training "
                    "changes them).")
    with torch.no_grad():
        s32 = net.score_fr(net.fc7(net.fc6(pool5)))
        sp4, sp3 = net.score_pool4(pool4), net.score_pool3(pool3)

        def fused(up1, up2):
            return up2(up1(s32) + sp4) + sp3

        def interp(mode):
            kw = {} if mode == "nearest" else {"align_corners": False}
            return lambda t: F.interpolate(t, scale_factor=2, mode=mode, **kw)

        alternatives = [
            (fused(interp("bilinear"), interp("bilinear")), interpolated),
            (fused(interp("nearest"), interp("nearest")), interpolated),
            (fused(net.up2_pool4, net.up2_fr), "You used the two upsampling layers in the wrong order: net.up2_fr "
                                               "takes the stride-32 scores to stride 16, net.up2_pool4 the fused "
                                               "stride-16 scores to stride 8."),
            (fused(net.up2_fr, net.up2_fr), "You used net.up2_fr for both upsamplings. Each step has its own learned "
                                            "layer: net.up2_fr from stride 32 to 16, net.up2_pool4 from 16 to 8."),
            (fused(net.up2_pool4, net.up2_pool4), "You used net.up2_pool4 for both upsamplings. Each step has its own "
                                                  "learned layer: net.up2_fr from stride 32 to 16, net.up2_pool4 "
                                                  "from 16 to 8."),
            (net.up2_pool4(net.up2_fr(s32)) + sp3, "Your scores miss the pool4 skip: add net.score_pool4(pool4) "
                                                   "after the first upsampling."),
            (net.up2_pool4(net.up2_fr(s32) + sp4), "Your scores miss the pool3 skip: add net.score_pool3(pool3) "
                                                   "after the second upsampling."),
        ]
    for alt, msg in alternatives:
        if alt.shape == got.shape and torch.allclose(got, alt, rtol=1e-4, atol=1e-5):
            raise Incorrect(msg)
    raise Incorrect(f"Your scores have the right shape but wrong values (largest error "
                    f"{float((got - e).abs().max()):.3g}). Score pool5 with fc6, fc7 and score_fr; then twice: "
                    "upsample by 2 with the layer of that step and ADD the scores of the skip (score_pool4(pool4), "
                    "then score_pool3(pool3)).")


skip_fusion = FunctionQuestion(
    NOTEBOOK, "skip_fusion", "FCN-8s: fuse the pool4 and pool3 scores by summation", points=2,
    reference=reference_fcn8s_scores, cases=_skip_cases, compare=_compare_skips,
    hints=["Three steps: scores at stride 32 from pool5 (fc6, fc7, score_fr); up by 2 and add the pool4 scores "
           "(stride 16); up by 2 again and add the pool3 scores (stride 8).",
           "The layers are net.up2_fr (32 -> 16), net.score_pool4, net.up2_pool4 (16 -> 8), net.score_pool3.",
           "score = net.score_fr(net.fc7(net.fc6(pool5))); score = net.up2_fr(score) + net.score_pool4(pool4); "
           "return net.up2_pool4(score) + net.score_pool3(pool3)"],
    solution_code='''
    def my_fcn8s_scores(net, pool3, pool4, pool5):
        score = net.score_fr(net.fc7(net.fc6(pool5)))            # stride 32
        score = net.up2_fr(score) + net.score_pool4(pool4)       # stride 16
        return net.up2_pool4(score) + net.score_pool3(pool3)     # stride 8
    ''',
)


# -- 4. a trained FCN, scored on held-out images ---------------------------------------------------

#: The held-out images: the DSB2018 test split, which the notebook never loads.
HELD_OUT_SPLIT = "test"
#: Mean per-image Dice a trained model must reach on them.
MODEL_GOAL = 0.75


@functools.lru_cache(maxsize=1)
def _held_out() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    from medseg_course import data
    from medseg_course.data.transforms import nuclei_bright

    return tuple((nuclei_bright(s.image, s.category)[None], s.mask > 0)
                 for s in data.load_dataset("dsb2018", split=HELD_OUT_SPLIT))


def held_out_dice(model: nn.Module, device=None) -> float:
    """Mean per-image Dice of ``model`` on the held-out DSB2018 images (nuclei bright, one channel).

    Introduced in 07_fcn.

    Parameters
    ----------
    model : nn.Module
        Takes ``(B, 1, H, W)`` images in ``[0, 1]`` (``nuclei_bright``) and returns logits
        ``(B, K, H, W)``: one binary channel, or K classes with the nuclei as class 1 and up.
    device : torch.device or str, optional
        Where the model runs; the model's own device by default.

    Returns
    -------
    float
        Mean of :func:`medseg_course.metrics.dice` over the images.
    """
    from medseg_course import metrics
    from medseg_course.train import predict

    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else "cpu"
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    if dtype != torch.float32:  # e.g. a model trained in float64: give it images of its own dtype
        model = _InputAs(model, dtype)
    scores = []
    for image, truth in _held_out():
        labels = predict(model, image, device=device, output="labels")
        scores.append(metrics.dice(labels > 0, truth))
    return float(np.mean(scores))


class _InputAs(nn.Module):
    """``model`` with its input cast to ``dtype`` (the images of the check are float32)."""

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype))


#: Epochs of the reference recipe: one random 128 x 128 crop of each of the 104 training images per epoch.
REFERENCE_EPOCHS = {"fast": 6, "full": 20}


def train_reference_fcn(epochs: int | None = None, *, device=None, progress: bool = False) -> FCN:
    """The reference answer of :data:`train_fcn`: an FCN-8s trained on the DSB2018 training split.

    Introduced in 07_fcn.

    Parameters
    ----------
    epochs : int, optional
        Passes over the training images (one random 128 x 128 crop of each, half of them centred on a
        nucleus, flipped and rotated); by default :data:`REFERENCE_EPOCHS` for the runtime's budget
        (``MEDSEG_FAST=1``: fast).
    device : torch.device or str, optional
        :func:`~medseg_course.runtime.choose_device` by default.
    progress : bool, default False

    Returns
    -------
    FCN
        ``FCN(1, 1, "8s", base_channels=8, norm="group")``, trained with a Dice + cross-entropy loss,
        AdamW at 3e-3 with cosine decay, batches of 8; eval mode, on ``device``.

    Notes
    -----
    Group normalisation rather than batch normalisation: after a few dozen steps, the running
    statistics that batch norm uses in eval mode still lag behind the weights, and short runs scored
    erratically on held-out images; group norm has no running statistics.
    """
    from medseg_course import data
    from medseg_course.data.loaders import PatchDataset, make_loader
    from medseg_course.data.transforms import nuclei_bright
    from medseg_course.losses import DiceCELoss
    from medseg_course.runtime import choose_device, fast_mode
    from medseg_course.train import TrainConfig, fit

    if epochs is None:
        epochs = REFERENCE_EPOCHS["fast" if fast_mode() else "full"]
    device = choose_device() if device is None else torch.device(device)
    train = [(nuclei_bright(s.image, s.category)[None], s.mask > 0)
             for s in data.load_dataset("dsb2018", split="train")]
    loader = make_loader(PatchDataset(train, 128, augment=True, foreground_fraction=0.5),
                         batch_size=8, shuffle=True, drop_last=True)
    model = FCN(1, 1, "8s", base_channels=8, norm="group")
    fit(model, loader, None, DiceCELoss(), TrainConfig(epochs=epochs, lr=3e-3, lr_schedule="cosine"),
        device=device, progress=progress)
    return model.eval()


class FCNQuestion(ModelQuestion):
    """A trained segmentation network, scored by its mean Dice on held-out images.

    When the score is too low and the answer is an FCN-16s/8s whose skip scores are still exactly
    zero (their initial value), the message says that the model was not trained. Introduced in 07_fcn.
    """

    def grade(self, answer):
        try:
            return super().grade(answer)
        except Incorrect:
            if self._untrained(answer):
                raise Incorrect("Your FCN's skip layers (score_pool4) still hold their initial zeros: the model "
                                "has not been trained. Build it, train it with fit(...) on train_loader, then "
                                "pass the trained model to the check.") from None
            raise

    @staticmethod
    def _untrained(model) -> bool:
        skip = getattr(model, "score_pool4", None) if isinstance(model, FCN) else None
        return skip is not None and not any(bool(p.detach().any()) for p in skip.parameters())


train_fcn = FCNQuestion(
    NOTEBOOK, "train_fcn", f"Train an FCN that reaches Dice {MODEL_GOAL} on held-out images", points=3,
    reference=train_reference_fcn, evaluate=held_out_dice, threshold=MODEL_GOAL, metric="mean Dice",
    hints_below=("Check the loss curve first: if it still falls, train longer (more epochs or more crops per "
                 "image); if it jumps around, lower the learning rate. A Dice + cross-entropy loss copes with "
                 "the many background pixels better than cross-entropy alone."),
    hints=["Build the model as in section 3: FCN(in_channels=1, out_channels=1, variant='8s', ...). One output "
           "channel means a binary problem; the course's losses then use the sigmoid.",
           "A loss: medseg_course.losses.DiceCELoss(); a budget: TrainConfig(epochs=..., lr=3e-3, "
           "lr_schedule='cosine'). Use rt.budget(full=..., fast=...) for the epochs, so that the grader's fast "
           "run stays short: in fast mode, 6 epochs of FCN-8s are enough.",
           "Watch the curves with viz.plot_history(my_history): the validation Dice should rise and settle."],
    solution_code='''
    my_fcn = FCN(in_channels=1, out_channels=1, variant="8s", base_channels=BASE_CHANNELS, norm=NORM)
    my_history = fit(my_fcn, train_loader, val_loader, DiceCELoss(),
                     TrainConfig(epochs=rt.budget(full=20, fast=6), lr=3e-3, lr_schedule="cosine", seed=1),
                     device=rt.device)
    ''',
)

QUESTIONS: list[Question] = [conv_transpose_size, bilinear, skip_fusion, train_fcn]


def summary():
    """Show this notebook's progress table. Introduced in 07_fcn."""
    return _summary(QUESTIONS)


__all__ = ["QUESTIONS", "summary", "conv_transpose_size", "bilinear", "skip_fusion", "train_fcn",
           "conv_transpose_size_table", "upsample_with_kernel", "skip_net", "skip_features", "held_out_dice",
           "train_reference_fcn", "SIZE_CASES", "MODEL_GOAL", "REFERENCE_EPOCHS"]
