"""3D U-Net (Cicek et al., 2016): the U-Net of 08_unet with volumetric convolutions.

Nothing is copied: :class:`UNet3D` is :class:`~medseg_course.models.unet.UNet` built with
``spatial_dims=3`` from the same blocks, with defaults that suit small MRI volumes.

Introduced in 09_unet3d.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch  # noqa: F401  (doctest namespace)

from medseg_course.models.unet import UNet

__all__ = ["UNet3D"]


class UNet3D(UNet):
    """3D U-Net for volumes ``(B, C, D, H, W)``.

    Introduced in 09_unet3d.

    Parameters
    ----------
    in_channels : int, default 1
    out_channels : int, default 3
        Number of classes K (the Hippocampus task has background, anterior, posterior).
    features : sequence of int, default (16, 32, 64, 128)
        Channels per level (depth = ``len(features) - 1``). The paper has (64, 128, 256, 512) with
        32 in the first convolution; 3D activations cost a factor ``D`` more memory than 2D ones.
    padding, norm, act, upsample, dropout
        As for :class:`~medseg_course.models.unet.UNet`; instance norm and leaky ReLU by default
        (nnU-Net's choice for 3D, robust with the small batches 3D forces).

    Notes
    -----
    ``forward``: ``(B, in_channels, D, H, W)`` -> ``(B, out_channels, D, H, W)`` raw logits.

    References
    ----------
    O. Cicek, A. Abdulkadir, S. S. Lienkamp, T. Brox, O. Ronneberger. 3D U-Net: Learning Dense
    Volumetric Segmentation from Sparse Annotation. MICCAI 2016, arXiv:1606.06650.

    Examples
    --------
    >>> model = UNet3D(in_channels=1, out_channels=3, features=(4, 8, 16))
    >>> model(torch.zeros(1, 1, 20, 27, 18)).shape
    torch.Size([1, 3, 20, 27, 18])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, *,
                 features: Sequence[int] = (16, 32, 64, 128), padding: str = "same",
                 norm: str | None = "instance", act: str = "leakyrelu", upsample: str = "deconv",
                 dropout: float = 0.0):
        super().__init__(in_channels, out_channels, spatial_dims=3, features=features, padding=padding,
                         norm=norm, act=act, upsample=upsample, dropout=dropout)
        del self.init_kwargs["spatial_dims"]  # fixed by the class; init_kwargs rebuild UNet3D
