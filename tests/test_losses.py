"""Tests for medseg_course.losses: values computed by hand on tiny tensors, agreement with
PyTorch's cross-entropy, masking (weight maps and ignore_index), gradients, and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medseg_course.losses import (
    CrossEntropyLoss,
    DiceCELoss,
    DiceLoss,
    cross_entropy,
    dice_ce_loss,
    inverse_frequency_weights,
    soft_dice_loss,
)


def logit(p):
    p = torch.as_tensor(p, dtype=torch.float64)
    return torch.log(p / (1 - p)).float()


# --------------------------------------------------------------------------------------------
# cross-entropy
# --------------------------------------------------------------------------------------------


def test_multiclass_ce_by_hand():
    logits = torch.tensor([[[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]]])  # (B=1, C=3, W=2)
    target = torch.tensor([[0, 2]])
    # pixel 0: -log(e / (e + 2)); pixel 1: -log(e^2 / (1 + 1 + e^2))
    l0 = -math.log(math.e / (math.e + 2))
    l1 = -math.log(math.e**2 / (2 + math.e**2))
    assert cross_entropy(logits, target).item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    assert cross_entropy(logits, target, reduction="sum").item() == pytest.approx(l0 + l1, rel=1e-6)
    torch.testing.assert_close(cross_entropy(logits, target, reduction="none"), torch.tensor([[l0, l1]]))


def test_binary_ce_by_hand():
    logits = torch.tensor([[[[0.0, 2.0, -1.0]]]])  # (1, 1, 1, 3): one foreground logit channel
    target = torch.tensor([[[1, 1, 0]]])
    expected = [math.log(2), math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1))]
    torch.testing.assert_close(cross_entropy(logits, target, reduction="none"), torch.tensor([[expected]]))
    # class weights (background 1, foreground 3): sum(w l) / sum(w)
    w = torch.tensor([3.0, 3.0, 1.0])
    value = cross_entropy(logits, target, class_weights=[1.0, 3.0]).item()
    assert value == pytest.approx(float((w * torch.tensor(expected)).sum() / w.sum()), rel=1e-6)


def test_ce_matches_pytorch_with_class_weights_and_ignore_index():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 4, 5, 6, generator=g)
    target = torch.randint(0, 4, (3, 5, 6), generator=g)
    target[0, :2] = 255
    weights = torch.tensor([0.5, 1.0, 2.0, 4.0])
    ours = cross_entropy(logits, target, class_weights=weights, ignore_index=255)
    ref = F.cross_entropy(logits, target, weight=weights, ignore_index=255)
    torch.testing.assert_close(ours, ref)


def test_weight_map_is_a_weighted_mean_and_zero_weights_mask():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.0, 0.0, 1.0]]])  # (1, 2, 3)
    target = torch.tensor([[0, 1, 1]])
    per_pixel = cross_entropy(logits, target, reduction="none")[0]
    wmap = torch.tensor([[1.0, 4.0, 0.0]])
    expected = (per_pixel[0] * 1 + per_pixel[1] * 4) / 5
    assert cross_entropy(logits, target, weight_map=wmap).item() == pytest.approx(expected.item(), rel=1e-6)
    # a 0/1 mask and ignore_index leave out the same pixel: same value
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    sparse = target.clone(); sparse[0, 2] = -1
    a = cross_entropy(logits, target, weight_map=mask)
    b = cross_entropy(logits, sparse, ignore_index=-1)
    assert a.item() == pytest.approx(b.item()) == pytest.approx(per_pixel[:2].mean().item())


def test_no_labelled_pixel_gives_zero_loss_and_zero_gradient():
    logits = torch.randn(1, 2, 3, 3, requires_grad=True)
    target = torch.full((1, 3, 3), -1)
    loss = cross_entropy(logits, target, ignore_index=-1)
    loss.backward()
    assert loss.item() == 0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_patch_classifier_shapes_and_channel_axis_target():
    logits = torch.randn(5, 3)  # (B, K): no spatial axes
    target = torch.tensor([0, 1, 2, 1, 0])
    torch.testing.assert_close(cross_entropy(logits, target), F.cross_entropy(logits, target))
    seg = torch.randn(2, 3, 4, 4)
    lab = torch.randint(0, 3, (2, 4, 4))
    torch.testing.assert_close(cross_entropy(seg, lab[:, None]), cross_entropy(seg, lab))


# --------------------------------------------------------------------------------------------
# soft Dice
# --------------------------------------------------------------------------------------------


def test_binary_soft_dice_by_hand():
    p = [0.8, 0.6, 0.2, 0.1]
    logits = logit(p).view(1, 1, 1, 4)
    target = torch.tensor([[[1, 1, 0, 0]]])
    # inter = 0.8 + 0.6 = 1.4, sum p = 1.7, sum g = 2
    assert soft_dice_loss(logits, target, smooth=0).item() == pytest.approx(1 - 2.8 / 3.7, rel=1e-5)
    assert soft_dice_loss(logits, target, smooth=1).item() == pytest.approx(1 - 3.8 / 4.7, rel=1e-5)


def test_multiclass_soft_dice_per_class_background_and_batch():
    # two images of two pixels, three classes, probabilities set through log-probabilities
    probs = torch.tensor([[[0.7, 0.1], [0.2, 0.8], [0.1, 0.1]],
                          [[0.2, 0.6], [0.1, 0.2], [0.7, 0.2]]])  # (B=2, C=3, W=2)
    logits = probs.log()
    target = torch.tensor([[0, 1], [2, 0]])
    g = F.one_hot(target, 3).permute(0, 2, 1).float()
    per = (2 * (probs * g).sum(-1)) / (probs.sum(-1) + g.sum(-1))  # (B, C), smooth 0
    # class 2 is absent from image 0: its Dice there is 0 (p > 0, no overlap)
    got = soft_dice_loss(logits, target, smooth=0, reduction="none")
    torch.testing.assert_close(got, 1 - per, rtol=1e-5, atol=1e-6)
    no_bg = soft_dice_loss(logits, target, smooth=0, include_background=False)
    assert no_bg.item() == pytest.approx((1 - per[:, 1:]).mean().item(), rel=1e-5)
    batch = soft_dice_loss(logits, target, smooth=0, batch_dice=True, reduction="none")
    pooled = 2 * (probs * g).sum((0, 2)) / (probs.sum((0, 2)) + g.sum((0, 2)))
    torch.testing.assert_close(batch, 1 - pooled, rtol=1e-5, atol=1e-6)


def test_smooth_term_makes_an_absent_class_perfect():
    logits = torch.full((1, 1, 4, 4), -30.0)  # predicts no foreground
    target = torch.zeros(1, 4, 4, dtype=torch.long)  # and there is none
    assert soft_dice_loss(logits, target, smooth=1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_ignore_index_equals_dice_on_the_labelled_pixels():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(1, 3, 1, 8, generator=g)
    target = torch.randint(0, 3, (1, 1, 8), generator=g)
    sparse = target.clone(); sparse[..., 5:] = 7
    masked = soft_dice_loss(logits, sparse, ignore_index=7)
    subset = soft_dice_loss(logits[..., :5], target[..., :5])
    assert masked.item() == pytest.approx(subset.item(), rel=1e-6)


def test_dice_3d_and_dice_ce_is_the_sum():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 3, 4, 5, 6, generator=g)
    target = torch.randint(0, 3, (2, 4, 5, 6), generator=g)
    total = dice_ce_loss(logits, target, lambda_ce=0.5, lambda_dice=2.0)
    expected = 0.5 * cross_entropy(logits, target) + 2.0 * soft_dice_loss(logits, target)
    torch.testing.assert_close(total, expected)


# --------------------------------------------------------------------------------------------
# gradients, modules, validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss_fn", [
    CrossEntropyLoss(), CrossEntropyLoss(class_weights=[1.0, 2.0, 3.0]), DiceLoss(),
    DiceLoss(include_background=False, batch_dice=True), DiceCELoss(ignore_index=-1),
])
def test_gradients_flow_and_are_finite(loss_fn):
    logits = torch.randn(2, 3, 6, 6, requires_grad=True)
    target = torch.randint(0, 3, (2, 6, 6))
    target[0, 0, 0] = -1 if getattr(loss_fn, "ignore_index", None) == -1 else 0
    wmap = torch.rand(2, 6, 6)
    loss = loss_fn(logits, target, wmap)
    loss.backward()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def test_binary_gradients_flow():
    logits = torch.zeros(2, 1, 4, 4, requires_grad=True)
    DiceCELoss()(logits, torch.ones(2, 4, 4, dtype=torch.long)).backward()
    assert (logits.grad < 0).all()  # every pixel is foreground: push every logit up


def test_modules_equal_functions_and_move_class_weights():
    logits = torch.randn(2, 2, 5, 5)
    target = torch.randint(0, 2, (2, 5, 5))
    loss_fn = CrossEntropyLoss(class_weights=[1.0, 5.0])
    torch.testing.assert_close(loss_fn(logits, target), cross_entropy(logits, target, class_weights=[1.0, 5.0]))
    assert "class_weights" in dict(loss_fn.named_buffers())
    assert "class_weights" not in loss_fn.state_dict()  # a setting, not a learned value
    torch.testing.assert_close(DiceLoss(smooth=0.5)(logits, target), soft_dice_loss(logits, target, smooth=0.5))


@pytest.mark.parametrize("call, error, message", [
    (lambda: cross_entropy(torch.zeros(1, 2, 3), torch.zeros(1, 3)), TypeError, "integer class labels"),
    (lambda: cross_entropy(torch.zeros(1, 2, 3), torch.full((1, 3), 2)), ValueError, "labels 0..1 for 2 channels"),
    (lambda: cross_entropy(torch.zeros(1, 1, 3), torch.full((1, 3), 2)), ValueError, "0/1 labels for one logit"),
    (lambda: cross_entropy(torch.zeros(1, 2, 3), torch.zeros(1, 4, dtype=torch.long)), ValueError, r"shape \(B, \*spatial\) = \(1, 3\)"),
    (lambda: cross_entropy(torch.zeros(1, 2, 3), torch.zeros(1, 3, dtype=torch.long), class_weights=[1.0]), ValueError, "2 entries"),
    (lambda: cross_entropy(torch.zeros(1, 2, 3), torch.zeros(1, 3, dtype=torch.long), class_weights=[1.0, -1.0]), ValueError, "non-negative"),
    (lambda: cross_entropy(torch.zeros(1, 2, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long)), TypeError, "float torch.Tensor"),
    (lambda: soft_dice_loss(torch.zeros(1, 2, 3), torch.zeros(1, 3, dtype=torch.long), reduction="sum"), ValueError, "reduction must be"),
    (lambda: soft_dice_loss(torch.zeros(1, 2, 3), torch.zeros(1, 3, dtype=torch.long), smooth=-1), ValueError, "smooth must be"),
    (lambda: CrossEntropyLoss(ignore_index=0.5), TypeError, "ignore_index must be an int"),
])
def test_validation_messages(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_inverse_frequency_weights():
    masks = [np.array([[0, 0, 0, 1]]), np.array([[0, 0, 2, 2]])]  # counts 5, 1, 2 of 8
    w = inverse_frequency_weights(masks, 4)
    torch.testing.assert_close(w, torch.tensor([8 / 20, 8 / 4, 8 / 8, 0.0]))
    assert inverse_frequency_weights([np.array([0, 1, 255])], 2, ignore_index=255).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="outside 0..1"):
        inverse_frequency_weights([np.array([0, 2])], 2)
