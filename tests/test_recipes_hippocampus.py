"""The 3D Hippocampus recipe: settings validated, training items boxed and flipped along the safe axis
only, inference (sliding window, test-time flips, slice-wise 2D) exact, postprocessing by hand,
evaluation scored against an oracle, training seeded and budgeted, and the orientation claim checked
on the real data."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn as nn

from medseg_course.data import sparse
from medseg_course.recipes import hippocampus as H
from medseg_course.train import predict


def _volumes(n=4, shape=(14, 18, 12), seed=0):
    """Small volumes with an 'anterior' blob (1) at larger H than a 'posterior' blob (2); image = labels + noise."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        mask = np.zeros(shape, np.int64)
        c = rng.integers(4, np.array(shape) - 4)
        mask[c[0] - 2:c[0] + 2, c[1]:c[1] + 3, c[2] - 2:c[2] + 2] = 1
        mask[c[0] - 2:c[0] + 2, c[1] - 3:c[1], c[2] - 2:c[2] + 2] = 2
        image = (mask + 0.1 * rng.normal(size=shape)).astype(np.float32)[None]
        out.append((image, mask))
    return out


class Oracle(nn.Module):
    """Reads the labels back from an image that encodes them (image = label): logits of the right class."""

    def __init__(self, spatial_dims=3):
        super().__init__()
        self.spatial_dims = spatial_dims
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, x):
        labels = x[:, 0].round().clamp(0, 2).long()
        return torch.nn.functional.one_hot(labels, 3).movedim(-1, 1).float() * self.scale


def test_recipe_is_frozen_and_validated():
    r = H.HippocampusRecipe()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.lr = 1.0
    assert r.flip_axes == (H.LEFT_RIGHT_AXIS,) and r.box == H.BOX
    assert dataclasses.replace(r, features=[8, 16]).features == (8, 16)
    with pytest.raises(ValueError, match="flip_axes are axes of"):
        H.HippocampusRecipe(flip_axes=(3,))
    with pytest.raises(ValueError, match="flip_axes may hold 1 and 2 only"):
        H.HippocampusRecipe(spatial_dims=2, flip_axes=(0,))
    with pytest.raises(ValueError, match="minutes must be a positive number"):
        H.HippocampusRecipe(minutes=0)
    with pytest.raises(ValueError, match="box must be a sequence of 3 ints"):
        H.HippocampusRecipe(box=(40, 56))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        H.HippocampusRecipe(optimizer="lion")
    assert H.HippocampusRecipe(minutes=15).to_dict()["minutes"] == 15


def test_training_items_fill_the_box_and_flip_left_right_only():
    image = np.arange(16 * 20 * 12, dtype=np.float32).reshape(1, 16, 20, 12)
    mask = np.zeros((16, 20, 12), np.int64)
    r = H.HippocampusRecipe(box=(16, 20, 12), shift=0, intensity=0.0)
    ds = H.training_set([(image, mask)], r)
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        x, m = ds[0]
        assert tuple(x.shape) == (1, 16, 20, 12) and tuple(m.shape) == (16, 20, 12) and m.dtype == torch.int64
        if torch.equal(x, torch.from_numpy(image)):
            seen.add("as is")
        elif torch.equal(x, torch.from_numpy(image).flip(-1)):
            seen.add("W flipped")
        else:
            raise AssertionError("an item was changed other than by a left-right flip")
    assert seen == {"as is", "W flipped"}


def test_training_items_pad_small_volumes_and_shift_them():
    vols = [(np.ones((1, 10, 12, 8), np.float32), np.full((10, 12, 8), 2))]
    r = H.HippocampusRecipe(box=(16, 16, 16), shift=3, intensity=0.0, flip_axes=())
    ds = H.training_set(vols, r, mask_pad_value=-1)
    torch.manual_seed(1)
    corners = set()
    for _ in range(20):
        x, m = ds[0]
        assert set(torch.unique(m).tolist()) == {-1, 2}  # the padding carries the given label
        assert torch.equal(x[0] > 0, m == 2)
        corners.add(tuple(torch.nonzero(m == 2).min(0).values.tolist()))
    assert len(corners) > 5  # random translations along every axis
    assert {c[0] for c in corners} <= set(range(0, 7)) and len({c[2] for c in corners}) > 1


def test_intensity_augmentation_is_an_affine_change():
    image = np.random.default_rng(0).normal(size=(1, 8, 8, 8)).astype(np.float32)
    r = H.HippocampusRecipe(box=(8, 8, 8), shift=0, intensity=0.2, flip_axes=())
    x, _ = H.training_set([(image, np.zeros((8, 8, 8), int))], r)[0]
    a, b = np.polyfit(image.ravel(), x.numpy().ravel(), 1)
    assert 0.8 <= a <= 1.2 and -0.2 <= b <= 0.2 and not np.allclose(x.numpy(), image)
    assert np.allclose(x.numpy(), a * image + b, atol=1e-5)


def test_slices_and_2d_training_items():
    vols = _volumes(2, shape=(10, 18, 12))
    pairs = H.slices(vols)
    assert len(pairs) == 20 and pairs[0][0].shape == (1, 18, 12)
    assert np.array_equal(pairs[12][1], vols[1][1][2])
    r = H.HippocampusRecipe(spatial_dims=2, box=(8, 24, 16))
    x, m = H.training_set(vols, r)[3]
    assert tuple(x.shape) == (1, 24, 16) and tuple(m.shape) == (24, 16)


def test_largest_component_by_hand():
    labels = np.zeros((5, 6, 6), np.int64)
    labels[0:2, 0:2, 0:2] = 1          # 8 voxels
    labels[4, 5, 5] = 1                 # a stray voxel
    labels[3:5, 3:5, 0:2] = 2           # 8 voxels
    labels[0, 5, 0] = 2
    labels[2, 2, 2] = 1                 # touches the first block by a corner: 26-connected
    out = H.largest_component(labels)
    expected = labels.copy()
    expected[4, 5, 5] = 0
    expected[0, 5, 0] = 0
    assert np.array_equal(out, expected)
    assert out is not labels
    with pytest.raises(TypeError, match="integer label map"):
        H.largest_component(labels.astype(float))


def test_predict_volume_tta_averages_the_flipped_predictions():
    torch.manual_seed(0)
    model = nn.Conv3d(1, 3, 3, padding=1)
    image = np.random.default_rng(0).normal(size=(1, 10, 12, 9)).astype(np.float32)
    plain = predict(model, image, device="cpu")
    flipped = predict(model, image[..., ::-1].copy(), device="cpu")[..., ::-1]
    got = H.predict_volume(model, image, box=(16, 16, 16), device="cpu")
    assert np.allclose(got, (plain + flipped) / 2, atol=1e-6)
    assert np.allclose(H.predict_volume(model, image, tta=False, device="cpu"), plain, atol=1e-6)
    assert not np.allclose(plain, flipped, atol=1e-3)  # the flip matters for this model


def test_predict_volume_uses_windows_for_large_volumes():
    torch.manual_seed(0)
    model = nn.Conv3d(1, 3, 3, padding=1)
    image = np.random.default_rng(1).normal(size=(1, 20, 22, 18)).astype(np.float32)
    got = H.predict_volume(model, image, box=(8, 8, 8), tta=False, device="cpu")
    windowed = predict(model, image, device="cpu", patch_size=(8, 8, 8), overlap=0.5)
    whole = predict(model, image, device="cpu")
    assert got.shape == (3, 20, 22, 18)
    assert np.allclose(got, windowed, atol=1e-6) and not np.allclose(got, whole, atol=1e-4)


def test_predict_volume_runs_2d_models_slice_by_slice():
    torch.manual_seed(0)
    model = nn.Conv2d(1, 3, 3, padding=1)
    model.spatial_dims = 2
    image = np.random.default_rng(2).normal(size=(1, 4, 10, 8)).astype(np.float32)
    got = H.predict_volume(model, image, tta=False, device="cpu")
    by_hand = np.stack([predict(model, image[:, d], device="cpu") for d in range(4)], axis=1)
    assert np.allclose(got, by_hand, atol=1e-6)


def test_evaluate_scores_an_oracle_and_an_empty_model():
    vols = _volumes(3)
    oracle = H.evaluate_hippocampus(Oracle(), samples=vols)
    assert oracle.dice.shape == (3, 2) and oracle.mean == 1.0 and oracle.case_ids == ("0", "1", "2")
    assert "mean 1.0000" in str(oracle)
    empty = nn.Conv3d(1, 3, 1)
    with torch.no_grad():
        empty.weight.zero_(); empty.bias.copy_(torch.tensor([5.0, 0.0, 0.0]))
    scores = H.evaluate_hippocampus(empty, samples=vols, tta=False)
    assert scores.anterior == 0.0 and scores.posterior == 0.0
    assert H.evaluate_hippocampus(Oracle(spatial_dims=2), samples=vols).mean == 1.0


def test_training_is_seeded_and_decays_the_learning_rate():
    vols = _volumes(2, shape=(10, 14, 10))
    r = H.HippocampusRecipe(features=(2, 4), box=(8, 16, 8), epochs=3, batch_size=1, shift=1)
    m1, h1 = H.train_hippocampus(r, vols, vols[:2], device="cpu", progress=False)
    m2, h2 = H.train_hippocampus(r, vols, device="cpu", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert h1["epoch"] == [1.0, 2.0, 3.0] and h1["train_loss"] == h2["train_loss"]
    assert {"val_dice", "val_dice_1", "val_dice_2"} <= set(h1)
    assert h1.lr[0] == r.lr and h1.lr[1] < r.lr and h1.lr[2] < h1.lr[1]
    assert not m1.training


def test_training_with_a_minute_budget_stops_in_time():
    vols = _volumes(2, shape=(10, 14, 10))
    r = H.HippocampusRecipe(features=(2, 4), box=(8, 16, 8), minutes=0.01, batch_size=1)
    _, h = H.train_hippocampus(r, vols, device="cpu", progress=False)
    assert 0.6 <= sum(h.seconds) < 10  # 0.6 s of training, then it stops (at the next step, mid-epoch)


def test_training_on_sparse_masks_leaves_the_padding_unannotated():
    vols = [(np.ones((1, 10, 12, 8), np.float32), np.ones((10, 12, 8), np.int64)) for _ in range(2)]
    pairs = sparse.sparsify_samples(vols, 0.3)
    r = H.HippocampusRecipe(features=(4, 8), box=(16, 16, 16), epochs=1, batch_size=2)
    seen = []

    def loss_fn(logits, target):
        seen.append(target)
        return H.make_loss(r, ignore_index=-1)(logits, target)

    H.train_hippocampus(r, pairs, loss_fn=loss_fn, ignore_index=-1, device="cpu", progress=False)
    assert set(torch.unique(seen[0]).tolist()) == {-1, 1}  # no background: the padding is not annotated


@pytest.fixture(scope="module")
def hippocampus_train():
    from medseg_course.data import load_dataset
    from medseg_course.data.errors import DatasetNotFoundError

    try:
        return list(load_dataset("msd-hippocampus", "train", download=False, progress=False))
    except DatasetNotFoundError:
        pytest.skip("MSD Hippocampus is not in the data cache (set MEDSEG_DATA_DIR)")


def test_left_right_axis_is_the_only_label_safe_flip(hippocampus_train):
    """In every training volume the anterior centroid lies at larger H and smaller D than the posterior one;
    along W (the left-right axis) the two hardly differ."""
    offsets = np.array([np.argwhere(s.mask == 1).mean(0) - np.argwhere(s.mask == 2).mean(0)
                        for s in hippocampus_train])
    assert np.all(offsets[:, 1] > 5) and np.all(offsets[:, 0] < 0)
    assert abs(offsets[:, H.LEFT_RIGHT_AXIS].mean()) < 3
    assert max(s.mask.shape[0] for s in hippocampus_train) <= H.BOX[0] + 2 * H.HippocampusRecipe().shift + 1
