"""Segmentation networks, one architecture per module, on shared 2D/3D blocks.

* :mod:`~medseg_course.models.blocks` -- conv-norm-activation blocks, down/up steps, bilinear
  upsampling kernels, size matching (shared by every network);
* :mod:`~medseg_course.models.cnn` -- :class:`PatchCNN`, a centre-pixel patch classifier, and its
  fully convolutional rewrite :class:`DensePatchCNN`;
* :mod:`~medseg_course.models.fcn` -- :class:`FCN` (FCN-32s/16s/8s).

Every model returns raw logits (sigmoid/softmax live in the loss, the metrics and
:func:`medseg_course.train.predict`) and records its constructor arguments in ``init_kwargs``, a
plain dict that :func:`medseg_course.train.save_checkpoint` stores so that
:func:`~medseg_course.train.load_checkpoint` can rebuild it.

Introduced in 06_cnn (PatchCNN) and 07_fcn (FCN).
"""

from medseg_course.models.blocks import (
    ConvBlock,
    DoubleConv,
    Down,
    UpCat,
    UpSample,
    bilinear_kernel,
    match_size,
    pad_to_multiple,
)
from medseg_course.models.cnn import DensePatchCNN, PatchCNN, classify_every_pixel, valid_patch_sizes
from medseg_course.models.fcn import FCN

__all__ = [
    "ConvBlock", "DensePatchCNN", "DoubleConv", "Down", "FCN", "PatchCNN", "UpCat", "UpSample",
    "bilinear_kernel", "classify_every_pixel", "match_size", "pad_to_multiple", "valid_patch_sizes",
]
