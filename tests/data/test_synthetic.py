"""Synthetic scenes and degradations: determinism, exact ground truth, noise physics, knobs."""

import dataclasses
import math
import time

import numpy as np
import pytest
from scipy import ndimage, stats

from medseg_course.data import degrade as D
from medseg_course.data.degrade import (
    Degradation,
    add_gaussian_noise,
    add_poisson_noise,
    add_rician_noise,
    add_speckle_noise,
    adjust_contrast,
    apply_bias_field,
    bias_field,
    cnr,
    degrade,
    gaussian_blur,
)
from medseg_course.data.synthetic import (
    SyntheticSample,
    make_dataset,
    make_nuclei2d,
    make_organ3d,
)

FLAT = np.full((256, 256), 0.5, dtype=np.float32)


def _same(a: SyntheticSample, b: SyntheticSample) -> bool:
    return (np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
            and (a.instances is None and b.instances is None
                 or np.array_equal(a.instances, b.instances)))


def _touching_pairs(instances):
    """Labels sharing an edge with another label, computed independently of the generator."""
    out = set()
    for axis in (0, 1):
        a = np.moveaxis(instances, axis, 0)
        x, y = a[:-1], a[1:]
        sel = (x != y) & (x > 0) & (y > 0)
        out |= set(x[sel].tolist()) | set(y[sel].tolist())
    return out


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda seed: make_nuclei2d(seed=seed, texture=0.2, intensity_variability=0.3),
    lambda seed: make_organ3d(seed=seed, texture=0.2, variability=1.0),
])
def test_generators_are_deterministic(make):
    assert _same(make(7), make(7))
    assert _same(make(np.random.default_rng(7)), make(np.random.default_rng(7)))
    assert not np.array_equal(make(7).image, make(8).image)


def test_seed_none_follows_the_global_numpy_seed():
    np.random.seed(3)
    a = make_nuclei2d(n_objects=5, shape=(64, 64))
    np.random.seed(3)
    b = make_nuclei2d(n_objects=5, shape=(64, 64))
    assert _same(a, b)
    assert a.params["seed"] is None


@pytest.mark.parametrize("fn, arg", [
    (add_gaussian_noise, 0.1), (add_poisson_noise, 50.0), (add_rician_noise, 0.1),
    (add_speckle_noise, 0.3), (apply_bias_field, 0.2),
])
def test_degradations_are_deterministic(fn, arg):
    x = make_nuclei2d(seed=0).image
    assert np.array_equal(fn(x, arg, seed=1), fn(x, arg, seed=1))
    assert not np.array_equal(fn(x, arg, seed=1), fn(x, arg, seed=2))


def test_degrade_is_deterministic_and_keeps_knob_streams_apart():
    x = make_nuclei2d(seed=0).image.astype(np.float64)
    kw = dict(noise=0.1, bias=0.2, blur=1.0, noise_model="rician")
    assert np.array_equal(degrade(x, seed=4, **kw), degrade(x, seed=4, **kw))
    # the noise pattern does not change when the bias knob moves
    with_bias = degrade(x, noise=0.1, bias=0.2, seed=4) - degrade(x, bias=0.2, seed=4)
    without = degrade(x, noise=0.1, seed=4) - x
    np.testing.assert_allclose(with_bias, without, atol=1e-12)
    # Gaussian noise: same normal field at every level (smooth sweeps)
    np.testing.assert_allclose(degrade(x, noise=0.2, seed=4) - x,
                               2 * (degrade(x, noise=0.1, seed=4) - x), atol=1e-12)


def test_geometry_does_not_depend_on_intensity_knobs():
    a = make_nuclei2d(seed=2)
    b = make_nuclei2d(seed=2, contrast=0.2, background=0.5, texture=0.5, intensity_variability=0.5)
    assert np.array_equal(a.instances, b.instances)
    c = make_organ3d(seed=2)
    d = make_organ3d(seed=2, contrast=0.1, texture=0.3, distractor_contrast=0.2)
    assert np.array_equal(c.mask, d.mask)


# ---------------------------------------------------------------------------------------------
# 2D nuclei: exact ground truth
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed, n, touching, shape_var, size_var", [
    (0, 30, 0.2, 0.3, 0.2), (1, 30, 0.0, 1.0, 0.5), (2, 40, 1.0, 0.6, 0.3),
    (3, 17, 0.5, 0.0, 0.0), (4, 60, 0.5, 1.0, 0.6), (5, 2, 0.1, 0.5, 0.2),
])
def test_nuclei_ground_truth_is_exact(seed, n, touching, shape_var, size_var):
    s = make_nuclei2d(n_objects=n, touching=touching, shape_variability=shape_var,
                      size_variability=size_var, seed=seed)
    assert s.image.dtype == np.float32 and s.image.shape == (256, 256)
    assert 0.0 <= s.image.min() and s.image.max() <= 1.0
    assert s.mask.dtype == np.int64 and s.instances.dtype == np.int64
    assert np.array_equal(s.mask, (s.instances > 0).astype(np.int64))
    assert sorted(np.unique(s.instances)) == list(range(n + 1))  # exactly n objects
    for label in range(1, n + 1):  # each is one 4-connected region
        assert ndimage.label(s.instances == label)[1] == 1
    # no nucleus touches the image border, so every one is complete
    border = np.concatenate([s.instances[0], s.instances[-1], s.instances[:, 0], s.instances[:, -1]])
    assert not border.any()
    # touching: the requested count, really sharing an edge
    expected = round(touching * n) if n >= 2 else 0
    expected = 2 if expected == 1 else expected
    touching_labels = set(s.params["touching_labels"])
    assert len(touching_labels) == expected
    assert touching_labels == _touching_pairs(s.instances)
    # the others keep a gap: not even diagonal neighbours of another nucleus
    for label in set(range(1, n + 1)) - touching_labels:
        ring = ndimage.binary_dilation(s.instances == label, structure=np.ones((3, 3)))
        assert set(np.unique(s.instances[ring])) <= {0, label}


def test_nuclei_intensities_follow_background_and_contrast():
    s = make_nuclei2d(seed=0, background=0.1, contrast=0.5)
    assert np.allclose(s.image[s.mask == 0], 0.1) and np.allclose(s.image[s.mask == 1], 0.6)
    dark = make_nuclei2d(seed=0, background=0.8, contrast=-0.5)  # brightfield-like
    assert np.allclose(dark.image[dark.mask == 1], 0.3)
    varied = make_nuclei2d(seed=0, intensity_variability=0.5)
    per_object = ndimage.mean(varied.image, varied.instances, range(1, 31))
    assert np.std(per_object) > 0.05  # each nucleus its own brightness


def test_shape_variability_zero_gives_round_nuclei():
    s = make_nuclei2d(seed=0, shape_variability=0.0, size_variability=0.0, touching=0.0)
    from skimage.measure import regionprops
    props = regionprops(s.instances)
    assert all(p.eccentricity < 0.35 for p in props)
    assert all(abs(p.area - math.pi * 8**2) < 0.15 * math.pi * 8**2 for p in props)
    rough = regionprops(make_nuclei2d(seed=0, shape_variability=1.0, touching=0.0).instances)
    assert np.mean([p.solidity for p in rough]) < np.mean([p.solidity for p in props])


def test_empty_scene_and_sample_record():
    s = make_nuclei2d((32, 32), n_objects=0, seed=0)
    assert not s.mask.any() and s.params["touching_labels"] == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.image = None
    with pytest.raises(TypeError):
        s.params["seed"] = 1
    assert "nuclei2d" in repr(s) and s.ndim == 2


# ---------------------------------------------------------------------------------------------
# 3D organ
# ---------------------------------------------------------------------------------------------
def test_organ3d_labels_are_exact():
    s = make_organ3d(seed=0, label_distractor=True)
    assert s.image.shape == s.mask.shape == (48, 64, 48) and s.image.dtype == np.float32
    assert s.class_names == ("background", "anterior", "posterior", "distractor")
    assert sorted(np.unique(s.mask)) == [0, 1, 2, 3]
    for k in (1, 2, 3):
        assert ndimage.label(s.mask == k)[1] == 1
    # anterior and posterior share a boundary (one organ); the distractor keeps its distance
    organ = (s.mask == 1) | (s.mask == 2)
    assert ndimage.label(organ)[1] == 1
    assert not np.any(ndimage.binary_dilation(organ) & (s.mask == 3))
    # intensities: head and body identical, distractor identical by default (a true look-alike)
    assert np.allclose(s.image[s.mask == 1], 0.7) and np.allclose(s.image[s.mask == 2], 0.7)
    assert np.allclose(s.image[s.mask == 3], 0.7) and np.allclose(s.image[s.mask == 0], 0.3)
    vol = s.params["volumes_mm3"]
    assert vol["anterior"] == (s.mask == 1).sum() and vol["distractor"] > 0


def test_organ3d_default_labels_match_msd_hippocampus_and_hide_the_distractor():
    s = make_organ3d(seed=0)
    assert s.class_names == ("background", "anterior", "posterior") and s.instances is None
    assert sorted(np.unique(s.mask)) == [0, 1, 2]
    bright_background = (s.mask == 0) & (s.image > 0.5)
    assert bright_background.sum() == s.params["distractor_volume_mm3"] > 100


def test_organ3d_subject_variability():
    templates = [make_organ3d(seed=k, variability=0.0).mask for k in range(3)]
    assert all(np.array_equal(templates[0], m) for m in templates[1:])
    subjects = [make_organ3d(seed=k, variability=1.0) for k in range(12)]
    volumes = [s.params["volumes_mm3"]["anterior"] + s.params["volumes_mm3"]["posterior"]
               for s in subjects]
    assert np.std(volumes) / np.mean(volumes) > 0.05
    for s in subjects:  # stays in the field of view
        m = s.mask
        assert not (m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any()
                    or m[:, :, 0].any() or m[:, :, -1].any())


def test_organ3d_anatomy_is_in_millimetres():
    fine = make_organ3d(seed=0, variability=0.0)
    thick = make_organ3d(shape=(16, 64, 48), spacing=(3.0, 1.0, 1.0), seed=0, variability=0.0)
    assert thick.spacing == (3.0, 1.0, 1.0)
    for name in ("anterior", "posterior"):
        a, b = fine.params["volumes_mm3"][name], thick.params["volumes_mm3"][name]
        assert abs(a - b) / a < 0.15


# ---------------------------------------------------------------------------------------------
# Noise models against theory (flat images)
# ---------------------------------------------------------------------------------------------
def test_gaussian_noise_std():
    out = add_gaussian_noise(FLAT, 0.1, seed=0)
    assert out.dtype == np.float32
    assert abs(out.mean() - 0.5) < 0.002 and abs(out.std() - 0.1) < 0.002


@pytest.mark.parametrize("level, photons", [(0.5, 20.0), (1.0, 5.0), (0.2, 200.0)])
def test_poisson_variance_equals_mean_in_counts(level, photons):
    out = add_poisson_noise(np.full((256, 256), level), photons, seed=0)
    counts = out * photons
    assert np.allclose(counts, np.round(counts))  # whole photons
    mean = level * photons
    assert abs(counts.mean() - mean) < 4 * math.sqrt(mean / counts.size)
    assert abs(counts.var() / mean - 1) < 0.03


def test_rician_noise_on_zero_signal_is_rayleigh():
    out = add_rician_noise(np.zeros((256, 256)), 0.1, seed=0)
    assert out.min() >= 0
    assert abs(out.mean() - 0.1 * math.sqrt(math.pi / 2)) < 0.002
    assert abs(out.var() - (4 - math.pi) / 2 * 0.01) < 0.0003


@pytest.mark.parametrize("signal", [0.1, 0.3, 1.0])
def test_rician_noise_mean_and_variance_match_the_rice_law(signal):
    sigma = 0.1
    out = add_rician_noise(np.full((256, 256), signal), sigma, seed=0)
    rice = stats.rice(b=signal / sigma, scale=sigma)
    assert abs(out.mean() - rice.mean()) < 0.002
    assert abs(out.var() / rice.var() - 1) < 0.03


@pytest.mark.parametrize("std", [0.2, 0.52, 1.0])
def test_speckle_is_multiplicative_with_mean_one(std):
    out = add_speckle_noise(FLAT, std, seed=0)
    assert abs(out.mean() / 0.5 - 1) < 0.01
    assert abs(out.std() / (0.5 * std) - 1) < 0.02
    twice = add_speckle_noise(2 * FLAT, std, seed=0)
    np.testing.assert_allclose(twice.std(), 2 * out.std(), rtol=1e-5)  # grows with the signal


@pytest.mark.parametrize("model", D.NOISE_MODELS)
def test_noise_knob_is_the_std_at_intensity_one(model):
    one = np.ones((256, 256), np.float32)
    assert abs(degrade(one, noise=0.1, noise_model=model, seed=0).std() - 0.1) < 0.004


# ---------------------------------------------------------------------------------------------
# Bias, blur, contrast
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, spacing, order", [
    ((128, 128), None, 1), ((128, 128), None, 3), ((96, 128), None, 6),
    ((24, 64, 48), (3.0, 1.0, 1.0), 3),
])
def test_bias_field_is_smooth_and_has_the_requested_strength(shape, spacing, order):
    strength = 0.3
    f = bias_field(shape, strength, order=order, spacing=spacing, seed=0)
    assert abs(np.abs(f - 1).max() - strength) < 1e-9 and abs(f.mean() - 1) < 1e-9
    # Markov's inequality for polynomials, |p'| <= order**2 max|p|, bounds the step per voxel
    sp = np.ones(len(shape)) if spacing is None else np.array(spacing)
    half = max((n - 1) * d / 2 for n, d in zip(shape, sp))
    for axis in range(len(shape)):
        step = np.abs(np.diff(f, axis=axis)).max()
        assert step <= strength * order**2 * sp[axis] / half + 1e-12
    # the same seed gives the same pattern at any strength
    np.testing.assert_allclose((bias_field(shape, 0.1, order=order, spacing=spacing, seed=0) - 1)
                               / 0.1, (f - 1) / strength, atol=1e-9)


def test_bias_field_smoothness_check_rejects_noise():
    noise = 1 + 0.3 * np.random.default_rng(0).uniform(-1, 1, (128, 128))
    assert np.abs(np.diff(noise, axis=0)).max() > 0.3 * 9 / 63.5


def test_apply_bias_field_multiplies():
    out = apply_bias_field(FLAT, 0.25, seed=3)
    np.testing.assert_allclose(out, 0.5 * bias_field(FLAT.shape, 0.25, seed=3), rtol=1e-6)


def test_blur_reduces_the_edge_gradient_in_physical_units():
    step = np.zeros((32, 64), np.float32)
    step[:, 32:] = 1.0
    grad = lambda im: np.abs(np.diff(im, axis=1)).max()  # noqa: E731
    assert grad(step) == 1.0
    assert grad(gaussian_blur(step, 1.0)) < 0.45
    assert grad(gaussian_blur(step, 2.0)) < grad(gaussian_blur(step, 1.0))
    # the same 2 mm blur spans fewer pixels when pixels are 2 mm wide
    coarse = gaussian_blur(step, 2.0, spacing=(1.0, 2.0))
    np.testing.assert_allclose(coarse, gaussian_blur(step, 1.0), atol=1e-6)
    np.testing.assert_allclose(gaussian_blur(step, 3.0).sum(), step.sum(), rtol=1e-5)


def test_contrast_knob_gives_the_requested_cnr():
    for contrast, noise in [(0.6, 0.1), (0.3, 0.1), (0.2, 0.2)]:
        s = make_nuclei2d(seed=0, contrast=contrast)
        noisy = degrade(s.image, noise=noise, seed=1)
        assert abs(cnr(noisy, s.mask) / (contrast / noise) - 1) < 0.05
        assert abs(cnr(noisy, s.mask, denominator="background") / (contrast / noise) - 1) < 0.05
    s = make_nuclei2d(seed=0, contrast=0.6)
    halved = degrade(s.image, contrast=0.5, noise=0.1, seed=1)
    assert abs(cnr(halved, s.mask) - 3.0) < 0.15
    lower = adjust_contrast(s.image, 0.25)
    assert np.allclose(lower[s.mask == 0], 0.2) and np.allclose(lower[s.mask == 1], 0.35)


def test_cnr_edge_cases():
    im = np.zeros((4, 4))
    m = np.zeros((4, 4), int)
    m[0] = 1
    assert cnr(im, m) == 0.0
    im[0] = 1
    assert cnr(im, m) == math.inf


# ---------------------------------------------------------------------------------------------
# Neutral knobs leave the image unchanged
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_neutral_knobs_return_the_image_unchanged(dtype):
    x = make_organ3d(seed=0, texture=0.3).image.astype(dtype)
    for out in [add_gaussian_noise(x, 0.0), add_rician_noise(x, 0.0), add_speckle_noise(x, 0.0),
                add_poisson_noise(x, math.inf), apply_bias_field(x, 0.0), gaussian_blur(x, 0.0),
                adjust_contrast(x, 1.0), degrade(x), degrade(x, Degradation(), seed=0),
                degrade(x, noise=0.0, blur=0.0, bias=0.0, contrast=1.0, noise_model="poisson")]:
        assert out.dtype == dtype and np.array_equal(out, x) and out is not x
    assert Degradation().is_identity and not Degradation(blur=1.0).is_identity


def test_inputs_are_never_modified():
    x = make_nuclei2d(seed=0).image
    before = x.copy()
    degrade(x, noise=0.2, blur=1.0, bias=0.3, contrast=0.5, noise_model="speckle", seed=0)
    assert np.array_equal(x, before)


# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------
def test_make_dataset_is_prefix_stable_and_degrades_images_only():
    kw = dict(n_objects=6, radius=5.0, shape=(64, 64))
    five = make_dataset(5, "nuclei2d", seed=3, **kw)
    three = make_dataset(3, "nuclei2d", seed=3, **kw)
    assert all(_same(a, b) for a, b in zip(five, three))
    assert [s.params["index"] for s in five] == list(range(5))
    assert len({s.image.tobytes() for s in five}) == 5
    noisy = make_dataset(3, "nuclei2d", seed=3, degradation=Degradation(noise=0.2), **kw)
    for clean, dirty in zip(three, noisy):
        assert np.array_equal(clean.mask, dirty.mask) and not np.array_equal(clean.image, dirty.image)
        assert dirty.params["degradation"]["noise"] == 0.2
    vols = make_dataset(2, "organ3d", seed=0, shape=(32, 48, 32), spacing=1.5)
    assert vols[0].image.shape == (32, 48, 32) and vols[0].spacing == (1.5, 1.5, 1.5)
    assert make_dataset(0, seed=0) == []


# ---------------------------------------------------------------------------------------------
# Speed (the notebooks generate scenes on the fly)
# ---------------------------------------------------------------------------------------------
def _median_seconds(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return sorted(times)[repeats // 2]


def test_generation_is_fast():
    assert _median_seconds(lambda: make_nuclei2d((256, 256), 30, seed=1)) < 0.1
    assert _median_seconds(lambda: make_organ3d((48, 64, 48), variability=1.0, seed=1)) < 0.2


# ---------------------------------------------------------------------------------------------
# Validation: every error names the parameter, what came in, and the fix
# ---------------------------------------------------------------------------------------------
IMG = np.zeros((8, 8), np.float32)


@pytest.mark.parametrize("call, error, message", [
    (lambda: make_nuclei2d(shape=(256,)), TypeError, r"shape must be a tuple of 2 ints \(H, W\)"),
    (lambda: make_nuclei2d(shape=(8, 8)), ValueError, r"shape must be at least 16"),
    (lambda: make_nuclei2d(n_objects=-1), ValueError, r"n_objects must be >= 0, got -1"),
    (lambda: make_nuclei2d(n_objects=2.5), TypeError, r"n_objects must be an int, got float"),
    (lambda: make_nuclei2d(radius=1.0), ValueError, r"radius must be in \[2, inf\], got 1.0"),
    (lambda: make_nuclei2d(touching=1.5), ValueError, r"touching must be in \[0, 1\], got 1.5"),
    (lambda: make_nuclei2d(shape_variability=-0.1), ValueError, r"shape_variability must be in"),
    (lambda: make_nuclei2d(size_variability="x"), TypeError, r"size_variability must be a real"),
    (lambda: make_nuclei2d(background=0.8, contrast=0.5), ValueError,
     r"background \+ contrast must be in \[0, 1\].*got 0.8 \+ 0.5 = 1.3; lower"),
    (lambda: make_nuclei2d(texture=2.0), ValueError, r"texture must be in \[0, 1\]"),
    (lambda: make_nuclei2d(min_gap=1.0), ValueError, r"min_gap must be in \[1.5, inf\]"),
    (lambda: make_nuclei2d(radius=40.0, shape=(64, 64)), ValueError,
     r"radius 40 is too large for shape \(64, 64\).*enlarge shape"),
    (lambda: make_nuclei2d(n_objects=200, radius=10.0), ValueError,
     r"could not place 200 nuclei.*too crowded; lower n_objects or radius"),
    (lambda: make_nuclei2d(seed=-1), ValueError, r"seed must be a non-negative integer, got -1"),
    (lambda: make_nuclei2d(seed="a"), TypeError, r"seed must be None, an int or a numpy"),
    (lambda: make_nuclei2d(seed=True), TypeError, r"seed must be None, an int"),
    (lambda: make_organ3d(shape=(48, 64)), TypeError, r"shape must be a tuple of 3 ints \(D, H, W\)"),
    (lambda: make_organ3d(spacing=(1.0, 0.0, 1.0)), ValueError, r"spacing must be in \(0, inf\]"),
    (lambda: make_organ3d(spacing=(1.0, 1.0)), ValueError, r"spacing must have one entry per"),
    (lambda: make_organ3d(variability=2.0), ValueError, r"variability must be in \[0, 1\]"),
    (lambda: make_organ3d(distractor="yes"), TypeError, r"distractor must be True or False"),
    (lambda: make_organ3d(distractor=False, label_distractor=True), ValueError,
     r"label_distractor=True needs distractor=True"),
    (lambda: make_organ3d(distractor_contrast=0.9), ValueError, r"background \+ contrast"),
    (lambda: make_dataset(-1), ValueError, r"n must be >= 0, got -1"),
    (lambda: make_dataset(2, kind="organ2d"), ValueError,
     r"kind must be one of \['nuclei2d', 'organ3d'\], got 'organ2d'"),
    (lambda: make_dataset(2, n_object=3), TypeError,
     r"make_nuclei2d has no argument\(s\) \['n_object'\]; it accepts"),
    (lambda: make_dataset(2, degradation={"noise": 0.1}), TypeError,
     r"degradation must be a Degradation or None, got dict"),
    (lambda: add_gaussian_noise(np.zeros(8), 0.1), ValueError,
     r"image must be 2D \(H, W\) or 3D \(D, H, W\), got shape \(8,\); pass a single channel"),
    (lambda: add_gaussian_noise(np.zeros((2, 2, 2, 2)), 0.1), ValueError, r"got shape \(2, 2, 2, 2\)"),
    (lambda: add_gaussian_noise(np.zeros((4, 4), bool), 0.1), TypeError,
     r"image must be a real-valued numeric array, got dtype bool"),
    (lambda: add_gaussian_noise(np.full((4, 4), np.nan), 0.1), ValueError,
     r"image contains NaN or infinite values"),
    (lambda: add_gaussian_noise(IMG, -0.1), ValueError, r"sigma must be in \[0, inf\], got -0.1"),
    (lambda: add_poisson_noise(IMG, 0.0), ValueError, r"photons must be in \(0, inf\]"),
    (lambda: add_poisson_noise(IMG - 1, 10.0), ValueError,
     r"image must be non-negative for Poisson noise.*minimum of -1; shift or clip"),
    (lambda: add_poisson_noise(IMG + 1, 1e16), ValueError, r"photons \* image must stay below 1e15"),
    (lambda: add_rician_noise(IMG, math.nan), ValueError, r"sigma must be a finite number"),
    (lambda: add_speckle_noise(IMG, -1.0), ValueError, r"std must be in \[0, inf\]"),
    (lambda: adjust_contrast(IMG, -0.5), ValueError, r"factor must be in \[0, inf\], got -0.5"),
    (lambda: gaussian_blur(IMG, (1.0, 2.0, 3.0)), ValueError,
     r"sigma must have one entry per image axis \(2\)"),
    (lambda: gaussian_blur(IMG, -1.0), ValueError, r"sigma must be in \[0, inf\]"),
    (lambda: bias_field((8,), 0.2), ValueError, r"shape must be a tuple of 2 or 3 positive ints"),
    (lambda: bias_field(8, 0.2), TypeError, r"shape must be a tuple of 2 or 3 ints, got 8"),
    (lambda: bias_field((8, 8), 1.0), ValueError, r"strength must be in \[0, 1\), got 1.0"),
    (lambda: bias_field((8, 8), 0.2, order=0), ValueError, r"order must be an int from 1 to 6"),
    (lambda: cnr(IMG, np.zeros((4, 4))), ValueError, r"mask must have the shape of image \(8, 8\)"),
    (lambda: cnr(IMG, np.zeros((8, 8))), ValueError,
     r"mask must contain both object \(non-zero\) and background \(zero\) voxels, got 0"),
    (lambda: cnr(IMG, np.eye(8), denominator="max"), ValueError, r"denominator must be 'pooled'"),
    (lambda: Degradation(noise=-1.0), ValueError, r"noise must be in \[0, inf\], got -1.0"),
    (lambda: Degradation(bias=1.2), ValueError, r"bias must be in \[0, 1\)"),
    (lambda: Degradation(noise_model="salt"), ValueError,
     r"noise_model must be one of \('gaussian', 'poisson', 'rician', 'speckle'\), got 'salt'"),
    (lambda: Degradation(bias_order=9), ValueError, r"bias_order must be an int from 1 to 6"),
    (lambda: degrade(IMG, sigma=1.0), TypeError, r"unknown knob\(s\) \['sigma'\]; degrade accepts"),
    (lambda: degrade(IMG, {"noise": 0.1}), TypeError, r"settings must be a Degradation or None"),
    (lambda: degrade(IMG, noise=0.1, spacing=(1.0, -1.0)), ValueError, r"spacing must be in"),
])
def test_validation_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
