"""Tests for medseg_course.cnn_basics: convolution by hand against PyTorch, output sizes and
receptive fields against real layers, gradient norms, and operation counts checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from medseg_course import cnn_basics as cb
from medseg_course.models import PatchCNN

# (x shape, weight shape, with bias, stride, padding)
CONV_CASES = [
    ((1, 1, 5, 5), (1, 1, 3, 3), False, 1, 0),
    ((2, 3, 9, 8), (4, 3, 3, 2), True, 2, 1),
    ((1, 2, 11, 10), (3, 2, 5, 5), True, 2, 2),
    ((2, 4, 7, 13), (5, 4, 1, 1), True, 3, 0),
    ((1, 1, 6, 6), (2, 1, 6, 6), False, 1, 0),        # kernel as large as the image: one output
    ((1, 2, 10, 9), (2, 2, 3, 3), True, (2, 1), (0, 2)),  # per-axis stride and padding
]


@pytest.mark.parametrize("x_shape, w_shape, with_bias, stride, padding", CONV_CASES)
def test_conv2d_reference_matches_torch(x_shape, w_shape, with_bias, stride, padding):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(x_shape, generator=g, dtype=torch.float64)
    w = torch.randn(w_shape, generator=g, dtype=torch.float64)
    b = torch.randn(w_shape[0], generator=g, dtype=torch.float64) if with_bias else None
    ours = cb.conv2d_reference(x, w, b, stride=stride, padding=padding)
    theirs = F.conv2d(x, w, b, stride=stride, padding=padding)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-12)


def test_conv2d_reference_is_a_cross_correlation():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0  # an impulse: a cross-correlation paints the flipped kernel around it
    w = torch.arange(9.0).view(1, 1, 3, 3)
    out = cb.conv2d_reference(x, w, padding=1)[0, 0, 1:4, 1:4]
    assert torch.equal(out, w[0, 0].flip(0, 1))


@pytest.mark.parametrize("args, kwargs, match", [
    ((torch.zeros(1, 5, 5), torch.zeros(1, 1, 3, 3)), {}, r"x must be a \(B, C_in, H, W\)"),
    ((torch.zeros(1, 2, 5, 5), torch.zeros(1, 3, 3, 3)), {}, "weight has 3 input channels"),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(2, 1, 3, 3), torch.zeros(3)), {}, r"bias must be None or a \(2,\)"),
    ((torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3)), {}, "kernel spans 3 pixels"),
    ((torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3)), {"stride": 0}, "stride must be an integer >= 1"),
])
def test_conv2d_reference_validates(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cb.conv2d_reference(*args, **kwargs)


@pytest.mark.parametrize("n", [1, 7, 28, 45])
@pytest.mark.parametrize("k, s, p, d", [(1, 1, 0, 1), (3, 1, 0, 1), (3, 1, 1, 1), (3, 2, 0, 1), (5, 2, 2, 1),
                                        (2, 2, 0, 1), (3, 1, 2, 2), (3, 3, 4, 4), (7, 4, 3, 1)])
def test_conv_output_size_matches_torch_layers(n, k, s, p, d):
    x = torch.zeros(1, 1, n, n)
    if n + 2 * p < d * (k - 1) + 1:
        with pytest.raises(ValueError, match="kernel spans"):
            cb.conv_output_size(n, k, s, p, d)
        return
    conv = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
    assert cb.conv_output_size(n, k, s, p, d) == conv(x).shape[-1]
    if p <= k // 2:  # PyTorch's pooling limits the padding to half the kernel
        pool = nn.MaxPool2d(k, stride=s, padding=p, dilation=d)
        assert cb.conv_output_size(n, k, s, p, d) == pool(x).shape[-1]


def test_conv_output_size_validates():
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        cb.conv_output_size(0, 3)
    with pytest.raises(ValueError, match="padding must be an integer >= 0"):
        cb.conv_output_size(5, 3, padding=-1)
    with pytest.raises(ValueError, match="kernel_size must be an integer"):
        cb.conv_output_size(5, 3.0)


def test_receptive_field_by_hand():
    assert cb.receptive_field([]) == 1
    assert cb.receptive_field([(3, 1)]) == 3
    assert cb.receptive_field_growth([(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)]) == [
        (3, 1), (4, 2), (8, 2), (10, 4), (18, 4)]
    assert cb.receptive_field([(3, 1, 2), (3, 1, 4)]) == 1 + 4 + 8  # dilated convolutions
    with pytest.raises(ValueError, match=r"layers\[1\] must be \(kernel_size, stride\)"):
        cb.receptive_field([(3, 1), 3])
    with pytest.raises(ValueError, match="layers must be a sequence"):
        cb.receptive_field("3,1")


@pytest.mark.parametrize("P", [29, 37, 45])
def test_receptive_field_of_patch_cnn_is_its_patch(P):
    torch.manual_seed(0)  # with very few channels a dead ReLU can hide a border pixel: keep the defaults
    model = PatchCNN(patch_size=P)
    layers = [(3, 1), (3, 2)] * 3 + [(model.feature_size, 1)]
    assert cb.receptive_field(layers) == P
    assert cb.empirical_receptive_field(model, (1, P, P)).size == (P, P)
    assert cb.empirical_receptive_field(model.to_fcn(), (1, 2 * P + 1, 2 * P + 1)).size == (P, P)


# (layers as modules, the same as (kernel, stride) pairs)
STACKS = [
    ([nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Conv2d(3, 3, 3)], [(3, 1), (3, 1)]),
    ([nn.Conv2d(1, 3, 5, stride=2), nn.MaxPool2d(3, 2), nn.Conv2d(3, 2, 3)], [(5, 2), (3, 2), (3, 1)]),
    ([nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1), nn.MaxPool2d(2),
      nn.Conv2d(2, 2, 3, padding=1)], [(3, 1), (2, 2), (3, 1), (2, 2), (3, 1)]),
]


@pytest.mark.parametrize("modules, layers", STACKS)
def test_empirical_receptive_field_matches_the_formula(modules, layers):
    torch.manual_seed(0)
    net = nn.Sequential(*modules)
    r = cb.receptive_field(layers)
    assert cb.empirical_receptive_field(net, (1, 64, 64), n_samples=16).size == (r, r)


def test_empirical_receptive_field_restores_mode_and_gradients():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    net(torch.rand(2, 1, 8, 8)).sum().backward()
    before = net[0].weight.grad.clone()
    net.train()
    erf = cb.empirical_receptive_field(net, (1, 9, 9))
    assert net.training and torch.equal(net[0].weight.grad, before)
    assert erf.gradient.shape == (9, 9) and erf.size == (3, 3)
    with pytest.raises(ValueError, match=r"input_shape must be \(C, H, W\)"):
        cb.empirical_receptive_field(net, (9, 9))


@pytest.mark.parametrize("kwargs", [dict(activation="sigmoid"), dict(activation="tanh", init="xavier"),
                                    dict(activation="relu", init="he", norm=True, channels=4, out_channels=3)])
def test_deep_conv_stack_shapes(kwargs):
    net = cb.deep_conv_stack(3, **kwargs)
    out = net(torch.zeros(2, 1, 7, 9))
    assert out.shape == (2, kwargs.get("out_channels", 2), 7, 9)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net) == (3 if kwargs.get("norm") else 0)


def test_deep_conv_stack_validates():
    with pytest.raises(ValueError, match="activation must be one of"):
        cb.deep_conv_stack(3, activation="gelu")
    with pytest.raises(ValueError, match="init must be one of"):
        cb.deep_conv_stack(3, init="orthogonal")
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        cb.deep_conv_stack(0)


def test_gradient_vanishes_with_sigmoids_not_with_relu_and_he_init():
    torch.manual_seed(0)
    x, y = torch.rand(8, 1, 16, 16), torch.randint(2, (8, 16, 16))
    ratios = {}
    for name, kwargs in {"sigmoid": dict(activation="sigmoid"), "he": dict(activation="relu", init="he")}.items():
        torch.manual_seed(0)
        norms = cb.layer_gradient_norms(cb.deep_conv_stack(12, **kwargs), x, y)
        assert norms.shape == (13,) and np.all(np.isfinite(norms))
        ratios[name] = norms[0] / norms[-2]
    assert ratios["sigmoid"] < 1e-6 < 1e-2 < ratios["he"]


def test_layer_gradient_norms_matches_autograd_and_restores_gradients():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 2, 1))
    x, y = torch.rand(2, 1, 5, 5), torch.randint(2, (2, 5, 5))
    norms = cb.layer_gradient_norms(net, x, y)
    F.cross_entropy(net(x), y).backward()
    assert np.allclose(norms, [net[0].weight.grad.norm().item(), net[2].weight.grad.norm().item()])
    kept = net[0].weight.grad.clone()
    cb.layer_gradient_norms(net, x, 1 - y)
    assert torch.equal(net[0].weight.grad, kept)
    with pytest.raises(ValueError, match="no nn.Conv2d or nn.Linear"):
        cb.layer_gradient_norms(nn.ReLU(), x, y)


def test_count_macs_by_hand():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=4),
                        nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    macs = cb.count_macs(net, (2, 3, 6, 6))
    assert macs == {"0": 2 * 8 * 6 * 6 * 27, "2": 2 * 8 * 4 * 4 * 2 * 9, "4": 2 * 10 * 128}
    assert not net[0]._forward_hooks  # hooks removed


@pytest.mark.parametrize("P", [29, 45])
def test_count_macs_first_layer_redundancy_of_a_patch_cnn(P):
    model = PatchCNN(patch_size=P)
    first = cb.count_macs(model, (1, 1, P, P))["stages.0.0.conv"]
    assert first == (P - 2) ** 2 * 16 * 9  # one 3x3 window per position of the (P - 2)^2 valid output
