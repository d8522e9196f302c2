"""Questions of 07_fcn: references pass, typical wrong answers fail with their message, and the
model question scores trained and untrained models on its held-out images."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from medseg_course.exercises import Outcome
from medseg_course.exercises import fcn as ex
from medseg_course.models import FCN, bilinear_kernel


def _solution(question, name):
    namespace = {"np": np, "torch": torch, "F": F}
    exec(question.solution_code, namespace)
    return namespace[name]


@pytest.mark.parametrize("question, name", [
    (ex.conv_transpose_size, "my_conv_transpose_size"), (ex.bilinear, "my_bilinear_kernel"),
    (ex.skip_fusion, "my_fcn8s_scores"),
])
def test_reference_and_solution_text_pass(question, name):
    assert question.check(question.reference).outcome is Outcome.CORRECT
    assert question.check(_solution(question, name)).outcome is Outcome.CORRECT


def _fails(question, answer, message):
    result = question.check(answer)
    assert result.outcome is Outcome.INCORRECT, result.message
    assert message in result.message, result.message
    return result


# -- 1. output size -------------------------------------------------------------------------------

def test_size_formula_matches_conv_transpose2d_on_every_case():
    rows = ex.conv_transpose_size_table()
    assert len(rows) == len(ex.SIZE_CASES) >= 10
    assert all(r["formula"] == r["torch"] for r in rows)
    # non-square kernels and strides: the formula holds per axis
    layer = nn.ConvTranspose2d(1, 1, (3, 5), stride=(2, 3), padding=(1, 2), output_padding=(1, 2), dilation=(1, 2))
    out = layer(torch.zeros(1, 1, 7, 9)).shape[2:]
    assert tuple(out) == (ex.reference_conv_transpose_size(7, 3, 2, 1, 1, 1),
                          ex.reference_conv_transpose_size(9, 5, 3, 2, 2, 2))


def size_conv(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def size_no_output_padding(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + 1


def size_no_dilation(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - 2 * padding + (kernel_size - 1) + output_padding + 1


def size_one_padding(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - padding + dilation * (kernel_size - 1) + output_padding + 1


def size_plus_padding(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride + 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


def size_times_stride(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return size * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1


def size_float(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return float(ex.reference_conv_transpose_size(size, kernel_size, stride, padding, output_padding, dilation))


def size_array(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return np.array([size * stride, size * stride])


def size_times_stride_only(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return size * stride


def size_no_plus_one(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding


def size_output_padding_twice(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + 2 * output_padding + 1


@pytest.mark.parametrize("answer, message, not_message", [
    (size_times_stride_only, "H_in * stride is the size only for some settings", "subtract 2 * padding"),
    (size_no_plus_one, "one too small", "Either"),
    (size_output_padding_twice, "add it once, not twice", "subtract 2 * padding"),
    (size_no_output_padding, "You left out output_padding", "Either"),
])
def test_size_diagnosis_is_not_fooled_by_a_coincidence(answer, message, not_message):
    """Regression: size * stride (and output_padding added twice) fail first where their size happens to be
    expected + padding, and were told to 'subtract 2 * padding, not padding'."""
    result = _fails(ex.conv_transpose_size, answer, message)
    assert not_message not in result.message.split("\n")[0], result.message


@pytest.mark.parametrize("answer, message", [
    (size_conv, "ordinary (strided) convolution"),
    (size_no_output_padding, "You left out output_padding"),
    (size_no_dilation, "You left out the dilation"),
    (size_one_padding, "subtract 2 * padding, not padding"),
    (size_plus_padding, "subtract 2 * padding instead of adding it"),
    (size_times_stride, "(H_in - 1) * stride, not H_in * stride"),
    (size_array, "should return one number"),
])
def test_size_wrong_answers(answer, message):
    _fails(ex.conv_transpose_size, answer, message)


def test_size_accepts_whole_floats():
    assert ex.conv_transpose_size.check(size_float).outcome is Outcome.CORRECT


# -- 2. bilinear kernel ----------------------------------------------------------------------------

def test_bilinear_reference_is_interpolation_away_from_the_border():
    rng = np.random.default_rng(0)
    image = rng.random((12, 15)).astype(np.float32)
    for factor, k in ((2, 4), (3, 5), (4, 8)):
        up = ex.upsample_with_kernel(image, ex.reference_bilinear_kernel(k), factor)
        interp = F.interpolate(torch.from_numpy(image)[None, None], scale_factor=factor, mode="bilinear",
                               align_corners=False)[0, 0]
        b = factor  # the border band where the transposed convolution sees zeros
        assert up.shape == interp.shape
        assert torch.allclose(up[b:-b, b:-b], interp[b:-b, b:-b], atol=1e-5), factor
    assert np.array_equal(ex.reference_bilinear_kernel(5), bilinear_kernel(3, 3, 5)[2, 2].numpy())


def _tent(k, centre, denom):
    w = 1 - np.abs(np.arange(k) - centre) / denom
    return np.outer(w, w)


def kernel_1d(kernel_size):
    k = kernel_size
    return 1 - np.abs(np.arange(k) - (k - 1) / 2) / ((k + 1) // 2)


def kernel_normalised(kernel_size):
    w = ex.reference_bilinear_kernel(kernel_size)
    return w / w.sum()


def kernel_centre_k_over_2(kernel_size):
    return _tent(kernel_size, kernel_size / 2, (kernel_size + 1) // 2)


def kernel_divided_by_k(kernel_size):
    return _tent(kernel_size, (kernel_size - 1) / 2, kernel_size)


def kernel_half_k_odd(kernel_size):  # f = k / 2 instead of ceil(k / 2): wrong for odd kernels only
    return _tent(kernel_size, (kernel_size - 1) / 2, kernel_size / 2)


def kernel_ones(kernel_size):
    return np.ones((kernel_size, kernel_size))


def kernel_int(kernel_size):
    return (ex.reference_bilinear_kernel(kernel_size) * 16).astype(np.int64)


def kernel_floor_half(kernel_size):  # f = k // 2: wrong for odd kernels only
    return _tent(kernel_size, (kernel_size - 1) / 2, max(kernel_size // 2, 1))


def kernel_torch(kernel_size):
    return torch.from_numpy(ex.reference_bilinear_kernel(kernel_size))


@pytest.mark.parametrize("answer, message", [
    (kernel_1d, "one-dimensional"),
    (kernel_normalised, "but is scaled: its weights sum to 1"),
    (kernel_centre_k_over_2, "not symmetric about its centre"),
    (kernel_divided_by_k, "You divided |i - c| by the kernel size k"),
    (kernel_half_k_odd, "You divided |i - c| by k / 2"),
    (kernel_ones, "not the bilinear weights"),
    (kernel_int, "has dtype int64"),
    (lambda kernel_size: "kernel", "should return a (4, 4) array"),
    (lambda kernel_size: [[1.0]], "a (4, 4) array was expected"),
    (kernel_floor_half, "You divided |i - c| by k // 2"),
])
def test_bilinear_wrong_answers(answer, message):
    _fails(ex.bilinear, answer, message)


def test_bilinear_accepts_a_tensor():
    assert ex.bilinear.check(kernel_torch).outcome is Outcome.CORRECT


@pytest.mark.parametrize("answer", [
    lambda k: ex.reference_bilinear_kernel(k).tolist(),                      # a nested list
    lambda k: ex.reference_bilinear_kernel(k).astype(np.float16),            # half precision
    lambda k: ex.reference_bilinear_kernel(k).astype(np.float64),
])
def test_bilinear_accepts_right_answers_of_another_type(answer):
    """Regression: a nested list was refused as 'not an array', float16 failed on rounding."""
    result = ex.bilinear.check(answer)
    assert result.outcome is Outcome.CORRECT, result.message


# -- 3. skip fusion --------------------------------------------------------------------------------

def test_skip_fusion_reference_is_the_network():
    net = ex.skip_net(seed=1, out_channels=3)
    x = torch.rand(2, 1, 96, 64)
    with torch.no_grad():
        pool3 = net.stage3(net.stage2(net.stage1(x)))
        pool4 = net.stage4(pool3)
        pool5 = net.stage5(pool4)
        scores = ex.reference_fcn8s_scores(net, pool3, pool4, pool5)
        full = F.interpolate(scores, scale_factor=8, mode="bilinear", align_corners=False)
        assert torch.allclose(full, net(x), atol=1e-5)
    fresh = FCN(1, 2, "8s")
    assert not fresh.score_pool3.weight.detach().any()  # why the check randomises the skips


def fuse_16s(net, pool3, pool4, pool5):
    score = net.score_fr(net.fc7(net.fc6(pool5)))
    return net.up2_fr(score) + net.score_pool4(pool4)


def fuse_32s(net, pool3, pool4, pool5):
    return net.score_fr(net.fc7(net.fc6(pool5)))


def fuse_full_size(net, pool3, pool4, pool5):
    return F.interpolate(ex.reference_fcn8s_scores(net, pool3, pool4, pool5), scale_factor=8)


def fuse_interpolate(net, pool3, pool4, pool5):
    up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
    score = net.score_fr(net.fc7(net.fc6(pool5)))
    return up(up(score) + net.score_pool4(pool4)) + net.score_pool3(pool3)


def fuse_swapped(net, pool3, pool4, pool5):
    score = net.score_fr(net.fc7(net.fc6(pool5)))
    return net.up2_fr(net.up2_pool4(score) + net.score_pool4(pool4)) + net.score_pool3(pool3)


def fuse_no_pool4(net, pool3, pool4, pool5):
    return net.up2_pool4(net.up2_fr(net.score_fr(net.fc7(net.fc6(pool5))))) + net.score_pool3(pool3)


def fuse_no_fc(net, pool3, pool4, pool5):
    score = net.score_fr(pool5)
    return net.up2_pool4(net.up2_fr(score) + net.score_pool4(pool4)) + net.score_pool3(pool3)


def fuse_product(net, pool3, pool4, pool5):
    score = net.score_fr(net.fc7(net.fc6(pool5)))
    return net.up2_pool4(net.up2_fr(score) * net.score_pool4(pool4)) * net.score_pool3(pool3)


def fuse_concat(net, pool3, pool4, pool5):
    score = net.score_fr(net.fc7(net.fc6(pool5)))
    return torch.cat([net.up2_fr(score), net.score_pool4(pool4)], dim=1)


def fuse_up2_fr_twice(net, pool3, pool4, pool5):
    score = net.score_fr(net.fc7(net.fc6(pool5)))
    return net.up2_fr(net.up2_fr(score) + net.score_pool4(pool4)) + net.score_pool3(pool3)


def fuse_up2_pool4_twice(net, pool3, pool4, pool5):
    score = net.score_fr(net.fc7(net.fc6(pool5)))
    return net.up2_pool4(net.up2_pool4(score) + net.score_pool4(pool4)) + net.score_pool3(pool3)


def fuse_no_pool3(net, pool3, pool4, pool5):
    return net.up2_pool4(net.up2_fr(net.score_fr(net.fc7(net.fc6(pool5)))) + net.score_pool4(pool4))


def fuse_nearest(net, pool3, pool4, pool5):
    up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")  # noqa: E731
    score = net.score_fr(net.fc7(net.fc6(pool5)))
    return up(up(score) + net.score_pool4(pool4)) + net.score_pool3(pool3)


@pytest.mark.parametrize("answer, message", [
    (fuse_up2_fr_twice, "You used net.up2_fr for both upsamplings"),
    (fuse_up2_pool4_twice, "You used net.up2_pool4 for both upsamplings"),
    (fuse_no_pool3, "miss the pool3 skip"),
    (fuse_nearest, "You upsampled with F.interpolate"),
    (fuse_16s, "that is FCN-16s"),
    (fuse_32s, "stride 32: no skip was fused"),
    (fuse_full_size, "stop at stride 8"),
    (fuse_interpolate, "You upsampled with F.interpolate"),
    (fuse_swapped, "wrong order"),
    (fuse_no_pool4, "miss the pool4 skip"),
    (fuse_no_fc, "Your function raised RuntimeError"),  # score_fr expects fc7's channels
    (fuse_product, "ADD the scores of the skip"),
    (fuse_concat, "but (2, 2, 8, 12) was expected"),
    (lambda net, pool3, pool4, pool5: pool3.numpy(), "should return a torch tensor"),
])
def test_skip_fusion_wrong_answers(answer, message):
    _fails(ex.skip_fusion, answer, message)


# -- 4. the trained FCN ----------------------------------------------------------------------------

@pytest.fixture
def cheap_reference(monkeypatch):
    """Keep the question from training its reference model when an answer is wrong."""
    monkeypatch.setattr(ex.train_fcn, "reference", lambda: nn.Identity())
    monkeypatch.setattr(ex.train_fcn, "_reference_model", None)


def test_untrained_model_fails_with_its_score(cheap_reference):
    torch.manual_seed(0)
    result = _fails(ex.train_fcn, FCN(1, 1, "32s", base_channels=4), "on held-out images that the check keeps")
    assert f"{ex.MODEL_GOAL:.2f} is needed" in result.message and "train longer" in result.message


def test_untrained_fcn8s_is_told_to_train(cheap_reference):
    """An FCN-8s whose zero-initialised skip scores never moved was not trained: say so, not 'train longer'."""
    torch.manual_seed(0)
    result = _fails(ex.train_fcn, FCN(1, 1, "8s", base_channels=4), "has not been trained")
    assert "train longer" not in result.message


def test_held_out_dice_runs_a_float64_model():
    """Regression: a model trained in float64 crashed on the check's float32 images."""
    torch.manual_seed(0)
    model = FCN(1, 1, "32s", base_channels=4, norm="group").double()
    assert 0.0 <= ex.held_out_dice(model, "cpu") <= 1.0
    assert next(model.parameters()).dtype == torch.float64


def test_model_question_wrong_type_and_wrong_output_size(cheap_reference):
    _fails(ex.train_fcn, np.zeros(3), "Pass your trained model")
    _fails(ex.train_fcn, nn.Conv2d(1, 1, 3), "Running your model on the check's images raised ValueError")


def test_fast_reference_reaches_the_goal_and_passes(monkeypatch):
    """The reference in fast mode (also the notebook's solution budget) is a quickly trained tiny model."""
    monkeypatch.setenv("MEDSEG_FAST", "1")
    model = ex.train_reference_fcn(device="cpu")
    score = ex.held_out_dice(model, "cpu")
    assert score >= ex.MODEL_GOAL
    model.train()
    result = ex.train_fcn.check(model)
    assert result.outcome is Outcome.CORRECT and f"{score:.3f}" in result.message
    assert model.training, "the check must leave the student's model in its mode"
