"""Questions of notebook 10_unetpp: the input of a nested skip node, the deep-supervision loss, and
the pruning level to deploy, read from a table of measured accuracy and speed.

Introduced in 10_unetpp.
"""

from __future__ import annotations

import math
import numbers

import torch

from medseg_course.exercises.engine import (
    Case,
    FunctionQuestion,
    Incorrect,
    Question,
    as_number,
    describe,
)
from medseg_course.exercises.engine import summary as _summary
from medseg_course.models.blocks import UpSample

NOTEBOOK = "10_unetpp"


# -- 1. the input of a nested skip node ------------------------------------------------------------

def reference_node_input(row, below, up) -> torch.Tensor:
    """What the convolutions of node ``x_i_j`` of a UNet++ take in: ``[x_i_0, ..., x_i_(j-1), Up(x_(i+1)_(j-1))]``.

    Introduced in 10_unetpp.

    Parameters
    ----------
    row : list of (B, C_i, *spatial) torch.Tensor
        The nodes ``x_i_0 .. x_i_(j-1)`` already computed on level ``i``, in that order.
    below : (B, C_(i+1), *spatial / 2) torch.Tensor
        The node ``x_(i+1)_(j-1)``, one level deeper and one column to the left.
    up : callable
        The node's upsampling (a 2x transposed convolution to ``C_i`` channels).

    Returns
    -------
    (B, (j + 1) C_i, *spatial) torch.Tensor
        The concatenation along the channel axis, the row first, the upsampled node last (the
        order of the paper's equation, and of ``UpCat``'s ``[skip, up]``).

    Examples
    --------
    >>> up = UpSample(2, 16, 8)
    >>> row = [torch.zeros(1, 8, 12, 12), torch.ones(1, 8, 12, 12)]   # x_1_0, x_1_1
    >>> reference_node_input(row, torch.zeros(1, 16, 6, 6), up).shape  # the input of x_1_2
    torch.Size([1, 24, 12, 12])
    """
    return torch.cat([*row, up(below)], dim=1)


#: (j, C_i, C_(i+1), batch, height, width) of the nodes the check builds inputs for.
NODE_CASES = (
    (1, 4, 8, 2, 16, 16),
    (2, 4, 8, 2, 16, 12),
    (3, 6, 12, 1, 8, 10),
    (4, 3, 6, 2, 12, 8),
)


def _node_cases(device):
    for seed, (j, c, c_below, b, h, w) in enumerate(NODE_CASES):
        g = torch.Generator().manual_seed(seed)
        row = [torch.randn(b, c, h, w, generator=g).to(device) for _ in range(j)]
        below = torch.randn(b, c_below, h // 2, w // 2, generator=g).to(device)
        torch.manual_seed(100 + seed)
        up = UpSample(2, c_below, c).to(device).eval()
        yield Case((row, below, up), label=f"node x_i_{j}: {j} node(s) of the row with {c} channels, "
                                           f"the node below with {c_below}")


def _compare_node(got, expected, case):
    row, below, up = case.args
    j, c = len(row), row[0].shape[1]
    if not isinstance(got, torch.Tensor):
        raise Incorrect(f"Your function should return one torch tensor, but it returned {describe(got)}. "
                        "Join the tensors with torch.cat.")
    got = got.detach()
    e = expected.detach()
    if got.shape == e.shape and torch.allclose(got, e, atol=1e-6):
        return
    with torch.no_grad():
        u = up(below)
    if got.ndim == 4 and got.shape[0] == e.shape[0] and got.shape[2:] == e.shape[2:]:
        if got.shape[1] == c:
            raise Incorrect(f"Your tensor has {c} channels, as many as one node: did you add the tensors? FCN "
                            "adds scores; U-Net and UNet++ concatenate features along the channel axis, so the "
                            f"input of x_i_{j} has (j + 1) x {c} = {(j + 1) * c} channels.")
        if got.shape[1] == 2 * c and j > 1 and torch.allclose(got, torch.cat([row[-1], u], 1), atol=1e-6):
            raise Incorrect(f"You concatenated only the last node of the row, x_i_{j - 1}, with the upsampled node: "
                            "that is a plain U-Net skip. UNet++'s skips are dense: node x_i_j takes EVERY earlier "
                            f"node of its row, x_i_0 .. x_i_{j - 1}.")
        if got.shape[1] == 2 * c and j > 1 and torch.allclose(got, torch.cat([row[0], u], 1), atol=1e-6):
            raise Incorrect("You concatenated only x_i_0 (the encoder's features) with the upsampled node. UNet++'s "
                            f"node x_i_j takes every earlier node of its row, x_i_0 .. x_i_{j - 1}.")
        if got.shape == e.shape:
            if torch.allclose(got, torch.cat([u, *row], 1), atol=1e-6):
                raise Incorrect("You put the upsampled node first. The order matters: the convolution's weights "
                                "were learned for a fixed channel order, the paper's [x_i_0, ..., x_i_(j-1), "
                                "Up(x_(i+1)_(j-1))]: the row first, the upsampled node last.")
            if torch.allclose(got, torch.cat([*row[::-1], u], 1), atol=1e-6):
                raise Incorrect("Your row is in reverse order: keep x_i_0 first, then x_i_1, ..., as the nodes "
                                "were computed.")
        if got.shape[1] == j * c + below.shape[1]:
            raise Incorrect(f"Your tensor has {got.shape[1]} channels: the deeper node kept its own "
                            f"{below.shape[1]} channels. Upsample it with the layer `up` you are given (a learned "
                            f"2x transposed convolution to the row's {c} channels), not with F.interpolate.")
    if got.ndim == 4 and got.shape[0] != e.shape[0] and got.shape[1] == c:
        raise Incorrect(f"Your tensor has shape {tuple(got.shape)}, but {tuple(e.shape)} was expected: concatenate "
                        "along the channel axis, dim=1 (dim=0 is the batch).")
    if got.shape != e.shape:
        raise Incorrect(f"Your tensor has shape {tuple(got.shape)}, but {tuple(e.shape)} was expected: the "
                        f"{j} node(s) of the row ({c} channels each) and the upsampled node ({c} channels), "
                        "concatenated along dim=1 at the row's height and width.")
    raise Incorrect(f"Your tensor has the right shape but wrong values (largest error "
                    f"{float((got - e).abs().max()):.3g}). Concatenate, along dim=1, the row's nodes in order "
                    "and then up(below).")


node_input = FunctionQuestion(
    NOTEBOOK, "node_input", "The input of a nested skip node x_i_j", points=1,
    reference=reference_node_input, cases=_node_cases, compare=_compare_node,
    hints=["Node x_i_j sees everything computed on its level so far (x_i_0 to x_i_(j-1), the list `row`) and the "
           "node one level deeper and one column to the left (`below`), brought to the row's size by `up`.",
           "Features are joined along the channel axis, as in U-Net: torch.cat([...], dim=1). Unpack the list "
           "with *row.",
           "return torch.cat([*row, up(below)], dim=1)"],
    solution_code='''
    def my_node_input(row, below, up):
        return torch.cat([*row, up(below)], dim=1)    # [x_i_0, ..., x_i_(j-1), Up(x_(i+1)_(j-1))]
    ''',
)


# -- 2. the deep-supervision loss --------------------------------------------------------------------

def reference_deep_supervision_loss(outputs, target, loss_fn, weights=None) -> torch.Tensor:
    """The weighted mean of ``loss_fn`` over a deeply supervised network's outputs.

    The same as :func:`medseg_course.losses.deep_supervision_loss`, written out.

    Introduced in 10_unetpp.

    Parameters
    ----------
    outputs : list of (B, K, H, W) torch.Tensor, or one tensor
        Logits of levels L1 .. Ln (training mode), or one tensor (eval mode).
    target : (B, H, W) integer torch.Tensor
    loss_fn : callable
        ``loss_fn(logits, target) -> scalar tensor``.
    weights : sequence of float, optional
        One per output; None for equal weights.

    Returns
    -------
    torch.Tensor
        A scalar that backpropagates to every output: ``sum_k w_k loss_k / sum_k w_k``.

    Examples
    --------
    >>> from medseg_course.losses import cross_entropy
    >>> target = torch.zeros(1, 2, 2, dtype=torch.long)
    >>> outputs = [torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), -2.0)]
    >>> round(reference_deep_supervision_loss(outputs, target, cross_entropy).item(), 4)  # (0.6931 + 0.1269) / 2
    0.41
    """
    if isinstance(outputs, torch.Tensor):
        return loss_fn(outputs, target)
    if weights is None:
        weights = [1.0] * len(outputs)
    total = sum(weights)
    return sum(w / total * loss_fn(o, target) for w, o in zip(weights, outputs))


def _logits(shape, scale, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * scale).requires_grad_(True)


def _ds_cases(device):
    from medseg_course.losses import CrossEntropyLoss, DiceCELoss

    g = torch.Generator().manual_seed(7)
    target2 = torch.randint(0, 2, (2, 12, 10), generator=g).to(device)
    target3 = torch.randint(0, 3, (2, 12, 10), generator=g).to(device)

    def outs(n, k, seed):
        return [_logits((2, k, 12, 10), 0.5 + i, seed + i).to(device).detach().requires_grad_(True) for i in range(n)]

    yield Case((outs(4, 1, 0), target2, DiceCELoss()), label="4 binary outputs, equal weights (weights=None)")
    yield Case((outs(4, 1, 10), target2, DiceCELoss()), dict(weights=[1.0, 2.0, 3.0, 4.0]),
               label="4 outputs, weights 1, 2, 3, 4")
    yield Case((outs(4, 3, 20), target3, CrossEntropyLoss()), dict(weights=[0.5, 0.5, 0.5, 0.5]),
               label="4 outputs of 3 classes, weights 0.5 each")
    yield Case((outs(4, 1, 30), target2, DiceCELoss()), dict(weights=[0.0, 0.0, 0.0, 1.0]),
               label="4 outputs, weights 0, 0, 0, 1 (the last output alone)")
    yield Case((outs(3, 3, 40), target3, DiceCELoss()), dict(weights=[2.0, 1.0, 1.0]),
               label="3 outputs of 3 classes, weights 2, 1, 1")
    yield Case((outs(1, 1, 50)[0], target2, DiceCELoss()),
               label="a single tensor: the network in eval mode returns only its last level")


def _compare_ds(got, expected, case):
    outputs, target, loss_fn = case.args
    weights = case.kwargs.get("weights")
    if not isinstance(got, torch.Tensor):
        if isinstance(got, numbers.Real) and not isinstance(got, bool):
            raise Incorrect("Your function returned a Python number. The loss must stay a torch tensor so that "
                            "loss.backward() reaches the network: do not call .item() or float() on the losses.")
        raise Incorrect(f"Your function should return a scalar torch tensor, but it returned {describe(got)}.")
    if got.numel() != 1:
        raise Incorrect(f"Your loss has shape {tuple(got.shape)}: return one number (a 0-d tensor), the weighted "
                        "mean of the per-output losses, not the list of them.")
    if not got.requires_grad:
        raise Incorrect("Your loss does not require a gradient: it was cut from the graph (.item(), .detach(), "
                        "torch.tensor(...) or a NumPy step). Combine the losses with tensor arithmetic so that "
                        "loss.backward() reaches every output.")
    value = float(got.detach().reshape(()))
    exp = float(expected.detach())
    if math.isclose(value, exp, rel_tol=1e-5, abs_tol=1e-6):
        return
    if isinstance(outputs, torch.Tensor):
        raise Incorrect("With a single tensor (the network in eval mode returns only its last level) the loss is "
                        "loss_fn(outputs, target) itself. Test isinstance(outputs, torch.Tensor) first: iterating "
                        "over a tensor runs over its batch axis.")
    with torch.no_grad():
        losses = [float(loss_fn(o, target)) for o in outputs]
        mean_logits = float(loss_fn(torch.stack(list(outputs)).mean(0), target))
    n = len(losses)
    w = [1.0] * n if weights is None else list(weights)
    weighted_sum = sum(wi * li for wi, li in zip(w, losses))

    def near(x):
        return math.isclose(value, x, rel_tol=1e-5, abs_tol=1e-6)

    if near(sum(losses)) and weights is None:
        raise Incorrect(f"Your loss is the SUM of the {n} losses. Average them instead: a sum makes the loss (and "
                        f"its gradients) {n} times larger than one output's, which changes the effective learning "
                        "rate with the number of outputs.")
    if near(losses[-1]) and not near(exp):
        raise Incorrect("Your loss uses only the last output. Deep supervision trains EVERY output (levels L1 .. Ln): "
                        "average the loss over all of them, with their weights.")
    if near(losses[0]):
        raise Incorrect("Your loss uses only the first output; average the loss over all of them, with their weights.")
    if near(mean_logits):
        raise Incorrect("You averaged the logits of the outputs and took one loss. Deep supervision scores each "
                        "output on its own: average the losses, not the logits.")
    if weights is not None and near(weighted_sum):
        raise Incorrect(f"You did not normalise the weights: with weights {w} your loss is sum(w_k loss_k). Divide "
                        f"by the sum of the weights ({sum(w):g}), so that the loss keeps the scale of one output's "
                        "loss whatever the weights.")
    if weights is not None and near(weighted_sum / n):
        raise Incorrect(f"You divided the weighted sum by the number of outputs ({n}); divide by the sum of the "
                        f"weights ({sum(w):g}) instead. The two agree only when the weights are all 1.")
    if weights is not None and near(sum(losses) / n):
        raise Incorrect(f"You ignored the weights: your loss is the plain mean. Weight output k by weights[k], "
                        "then divide by the sum of the weights.")
    raise Incorrect(f"Your loss is {value:.6g}, which is not the weighted mean of the per-output losses. Compute "
                    "loss_fn(output, target) for each output, multiply by its weight, add, and divide by the sum "
                    "of the weights.")


deep_supervision = FunctionQuestion(
    NOTEBOOK, "deep_supervision", "The deep-supervision loss: a weighted mean over the outputs", points=2,
    reference=reference_deep_supervision_loss, cases=_ds_cases, compare=_compare_ds,
    hints=["Score each output on its own: loss_fn(outputs[k], target) for k = 0 .. n - 1. Then combine the n "
           "scalars with the weights (1 each when weights is None) into a weighted MEAN.",
           "A weighted mean divides by the sum of the weights, not by n. Keep everything a tensor (no .item()), "
           "so that the gradient reaches every output. And in eval mode the network returns one tensor: check "
           "isinstance(outputs, torch.Tensor) first.",
           "if isinstance(outputs, torch.Tensor): return loss_fn(outputs, target); "
           "w = [1.0] * len(outputs) if weights is None else weights; "
           "return sum(wk * loss_fn(o, target) for wk, o in zip(w, outputs)) / sum(w)"],
    solution_code='''
    def my_deep_supervision_loss(outputs, target, loss_fn, weights=None):
        if isinstance(outputs, torch.Tensor):          # eval mode: one output
            return loss_fn(outputs, target)
        if weights is None:
            weights = [1.0] * len(outputs)
        total = sum(weights)
        return sum(w / total * loss_fn(o, target) for w, o in zip(weights, outputs))
    ''',
)


# -- 3. which level to deploy ----------------------------------------------------------------------

def reference_pruning_level(dice, seconds, tolerance=0.01) -> int:
    """The fastest level whose Dice is within ``tolerance`` of the best level's.

    Introduced in 10_unetpp.

    Parameters
    ----------
    dice : dict of int to float
        Held-out Dice of each level, e.g. ``{1: 0.88, 2: 0.91, 3: 0.92, 4: 0.92}``.
    seconds : dict of int to float
        Measured inference time of each level (same keys).
    tolerance : float, default 0.01
        The Dice one is ready to lose for speed.

    Returns
    -------
    int
        The level ``L`` with the smallest ``seconds[L]`` among those with
        ``dice[L] >= max(dice.values()) - tolerance``.

    Examples
    --------
    >>> reference_pruning_level({1: 0.88, 2: 0.915, 3: 0.92, 4: 0.918}, {1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4})
    2
    """
    best = max(dice.values())
    ok = [level for level in dice if dice[level] >= best - tolerance]
    return min(ok, key=lambda level: seconds[level])


#: (dice by level, seconds by level, tolerance, what the case shows)
PRUNING_CASES = (
    ({1: 0.880, 2: 0.915, 3: 0.920, 4: 0.918}, {1: 0.11, 2: 0.19, 3: 0.31, 4: 0.52}, 0.01,
     "L2 is within 0.01 of the best"),
    ({1: 0.860, 2: 0.900, 3: 0.930, 4: 0.910}, {1: 0.10, 2: 0.20, 3: 0.30, 4: 0.50}, 0.01,
     "the best level is L3, not L4"),
    ({1: 0.905, 2: 0.910, 3: 0.912, 4: 0.913}, {1: 0.10, 2: 0.20, 3: 0.30, 4: 0.50}, 0.01,
     "every level is within 0.01: the fastest wins"),
    ({1: 0.700, 2: 0.850, 3: 0.880, 4: 0.905}, {1: 0.10, 2: 0.20, 3: 0.30, 4: 0.50}, 0.01,
     "nothing but L4 is close enough"),
    ({1: 0.880, 2: 0.915, 3: 0.920, 4: 0.918}, {1: 0.11, 2: 0.19, 3: 0.31, 4: 0.52}, 0.05,
     "a larger tolerance, 0.05"),
    ({1: 0.800, 2: 0.912, 3: 0.921, 4: 0.919}, {1: 0.12, 2: 0.35, 3: 0.28, 4: 0.51}, 0.01,
     "timings from a busy machine: L3 measured faster than L2"),
    ({1: 0.450, 2: 0.492, 3: 0.500, 4: 0.480}, {1: 0.10, 2: 0.20, 3: 0.30, 4: 0.50}, 0.01,
     "a poor model: the tolerance is in Dice points, not a percentage"),
    ({1: 0.5, 2: 0.625, 3: 0.75, 4: 0.6875}, {1: 0.10, 2: 0.20, 3: 0.30, 4: 0.50}, 0.25,
     "L1 exactly at the best Dice minus the tolerance"),
)


def _pruning_cases(device):
    for dice, seconds, tol, label in PRUNING_CASES:
        yield Case((dict(dice), dict(seconds)), dict(tolerance=tol), label=label)


def _compare_pruning(got, expected, case):
    dice, seconds = case.args
    tol = case.kwargs["tolerance"]
    if isinstance(got, str) and got.upper().startswith("L") and got[1:].isdigit():
        got = int(got[1:])
    value = as_number(got, what="Your function", unit="a level, 1 to 4")
    if value == expected:
        return
    best_level = max(dice, key=dice.get)
    best = dice[best_level]
    if value not in dice:
        raise Incorrect(f"Your function returned {value:g}, which is not one of the levels {sorted(dice)}.")
    value = int(value)
    strict = [level for level in dice if dice[level] > best - tol]
    if value == min(strict, key=lambda level: seconds[level]):
        raise Incorrect(f"A level whose Dice is exactly best - tolerance ({best - tol:g}) is within the tolerance: "
                        "compare with >=, not >.")
    relative = [level for level in dice if dice[level] >= best * (1 - tol)]
    if value == min(relative, key=lambda level: seconds[level]):
        raise Incorrect("You used a relative tolerance (best * (1 - tolerance)). The tolerance is in points of Dice: "
                        "a level is accurate enough when its Dice is at least best - tolerance.")
    if value == best_level:
        raise Incorrect(f"You returned the most accurate level, L{value}. The question is the trade-off: the FASTEST "
                        f"level whose Dice is at least (best Dice - tolerance) = {best - tol:.3f}.")
    if dice[value] < best - tol - 1e-12:
        lower = [level for level in dice if dice[level] >= dice[4] - tol]
        if value in lower and dice[4] < best:
            raise Incorrect("You compared with L4's Dice, but L4 is not the most accurate level here. Compare every "
                            "level with the BEST Dice of the table, max(dice.values()).")
        raise Incorrect(f"L{value} loses more than the tolerance: its Dice {dice[value]:.3f} is below "
                        f"{best - tol:.3f} (best Dice {best:.3f} minus {tol:g}).")
    if seconds[value] > seconds[expected]:
        raise Incorrect(f"L{value} is accurate enough, but another level that is accurate enough was measured "
                        "faster. Pick by the measured seconds, not by the level's number: on a busy machine a "
                        "smaller network can time slower.")
    raise Incorrect(f"Your function returned L{value}, which is not the fastest level within the tolerance.")


pruning_level = FunctionQuestion(
    NOTEBOOK, "pruning_level", "Which pruned level to deploy: the fastest that is accurate enough", points=1,
    reference=reference_pruning_level, cases=_pruning_cases, compare=_compare_pruning,
    hints=["First find the best Dice over all levels (not necessarily L4's). The acceptable levels are those within "
           "`tolerance` of it.",
           "Among the acceptable levels, return the one with the smallest measured time: "
           "min(acceptable, key=lambda level: seconds[level]).",
           "best = max(dice.values()); ok = [L for L in dice if dice[L] >= best - tolerance]; "
           "return min(ok, key=lambda L: seconds[L])"],
    solution_code='''
    def my_pruning_level(dice, seconds, tolerance=0.01):
        best = max(dice.values())
        acceptable = [level for level in dice if dice[level] >= best - tolerance]
        return min(acceptable, key=lambda level: seconds[level])
    ''',
)

QUESTIONS: list[Question] = [node_input, deep_supervision, pruning_level]


def summary():
    """Show this notebook's progress table. Introduced in 10_unetpp."""
    return _summary(QUESTIONS)


__all__ = ["QUESTIONS", "summary", "node_input", "deep_supervision", "pruning_level", "reference_node_input",
           "reference_deep_supervision_loss", "reference_pruning_level", "NODE_CASES", "PRUNING_CASES"]
