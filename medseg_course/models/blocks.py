"""Building blocks shared by every network of the course, in 2D and 3D.

One set of blocks serves the patch classifier, the FCN and the U-Nets: the number of spatial
dimensions is an argument (``spatial_dims=2`` for ``(B, C, H, W)`` images, ``3`` for
``(B, C, D, H, W)`` volumes), never a copied class, as in MONAI's ``basic_unet.py``.

* :class:`ConvBlock` -- convolution, normalisation, activation, dropout;
* :class:`DoubleConv` -- two conv blocks, the unit of VGG stages and U-Net levels;
* :class:`Down` -- 2x max pooling then a double conv (a U-Net encoder step);
* :class:`UpSample` -- 2x (or ``s`` x) upsampling by transposed convolution or interpolation;
* :class:`UpCat` -- upsample, match the skip's size, concatenate, double conv (a U-Net decoder
  step);
* :func:`bilinear_kernel` -- the transposed-convolution weights that perform (bi/tri)linear
  interpolation (FCN's initialisation of its upsampling layers);
* :func:`match_size` and :func:`pad_to_multiple` -- centred padding/cropping for odd sizes.

Introduced in 06_cnn (conv blocks), 07_fcn (upsampling) and 08_unet (down/up steps).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "ConvBlock",
    "DoubleConv",
    "Down",
    "UpSample",
    "UpCat",
    "bilinear_kernel",
    "match_size",
    "mirror_pad",
    "pad_to_multiple",
]

_NORMS = ("batch", "instance", "group", None)
_ACTS = ("relu", "leakyrelu", None)
_UPSAMPLE_MODES = ("deconv", "linear")


# --------------------------------------------------------------------------------------------
# validation and layer lookup
# --------------------------------------------------------------------------------------------


def _check_spatial_dims(spatial_dims) -> int:
    if isinstance(spatial_dims, bool) or not isinstance(spatial_dims, numbers.Integral) or spatial_dims not in (2, 3):
        raise ValueError(
            f"spatial_dims must be 2 (images (B, C, H, W)) or 3 (volumes (B, C, D, H, W)), "
            f"got {spatial_dims!r}"
        )
    return int(spatial_dims)


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _check_choice(value, name: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def _check_dropout(dropout) -> float:
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    return float(dropout)


def _conv(spatial_dims: int):
    return nn.Conv2d if spatial_dims == 2 else nn.Conv3d


def _conv_transpose(spatial_dims: int):
    return nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d


def _max_pool(spatial_dims: int):
    return nn.MaxPool2d if spatial_dims == 2 else nn.MaxPool3d


def _dropout(spatial_dims: int):
    return nn.Dropout2d if spatial_dims == 2 else nn.Dropout3d


def _norm(norm: str | None, spatial_dims: int, channels: int) -> nn.Module:
    if norm == "batch":
        return (nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d)(channels)
    if norm == "instance":
        return (nn.InstanceNorm2d if spatial_dims == 2 else nn.InstanceNorm3d)(channels, affine=True)
    if norm == "group":
        groups = math.gcd(8, channels)  # 8 groups where the channels allow it
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


def _act(act: str | None) -> nn.Module:
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "leakyrelu":
        return nn.LeakyReLU(0.01, inplace=True)
    return nn.Identity()


def _interp_mode(spatial_dims: int) -> str:
    return "bilinear" if spatial_dims == 2 else "trilinear"


# --------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------


class ConvBlock(nn.Sequential):
    """Convolution, normalisation, activation, dropout: the basic unit of every network here.

    Introduced in 06_cnn.

    Parameters
    ----------
    spatial_dims : {2, 3}
        2 for images ``(B, C, H, W)``, 3 for volumes ``(B, C, D, H, W)``.
    in_channels, out_channels : int
        Channels in and out.
    kernel_size : int, default 3
    stride : int, default 1
    dilation : int, default 1
        Spacing between kernel taps ("a trous"); the kernel then spans
        ``dilation * (kernel_size - 1) + 1`` pixels.
    padding : {"same", "valid"} or int, default "same"
        ``"same"`` pads ``dilation * (kernel_size - 1) // 2`` zeros per side, so that an odd kernel
        with stride 1 keeps the size; ``"valid"`` pads nothing (each output pixel sees only real
        input, the output shrinks by ``dilation * (kernel_size - 1)``).
    norm : {"batch", "instance", "group", None}, default "batch"
        Normalisation after the convolution (group norm uses up to 8 groups).
    act : {"relu", "leakyrelu", None}, default "relu"
    dropout : float, default 0.0
        Channel dropout probability after the activation.
    bias : bool, optional
        Convolution bias; by default only without normalisation (a norm layer's shift replaces it).

    Notes
    -----
    Shapes: ``(B, in_channels, *spatial)`` -> ``(B, out_channels, *spatial_out)`` with, per axis,
    ``out = floor((n + 2 * pad - dilation * (kernel_size - 1) - 1) / stride) + 1``.
    The submodules are named ``conv``, ``norm``, ``act`` and ``drop`` (identity when unused), so
    that state-dict keys read ``stage1.conv.weight``.

    Examples
    --------
    >>> block = ConvBlock(2, 1, 8)
    >>> block(torch.zeros(2, 1, 17, 20)).shape
    torch.Size([2, 8, 17, 20])
    >>> ConvBlock(3, 1, 4, padding="valid")(torch.zeros(1, 1, 5, 6, 7)).shape
    torch.Size([1, 4, 3, 4, 5])
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, *,
                 kernel_size: int = 3, stride: int = 1, dilation: int = 1,
                 padding: str | int = "same", norm: str | None = "batch", act: str | None = "relu",
                 dropout: float = 0.0, bias: bool | None = None):
        spatial_dims = _check_spatial_dims(spatial_dims)
        in_channels = _check_positive_int(in_channels, "in_channels")
        out_channels = _check_positive_int(out_channels, "out_channels")
        kernel_size = _check_positive_int(kernel_size, "kernel_size")
        stride = _check_positive_int(stride, "stride")
        dilation = _check_positive_int(dilation, "dilation")
        _check_choice(norm, "norm", _NORMS)
        _check_choice(act, "act", _ACTS)
        dropout = _check_dropout(dropout)
        if padding == "same":
            pad = dilation * (kernel_size - 1) // 2
        elif padding == "valid":
            pad = 0
        elif isinstance(padding, numbers.Integral) and not isinstance(padding, bool) and padding >= 0:
            pad = int(padding)
        else:
            raise ValueError(f"padding must be 'same', 'valid' or a non-negative int, got {padding!r}")
        if bias is None:
            bias = norm is None
        super().__init__()
        self.conv = _conv(spatial_dims)(in_channels, out_channels, kernel_size, stride=stride,
                                        padding=pad, dilation=dilation, bias=bias)
        self.norm = _norm(norm, spatial_dims, out_channels)
        self.act = _act(act)
        self.drop = _dropout(spatial_dims)(dropout) if dropout > 0 else nn.Identity()


class DoubleConv(nn.Sequential):
    """Two :class:`ConvBlock` in a row: a VGG stage without its pooling, a U-Net level.

    Introduced in 06_cnn.

    Parameters
    ----------
    spatial_dims : {2, 3}
    in_channels, out_channels : int
    mid_channels : int, optional
        Channels between the two convolutions; ``out_channels`` by default.
    **kwargs
        ``kernel_size``, ``padding``, ``norm``, ``act``, ``dropout``, ``bias`` for both blocks
        (see :class:`ConvBlock`).

    Notes
    -----
    ``(B, in_channels, *spatial)`` -> ``(B, out_channels, *spatial)`` with the default
    ``padding="same"``; with ``padding="valid"`` (the original U-Net) every axis loses
    ``2 * (kernel_size - 1)`` pixels.

    Examples
    --------
    >>> DoubleConv(2, 3, 16)(torch.zeros(1, 3, 9, 11)).shape
    torch.Size([1, 16, 9, 11])
    >>> DoubleConv(2, 1, 4, padding="valid")(torch.zeros(1, 1, 572, 572)).shape  # U-Net paper sizes
    torch.Size([1, 4, 568, 568])
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, *,
                 mid_channels: int | None = None, **kwargs):
        mid = out_channels if mid_channels is None else mid_channels
        super().__init__()
        self.conv_0 = ConvBlock(spatial_dims, in_channels, mid, **kwargs)
        self.conv_1 = ConvBlock(spatial_dims, mid, out_channels, **kwargs)


class Down(nn.Sequential):
    """2x max pooling, then a :class:`DoubleConv`: one encoder step of a U-Net.

    Introduced in 08_unet.

    Parameters
    ----------
    spatial_dims : {2, 3}
    in_channels, out_channels : int
    **kwargs
        Passed to :class:`DoubleConv`.

    Notes
    -----
    ``(B, in_channels, *spatial)`` -> ``(B, out_channels, *(n // 2 for n in spatial))``: an odd
    size loses its last row (PyTorch's floor pooling); :class:`UpCat` pads it back.

    Examples
    --------
    >>> Down(3, 8, 16)(torch.zeros(1, 8, 9, 16, 17)).shape
    torch.Size([1, 16, 4, 8, 8])
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, **kwargs):
        spatial_dims = _check_spatial_dims(spatial_dims)
        super().__init__()
        self.pool = _max_pool(spatial_dims)(kernel_size=2)
        self.convs = DoubleConv(spatial_dims, in_channels, out_channels, **kwargs)


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int, *,
                    spatial_dims: int = 2) -> torch.Tensor:
    """Transposed-convolution weights that perform bilinear (2D) or trilinear (3D) upsampling.

    Introduced in 07_fcn.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel ``c`` is upsampled into channel ``c`` for ``c < min(in_channels, out_channels)``;
        every other pair of channels gets zero weights.
    kernel_size : int
        ``2 * s`` for an upsampling factor ``s`` (stride ``s``, padding ``s // 2``, ``s`` even);
        ``2 * s - 1`` for odd ``s`` (padding ``(s - 1) // 2``).
    spatial_dims : {2, 3}, default 2

    Returns
    -------
    (in_channels, out_channels, k, k) or (in_channels, out_channels, k, k, k) torch.Tensor
        float32, the layout of ``nn.ConvTranspose2d/3d.weight``.

    Notes
    -----
    With ``f = ceil(k / 2)`` and ``c = f - 1`` for odd ``k`` (``f - 0.5`` for even ``k``), the 1D
    kernel is ``w(i) = 1 - |i - c| / f`` and the nD kernel the outer product of 1D kernels (Long
    et al.'s ``upsample_filt``). With stride ``s = f`` each output pixel receives the linear
    interpolation of its two nearest input pixels, at the positions of
    ``F.interpolate(..., scale_factor=s, mode="bilinear", align_corners=False)``: both agree
    exactly away from the border. Within ``s // 2`` pixels of the border the transposed
    convolution sees an implicit zero outside the image, where ``F.interpolate`` repeats the edge
    pixel, so the values there are lower.

    References
    ----------
    .. [1] J. Long, E. Shelhamer and T. Darrell, "Fully convolutional networks for semantic
       segmentation", CVPR 2015 (``surgery.py``, ``upsample_filt``).

    Examples
    --------
    >>> up = torch.nn.ConvTranspose2d(1, 1, kernel_size=4, stride=2, padding=1, bias=False)
    >>> with torch.no_grad():
    ...     _ = up.weight.copy_(bilinear_kernel(1, 1, 4))
    >>> x = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4)  # a ramp along x
    >>> up(x).detach()[0, 0, 3, 1:7]  # interior of the 8 x 8 result: a finer ramp
    tensor([0.2500, 0.7500, 1.2500, 1.7500, 2.2500, 2.7500])
    """
    in_channels = _check_positive_int(in_channels, "in_channels")
    out_channels = _check_positive_int(out_channels, "out_channels")
    kernel_size = _check_positive_int(kernel_size, "kernel_size")
    spatial_dims = _check_spatial_dims(spatial_dims)
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = torch.arange(kernel_size, dtype=torch.float64)
    filt1d = 1 - (og - center).abs() / factor  # (k,)
    filt = filt1d
    for _ in range(spatial_dims - 1):
        filt = filt[..., None] * filt1d  # outer product: (k, k) or (k, k, k)
    weight = torch.zeros(in_channels, out_channels, *([kernel_size] * spatial_dims), dtype=torch.float64)
    for c in range(min(in_channels, out_channels)):
        weight[c, c] = filt
    return weight.float()


class UpSample(nn.Module):
    """Upsampling by an integer factor: a learnable transposed convolution or interpolation.

    Introduced in 07_fcn.

    Parameters
    ----------
    spatial_dims : {2, 3}
    in_channels, out_channels : int
    scale_factor : int, default 2
    mode : {"deconv", "linear"}, default "deconv"
        ``"deconv"``: transposed convolution with stride ``scale_factor``. ``"linear"``:
        (bi/tri)linear interpolation (``align_corners=False``), then a 1x1 convolution if the
        channel count changes.
    kernel_size : int, optional
        For ``"deconv"``: ``scale_factor`` by default (U-Net's 2x2 "up-convolution", each input
        pixel paints its own ``s x s`` block); ``2 * scale_factor`` to overlap neighbours, as FCN.
    init : {"default", "bilinear"}, default "default"
        For ``"deconv"``: PyTorch's random initialisation, or :func:`bilinear_kernel` (FCN), which
        needs ``kernel_size == 2 * scale_factor`` and no bias.

    Notes
    -----
    ``(B, in_channels, *spatial)`` -> ``(B, out_channels, *(s * n for n in spatial))`` exactly:
    the transposed convolution pads ``(kernel_size - scale_factor) // 2``.

    Examples
    --------
    >>> UpSample(2, 16, 8)(torch.zeros(1, 16, 5, 7)).shape
    torch.Size([1, 8, 10, 14])
    >>> UpSample(3, 4, 4, mode="linear")(torch.zeros(1, 4, 3, 5, 5)).shape
    torch.Size([1, 4, 6, 10, 10])
    """

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, *,
                 scale_factor: int = 2, mode: str = "deconv", kernel_size: int | None = None,
                 init: str = "default"):
        super().__init__()
        self.spatial_dims = _check_spatial_dims(spatial_dims)
        in_channels = _check_positive_int(in_channels, "in_channels")
        out_channels = _check_positive_int(out_channels, "out_channels")
        self.scale_factor = _check_positive_int(scale_factor, "scale_factor")
        _check_choice(mode, "mode", _UPSAMPLE_MODES)
        _check_choice(init, "init", ("default", "bilinear"))
        self.mode = mode
        s = self.scale_factor
        if mode == "deconv":
            k = s if kernel_size is None else _check_positive_int(kernel_size, "kernel_size")
            if k < s or (k - s) % 2:
                raise ValueError(
                    f"kernel_size must be scale_factor ({s}) or larger by an even number, e.g. "
                    f"{2 * s} (overlapping, FCN), got {k}"
                )
            if init == "bilinear" and k != 2 * s:
                raise ValueError(
                    f"init='bilinear' needs kernel_size == 2 * scale_factor = {2 * s}, got {k}"
                )
            self.up = _conv_transpose(spatial_dims)(in_channels, out_channels, k, stride=s,
                                                    padding=(k - s) // 2, bias=init != "bilinear")
            if init == "bilinear":
                with torch.no_grad():
                    self.up.weight.copy_(bilinear_kernel(in_channels, out_channels, k,
                                                         spatial_dims=spatial_dims))
            self.proj = nn.Identity()
        else:
            self.up = None
            self.proj = (nn.Identity() if in_channels == out_channels
                         else _conv(spatial_dims)(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C_in, *spatial)`` -> ``(B, C_out, *(s * n))``."""
        if self.up is not None:
            return self.up(x)
        x = F.interpolate(x, scale_factor=self.scale_factor, mode=_interp_mode(self.spatial_dims),
                          align_corners=False)  # (B, C_in, *(s * n))
        return self.proj(x)


def match_size(x: torch.Tensor, size: Sequence[int], *, value: float = 0.0) -> torch.Tensor:
    """Centre-crop or zero-pad the spatial axes of ``x`` to ``size``.

    Introduced in 07_fcn.

    Parameters
    ----------
    x : (B, C, *spatial) torch.Tensor
    size : sequence of int
        Target spatial size, one entry per spatial axis.
    value : float, default 0.0
        Padding value.

    Returns
    -------
    (B, C, *size) torch.Tensor
        Per axis, a difference ``d`` is split ``d // 2`` before and ``d - d // 2`` after, for
        both padding and cropping, so that padding then cropping back returns ``x`` unchanged.

    Examples
    --------
    >>> x = torch.arange(5.0).view(1, 1, 1, 5)
    >>> match_size(x, (1, 3))
    tensor([[[[1., 2., 3.]]]])
    >>> match_size(x, (1, 7))
    tensor([[[[0., 0., 1., 2., 3., 4., 0.]]]])
    """
    spatial = x.shape[2:]
    if len(size) != len(spatial):
        raise ValueError(f"size must have one entry per spatial axis of x {tuple(spatial)}, got {tuple(size)}")
    pads = []
    crops = [slice(None), slice(None)]
    for n, m in zip(spatial, size):
        d = int(m) - int(n)
        if d >= 0:
            pads.append((d // 2, d - d // 2))
            crops.append(slice(None))
        else:
            d = -d
            pads.append((0, 0))
            crops.append(slice(d // 2, d // 2 + int(m)))
    x = x[tuple(crops)]
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad wants the last axis first
    if any(flat):
        x = F.pad(x, flat, value=value)
    return x


def pad_to_multiple(x: torch.Tensor, multiple: int, *, value: float = 0.0) -> torch.Tensor:
    """Zero-pad the spatial axes of ``x`` (centred) to the next multiple of ``multiple``.

    Introduced in 07_fcn.

    Parameters
    ----------
    x : (B, C, *spatial) torch.Tensor
    multiple : int
        E.g. 32 for a network that halves its input five times.
    value : float, default 0.0

    Returns
    -------
    (B, C, *padded) torch.Tensor
        ``match_size(result, x.shape[2:])`` gives ``x`` back.

    Examples
    --------
    >>> pad_to_multiple(torch.zeros(1, 1, 33, 64), 32).shape
    torch.Size([1, 1, 64, 64])
    """
    multiple = _check_positive_int(multiple, "multiple")
    size = [-(-int(n) // multiple) * multiple for n in x.shape[2:]]
    return match_size(x, size, value=value)


def mirror_pad(x: torch.Tensor, pads: Sequence[tuple[int, int]]) -> torch.Tensor:
    """Pad the spatial axes of ``x`` by mirroring the image at its borders (U-Net's overlap-tile).

    Introduced in 08_unet.

    Parameters
    ----------
    x : (B, C, *spatial) torch.Tensor
    pads : sequence of (before, after) pairs of int
        One pair per spatial axis. Pads longer than the axis are allowed: the mirroring is
        repeated, as when tiling a small image into a large valid-convolution input.

    Returns
    -------
    (B, C, *(n + before + after)) torch.Tensor

    Examples
    --------
    >>> mirror_pad(torch.arange(3.0).view(1, 1, 1, 3), [(0, 0), (2, 4)])
    tensor([[[[2., 1., 0., 1., 2., 1., 0., 1., 2.]]]])
    """
    spatial = x.shape[2:]
    if len(pads) != len(spatial):
        raise ValueError(f"pads must have one (before, after) pair per spatial axis of x {tuple(spatial)}, "
                         f"got {list(pads)}")
    remaining = [[int(b), int(a)] for b, a in pads]
    if any(v < 0 for pair in remaining for v in pair):
        raise ValueError(f"pads must be non-negative, got {list(pads)}")
    while any(v for pair in remaining for v in pair):
        step = []
        for axis, pair in enumerate(remaining):
            limit = x.shape[2 + axis] - 1  # reflect padding must be shorter than the axis
            if limit < 1 and any(pair):
                # a single pixel: mirroring it is repeating it
                step.append((pair[0], pair[1]))
                x = torch.cat([x.narrow(2 + axis, 0, 1)] * (1 + pair[0] + pair[1]), dim=2 + axis)
                pair[0] = pair[1] = 0
                step[-1] = (0, 0)
                continue
            b, a = min(pair[0], limit), min(pair[1], limit)
            pair[0] -= b
            pair[1] -= a
            step.append((b, a))
        flat = [p for pair in reversed(step) for p in pair]  # F.pad wants the last axis first
        if any(flat):
            x = F.pad(x, flat, mode="reflect")
    return x


class UpCat(nn.Module):
    """Upsample, match the skip connection's size, concatenate, double conv: a U-Net decoder step.

    Introduced in 08_unet.

    Parameters
    ----------
    spatial_dims : {2, 3}
    in_channels : int
        Channels of the deeper features ``x`` to upsample.
    skip_channels : int
        Channels of the encoder features ``skip``.
    out_channels : int
    up_channels : int, optional
        Channels after upsampling; ``in_channels // 2`` by default (the U-Net paper's
        up-convolution "halves the number of feature channels").
    upsample : {"deconv", "linear"}, default "deconv"
        See :class:`UpSample` (2x2 transposed convolution, or bilinear + 1x1 conv).
    **kwargs
        ``kernel_size``, ``padding``, ``norm``, ``act``, ``dropout``, ``bias`` for the
        :class:`DoubleConv`.

    Notes
    -----
    ``forward(x, skip)``: ``x (B, in_channels, *n)`` and ``skip (B, skip_channels, *m)`` ->
    ``(B, out_channels, *m)`` with ``padding="same"``. The upsampled ``x`` has size ``2 n``; it is
    zero-padded or centre-cropped to ``m`` (:func:`match_size`): padding after an odd-sized
    pooling (``m = 2 n + 1``), cropping never in that case. The concatenation order is
    ``[skip, up]``. With ``padding="valid"`` (the original U-Net) the skip is larger than the
    upsampled features; it is centre-cropped to their size instead (the paper's "cropping of the
    feature map from the contracting path"), and the output has size ``2 n - 4``.

    Examples
    --------
    >>> up = UpCat(2, 32, 16, 16)
    >>> up(torch.zeros(1, 32, 4, 5), torch.zeros(1, 16, 9, 11)).shape
    torch.Size([1, 16, 9, 11])
    """

    def __init__(self, spatial_dims: int, in_channels: int, skip_channels: int, out_channels: int,
                 *, up_channels: int | None = None, upsample: str = "deconv", **kwargs):
        super().__init__()
        up = max(1, in_channels // 2) if up_channels is None else up_channels
        self.crop_skip = kwargs.get("padding", "same") == "valid"
        self.upsample = UpSample(spatial_dims, in_channels, up, mode=upsample)
        self.convs = DoubleConv(spatial_dims, skip_channels + up, out_channels, **kwargs)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """``x (B, C_in, *n)``, ``skip (B, C_skip, *m)`` -> ``(B, C_out, *m)`` (same padding)."""
        x = self.upsample(x)  # (B, C_up, *2n)
        if self.crop_skip:
            skip = match_size(skip, x.shape[2:])  # (B, C_skip, *2n): centre crop
        else:
            x = match_size(x, skip.shape[2:])  # (B, C_up, *m)
        x = torch.cat([skip, x], dim=1)  # (B, C_skip + C_up, *m)
        return self.convs(x)
