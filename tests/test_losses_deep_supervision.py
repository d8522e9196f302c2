"""Tests for the deep-supervision loss: the weighted mean over a network's outputs, by hand; its
weights, its single-tensor path (eval mode), its validation, and fit/evaluate with a model that
returns a list of outputs while training."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from medseg_course.losses import (
    CrossEntropyLoss,
    DeepSupervisionLoss,
    DiceCELoss,
    DiceLoss,
    cross_entropy,
    deep_supervision_loss,
)
from medseg_course.train import TrainConfig, evaluate, fit


def _outputs(n=4, channels=1, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(2, channels, 6, 5, generator=g) * (k + 1)).requires_grad_(requires_grad)
            for k in range(n)]


def _target(seed=1, classes=2):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, classes, (2, 6, 5), generator=g)


def test_equal_weights_are_the_mean_of_the_losses():
    outputs, target = _outputs(), _target()
    base = DiceCELoss()
    per_level = torch.stack([base(o, target) for o in outputs])
    assert len(set(round(v, 4) for v in per_level.tolist())) == 4  # distinct levels: the mean is not any one
    loss = DeepSupervisionLoss(base)(outputs, target)
    torch.testing.assert_close(loss, per_level.mean())
    assert not torch.isclose(loss, per_level.sum())


def test_weights_are_normalised_and_zero_weight_outputs_do_not_train():
    outputs, target = _outputs(), _target()
    per_level = [cross_entropy(o, target) for o in outputs]
    w = [1.0, 2.0, 3.0, 4.0]
    expected = sum(wi * li for wi, li in zip(w, per_level)) / 10.0
    torch.testing.assert_close(deep_supervision_loss(outputs, target, cross_entropy, weights=w), expected)
    torch.testing.assert_close(deep_supervision_loss(outputs, target, cross_entropy, weights=[0.1, 0.2, 0.3, 0.4]),
                               expected)
    last_only = DeepSupervisionLoss(CrossEntropyLoss(), weights=[0, 0, 0, 1])(outputs, target)
    torch.testing.assert_close(last_only, per_level[-1])
    last_only.backward()
    assert all(o.grad is None for o in outputs[:3]) and outputs[3].grad.abs().sum() > 0


def test_gradient_reaches_every_output_with_its_weight():
    outputs, target = _outputs(channels=3), _target(classes=3)
    DeepSupervisionLoss(CrossEntropyLoss())(outputs, target).backward()
    for k, o in enumerate(outputs):
        alone = o.detach().clone().requires_grad_(True)
        (cross_entropy(alone, target) / 4).backward()
        torch.testing.assert_close(o.grad, alone.grad, msg=f"output {k}")


def test_a_single_tensor_is_scored_by_the_base_loss():
    outputs, target = _outputs(), _target()
    base = DiceLoss()
    torch.testing.assert_close(DeepSupervisionLoss(base, weights=[1, 1, 1, 5])(outputs[2], target),
                               base(outputs[2], target))
    # a tuple works like a list
    torch.testing.assert_close(DeepSupervisionLoss(base)(tuple(outputs), target),
                               DeepSupervisionLoss(base)(outputs, target))


def test_weight_map_is_passed_to_every_output():
    outputs, target = _outputs(n=2), _target()
    wmap = torch.zeros(2, 6, 5)
    wmap[:, :3] = 1.0  # only the top half counts
    got = DeepSupervisionLoss(CrossEntropyLoss())(outputs, target, wmap)
    top = [cross_entropy(o[:, :, :3], target[:, :3]) for o in outputs]
    expected = (top[0] + top[1]) / 2
    torch.testing.assert_close(got, expected)


def test_ignore_index_of_the_base_loss_is_exposed_for_fit():
    assert DeepSupervisionLoss(DiceCELoss(ignore_index=-1)).ignore_index == -1
    assert DeepSupervisionLoss(lambda logits, target: logits.mean()).ignore_index is None


@pytest.mark.parametrize("kwargs, outputs, message", [
    (dict(weights=[1, 1]), _outputs(3), "weights has 2 entries but the network returned 3 outputs"),
    (dict(), [], "outputs is empty"),
    (dict(), "logits", "outputs must be a list of logits tensors"),
])
def test_call_errors_name_the_fix(kwargs, outputs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        DeepSupervisionLoss(DiceCELoss(), **kwargs)(outputs, _target())


@pytest.mark.parametrize("weights, message", [
    ([1, -1], "non-negative"), ([0, 0], "must not all be zero"), ([], "non-empty sequence"),
    ("equal", "non-empty sequence"), ([1, float("nan")], "finite"),
])
def test_bad_weights_are_refused(weights, message):
    with pytest.raises(ValueError, match=message):
        DeepSupervisionLoss(DiceCELoss(), weights=weights)


def test_construction_errors():
    with pytest.raises(TypeError, match="e.g. DiceCELoss"):
        DeepSupervisionLoss("dice")
    with pytest.raises(TypeError, match="already a DeepSupervisionLoss"):
        DeepSupervisionLoss(DeepSupervisionLoss(DiceCELoss()))


def test_a_plain_loss_given_a_list_says_to_wrap_it():
    with pytest.raises(TypeError, match=r"list of 4 outputs.*DeepSupervisionLoss\(loss_fn\)"):
        DiceCELoss()(_outputs(), _target())


class TwoHeads(nn.Module):
    """A toy deeply supervised network: two outputs while training, the last one in eval mode."""

    def __init__(self):
        super().__init__()
        self.body = nn.Conv2d(1, 4, 3, padding=1)
        self.head_1 = nn.Conv2d(4, 1, 1)
        self.head_2 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x):
        h = torch.relu(self.body(x))
        if self.training:
            return [self.head_1(h), self.head_2(h)]
        return self.head_2(h)


def _toy_batches(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        target = (torch.rand(2, 16, 16, generator=g) > 0.6).long()
        image = target[:, None].float() + 0.3 * torch.randn(2, 1, 16, 16, generator=g)
        batches.append((image, target))
    return batches


def test_fit_and_evaluate_train_a_model_that_returns_a_list():
    torch.manual_seed(0)
    model = TwoHeads()
    loss_fn = DeepSupervisionLoss(DiceCELoss())
    history = fit(model, _toy_batches(), _toy_batches(2, seed=1), loss_fn,
                  TrainConfig(epochs=4, lr=0.05), device="cpu", progress=False)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_dice"][-1] > 0.8  # the validation Dice comes from the eval-mode output
    ev = evaluate(model, _toy_batches(2, seed=1), loss_fn)
    model.eval()
    with torch.no_grad():
        expected = torch.stack([DiceCELoss()(model(x), y) for x, y in _toy_batches(2, seed=1)]).mean()
    assert ev.loss == pytest.approx(expected.item(), rel=1e-5)
    assert model.head_1.weight.grad is not None  # the auxiliary head was trained too


def test_fit_with_a_plain_loss_on_a_list_model_says_what_to_do():
    with pytest.raises(TypeError, match="DeepSupervisionLoss"):
        fit(TwoHeads(), _toy_batches(1), None, DiceCELoss(), TrainConfig(epochs=1), device="cpu", progress=False)
