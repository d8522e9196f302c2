"""Tests for medseg_course.models.blocks: shape tables (2D, 3D, odd sizes), bilinear kernels
against F.interpolate, size matching, and input validation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

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

# (constructor arguments, input shape, expected output shape)
CONV_BLOCK_CASES = [
    (dict(spatial_dims=2, in_channels=1, out_channels=4), (2, 1, 16, 16), (2, 4, 16, 16)),
    (dict(spatial_dims=2, in_channels=3, out_channels=5), (1, 3, 17, 9), (1, 5, 17, 9)),
    (dict(spatial_dims=2, in_channels=1, out_channels=2, padding="valid"), (1, 1, 7, 8), (1, 2, 5, 6)),
    (dict(spatial_dims=2, in_channels=1, out_channels=2, stride=2), (1, 1, 9, 10), (1, 2, 5, 5)),
    (dict(spatial_dims=2, in_channels=1, out_channels=2, dilation=2), (1, 1, 11, 12), (1, 2, 11, 12)),
    (dict(spatial_dims=2, in_channels=1, out_channels=2, dilation=2, padding="valid"), (1, 1, 11, 12), (1, 2, 7, 8)),
    (dict(spatial_dims=2, in_channels=2, out_channels=2, kernel_size=1, norm=None, act=None), (1, 2, 3, 3), (1, 2, 3, 3)),
    (dict(spatial_dims=2, in_channels=2, out_channels=8, norm="group"), (2, 2, 5, 5), (2, 8, 5, 5)),
    (dict(spatial_dims=3, in_channels=1, out_channels=4), (2, 1, 5, 6, 7), (2, 4, 5, 6, 7)),
    (dict(spatial_dims=3, in_channels=2, out_channels=3, padding="valid", norm="instance"), (1, 2, 5, 6, 7), (1, 3, 3, 4, 5)),
    (dict(spatial_dims=3, in_channels=1, out_channels=2, act="leakyrelu", dropout=0.2), (2, 1, 4, 4, 4), (2, 2, 4, 4, 4)),
]


@pytest.mark.parametrize("kwargs, in_shape, out_shape", CONV_BLOCK_CASES)
def test_conv_block_shapes(kwargs, in_shape, out_shape):
    assert ConvBlock(**kwargs)(torch.randn(in_shape)).shape == out_shape


DOUBLE_DOWN_UP_CASES = [
    (DoubleConv, dict(spatial_dims=2, in_channels=1, out_channels=8), (1, 1, 15, 16), (1, 8, 15, 16)),
    (DoubleConv, dict(spatial_dims=2, in_channels=1, out_channels=8, mid_channels=3), (1, 1, 15, 16), (1, 8, 15, 16)),
    (DoubleConv, dict(spatial_dims=2, in_channels=1, out_channels=4, padding="valid"), (1, 1, 15, 16), (1, 4, 11, 12)),
    (DoubleConv, dict(spatial_dims=3, in_channels=2, out_channels=4), (1, 2, 5, 7, 9), (1, 4, 5, 7, 9)),
    (Down, dict(spatial_dims=2, in_channels=4, out_channels=8), (2, 4, 16, 16), (2, 8, 8, 8)),
    (Down, dict(spatial_dims=2, in_channels=4, out_channels=8), (1, 4, 17, 15), (1, 8, 8, 7)),
    (Down, dict(spatial_dims=3, in_channels=1, out_channels=2), (1, 1, 9, 8, 7), (1, 2, 4, 4, 3)),
    (UpSample, dict(spatial_dims=2, in_channels=4, out_channels=2), (1, 4, 5, 6), (1, 2, 10, 12)),
    (UpSample, dict(spatial_dims=2, in_channels=4, out_channels=4, kernel_size=4, init="bilinear"), (1, 4, 5, 6), (1, 4, 10, 12)),
    (UpSample, dict(spatial_dims=2, in_channels=2, out_channels=2, scale_factor=4, kernel_size=8), (1, 2, 3, 5), (1, 2, 12, 20)),
    (UpSample, dict(spatial_dims=2, in_channels=4, out_channels=2, mode="linear"), (1, 4, 5, 6), (1, 2, 10, 12)),
    (UpSample, dict(spatial_dims=3, in_channels=2, out_channels=1), (1, 2, 3, 4, 5), (1, 1, 6, 8, 10)),
    (UpSample, dict(spatial_dims=3, in_channels=2, out_channels=2, mode="linear"), (1, 2, 3, 4, 5), (1, 2, 6, 8, 10)),
]


@pytest.mark.parametrize("cls, kwargs, in_shape, out_shape", DOUBLE_DOWN_UP_CASES)
def test_block_shapes(cls, kwargs, in_shape, out_shape):
    assert cls(**kwargs)(torch.randn(in_shape)).shape == out_shape


# (arguments, x shape, skip shape, expected output shape): odd skips come from floor pooling
UPCAT_CASES = [
    (dict(spatial_dims=2, in_channels=16, skip_channels=8, out_channels=8), (1, 16, 4, 4), (1, 8, 8, 8), (1, 8, 8, 8)),
    (dict(spatial_dims=2, in_channels=16, skip_channels=8, out_channels=8), (1, 16, 4, 5), (1, 8, 9, 11), (1, 8, 9, 11)),
    (dict(spatial_dims=2, in_channels=16, skip_channels=8, out_channels=4, upsample="linear"), (2, 16, 3, 3), (2, 8, 7, 6), (2, 4, 7, 6)),
    (dict(spatial_dims=3, in_channels=8, skip_channels=4, out_channels=4), (1, 8, 2, 3, 4), (1, 4, 5, 7, 9), (1, 4, 5, 7, 9)),
]


@pytest.mark.parametrize("kwargs, x_shape, skip_shape, out_shape", UPCAT_CASES)
def test_upcat_shapes(kwargs, x_shape, skip_shape, out_shape):
    assert UpCat(**kwargs)(torch.randn(x_shape), torch.randn(skip_shape)).shape == out_shape


def test_down_then_upcat_restores_odd_sizes():
    x = torch.randn(1, 4, 13, 10, 7)
    down = Down(3, 4, 8)(x)
    assert UpCat(3, 8, 4, 4)(down, x).shape == (1, 4, 13, 10, 7)


def _bilinear_deconv(channels, factor, spatial_dims=2):
    conv_t = torch.nn.ConvTranspose2d if spatial_dims == 2 else torch.nn.ConvTranspose3d
    up = conv_t(channels, channels, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(channels, channels, 2 * factor, spatial_dims=spatial_dims))
    return up


@pytest.mark.parametrize("factor", [2, 4, 8])
def test_bilinear_kernel_matches_interpolate_on_a_linear_image(factor):
    yy, xx = torch.meshgrid(torch.arange(6.0), torch.arange(7.0), indexing="ij")
    image = torch.stack([2 * xx - yy, xx + 3 * yy])[None]  # (1, 2, 6, 7), two linear ramps
    with torch.no_grad():
        ours = _bilinear_deconv(2, factor)(image)
    ref = F.interpolate(image, scale_factor=factor, mode="bilinear", align_corners=False)
    assert ours.shape == ref.shape == (1, 2, 6 * factor, 7 * factor)
    m = factor // 2  # the border band where the deconvolution sees zeros outside the image
    torch.testing.assert_close(ours[..., m:-m, m:-m], ref[..., m:-m, m:-m], rtol=0, atol=1e-5)


def test_bilinear_kernel_constant_image_and_border():
    image = torch.full((1, 1, 5, 5), 3.0)
    with torch.no_grad():
        ours = _bilinear_deconv(1, 2)(image)
    assert torch.allclose(ours[..., 1:-1, 1:-1], torch.tensor(3.0))  # interior: constant kept
    assert torch.allclose(ours[0, 0, 0, 1:-1], torch.tensor(3.0 * 0.75))  # edge: a zero neighbour


def test_bilinear_kernel_3d_matches_trilinear():
    z, y, x = torch.meshgrid(torch.arange(4.0), torch.arange(5.0), torch.arange(3.0), indexing="ij")
    vol = (x + 2 * y - z)[None, None]
    with torch.no_grad():
        ours = _bilinear_deconv(1, 2, spatial_dims=3)(vol)
    ref = F.interpolate(vol, scale_factor=2, mode="trilinear", align_corners=False)
    torch.testing.assert_close(ours[..., 1:-1, 1:-1, 1:-1], ref[..., 1:-1, 1:-1, 1:-1], rtol=0, atol=1e-5)


def test_bilinear_kernel_values_and_channels():
    k = bilinear_kernel(2, 3, 4)
    assert k.shape == (2, 3, 4, 4)
    assert torch.allclose(k[0, 0, 0], torch.tensor([0.0625, 0.1875, 0.1875, 0.0625]))
    assert k[0, 1].abs().sum() == 0 and k[1, 0].abs().sum() == 0 and k[:, 2].abs().sum() == 0
    odd = bilinear_kernel(1, 1, 3)[0, 0]  # factor 2, centred: 1D kernel (0.5, 1, 0.5)
    assert torch.allclose(odd[1], torch.tensor([0.5, 1.0, 0.5]))


def test_match_size_round_trip_and_pad_to_multiple():
    x = torch.randn(2, 3, 13, 30)
    padded = pad_to_multiple(x, 16)
    assert padded.shape == (2, 3, 16, 32)
    assert torch.equal(match_size(padded, (13, 30)), x)
    assert match_size(x, (10, 31)).shape == (2, 3, 10, 31)
    with pytest.raises(ValueError, match="one entry per spatial axis"):
        match_size(x, (10,))


@pytest.mark.parametrize("kwargs, message", [
    (dict(spatial_dims=1, in_channels=1, out_channels=1), "spatial_dims must be 2"),
    (dict(spatial_dims=2, in_channels=0, out_channels=1), "in_channels must be a positive integer"),
    (dict(spatial_dims=2, in_channels=1, out_channels=1, norm="layer"), "norm must be one of"),
    (dict(spatial_dims=2, in_channels=1, out_channels=1, act="gelu"), "act must be one of"),
    (dict(spatial_dims=2, in_channels=1, out_channels=1, padding="full"), "padding must be"),
    (dict(spatial_dims=2, in_channels=1, out_channels=1, dropout=1.0), "dropout must be"),
])
def test_conv_block_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConvBlock(**kwargs)


def test_upsample_validation():
    with pytest.raises(ValueError, match="init='bilinear' needs kernel_size == 2"):
        UpSample(2, 2, 2, init="bilinear")
    with pytest.raises(ValueError, match="kernel_size must be scale_factor"):
        UpSample(2, 2, 2, kernel_size=3)


def test_conv_block_bias_follows_norm():
    assert ConvBlock(2, 1, 2).conv.bias is None
    assert ConvBlock(2, 1, 2, norm=None).conv.bias is not None
