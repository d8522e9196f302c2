"""The feature bank: hand-checkable responses, equality with scipy/scikit-image, validation."""

import numpy as np
import pytest
from scipy import ndimage

from medseg_course.classical.features import (
    DEFAULT_SIGMAS,
    FEATURE_FAMILIES,
    feature_names,
    hessian_eigenvalues,
    local_std,
    n_features,
    pixel_features,
)


@pytest.mark.parametrize("n_channels, sigmas, features, expected", [
    (1, (1,), ("intensity",), 1),
    (1, (1, 2), ("intensity", "gaussian", "gradient"), 5),
    (1, (1, 2, 4), ("hessian",), 6),
    (3, (1, 2), ("intensity", "log"), 9),
    (1, DEFAULT_SIGMAS, FEATURE_FAMILIES, 25),
    (3, DEFAULT_SIGMAS, FEATURE_FAMILIES, 75),
    (2, (3,), ("std", "intensity"), 4),
])
def test_counts_names_and_stack_agree(n_channels, sigmas, features, expected):
    assert n_features(n_channels, sigmas, features) == expected
    names = feature_names(n_channels, sigmas, features)
    assert len(names) == expected and len(set(names)) == expected
    image = np.random.default_rng(0).random((n_channels, 12, 14))
    stack = pixel_features(image, sigmas, features)
    assert stack.shape == (expected, 12, 14) and stack.dtype == np.float32


def test_names_follow_channel_family_sigma_order():
    assert feature_names(1, (1, 2), ("gaussian", "hessian")) == [
        "gaussian σ=1", "gaussian σ=2", "hessian λ1 σ=1", "hessian λ2 σ=1", "hessian λ1 σ=2", "hessian λ2 σ=2"]
    assert feature_names(3, (1,), ("intensity",)) == ["R intensity", "G intensity", "B intensity"]
    assert feature_names(2, (1.5,), ("std",)) == ["c0 std σ=1.5", "c1 std σ=1.5"]


def test_every_plane_equals_its_scipy_filter():
    image = np.random.default_rng(1).random((30, 34)).astype(np.float32)
    sigmas = (1.0, 2.5)
    stack = pixel_features(image, sigmas, ("intensity", "gaussian", "gradient", "log"))
    np.testing.assert_array_equal(stack[0], image)
    for i, s in enumerate(sigmas):
        np.testing.assert_allclose(stack[1 + i], ndimage.gaussian_filter(image, s), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(stack[3 + i], ndimage.gaussian_gradient_magnitude(image, s), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(stack[5 + i], ndimage.gaussian_laplace(image, s), rtol=1e-6, atol=1e-7)


def test_hessian_matches_scikit_image():
    from skimage.feature import hessian_matrix, hessian_matrix_eigvals

    # same quantity, computed differently (two first derivatives at sigma / sqrt(2)): equal to
    # 1 % of the range away from the border
    image = ndimage.gaussian_filter(np.random.default_rng(2).random((40, 46)), 2.0)
    for sigma in (1.0, 3.0):
        ours = hessian_eigenvalues(image, sigma)
        theirs = hessian_matrix_eigvals(hessian_matrix(image, sigma, mode="reflect", order="rc",
                                                       use_gaussian_derivatives=True))
        inner = np.s_[:, 12:-12, 12:-12]
        assert np.abs(ours[inner] - theirs[inner]).max() < 0.01 * np.abs(theirs).max()


def test_hand_checkable_responses():
    rr, cc = np.mgrid[:41, :41].astype(float)
    inner = np.s_[15:26, 15:26]                     # far from the border: exact derivatives
    quad = (rr - 20) ** 2 + 3 * (cc - 20) ** 2       # Hessian diag(2, 6): eigenvalues 6 and 2
    l1, l2 = hessian_eigenvalues(quad, 1.0)
    # (to 1 %: the Gaussian-derivative kernels are sampled and truncated at 4 sigma)
    np.testing.assert_allclose(l1[inner], 6.0, rtol=1e-2)
    np.testing.assert_allclose(l2[inner], 2.0, rtol=1e-2)
    # the Laplacian of Gaussian of that quadratic is 2 + 6, whatever sigma
    np.testing.assert_allclose(pixel_features(quad, 2.0, "log")[0][inner], 8.0, rtol=1e-2)
    # the gradient magnitude of a ramp of slope 0.5 is 0.5 inside
    ramp = 0.5 * cc
    np.testing.assert_allclose(pixel_features(ramp, 1.0, "gradient")[0][inner], 0.5, atol=1e-4)
    # smoothing keeps a constant image, whose gradient, LoG and local std are 0
    flat = pixel_features(np.full((16, 16), 0.7), (1, 2), ("gaussian", "gradient", "log", "std"))
    np.testing.assert_allclose(flat[:2], 0.7, atol=1e-6)
    np.testing.assert_allclose(flat[2:], 0.0, atol=1e-3)   # scipy's sampled LoG kernel sums to ~1e-4


def test_local_std_of_stripes_and_blob_signs():
    stripes = np.tile([0.0, 1.0], (20, 10))
    assert abs(float(local_std(stripes, 3.0)[10, 10]) - 0.5) < 1e-3
    rr, cc = np.mgrid[-10:11, -10:11]
    dark_blob = -np.exp(-(rr**2 + cc**2) / 8.0)
    l1, l2 = hessian_eigenvalues(dark_blob, 1.0)[:, 10, 10]
    assert l1 > 0 and l2 > 0                          # a dark blob: both positive


def test_rgb_planes_are_per_channel_and_channel_major():
    rgb = np.random.default_rng(3).random((3, 20, 22)).astype(np.float32)
    stack = pixel_features(rgb, (1, 2), ("intensity", "gaussian"))
    for c in range(3):
        np.testing.assert_array_equal(stack[3 * c:3 * c + 3], pixel_features(rgb[c], (1, 2), ("intensity", "gaussian")))


def test_integer_image_is_filtered_as_float():
    image = (np.arange(64).reshape(8, 8) * 3).astype(np.uint8)
    stack = pixel_features(image, 1.0, "gaussian")
    np.testing.assert_allclose(stack[0], ndimage.gaussian_filter(image.astype(np.float32), 1.0), rtol=1e-6)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"image": np.zeros((16, 16, 3))}, ValueError, "channel-last"),
    ({"image": np.zeros((2, 3, 8, 8))}, ValueError, "(C, H, W)"),
    ({"image": np.full((8, 8), np.nan)}, ValueError, "NaN"),
    ({"image": np.zeros((8, 8), bool)}, TypeError, "real-valued"),
    ({"image": np.zeros((1, 8))}, ValueError, "at least 2x2"),
    ({"sigmas": 0}, ValueError, "positive finite"),
    ({"sigmas": ()}, ValueError, "at least one scale"),
    ({"sigmas": (1, 1)}, ValueError, "repeat a scale"),
    ({"sigmas": "12"}, ValueError, "positive finite"),
    ({"sigmas": None}, TypeError, "sequence of positive numbers"),
    ({"features": ("gaussian", "sobel")}, ValueError, "unknown feature family 'sobel'"),
    ({"features": ()}, ValueError, "at least one family"),
    ({"features": ("log", "log")}, ValueError, "repeat a family"),
    ({"features": 3}, TypeError, "sequence of family names"),
])
def test_validation_errors(kwargs, error, message):
    args = {"image": np.zeros((8, 8)), "sigmas": (1,), "features": ("gaussian",), **kwargs}
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        pixel_features(args["image"], args["sigmas"], args["features"])


def test_single_filter_and_count_validation():
    with pytest.raises(ValueError, match="2D"):
        local_std(np.zeros((3, 8, 8)), 1.0)
    with pytest.raises(ValueError, match="2D"):
        hessian_eigenvalues(np.zeros((3, 8, 8)), 1.0)
    with pytest.raises(ValueError, match="n_channels"):
        n_features(0)
