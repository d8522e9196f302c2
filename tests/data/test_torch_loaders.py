"""Tests for medseg_course.data.loaders: shapes (2D, 3D, small images), patch contents,
centre-pixel labels, augmentation exactness, and seeded determinism with and without workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medseg_course.data.datasets import Sample
from medseg_course.data.loaders import (
    CentrePixelDataset,
    ImageDataset,
    PatchDataset,
    make_loader,
    random_flip_rot90,
)
from medseg_course.data.synthetic import make_dataset


@pytest.fixture(scope="module")
def nuclei():
    return make_dataset(3, "nuclei2d", shape=(40, 56), n_objects=4, radius=4.0, seed=0)


def _coded(shape, channels=1):
    """An image whose values encode their position, and a mask equal to it modulo 3."""
    n = int(np.prod(shape))
    image = np.arange(channels * n, dtype=np.float32).reshape(channels, *shape)
    return image, (np.arange(n).reshape(shape) % 3).astype(np.int64)


# (samples builder, patch size, expected image shape, expected mask shape)
PATCH_CASES = [
    (lambda: [_coded((20, 30))], 16, (1, 16, 16), (16, 16)),
    (lambda: [_coded((20, 30), channels=3)], (8, 12), (3, 8, 12), (8, 12)),
    (lambda: [_coded((5, 7))], 16, (1, 16, 16), (16, 16)),  # smaller than the patch: padded
    (lambda: [_coded((6, 10, 12))], (4, 8, 8), (1, 4, 8, 8), (4, 8, 8)),
    (lambda: [_coded((3, 4, 5))], 6, (1, 6, 6, 6), (6, 6, 6)),
]


@pytest.mark.parametrize("build, patch, image_shape, mask_shape", PATCH_CASES)
def test_patch_dataset_shapes(build, patch, image_shape, mask_shape):
    ds = PatchDataset(build(), patch, patches_per_image=2, augment=True)
    image, mask = ds[1]
    assert image.shape == image_shape and image.dtype == torch.float32
    assert mask.shape == mask_shape and mask.dtype == torch.int64
    assert len(ds) == 2


def test_patches_are_true_crops_with_the_mask_aligned():
    image, mask = _coded((20, 30))
    ds = PatchDataset([(image, mask)], (6, 9), patches_per_image=20)
    for i in range(len(ds)):
        patch, m = ds[i]
        flat = int(patch[0, 0, 0])
        y, x = divmod(flat, 30)
        assert torch.equal(patch[0], torch.from_numpy(image[0, y:y + 6, x:x + 9]))
        assert torch.equal(m, torch.from_numpy(mask[y:y + 6, x:x + 9]))


def test_small_images_are_padded_with_the_given_values():
    ds = PatchDataset([(np.ones((1, 4, 4), np.float32), np.ones((4, 4), np.int64))], 8,
                      pad_value=-1.0, mask_pad_value=255)
    image, mask = ds[0]
    assert image[0, 2:6, 2:6].eq(1).all() and image.eq(-1).sum() == 64 - 16
    assert mask[2:6, 2:6].eq(1).all() and mask.eq(255).sum() == 64 - 16


def test_foreground_oversampling_centres_on_foreground():
    mask = np.zeros((64, 64), np.int64)
    mask[50:53, 5:8] = 1
    ds = PatchDataset([(np.zeros((64, 64), np.float32), mask)], 16, patches_per_image=30,
                      foreground_fraction=1.0, seed=0)
    assert all(ds[i][1].sum() > 0 for i in range(len(ds)))


def test_weight_maps_follow_the_crop_and_augmentation():
    image, mask = _coded((12, 12))
    weight = image[0] * 2
    ds = PatchDataset([(image, mask)], 8, weight_maps=[weight], augment=True, patches_per_image=10)
    for i in range(len(ds)):
        img, m, w = ds[i]
        assert torch.equal(w, img[0] * 2)
        assert torch.equal(m, (img[0].long() % 3))


def test_seeded_patch_dataset_is_fixed():
    image, mask = _coded((30, 30))
    a = PatchDataset([(image, mask)], 8, patches_per_image=5, seed=3)
    b = PatchDataset([(image, mask)], 8, patches_per_image=5, seed=3)
    torch.manual_seed(0)
    first = [a[i][0] for i in range(5)]
    torch.manual_seed(99)
    assert all(torch.equal(x, a[i][0]) and torch.equal(x, b[i][0]) for i, x in enumerate(first))


def test_image_dataset_accepts_samples_of_every_kind(nuclei):
    real = Sample(np.zeros((3, 9, 11), np.float32), np.zeros((9, 11), np.int64), "x")
    assert [tuple(t.shape) for t in ImageDataset([real])[0]] == [(3, 9, 11), (9, 11)]
    image, mask = ImageDataset(nuclei)[2]
    assert image.shape == (1, 40, 56) and torch.equal(mask, torch.from_numpy(nuclei[2].mask))


def test_centre_pixel_dataset_labels_the_centre(nuclei):
    ds = CentrePixelDataset(nuclei, 13, length=200, seed=0)
    for i in range(0, 200, 7):
        patch, label = ds[i]
        k, flat = ds._fixed[i]
        y, x = divmod(flat, 56)
        assert patch.shape == (1, 13, 13) and label.ndim == 0
        assert label == nuclei[k].mask[y, x]
        assert patch[0, 6, 6] == pytest.approx(float(nuclei[k].image[y, x]))


def test_centre_pixel_dataset_balances_classes(nuclei):
    balanced = CentrePixelDataset(nuclei, 9, length=400, seed=1)
    labels = torch.stack([balanced[i][1] for i in range(400)])
    assert 0.35 < labels.float().mean() < 0.65  # about half foreground, although it covers ~10 %
    plain = CentrePixelDataset(nuclei, 9, length=400, balanced=False, seed=1)
    assert torch.stack([plain[i][1] for i in range(400)]).float().mean() < 0.25


def test_random_flip_rot90_is_a_permutation_applied_to_all():
    torch.manual_seed(0)
    image = torch.arange(2 * 25.0).view(2, 5, 5)
    mask = image[0].long()
    seen = set()
    for _ in range(40):
        a, m = random_flip_rot90(image, mask)
        assert torch.equal(a[0].long(), m) and torch.equal(a[1] - a[0], torch.full((5, 5), 25.0))
        assert sorted(a[0].flatten().tolist()) == list(range(25))
        seen.add(tuple(a[0].flatten().tolist()))
    assert len(seen) == 8  # the 8 symmetries of the square
    rect = torch.zeros(1, 4, 6)
    assert all(random_flip_rot90(rect)[0].shape == (1, 4, 6) for _ in range(10))  # no rotation
    vol = torch.zeros(1, 3, 4, 4)
    assert random_flip_rot90(vol, spatial_dims=3)[0].shape == (1, 3, 4, 4)


def _batches(loader):
    return [tuple(t.clone() for t in b) for b in loader]


@pytest.mark.parametrize("workers", [0, 2])
def test_make_loader_is_reproducible(nuclei, workers):
    def run():
        torch.manual_seed(123)  # what fit() does before iterating
        ds = PatchDataset(nuclei, 16, patches_per_image=4, augment=True)
        return _batches(make_loader(ds, batch_size=4, shuffle=True, seed=5, num_workers=workers))

    a, b = run(), run()
    assert len(a) == 3 and a[0][0].shape == (4, 1, 16, 16)
    assert all(torch.equal(x, y) for ba, bb in zip(a, b) for x, y in zip(ba, bb))


def test_validation_messages(nuclei):
    with pytest.raises(ValueError, match="samples is empty"):
        PatchDataset([], 8)
    with pytest.raises(ValueError, match="do not share a grid"):
        ImageDataset([(np.zeros((1, 4, 5)), np.zeros((4, 4), np.int64))])
    with pytest.raises(ValueError, match="patch_size must be a positive int or 2"):
        PatchDataset(nuclei, (8, 8, 8))
    with pytest.raises(ValueError, match="odd positive int"):
        CentrePixelDataset(nuclei, 8, length=4)
    with pytest.raises(TypeError, match=r"samples\[0\] must be a Sample"):
        ImageDataset([np.zeros((4, 4))])
    with pytest.raises(ValueError, match="batch_size must be"):
        make_loader(ImageDataset(nuclei), batch_size=0)
