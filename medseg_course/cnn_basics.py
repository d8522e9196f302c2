"""The arithmetic of convolutional networks, written out: convolution by hand, output sizes,
receptive fields, gradients through deep stacks, and the cost of a network.

* :func:`conv2d_reference` -- 2D convolution (cross-correlation, as PyTorch computes it) with
  stride and padding, as a readable sum of shifted images;
* :func:`conv_output_size` -- the side of a convolution's or pooling's output;
* :func:`receptive_field` and :func:`receptive_field_growth` -- how many input pixels one output
  sees, from the layers' kernel sizes and strides; :func:`empirical_receptive_field` measures it
  with gradients;
* :func:`deep_conv_stack` and :func:`layer_gradient_norms` -- the vanishing gradient, measured;
* :func:`count_macs` -- multiply-accumulate operations of each convolution and linear layer.

These are teaching tools: the networks of the course use ``torch.nn`` layers.

Introduced in 06_cnn.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "conv2d_reference",
    "conv_output_size",
    "receptive_field",
    "receptive_field_growth",
    "empirical_receptive_field",
    "EmpiricalReceptiveField",
    "deep_conv_stack",
    "layer_gradient_norms",
    "count_macs",
]


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (rows, columns), got {value!r}")
        return _check_int(value[0], name, minimum), _check_int(value[1], name, minimum)
    v = _check_int(value, name, minimum)
    return v, v


# --------------------------------------------------------------------------------------------
# convolution by hand
# --------------------------------------------------------------------------------------------


def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Side of the output of a convolution or pooling along one axis.

    Introduced in 06_cnn.

    Parameters
    ----------
    n : int
        Input side (pixels).
    kernel_size : int
    stride : int, default 1
    padding : int, default 0
        Zero pixels added on **each** side.
    dilation : int, default 1
        Spacing between kernel taps; the kernel then spans ``dilation * (kernel_size - 1) + 1``
        pixels.

    Returns
    -------
    int
        ``floor((n + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1``, the formula
        of ``torch.nn.Conv2d`` and ``torch.nn.MaxPool2d`` (with ``ceil_mode=False``).

    Raises
    ------
    ValueError
        If an argument is not a valid integer, or the kernel does not fit in the padded input.

    Examples
    --------
    >>> conv_output_size(28, 3)             # a "valid" 3x3 convolution loses one pixel per side
    26
    >>> conv_output_size(28, 3, padding=1)  # "same" padding keeps the size
    28
    >>> conv_output_size(27, 3, stride=2)   # 3x3 max pooling with stride 2
    13
    """
    n = _check_int(n, "n", 1)
    k = _check_int(kernel_size, "kernel_size", 1)
    s = _check_int(stride, "stride", 1)
    p = _check_int(padding, "padding", 0)
    d = _check_int(dilation, "dilation", 1)
    span = d * (k - 1) + 1
    if n + 2 * p < span:
        raise ValueError(
            f"the kernel spans {span} pixels but the padded input has only {n + 2 * p} "
            f"(n={n}, padding={p}); use a smaller kernel or more padding"
        )
    return (n + 2 * p - span) // s + 1


def conv2d_reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
                     stride=1, padding=0) -> torch.Tensor:
    """2D convolution as PyTorch computes it (a cross-correlation), written as a sum of shifted images.

    Introduced in 06_cnn.

    Parameters
    ----------
    x : (B, C_in, H, W) torch.Tensor
        A batch of images.
    weight : (C_out, C_in, kH, kW) torch.Tensor
        One ``C_in x kH x kW`` filter per output channel (the layout of ``nn.Conv2d.weight``).
    bias : (C_out,) torch.Tensor, optional
    stride : int or (int, int), default 1
    padding : int or (int, int), default 0
        Zero pixels added on each side (rows, columns).

    Returns
    -------
    (B, C_out, H_out, W_out) torch.Tensor
        ``out[b, o, i, j] = bias[o] + sum_{c, u, v} weight[o, c, u, v] * xpad[b, c, s*i + u, s*j + v]``,
        with ``H_out = floor((H + 2 p - kH) / s) + 1`` (:func:`conv_output_size`), likewise ``W_out``.

    Notes
    -----
    The kernel is **not flipped**: deep-learning libraries call this cross-correlation a
    convolution (flipping a learned kernel changes nothing, the network learns the flipped one).
    The true convolution of signal processing, ``scipy.ndimage.convolve``, flips the kernel.

    The loop runs over the ``kH * kW`` kernel taps, not over pixels: each tap multiplies a shifted
    (and strided) copy of the image by one weight per (output, input) channel pair, and the
    shifted copies are summed. ``torch.nn.functional.conv2d`` computes the same numbers with
    optimised kernels (im2col + matrix product, Winograd or FFT).

    Examples
    --------
    >>> x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    >>> w = torch.randn(4, 3, 3, 2, dtype=torch.float64)
    >>> b = torch.randn(4, dtype=torch.float64)
    >>> out = conv2d_reference(x, w, b, stride=2, padding=1)
    >>> out.shape
    torch.Size([2, 4, 5, 5])
    >>> torch.allclose(out, F.conv2d(x, w, b, stride=2, padding=1))
    True
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be a (B, C_in, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}; "
                         "add batch/channel axes with x[None] or x[None, None]")
    if not isinstance(weight, torch.Tensor) or weight.ndim != 4:
        raise ValueError(f"weight must be a (C_out, C_in, kH, kW) tensor, got "
                         f"{getattr(weight, 'shape', type(weight).__name__)}")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight has {weight.shape[1]} input channels (axis 1) but x has {x.shape[1]} "
                         f"(axis 1); weight must be (C_out, C_in, kH, kW), got {tuple(weight.shape)}")
    if bias is not None and (not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (weight.shape[0],)):
        raise ValueError(f"bias must be None or a ({weight.shape[0]},) tensor, one value per output "
                         f"channel, got {getattr(bias, 'shape', type(bias).__name__)}")
    sh, sw = _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    kh, kw = weight.shape[2:]
    H_out = conv_output_size(x.shape[2], kh, sh, ph)
    W_out = conv_output_size(x.shape[3], kw, sw, pw)
    xp = F.pad(x, (pw, pw, ph, ph))  # (B, C_in, H + 2 ph, W + 2 pw)
    out = x.new_zeros(x.shape[0], weight.shape[0], H_out, W_out)
    for u in range(kh):
        for v in range(kw):
            shifted = xp[:, :, u:u + sh * (H_out - 1) + 1:sh, v:v + sw * (W_out - 1) + 1:sw]  # (B, C_in, H_out, W_out)
            out += torch.einsum("bchw,oc->bohw", shifted, weight[:, :, u, v])  # sum over C_in
    if bias is not None:
        out += bias[None, :, None, None]
    return out


# --------------------------------------------------------------------------------------------
# receptive fields
# --------------------------------------------------------------------------------------------


def _check_layers(layers) -> list[tuple[int, int, int]]:
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise ValueError(f"layers must be a sequence of (kernel_size, stride) pairs, got {type(layers).__name__}")
    out = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, Sequence) or len(layer) not in (2, 3):
            raise ValueError(f"layers[{i}] must be (kernel_size, stride) or (kernel_size, stride, dilation), "
                             f"got {layer!r}")
        k = _check_int(layer[0], f"layers[{i}] kernel_size", 1)
        s = _check_int(layer[1], f"layers[{i}] stride", 1)
        d = _check_int(layer[2], f"layers[{i}] dilation", 1) if len(layer) == 3 else 1
        out.append((k, s, d))
    return out


def receptive_field_growth(layers) -> list[tuple[int, int]]:
    """Receptive field and jump after each layer of a stack of convolutions and poolings.

    Introduced in 06_cnn.

    Parameters
    ----------
    layers : sequence of (kernel_size, stride) or (kernel_size, stride, dilation)
        The layers in the order the data goes through them (first layer first).

    Returns
    -------
    list of (int, int)
        ``(r, j)`` after each layer: ``r`` is the side of the square of input pixels that one
        output of that layer sees, ``j`` (the jump) the distance in input pixels between two
        neighbouring outputs.

    Notes
    -----
    Start from one input pixel, ``r = 1, j = 1``. A layer with kernel ``k``, stride ``s`` and
    dilation ``d`` adds ``d (k - 1)`` of its input positions, each ``j`` input pixels apart::

        r <- r + d (k - 1) j
        j <- j s

    Strides multiply the jump, so a layer after ``n`` stride-2 poolings grows the receptive
    field ``2**n`` times faster than the first one. Padding changes neither.

    Examples
    --------
    >>> receptive_field_growth([(3, 1), (3, 1), (2, 2), (3, 1)])  # VGG: conv, conv, pool, conv
    [(3, 1), (5, 1), (6, 2), (10, 2)]
    """
    r, j, out = 1, 1, []
    for k, s, d in _check_layers(layers):
        r += d * (k - 1) * j
        j *= s
        out.append((r, j))
    return out


def receptive_field(layers) -> int:
    """Side of the square of input pixels that one output of a layer stack depends on.

    Introduced in 06_cnn.

    Parameters
    ----------
    layers : sequence of (kernel_size, stride) or (kernel_size, stride, dilation)
        First layer first.

    Returns
    -------
    int
        ``1`` for an empty stack; see :func:`receptive_field_growth` for the recursion.

    Examples
    --------
    >>> receptive_field([(3, 1)] * 5)            # five 3x3 convolutions see 11 x 11 pixels
    11
    >>> receptive_field([(3, 1), (3, 2)] * 3 + [(3, 1)])  # PatchCNN(patch_size=45): fc1 is a 3x3 "conv"
    45
    """
    growth = receptive_field_growth(layers)
    return growth[-1][0] if growth else 1


class EmpiricalReceptiveField(NamedTuple):
    """What :func:`empirical_receptive_field` measures.

    Attributes
    ----------
    size : (int, int)
        Height and width of the bounding box of the input pixels that influence the output.
    gradient : (H, W) ndarray of float64
        Mean absolute gradient of the output with respect to each input pixel (summed over input
        channels): the "effective receptive field" of Luo et al. (2016).
    """

    size: tuple[int, int]
    gradient: np.ndarray


def empirical_receptive_field(model: nn.Module, input_shape, *, n_samples: int = 8,
                              seed: int = 0) -> EmpiricalReceptiveField:
    """Measure which input pixels influence the centre output of a network, by backpropagation.

    Introduced in 06_cnn.

    Parameters
    ----------
    model : nn.Module
        Maps ``(B, C, H, W)`` to ``(B, K, h, w)`` (the centre output ``(h // 2, w // 2)`` is
        used) or to ``(B, K)`` (a patch classifier). Run in eval mode (batch norm then treats
        samples independently); its mode and gradients are restored afterwards.
    input_shape : (C, H, W)
        Shape of one input.
    n_samples : int, default 8
        Random inputs (uniform in [0, 1)) whose gradients are combined: one input can miss
        pixels (a max pooling passes the gradient to one pixel of each window, a ReLU blocks it
        where its input is negative), the union of a few does not.
    seed : int, default 0

    Returns
    -------
    EmpiricalReceptiveField
        ``size`` (the bounding box of the non-zero gradients) and ``gradient`` (their mean
        magnitude per pixel).

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 1, 3))
    >>> empirical_receptive_field(net, (1, 32, 32)).size  # 3 + 1 + 2 * 2, see receptive_field
    (8, 8)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(input_shape, Sequence) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    n_samples = _check_int(n_samples, "n_samples", 1)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.rand((n_samples, *input_shape), generator=gen).to(device=device, dtype=dtype)
    x.requires_grad_(True)
    was_training = model.training
    saved = {name: (p.grad.clone() if p.grad is not None else None) for name, p in model.named_parameters()}
    model.eval()
    try:
        with torch.enable_grad():
            out = model(x)
            if out.ndim == 4:
                out = out[:, :, out.shape[2] // 2, out.shape[3] // 2]  # (B, K) at the centre
            elif out.ndim != 2:
                raise ValueError(f"the model must return (B, K, h, w) or (B, K), got {tuple(out.shape)}")
            out.sum().backward()
    finally:
        model.train(was_training)
        for name, p in model.named_parameters():
            p.grad = saved[name]
    g = x.grad.detach().abs().sum(1).double().cpu().numpy()  # (B, H, W)
    rows = np.flatnonzero((g > 0).any(axis=(0, 2)))
    cols = np.flatnonzero((g > 0).any(axis=(0, 1)))
    size = (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)) if rows.size else (0, 0)
    return EmpiricalReceptiveField(size=size, gradient=g.mean(0))


# --------------------------------------------------------------------------------------------
# vanishing gradients
# --------------------------------------------------------------------------------------------

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
_INITS = ("default", "he", "xavier")


def deep_conv_stack(depth: int, *, channels: int = 16, activation: str = "relu",
                    init: str = "default", norm: bool = False, in_channels: int = 1,
                    out_channels: int = 2) -> nn.Sequential:
    """A plain stack of ``depth`` 3x3 convolutions (same padding), each followed by an activation.

    Introduced in 06_cnn.

    Parameters
    ----------
    depth : int
        Number of convolution + activation layers; a final 1x1 convolution gives the logits.
    channels : int, default 16
    activation : {"sigmoid", "tanh", "relu"}, default "relu"
    init : {"default", "he", "xavier"}, default "default"
        PyTorch's default initialisation (uniform, variance ``1 / (3 fan_in)``); He et al.
        (normal, variance ``2 / fan_in``, made for ReLU); or Glorot/Xavier (variance
        ``2 / (fan_in + fan_out)``, made for sigmoid and tanh). Biases start at 0 with "he" and
        "xavier".
    norm : bool, default False
        Batch normalisation between each convolution and its activation.
    in_channels, out_channels : int

    Returns
    -------
    nn.Sequential
        ``(B, in_channels, H, W)`` -> logits ``(B, out_channels, H, W)``.

    Examples
    --------
    >>> net = deep_conv_stack(4, activation="sigmoid")
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 2, 8, 8])
    >>> sum(isinstance(m, nn.Conv2d) for m in net)  # 4 hidden layers + the 1x1 output layer
    5
    """
    depth = _check_int(depth, "depth", 1)
    channels = _check_int(channels, "channels", 1)
    in_channels = _check_int(in_channels, "in_channels", 1)
    out_channels = _check_int(out_channels, "out_channels", 1)
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(_ACTIVATIONS)}, got {activation!r}")
    if init not in _INITS:
        raise ValueError(f"init must be one of {list(_INITS)}, got {init!r}")
    layers, prev = [], in_channels
    for _ in range(depth):
        conv = nn.Conv2d(prev, channels, 3, padding=1)
        if init == "he":
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        elif init == "xavier":
            nn.init.xavier_normal_(conv.weight)
            nn.init.zeros_(conv.bias)
        layers.append(conv)
        if norm:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(_ACTIVATIONS[activation]())
        prev = channels
    layers.append(nn.Conv2d(prev, out_channels, 1))
    return nn.Sequential(*layers)


def layer_gradient_norms(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                         loss_fn=None) -> np.ndarray:
    """Norm of the loss gradient with respect to each layer's weights, after one backward pass.

    Introduced in 06_cnn.

    Parameters
    ----------
    model : nn.Module
        Its ``nn.Conv2d`` and ``nn.Linear`` layers are measured, in the order of
        ``model.modules()`` (the order they were defined, the input side first for a plain stack).
    images : (B, C, H, W) torch.Tensor
    targets : torch.Tensor
        Labels for ``loss_fn``: ``(B, H, W)`` for a dense model, ``(B,)`` for a classifier.
    loss_fn : callable, optional
        ``loss_fn(logits, targets)``; ``torch.nn.functional.cross_entropy`` by default.

    Returns
    -------
    (L,) ndarray of float64
        ``||dLoss / dW_l||`` (Frobenius norm) for each of the ``L`` layers, input side first.

    Notes
    -----
    The model is run in its current mode; the gradients it held before are restored, so this
    can be called on a model in the middle of training.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> x, y = torch.rand(4, 1, 16, 16), torch.randint(2, (4, 16, 16))
    >>> deep = layer_gradient_norms(deep_conv_stack(10, activation="sigmoid"), x, y)
    >>> deep.shape, bool(deep[0] < 1e-4 * deep[-2])  # the first layer barely learns
    ((11,), True)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    loss_fn = F.cross_entropy if loss_fn is None else loss_fn
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not layers:
        raise ValueError("the model has no nn.Conv2d or nn.Linear layer to measure")
    saved = [m.weight.grad for m in layers]
    for m in layers:
        m.weight.grad = None
    try:
        with torch.enable_grad():
            loss = loss_fn(model(images), targets)
            grads = torch.autograd.grad(loss, [m.weight for m in layers])
    finally:
        for m, g in zip(layers, saved):
            m.weight.grad = g
    return np.array([float(g.double().norm()) for g in grads])


# --------------------------------------------------------------------------------------------
# cost
# --------------------------------------------------------------------------------------------


def count_macs(model: nn.Module, input_shape) -> dict[str, int]:
    """Multiply-accumulate operations of each convolution and linear layer for one input.

    Introduced in 06_cnn.

    Parameters
    ----------
    model : nn.Module
    input_shape : (B, C, H, W)
        Shape of the input batch (a zero tensor of that shape is run through the model, without
        gradients, in eval mode; the mode is restored).

    Returns
    -------
    dict of str to int
        ``{layer name: MACs}`` for every ``nn.Conv2d`` (``out.numel() * C_in / groups * kH * kW``)
        and ``nn.Linear`` (``out.numel() * in_features``), in the order they ran. Poolings,
        normalisations and activations are left out: they cost a few operations per value,
        against hundreds for a convolution. Multiply by 2 for floating-point operations.

    Examples
    --------
    >>> count_macs(nn.Conv2d(3, 8, 3), (1, 3, 10, 10))  # 8 x 8 outputs x 8 channels x 27 taps
    {'': 13824}
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(input_shape, Sequence) or len(input_shape) != 4:
        raise ValueError(f"input_shape must be (B, C, H, W), got {input_shape!r}")
    macs: dict[str, int] = {}
    hooks = []

    def hook(name):
        def record(module, inputs, output):
            if isinstance(module, nn.Conv2d):
                per = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            else:
                per = module.in_features
            macs[name] = macs.get(name, 0) + int(output.numel()) * per
        return record

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook(name)))
    param = next(model.parameters(), None)
    x = torch.zeros(tuple(int(n) for n in input_shape),
                    device=param.device if param is not None else "cpu",
                    dtype=param.dtype if param is not None else torch.float32)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return macs
