"""Activation memory: the formula, forward-hook counts and autograd's saved tensors agree where they
must, and the 3D U-Net's costs scale as the formula says."""

import pytest
import torch
import torch.nn as nn

from medseg_course.models import UNet, UNet3D
from medseg_course.models.blocks import ConvBlock, DoubleConv
from medseg_course.models.memory import (
    activation_elements,
    cuda_peak_bytes,
    layer_outputs,
    saved_activation_bytes,
    tensor_bytes,
)


def test_tensor_bytes_counts_every_axis_and_the_dtype():
    assert tensor_bytes((2, 16, 40, 56, 40)) == 2 * 16 * 40 * 56 * 40 * 4
    assert tensor_bytes((3, 5), torch.float16) == 30
    assert tensor_bytes((3, 5), torch.float64) == 120
    with pytest.raises(ValueError, match="shape must be a sequence"):
        tensor_bytes("2x3")
    with pytest.raises(TypeError, match="torch.dtype"):
        tensor_bytes((2, 3), "float32")


def test_layer_outputs_match_the_shapes_and_flag_inplace_activations():
    block = DoubleConv(3, 2, 8, norm="instance", act="leakyrelu")
    outs = layer_outputs(block, (2, 2, 5, 6, 7))
    assert [o.kind for o in outs] == ["Conv3d", "InstanceNorm3d", "LeakyReLU"] * 2
    assert all(o.shape == (2, 8, 5, 6, 7) and o.elements == 2 * 8 * 210 for o in outs)
    assert [o.new for o in outs] == [True, True, False] * 2  # in-place activations reuse the norm's memory
    assert activation_elements(block, (2, 2, 5, 6, 7)) == 4 * 2 * 8 * 210


def test_saved_bytes_of_a_conv_relu_block_by_hand():
    # conv (no norm) saves its input; the in-place ReLU saves its output (the conv output it overwrote)
    block = ConvBlock(3, 3, 4, norm=None)
    x = torch.randn(2, 3, 6, 5, 4)
    assert saved_activation_bytes(block, x) == tensor_bytes(x.shape) + tensor_bytes((2, 4, 6, 5, 4))
    # weights are not activations
    assert saved_activation_bytes(nn.Conv3d(3, 4, 3, padding=1), x) == tensor_bytes(x.shape)


def test_saved_bytes_scale_with_batch_and_with_depth():
    model = UNet3D(1, 3, features=(4, 8, 16)).train()
    one = saved_activation_bytes(model, (1, 1, 16, 16, 16))
    assert saved_activation_bytes(model, (2, 1, 16, 16, 16)) == 2 * one
    # twice the depth: twice the bytes, but for the per-channel statistics of instance norm
    assert saved_activation_bytes(model, (1, 1, 32, 16, 16)) == pytest.approx(2 * one, rel=1e-3)
    # a 2D U-Net of the same widths on one 16x16 slice keeps 16 times less at full resolution, and less
    # than that below (a 3D pooling divides the voxels by 8, a 2D one the pixels by 4)
    flat = saved_activation_bytes(UNet(1, 3, features=(4, 8, 16), norm="instance", act="leakyrelu").train(),
                                  (1, 1, 16, 16))
    assert 8 * flat < one < 16 * flat
    assert one > tensor_bytes((1, 4, 16, 16, 16))  # far more than one feature map


@pytest.mark.parametrize("model, shape", [
    (UNet3D(1, 3, features=(4, 8, 16)), (2, 1, 16, 24, 16)),
    (UNet(1, 2, features=(4, 8, 16), norm="group"), (3, 1, 20, 28)),
    (ConvBlock(3, 1, 4, norm=None), (2, 1, 6, 8, 8)),
])
def test_meta_device_counts_the_same_without_computing(model, shape):
    model.train()
    assert saved_activation_bytes(model, shape, meta=True) == saved_activation_bytes(model, shape)
    assert next(model.parameters()).device.type == "cpu"  # the model itself stays where it was


def test_saved_bytes_need_no_gradients_on_the_weights():
    model = UNet3D(1, 3, features=(4, 8)).train()
    for p in model.parameters():
        p.requires_grad_(False)
    assert saved_activation_bytes(model, (1, 1, 8, 8, 8)) > 0


def test_cuda_peak_bytes_refuses_the_cpu():
    with pytest.raises(RuntimeError, match="saved_activation_bytes"):
        cuda_peak_bytes(nn.Conv3d(1, 1, 3), (1, 1, 4, 4, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_peak_is_at_least_the_saved_activations():
    model = UNet3D(1, 3, features=(8, 16, 32)).cuda().train()
    saved = saved_activation_bytes(model, (2, 1, 32, 32, 32))
    peak = cuda_peak_bytes(model, (2, 1, 32, 32, 32), backward=False)
    assert peak >= 0.9 * saved
