"""The 2D nuclei recipe: settings validated, loaders shaped and seeded, test-time augmentation
exact, postprocessing by hand, and a tiny end-to-end run on DSB2018."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn as nn

from medseg_course.recipes import nuclei as R
from medseg_course.runtime import Runtime


def _pairs(n=3, size=(48, 56), seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        yy, xx = np.indices(size)
        mask = np.zeros(size, np.int64)
        inst = np.zeros(size, np.int64)
        for k in range(1, 5):
            cy, cx = rng.integers(8, size[0] - 8), rng.integers(8, size[1] - 8)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 25
            mask[disc], inst[disc] = 1, k
        image = (mask * 0.7 + rng.random(size) * 0.2).astype(np.float32)[None]
        out.append((image, mask, inst))
    return out


def test_recipe_is_frozen_and_validated():
    r = R.NucleiRecipe()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lr = 1.0
    assert dataclasses.replace(r, features=[8, 16]).features == (8, 16)
    with pytest.raises(ValueError, match="loss must be one of"):
        R.NucleiRecipe(loss="focal")
    with pytest.raises(ValueError, match="elastic is a probability"):
        R.NucleiRecipe(elastic=2)
    with pytest.raises(ValueError, match="patch_size must be a positive int"):
        R.NucleiRecipe(patch_size=0)
    assert R.NucleiRecipe().to_dict()["loss"] == "dice_ce"


@pytest.mark.parametrize("loss, cls", [("ce", "CrossEntropyLoss"), ("dice", "DiceLoss"), ("dice_ce", "DiceCELoss")])
def test_make_loss(loss, cls):
    assert type(R.make_loss(R.NucleiRecipe(loss=loss))).__name__ == cls


def test_train_loader_shapes_weights_and_seed():
    data = _pairs()
    pairs = [(im, m) for im, m, _ in data]
    recipe = R.NucleiRecipe(patch_size=32, margin=4, batch_size=2, patches_per_image=2, border_weights=True)
    loader = R.make_train_loader(pairs, recipe, instances=[i for _, _, i in data])
    torch.manual_seed(0)
    a = next(iter(loader))
    torch.manual_seed(0)
    b = next(iter(R.make_train_loader(pairs, recipe, instances=[i for _, _, i in data])))
    assert [tuple(t.shape) for t in a] == [(2, 1, 32, 32), (2, 32, 32), (2, 32, 32)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a[2].min() > 0 and len(loader) == 3  # 6 crops, batches of 2
    with pytest.raises(ValueError, match="needs the instance maps"):
        R.make_train_loader(pairs, recipe)


def test_tta_of_an_equivariant_model_equals_one_pass():
    """A pointwise model commutes with flips and rotations: the 8-fold average is the plain prediction."""
    model = nn.Conv2d(1, 1, 1)
    image = np.random.default_rng(0).random((1, 20, 28)).astype(np.float32)
    plain = R.predict_nuclei(model, image, tta=False)
    both = R.predict_nuclei(model, image, tta=True)
    assert plain.shape == (20, 28)
    np.testing.assert_allclose(both, plain, atol=1e-6)
    with torch.no_grad():
        np.testing.assert_allclose(plain, torch.sigmoid(model(torch.from_numpy(image)[None]))[0, 0].numpy(), atol=1e-6)


def test_tta_undoes_each_transform():
    """A model that looks at its left neighbour is not equivariant: TTA averages 8 different maps, each
    put back on the image's grid (so a symmetric image gives a symmetric result)."""
    model = nn.Conv2d(1, 1, (1, 3), padding=(0, 1), bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[[[4.0, 0.0, 0.0]]]]))
    image = np.zeros((1, 9, 9), np.float32)
    image[0, 4, 4] = 1.0
    prob = R.predict_nuclei(model, image, tta=True)
    # the 8 transforms move the response to the 4 neighbours of the bright pixel, 2 maps each
    expected = np.full((9, 9), 0.5)
    for y, x in [(4, 5), (4, 3), (5, 4), (3, 4)]:
        expected[y, x] = (2 * torch.sigmoid(torch.tensor(4.0)).item() + 6 * 0.5) / 8
    np.testing.assert_allclose(prob, expected, atol=1e-6)


def test_postprocess_by_hand():
    m = np.zeros((10, 10), bool)
    m[1:6, 1:6] = True
    m[3, 3] = False          # a hole
    m[8, 8] = m[8, 9] = True  # a 2-pixel object
    out = R.postprocess(m, min_size=3)
    assert out[3, 3] and not out[8, 8] and out.sum() == 25
    out = R.postprocess(m, min_size=0, fill_holes=False)
    assert np.array_equal(out, m)
    with pytest.raises(ValueError, match="min_size must be a non-negative int"):
        R.postprocess(m, min_size=-1)
    with pytest.raises(ValueError, match=r"mask must be \(H, W\)"):
        R.postprocess(np.zeros((2, 2, 2)))


def test_tiny_training_and_evaluation_on_synthetic_pairs():
    data = _pairs(4)
    pairs = [(im, m) for im, m, _ in data]
    recipe = R.NucleiRecipe(features=(4, 8), patch_size=32, margin=4, patches_per_image=2, batch_size=4,
                            fast_epochs=2)
    rt = Runtime(device=torch.device("cpu"), seed=0, fast=True, environment="ci")
    model, history = R.train_nuclei_unet(rt=rt, recipe=recipe, train=pairs, val=pairs[:2], progress=False)
    assert len(history["val_dice"]) == 2 and not model.training
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_evaluate_on_dsb2018_scores_per_category(monkeypatch):
    pytest.importorskip("medseg_course.data")
    try:
        samples, pairs = R.nuclei_inputs("val", n=3)
    except Exception as err:  # no local copy of DSB2018
        pytest.skip(f"DSB2018 not available: {err}")
    assert pairs[0][0].ndim == 3 and pairs[0][0].shape[0] == 1 and set(np.unique(pairs[0][1])) <= {0, 1}

    class Oracle(nn.Module):  # returns the true mask of the image it is given, as logits
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            for image, mask in pairs:
                for k in range(4):
                    for flip in (False, True):
                        t = torch.from_numpy(image)[None]
                        t = torch.rot90(t.flip(-1) if flip else t, k, dims=(-2, -1))
                        if t.shape == x.shape and torch.equal(t, x):
                            m = torch.from_numpy(mask.astype(np.float32))[None, None]
                            return torch.rot90(m.flip(-1) if flip else m, k, dims=(-2, -1)) * 20 - 10
            raise AssertionError("unknown image")

    scores = R.evaluate_nuclei(Oracle(), (samples, pairs), tta=True, fill_holes=False, keep_masks=True)
    assert np.allclose(scores.dice, 1.0) and len(scores.masks) == 3
    table = scores.by_category()
    assert table["all"] == (3, 1.0) and "category" in scores.table()
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        R.evaluate_nuclei("model", (samples, pairs))


def test_instance_f1_counts_separated_nuclei():
    inst = np.zeros((10, 20), np.int64)
    inst[2:8, 2:8] = 1
    inst[2:8, 8:14] = 2            # touches nucleus 1
    inst[2:5, 16:19] = 3
    merged = inst > 0               # 1 and 2 as one blob: only nucleus 3 is found
    assert R.instance_f1(merged, inst) == (2 * 1 / (2 + 3), 1, 2, 3)
    split = merged.copy()
    split[:, 8] = False             # a one-pixel gap: all three found (IoU of 1 and 2 with their part > 0.5)
    f1, tp, n_pred, n_true = R.instance_f1(split, inst)
    assert (tp, n_pred, n_true) == (3, 3, 3) and f1 == 1.0
    assert R.instance_f1(np.zeros_like(merged), np.zeros_like(inst))[0] == 1.0
    assert R.instance_f1(np.zeros_like(merged), inst)[:2] == (0.0, 0)
    with pytest.raises(ValueError, match="iou must be in"):
        R.instance_f1(merged, inst, iou=1.0)
    with pytest.raises(ValueError, match="one shape"):
        R.instance_f1(merged[:5], inst)


def test_dice_by_offset_finds_the_outline_offset():
    yy, xx = np.indices((40, 40))
    diamond = lambda r: np.abs(yy - 20) + np.abs(xx - 20) <= r    # what 4-connected dilations grow
    truth = diamond(10)
    for drawn in (7, 8, 10, 12):                  # a prediction 3 px tight ... 2 px wide
        scores = R.dice_by_offset(diamond(drawn), truth, max_offset=3)
        assert scores.shape == (7,)
        assert scores[3] == pytest.approx(2 * diamond(min(drawn, 10)).sum() / (diamond(drawn).sum() + truth.sum()))
        assert int(np.argmax(scores)) - 3 == 10 - drawn and scores.max() == 1.0
    assert R.dice_by_offset(truth, truth, max_offset=0).tolist() == [1.0]
    with pytest.raises(ValueError, match="one shape"):
        R.dice_by_offset(truth[:5], truth)
    with pytest.raises(ValueError, match="max_offset must be a non-negative int"):
        R.dice_by_offset(truth, truth, max_offset=-1)


def test_crop_repeats_follow_nucleus_pixels():
    masks = [np.zeros((10, 10))] * 3 + [np.ones((10, 10))]
    masks[1] = masks[1].copy(); masks[1][:5] = 1     # 50 nucleus pixels (the median of 0, 50, 50, 100)
    masks[2] = masks[1]
    assert R.crop_repeats([(None, m) for m in masks], 4) == [1, 1, 1, 2]
    assert R.crop_repeats([(None, m) for m in masks], 1) == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="max_repeats must be a positive int"):
        R.crop_repeats([(None, m) for m in masks], 0)
    pairs = [(np.zeros((1, 40, 40), np.float32), m.astype(np.int64)) for m in [np.pad(x, 15) for x in masks]]
    loader = R.make_train_loader(pairs, R.NucleiRecipe(patch_size=16, elastic=0.0, batch_size=1, max_repeats=4))
    assert len(loader) == 5 * 4  # 5 image entries (one doubled) x patches_per_image


def test_binary_int64_shares_a_binary_mask_and_converts_any_other():
    binary = np.array([[0, 1], [1, 0]], dtype=np.int64)
    assert R._binary_int64(binary) is binary
    for mask in (np.array([[0, 255], [255, 0]], dtype=np.uint8), np.array([[0, 3], [2, 0]], dtype=np.int64),
                 np.array([[0, 1], [1, 0]], dtype=np.int32), np.array([[-1, 1], [1, 0]], dtype=np.int64)):
        out = R._binary_int64(mask)
        assert out is not mask and out.dtype == np.int64
        np.testing.assert_array_equal(out, (mask > 0).astype(np.int64))
