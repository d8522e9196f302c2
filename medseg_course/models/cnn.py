"""A patch classifier, and the same network made fully convolutional.

:class:`PatchCNN` labels the centre pixel of a ``P x P`` patch: segmenting an image with it means
running it once per pixel (:func:`classify_every_pixel`), the "sliding window" of the first deep
segmentation methods (Ciresan et al. 2012). :meth:`PatchCNN.to_fcn` rewrites it as a
:class:`DensePatchCNN`, which computes the very same numbers for every pixel in one pass over the
image: fully connected layers become convolutions, and the pooling stride is replaced by
dilation so that the output keeps one value per pixel.

Introduced in 06_cnn.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from medseg_course.models.blocks import ConvBlock, _check_dropout, _check_positive_int

__all__ = ["PatchCNN", "DensePatchCNN", "classify_every_pixel", "valid_patch_sizes"]

# Every stage: 3x3 "valid" convolution, then 3x3 max pooling with stride 2 (AlexNet's overlapping
# pooling). Both keep an odd size odd-or-exact, so odd patches have a true centre pixel and no
# pixel of the patch is ever dropped by a floor division.
_KERNEL, _POOL, _POOL_STRIDE = 3, 3, 2


def _feature_size(patch_size: int, n_stages: int) -> int | None:
    """Side of the last feature map for a patch, or None if some pixel would be dropped."""
    n = patch_size
    for _ in range(n_stages):
        n -= _KERNEL - 1  # valid convolution
        if n < _POOL or (n - _POOL) % _POOL_STRIDE:
            return None
        n = (n - _POOL) // _POOL_STRIDE + 1  # pooling, exact
    return n


def valid_patch_sizes(n_stages: int = 3, up_to: int = 101) -> list[int]:
    """Patch sizes that :class:`PatchCNN` accepts for ``n_stages`` stages.

    Introduced in 06_cnn.

    Parameters
    ----------
    n_stages : int, default 3
        Number of conv + pool stages (``len(channels)``).
    up_to : int, default 101
        Largest size listed.

    Returns
    -------
    list of int
        Sizes ``P`` whose every pixel is used: ``P = 2**n * f + 3 * (2**n - 1)`` for ``n`` stages
        and a last feature map of side ``f >= 1`` (29, 37, 45, ... for three stages: each stage
        maps a side ``m`` to ``(m - 3) / 2``).

    Examples
    --------
    >>> valid_patch_sizes(3, up_to=60)
    [29, 37, 45, 53]
    >>> valid_patch_sizes(2, up_to=30)
    [13, 17, 21, 25, 29]
    """
    n_stages = _check_positive_int(n_stages, "n_stages")
    return [p for p in range(1, up_to + 1) if _feature_size(p, n_stages)]


def _check_channels(channels) -> tuple[int, ...]:
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or not channels:
        raise ValueError(f"channels must be a non-empty sequence of ints, one per stage, got {channels!r}")
    return tuple(_check_positive_int(c, "channels[i]") for c in channels)


class _PatchNet(nn.Module):
    """Shared constructor of :class:`PatchCNN` and :class:`DensePatchCNN` (same parameter names)."""

    def __init__(self, in_channels: int, out_channels: int, *, patch_size: int, channels,
                 hidden: int, norm: str | None, dropout: float, dense: bool):
        super().__init__()
        in_channels = _check_positive_int(in_channels, "in_channels")
        out_channels = _check_positive_int(out_channels, "out_channels")
        patch_size = _check_positive_int(patch_size, "patch_size")
        channels = _check_channels(channels)
        hidden = _check_positive_int(hidden, "hidden")
        dropout = _check_dropout(dropout)
        f = _feature_size(patch_size, len(channels))
        if f is None:
            near = sorted(valid_patch_sizes(len(channels), patch_size + 40),
                          key=lambda p: abs(p - patch_size))[:2]
            raise ValueError(
                f"patch_size {patch_size} does not fit {len(channels)} stages of 3x3 convolution "
                f"+ 3x3/2 pooling without dropping pixels; use one of {sorted(near)} "
                f"(valid_patch_sizes({len(channels)}) lists them)"
            )
        self.init_kwargs = dict(in_channels=in_channels, out_channels=out_channels,
                                patch_size=patch_size, channels=channels, hidden=hidden,
                                norm=norm, dropout=dropout)
        self.patch_size, self.feature_size = patch_size, f
        # Stage i sees the image with stride 2**i; the dense net keeps stride 1 and dilates instead.
        stages, prev = [], in_channels
        for i, ch in enumerate(channels):
            d = 2**i if dense else 1
            stages.append(nn.Sequential(
                ConvBlock(2, prev, ch, kernel_size=_KERNEL, padding="valid", dilation=d, norm=norm),
                nn.MaxPool2d(_POOL, stride=1 if dense else _POOL_STRIDE, dilation=d),
            ))
            prev = ch
        self.stages = nn.ModuleList(stages)
        d = 2 ** len(channels) if dense else 1
        if dense:  # fully connected layers as convolutions over the f x f window
            self.fc1 = nn.Conv2d(prev, hidden, kernel_size=f, dilation=d)
            self.fc2 = nn.Conv2d(hidden, out_channels, kernel_size=1)
        else:
            self.fc1 = nn.Linear(prev * f * f, hidden)
            self.fc2 = nn.Linear(hidden, out_channels)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    @property
    def receptive_field(self) -> int:
        """Side of the square of input pixels that one output depends on: the patch size."""
        return self.patch_size


class PatchCNN(_PatchNet):
    """A small CNN that classifies the centre pixel of a patch (the sliding-window approach).

    Introduced in 06_cnn.

    Parameters
    ----------
    in_channels : int, default 1
    out_channels : int, default 2
        Number of classes K (one logit each).
    patch_size : int, default 45
        Side ``P`` of the square input patch, odd; must be one of :func:`valid_patch_sizes`.
    channels : sequence of int, default (16, 32, 64)
        Feature channels of each stage (3x3 valid convolution + norm + ReLU, then 3x3 max pooling
        with stride 2).
    hidden : int, default 128
        Width of the first fully connected layer.
    norm : {"batch", "instance", "group", None}, default "batch"
    dropout : float, default 0.0
        Dropout before the last layer.

    Notes
    -----
    ``forward``: ``(B, C, P, P)`` -> logits ``(B, K)`` for the centre pixel ``(P // 2, P // 2)``;
    softmax lives in the loss and in :func:`~medseg_course.train.predict`.

    With patch 45 and three stages the feature maps are 45 -> 43 -> 21 -> 19 -> 9 -> 7 -> 3: the
    last one is ``64 x 3 x 3``, flattened into ``fc1``. Convolutions are "valid" (no zero padding
    inside the patch), so the receptive field is exactly the patch and the output at a pixel
    depends only on the ``P x P`` pixels around it, the property that makes :meth:`to_fcn` exact.
    Pixels within ``P // 2`` of the image border are classified from a zero-padded patch
    (:class:`~medseg_course.data.loaders.CentrePixelDataset` pads the same way).

    References
    ----------
    .. [1] D. Ciresan, A. Giusti, L. Gambardella and J. Schmidhuber, "Deep neural networks
       segment neuronal membranes in electron microscopy images", NeurIPS 2012.
    .. [2] A. Krizhevsky, I. Sutskever and G. Hinton, "ImageNet classification with deep
       convolutional neural networks", NeurIPS 2012 (overlapping pooling).

    Examples
    --------
    >>> model = PatchCNN(in_channels=1, out_channels=2, patch_size=45)
    >>> model(torch.zeros(8, 1, 45, 45)).shape
    torch.Size([8, 2])
    >>> model.to_fcn()(torch.zeros(1, 1, 64, 80)).shape  # one logit vector per pixel
    torch.Size([1, 2, 64, 80])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, *, patch_size: int = 45,
                 channels: Sequence[int] = (16, 32, 64), hidden: int = 128,
                 norm: str | None = "batch", dropout: float = 0.0):
        super().__init__(in_channels, out_channels, patch_size=patch_size, channels=channels,
                         hidden=hidden, norm=norm, dropout=dropout, dense=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, P, P)`` patches -> ``(B, K)`` logits of their centre pixels."""
        P = self.patch_size
        if x.ndim != 4 or tuple(x.shape[2:]) != (P, P):
            raise ValueError(
                f"PatchCNN takes patches of shape (B, C, {P}, {P}), got {tuple(x.shape)}; to label "
                "every pixel of a whole image use model.to_fcn()(image) or classify_every_pixel"
            )
        for stage in self.stages:
            x = stage(x)  # (B, C_i, n_i, n_i), n shrinks to the feature size f
        x = x.flatten(1)  # (B, C_last * f * f)
        x = self.drop(self.act(self.fc1(x)))  # (B, hidden)
        return self.fc2(x)  # (B, K)

    def to_fcn(self) -> DensePatchCNN:
        """The equivalent fully convolutional network, with copied weights.

        Introduced in 06_cnn.

        Returns
        -------
        DensePatchCNN
            Same device, dtype and train/eval mode as this model. Its output at every pixel of
            an image equals this model applied to the patch centred there (zero-padded at the
            borders), up to float rounding.

        Notes
        -----
        Two rewrites:

        1. ``fc1`` (a ``Linear`` on the flattened ``C x f x f`` features) becomes a convolution
           with an ``f x f`` kernel, its weight reshaped to ``(hidden, C, f, f)`` (flattening is
           row-major, so the numbers do not move); ``fc2`` becomes a 1x1 convolution.
        2. Pooling with stride 2 would give one output per 2**n pixels (a coarse map, FCN-style).
           Instead every pooling gets stride 1, and every layer after it a dilation equal to the
           stride it used to see (the "a trous" trick, Holschneider et al. 1989; Long et al.'s
           "filter rarefaction"; Giusti et al. 2013). The network then evaluates all the
           patch-wise computations at once, sharing the work of overlapping patches. The
           alternative, "shift-and-stitch", runs the strided network on ``4**n`` shifted copies
           of the input and interleaves the outputs; it gives the same numbers.

        Batch norm in train mode normalises with the batch's statistics, which differ between
        patches and whole images: compare outputs in eval mode (``model.eval()``).
        """
        p = next(self.parameters())
        dense = DensePatchCNN(**self.init_kwargs).to(device=p.device, dtype=p.dtype)
        state = dict(self.state_dict())
        hidden, C, f = self.fc1.out_features, self.stages[-1][0].conv.out_channels, self.feature_size
        state["fc1.weight"] = state["fc1.weight"].reshape(hidden, C, f, f)
        state["fc2.weight"] = state["fc2.weight"].reshape(*state["fc2.weight"].shape, 1, 1)
        dense.load_state_dict(state)
        return dense.train(self.training)


class DensePatchCNN(_PatchNet):
    """A :class:`PatchCNN` rewritten to label every pixel of an image in one pass.

    Introduced in 06_cnn.

    Usually made with :meth:`PatchCNN.to_fcn`; the constructor takes the same arguments as
    :class:`PatchCNN` (and builds the same parameter names), so a checkpoint of either restores
    the other after the reshape of ``fc1``/``fc2`` done by ``to_fcn``.

    Notes
    -----
    ``forward``: ``(B, C, H, W)`` -> logits ``(B, K, H, W)``, any ``H, W``. The image is first
    zero-padded by ``P // 2`` on every side (as the patches at the border are), then goes through
    valid convolutions and stride-1 poolings dilated by 1, 2, 4, ... and ``fc1`` as an
    ``f x f`` convolution dilated by ``2**n``: the output is ``H x W`` again.

    References
    ----------
    .. [1] J. Long, E. Shelhamer and T. Darrell, "Fully convolutional networks for semantic
       segmentation", CVPR 2015 (section 3.1, "adapting classifiers for dense prediction").
    .. [2] A. Giusti, D. Ciresan, J. Masci, L. Gambardella and J. Schmidhuber, "Fast image
       scanning with deep max-pooling convolutional neural networks", ICIP 2013.

    Examples
    --------
    >>> fcn = DensePatchCNN(in_channels=1, out_channels=3, patch_size=29)
    >>> fcn(torch.zeros(2, 1, 31, 40)).shape
    torch.Size([2, 3, 31, 40])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, *, patch_size: int = 45,
                 channels: Sequence[int] = (16, 32, 64), hidden: int = 128,
                 norm: str | None = "batch", dropout: float = 0.0):
        super().__init__(in_channels, out_channels, patch_size=patch_size, channels=channels,
                         hidden=hidden, norm=norm, dropout=dropout, dense=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` image -> ``(B, K, H, W)`` logits, one vector per pixel."""
        if x.ndim != 4:
            raise ValueError(f"DensePatchCNN takes images of shape (B, C, H, W), got {tuple(x.shape)}")
        r = self.patch_size // 2
        x = F.pad(x, (r, r, r, r))  # (B, C, H + P - 1, W + P - 1)
        for stage in self.stages:
            x = stage(x)  # (B, C_i, ...) stride 1, shrinks by the dilated kernel extents
        x = self.drop(self.act(self.fc1(x)))  # (B, hidden, H, W)
        return self.fc2(x)  # (B, K, H, W)


def _extract_patches(image: torch.Tensor, rows: slice, patch_size: int) -> torch.Tensor:
    """Patches centred on every pixel of ``rows`` of a padded (1, C, H + P - 1, W + P - 1) image."""
    P = patch_size
    band = image[:, :, rows.start:rows.stop + P - 1]  # (1, C, n_rows + P - 1, W + P - 1)
    cols = F.unfold(band, kernel_size=P)  # (1, C * P * P, n_rows * W)
    return cols[0].T.reshape(-1, image.shape[1], P, P)  # (n_rows * W, C, P, P)


def classify_every_pixel(model: PatchCNN, image: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """Run a :class:`PatchCNN` on the patch centred at every pixel: the slow sliding window.

    Introduced in 06_cnn.

    Parameters
    ----------
    model : PatchCNN
    image : (B, C, H, W) torch.Tensor
        On the model's device. Zero-padded by ``P // 2`` at the borders, as :meth:`PatchCNN.to_fcn`.
    batch_size : int, default 1024
        Patches per forward pass (memory: ``batch_size * C * P * P`` floats, plus activations).

    Returns
    -------
    (B, K, H, W) torch.Tensor
        Logits, the same numbers as ``model.to_fcn()(image)`` up to float rounding.

    Notes
    -----
    Runs under ``torch.no_grad()`` and in whatever train/eval mode the model is in (use eval).
    ``H * W`` forward passes of a ``P x P`` patch: neighbouring patches share almost all their
    pixels, and all that shared work is repeated, which is what the dense network avoids.

    Examples
    --------
    >>> model = PatchCNN(patch_size=29, channels=(4, 4, 4), hidden=8).eval()
    >>> image = torch.rand(1, 1, 12, 10)
    >>> slow = classify_every_pixel(model, image)
    >>> slow.shape, torch.allclose(slow, model.to_fcn()(image), atol=1e-5)
    (torch.Size([1, 2, 12, 10]), True)
    """
    if not isinstance(model, PatchCNN):
        raise TypeError(f"model must be a PatchCNN, got {type(model).__name__}")
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        raise ValueError(f"image must be a (B, C, H, W) tensor, got {getattr(image, 'shape', type(image))}")
    batch_size = _check_positive_int(batch_size, "batch_size")
    P, r = model.patch_size, model.patch_size // 2
    B, _, H, W = image.shape
    rows_per_chunk = max(1, batch_size // W)
    out = []
    with torch.no_grad():
        for b in range(B):
            padded = F.pad(image[b:b + 1], (r, r, r, r))  # (1, C, H + P - 1, W + P - 1)
            logits = []
            for y in range(0, H, rows_per_chunk):
                rows = slice(y, min(y + rows_per_chunk, H))
                patches = _extract_patches(padded, rows, P)  # (n_rows * W, C, P, P)
                logits.append(model(patches))  # (n_rows * W, K)
            out.append(torch.cat(logits).T.reshape(1, -1, H, W))  # (1, K, H, W)
    return torch.cat(out)
