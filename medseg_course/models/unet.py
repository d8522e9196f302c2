"""U-Net: the encoder-decoder with concatenated skips of Ronneberger, Fischer and Brox (2015).

Introduced in 08_unet; the same class in 3D (``spatial_dims=3``) is the 3D U-Net of 09_unet3d.
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
    mirror_pad,
    pad_to_multiple,
)

__all__ = ["UNet", "valid_output_size"]

_PADDINGS = ("same", "valid")


def valid_output_size(n: int, depth: int) -> int | None:
    """Output size of a valid-padding U-Net of ``depth`` poolings for an input of size ``n``.

    Every level applies two unpadded 3x3 convolutions (each loses 2 pixels); a 2x2 pooling
    needs an even size. Returns None when ``n`` cannot be pooled evenly or shrinks to nothing.

    Introduced in 08_unet.

    Examples
    --------
    >>> valid_output_size(572, depth=4)  # the U-Net paper's figure 1
    388
    >>> valid_output_size(570, depth=4) is None  # 566 at level 1, 283 is odd at level 2
    True
    """
    for _ in range(depth):  # contracting path
        n -= 4
        if n <= 0 or n % 2:
            return None
        n //= 2
    n -= 4  # bottom
    if n <= 0:
        return None
    for _ in range(depth):  # expanding path
        n = 2 * n - 4
        if n <= 0:
            return None
    return n


class UNet(nn.Module):
    """U-Net: contracting path, expanding path, skips joined by concatenation.

    Introduced in 08_unet.

    Parameters
    ----------
    in_channels : int, default 1
    out_channels : int, default 2
        Number of classes K (one logit map each).
    spatial_dims : {2, 3}, default 2
        2 for images ``(B, C, H, W)``; 3 for volumes ``(B, C, D, H, W)`` (see
        :class:`~medseg_course.models.unet3d.UNet3D`).
    features : sequence of int, default (32, 64, 128, 256, 512)
        Channels of each level, from the full-resolution level to the bottom; the depth (number of
        poolings) is ``len(features) - 1``. The paper has (64, 128, 256, 512, 1024).
    padding : {"same", "valid"}, default "same"
        ``"same"``: padded 3x3 convolutions; the input is zero-padded to a multiple of
        ``2 ** depth`` and the logits cropped back. ``"valid"``: the paper's unpadded
        convolutions, skips centre-cropped; the input is mirror-padded to the size whose valid
        output covers it (:meth:`valid_input_size`), the overlap-tile strategy, and the logits are
        cropped to the input's size.
    norm : {"batch", "instance", "group", None}, default "batch"
        The paper predates batch norm; every modern U-Net uses one.
    act : {"relu", "leakyrelu"}, default "relu"
    upsample : {"deconv", "linear"}, default "deconv"
        2x2 transposed convolution ("up-convolution") or linear interpolation + 1x1 conv.
    dropout : float, default 0.0
        Channel dropout in the bottom level (the paper uses 0.5 at the end of the contracting path).

    Notes
    -----
    ``forward``: ``(B, in_channels, *spatial)`` -> ``(B, out_channels, *spatial)`` raw logits
    (softmax lives in the loss, the metrics and :func:`medseg_course.train.predict`).

    References
    ----------
    O. Ronneberger, P. Fischer, T. Brox. U-Net: Convolutional Networks for Biomedical Image
    Segmentation. MICCAI 2015, arXiv:1505.04597.

    Examples
    --------
    >>> model = UNet(in_channels=1, out_channels=2, features=(8, 16, 32))
    >>> model(torch.zeros(1, 1, 50, 37)).shape
    torch.Size([1, 2, 50, 37])
    >>> UNet(1, 2, features=(4, 8, 16), padding="valid")(torch.zeros(1, 1, 30, 30)).shape
    torch.Size([1, 2, 30, 30])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, *, spatial_dims: int = 2,
                 features: Sequence[int] = (32, 64, 128, 256, 512), padding: str = "same",
                 norm: str | None = "batch", act: str = "relu", upsample: str = "deconv",
                 dropout: float = 0.0):
        super().__init__()
        spatial_dims = _check_spatial_dims(spatial_dims)
        in_channels = _check_positive_int(in_channels, "in_channels")
        out_channels = _check_positive_int(out_channels, "out_channels")
        if isinstance(features, (str, bytes)) or not isinstance(features, Sequence) or len(features) < 2:
            raise ValueError(f"features must be a sequence of at least two channel counts (one per level, "
                             f"e.g. (32, 64, 128, 256, 512)), got {features!r}")
        features = tuple(_check_positive_int(f, "each entry of features") for f in features)
        _check_choice(padding, "padding", _PADDINGS)
        _check_choice(norm, "norm", _NORMS)
        _check_choice(act, "act", tuple(a for a in _ACTS if a is not None))
        _check_choice(upsample, "upsample", _UPSAMPLE_MODES)
        dropout = _check_dropout(dropout)
        self.init_kwargs = dict(in_channels=in_channels, out_channels=out_channels,
                                spatial_dims=spatial_dims, features=list(features), padding=padding,
                                norm=norm, act=act, upsample=upsample, dropout=dropout)
        self.spatial_dims, self.padding = spatial_dims, padding
        self.depth = len(features) - 1
        nd, conv = spatial_dims, dict(padding=padding, norm=norm, act=act)

        self.encoder0 = DoubleConv(nd, in_channels, features[0], **conv)
        self.downs = nn.ModuleList(
            Down(nd, features[i - 1], features[i], **conv,
                 dropout=dropout if i == self.depth else 0.0)
            for i in range(1, self.depth + 1)
        )
        # ups[i] joins level i + 1 (deeper) with the skip of level i
        self.ups = nn.ModuleList(
            UpCat(nd, features[i + 1], features[i], features[i], up_channels=features[i],
                  upsample=upsample, **conv)
            for i in range(self.depth)
        )
        self.head = _conv(nd)(features[0], out_channels, kernel_size=1)

    def valid_input_size(self, size: int | Sequence[int]) -> int | tuple[int, ...]:
        """The smallest input size whose valid-padding output is at least ``size`` (per axis).

        Introduced in 08_unet.

        Examples
        --------
        >>> UNet(features=(64, 128, 256, 512, 1024), padding="valid").valid_input_size(388)
        572
        """
        if not isinstance(size, int):
            return tuple(self.valid_input_size(int(s)) for s in size)
        n = max(int(size), 1)
        while True:
            out = valid_output_size(n, self.depth)
            if out is not None and out >= size:
                return n
            n += 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *spatial)`` -> ``(B, K, *spatial)`` logits."""
        if x.ndim != self.spatial_dims + 2:
            axes = "(B, C, H, W)" if self.spatial_dims == 2 else "(B, C, D, H, W)"
            raise ValueError(f"{type(self).__name__} with spatial_dims={self.spatial_dims} takes {axes}, "
                             f"got shape {tuple(x.shape)}")
        size = tuple(x.shape[2:])
        if self.padding == "same":
            x = pad_to_multiple(x, 2 ** self.depth)  # (B, C, *N), N a multiple of 2**depth
        else:
            big = self.valid_input_size(size)
            pads = []
            for n, m in zip(size, big):
                before = (m - valid_output_size(m, self.depth)) // 2  # context lost per side
                pads.append((before, m - n - before))
            x = mirror_pad(x, pads)  # (B, C, *big): overlap-tile context by mirroring

        skips = [self.encoder0(x)]  # level 0: (B, f0, *N)
        for down in self.downs:
            skips.append(down(skips[-1]))  # level i: (B, f_i, *N / 2**i)
        x = skips.pop()  # bottom: (B, f_depth, *N / 2**depth)
        for up in reversed(self.ups):
            x = up(x, skips.pop())  # (B, f_i, *N / 2**i)
        logits = self.head(x)  # (B, K, *N) same; (B, K, *out) valid
        if self.padding == "same":
            return match_size(logits, size)  # (B, K, *spatial)
        return logits[(slice(None), slice(None)) + tuple(slice(0, n) for n in size)]  # (B, K, *spatial)
