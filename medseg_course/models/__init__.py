"""Segmentation networks, one architecture per module, on shared 2D/3D blocks.

* :mod:`~medseg_course.models.blocks` -- conv-norm-activation blocks, down/up steps, bilinear
  upsampling kernels, size matching (shared by every network);
* :mod:`~medseg_course.models.cnn` -- :class:`PatchCNN`, a centre-pixel patch classifier, and its
  fully convolutional rewrite :class:`DensePatchCNN`;
* :mod:`~medseg_course.models.fcn` -- :class:`FCN` (FCN-32s/16s/8s);
* :mod:`~medseg_course.models.unet` -- :class:`UNet` (2D or 3D, same or valid padding);
* :mod:`~medseg_course.models.unet3d` -- :class:`UNet3D`, the U-Net with volumetric defaults;
* :mod:`~medseg_course.models.unetpp` -- :class:`UNetPlusPlus` (nested skips, deep supervision,
  pruning).

Every model returns raw logits (sigmoid/softmax live in the loss, the metrics and
:func:`medseg_course.train.predict`) and records its constructor arguments in ``init_kwargs``, a
plain dict that :func:`medseg_course.train.save_checkpoint` stores so that
:func:`~medseg_course.train.load_checkpoint` can rebuild it.

Introduced in 06_cnn (PatchCNN), 07_fcn (FCN), 08_unet (UNet), 09_unet3d (UNet3D) and 10_unetpp
(UNetPlusPlus).
"""

from medseg_course.models.blocks import (
    ConvBlock,
    DoubleConv,
    Down,
    UpCat,
    UpSample,
    bilinear_kernel,
    match_size,
    mirror_pad,
    pad_to_multiple,
)
from medseg_course.models.cnn import DensePatchCNN, PatchCNN, classify_every_pixel, valid_patch_sizes
from medseg_course.models.fcn import FCN
from medseg_course.models.unet import UNet, valid_output_size
from medseg_course.models.unet3d import UNet3D
from medseg_course.models.unetpp import UNetPlusPlus

__all__ = [
    "ConvBlock", "DensePatchCNN", "DoubleConv", "Down", "FCN", "PatchCNN", "UNet", "UNet3D",
    "UNetPlusPlus", "UpCat", "UpSample", "bilinear_kernel", "classify_every_pixel", "match_size",
    "mirror_pad", "pad_to_multiple", "valid_output_size", "valid_patch_sizes",
]
