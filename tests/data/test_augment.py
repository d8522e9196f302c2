"""Elastic deformation and intensity augmentation: geometry shared by image and labels, exact
labels, reproducibility, 2D and 3D, and clear errors."""

import numpy as np
import pytest
import torch

from medseg_course.data.augment import (
    AugmentedDataset,
    coarse_displacement,
    elastic_deform,
    gaussian_noise,
    random_brightness_contrast,
    random_gamma,
    warp,
)


def _disc(shape=(64, 80), centre=(30, 40), radius=14):
    yy, xx = np.indices(shape)
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2).astype(np.int64)


# -- the displacement field ----------------------------------------------------------------------

def test_field_passes_through_the_control_points():
    """Cubic-spline interpolation of a 3 x 3 grid: the corner and centre pixels carry the grid's vectors."""
    shape = (41, 61)
    u = coarse_displacement(shape, grid=3, std=10.0, rng=np.random.default_rng(5))
    coarse = np.random.default_rng(5).normal(size=(2, 3, 3)) * 10.0  # the same draws
    for (gy, gx), (py, px) in {(0, 0): (0, 0), (2, 2): (40, 60), (1, 1): (20, 30), (0, 2): (0, 60)}.items():
        np.testing.assert_allclose(u[:, py, px], coarse[:, gy, gx], atol=1e-4)


def test_field_is_smooth_scaled_and_reproducible():
    a = coarse_displacement((96, 96), std=10.0, rng=1)
    b = coarse_displacement((96, 96), std=10.0, rng=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, coarse_displacement((96, 96), std=10.0, rng=2))
    # neighbouring pixels move together: the largest step between neighbours is a small fraction of the
    # displacement itself
    step = max(np.abs(np.diff(a, axis=1)).max(), np.abs(np.diff(a, axis=2)).max())
    assert step < 0.1 * np.abs(a).max()
    # the control points' spread follows std (pooled over many fields)
    corners = np.concatenate([coarse_displacement((9, 9), std=4.0, rng=s)[:, ::4, ::4].ravel() for s in range(200)])
    assert 3.5 < corners.std() < 4.5
    assert np.abs(coarse_displacement((20, 20), std=0.0, rng=0)).max() == 0


def test_field_3d_and_per_axis_std():
    u = coarse_displacement((10, 20, 30), grid=(2, 3, 4), std=(0.0, 5.0, 5.0), rng=0)
    assert u.shape == (3, 10, 20, 30)
    assert np.abs(u[0]).max() == 0 and np.abs(u[1]).max() > 0


@pytest.mark.parametrize("kwargs, message", [
    (dict(shape=(10,)), "shape must be 2 or 3 positive ints"),
    (dict(shape=(10, 10), grid=1), "grid must be a int >= 2"),
    (dict(shape=(10, 10), std=-1.0), "std must be a number >= 0"),
    (dict(shape=(10, 10), std=(1.0, 2.0, 3.0)), "one per spatial axis"),
    (dict(shape=(10, 10), rng="seed"), "rng must be a numpy Generator"),
])
def test_field_errors(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        coarse_displacement(**kwargs)


# -- warping -------------------------------------------------------------------------------------

def test_warp_zero_field_is_the_identity_and_a_shift_moves_pixels():
    rng = np.random.default_rng(0)
    image = rng.random((2, 12, 15)).astype(np.float32)
    zero = np.zeros((2, 12, 15))
    assert np.array_equal(warp(image, zero, order=1), image)
    shift = np.zeros((2, 12, 15)); shift[0] = 2.0  # every output row reads two rows further down
    out = warp(image, shift, order=0)
    assert np.array_equal(out[:, :10], image[:, 2:])
    assert out.dtype == np.float32 and out.shape == image.shape
    assert np.array_equal(out[:, 10], image[:, 11])  # reflected beyond the border (..., 11 | 11, 10)


def test_warp_errors():
    with pytest.raises(ValueError, match="must match the displacement's spatial shape"):
        warp(np.zeros((5, 6)), np.zeros((2, 5, 5)))
    with pytest.raises(ValueError, match="order must be 0"):
        warp(np.zeros((5, 6)), np.zeros((2, 5, 6)), order=2)
    with pytest.raises(ValueError, match="mode must be one of"):
        warp(np.zeros((5, 6)), np.zeros((2, 5, 6)), mode="zeros")
    with pytest.raises(TypeError, match="numeric array"):
        warp(np.array([["a"]]), np.zeros((2, 1, 1)))


# -- elastic deformation -------------------------------------------------------------------------

def test_image_and_mask_are_deformed_identically():
    """Deform a disc as an image (linear) and as a mask (nearest): they must overlap almost exactly."""
    mask = _disc()
    image = mask.astype(np.float32)[None]  # (1, H, W)
    im2, m2 = elastic_deform(image, mask, std=8.0, rng=3)
    assert im2.shape == (1, 64, 80) and m2.shape == (64, 80) and m2.dtype == np.int64
    assert set(np.unique(m2)) <= {0, 1}
    moved = (m2 != mask).mean()
    assert moved > 0.01, "the deformation should move the disc's outline"
    agreement = ((im2[0] > 0.5) == (m2 > 0)).mean()
    assert agreement > 0.995
    # a wrong pairing (the mask deformed with another draw) agrees less
    _, other = elastic_deform(image, mask, std=8.0, rng=4)
    assert ((im2[0] > 0.5) == (other > 0)).mean() < agreement


def test_labels_stay_labels_and_same_rng_state_same_result():
    rng = np.random.default_rng(0)
    inst = rng.integers(0, 7, size=(40, 40))
    weights = rng.random((40, 40)).astype(np.float32)
    a = elastic_deform(rng.random((40, 40)), inst, weights, rng=np.random.default_rng(9))
    b = elastic_deform(rng.random((40, 40)), inst, weights, rng=np.random.default_rng(9))
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert set(np.unique(a[1])) <= set(range(7))
    assert set(np.unique(a[2])) <= set(weights.ravel().tolist())  # nearest neighbour: existing values only


def test_elastic_3d_volume_and_tensors():
    vol = torch.rand(1, 8, 16, 16)
    lab = torch.randint(0, 3, (8, 16, 16))
    v2, l2 = elastic_deform(vol, lab, std=2.0, rng=0)
    assert v2.shape == (1, 8, 16, 16) and l2.shape == (8, 16, 16)
    assert isinstance(v2, np.ndarray) and set(np.unique(l2)) <= {0, 1, 2}


def test_elastic_errors():
    with pytest.raises(ValueError, match="must have the image's spatial shape"):
        elastic_deform(np.zeros((1, 10, 10)), np.zeros((10, 11), np.int64))
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3"):
        elastic_deform(np.zeros(10))
    with pytest.raises(ValueError, match=r"image must be \(\*spatial\) or \(C, \*spatial\)"):
        elastic_deform(np.zeros((2, 3, 10, 10)), np.zeros((10, 10), np.int64))


# -- intensity -----------------------------------------------------------------------------------

def test_gamma_keeps_the_range_and_is_monotonic():
    x = np.linspace(0.2, 0.9, 50).astype(np.float32)
    for seed in range(5):
        y = random_gamma(x, rng=seed)
        assert y.min() == pytest.approx(0.2) and y.max() == pytest.approx(0.9)
        assert np.all(np.diff(y) > 0)
    assert np.array_equal(random_gamma(np.full(4, 0.3), rng=0), np.full(4, 0.3, np.float32))
    with pytest.raises(ValueError, match="gamma_range"):
        random_gamma(x, rng=0, gamma_range=(1.5, 0.7))


def test_brightness_contrast_and_noise():
    x = np.array([0.0, 0.5, 1.0])
    y = random_brightness_contrast(x, rng=0, brightness=0.0, contrast=(0.5, 0.5))
    np.testing.assert_allclose(y, [0.25, 0.5, 0.75])
    y = random_brightness_contrast(x, rng=0, brightness=0.2, contrast=(1.0, 1.0))
    shift = y - x
    assert np.allclose(shift, shift[0]) and abs(shift[0]) <= 0.2
    n = gaussian_noise(np.zeros(20000), rng=0, std=(0.1, 0.1))
    assert abs(n.std() - 0.1) < 0.005
    with pytest.raises(ValueError, match="brightness must be a non-negative number"):
        random_brightness_contrast(x, brightness=-1)


# -- the dataset wrapper -------------------------------------------------------------------------

class _Items(torch.utils.data.Dataset):
    def __init__(self, weight=False):
        self.weight = weight

    def __len__(self):
        return 3

    def __getitem__(self, i):
        mask = torch.from_numpy(_disc((48, 48), (24, 24), 10))
        image = mask[None].float() * 0.8 + 0.1
        return (image, mask, mask.float() * 5 + 1) if self.weight else (image, mask)


def test_augmented_dataset_crops_deforms_and_is_seeded():
    ds = AugmentedDataset(_Items(weight=True), crop=32, elastic=1.0, std=4.0, gamma=1.0, noise=1.0)
    torch.manual_seed(0)
    a = ds[0]
    torch.manual_seed(0)
    b = ds[0]
    assert [tuple(t.shape) for t in a] == [(1, 32, 32), (32, 32), (32, 32)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    image, mask, weight = a
    assert mask.dtype == torch.int64 and set(mask.unique().tolist()) <= {0, 1}
    assert torch.equal(weight, mask.float() * 5 + 1), "the weight map follows the mask's geometry"
    centre = _disc((48, 48), (24, 24), 10)[8:40, 8:40]
    assert not np.array_equal(mask.numpy(), centre), "elastic=1.0 always deforms"
    plain = AugmentedDataset(_Items(), crop=32, elastic=0.0)[0]
    assert np.array_equal(plain[1].numpy(), centre) and len(plain) == 2


def test_augmented_dataset_errors():
    with pytest.raises(ValueError, match="elastic is a probability"):
        AugmentedDataset(_Items(), elastic=1.5)
    with pytest.raises(ValueError, match="larger than the items' spatial shape"):
        AugmentedDataset(_Items(), crop=64, elastic=0.0)[0]
    with pytest.raises(TypeError, match="map-style Dataset"):
        AugmentedDataset(object())
