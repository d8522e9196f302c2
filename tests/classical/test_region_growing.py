"""Region growing: hand-checked small arrays, equality with skimage.segmentation.flood, the
running-mean criterion, seeds, watershed, and every validation message."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.segmentation import flood

from medseg_course import metrics
from medseg_course.classical import region_growing as rg
from medseg_course.data import degrade, synthetic


# -- neighbourhoods -----------------------------------------------------------------------------

@pytest.mark.parametrize("ndim, connectivity, count", [
    (1, 1, 2), (2, 1, 4), (2, 2, 8), (3, 1, 6), (3, 2, 18), (3, 3, 26), (2, None, 8),
])
def test_neighbour_offsets_follow_the_connectivity_convention(ndim, connectivity, count):
    offsets = rg.neighbour_offsets(ndim, connectivity)
    assert offsets.shape == (count, ndim)
    structure = ndimage.generate_binary_structure(ndim, connectivity or ndim)
    structure[(1,) * ndim] = False  # the centre is not a neighbour
    assert sorted(map(tuple, offsets + 1)) == sorted(map(tuple, np.argwhere(structure)))
    assert not np.any(np.all(offsets == 0, axis=1))


def test_neighbours_by_hand():
    assert rg.neighbours((0, 0), (3, 4)) == [(0, 1), (1, 0)]
    assert rg.neighbours((0, 0), (3, 4), 2) == [(0, 1), (1, 0), (1, 1)]
    assert rg.neighbours((2, 3), (3, 4), 1) == [(1, 3), (2, 2)]
    assert len(rg.neighbours((1, 1), (3, 4), 2)) == 8
    assert rg.neighbours((0, 2), (1, 5), 2) == [(0, 1), (0, 3)]
    assert len(rg.neighbours((1, 1, 1), (3, 3, 3), 3)) == 26
    assert len(rg.neighbours((0, 0, 0), (3, 3, 3), 1)) == 3


def test_neighbours_validation():
    with pytest.raises(ValueError, match="one entry per axis"):
        rg.neighbours((1, 1, 1), (3, 4))
    with pytest.raises(ValueError, match=r"index \(3, 0\) lies outside the image of shape \(3, 4\)"):
        rg.neighbours((3, 0), (3, 4))
    with pytest.raises(ValueError, match="connectivity must be 1 .4-neighbourhood. or 2"):
        rg.neighbours((1, 1), (3, 4), 3)
    with pytest.raises(ValueError, match="ndim must be a positive int"):
        rg.neighbour_offsets(0)


# -- fixed tolerance: by hand and against flood -------------------------------------------------------

IMAGE = np.array([[1, 1, 5, 7],
                  [1, 9, 5, 7],
                  [2, 1, 1, 7],
                  [9, 9, 2, 8]])


def test_fixed_tolerance_by_hand():
    expected = np.array([[1, 1, 0, 0],
                         [1, 0, 0, 0],
                         [1, 1, 1, 0],
                         [0, 0, 1, 0]], dtype=bool)
    assert np.array_equal(rg.region_grow(IMAGE, [(0, 0)], 1), expected)
    assert np.array_equal(rg.region_grow_bfs(IMAGE, (0, 0), 1), expected)
    # tolerance 0: only the equal pixels connected to the seed
    assert rg.region_grow(IMAGE, (0, 0), 0).sum() == 3
    # the 9 at (1, 1) is not adjacent to the 9s of the bottom row, even diagonally
    assert rg.region_grow(IMAGE, (1, 1), 0, connectivity=2).sum() == 1
    assert rg.region_grow(IMAGE, (3, 0), 0, connectivity=2).sum() == 2


def test_diagonal_steps_only_with_connectivity_2():
    diagonal = np.eye(4)
    assert rg.region_grow(diagonal, (0, 0), 0.5).sum() == 1
    assert rg.region_grow(diagonal, (0, 0), 0.5, connectivity=2).sum() == 4


@pytest.mark.parametrize("shape, connectivity", [
    ((40, 50), 1), ((40, 50), 2), ((12, 14, 16), 1), ((12, 14, 16), 2), ((12, 14, 16), 3),
])
@pytest.mark.parametrize("tolerance", [0.05, 0.2, 0.45])
def test_equal_to_skimage_flood_on_random_float_images(shape, connectivity, tolerance):
    rng = np.random.default_rng(len(shape) * 10 + connectivity)
    image = ndimage.gaussian_filter(rng.random(shape), 1.5)
    image = (image - image.min()) / np.ptp(image)
    for _ in range(3):
        seed = tuple(int(rng.integers(n)) for n in shape)
        expected = flood(image, seed, tolerance=tolerance, connectivity=connectivity)
        assert np.array_equal(rg.region_grow(image, [seed], tolerance, connectivity), expected)
        if len(shape) == 2 and connectivity == 1:
            assert np.array_equal(rg.region_grow_bfs(image, seed, tolerance, connectivity), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8, np.int16])
def test_equal_to_flood_for_other_dtypes(dtype):
    rng = np.random.default_rng(7)
    image = (ndimage.gaussian_filter(rng.random((30, 30)), 1.0) * 200).astype(dtype)
    for tolerance in (0, 3, 10):
        seed = (15, 15)
        expected = flood(image, seed, tolerance=tolerance, connectivity=1)
        assert np.array_equal(rg.region_grow(image, seed, tolerance), expected)
        assert np.array_equal(rg.region_grow_bfs(image, seed, tolerance), expected)


def test_float32_bounds_are_rounded_like_flood():
    image = np.array([[0.5, 0.6, 0.7, 0.8]], dtype=np.float32)
    assert np.array_equal(rg.region_grow(image, (0, 0), 0.1), flood(image, (0, 0), tolerance=0.1))


def test_several_seeds_give_the_union_in_any_order():
    rng = np.random.default_rng(3)
    image = ndimage.gaussian_filter(rng.random((40, 40)), 2.0)
    seeds = [(5, 5), (30, 8), (20, 33), (5, 5)]
    union = np.zeros(image.shape, bool)
    for s in seeds:
        union |= flood(image, s, tolerance=0.02, connectivity=1)  # flood's default is full
    assert np.array_equal(rg.region_grow(image, seeds, 0.02), union)
    assert np.array_equal(rg.region_grow(image, seeds[::-1], 0.02), union)
    assert np.array_equal(rg.region_grow(image, np.array(seeds), 0.02), union)


def test_one_tolerance_per_seed():
    image = np.array([[0, 1, 2, 3, 10, 11, 12, 13]], dtype=float)
    got = rg.region_grow(image, [(0, 0), (0, 7)], [1, 2])
    assert got.astype(int).tolist() == [[1, 1, 0, 0, 0, 1, 1, 1]]


def test_seeds_with_equal_values_in_separate_components():
    image = np.array([[1.0, 5.0, 1.0]])
    assert rg.region_grow(image, [(0, 0), (0, 2)], 0.5).astype(int).tolist() == [[1, 0, 1]]


def test_input_is_not_modified_and_accepts_torch():
    import torch

    image = np.random.default_rng(0).random((10, 10))
    before = image.copy()
    rg.region_grow(image, (5, 5), 0.3, criterion="mean")
    assert np.array_equal(image, before)
    assert np.array_equal(rg.region_grow(torch.from_numpy(image), (5, 5), 0.3),
                          rg.region_grow(image, (5, 5), 0.3))


# -- running mean ---------------------------------------------------------------------------------------

def test_running_mean_follows_a_ramp_by_hand():
    image = np.array([[0.0, 0.1, 0.2, 0.3, 0.4, 0.9]])
    assert rg.region_grow(image, (0, 0), 0.22, criterion="mean").astype(int).tolist() == [[1, 1, 1, 1, 0, 0]]
    assert rg.region_grow(image, (0, 0), 0.22).astype(int).tolist() == [[1, 1, 1, 0, 0, 0]]


def test_running_mean_tests_rejected_pixels_again():
    # the 0.28 at the left is rejected against the seed (0.0) but fits the mean once 0.1, 0.2 join
    image = np.array([[0.28, 0.0, 0.1, 0.2, 0.2, 0.2],
                      [0.9, 0.9, 0.9, 0.9, 0.9, 0.9]])
    got = rg.region_grow(image, (0, 1), 0.15, criterion="mean")
    assert got.astype(int).tolist() == [[1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]]


@pytest.mark.parametrize("shape, connectivity", [((30, 30), 1), ((30, 30), 2), ((10, 12, 14), 1)])
def test_running_mean_result_is_a_fixed_point(shape, connectivity):
    rng = np.random.default_rng(5)
    image = ndimage.gaussian_filter(rng.random(shape), 1.0)
    seed = tuple(n // 2 for n in shape)
    region = rg.region_grow(image, seed, 0.03, connectivity, criterion="mean")
    structure = ndimage.generate_binary_structure(len(shape), connectivity)
    ring = ndimage.binary_dilation(region, structure) & ~region
    assert region[seed]
    assert not np.any(ring & (np.abs(image - image[region].mean()) <= 0.03 - 1e-12))
    assert np.array_equal(ndimage.label(region, structure)[1], 1)  # one connected region


def test_running_mean_equals_fixed_on_a_two_level_image():
    image = np.zeros((20, 20)); image[5:15, 5:15] = 1.0
    for criterion in ("seed", "mean"):
        got = rg.region_grow(image, [(10, 10), (0, 0)], 0.4, criterion=criterion)
        assert got.all()
        assert np.array_equal(rg.region_grow(image, (10, 10), 0.4, criterion=criterion), image > 0)


def test_max_iterations_limits_the_rings():
    image = np.zeros((9, 9))
    grown = rg.region_grow(image, (4, 4), 0.1, criterion="mean", max_iterations=2)
    assert grown.sum() == 13  # a diamond of radius 2
    assert rg.region_grow(image, (4, 4), 0.1, criterion="mean", max_iterations=0).sum() == 1
    assert rg.region_grow(image, (4, 4), 0.1, max_iterations=3).sum() == 25
    # ring by ring with the seed's value gives the same final region as the labelling
    rng = np.random.default_rng(2)
    noisy = ndimage.gaussian_filter(rng.random((30, 30)), 1.0)
    for connectivity in (1, 2):
        assert np.array_equal(rg.region_grow(noisy, (15, 15), 0.05, connectivity, max_iterations=10**6),
                              rg.region_grow(noisy, (15, 15), 0.05, connectivity))


# -- validation ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, message", [
    (dict(image=np.zeros(5)), ValueError, r"image must be \(H, W\) or \(D, H, W\), got shape \(5,\)"),
    (dict(image=np.zeros((1, 2, 3, 4))), ValueError, r"got shape \(1, 2, 3, 4\); pass one channel"),
    (dict(image=np.zeros((0, 3))), ValueError, "must not be empty"),
    (dict(image=np.full((3, 3), np.nan)), ValueError, "NaN or infinite"),
    (dict(image=np.zeros((3, 3), complex)), TypeError, "real-valued array, got dtype complex128"),
    (dict(seeds=[(3, 0)]), ValueError, r"seeds\[0\] = \(3, 0\) lies outside the image of shape \(3, 3\)"),
    (dict(seeds=[(1, 1), (-1, 0)]), ValueError, r"seeds\[1\] = \(-1, 0\) lies outside.*negative"),
    (dict(seeds=[(1, 1, 1)]), ValueError, "index tuples of length 2"),
    (dict(seeds=[]), ValueError, "non-empty list of index tuples"),
    (dict(seeds=[(1, 2), (1,)]), ValueError, "index tuples of length 2"),
    (dict(seeds=[(0.5, 1)]), TypeError, "integer indices"),
    (dict(tolerance=-0.1), ValueError, "tolerance must be finite and >= 0"),
    (dict(tolerance=[0.1, 0.2]), ValueError, r"one per seed \(1\), got 2 values"),
    (dict(tolerance=True), TypeError, "tolerance must be a number"),
    (dict(tolerance="big"), TypeError, "tolerance must be a number or one number per seed"),
    (dict(connectivity=3), ValueError, r"connectivity must be 1 \(4-neighbourhood\) or 2 \(8-neighbourhood\) for a 2D image, got 3"),
    (dict(connectivity=0), ValueError, "connectivity must be"),
    (dict(connectivity=1.0), TypeError, "connectivity must be an int"),
    (dict(criterion="median"), ValueError, "criterion must be 'seed'"),
    (dict(max_iterations=-1), ValueError, "max_iterations must be None or an int >= 0"),
])
def test_region_grow_validation(kwargs, error, message):
    args = dict(image=np.zeros((3, 3)), seeds=[(1, 1)], tolerance=0.1)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        rg.region_grow(**args)


def test_region_grow_bfs_takes_one_seed():
    with pytest.raises(ValueError, match="seed must be one index tuple"):
        rg.region_grow_bfs(np.zeros((3, 3)), [(0, 0), (1, 1)], 0.1)
    with pytest.raises(ValueError, match="connectivity must be 1 .6-neighbourhood."):
        rg.region_grow_bfs(np.zeros((3, 3, 3)), (0, 0, 0), 0.1, connectivity=4)


def test_float_seeds_that_are_whole_numbers_are_accepted():
    assert rg.region_grow(IMAGE, [(0.0, 0.0)], 1).sum() == 7


# -- seeds, watershed, instances -------------------------------------------------------------------------

def test_local_maxima_seeds():
    image = np.zeros((30, 40)); image[8, 10] = 1.0; image[20, 30] = 0.5; image[25, 5] = 0.05
    seeds = rg.local_maxima_seeds(image, sigma=1.0, min_distance=3)
    assert seeds.tolist() == [[8, 10], [20, 30], [25, 5]]
    smooth = ndimage.gaussian_filter(image, 1.0)
    high = rg.local_maxima_seeds(image, sigma=1.0, threshold=smooth[25, 5] * 2)
    assert high.tolist() == [[8, 10], [20, 30]]
    assert rg.local_maxima_seeds(np.zeros((5, 5))).shape == (0, 2)
    assert rg.local_maxima_seeds(np.zeros((5, 6, 7))).shape[1] == 3
    with pytest.raises(ValueError, match="sigma must be a number >= 0"):
        rg.local_maxima_seeds(image, sigma=-1)
    with pytest.raises(ValueError, match="min_distance must be an int >= 1"):
        rg.local_maxima_seeds(image, min_distance=0)


def test_watershed_splits_two_bumps_and_respects_the_mask():
    x = np.arange(18)
    image = np.tile(np.exp(-((x - 4) / 3.0) ** 2) + np.exp(-((x - 12) / 3.0) ** 2), (3, 1))
    labels = rg.watershed_from_seeds(image, [(1, 4), (1, 12)], mask=image > 0.3)
    assert set(np.unique(labels)) == {0, 1, 2}
    assert (labels[:, :9] != 2).all() and (labels[:, 9:] != 1).all()
    assert (labels[image <= 0.3] == 0).all()
    lines = rg.watershed_from_seeds(image, [(1, 4), (1, 12)], watershed_line=True)
    assert (lines == 0).any() and lines.dtype == np.int32
    with pytest.raises(ValueError, match=r"mask must have the image's shape \(3, 18\)"):
        rg.watershed_from_seeds(image, [(1, 4)], mask=np.ones((3, 3)))


def test_touching_nuclei_separated_by_hand():
    truth = np.zeros((8, 12), int)
    truth[1:5, 1:4] = 1; truth[1:5, 4:7] = 2      # two touching nuclei
    truth[6:8, 9:12] = 3                          # an isolated one: not counted
    assert rg.touching_nuclei_separated(ndimage.label(truth > 0)[0], truth) == (0, 2)
    assert rg.touching_nuclei_separated(truth, truth) == (2, 2)
    half = truth.copy(); half[1:5, 3] = 0          # nucleus 1 loses a third: IoU 2/3 > 0.5
    assert rg.touching_nuclei_separated(half, truth) == (2, 2)
    corner = np.zeros((4, 4), int); corner[0, 0] = 1; corner[1, 1] = 2  # diagonal contact counts
    assert rg.touching_nuclei_separated(corner, corner) == (2, 2)
    assert rg.touching_nuclei_separated(np.zeros((4, 4), int), np.zeros((4, 4), int)) == (0, 0)
    with pytest.raises(ValueError, match="same shape"):
        rg.touching_nuclei_separated(truth[:4], truth)
    with pytest.raises(TypeError, match=r"integer label map.*ndimage.label"):
        rg.touching_nuclei_separated(truth, truth.astype(float))
    with pytest.raises(ValueError, match=r"iou_threshold must be in \[0.5, 1\)"):
        rg.touching_nuclei_separated(truth, truth, iou_threshold=0.3)


# -- one call per sample ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scene():
    return synthetic.make_nuclei2d(shape=(128, 128), n_objects=14, touching=0.5, seed=4)


def test_segment_region_growing_on_a_synthetic_scene(scene):
    image = degrade.degrade(scene.image, noise=0.05, blur=1.0, seed=0)
    mask = rg.segment_region_growing(image[None])
    assert mask.shape == (128, 128) and mask.dtype == bool
    assert metrics.dice(mask, scene.mask > 0) > 0.9
    # brightfield: dark nuclei on a bright background, inverted by the category
    dark = 1.0 - image
    rgb = np.repeat(dark[None], 3, axis=0)
    bright_mask = rg.segment_region_growing(rgb, "brightfield_stained_color_256x320")
    assert metrics.dice(bright_mask, scene.mask > 0) > 0.9
    assert rg.segment_region_growing(image).shape == (128, 128)  # (H, W) accepted too


def test_segment_watershed_separates_touching_nuclei(scene):
    image = degrade.degrade(scene.image, noise=0.05, blur=1.0, seed=0)
    grown = rg.segment_region_growing(image[None])
    split = rg.segment_watershed(image[None])
    assert metrics.dice(split, scene.mask > 0) > 0.85
    merged_sep, touching = rg.touching_nuclei_separated(ndimage.label(grown)[0], scene.instances)
    split_sep, _ = rg.touching_nuclei_separated(ndimage.label(split)[0], scene.instances)
    assert touching == len(scene.params["touching_labels"])
    assert split_sep > merged_sep


def test_segment_functions_validation_and_empty_image():
    assert not rg.segment_region_growing(np.zeros((1, 16, 16))).any()
    assert not rg.segment_watershed(np.full((16, 16), 0.3)).any()
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        rg.segment_region_growing(np.zeros((1, 16, 16)), fraction=0)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        rg.segment_watershed(np.zeros((1, 16, 16)), fraction=1.5)
    with pytest.raises(ValueError, match=r"C 1 or 3"):
        rg.segment_region_growing(np.zeros((4, 16, 16)))
    with pytest.raises(ValueError, match=r"\(C, H, W\) or \(H, W\)"):
        rg.segment_region_growing(np.zeros((16,)))


def _mean_by_dilation(image, seed, tolerance, connectivity):
    """The running-mean growth written with whole-image dilations (the exercise's way)."""
    structure = ndimage.generate_binary_structure(image.ndim, connectivity)
    region = np.zeros(image.shape, dtype=bool)
    region[seed] = True
    while True:
        ring = ndimage.binary_dilation(region, structure) & ~region
        new = ring & (np.abs(image - image[region].mean()) <= tolerance)
        if not new.any():
            return region
        region |= new


@pytest.mark.parametrize("shape, connectivity", [((25, 31), 1), ((25, 31), 2), ((9, 11, 13), 1),
                                                 ((9, 11, 13), 3)])
def test_running_mean_equals_the_dilation_version(shape, connectivity):
    rng = np.random.default_rng(11)
    for trial in range(4):
        image = ndimage.gaussian_filter(rng.random(shape), 1.2)
        seed = tuple(int(rng.integers(n)) for n in shape)
        tolerance = float(rng.uniform(0.01, 0.06))
        expected = _mean_by_dilation(image, seed, tolerance, connectivity)
        got = rg.region_grow(image, seed, tolerance, connectivity, criterion="mean")
        assert np.array_equal(got, expected), (trial, got.sum(), expected.sum())
