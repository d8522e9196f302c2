"""Tests for medseg_course.models.fcn: shape tables (variants, odd sizes, 3D), the paper's
initialisation (zero skip scores, bilinear upsampling) and gradient flow."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseg_course.models.fcn import FCN

TINY = dict(base_channels=2, fc_channels=8)

# (arguments, input shape, expected output shape)
FCN_CASES = [
    (dict(variant="32s", **TINY), (2, 1, 64, 64), (2, 2, 64, 64)),
    (dict(variant="16s", **TINY), (2, 1, 64, 64), (2, 2, 64, 64)),
    (dict(variant="8s", **TINY), (2, 1, 64, 64), (2, 2, 64, 64)),
    (dict(variant="8s", **TINY), (2, 1, 33, 47), (2, 2, 33, 47)),
    (dict(variant="16s", **TINY), (2, 1, 1, 5), (2, 2, 1, 5)),
    (dict(in_channels=3, out_channels=5, variant="8s", **TINY), (2, 3, 70, 31), (2, 5, 70, 31)),
    (dict(out_channels=1, variant="32s", norm=None, **TINY), (1, 1, 97, 100), (1, 1, 97, 100)),
    (dict(variant="8s", norm="group", dropout=0.5, **TINY), (2, 1, 40, 40), (2, 2, 40, 40)),
    (dict(variant="8s", spatial_dims=3, **TINY), (2, 1, 9, 20, 33), (2, 2, 9, 20, 33)),
    (dict(out_channels=3, variant="32s", spatial_dims=3, **TINY), (2, 1, 8, 8, 8), (2, 3, 8, 8, 8)),
]


@pytest.mark.parametrize("kwargs, in_shape, out_shape", FCN_CASES)
def test_fcn_shapes(kwargs, in_shape, out_shape):
    model = FCN(**kwargs)
    assert model(torch.randn(in_shape)).shape == out_shape
    assert model.eval()(torch.randn(in_shape)).shape == out_shape


def test_skip_scores_start_at_zero_and_upsampling_is_bilinear():
    model = FCN(variant="8s", **TINY)
    for conv in (model.score_pool4, model.score_pool3):
        assert conv.weight.abs().sum() == 0 and conv.bias.abs().sum() == 0
    # the learned x2 upsampling starts as bilinear interpolation (away from the border)
    x = torch.randn(1, 2, 6, 6)
    with torch.no_grad():
        up = model.up2_fr(x)
    ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], rtol=0, atol=1e-5)


def test_16s_at_initialisation_is_the_coarse_prediction_upsampled():
    """With zero skip scores, FCN-16s predicts the stride-32 scores upsampled x2 then x16."""
    torch.manual_seed(0)
    model = FCN(variant="16s", **TINY).eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        pool4 = model.stage4(model.stage3(model.stage2(model.stage1(x))))
        coarse = model.score_fr(model.fc7(model.fc6(model.stage5(pool4))))  # (1, K, 2, 2)
        expected = F.interpolate(model.up2_fr(coarse), scale_factor=16, mode="bilinear", align_corners=False)
        torch.testing.assert_close(model(x), expected)


def test_gradients_reach_every_trainable_parameter():
    model = FCN(variant="8s", **TINY)
    model(torch.randn(2, 1, 64, 64)).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
    # the zero-initialised skip scores receive a gradient, so they do learn
    assert model.score_pool3.weight.grad.abs().sum() > 0


def test_init_kwargs_rebuild_the_same_architecture():
    model = FCN(1, 3, "16s", base_channels=4)
    clone = FCN(**model.init_kwargs)
    assert clone.init_kwargs == model.init_kwargs
    assert [k for k in clone.state_dict()] == [k for k in model.state_dict()]
    assert model.init_kwargs["fc_channels"] == 64


@pytest.mark.parametrize("kwargs, message", [
    (dict(variant="4s"), "variant must be one of"),
    (dict(spatial_dims=1), "spatial_dims must be 2"),
    (dict(base_channels=0), "base_channels must be a positive integer"),
])
def test_fcn_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FCN(**kwargs)


def test_fcn_refuses_wrong_rank():
    with pytest.raises(ValueError, match=r"spatial_dims=2 takes \(B, C, H, W\)"):
        FCN(**TINY)(torch.zeros(1, 64, 64))
