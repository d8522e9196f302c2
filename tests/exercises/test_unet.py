"""Questions of 08_unet: references pass, typical wrong answers fail with their message, and the
model question scores trained and untrained models on its held-out images."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import ndimage

from medseg_course.exercises import Outcome
from medseg_course.exercises import unet as ex
from medseg_course.models import UNet, match_size


def _solution(question, name):
    namespace = {"np": np, "torch": torch, "F": F, "ndimage": ndimage, "match_size": match_size}
    exec(question.solution_code, namespace)
    return namespace[name]


@pytest.mark.parametrize("question, name", [
    (ex.up_block, "my_up_block"), (ex.border_weights, "my_border_weights"),
])
def test_reference_and_solution_text_pass(question, name):
    assert question.check(question.reference).outcome is Outcome.CORRECT
    assert question.check(_solution(question, name)).outcome is Outcome.CORRECT


def _fails(question, answer, message):
    result = question.check(answer)
    assert result.outcome is Outcome.INCORRECT, result.message
    assert message in result.message, result.message
    return result


# -- 1. the up-block ---------------------------------------------------------------------------------

def test_reference_is_the_block_and_the_unet_level():
    for padding, xs, ss in [("valid", (6, 6), (16, 16)), ("same", (4, 5), (9, 11))]:
        block = ex.up_block_net(1, padding=padding)
        x, skip = torch.randn(2, 16, *xs), torch.randn(2, 8, *ss)
        with torch.no_grad():
            assert torch.equal(ex.reference_up_block(block, x, skip), block(x, skip))
    # in a valid U-Net, the skip of every level is larger than the upsampled features by an even margin
    net = UNet(1, 2, features=(4, 8, 16), padding="valid", norm=None).eval()
    sizes = []

    def record(module, args):
        sizes.append((args[0].shape, args[1].shape))  # returns None: the inputs stay as they are

    hooks = [m.register_forward_pre_hook(record) for m in net.ups]
    with torch.no_grad():
        net(torch.zeros(1, 1, 40, 40))
    for h in hooks:
        h.remove()
    assert len(sizes) == 2
    for x_shape, skip_shape in sizes:
        margin = skip_shape[-1] - 2 * x_shape[-1]
        assert margin > 0 and margin % 2 == 0


def up_cat_reversed(block, x, skip):
    up = block.upsample(x)
    skip = match_size(skip, up.shape[2:]) if block.crop_skip else skip
    up = up if block.crop_skip else match_size(up, skip.shape[2:])
    return block.convs(torch.cat([up, skip], dim=1))


def up_corner_crop(block, x, skip):
    up = block.upsample(x)
    if block.crop_skip:
        skip = skip[..., :up.shape[-2], :up.shape[-1]]
    else:
        up = match_size(up, skip.shape[2:])
    return block.convs(torch.cat([skip, up], dim=1))


def up_always_pad(block, x, skip):
    up = match_size(block.upsample(x), skip.shape[2:])
    return block.convs(torch.cat([skip, up], dim=1))


def up_always_crop(block, x, skip):
    up = block.upsample(x)
    return block.convs(torch.cat([match_size(skip, up.shape[2:]), up], dim=1))


def up_interpolate_skip(block, x, skip):
    up = block.upsample(x)
    if block.crop_skip:
        skip = F.interpolate(skip, size=up.shape[2:], mode="bilinear", align_corners=False)
    else:
        up = match_size(up, skip.shape[2:])
    return block.convs(torch.cat([skip, up], dim=1))


def up_no_convs(block, x, skip):
    up = block.upsample(x)
    skip = match_size(skip, up.shape[2:]) if block.crop_skip else skip
    return torch.cat([skip, match_size(up, skip.shape[2:])], dim=1)


def up_nearest(block, x, skip):
    up = F.interpolate(x, scale_factor=2)[:, :block.upsample.up.out_channels]
    skip = match_size(skip, up.shape[2:]) if block.crop_skip else skip
    return block.convs(torch.cat([skip, match_size(up, skip.shape[2:])], dim=1))


def up_no_crop(block, x, skip):
    return block.convs(torch.cat([skip, block.upsample(x)], dim=1))


def up_odd_pixel_first(block, x, skip):
    up = block.upsample(x)
    if block.crop_skip:
        return block.convs(torch.cat([match_size(skip, up.shape[2:]), up], dim=1))
    dh, dw = skip.shape[-2] - up.shape[-2], skip.shape[-1] - up.shape[-1]
    up = F.pad(up, [dw - dw // 2, dw // 2, dh - dh // 2, dh // 2])
    return block.convs(torch.cat([skip, up], dim=1))


@pytest.mark.parametrize("answer, message", [
    (up_cat_reversed, "You concatenated [upsampled, skip]"),
    (up_corner_crop, "You cropped the skip from its top-left corner"),
    (up_always_pad, "you padded the upsampled features up to the skip's size"),
    (up_interpolate_skip, "You resized with F.interpolate"),
    (up_no_convs, "Finish with the double convolution"),
    (up_nearest, "right shape but wrong values"),
    (up_no_crop, "Your function raised RuntimeError"),
    (up_odd_pixel_first, "You put the odd pixel of padding before"),
    (lambda block, x, skip: block(x, skip), "Your function calls the block itself"),
    (lambda block, x, skip: block.forward(x, skip), "Your function calls the block itself"),
    (lambda block, x, skip: x.numpy(), "should return a torch tensor"),
])
def test_up_block_wrong_answers(answer, message):
    _fails(ex.up_block, answer, message)


def test_up_block_always_crop_fails_on_the_same_padding_case():
    _fails(ex.up_block, up_always_crop, "restored by padding the upsampled features to the skip's size")


# -- 2. border weights -----------------------------------------------------------------------------------

def _d12(instances):
    labels = [k for k in np.unique(instances) if k > 0]
    if len(labels) < 2:
        return None
    d = np.sort(np.stack([ndimage.distance_transform_edt(instances != k) for k in labels]), axis=0)
    return d[0], d[1]


def _make(term):
    def answer(instances, w0=10.0, sigma=5.0):
        d = _d12(instances)
        if d is None:
            return np.zeros(instances.shape)
        return term(instances, *d, w0, sigma)
    return answer


weights_everywhere = _make(lambda i, d1, d2, w0, s: w0 * np.exp(-((d1 + d2) ** 2) / (2 * s**2)))
weights_twice_d1 = _make(lambda i, d1, d2, w0, s: np.where(i == 0, w0 * np.exp(-((2 * d1) ** 2) / (2 * s**2)), 0))
weights_sigma2 = _make(lambda i, d1, d2, w0, s: np.where(i == 0, w0 * np.exp(-((d1 + d2) ** 2) / s**2), 0))
weights_unsquared = _make(lambda i, d1, d2, w0, s: np.where(i == 0, w0 * np.exp(-(d1 + d2) / (2 * s**2)), 0))
weights_sum_sq = _make(lambda i, d1, d2, w0, s: np.where(i == 0, w0 * np.exp(-(d1**2 + d2**2) / (2 * s**2)), 0))
weights_plus_one = _make(lambda i, d1, d2, w0, s: 1 + np.where(i == 0, w0 * np.exp(-((d1 + d2) ** 2) / (2 * s**2)), 0))


def weights_single_crash(instances, w0=10.0, sigma=5.0):
    labels = [k for k in np.unique(instances) if k > 0]
    d = np.sort(np.stack([ndimage.distance_transform_edt(instances != k) for k in labels]), axis=0)
    return np.where(instances == 0, w0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * sigma**2)), 0.0)


def weights_single_ones(instances, w0=10.0, sigma=5.0):
    good = _solution(ex.border_weights, "my_border_weights")(instances, w0, sigma)
    return good if len(np.unique(instances)) > 2 else np.ones(instances.shape)


@pytest.mark.parametrize("answer, message", [
    (weights_everywhere, "not zero on the nuclei"),
    (weights_twice_d1, "SECOND-nearest"),
    (weights_sigma2, "The denominator is 2 sigma**2"),
    (weights_unsquared, "Square the sum of the distances"),
    (weights_sum_sq, "Square the SUM"),
    (weights_plus_one, "shifted by a constant"),
    (weights_single_crash, "Your function raised IndexError"),
    (weights_single_ones, "the border term is 0 everywhere"),
    (lambda instances, w0=10.0, sigma=5.0: np.zeros(5), "one weight per pixel"),
    (lambda instances, w0=10.0, sigma=5.0: 3.0, "should return an array"),
])
def test_border_weights_wrong_answers(answer, message):
    _fails(ex.border_weights, answer, message)


def test_border_weights_accept_a_tensor():
    good = _solution(ex.border_weights, "my_border_weights")
    assert ex.border_weights.check(lambda i, w0=10.0, sigma=5.0: torch.from_numpy(good(i, w0, sigma))).correct


# -- 3. the trained U-Net ----------------------------------------------------------------------------------

@pytest.fixture
def cheap_reference(monkeypatch):
    """Keep the question from training its reference model when an answer is wrong."""
    monkeypatch.setattr(ex.train_unet, "reference", lambda: nn.Identity())
    monkeypatch.setattr(ex.train_unet, "_reference_model", None)


def test_untrained_model_fails_with_its_score(cheap_reference):
    torch.manual_seed(0)
    result = _fails(ex.train_unet, UNet(1, 1, features=(4, 8)), "on held-out images that the check keeps")
    assert f"{ex.MODEL_GOAL:.2f} is needed" in result.message and "train longer" in result.message


def test_model_question_wrong_type_and_wrong_output_size(cheap_reference):
    _fails(ex.train_unet, np.zeros(3), "Pass your trained model")
    _fails(ex.train_unet, nn.Conv2d(1, 1, 3), "Running your model on the check's images raised ValueError")


def test_fast_reference_reaches_the_goal_with_margin_and_passes(monkeypatch):
    """The reference in fast mode (also the notebook's solution budget) clears the goal with margin."""
    monkeypatch.setenv("MEDSEG_FAST", "1")
    model = ex.train_reference_unet(device="cpu")
    score = ex.held_out_dice(model, "cpu")
    assert score >= ex.MODEL_GOAL + 0.02
    model.train()
    result = ex.train_unet.check(model)
    assert result.outcome is Outcome.CORRECT and f"{score:.3f}" in result.message
    assert model.training, "the check must leave the student's model in its mode"
