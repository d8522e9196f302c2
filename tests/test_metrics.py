"""Tests for medseg_course.metrics: hand-computed cases, empty-mask rules, torch == numpy, and
agreement with independent implementations (scikit-learn, scipy, MONAI)."""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from scipy.spatial.distance import directed_hausdorff

from medseg_course import metrics as M
from medseg_course.metrics import (
    assd,
    assd_torch,
    confusion_counts,
    confusion_counts_torch,
    dice,
    dice_torch,
    hausdorff,
    hausdorff_torch,
    hd95,
    hd95_torch,
    iou,
    iou_torch,
    precision,
    precision_torch,
    recall,
    recall_torch,
    segmentation_report,
    surface_distances,
)

OVERLAP = {"dice": dice, "iou": iou, "precision": precision, "recall": recall}
DISTANCE = {"hausdorff": hausdorff, "hd95": hd95, "assd": assd}
TORCH = {
    "dice": dice_torch, "iou": iou_torch, "precision": precision_torch, "recall": recall_torch,
    "hausdorff": hausdorff_torch, "hd95": hd95_torch, "assd": assd_torch,
}
NUMPY = {**OVERLAP, **DISTANCE}

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def square_pair(shift=2, axis=1):
    """A 20x20 square in a 32x32 image and the same square shifted by ``shift`` pixels."""
    target = np.zeros((32, 32), dtype=bool)
    target[6:26, 6:26] = True
    return np.roll(target, shift, axis=axis), target


def blobs(rng, shape, n=1, sigma=3.0, level=0.3):
    """Smooth random masks: thresholded Gaussian-filtered noise (realistic boundaries)."""
    out = []
    for _ in range(n):
        smooth = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
        out.append(smooth / smooth.std() > level)  # about 38% foreground for level 0.3
    return np.stack(out)


# --------------------------------------------------------------------------------------------
# hand-computed cases
# --------------------------------------------------------------------------------------------


def test_shifted_square_overlap_by_hand():
    # overlap 20 x 18 = 360 pixels; each square has 400, so FP = FN = 40; TN = 1024 - 440
    pred, target = square_pair()
    assert confusion_counts(pred, target) == (360, 40, 40, 584)
    assert dice(pred, target) == pytest.approx(0.9)  # 720 / 800
    assert iou(pred, target) == pytest.approx(9 / 11)  # 360 / 440
    assert precision(pred, target) == pytest.approx(0.9)  # 360 / 400
    assert recall(pred, target) == pytest.approx(0.9)


def test_shifted_square_surface_distances_by_hand():
    # Each square has 4 * 20 - 4 = 76 boundary pixels. From the shifted square to the original:
    #  - top/bottom rows: 18 pixels lie on the original's top/bottom row (0), the two beyond
    #    its right edge are 1 and 2 away                      -> 2 x (18 zeros, one 1, one 2)
    #  - left column (18 pixels between the rows): 2 from the original's left column, but the
    #    first and last are 1 from its top/bottom row           -> 16 twos, 2 ones
    #  - right column (18 pixels): 2 from the original's right column       -> 18 twos
    # i.e. 36 zeros, 4 ones, 36 twos; the reverse direction is the mirror image.
    pred, target = square_pair()
    d_pt, d_tp = surface_distances(pred, target)
    for d in (d_pt, d_tp):
        values, counts = np.unique(d, return_counts=True)
        assert values.tolist() == [0.0, 1.0, 2.0]
        assert counts.tolist() == [36, 4, 36]
    assert hausdorff(pred, target) == 2.0
    # 95th percentile of 76 sorted values: index 0.95 * 75 = 71.25, between two 2s
    assert hd95(pred, target) == 2.0
    assert assd(pred, target) == pytest.approx((4 * 1 + 36 * 2) / 76)  # = 1.0 exactly
    assert assd(pred, target) == 1.0


def test_anisotropic_spacing_by_hand():
    # Shift along x with 0.5 mm pixels in x: every x-distance halves. Left column: min(2 * 0.5,
    # distance to top/bottom row >= 1) = 1.0 for all 18; right column 1.0 for all 18; the two
    # overhanging pixels of each row 0.5 and 1.0: sum = 18 + 18 + 2 * 1.5 = 39 per direction.
    pred, target = square_pair()
    spacing = (1.0, 0.5)
    assert hausdorff(pred, target, spacing=spacing) == 1.0
    assert hd95(pred, target, spacing=spacing) == 1.0
    assert assd(pred, target, spacing=spacing) == pytest.approx(39 / 76)
    # Dice does not depend on spacing
    assert dice(pred, target) == pytest.approx(0.9)
    # the same pair transposed with spacing transposed gives the same distances
    for name, fn in DISTANCE.items():
        assert fn(pred.T, target.T, spacing=(0.5, 1.0)) == pytest.approx(fn(pred, target, spacing=spacing))


@pytest.mark.parametrize(
    "shape, a, b, spacing, expected",
    [
        ((8, 8), (0, 0), (3, 4), (2.0, 1.0), math.sqrt(6**2 + 4**2)),
        ((8, 8), (0, 0), (3, 4), 0.5, 2.5),
        ((4, 5, 6), (0, 0, 0), (1, 2, 2), (3.0, 1.0, 1.0), math.sqrt(9 + 4 + 4)),
    ],
)
def test_single_voxels_distance_is_physical_distance(shape, a, b, spacing, expected):
    pred = np.zeros(shape, dtype=bool)
    target = np.zeros(shape, dtype=bool)
    pred[a] = True
    target[b] = True
    for fn in DISTANCE.values():
        assert fn(pred, target, spacing=spacing) == pytest.approx(expected)
    assert dice(pred, target) == 0.0


def test_3d_cube_shift_by_hand():
    # a 10^3 cube shifted by one slice along z, 2 mm slices: overlap 9 x 10 x 10
    target = np.zeros((14, 14, 14), dtype=np.uint8)
    target[2:12, 2:12, 2:12] = 1
    pred = np.roll(target, 1, axis=0)
    assert dice(pred, target) == pytest.approx(2 * 900 / 2000)
    assert iou(pred, target) == pytest.approx(900 / 1100)
    # the far face of each cube is one slice (2 mm) from the other's face; nothing is farther
    assert hausdorff(pred, target, spacing=(2.0, 1.0, 1.0)) == 2.0
    assert hausdorff(pred, target, spacing=(2.0, 0.7, 0.7)) == 2.0
    assert hausdorff(pred, target) == 1.0


def test_identical_masks_score_perfectly():
    rng = np.random.default_rng(1)
    mask = blobs(rng, (20, 24, 22))[0]
    assert dice(mask, mask) == iou(mask, mask) == precision(mask, mask) == recall(mask, mask) == 1.0
    assert hausdorff(mask, mask) == hd95(mask, mask) == assd(mask, mask) == 0.0


def test_masks_touching_the_image_edge_have_a_boundary_there():
    # the whole image is foreground: its boundary is the image's frame
    full = np.ones((5, 6), dtype=bool)
    d_pt, d_tp = surface_distances(full, full)
    assert d_pt.size == 5 * 6 - 3 * 4
    inner = np.zeros((5, 6), dtype=bool)
    inner[1:4, 1:5] = True
    assert hausdorff(full, inner) == pytest.approx(math.sqrt(2))  # frame corner to inner corner


def test_input_types_are_accepted():
    pred, target = square_pair()
    expected = dice(pred, target)
    assert dice(pred.astype(np.uint8), target.astype(np.int64)) == expected
    assert dice(pred.astype(np.float32), target.astype(float)) == expected
    assert dice(pred.tolist(), target.tolist()) == expected
    assert dice(torch.as_tensor(pred), torch.as_tensor(target)) == expected
    assert isinstance(dice(pred, target), float)
    assert isinstance(hd95(pred, target), float)


# --------------------------------------------------------------------------------------------
# label maps
# --------------------------------------------------------------------------------------------


def label_maps():
    target = np.zeros((32, 32), dtype=np.int64)
    target[6:26, 6:26] = 1
    target[10:14, 10:14] = 2
    pred = np.roll(target, 2, axis=1)
    return pred, target


@pytest.mark.parametrize("name", list(NUMPY))
def test_per_class_equals_binary_per_class_in_the_order_given(name):
    fn = NUMPY[name]
    pred, target = label_maps()
    values = fn(pred, target, labels=[2, 0, 1, 7])
    assert isinstance(values, np.ndarray) and values.shape == (4,)
    for value, label in zip(values[:3], [2, 0, 1]):
        assert value == pytest.approx(fn(pred == label, target == label))
    # class 7 is absent from both: the empty rule
    assert values[3] == (1.0 if name in OVERLAP else 0.0)
    assert np.isnan(fn(pred, target, labels=[7], empty=np.nan)[0])


def test_per_class_by_hand():
    pred, target = label_maps()
    # class 2 (4x4 square shifted by 2): overlap 4 x 2 = 8 -> Dice 16 / 32
    np.testing.assert_allclose(dice(pred, target, labels=[1, 2]), [dice(pred == 1, target == 1), 0.5])
    counts = confusion_counts(pred, target, labels=[1, 2])
    assert counts.tp.tolist()[1] == 8 and counts.fp.tolist()[1] == 8 and counts.fn.tolist()[1] == 8


# --------------------------------------------------------------------------------------------
# empty masks
# --------------------------------------------------------------------------------------------


def test_both_empty_defaults_and_empty_argument():
    z = np.zeros((6, 7), dtype=bool)
    for fn in OVERLAP.values():
        assert fn(z, z) == 1.0
        assert fn(z, z, empty=0.0) == 0.0
        assert np.isnan(fn(z, z, empty=np.nan))
    for fn in DISTANCE.values():
        assert fn(z, z) == 0.0
        assert np.isnan(fn(z, z, empty=np.nan))
    d_pt, d_tp = surface_distances(z, z)
    assert d_pt.size == d_tp.size == 0


@pytest.mark.parametrize("empty_side", ["pred", "target"])
def test_exactly_one_empty(empty_side):
    _, mask = square_pair()
    z = np.zeros_like(mask)
    pred, target = (z, mask) if empty_side == "pred" else (mask, z)
    for fn in OVERLAP.values():  # including the 0/0 precision (empty pred) or recall (empty target)
        assert fn(pred, target) == 0.0
        assert fn(pred, target, empty=np.nan) == 0.0  # `empty` only concerns both-empty
    for fn in DISTANCE.values():
        assert fn(pred, target) == math.inf
    d_pt, d_tp = surface_distances(pred, target)
    assert np.all(np.isinf(np.concatenate([d_pt, d_tp]))) and d_pt.size + d_tp.size == 76


# --------------------------------------------------------------------------------------------
# segmentation_report
# --------------------------------------------------------------------------------------------


def test_segmentation_report_matches_the_functions():
    pred, target = label_maps()
    spacing = (0.8, 1.3)
    report = segmentation_report(pred, target, labels=[1, 2, 3], spacing=spacing,
                                 class_names={1: "organ", 2: "lesion"})
    assert list(report) == ["organ", "lesion", 3]
    for key, label in [("organ", 1), ("lesion", 2)]:
        entry = report[key]
        assert list(entry)[:7] == list(M.REPORT_METRICS)
        for name, fn in NUMPY.items():
            kwargs = {} if name in OVERLAP else {"spacing": spacing}
            assert entry[name] == pytest.approx(fn(pred == label, target == label, **kwargs))
        assert entry["target_volume"] == pytest.approx((target == label).sum() * 0.8 * 1.3)
        assert entry["pred_volume"] == pytest.approx((pred == label).sum() * 0.8 * 1.3)
    assert report[3]["dice"] == 1.0 and report[3]["hd95"] == 0.0
    nan_report = segmentation_report(pred, target, labels=[3], empty_overlap=np.nan, empty_distance=np.nan)
    assert np.isnan(nan_report[3]["dice"]) and np.isnan(nan_report[3]["assd"])


def test_segmentation_report_binary_and_names():
    pred, target = square_pair()
    assert list(segmentation_report(pred, target)) == [1]
    report = segmentation_report(pred, target, class_names=["background", "liver"])
    assert list(report) == ["liver"]
    assert report["liver"]["dice"] == pytest.approx(0.9) and report["liver"]["assd"] == 1.0
    assert segmentation_report(pred, target, percentile=100)[1]["hd95"] == 2.0


# --------------------------------------------------------------------------------------------
# torch batched == numpy
# --------------------------------------------------------------------------------------------


def numpy_reference(name, pred, target, spacing):
    """(B, C) array from the numpy metric applied to each case and channel."""
    fn = NUMPY[name]
    kwargs = {} if name in OVERLAP else {"spacing": spacing}
    return np.array([[fn(p, t, **kwargs) for p, t in zip(pb, tb)] for pb, tb in zip(pred, target)])


def random_onehot_batch(rng, spatial, batch=3, channels=2, empties=True):
    pred = blobs(rng, spatial, batch * channels).reshape(batch, channels, *spatial)
    target = blobs(rng, spatial, batch * channels).reshape(batch, channels, *spatial)
    if empties:
        pred[0, 1] = False  # one empty prediction
        target[1, 1] = False  # one empty target
        pred[2, 0] = target[2, 0] = False  # both empty
    return pred, target


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(TORCH))
@pytest.mark.parametrize(
    "spatial, spacing", [((23, 30), (0.7, 1.3)), ((9, 14, 11), (2.5, 0.8, 1.1))], ids=["2d", "3d"]
)
def test_torch_onehot_matches_numpy(name, spatial, spacing, device):
    rng = np.random.default_rng(sum(spatial))
    pred, target = random_onehot_batch(rng, spatial)
    kwargs = {} if name in OVERLAP else {"spacing": spacing}
    out = TORCH[name](torch.as_tensor(pred, device=device), torch.as_tensor(target, device=device), **kwargs)
    assert out.shape == (3, 2) and out.device.type == device and out.dtype == torch.float64
    np.testing.assert_allclose(out.cpu().numpy(), numpy_reference(name, pred, target, spacing), rtol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(TORCH))
def test_torch_label_maps_match_numpy_labels(name, device):
    rng = np.random.default_rng(7)
    shape = (2, 1, 10, 12, 9)
    target = ndi.gaussian_filter(rng.standard_normal(shape), (0, 0, 1.5, 1.5, 1.5))
    target = np.digitize(target / target.std(), [-0.2, 0.2, 0.5])  # labels 0..3
    assert set(np.unique(target)) == {0, 1, 2, 3}
    pred = np.where(rng.random(shape) < 0.1, rng.integers(0, 4, shape), target)
    pred[1][pred[1] == 3] = 0  # class 3 missing from the second prediction
    spacing = (3.0, 1.0, 0.9)
    kwargs = {} if name in OVERLAP else {"spacing": spacing}
    out = TORCH[name](torch.as_tensor(pred, device=device), torch.as_tensor(target, device=device),
                      num_classes=5, **kwargs)
    assert out.shape == (2, 5)
    expected = np.stack([NUMPY[name](p[0], t[0], labels=range(5), **kwargs) for p, t in zip(pred, target)])
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-12)
    assert out[0, 4] == (1.0 if name in OVERLAP else 0.0)  # class 4 absent everywhere


@pytest.mark.parametrize("device", DEVICES)
def test_torch_random_noise_matches_numpy(device):
    # the worst case for boundaries: salt-and-pepper masks, almost every voxel is on a boundary
    rng = np.random.default_rng(3)
    pred = rng.random((2, 1, 17, 19)) > 0.5
    target = rng.random((2, 1, 17, 19)) > 0.6
    for name in ("hausdorff", "hd95", "assd"):
        out = TORCH[name](torch.as_tensor(pred, device=device), torch.as_tensor(target, device=device),
                          spacing=(1.0, 2.0))
        np.testing.assert_allclose(out.cpu().numpy(), numpy_reference(name, pred, target, (1.0, 2.0)),
                                   rtol=1e-12)


def test_torch_percentile_and_empty_arguments():
    rng = np.random.default_rng(11)
    pred, target = random_onehot_batch(rng, (20, 20))
    pt, tt = torch.as_tensor(pred), torch.as_tensor(target)
    for q in (0, 50, 99.5, 100):
        expected = [[hd95(p, t, percentile=q) for p, t in zip(pb, tb)] for pb, tb in zip(pred, target)]
        np.testing.assert_allclose(hd95_torch(pt, tt, percentile=q).numpy(), expected, rtol=1e-12)
    assert torch.isnan(dice_torch(pt, tt, empty=float("nan"))[2, 0])
    assert torch.isnan(assd_torch(pt, tt, empty=float("nan"))[2, 0])
    assert torch.isinf(hd95_torch(pt, tt)[0, 1]) and torch.isinf(hd95_torch(pt, tt)[1, 1])
    assert dice_torch(pt, tt)[0, 1] == 0 and precision_torch(pt, tt)[0, 1] == 0
    assert recall_torch(pt, tt)[1, 1] == 0
    all_empty = torch.zeros(2, 3, 5, 5, dtype=torch.bool)
    assert torch.equal(hausdorff_torch(all_empty, all_empty), torch.zeros(2, 3, dtype=torch.float64))


def test_torch_counts_and_no_grad():
    pred, target = square_pair()
    p = torch.as_tensor(pred, dtype=torch.float32)[None, None].requires_grad_()
    t = torch.as_tensor(target, dtype=torch.float32)[None, None]
    counts = confusion_counts_torch(p, t)
    assert [c.item() for c in counts] == [360, 40, 40, 584]
    out = dice_torch(p, t)
    assert not out.requires_grad and out.item() == pytest.approx(0.9)


# --------------------------------------------------------------------------------------------
# independent implementations
# --------------------------------------------------------------------------------------------


def test_overlap_matches_scikit_learn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    for shape in [(40, 50), (12, 20, 16)]:
        smooth = ndi.gaussian_filter(rng.standard_normal(shape), 2)
        target = np.digitize(smooth / smooth.std(), [-0.3, 0.3])
        assert set(np.unique(target)) == {0, 1, 2}
        pred = np.where(rng.random(shape) < 0.15, rng.integers(0, 3, shape), target)
        y_true, y_pred = target.ravel(), pred.ravel()
        labels = [0, 1, 2]
        for ours, theirs in [
            (dice, sk.f1_score), (iou, sk.jaccard_score),
            (precision, sk.precision_score), (recall, sk.recall_score),
        ]:
            expected = theirs(y_true, y_pred, labels=labels, average=None)
            np.testing.assert_allclose(ours(pred, target, labels=labels), expected, rtol=1e-12)
            assert ours(pred == 1, target == 1) == pytest.approx(theirs(y_true == 1, y_pred == 1), rel=1e-12)
    # the empty-mask rule is scikit-learn's zero_division: 1.0 for both empty, 0.0 for one empty
    z, one = np.zeros(10, dtype=bool), np.eye(1, 10, 3, dtype=bool)[0]
    assert dice(z[None], z[None]) == sk.f1_score(z, z, zero_division=1.0)
    assert precision(z[None], one[None]) == sk.precision_score(one, z, zero_division=0.0)
    assert recall(one[None], z[None]) == sk.recall_score(z, one, zero_division=0.0)


def independent_boundary_points(mask, spacing):
    """Boundary voxels found by looking at the 2 * ndim face neighbours (outside = background),
    without scipy.ndimage; returned as physical coordinates."""
    padded = np.pad(mask, 1, constant_values=False)
    interior = mask.copy()
    for axis in range(mask.ndim):
        for shift in (-1, 1):
            interior &= np.roll(padded, shift, axis=axis)[tuple(slice(1, -1) for _ in range(mask.ndim))]
    return np.argwhere(mask & ~interior) * np.asarray(spacing, dtype=float)


@pytest.mark.parametrize(
    "shape, spacing", [((40, 45), (1.0, 1.0)), ((40, 45), (0.6, 1.7)), ((14, 20, 18), (2.5, 0.9, 0.9))]
)
def test_hausdorff_matches_scipy_directed_hausdorff(shape, spacing):
    rng = np.random.default_rng(len(shape) * 10 + int(spacing[0] * 10))
    for _ in range(3):
        pred, target = blobs(rng, shape, 2)
        a = independent_boundary_points(pred, spacing)
        b = independent_boundary_points(target, spacing)
        expected = max(directed_hausdorff(a, b)[0], directed_hausdorff(b, a)[0])
        assert hausdorff(pred, target, spacing=spacing) == pytest.approx(expected, rel=1e-12)
        d_pt, d_tp = surface_distances(pred, target, spacing=spacing)
        assert (d_pt.size, d_tp.size) == (len(a), len(b))


@pytest.mark.parametrize(
    "spatial, spacing",
    [((48, 40), None), ((48, 40), (0.7, 1.9)), ((16, 24, 20), (2.0, 0.8, 0.8))],
    ids=["2d", "2d-aniso", "3d-aniso"],
)
def test_distances_match_monai(spatial, spacing):
    """MONAI uses the same boundary (scipy erosion, face connectivity), the same per-direction
    percentile (torch.quantile, linear) and pools both directions for the symmetric ASD; its
    distances are float32, hence rtol=1e-5. It returns nan where both masks are empty (we return
    ``empty``) and inf where one is, like us; here every mask is non-empty."""
    monai_metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(21)
    pred, target = random_onehot_batch(rng, spatial, batch=2, channels=2, empties=False)
    assert pred.reshape(4, -1).any(1).all() and target.reshape(4, -1).any(1).all()
    pt, tt = torch.as_tensor(pred, dtype=torch.float32), torch.as_tensor(target, dtype=torch.float32)
    sp = spacing if spacing is not None else (1.0,) * len(spatial)
    kw = dict(include_background=True, spacing=spacing)
    with _no_warning_check():
        hd_m = monai_metrics.compute_hausdorff_distance(pt, tt, **kw)
        hd95_m = monai_metrics.compute_hausdorff_distance(pt, tt, percentile=95, **kw)
        asd_m = monai_metrics.compute_average_surface_distance(pt, tt, symmetric=True, **kw)
    for ours_name, theirs in [("hausdorff", hd_m), ("hd95", hd95_m), ("assd", asd_m)]:
        ours = numpy_reference(ours_name, pred, target, sp)
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-5)
        np.testing.assert_allclose(TORCH[ours_name](pt, tt, spacing=sp).numpy(), theirs.numpy(), rtol=1e-5)
    dice_m = monai_metrics.compute_dice(pt, tt, include_background=True)
    np.testing.assert_allclose(dice_torch(pt, tt).numpy(), dice_m.numpy(), rtol=1e-6)


@contextlib.contextmanager
def _no_warning_check():
    """MONAI warns about empty masks and optional packages; these tests check values instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_monai_empty_conventions_differ_as_documented():
    monai_metrics = pytest.importorskip("monai.metrics")
    mask = torch.zeros(1, 2, 8, 8)
    mask[0, 1, 2:5, 2:5] = 1
    empty = torch.zeros_like(mask)
    with _no_warning_check():
        both = monai_metrics.compute_hausdorff_distance(empty, empty, include_background=True)
        one = monai_metrics.compute_hausdorff_distance(empty, mask, include_background=True)
    assert torch.isnan(both).all() and hausdorff_torch(empty, empty).eq(0).all()
    assert torch.isinf(one[0, 1]) and torch.isinf(hausdorff_torch(empty, mask)[0, 1])


# --------------------------------------------------------------------------------------------
# input validation: every error path, with its message
# --------------------------------------------------------------------------------------------

GOOD = np.zeros((6, 6), dtype=bool)


@pytest.mark.parametrize("fn", [dice, hd95, confusion_counts, surface_distances, segmentation_report])
def test_numpy_shape_mismatch(fn):
    with pytest.raises(ValueError, match=r"pred and target must have the same shape, got pred \(6, 6\) and target \(6, 7\)"):
        fn(GOOD, np.zeros((6, 7)))


@pytest.mark.parametrize("fn", list(NUMPY.values()))
def test_numpy_probabilities_are_refused(fn):
    probs = np.full((6, 6), 0.3)
    with pytest.raises(ValueError, match=r"pred has float values that are not whole numbers.*Threshold first, e.g. pred > 0.5"):
        fn(probs, GOOD)


def test_numpy_error_messages():
    with pytest.raises(ValueError, match=r"target has float values .* it looks like probabilities or logits.*target > 0.5"):
        dice(GOOD, np.full((6, 6), 0.7))
    with pytest.raises(ValueError, match=r"pred contains NaN or inf"):
        dice(np.full((6, 6), np.nan), GOOD)
    labels = np.zeros((6, 6), dtype=int)
    labels[1, 1], labels[2, 2] = 1, 2
    with pytest.raises(ValueError, match=r"pred must be a binary mask .* values \[0, 1, 2\].*labels=\[1, 2\].*pred == 1"):
        dice(labels, GOOD)
    with pytest.raises(ValueError, match=r"pred must be a 2D \(H, W\) or 3D \(D, H, W\) mask, got shape \(2, 1, 6, 6\); for a batch"):
        dice(np.zeros((2, 1, 6, 6)), np.zeros((2, 1, 6, 6)))
    with pytest.raises(ValueError, match=r"got shape \(6,\); reshape"):
        hd95(np.zeros(6), np.zeros(6))
    with pytest.raises(TypeError, match=r"pred must be a numeric array .* got dtype <U1"):
        dice(np.array([["a"]]), GOOD)
    with pytest.raises(TypeError, match=r"labels must be a sequence of integer class labels such as \[1, 2\], got 1; .*labels=\[1\]"):
        dice(labels, labels, labels=1)
    with pytest.raises(TypeError, match=r"labels must hold integers .* got 1.5"):
        dice(labels, labels, labels=[1, 1.5])
    with pytest.raises(ValueError, match=r"labels must name at least one class"):
        dice(labels, labels, labels=[])
    with pytest.raises(ValueError, match=r"labels must not repeat a class, got \[1, 1\]"):
        dice(labels, labels, labels=[1, 1])
    with pytest.raises(ValueError, match=r"spacing must have one value per axis of the mask \(2, in the order \(y, x\).* got 3 values"):
        hd95(GOOD, GOOD, spacing=(1, 1, 1))
    with pytest.raises(ValueError, match=r"\(3, in the order \(z, y, x\) for a \(D, H, W\) mask\), got 2 values"):
        assd(np.zeros((3, 4, 5)), np.zeros((3, 4, 5)), spacing=(1, 1))
    with pytest.raises(ValueError, match=r"spacing must hold positive, finite voxel sizes, got \(1.0, 0.0\)"):
        hausdorff(GOOD, GOOD, spacing=(1, 0))
    with pytest.raises(TypeError, match=r"spacing must be a number or a sequence of 2 numbers"):
        hausdorff(GOOD, GOOD, spacing="1mm")
    with pytest.raises(TypeError, match=r"empty must be a number \(float\('nan'\) allowed\), got None"):
        dice(GOOD, GOOD, empty=None)
    with pytest.raises(ValueError, match=r"percentile must be between 0 and 100, got 950"):
        hd95(GOOD, GOOD, percentile=950)
    with pytest.raises(TypeError, match=r"percentile must be a number"):
        hd95(GOOD, GOOD, percentile="95")
    with pytest.raises(TypeError, match=r"class_names must be a sequence indexed by label or a mapping"):
        segmentation_report(GOOD, GOOD, class_names=3)


T_GOOD = torch.zeros(2, 1, 6, 6, dtype=torch.bool)


@pytest.mark.parametrize("fn", list(TORCH.values()) + [confusion_counts_torch])
def test_torch_errors_common_to_all(fn):
    with pytest.raises(TypeError, match=r"pred must be a torch.Tensor, got ndarray; use the numpy functions"):
        fn(np.zeros((2, 1, 6, 6)), T_GOOD)
    with pytest.raises(ValueError, match=r"pred and target must have the same shape, got pred \(2, 1, 6, 6\) and target \(2, 1, 6, 7\)"):
        fn(T_GOOD, torch.zeros(2, 1, 6, 7))
    with pytest.raises(ValueError, match=r"pred has float values that are not whole numbers.*argmax\(dim=1, keepdim=True\)"):
        fn(torch.full((2, 1, 6, 6), 0.4), T_GOOD)


def test_torch_error_messages():
    with pytest.raises(TypeError, match=r"target must be a torch.Tensor, got list"):
        dice_torch(T_GOOD, [[0]])
    with pytest.raises(ValueError, match=r"must have shape \(B, C, H, W\) or \(B, C, D, H, W\), got \(6, 6\); add the missing axes, e.g. x\[None, None\]"):
        dice_torch(torch.zeros(6, 6), torch.zeros(6, 6))
    with pytest.raises(ValueError, match=r"got \(1, 1, 1, 2, 3, 4\)$"):
        dice_torch(torch.zeros(1, 1, 1, 2, 3, 4), torch.zeros(1, 1, 1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"target contains NaN or inf"):
        dice_torch(T_GOOD, torch.full((2, 1, 6, 6), float("nan")))
    with pytest.raises(ValueError, match=r"pred must hold one-hot / binary masks .* values range from 0 to 2: for label maps pass num_classes"):
        dice_torch(torch.tensor([0, 1, 2]).view(1, 1, 1, 3), torch.zeros(1, 1, 1, 3))
    with pytest.raises(TypeError, match=r"pred must be a bool, integer or float tensor, got torch.complex64"):
        dice_torch(torch.zeros(1, 1, 2, 2, dtype=torch.complex64), torch.zeros(1, 1, 2, 2))
    labels = torch.zeros(2, 1, 6, 6, dtype=torch.long)
    with pytest.raises(TypeError, match=r"num_classes must be an int such as 3, got 2.0"):
        dice_torch(labels, labels, num_classes=2.0)
    with pytest.raises(ValueError, match=r"num_classes must be at least 1, got 0"):
        dice_torch(labels, labels, num_classes=0)
    with pytest.raises(ValueError, match=r"with num_classes, pred and target must be label maps of shape \(B, 1, H, W\).*got \(2, 3, 6, 6\); take scores.argmax\(dim=1, keepdim=True\)"):
        dice_torch(torch.zeros(2, 3, 6, 6), torch.zeros(2, 3, 6, 6), num_classes=3)
    bad = labels.clone()
    bad[0, 0, 0, 0] = 4
    with pytest.raises(ValueError, match=r"target holds labels from 0 to 4, outside 0..2 for num_classes=3; raise num_classes to 5"):
        dice_torch(labels, bad, num_classes=3)
    negative = labels.clone()
    negative[0, 0, 0, 0] = -1
    with pytest.raises(ValueError, match=r"pred holds labels from -1 to 0"):
        dice_torch(negative, labels, num_classes=3)
    with pytest.raises(ValueError, match=r"pred has float values that are not whole numbers"):
        dice_torch(labels + 0.5, labels, num_classes=3)
    with pytest.raises(ValueError, match=r"pred contains NaN or inf values; a label map holds class labels"):
        dice_torch(torch.full((2, 1, 6, 6), float("inf")), labels, num_classes=3)
    with pytest.raises(TypeError, match=r"pred must be an integer or float tensor, got torch.complex64"):
        dice_torch(torch.zeros(2, 1, 6, 6, dtype=torch.complex64), labels, num_classes=3)
    with pytest.raises(ValueError, match=r"spacing must have one value per axis of the mask \(2, in the order \(y, x\)"):
        hd95_torch(T_GOOD, T_GOOD, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"percentile must be between 0 and 100, got -5"):
        hd95_torch(T_GOOD, T_GOOD, percentile=-5)
    with pytest.raises(TypeError, match=r"empty must be a number"):
        assd_torch(T_GOOD, T_GOOD, empty="zero")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_device_mismatch():
    with pytest.raises(ValueError, match=r"pred and target must be on the same device, got cpu and cuda:0"):
        dice_torch(T_GOOD, T_GOOD.cuda())


def test_boundary_f_score_counts_outline_pixels_within_the_tolerance():
    from medseg_course.metrics import boundary_f_score, surface_distances

    target = np.zeros((40, 40), dtype=bool)
    target[10:30, 10:30] = True
    pred = np.roll(target, 3, axis=1)
    d_pt, d_tp = surface_distances(pred, target)
    p, r = np.mean(d_pt <= 1.5), np.mean(d_tp <= 1.5)
    assert boundary_f_score(pred, target, tolerance=1.5) == pytest.approx(2 * p * r / (p + r))
    assert boundary_f_score(pred, target, tolerance=3) == 1.0
    assert boundary_f_score(target, target, tolerance=0) == 1.0
    assert boundary_f_score(pred, np.zeros_like(target)) == 0.0
    assert boundary_f_score(np.zeros_like(target), np.zeros_like(target)) == 1.0
    # physical spacing: 3 px along x at 0.5 mm is 1.5 mm
    assert boundary_f_score(pred, target, tolerance=1.5, spacing=(1.0, 0.5)) == 1.0
    labels = np.zeros((40, 40), dtype=int)
    labels[target] = 1
    labels[:5, :5] = 2
    assert boundary_f_score(labels, labels, labels=[1, 2]).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="tolerance must be a distance >= 0"):
        boundary_f_score(pred, target, tolerance=-1)
