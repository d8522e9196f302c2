"""Questions of notebook 08_unet: the U-Net up-block (upsample, crop or pad, concatenate, double
conv), the border term of the U-Net weight map, and a trained U-Net scored on held-out images.

Introduced in 08_unet.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from medseg_course.data.weights import border_term
from medseg_course.exercises.engine import (
    CallWatcher,
    Case,
    FunctionQuestion,
    Incorrect,
    ModelQuestion,
    Question,
    describe,
)
from medseg_course.exercises.engine import summary as _summary
from medseg_course.models import UpCat, match_size

NOTEBOOK = "08_unet"


# -- 1. the up-block --------------------------------------------------------------------------------

def reference_up_block(block: UpCat, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """One U-Net decoder step with the layers of ``block``: what ``block(x, skip)`` computes.

    Introduced in 08_unet.

    Parameters
    ----------
    block : UpCat
        Its ``upsample`` (2x2 up-convolution) and ``convs`` (double conv) are used;
        ``block.crop_skip`` is True for a valid-padding U-Net.
    x : (B, C_in, h, w) torch.Tensor
        Deeper features.
    skip : (B, C_skip, H, W) torch.Tensor
        Features of the contracting path at the finer level.

    Returns
    -------
    (B, C_out, h', w') torch.Tensor
        ``convs(cat([skip', up], dim=1))``, with ``up = upsample(x)`` of size ``2h x 2w``:
        valid padding centre-crops the skip to that size; same padding pads ``up`` to the
        skip's size (an odd-sized level).

    Examples
    --------
    >>> block = up_block_net(seed=0, padding="valid")
    >>> reference_up_block(block, torch.zeros(1, 16, 6, 6), torch.zeros(1, 8, 16, 16)).shape
    torch.Size([1, 8, 8, 8])
    """
    up = block.upsample(x)  # (B, C_up, 2h, 2w)
    if block.crop_skip:
        skip = match_size(skip, up.shape[2:])  # (B, C_skip, 2h, 2w): centre crop
    else:
        up = match_size(up, skip.shape[2:])  # (B, C_up, H, W): pad an odd level
    return block.convs(torch.cat([skip, up], dim=1))  # (B, C_out, ...)


def up_block_net(seed: int = 0, *, padding: str = "valid", in_channels: int = 16, skip_channels: int = 8,
                 out_channels: int = 8) -> UpCat:
    """An ``UpCat`` with random weights (eval mode), as in a U-Net level; the check's test block.

    Introduced in 08_unet.
    """
    g = torch.Generator().manual_seed(seed)
    block = UpCat(2, in_channels, skip_channels, out_channels, padding=padding, norm=None).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return block


#: (padding, x size, skip size, batch): valid levels (skip larger by an even margin), same levels.
UP_CASES = (
    ("valid", (6, 6), (16, 16), 2),
    ("valid", (5, 7), (14, 18), 1),
    ("valid", (4, 4), (20, 20), 1),
    ("same", (4, 5), (9, 11), 1),
    ("same", (4, 4), (8, 8), 2),
)


def _up_cases(device):
    for seed, (padding, xs, ss, b) in enumerate(UP_CASES):
        g = torch.Generator().manual_seed(100 + seed)
        block = up_block_net(seed, padding=padding).to(device)
        x = torch.randn(b, 16, *xs, generator=g).to(device)
        skip = torch.randn(b, 8, *ss, generator=g).to(device)
        what = (f"a valid-padding block, x {xs[0]}x{xs[1]}, skip {ss[0]}x{ss[1]}" if padding == "valid"
                else f"a same-padding block, x {xs[0]}x{xs[1]}, skip {ss[0]}x{ss[1]}")
        yield Case((block, x, skip), label=what)


def _corner_crop(t, size):
    return t[(Ellipsis, *(slice(0, n) for n in size))]


def _compare_up(got, expected, case):
    block, x, skip = case.args
    if not isinstance(got, torch.Tensor):
        raise Incorrect(f"Your function should return a torch tensor, but it returned {describe(got)}.")
    got, e = got.detach(), expected.detach()
    up_size = tuple(2 * n for n in x.shape[2:])
    if got.shape != e.shape:
        if got.ndim == 4 and got.shape[1] != e.shape[1] and got.shape[1] == skip.shape[1] + block.upsample(x).shape[1]:
            raise Incorrect(f"Your output has {got.shape[1]} channels: the concatenation itself. Finish with the "
                            "double convolution, block.convs.")
        if block.crop_skip and got.ndim == 4 and tuple(got.shape[2:]) == tuple(n - 4 for n in skip.shape[2:]):
            raise Incorrect("Your output has the size of the skip minus the valid convolutions: you padded the "
                            "upsampled features up to the skip's size. In a valid-padding U-Net the skip is "
                            "larger; crop the skip to the upsampled features' size instead.")
        if not block.crop_skip and got.ndim == 4 and tuple(got.shape[2:]) == up_size:
            raise Incorrect(f"Your output is {up_size[0]}x{up_size[1]}, smaller than the skip: in a same-padding "
                            "block (block.crop_skip is False) an odd-sized level is restored by padding the "
                            "upsampled features to the skip's size, match_size(up, skip.shape[2:]).")
        raise Incorrect(f"Your output has shape {tuple(got.shape)}, but {tuple(e.shape)} was expected.")
    if torch.allclose(got, e, rtol=1e-4, atol=1e-5):
        return
    with torch.no_grad():
        up = block.upsample(x)
        if block.crop_skip:
            sk, upm = match_size(skip, up.shape[2:]), up
            alts = [(block.convs(torch.cat([upm, sk], dim=1)), "wrong concatenation order")]
            alts.append((block.convs(torch.cat([_corner_crop(skip, up.shape[2:]), up], dim=1)), "corner"))
            resized = F.interpolate(skip, size=up.shape[2:], mode="bilinear", align_corners=False)
            alts.append((block.convs(torch.cat([resized, up], dim=1)), "interpolated"))
        else:
            sk, upm = skip, match_size(up, skip.shape[2:])
            alts = [(block.convs(torch.cat([upm, sk], dim=1)), "wrong concatenation order")]
            dh, dw = skip.shape[-2] - up.shape[-2], skip.shape[-1] - up.shape[-1]
            alts.append((block.convs(torch.cat([sk, F.pad(up, [0, dw, 0, dh])], dim=1)), "corner pad"))
            alts.append((block.convs(torch.cat([sk, F.pad(up, [dw - dw // 2, dw // 2, dh - dh // 2, dh // 2])],
                                               dim=1)), "odd pixel first"))
            resized = F.interpolate(up, size=skip.shape[2:], mode="bilinear", align_corners=False)
            alts.append((block.convs(torch.cat([sk, resized], dim=1)), "interpolated"))
    messages = {
        "wrong concatenation order": "You concatenated [upsampled, skip]; the block's convolution was built for "
                                     "[skip, upsampled] along the channel axis (torch.cat([skip, up], dim=1)).",
        "corner": "You cropped the skip from its top-left corner. Crop its centre, the same margin on each side "
                  "(match_size(skip, up.shape[2:]) does it): the valid convolutions lost their border pixels "
                  "evenly on all sides, so the centres of the two maps are the same pixel.",
        "corner pad": "You padded the upsampled features on the bottom/right only. Pad them centred on the skip "
                      "(match_size(up, skip.shape[2:])).",
        "odd pixel first": "You put the odd pixel of padding before (top/left). Pad the way the network does, "
                           "with match_size(up, skip.shape[2:]): d // 2 before and the rest after on each axis.",
        "interpolated": "You resized with F.interpolate. The U-Net does not resample the skip or the upsampled "
                        "features to make them fit: it crops (valid padding) or pads (same padding), so that "
                        "every pixel keeps its exact position.",
    }
    for alt, key in alts:
        if alt.shape == got.shape and torch.allclose(got, alt, rtol=1e-4, atol=1e-5):
            raise Incorrect(messages[key])
    raise Incorrect(f"Your output has the right shape but wrong values (largest error "
                    f"{float((got - e).abs().max()):.3g}). Upsample x with block.upsample (the learnt 2x2 "
                    "up-convolution), bring the skip and the upsampled features to one size, concatenate "
                    "[skip, up] on the channel axis, and finish with block.convs.")


class UpBlockQuestion(FunctionQuestion):
    """:class:`FunctionQuestion` that also refuses an answer calling the block itself.

    The check compares with what ``block(x, skip)`` computes, so ``lambda block, x, skip: block(x, skip)``
    would pass without writing a step. Introduced in 08_unet.
    """

    def grade(self, answer):
        if not callable(answer):
            return super().grade(answer)
        calls = CallWatcher([(UpCat, "forward", "block(x, skip)")])
        with calls.watching():
            super().grade(calls.watch(answer))  # a wrong result is reported first
        if calls.used:
            raise Incorrect("Your function calls the block itself, block(x, skip) (or block.forward), which is "
                            "the answer the check compares with. Write the four steps with the block's layers: "
                            "block.upsample, a crop or pad with match_size, torch.cat, block.convs.")


up_block = UpBlockQuestion(
    NOTEBOOK, "up_block", "The U-Net up-block: upsample, crop or pad, concatenate, double conv", points=2,
    reference=reference_up_block, cases=_up_cases, compare=_compare_up,
    hints=["Four steps: up = block.upsample(x); make skip and up the same size; torch.cat on dim=1; block.convs.",
           "medseg_course.models.match_size(t, size) centre-crops or centre-pads t's spatial axes to size. With "
           "block.crop_skip (valid padding) the skip is cropped to up.shape[2:]; otherwise up is padded to "
           "skip.shape[2:].",
           "The skip comes first in the concatenation: torch.cat([skip, up], dim=1)."],
    solution_code='''
    def my_up_block(block, x, skip):
        up = block.upsample(x)                               # (B, C_up, 2h, 2w)
        if block.crop_skip:
            skip = match_size(skip, up.shape[2:])            # valid: centre-crop the skip
        else:
            up = match_size(up, skip.shape[2:])              # same: pad an odd-sized level
        return block.convs(torch.cat([skip, up], dim=1))     # (B, C_out, ...)
    ''',
)


# -- 2. the border term of the weight map -------------------------------------------------------------

def reference_border_weights(instances, w0: float = 10.0, sigma: float = 5.0) -> np.ndarray:
    """``w0 * exp(-(d1 + d2)**2 / (2 sigma**2))`` on background pixels, 0 on nuclei.

    Introduced in 08_unet.

    Parameters
    ----------
    instances : (H, W) int ndarray
        0 = background, ``1..N`` = nuclei.
    w0, sigma : float

    Returns
    -------
    (H, W) float ndarray
        ``d1``, ``d2``: distances from each pixel to the nearest and second-nearest nucleus; 0
        everywhere if there are fewer than two nuclei.

    Examples
    --------
    >>> round(float(reference_border_weights(np.array([[1, 0, 2]]), w0=10, sigma=1)[0, 1]), 4)
    1.3534
    """
    return border_term(instances, w0=w0, sigma=sigma, cutoff=1e3)


def _squares(shape, boxes):
    inst = np.zeros(shape, np.int64)
    for k, (y0, y1, x0, x1) in enumerate(boxes, start=1):
        inst[y0:y1, x0:x1] = k
    return inst


def _weight_cases(device):
    yield Case((_squares((3, 7), [(0, 3, 0, 2), (0, 3, 5, 7)]),), dict(w0=10.0, sigma=2.0),
               label="two bars with a gap of 3 pixels")
    yield Case((_squares((20, 24), [(4, 14, 2, 9), (4, 14, 10, 17), (15, 19, 5, 20)]),), dict(w0=10.0, sigma=5.0),
               label="three touching nuclei")
    rng = np.random.default_rng(3)
    from scipy import ndimage
    inst, _ = ndimage.label(ndimage.gaussian_filter(rng.random((30, 34)), 1.5) > 0.53)
    yield Case((inst,), dict(w0=5.0, sigma=3.0), label="random blobs")
    yield Case((_squares((10, 12), [(2, 6, 2, 6)]),), dict(w0=10.0, sigma=5.0), label="a single nucleus")


def _compare_weights(got, expected, case):
    (inst,) = case.args
    w0, sigma = case.kwargs["w0"], case.kwargs["sigma"]
    g = got.detach().cpu().numpy() if isinstance(got, torch.Tensor) else got
    if not isinstance(g, np.ndarray):
        raise Incorrect(f"Your function should return an array of the image's shape, but it returned {describe(got)}.")
    if g.shape != inst.shape:
        raise Incorrect(f"Your weights have shape {g.shape}; one weight per pixel, shape {inst.shape}, was expected.")
    if not np.all(np.isfinite(g)):
        raise Incorrect("Your weights contain NaN or infinite values. With fewer than two nuclei there is no "
                        "second distance: the term is 0 everywhere.")
    g = g.astype(np.float64)
    if np.allclose(g, expected, rtol=1e-4, atol=1e-5):
        return
    from scipy import ndimage
    labels = [k for k in np.unique(inst) if k > 0]
    if len(labels) >= 2:
        d = np.sort(np.stack([ndimage.distance_transform_edt(inst != k) for k in labels]), axis=0)
        d1, d2 = d[0], d[1]
        bg = inst == 0
        alts = [
            (w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2)),
             "Your weights are not zero on the nuclei. The border term is for the background pixels only "
             "(the thin gaps between nuclei); set it to 0 where instances > 0."),
            (np.where(bg, w0 * np.exp(-((2 * d1) ** 2) / (2 * sigma**2)), 0),
             "You used twice the distance to the nearest nucleus. d2 is the distance to the SECOND-nearest "
             "nucleus: sort the per-nucleus distances at each pixel and take the first two."),
            (np.where(bg, w0 * np.exp(-((d1 + d2) ** 2) / sigma**2), 0),
             "The denominator is 2 sigma**2, not sigma**2."),
            (np.where(bg, w0 * np.exp(-(d1 + d2) / (2 * sigma**2)), 0),
             "Square the sum of the distances: exp(-(d1 + d2)**2 / (2 sigma**2))."),
            (np.where(bg, w0 * np.exp(-(d1**2 + d2**2) / (2 * sigma**2)), 0),
             "Square the SUM of the two distances, (d1 + d2)**2, not each distance."),
        ]
        for alt, msg in alts:
            if np.allclose(g, alt, rtol=1e-4, atol=1e-5):
                raise Incorrect(msg)
        if np.allclose(g - expected, g.flat[0] - expected.flat[0], atol=1e-5) and abs(g.flat[0] - expected.flat[0]) > 1e-3:
            raise Incorrect("Your weights are shifted by a constant: return the border term alone (the class "
                            "weights w_c are added afterwards, by unet_weight_map).")
    elif np.any(g):
        raise Incorrect("With fewer than two nuclei there are no gaps between nuclei to weigh: the border term "
                        "is 0 everywhere.")
    raise Incorrect(f"Your weights have the right shape but wrong values (largest error "
                    f"{np.abs(g - expected).max():.3g}). For each nucleus k, distance_transform_edt(instances != k) "
                    "is the distance of every pixel to k; at each pixel take the two smallest, d1 <= d2.")


border_weights = FunctionQuestion(
    NOTEBOOK, "border_weights", "The border term of the U-Net weight map", points=2,
    reference=reference_border_weights, cases=_weight_cases, compare=_compare_weights,
    hints=["For every nucleus k, scipy.ndimage.distance_transform_edt(instances != k) gives each pixel's distance "
           "to the nearest pixel of nucleus k.",
           "Stack those maps (one per nucleus) and sort along the stack axis: the first two rows are d1 and d2 at "
           "every pixel. With fewer than two nuclei, return zeros.",
           "w = w0 * np.exp(-(d1 + d2) ** 2 / (2 * sigma ** 2)); return np.where(instances == 0, w, 0.0)"],
    solution_code='''
    def my_border_weights(instances, w0=10.0, sigma=5.0):
        labels = [k for k in np.unique(instances) if k > 0]
        if len(labels) < 2:
            return np.zeros(instances.shape)
        d = np.sort(np.stack([ndimage.distance_transform_edt(instances != k) for k in labels]), axis=0)
        w = w0 * np.exp(-(d[0] + d[1]) ** 2 / (2 * sigma ** 2))
        return np.where(instances == 0, w, 0.0)
    ''',
)


# -- 3. a trained U-Net, scored on held-out images --------------------------------------------------------

#: The held-out images: the DSB2018 test split, which the notebook never loads.
HELD_OUT_SPLIT = "test"
#: Mean per-image Dice a trained model must reach on them.
MODEL_GOAL = 0.80


@functools.lru_cache(maxsize=1)
def _held_out():
    from medseg_course.recipes.nuclei import nuclei_inputs

    return tuple(nuclei_inputs(HELD_OUT_SPLIT)[1])


def held_out_dice(model: nn.Module, device=None) -> float:
    """Mean per-image Dice of ``model`` on the held-out DSB2018 images (one pass, no test-time augmentation).

    Introduced in 08_unet.

    Parameters
    ----------
    model : nn.Module
        Takes ``(B, 1, H, W)`` ``nuclei_bright`` images and returns logits ``(B, K, H, W)``: one
        binary channel, or K classes with the nuclei as class 1 and up.
    device : torch.device or str, optional
        The model's own device by default.

    Returns
    -------
    float
    """
    from medseg_course import metrics
    from medseg_course.train import predict

    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else "cpu"
    return float(np.mean([metrics.dice(predict(model, image, device=device, output="labels") > 0, truth > 0)
                          for image, truth in _held_out()]))


#: Epochs of the reference answer: the recipe's fast budget, or a short full one (about 3 minutes of CPU).
REFERENCE_EPOCHS = {"fast": None, "full": 6}


def train_reference_unet(epochs: int | None = None, *, device=None, progress: bool = False) -> nn.Module:
    """The reference answer of :data:`train_unet`: the course's recipe, on a short budget.

    Introduced in 08_unet.

    Parameters
    ----------
    epochs : int, optional
        By default :data:`REFERENCE_EPOCHS` for the runtime's budget: ``MEDSEG_FAST=1`` trains
        :data:`~medseg_course.recipes.nuclei.FAST_RECIPE` for its ``fast_epochs``; the full budget
        trains :class:`~medseg_course.recipes.nuclei.NucleiRecipe` for 6 epochs (the notebook trains the
        recipe for its full length itself, in section 7).
    device : torch.device or str, optional
        :func:`~medseg_course.runtime.choose_device` by default.
    progress : bool, default False

    Returns
    -------
    nn.Module
        A trained :class:`~medseg_course.models.UNet`, eval mode.
    """
    from medseg_course.recipes.nuclei import FAST_RECIPE, NucleiRecipe, nuclei_inputs, train_nuclei_unet
    from medseg_course.runtime import Runtime, choose_device, fast_mode

    fast = fast_mode()
    recipe = FAST_RECIPE if fast else NucleiRecipe()
    if epochs is None:
        epochs = REFERENCE_EPOCHS["fast" if fast else "full"] or recipe.fast_epochs
    device = choose_device() if device is None else torch.device(device)
    rt = Runtime(device=device, seed=0, fast=fast, environment="local")
    _, val = nuclei_inputs("val", n=6)
    model, _ = train_nuclei_unet(rt=rt, recipe=recipe, epochs=epochs, val=val, progress=progress)
    return model


train_unet = ModelQuestion(
    NOTEBOOK, "train_unet", f"Train a U-Net that reaches Dice {MODEL_GOAL} on held-out images", points=3,
    reference=train_reference_unet, evaluate=held_out_dice, threshold=MODEL_GOAL, metric="mean Dice",
    hints_below=("Look at the learning curves: if the validation Dice still rises, train longer; if it jumps "
                 "around, lower the learning rate. Group normalisation, a Dice + cross-entropy loss and crops "
                 "centred on nuclei half of the time are what made short runs work in this notebook."),
    hints=["train_nuclei_unet(rt=rt) trains the course's recipe; pass recipe=dataclasses.replace(NucleiRecipe(), "
           "...) to change a setting, or your own model=UNet(...).",
           "Keep rt.budget(full=..., fast=...) for the number of epochs, so that the grader's fast run stays short.",
           "The check runs your model once per image (no flips, no postprocessing): it must return one logit "
           "channel (or class scores) of the input's size."],
    solution_code='''
    my_unet = UNet(in_channels=1, out_channels=1, features=RECIPE.features, norm="group")
    my_unet, my_history = train_nuclei_unet(my_unet, rt, recipe=RECIPE,
                                            epochs=rt.budget(full=8, fast=RECIPE.fast_epochs))
    ''',
)

QUESTIONS: list[Question] = [up_block, border_weights, train_unet]


def summary():
    """Show this notebook's progress table. Introduced in 08_unet."""
    return _summary(QUESTIONS)


__all__ = ["QUESTIONS", "summary", "up_block", "border_weights", "train_unet", "reference_up_block",
           "reference_border_weights", "up_block_net", "held_out_dice", "train_reference_unet", "UP_CASES",
           "MODEL_GOAL", "HELD_OUT_SPLIT", "REFERENCE_EPOCHS"]
