"""Sparse annotation: which slices keep their labels, the ignore label elsewhere, and the course's
losses leaving unlabelled voxels out (value and gradient)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medseg_course.data import sparse
from medseg_course.losses import DiceCELoss, cross_entropy, soft_dice_loss


@pytest.mark.parametrize("spread", ["even", "random"])
@pytest.mark.parametrize("n, fraction, expected", [(40, 0.1, 4), (40, 0.25, 10), (7, 0.5, 4), (5, 0.01, 1), (9, 1.0, 9)])
def test_choose_slices_counts_and_range(spread, n, fraction, expected):
    idx = sparse.choose_slices(n, fraction, seed=3, spread=spread)
    assert len(idx) == expected and len(np.unique(idx)) == expected
    assert idx.min() >= 0 and idx.max() < n and np.all(np.diff(idx) > 0)


def test_even_slices_are_equally_spaced_and_seeded():
    a = sparse.choose_slices(40, 0.1, seed=0)
    assert np.all(np.diff(a) == 10)
    assert np.array_equal(a, sparse.choose_slices(40, 0.1, seed=0))
    starts = {int(sparse.choose_slices(40, 0.1, seed=s)[0]) for s in range(20)}
    assert len(starts) > 3  # the offset is random


def test_sparsify_keeps_labels_on_chosen_slices_only():
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 3, size=(20, 6, 7))
    for axis in (0, 1, 2):
        out = sparse.sparsify(mask, 0.3, axis=axis, seed=1)
        assert out.shape == mask.shape and out.dtype == np.int64
        labelled = out != sparse.IGNORE
        # whole slices: a slice is labelled everywhere or nowhere
        per_slice = np.moveaxis(labelled, axis, 0).reshape(mask.shape[axis], -1)
        assert np.all(per_slice.all(1) | ~per_slice.any(1))
        kept = np.flatnonzero(per_slice.all(1))
        assert len(kept) == round(0.3 * mask.shape[axis])
        assert np.array_equal(out[labelled], mask[labelled])


def test_sparsify_orthogonal_axes_is_the_union():
    mask = np.zeros((10, 10, 10), int)
    one = sparse.sparsify(mask, 0.2, axis=(0, 2), seed=5)
    labelled = one != -1
    n0 = np.flatnonzero(labelled.all(axis=(1, 2)))
    n2 = np.flatnonzero(labelled.all(axis=(0, 1)))
    assert len(n0) == 2 and len(n2) == 2
    assert sparse.labelled_fraction(one) == pytest.approx(1 - 0.8 * 0.8)


def test_sparsify_samples_one_draw_per_volume_and_reproducible():
    vols = [(np.zeros((1, 30, 4, 4), np.float32), np.zeros((30, 4, 4), int)) for _ in range(5)]
    a = sparse.sparsify_samples(vols, 0.1, seed=0)
    b = sparse.sparsify_samples(vols, 0.1, seed=0)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    kept = {tuple(np.flatnonzero((m != -1).all(axis=(1, 2)))) for _, m in a}
    assert len(kept) > 1
    assert a[0][0] is vols[0][0]
    assert sparse.labelled_fraction([m for _, m in a]) == pytest.approx(0.1)


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="fraction must be in"):
        sparse.sparsify(np.zeros((4, 4), int), 0.0)
    with pytest.raises(ValueError, match="already holds the label -1"):
        sparse.sparsify(np.full((4, 4), -1), 0.5)
    with pytest.raises(TypeError, match="integer labels"):
        sparse.sparsify(np.zeros((4, 4)), 0.5)
    with pytest.raises(ValueError, match="axis must be an axis"):
        sparse.sparsify(np.zeros((4, 4), int), 0.5, axis=2)
    with pytest.raises(ValueError, match="spread must be one of"):
        sparse.choose_slices(4, 0.5, spread="every")


def test_dice_ce_loss_honours_ignore_index_in_value_and_gradient():
    """Reported to the lead: DiceCELoss (both terms) leaves ignored voxels out."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 6, 5, 4, generator=g, requires_grad=True)
    full = torch.randint(0, 3, (2, 6, 5, 4), generator=g)
    target = torch.from_numpy(sparse.sparsify(full.numpy(), 0.34, axis=1, seed=0))
    loss = DiceCELoss(ignore_index=-1)(logits, target)
    loss.backward()
    unlabelled = (target == -1)[:, None].expand_as(logits)
    assert logits.grad[unlabelled].abs().max() == 0
    assert logits.grad[~unlabelled].abs().max() > 0
    # same value as the two terms computed on the labelled voxels by hand
    keep = target != -1
    ce = F.cross_entropy(logits.detach().movedim(1, -1)[keep], target[keep])
    p = torch.softmax(logits.detach(), 1)
    onehot = F.one_hot(target.clamp_min(0), 3).movedim(-1, 1).float() * keep[:, None]
    pm = p * keep[:, None]
    dice = (2 * (pm * onehot).sum((2, 3, 4)) + 1) / (pm.sum((2, 3, 4)) + onehot.sum((2, 3, 4)) + 1)
    assert torch.isclose(loss.detach(), ce + (1 - dice).mean(), atol=1e-5)
    assert torch.isclose(cross_entropy(logits.detach(), target, ignore_index=-1), ce, atol=1e-6)
    assert soft_dice_loss(logits.detach(), target, ignore_index=-1) < 1
