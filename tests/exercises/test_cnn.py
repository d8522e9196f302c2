"""Questions of 06_cnn: references pass, typical wrong answers fail with their message, and the
model-graded question accepts a trained PatchCNN and refuses untrained or ill-shaped models."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from medseg_course.exercises import Outcome
from medseg_course.exercises import cnn as ex
from medseg_course.models import DensePatchCNN, PatchCNN


def _solution(question, name):
    namespace = {"np": np, "torch": torch, "F": F}
    exec(question.solution_code, namespace)
    return namespace[name]


def _message(question, answer):
    result = question.check(answer)
    assert result.outcome is Outcome.INCORRECT, result.message
    return result.message


@pytest.mark.parametrize("question, name", [
    (ex.conv2d, "my_conv2d"), (ex.output_size, "my_output_size"), (ex.receptive_field, "my_receptive_field"),
])
def test_reference_and_solution_text_pass(question, name):
    assert question.check(question.reference).outcome is Outcome.CORRECT
    assert question.check(_solution(question, name)).outcome is Outcome.CORRECT


def test_questions_in_notebook_order():
    assert [q.name for q in ex.QUESTIONS] == ["conv2d", "output_size", "receptive_field", "patch_cnn"]
    assert all(q.notebook == "06_cnn" for q in ex.QUESTIONS)


def test_placeholder_is_not_attempted():
    def unfinished(*args, **kwargs):
        raise NotImplementedError

    assert ex.conv2d.check(unfinished).outcome is Outcome.NOT_ATTEMPTED
    assert ex.output_size.check(unfinished).outcome is Outcome.NOT_ATTEMPTED


# -- 1. convolution: the usual mistakes ------------------------------------------------------------

def _conv_by_F(transform):
    def answer(x, weight, bias=None, stride=1, padding=0):
        return transform(x, weight, bias, stride, padding)
    return answer


def _no_plus_one(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride=stride, padding=padding)[..., :-1, :-1]


def _ignores_stride(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, padding=padding)


def _pads_one_side(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(F.pad(x, (padding, 0, padding, 0)), weight, bias, stride=stride)


@pytest.mark.parametrize("answer, expected", [
    (_conv_by_F(lambda x, w, b, s, p: F.conv2d(x, w.flip(2, 3), b, stride=s, padding=p)), "true convolution"),
    (_conv_by_F(lambda x, w, b, s, p: F.conv2d(x, w, None, stride=s, padding=p)), "except for the bias"),
    (_conv_by_F(lambda x, w, b, s, p: F.conv2d(x, w, b, stride=s, padding=p) if w.shape[0] != w.shape[1]
                else F.conv2d(x, w.transpose(0, 1), b, stride=s, padding=p)), "channel axes the wrong way round"),
    (_conv_by_F(lambda x, w, b, s, p: F.conv2d(x, w, None, stride=s, padding=p) / x.shape[1]
                + (0 if b is None else b[None, :, None, None])), "mean over the input channels"),
    (_conv_by_F(lambda x, w, b, s, p: F.conv2d(x[:, :1], w[:, :1], b, stride=s, padding=p)), "Only the first input channel"),
    (_conv_by_F(lambda x, w, b, s, p: F.conv2d(F.pad(x, (p,) * 4, mode="replicate") if p else x, w, b, stride=s)),
     "repeats the border pixels"),
    (_no_plus_one, "one less than expected"),
    (_ignores_stride, "the stride is ignored"),
    (_pads_one_side, "padded side is n + 2 * padding"),
    (_conv_by_F(lambda x, w, b, s, p: F.conv2d(x, w, b, stride=s, padding=p).sum(1)), "returns (B, C_out, H_out, W_out)"),
    (_conv_by_F(lambda x, w, b, s, p: F.conv2d(x, w, b, stride=s, padding=p).tolist()), "should return a tensor"),
    (_conv_by_F(lambda x, w, b, s, p: F.conv2d(x, w, b, stride=s, padding=p) * 1.01), "wrong values"),
])
def test_conv2d_mistakes_get_their_message(answer, expected):
    assert expected in _message(ex.conv2d, answer)


def _taps_conv2d(x, weight, bias=None, stride=1, padding=0, *, dtype=None):
    """A right answer by the kernel taps, accumulating in ``dtype`` (float32: torch.zeros' default)."""
    kh, kw = weight.shape[2:]
    xp = F.pad(x, (padding,) * 4)
    H = (x.shape[2] + 2 * padding - kh) // stride + 1
    W = (x.shape[3] + 2 * padding - kw) // stride + 1
    out = torch.zeros(x.shape[0], weight.shape[0], H, W, dtype=dtype or x.dtype)
    for u in range(kh):
        for v in range(kw):
            shifted = xp[:, :, u:u + stride * (H - 1) + 1:stride, v:v + stride * (W - 1) + 1:stride]
            out += torch.einsum("bchw,oc->bohw", shifted, weight[:, :, u, v])
    if bias is not None:
        out += bias[None, :, None, None]
    return out


@pytest.mark.parametrize("answer", [
    lambda *a, **k: _taps_conv2d(*a, **k, dtype=torch.float32),       # out = torch.zeros(...) in float32
    lambda x, w, b=None, stride=1, padding=0: _taps_conv2d(x.float(), w.float(), None if b is None else b.float(),
                                                           stride, padding),
])
def test_conv2d_accepts_float32_arithmetic(answer):
    """Regression: a right answer computed in float32 was refused with 'wrong values (largest error 1e-06)'."""
    result = ex.conv2d.check(answer)
    assert result.correct, result.message


@pytest.mark.parametrize("answer, used", [
    (_conv_by_F(lambda x, w, b, s, p: F.conv2d(x, w, b, stride=s, padding=p)), "F.conv2d"),
    (_conv_by_F(lambda x, w, b, s, p: torch.conv2d(x, w, b, stride=s, padding=p)), "torch.conv2d"),
    (_conv_by_F(lambda x, w, b, s, p: _module_conv(x, w, b, s, p)), "nn.Conv2d"),
    (_conv_by_F(lambda x, w, b, s, p: _unfold_conv(x, w, b, s, p)), "F.unfold"),
])
def test_conv2d_refuses_library_convolutions(answer, used):
    """Regression: calling F.conv2d (which the exercise forbids, and the check compares with) passed."""
    original = (F.conv2d, torch.conv2d, F.unfold)
    message = _message(ex.conv2d, answer)
    assert used in message and "write the sum yourself" in message
    assert (F.conv2d, torch.conv2d, F.unfold) == original, "the check must restore the functions it watches"


def _module_conv(x, w, b, s, p):
    layer = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), stride=s, padding=p, bias=b is not None).double()
    with torch.no_grad():
        layer.weight.copy_(w)
        if b is not None:
            layer.bias.copy_(b)
        return layer(x)


def _unfold_conv(x, w, b, s, p):
    H = (x.shape[2] + 2 * p - w.shape[2]) // s + 1
    W = (x.shape[3] + 2 * p - w.shape[3]) // s + 1
    cols = F.unfold(x, tuple(w.shape[2:]), padding=p, stride=s)  # (B, C_in kH kW, H W)
    out = (w.flatten(1) @ cols).view(x.shape[0], w.shape[0], H, W)
    return out if b is None else out + b[None, :, None, None]


@pytest.mark.parametrize("answer, expected", [
    (lambda *a, **k: _taps_conv2d(*a, **k).transpose(2, 3), "height and width are swapped"),
    (lambda x, w, b=None, stride=1, padding=0: _taps_conv2d(x, w.flip(3), b, stride, padding), "along one axis"),
    (lambda x, w, b=None, stride=1, padding=0: _taps_conv2d(F.pad(x, (padding,) * 4, mode="reflect") if padding
                                                            else x, w, b, stride, 0), "mirrors the image"),
])
def test_conv2d_more_mistakes_get_their_message(answer, expected):
    assert expected in _message(ex.conv2d, answer)


def test_conv2d_accepts_numpy_output_and_reports_exceptions():
    numpy_answer = _conv_by_F(lambda x, w, b, s, p: ex.reference_conv2d(x, w, b, stride=s, padding=p).numpy())
    assert ex.conv2d.check(numpy_answer).outcome is Outcome.CORRECT
    crashing = _conv_by_F(lambda x, w, b, s, p: x @ w)
    assert "on the inputs one 6x7 image" in _message(ex.conv2d, crashing)


# -- 2. output size --------------------------------------------------------------------------------

@pytest.mark.parametrize("answer, expected", [
    (lambda n, k, stride=1, padding=0, dilation=1: (n + 2 * padding - dilation * (k - 1) - 1) / stride + 1, "float"),
    (lambda n, k, stride=1, padding=0, dilation=1: (n + 2 * padding - dilation * (k - 1) - 1) // stride, "forgot the + 1"),
    (lambda n, k, stride=1, padding=0, dilation=1: (n + 2 * padding - k) // stride + 1, "dilation is ignored"),
    (lambda n, k, stride=1, padding=0, dilation=1: (n + padding - k) // stride + 1, "both sides"),
    (lambda n, k, stride=1, padding=0, dilation=1: (n - k) // stride + 1, "padding is missing"),
    (lambda n, k, stride=1, padding=0, dilation=1: -(-(n + 2 * padding - k) // stride) + 1, "rounded up"),
    (lambda n, k, stride=1, padding=0, dilation=1: n + 2 * padding - k + 1, "stride is ignored"),
    (lambda n, k, stride=1, padding=0, dilation=1: [n], "should return one int"),
    (lambda n, k, stride=1, padding=0, dilation=1: 7, "but 26 was expected"),
])
def test_output_size_mistakes_get_their_message(answer, expected):
    assert expected in _message(ex.output_size, answer)


def test_output_size_accepts_numpy_ints():
    assert ex.output_size.check(lambda *a, **k: np.int64(ex.reference_output_size(*a, **k))).correct


# -- 3. receptive field ----------------------------------------------------------------------------

def _rf_ignoring_strides(layers):
    return 1 + sum(k - 1 for k, s in layers)


def _rf_own_stride(layers):
    r, j = 1, 1
    for k, s in layers:
        j *= s
        r += (k - 1) * j
    return r


def _rf_jump(layers):
    j = 1
    for k, s in layers:
        j *= s
    return j if len({s for _, s in layers}) > 1 else 1 + sum(k - 1 for k, s in layers)


def _rf_reversed(layers):
    r, j = 1, 1
    for k, s in reversed(layers):
        r += (k - 1) * j
        j *= s
    return r


@pytest.mark.parametrize("answer, expected", [
    (_rf_ignoring_strides, "ignored the strides"),
    (_rf_own_stride, "before using it for that layer"),
    (_rf_jump, "That is the jump"),
    (_rf_reversed, "reverse order"),
    (lambda layers: sum(k for k, s in layers), "counts the centre pixel"),
    (lambda layers: (ex.reference_receptive_field(layers), 1), "return only the receptive field"),
    (lambda layers: float(ex.reference_receptive_field(layers)) + 0.5, "not a whole number"),
    (lambda layers: 3, "but 5 was expected"),
])
def test_receptive_field_mistakes_get_their_message(answer, expected):
    assert expected in _message(ex.receptive_field, answer)


# -- 4. the model-graded patch classifier ----------------------------------------------------------

def test_held_out_pixels_are_fixed_balanced_and_the_same_for_every_patch_size():
    x29, y29 = ex.held_out_pixels(29)
    x45, y45 = ex.held_out_pixels(45)
    assert x29.shape[1:] == (1, 29, 29) and x45.shape[1:] == (1, 45, 45) and x29.dtype == torch.float32
    assert torch.equal(y29, y45) and abs(float(y29.float().mean()) - 0.5) < 0.02
    assert torch.equal(x29, x45[:, :, 8:-8, 8:-8])  # same centre pixels: the 29-patch is the 45-patch's core
    with pytest.raises(ValueError, match="odd positive int"):
        ex.held_out_pixels(30)


@pytest.fixture(scope="module")
def trained():
    return ex.train_reference_patch_cnn(steps=120, per_category=6, device="cpu")


def test_a_quickly_trained_patch_cnn_passes(trained):
    result = ex.patch_cnn.check(trained)
    assert result.correct, result.message
    assert "balanced accuracy" in result.message and result.value is trained


def test_untrained_and_ill_shaped_models_fail_with_their_message(trained, monkeypatch):
    monkeypatch.setattr(ex.patch_cnn, "_reference_model", trained)  # what a failed check continues with
    assert "random initial values" in _message(ex.patch_cnn, PatchCNN(patch_size=29))
    no_step = PatchCNN(patch_size=29)
    no_step(torch.rand(4, 1, 29, 29))  # batch-norm statistics move, the weights do not: score 0.5
    assert "reaches balanced accuracy 0.500" in _message(ex.patch_cnn, no_step)
    assert "patch_size attribute is None" in _message(ex.patch_cnn, nn.Conv2d(1, 2, 3))
    assert "in_channels=1" in _message(ex.patch_cnn, PatchCNN(in_channels=3, patch_size=29))
    assert "returns logits (B, K)" in _message(ex.patch_cnn, DensePatchCNN(patch_size=29))
    assert "Pass your trained model" in _message(ex.patch_cnn, "my_model")
    assert ex.patch_cnn.check(PatchCNN(patch_size=29)).value is trained


def test_a_model_trained_in_eval_mode_or_float64_is_scored_not_refused(trained):
    """Regression: the 'untrained' test (batch norms that never saw a training batch) refused a model whose
    weights were trained in eval mode; and a float64 model crashed on the float32 probe."""
    eval_trained = copy.deepcopy(trained)
    for m in eval_trained.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.num_batches_tracked.zero_()
    assert ex.patch_cnn.check(eval_trained).correct
    result = ex.patch_cnn.check(copy.deepcopy(trained).double())
    assert result.correct, result.message


def test_a_crash_that_is_not_about_channels_gets_no_channel_advice(trained, monkeypatch):
    monkeypatch.setattr(ex.patch_cnn, "_reference_model", trained)

    class Broken(nn.Module):
        patch_size = 29

        def forward(self, x):
            raise RuntimeError("something else went wrong")

    message = _message(ex.patch_cnn, Broken())
    assert "something else went wrong" in message and "in_channels" not in message


def test_balanced_accuracy_weighs_classes_equally():
    labels = torch.tensor([0] * 9 + [1])
    assert ex.balanced_accuracy(torch.zeros(10, dtype=torch.long), labels) == 0.5
    assert ex.balanced_accuracy(labels.clone(), labels) == 1.0
