"""FCN: the fully convolutional network of Long, Shelhamer and Darrell (2015), small and from scratch.

Introduced in 07_fcn.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from medseg_course.models.blocks import (
    ConvBlock,
    DoubleConv,
    UpSample,
    _check_choice,
    _check_dropout,
    _check_positive_int,
    _check_spatial_dims,
    _conv,
    _interp_mode,
    _max_pool,
    match_size,
    pad_to_multiple,
)

__all__ = ["FCN"]

_VARIANTS = ("32s", "16s", "8s")


class FCN(nn.Module):
    """Fully convolutional network (FCN-32s, -16s, -8s) on a small VGG-like backbone.

    Introduced in 07_fcn.

    Parameters
    ----------
    in_channels : int, default 1
    out_channels : int, default 2
        Number of classes K (one logit map each).
    variant : {"32s", "16s", "8s"}, default "8s"
        Stride of the coarsest prediction that is upsampled to the image: ``"32s"`` upsamples the
        stride-32 scores directly; ``"16s"`` first adds scores computed from the stride-16 features
        (pool4); ``"8s"`` also adds scores from the stride-8 features (pool3).
    spatial_dims : {2, 3}, default 2
        3 builds the same network with 3D layers (volumes ``(B, C, D, H, W)``).
    base_channels : int, default 16
        Channels of the first stage; the five stages have ``(1, 2, 4, 8, 8) x base_channels``
        (VGG-16 has 64, 128, 256, 512, 512).
    fc_channels : int, optional
        Width of the convolutionalised "fully connected" layers fc6/fc7 (4096 in VGG-16);
        ``16 * base_channels`` by default.
    norm : {"batch", "instance", "group", None}, default "batch"
        Normalisation after every convolution of the backbone. The original had none (VGG-16
        predates batch norm); it makes training from scratch on small data much easier.
    dropout : float, default 0.0
        Dropout after fc6 and fc7 (0.5 in the paper).

    Notes
    -----
    ``forward``: ``(B, C, H, W)`` -> logits ``(B, K, H, W)`` for any ``H, W`` (3D: ``(B, C, D, H,
    W)`` -> ``(B, K, D, H, W)``); softmax/sigmoid live in the loss and in
    :func:`~medseg_course.train.predict`.

    Architecture. Five stages of two 3x3 convolutions (:class:`~.blocks.DoubleConv`) each followed
    by 2x2 max pooling give features at strides 2, 4, 8 (pool3), 16 (pool4) and 32 (pool5).
    fc6 (3x3 convolution) and fc7 (1x1) play the role of VGG's fully connected layers, turned
    into convolutions, and a 1x1 convolution gives the class scores at stride 32.
    Upsampling follows the paper: the in-network 2x upsamplings are transposed convolutions
    (kernel 4, stride 2) initialised to bilinear interpolation (:func:`~.blocks.bilinear_kernel`)
    and then learned; the skip scores (1x1 convolutions on pool4 and pool3) are initialised to
    zero, so that training starts from the coarser net's prediction; the final upsampling (x32,
    x16 or x8) is fixed bilinear interpolation. Skips are fused by summation.

    Any input size. The paper pads its input by 100 pixels and crops the output with computed
    offsets. Here the input is zero-padded, centred, to the next multiple of 32, so that every
    feature map is exactly ``size / stride`` and the skips align without offsets; the logits are
    centre-cropped back to the input size (:func:`~.blocks.pad_to_multiple`,
    :func:`~.blocks.match_size`). No pretrained weights: the backbone is trained from scratch
    (ImageNet weights cannot be downloaded offline, and would not fit its small size).

    Batch norm in train mode needs more than one value per channel: with a batch of one image
    smaller than 33 pixels along every axis, fc6/fc7 see a single position and raise; use a
    larger batch or crop, ``norm="group"`` or ``None``, or eval mode.

    References
    ----------
    .. [1] J. Long, E. Shelhamer and T. Darrell, "Fully convolutional networks for semantic
       segmentation", CVPR 2015. arXiv:1411.4038
    .. [2] K. Simonyan and A. Zisserman, "Very deep convolutional networks for large-scale image
       recognition", ICLR 2015 (VGG).

    Examples
    --------
    >>> model = FCN(in_channels=1, out_channels=2, variant="8s")
    >>> model(torch.zeros(1, 1, 100, 75)).shape
    torch.Size([1, 2, 100, 75])
    >>> volume_model = FCN(1, 3, "16s", spatial_dims=3, base_channels=4).eval()
    >>> volume_model(torch.zeros(1, 1, 20, 24, 28)).shape
    torch.Size([1, 3, 20, 24, 28])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, variant: str = "8s", *,
                 spatial_dims: int = 2, base_channels: int = 16, fc_channels: int | None = None,
                 norm: str | None = "batch", dropout: float = 0.0):
        super().__init__()
        spatial_dims = _check_spatial_dims(spatial_dims)
        in_channels = _check_positive_int(in_channels, "in_channels")
        out_channels = _check_positive_int(out_channels, "out_channels")
        _check_choice(variant, "variant", _VARIANTS)
        b = _check_positive_int(base_channels, "base_channels")
        fc = 16 * b if fc_channels is None else _check_positive_int(fc_channels, "fc_channels")
        dropout = _check_dropout(dropout)
        self.init_kwargs = dict(in_channels=in_channels, out_channels=out_channels, variant=variant,
                                spatial_dims=spatial_dims, base_channels=b, fc_channels=fc,
                                norm=norm, dropout=dropout)
        self.variant, self.spatial_dims = variant, spatial_dims
        nd, K = spatial_dims, out_channels
        widths = (b, 2 * b, 4 * b, 8 * b, 8 * b)
        pool = _max_pool(nd)

        def stage(cin, cout):
            return nn.Sequential(DoubleConv(nd, cin, cout, norm=norm), pool(kernel_size=2))

        self.stage1 = stage(in_channels, widths[0])
        self.stage2 = stage(widths[0], widths[1])
        self.stage3 = stage(widths[1], widths[2])
        self.stage4 = stage(widths[2], widths[3])
        self.stage5 = stage(widths[3], widths[4])
        self.fc6 = ConvBlock(nd, widths[4], fc, kernel_size=3, norm=norm, dropout=dropout)
        self.fc7 = ConvBlock(nd, fc, fc, kernel_size=1, norm=norm, dropout=dropout)
        self.score_fr = _conv(nd)(fc, K, kernel_size=1)
        if variant in ("16s", "8s"):
            self.score_pool4 = _zero_conv(nd, widths[3], K)
            self.up2_fr = UpSample(nd, K, K, scale_factor=2, kernel_size=4, init="bilinear")
        if variant == "8s":
            self.score_pool3 = _zero_conv(nd, widths[2], K)
            self.up2_pool4 = UpSample(nd, K, K, scale_factor=2, kernel_size=4, init="bilinear")
        self.final_stride = {"32s": 32, "16s": 16, "8s": 8}[variant]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *spatial)`` -> ``(B, K, *spatial)`` logits."""
        if x.ndim != self.spatial_dims + 2:
            axes = "(B, C, H, W)" if self.spatial_dims == 2 else "(B, C, D, H, W)"
            raise ValueError(f"FCN with spatial_dims={self.spatial_dims} takes {axes}, got {tuple(x.shape)}")
        size = x.shape[2:]
        x = pad_to_multiple(x, 32)  # (B, C, *N), every N a multiple of 32
        pool3 = self.stage3(self.stage2(self.stage1(x)))  # (B, 4b, *N/8)
        pool4 = self.stage4(pool3)  # (B, 8b, *N/16)
        pool5 = self.stage5(pool4)  # (B, 8b, *N/32)
        score = self.score_fr(self.fc7(self.fc6(pool5)))  # (B, K, *N/32)
        if self.variant != "32s":
            score = self.up2_fr(score) + self.score_pool4(pool4)  # (B, K, *N/16)
        if self.variant == "8s":
            score = self.up2_pool4(score) + self.score_pool3(pool3)  # (B, K, *N/8)
        score = F.interpolate(score, scale_factor=self.final_stride,
                              mode=_interp_mode(self.spatial_dims), align_corners=False)  # (B, K, *N)
        return match_size(score, size)  # (B, K, *spatial)


def _zero_conv(spatial_dims: int, in_channels: int, out_channels: int) -> nn.Module:
    conv = _conv(spatial_dims)(in_channels, out_channels, kernel_size=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv
