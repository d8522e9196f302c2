"""UNet++: nested, dense skip pathways and deep supervision (Zhou et al., 2018).

Introduced in 10_unetpp.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from medseg_course.models.blocks import (
    _ACTS,
    _NORMS,
    _UPSAMPLE_MODES,
    DoubleConv,
    Down,
    UpCat,
    _check_choice,
    _check_dropout,
    _check_positive_int,
    _check_spatial_dims,
    _conv,
    match_size,
    pad_to_multiple,
)

__all__ = ["UNetPlusPlus"]


def _cat(*tensors: torch.Tensor) -> torch.Tensor:
    return torch.cat(tensors, dim=1)


class UNetPlusPlus(nn.Module):
    """UNet++ of depth 4: nodes ``x_i_j`` (level ``i``, ``j`` convolution nodes along the skip).

    ``x_i_0`` is the encoder; every other node concatenates all earlier nodes of its level with
    the upsampled node below-left of it and applies a double conv:
    ``x_i_j = H([x_i_0, ..., x_i_(j-1), Up(x_(i+1)_(j-1))])``. The four top nodes
    ``x_0_1 .. x_0_4`` each have a 1x1 head: the outputs of the sub-networks L1..L4.

    Introduced in 10_unetpp.

    Parameters
    ----------
    in_channels : int, default 1
    out_channels : int, default 2
        Number of classes K.
    spatial_dims : {2, 3}, default 2
    features : sequence of 5 int, default (32, 64, 128, 256, 512)
        Channels of levels 0..4 (the paper's backbone widths).
    deep_supervision : bool, default False
        Train every head: in training mode ``forward`` returns the list ``[L1, L2, L3, L4]`` of
        logits (each of the input's size), which
        :class:`~medseg_course.losses.DeepSupervisionLoss` averages. Without it, training
        returns the L4 logits alone and only the L4 head learns.
    norm, act, upsample, dropout
        As for :class:`~medseg_course.models.unet.UNet` (dropout in the bottom node ``x_4_0``).

    Notes
    -----
    In eval mode ``forward`` returns the logits of level :attr:`inference_level` (4 unless
    :meth:`prune` changed it) and computes only the nodes that level needs: pruned to L1, the
    network is ``x_0_0, x_1_0, x_0_1``. Pruning needs heads trained by deep supervision.
    ``forward``: ``(B, in_channels, *spatial)`` -> ``(B, K, *spatial)`` raw logits (the input
    is zero-padded to a multiple of 16 and the logits cropped back).

    References
    ----------
    Z. Zhou, M. M. Rahman Siddiquee, N. Tajbakhsh, J. Liang. UNet++: A Nested U-Net
    Architecture for Medical Image Segmentation. DLMIA 2018, arXiv:1807.10165; and UNet++:
    Redesigning Skip Connections to Exploit Multiscale Features in Image Segmentation, IEEE TMI
    2020, arXiv:1912.05074.

    Examples
    --------
    >>> model = UNetPlusPlus(1, 2, features=(4, 8, 16, 32, 64), deep_supervision=True)
    >>> [out.shape for out in model(torch.zeros(2, 1, 40, 30))]  # training mode: one per level
    [torch.Size([2, 2, 40, 30]), torch.Size([2, 2, 40, 30]), torch.Size([2, 2, 40, 30]), torch.Size([2, 2, 40, 30])]
    >>> model.prune(2).eval()(torch.zeros(1, 1, 40, 30)).shape  # L2 only
    torch.Size([1, 2, 40, 30])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, *, spatial_dims: int = 2,
                 features: Sequence[int] = (32, 64, 128, 256, 512), deep_supervision: bool = False,
                 norm: str | None = "batch", act: str = "relu", upsample: str = "deconv",
                 dropout: float = 0.0):
        super().__init__()
        nd = _check_spatial_dims(spatial_dims)
        in_channels = _check_positive_int(in_channels, "in_channels")
        out_channels = _check_positive_int(out_channels, "out_channels")
        if isinstance(features, (str, bytes)) or not isinstance(features, Sequence) or len(features) != 5:
            raise ValueError(f"features must give the channels of the 5 levels x_0 .. x_4, e.g. "
                             f"(32, 64, 128, 256, 512), got {features!r}")
        f = tuple(_check_positive_int(c, "each entry of features") for c in features)
        if not isinstance(deep_supervision, bool):
            raise TypeError(f"deep_supervision must be True or False, got {deep_supervision!r}")
        _check_choice(norm, "norm", _NORMS)
        _check_choice(act, "act", tuple(a for a in _ACTS if a is not None))
        _check_choice(upsample, "upsample", _UPSAMPLE_MODES)
        dropout = _check_dropout(dropout)
        self.init_kwargs = dict(in_channels=in_channels, out_channels=out_channels, spatial_dims=nd,
                                features=list(f), deep_supervision=deep_supervision, norm=norm,
                                act=act, upsample=upsample, dropout=dropout)
        self.spatial_dims, self.deep_supervision = nd, deep_supervision
        self.inference_level = 4
        conv = dict(norm=norm, act=act)

        def node(i: int, j: int) -> UpCat:
            # x_i_j: upsample x_(i+1)_(j-1) to f_i channels, concatenate with j nodes of level i
            return UpCat(nd, f[i + 1], j * f[i], f[i], up_channels=f[i], upsample=upsample, **conv)

        # backbone x_i_0
        self.conv_0_0 = DoubleConv(nd, in_channels, f[0], **conv)
        self.conv_1_0 = Down(nd, f[0], f[1], **conv)
        self.conv_2_0 = Down(nd, f[1], f[2], **conv)
        self.conv_3_0 = Down(nd, f[2], f[3], **conv)
        self.conv_4_0 = Down(nd, f[3], f[4], **conv, dropout=dropout)
        # nested skip pathways, column by column
        self.conv_0_1, self.conv_1_1, self.conv_2_1, self.conv_3_1 = node(0, 1), node(1, 1), node(2, 1), node(3, 1)
        self.conv_0_2, self.conv_1_2, self.conv_2_2 = node(0, 2), node(1, 2), node(2, 2)
        self.conv_0_3, self.conv_1_3 = node(0, 3), node(1, 3)
        self.conv_0_4 = node(0, 4)
        # one 1x1 head per top node: the outputs of L1..L4
        self.heads = nn.ModuleList(_conv(nd)(f[0], out_channels, kernel_size=1) for _ in range(4))

    def prune(self, level: int) -> UNetPlusPlus:
        """Use the sub-network L``level`` (1..4) at inference; returns the model itself.

        Introduced in 10_unetpp.
        """
        if isinstance(level, bool) or level not in (1, 2, 3, 4):
            raise ValueError(f"level must be 1, 2, 3 or 4 (the sub-networks L1..L4), got {level!r}")
        if level != 4 and not self.deep_supervision:
            raise ValueError(
                f"pruning to L{level} needs the heads of L1..L3, which only deep supervision trains; "
                "build the model with UNetPlusPlus(..., deep_supervision=True) and train it again")
        self.inference_level = int(level)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """``(B, C, *spatial)`` -> ``(B, K, *spatial)`` logits, or a list of 4 while training with
        deep supervision."""
        if x.ndim != self.spatial_dims + 2:
            axes = "(B, C, H, W)" if self.spatial_dims == 2 else "(B, C, D, H, W)"
            raise ValueError(f"UNetPlusPlus with spatial_dims={self.spatial_dims} takes {axes}, "
                             f"got shape {tuple(x.shape)}")
        size = x.shape[2:]
        all_levels = self.training and self.deep_supervision
        level = 4 if self.training else self.inference_level
        x = pad_to_multiple(x, 16)  # (B, C, *N), N a multiple of 16

        x_0_0 = self.conv_0_0(x)  # (B, f0, *N)
        x_1_0 = self.conv_1_0(x_0_0)  # (B, f1, *N/2)
        x_0_1 = self.conv_0_1(x_1_0, x_0_0)  # (B, f0, *N)
        tops = [x_0_1]
        if level >= 2:
            x_2_0 = self.conv_2_0(x_1_0)  # (B, f2, *N/4)
            x_1_1 = self.conv_1_1(x_2_0, x_1_0)  # (B, f1, *N/2)
            x_0_2 = self.conv_0_2(x_1_1, _cat(x_0_0, x_0_1))  # (B, f0, *N)
            tops.append(x_0_2)
        if level >= 3:
            x_3_0 = self.conv_3_0(x_2_0)  # (B, f3, *N/8)
            x_2_1 = self.conv_2_1(x_3_0, x_2_0)  # (B, f2, *N/4)
            x_1_2 = self.conv_1_2(x_2_1, _cat(x_1_0, x_1_1))  # (B, f1, *N/2)
            x_0_3 = self.conv_0_3(x_1_2, _cat(x_0_0, x_0_1, x_0_2))  # (B, f0, *N)
            tops.append(x_0_3)
        if level >= 4:
            x_4_0 = self.conv_4_0(x_3_0)  # (B, f4, *N/16)
            x_3_1 = self.conv_3_1(x_4_0, x_3_0)  # (B, f3, *N/8)
            x_2_2 = self.conv_2_2(x_3_1, _cat(x_2_0, x_2_1))  # (B, f2, *N/4)
            x_1_3 = self.conv_1_3(x_2_2, _cat(x_1_0, x_1_1, x_1_2))  # (B, f1, *N/2)
            x_0_4 = self.conv_0_4(x_1_3, _cat(x_0_0, x_0_1, x_0_2, x_0_3))  # (B, f0, *N)
            tops.append(x_0_4)

        if all_levels:
            return [match_size(head(t), size) for head, t in zip(self.heads, tops)]  # 4 x (B, K, *spatial)
        return match_size(self.heads[level - 1](tops[level - 1]), size)  # (B, K, *spatial)
