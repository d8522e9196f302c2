"""Tests for medseg_course.models.cnn: PatchCNN shapes, patch-size rules, and the exactness of
its fully convolutional rewrite (dense output == the patch classifier at every pixel)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseg_course.models.cnn import DensePatchCNN, PatchCNN, classify_every_pixel, valid_patch_sizes

SMALL = dict(channels=(4, 6, 8), hidden=12)

# (arguments, input shape, expected output shape)
PATCH_CASES = [
    (dict(), (2, 1, 45, 45), (2, 2)),
    (dict(in_channels=3, out_channels=4, patch_size=29, **SMALL), (5, 3, 29, 29), (5, 4)),
    (dict(patch_size=37, **SMALL), (1, 1, 37, 37), (1, 2)),
    (dict(patch_size=17, channels=(4, 8), hidden=8), (3, 1, 17, 17), (3, 2)),
    (dict(patch_size=13, channels=(4, 8), norm=None, dropout=0.5), (3, 1, 13, 13), (3, 2)),
]


@pytest.mark.parametrize("kwargs, in_shape, out_shape", PATCH_CASES)
def test_patch_cnn_shapes(kwargs, in_shape, out_shape):
    assert PatchCNN(**kwargs)(torch.randn(in_shape)).shape == out_shape


# (arguments, image shape): the dense network keeps every (odd or even) image size
DENSE_CASES = [
    (dict(patch_size=29, **SMALL), (1, 1, 16, 16)),
    (dict(patch_size=29, **SMALL), (2, 1, 13, 21)),
    (dict(in_channels=3, out_channels=3, patch_size=37, **SMALL), (1, 3, 9, 40)),
    (dict(patch_size=13, channels=(4, 8), hidden=8), (1, 1, 1, 1)),
]


@pytest.mark.parametrize("kwargs, in_shape", DENSE_CASES)
def test_dense_patch_cnn_shapes(kwargs, in_shape):
    out = DensePatchCNN(**kwargs)(torch.randn(in_shape))
    assert out.shape == (in_shape[0], kwargs.get("out_channels", 2), *in_shape[2:])


def test_valid_patch_sizes_rule():
    assert valid_patch_sizes(3, up_to=60) == [29, 37, 45, 53]
    assert valid_patch_sizes(1, up_to=10) == [5, 7, 9]
    for n in (1, 2, 3, 4):
        for p in valid_patch_sizes(n, up_to=120):
            f, rest = divmod(p - 3 * (2**n - 1), 2**n)
            assert rest == 0 and f >= 1


def test_patch_size_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"patch_size 44 .* use one of \[37, 45\]"):
        PatchCNN(patch_size=44)
    with pytest.raises(ValueError, match=r"shape \(B, C, 45, 45\), got \(1, 1, 64, 64\).*to_fcn"):
        PatchCNN()(torch.zeros(1, 1, 64, 64))


def _randomised(model):
    """Random BN statistics and affine parameters, so that eval-mode BN is not the identity."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


@pytest.mark.parametrize("kwargs, shape", [
    (dict(patch_size=29, **SMALL), (1, 1, 19, 23)),
    (dict(in_channels=2, out_channels=3, patch_size=37, **SMALL), (2, 2, 11, 14)),
    (dict(patch_size=17, channels=(4, 8), hidden=8, norm=None), (1, 1, 12, 9)),
])
def test_to_fcn_equals_patch_classifier_at_every_pixel(kwargs, shape):
    torch.manual_seed(0)
    model = _randomised(PatchCNN(**kwargs))
    image = torch.randn(shape)
    dense = model.to_fcn()(image)  # (B, K, H, W) in one pass
    # reference: cut the zero-padded patch around each pixel by hand and classify it
    P, r = model.patch_size, model.patch_size // 2
    padded = F.pad(image, (r, r, r, r))
    B, _, H, W = shape
    patches = torch.stack([padded[b, :, y:y + P, x:x + P]
                           for b in range(B) for y in range(H) for x in range(W)])
    with torch.no_grad():
        ref = model(patches).view(B, H, W, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(dense.detach(), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(classify_every_pixel(model, image, batch_size=50), ref, rtol=1e-4, atol=1e-4)


def test_to_fcn_copies_weights_and_mode():
    model = PatchCNN(patch_size=29, **SMALL)
    dense = model.to_fcn()
    assert isinstance(dense, DensePatchCNN) and dense.training
    assert dense.fc1.weight.shape == (12, 8, model.feature_size, model.feature_size)
    assert dense.stages[2][0].conv.dilation == (4, 4) and dense.stages[2][1].stride == 1
    assert dense.fc1.weight.data_ptr() != model.fc1.weight.data_ptr()  # a copy, not a view
    assert not model.eval().to_fcn().training
    assert dense.init_kwargs == model.init_kwargs
    assert model.receptive_field == 29


def test_gradients_reach_every_parameter():
    model = PatchCNN(patch_size=29, **SMALL)
    model(torch.randn(4, 1, 29, 29)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
