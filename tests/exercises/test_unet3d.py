"""Questions of 09_unet3d: references pass, typical wrong answers fail with their message, and the
model question scores trained and untrained models on its held-out volumes."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from medseg_course.exercises import Outcome
from medseg_course.exercises import unet3d as ex
from medseg_course.losses import cross_entropy


def _solution(question, name):
    namespace = {"np": np, "torch": torch, "F": F}
    exec(question.solution_code, namespace)
    return namespace[name]


@pytest.mark.parametrize("question, name", [
    (ex.activation_memory, "my_encoder_activation_bytes"), (ex.masked_loss, "my_masked_cross_entropy"),
])
def test_reference_and_solution_text_pass(question, name):
    assert question.check(question.reference).outcome is Outcome.CORRECT
    assert question.check(_solution(question, name)).outcome is Outcome.CORRECT


def _fails(question, answer, message):
    result = question.check(answer)
    assert result.outcome is Outcome.INCORRECT, result.message
    assert message in result.message, result.message
    return result


# -- 1. activation memory -------------------------------------------------------------------------

def test_formula_matches_the_measured_encoder_on_every_case():
    rows = ex.encoder_memory_table()
    assert len(rows) == len(ex.MEMORY_CASES) >= 8
    assert all(r["formula"] == r["measured"] for r in rows)
    # the recipe's network, by hand: 2 volumes of 40x56x40, float32
    voxels = 40 * 56 * 40
    assert ex.reference_encoder_activation_bytes(2, (16, 32, 64, 128), (40, 56, 40)) == \
        2 * 4 * voxels * (16 + 32 / 8 + 64 / 64 + 128 / 512)


def _levels(batch, features, shape, nbytes, *, halve=(0, 1, 2), floor=True, first_pooled=False, batch_on=True):
    size, total = list(shape), 0
    for level, f in enumerate(features):
        if level or first_pooled:
            size = [(n // 2 if floor else n / 2) if i in halve else n for i, n in enumerate(size)]
        total += (batch if batch_on else 1) * f * math.prod(size)
    return total * nbytes


def mem_no_batch(batch, features, spatial_shape, bytes_per_element=4):
    return _levels(batch, features, spatial_shape, bytes_per_element, batch_on=False)


def mem_elements(batch, features, spatial_shape, bytes_per_element=4):
    return _levels(batch, features, spatial_shape, 1)


def mem_bits(batch, features, spatial_shape, bytes_per_element=4):
    return 8 * _levels(batch, features, spatial_shape, bytes_per_element)


def mem_2d(batch, features, spatial_shape, bytes_per_element=4):
    return _levels(batch, features, spatial_shape, bytes_per_element, halve=(1, 2))


def mem_first_level(batch, features, spatial_shape, bytes_per_element=4):
    return batch * features[0] * math.prod(spatial_shape) * bytes_per_element


def mem_float_sizes(batch, features, spatial_shape, bytes_per_element=4):
    return _levels(batch, features, spatial_shape, bytes_per_element, floor=False)


def mem_first_pooled(batch, features, spatial_shape, bytes_per_element=4):
    return _levels(batch, features, spatial_shape, bytes_per_element, first_pooled=True)


def mem_no_bottleneck(batch, features, spatial_shape, bytes_per_element=4):
    return _levels(batch, features[:-1], spatial_shape, bytes_per_element)


def mem_two_maps(batch, features, spatial_shape, bytes_per_element=4):
    return 2 * _levels(batch, features, spatial_shape, bytes_per_element)


def mem_other(batch, features, spatial_shape, bytes_per_element=4):
    return 3 * _levels(batch, features, spatial_shape, bytes_per_element)


@pytest.mark.parametrize("answer, message", [
    (mem_no_batch, "You forgot the batch"),
    (mem_elements, "That is a number of elements, not of bytes"),
    (mem_bits, "That is a number of bits"),
    (mem_2d, "you halved only H and W, as in 2D"),
    (mem_first_level, "You counted the first level only"),
    (mem_float_sizes, "rounded down at every level"),
    (mem_first_pooled, "Level 0 is at the input's full resolution"),
    (mem_other, "which is not what the encoder holds"),
    (mem_no_bottleneck, "You left out the deepest level, the bottleneck"),
    (mem_two_maps, "You counted two maps per level"),
    (lambda batch, features, spatial_shape, bytes_per_element=4: np.zeros(3), "should return one number"),
])
def test_memory_wrong_answers(answer, message):
    _fails(ex.activation_memory, answer, message)


def test_memory_accepts_numpy_and_float_numbers():
    ok = lambda *a, **k: np.int64(ex.reference_encoder_activation_bytes(*a, **k))  # noqa: E731
    assert ex.activation_memory.check(ok).outcome is Outcome.CORRECT
    ok = lambda *a, **k: float(ex.reference_encoder_activation_bytes(*a, **k))  # noqa: E731
    assert ex.activation_memory.check(ok).outcome is Outcome.CORRECT


# -- 2. the masked loss ---------------------------------------------------------------------------

def test_masked_reference_is_the_course_loss_with_ignore_index():
    for case in ex._loss_cases("cpu"):
        logits, target = case.args
        ignore = case.kwargs.get("ignore_index", -1)
        got = ex.reference_masked_cross_entropy(logits, target, **case.kwargs)
        assert torch.allclose(got, cross_entropy(logits, target, ignore_index=ignore), atol=1e-6), case.label


def _ce(logits, target, ignore_index):
    labelled = target != ignore_index
    return F.cross_entropy(logits, target.masked_fill(~labelled, 0), reduction="none"), labelled.float()


def loss_all_voxels(logits, target, ignore_index=-1):
    ce, m = _ce(logits, target, ignore_index)
    return (ce * m).mean()


def loss_as_background(logits, target, ignore_index=-1):
    return F.cross_entropy(logits, target.clamp_min(0) if ignore_index < 0 else target.masked_fill(
        target == ignore_index, 0))


def loss_sum(logits, target, ignore_index=-1):
    ce, m = _ce(logits, target, ignore_index)
    return (ce * m).sum()


def loss_per_image(logits, target, ignore_index=-1):
    ce, m = _ce(logits, target, ignore_index)
    dims = tuple(range(1, ce.ndim))
    return ((ce * m).sum(dims) / m.sum(dims).clamp_min(1)).mean()


def loss_nan_when_empty(logits, target, ignore_index=-1):
    ce, m = _ce(logits, target, ignore_index)
    return (ce * m).sum() / m.sum()


def loss_item(logits, target, ignore_index=-1):
    return ex.reference_masked_cross_entropy(logits, target, ignore_index).item()


def loss_detached(logits, target, ignore_index=-1):
    return ex.reference_masked_cross_entropy(logits.detach(), target, ignore_index)


def loss_hardcoded(logits, target, ignore_index=-1):
    return ex.reference_masked_cross_entropy(logits, target, -1)


def loss_leaks(logits, target, ignore_index=-1):
    """Right value, but a (tiny) gradient reaches the unlabelled voxels."""
    unlabelled = (target == ignore_index).unsqueeze(1)
    leak = (logits * unlabelled).pow(2).sum() * 1e-12
    return ex.reference_masked_cross_entropy(logits, target, ignore_index) + leak


def loss_constant_when_empty(logits, target, ignore_index=-1):
    ce, m = _ce(logits, target, ignore_index)
    if m.sum() == 0:
        return torch.tensor(0.0)
    return (ce * m).sum() / m.sum()


def loss_per_voxel(logits, target, ignore_index=-1):
    ce, m = _ce(logits, target, ignore_index)
    return ce * m


@pytest.mark.parametrize("answer, message", [
    (loss_all_voxels, "You divided by the number of ALL voxels"),
    (loss_as_background, "You counted the unlabelled voxels as background"),
    (loss_sum, "That is the sum of the losses"),
    (loss_per_image, "You averaged each volume on its own"),
    (loss_nan_when_empty, "Your loss is NaN when no voxel is labelled"),
    (loss_item, "Your function returned a Python number"),
    (loss_detached, "Your loss has no gradient"),
    (loss_constant_when_empty, "When no voxel is labelled, your loss is a constant cut off from autograd"),
    (loss_hardcoded, "on the inputs ignore_index=255"),
    (loss_leaks, "Unlabelled voxels receive a gradient from your loss"),
    (loss_per_voxel, "reduce it to one number"),
])
def test_masked_loss_wrong_answers(answer, message):
    _fails(ex.masked_loss, answer, message)


# -- 3. the trained 3D network --------------------------------------------------------------------

@pytest.fixture
def cheap_reference(monkeypatch):
    """Keep the question from training its reference model when an answer is wrong."""
    monkeypatch.setattr(ex.train_unet3d, "reference", lambda: nn.Identity())
    monkeypatch.setattr(ex.train_unet3d, "_reference_model", None)


def test_untrained_model_fails_with_its_score(cheap_reference):
    from medseg_course.models import UNet3D

    torch.manual_seed(0)
    result = _fails(ex.train_unet3d, UNet3D(1, 3, features=(2, 4)), "on held-out images that the check keeps")
    assert f"{ex.MODEL_GOAL:.2f} is needed" in result.message and "flip along W only" in result.message


def test_model_question_wrong_type_and_wrong_output(cheap_reference):
    _fails(ex.train_unet3d, np.zeros(3), "Pass your trained model")
    _fails(ex.train_unet3d, nn.Conv3d(1, 3, 2), "Running your model on the check's images raised")


def test_held_out_dice_of_an_oracle_is_one(monkeypatch):
    """The check's metric on volumes whose image encodes the labels, read back by an oracle model."""
    rng = np.random.default_rng(0)
    vols = []
    for _ in range(3):
        mask = np.zeros((12, 14, 10), np.int64)
        mask[2:6, 3:9, 2:8] = 1
        mask[6:10, 3:9, 2:8] = 2
        vols.append((mask[None].astype(np.float32) + 0.1 * rng.normal(size=(1, 12, 14, 10)).astype(np.float32), mask))
    monkeypatch.setattr(ex, "_held_out", lambda: tuple(vols))

    class Oracle(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(()))

        def forward(self, x):
            return F.one_hot(x[:, 0].round().clamp(0, 2).long(), 3).movedim(-1, 1).float() * 10 * self.w

    assert ex.held_out_dice(Oracle()) == 1.0


def test_fast_reference_reaches_the_goal_and_passes(monkeypatch):
    """The reference in fast mode (also the notebook's solution budget): 48 steps of the recipe."""
    monkeypatch.setenv("MEDSEG_FAST", "1")
    model = ex.train_reference_unet3d(device="cpu")
    score = ex.held_out_dice(model, "cpu")
    assert score >= ex.MODEL_GOAL + 0.05
    model.train()
    result = ex.train_unet3d.check(model)
    assert result.outcome is Outcome.CORRECT and f"{score:.3f}" in result.message
    assert model.training, "the check must leave the student's model in its mode"
