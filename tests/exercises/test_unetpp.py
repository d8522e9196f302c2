"""Questions of 10_unetpp: references pass, typical wrong answers fail with their message, and the
references agree with the package (the UNet++ nodes, DeepSupervisionLoss)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medseg_course.exercises import Outcome
from medseg_course.exercises import unetpp as ex
from medseg_course.losses import DeepSupervisionLoss, DiceCELoss
from medseg_course.models import UNetPlusPlus


def _solution(question, name):
    namespace = {"np": np, "torch": torch, "F": F}
    exec(question.solution_code, namespace)
    return namespace[name]


@pytest.mark.parametrize("question, name", [
    (ex.node_input, "my_node_input"), (ex.deep_supervision, "my_deep_supervision_loss"),
    (ex.pruning_level, "my_pruning_level"),
])
def test_reference_and_solution_text_pass(question, name):
    assert question.check(question.reference).outcome is Outcome.CORRECT
    assert question.check(_solution(question, name)).outcome is Outcome.CORRECT


def _fails(question, answer, message):
    result = question.check(answer)
    assert result.outcome is Outcome.INCORRECT, result.message
    assert message in result.message, result.message
    return result


# -- 1. node input ---------------------------------------------------------------------------------

def test_node_input_reference_is_what_the_network_computes():
    torch.manual_seed(0)
    net = UNetPlusPlus(1, 2, features=(4, 8, 16, 32, 64), norm="group").eval()
    x = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        x_0_0 = net.conv_0_0(x)
        x_1_0 = net.conv_1_0(x_0_0)
        x_2_0 = net.conv_2_0(x_1_0)
        x_0_1 = net.conv_0_1.convs(ex.reference_node_input([x_0_0], x_1_0, net.conv_0_1.upsample))
        x_1_1 = net.conv_1_1.convs(ex.reference_node_input([x_1_0], x_2_0, net.conv_1_1.upsample))
        x_0_2 = net.conv_0_2.convs(ex.reference_node_input([x_0_0, x_0_1], x_1_1, net.conv_0_2.upsample))
        torch.testing.assert_close(x_0_1, net.conv_0_1(x_1_0, x_0_0))
        torch.testing.assert_close(x_0_2, net.conv_0_2(x_1_1, torch.cat([x_0_0, x_0_1], 1)))
    # the channel count of a node's input: (j + 1) * f_i
    assert net.conv_0_2.convs.conv_0.conv.in_channels == 3 * 4
    assert net.conv_1_3.convs.conv_0.conv.in_channels == 4 * 8


def node_sum(row, below, up):
    return sum(row) + up(below)


def node_unet(row, below, up):
    return torch.cat([row[-1], up(below)], dim=1)


def node_first(row, below, up):
    return torch.cat([row[0], up(below)], dim=1)


def node_up_first(row, below, up):
    return torch.cat([up(below), *row], dim=1)


def node_reversed(row, below, up):
    return torch.cat([*row[::-1], up(below)], dim=1)


def node_interpolate(row, below, up):
    return torch.cat([*row, F.interpolate(below, scale_factor=2)], dim=1)


def node_dim0(row, below, up):
    return torch.cat([*row, up(below)], dim=0)


def node_no_up(row, below, up):
    return torch.cat([*row, below], dim=1)


def node_list(row, below, up):
    return [*row, up(below)]


def node_scaled(row, below, up):
    return 2 * torch.cat([*row, up(below)], dim=1)


@pytest.mark.parametrize("answer, message", [
    (node_sum, "did you add the tensors?"),
    (node_unet, "that is a plain U-Net skip"),
    (node_first, "only x_i_0"),
    (node_up_first, "You put the upsampled node first"),
    (node_reversed, "reverse order"),
    (node_interpolate, "not with F.interpolate"),
    (node_dim0, "concatenate along the channel axis, dim=1"),
    (node_no_up, "Your function raised RuntimeError"),
    (node_list, "Join the tensors with torch.cat"),
    (node_scaled, "right shape but wrong values"),
])
def test_node_input_wrong_answers(answer, message):
    _fails(ex.node_input, answer, message)


# -- 2. deep supervision -------------------------------------------------------------------------

def test_reference_equals_the_package_loss():
    g = torch.Generator().manual_seed(0)
    outputs = [torch.randn(2, 1, 8, 8, generator=g) * (k + 1) for k in range(4)]
    target = torch.randint(0, 2, (2, 8, 8), generator=g)
    for weights in (None, [1, 2, 3, 4], [0, 0, 0, 1]):
        torch.testing.assert_close(ex.reference_deep_supervision_loss(outputs, target, DiceCELoss(), weights),
                                   DeepSupervisionLoss(DiceCELoss(), weights=weights)(outputs, target))


def ds_sum(outputs, target, loss_fn, weights=None):
    if isinstance(outputs, torch.Tensor):
        return loss_fn(outputs, target)
    w = [1.0] * len(outputs) if weights is None else weights
    return sum(wk * loss_fn(o, target) for wk, o in zip(w, outputs))


def ds_last(outputs, target, loss_fn, weights=None):
    return loss_fn(outputs if isinstance(outputs, torch.Tensor) else outputs[-1], target)


def ds_by_n(outputs, target, loss_fn, weights=None):
    if isinstance(outputs, torch.Tensor):
        return loss_fn(outputs, target)
    w = [1.0] * len(outputs) if weights is None else weights
    return sum(wk * loss_fn(o, target) for wk, o in zip(w, outputs)) / len(outputs)


def ds_unnormalised(outputs, target, loss_fn, weights=None):
    if isinstance(outputs, torch.Tensor):
        return loss_fn(outputs, target)
    if weights is None:
        return sum(loss_fn(o, target) for o in outputs) / len(outputs)
    return sum(wk * loss_fn(o, target) for wk, o in zip(weights, outputs))


def ds_no_weights(outputs, target, loss_fn, weights=None):
    if isinstance(outputs, torch.Tensor):
        return loss_fn(outputs, target)
    return sum(loss_fn(o, target) for o in outputs) / len(outputs)


def ds_item(outputs, target, loss_fn, weights=None):
    return ex.reference_deep_supervision_loss(outputs, target, loss_fn, weights).item()


def ds_detached(outputs, target, loss_fn, weights=None):
    return torch.tensor(ex.reference_deep_supervision_loss(outputs, target, loss_fn, weights).item())


def ds_mean_logits(outputs, target, loss_fn, weights=None):
    if isinstance(outputs, torch.Tensor):
        return loss_fn(outputs, target)
    return loss_fn(torch.stack(outputs).mean(0), target)


def ds_no_single(outputs, target, loss_fn, weights=None):
    w = [1.0] * len(outputs) if weights is None else weights
    return sum(wk * loss_fn(o, target) for wk, o in zip(w, outputs)) / sum(w)


def ds_list(outputs, target, loss_fn, weights=None):
    return torch.stack([loss_fn(o, target) for o in outputs])


def ds_single_iterated(outputs, target, loss_fn, weights=None):
    if isinstance(outputs, torch.Tensor):
        outputs = [outputs[:, :, :6]]  # a wrong eval-mode answer that does not raise
    w = [1.0] * len(outputs) if weights is None else weights
    return sum(wk * loss_fn(o, target[:, :6] if o.shape[2] == 6 else target) for wk, o in zip(w, outputs)) / sum(w)


@pytest.mark.parametrize("answer, message", [
    (ds_sum, "is the SUM of the 4 losses"),
    (ds_last, "uses only the last output"),
    (ds_by_n, "divided the weighted sum by the number of outputs (4)"),
    (ds_unnormalised, "You did not normalise the weights"),
    (ds_no_weights, "You ignored the weights"),
    (ds_item, "returned a Python number"),
    (ds_detached, "does not require a gradient"),
    (ds_mean_logits, "averaged the logits"),
    (ds_no_single, "Your function raised"),
    (ds_list, "return one number (a 0-d tensor)"),
    (ds_single_iterated, "With a single tensor"),
])
def test_deep_supervision_wrong_answers(answer, message):
    _fails(ex.deep_supervision, answer, message)


# -- 3. pruning level ----------------------------------------------------------------------------

def pick_best(dice, seconds, tolerance=0.01):
    return max(dice, key=dice.get)


def pick_vs_l4(dice, seconds, tolerance=0.01):
    ok = [level for level in dice if dice[level] >= dice[4] - tolerance]
    return min(ok, key=lambda level: seconds[level])


def pick_lowest_number(dice, seconds, tolerance=0.01):
    best = max(dice.values())
    return min(level for level in dice if dice[level] >= best - tolerance)


def pick_always_1(dice, seconds, tolerance=0.01):
    return 1


def pick_string(dice, seconds, tolerance=0.01):
    return f"L{ex.reference_pruning_level(dice, seconds, tolerance)}"


def pick_five(dice, seconds, tolerance=0.01):
    return 5


def pick_relative(dice, seconds, tolerance=0.01):
    ok = [level for level in dice if dice[level] >= max(dice.values()) * (1 - tolerance)]
    return min(ok, key=lambda level: seconds[level])


def pick_strict(dice, seconds, tolerance=0.01):
    ok = [level for level in dice if dice[level] > max(dice.values()) - tolerance]
    return min(ok, key=lambda level: seconds[level])


@pytest.mark.parametrize("answer, message", [
    (pick_best, "You returned the most accurate level"),
    (pick_vs_l4, "You compared with L4's Dice"),
    (pick_lowest_number, "Pick by the measured seconds"),
    (pick_always_1, "loses more than the tolerance"),
    (pick_five, "not one of the levels"),
    (pick_relative, "You used a relative tolerance"),
    (pick_strict, "compare with >=, not >"),
])
def test_pruning_wrong_answers(answer, message):
    _fails(ex.pruning_level, answer, message)


def test_pruning_accepts_level_names():
    assert ex.pruning_level.check(pick_string).outcome is Outcome.CORRECT
