"""Questions of notebook 01_medical_images: physical volume, normalisation, windowing, Dice.

Introduced in 01_medical_images.
"""

from __future__ import annotations

import numpy as np

from medseg_course.data import transforms
from medseg_course.exercises.engine import Case, FunctionQuestion, Incorrect, Question, as_number, compare_values
from medseg_course.exercises.engine import summary as _summary

NOTEBOOK = "01_medical_images"


# -- physical volume ----------------------------------------------------------------------------

def reference_volume_ml(mask, spacing) -> float:
    """Physical volume of the non-zero voxels of ``mask``, in millilitres.

    Parameters
    ----------
    mask : (D, H, W) ndarray
        Binary mask or label map; every non-zero voxel counts.
    spacing : sequence of 3 floats
        Voxel size in millimetres along each axis.

    Returns
    -------
    float
        Volume in mL (1 mL = 1000 mm^3).

    Examples
    --------
    >>> reference_volume_ml(np.ones((10, 10, 10)), spacing=(1.0, 1.0, 2.0))
    2.0

    Introduced in 01_medical_images.
    """
    mask = np.asarray(mask)
    spacing = np.asarray(spacing, dtype=np.float64)
    if spacing.shape != (mask.ndim,):
        raise ValueError(f"spacing must have one value per axis of mask ({mask.ndim}), got {spacing.tolist()}")
    return float(np.count_nonzero(mask) * np.prod(spacing) / 1000.0)


def _volume_cases(device):
    rng = np.random.default_rng(1)
    yield Case((np.ones((10, 10, 10), dtype=np.uint8), (1.0, 1.0, 1.0)), label="a 10 mm cube")
    labels = (rng.random((20, 24, 16)) > 0.6).astype(np.int64) * rng.integers(1, 3, (20, 24, 16))
    yield Case((labels, (1.0, 1.0, 3.0)), label="a label map with 3 mm slices")
    yield Case((rng.random((8, 9, 10)) > 0.5, (0.7, 0.7, 2.5)), label="a boolean mask, anisotropic voxels")


def _compare_volume(got, expected, case):
    mask, spacing = case.args
    n = np.count_nonzero(mask)
    voxel = float(np.prod(spacing))
    value = as_number(got, unit="mL")
    if np.isclose(value, expected * 1000):
        raise Incorrect("Your result is 1000 times too large: that is mm^3. One millilitre is 1000 mm^3.")
    if np.isclose(value, n / 1000) and voxel != 1.0:
        raise Incorrect("Your result ignores the voxel spacing: multiply the voxel count by the volume of "
                        "one voxel (the product of the spacing).")
    if np.isclose(value, np.asarray(mask, dtype=np.float64).sum() * voxel / 1000) and np.max(mask) > 1:
        raise Incorrect("Your function adds up the labels, so a voxel of class 2 counts twice. "
                        "Count the non-zero voxels instead.")
    compare_values(value, expected, what="Your function's result", rtol=1e-6)


volume_ml = FunctionQuestion(
    NOTEBOOK, "volume_ml", "Physical volume of a mask in millilitres", points=1,
    reference=reference_volume_ml, cases=_volume_cases, compare=_compare_volume,
    hints=["Count the voxels that are not background, then multiply by the volume of one voxel.",
           "The volume of one voxel is np.prod(spacing) in mm^3, and 1 mL = 1000 mm^3."],
    solution_code='''
    def my_volume_ml(mask, spacing):
        return np.count_nonzero(mask) * np.prod(spacing) / 1000.0
    ''',
)


# -- z-score normalisation ----------------------------------------------------------------------

def _zscore_cases(device):
    rng = np.random.default_rng(2)
    yield Case((rng.normal(800.0, 150.0, (12, 14, 10)).astype(np.float32),), label="an MRI-like float32 volume")
    yield Case((rng.integers(0, 256, (9, 11, 7), dtype=np.uint8),), label="a uint8 volume")
    yield Case((np.full((4, 5, 6), 42.0),), label="a constant volume")


def _compare_zscore(got, expected, case):
    got_np = np.asarray(got) if not hasattr(got, "detach") else got.detach().cpu().numpy()
    if isinstance(got_np, np.ndarray) and got_np.shape == expected.shape and got_np.dtype.kind == "f" \
            and np.all(np.isfinite(got_np)) and np.ptp(expected) > 0:
        if got_np.min() >= 0 and np.isclose(got_np.max(), 1.0, atol=1e-4):
            raise Incorrect("Your result lies in [0, 1]: that is min-max scaling. A z-score subtracts the "
                            "mean and divides by the standard deviation.")
        if abs(float(got_np.mean())) > 1e-3:
            raise Incorrect(f"The mean of your result is {float(got_np.mean()):.3g}, but a z-score has mean 0.")
        volume = np.asarray(case.args[0], dtype=np.float64)
        sample_std = (volume - volume.mean()) / volume.std(ddof=1)
        if np.allclose(got_np, sample_std, atol=1e-4):
            raise Incorrect("You divided by the sample standard deviation (ddof=1; torch's default "
                            "unbiased std). Use the population standard deviation: np.std(volume), "
                            "or tensor.std(unbiased=False).")
        if not np.isclose(float(got_np.std()), 1.0, atol=1e-3):
            raise Incorrect(f"The standard deviation of your result is {float(got_np.std()):.3g}, "
                            "but a z-score has standard deviation 1.")
    compare_values(got, expected, what="Your function's result", rtol=1e-4, atol=1e-4, check_dtype="float")


zscore = FunctionQuestion(
    NOTEBOOK, "zscore", "Z-score normalisation of a volume", points=2,
    reference=transforms.zscore, cases=_zscore_cases, compare=_compare_zscore,
    hints=["Convert to float first (volume.astype(np.float32)), so the result is a float array even for a uint8 volume.",
           "Subtract volume.mean(), divide by volume.std(); a constant volume has std 0, so return zeros there."],
    solution_code='''
    def my_zscore(volume):
        volume = np.asarray(volume, dtype=np.float32)
        std = volume.std()
        if std == 0:
            return np.zeros_like(volume)
        return (volume - volume.mean()) / std
    ''',
)


# -- CT windowing ---------------------------------------------------------------------------------

def _window_cases(device):
    yield Case((np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0]), 40.0, 400.0), label="soft-tissue window")
    yield Case((np.linspace(-1200, 400, 64).reshape(8, 8), -600.0, 1500.0), label="lung window")
    yield Case((np.arange(-50, 50, dtype=np.int16).reshape(10, 10), 0.0, 20.0), label="an int16 image, narrow window")


def _compare_window(got, expected, case):
    got_np = np.asarray(got)
    if got_np.shape == expected.shape and got_np.dtype.kind == "f" and np.all(np.isfinite(got_np)):
        if got_np.min() < 0 or got_np.max() > 1:
            raise Incorrect(f"Your result ranges from {got_np.min():.3g} to {got_np.max():.3g}; values "
                            "outside the window should be clipped to 0 and 1 (np.clip).")
    compare_values(got, expected, what="Your function's result", rtol=1e-5, atol=1e-5, check_dtype="float")


window = FunctionQuestion(
    NOTEBOOK, "window", "CT intensity windowing", points=2,
    reference=transforms.window, cases=_window_cases, compare=_compare_window,
    hints=["The window runs from level - width/2 to level + width/2; map that interval linearly to [0, 1].",
           "(image - (level - width / 2)) / width, then np.clip(..., 0, 1); convert to float first."],
    solution_code='''
    def my_window(image, level, width):
        image = np.asarray(image, dtype=np.float32)
        return np.clip((image - (level - width / 2)) / width, 0.0, 1.0)
    ''',
)


# -- Dice -----------------------------------------------------------------------------------------

def reference_dice(pred, target) -> float:
    """Dice coefficient of two binary masks: 2|P∩T| / (|P| + |T|), 1.0 when both are empty.

    Delegates to :func:`medseg_course.metrics.dice`, the course's reference metric.

    Introduced in 01_medical_images.
    """
    from medseg_course import metrics

    return float(metrics.dice(np.asarray(pred).astype(bool), np.asarray(target).astype(bool)))


def _square(shape, top_left, size):
    mask = np.zeros(shape, dtype=bool)
    mask[top_left[0]:top_left[0] + size, top_left[1]:top_left[1] + size] = True
    return mask


def _dice_cases(device):
    rng = np.random.default_rng(3)
    yield Case((_square((40, 40), (5, 5), 20), _square((40, 40), (7, 5), 20)), label="a 20x20 square shifted by 2 px")
    yield Case((rng.random((10, 12, 8)) > 0.5, rng.random((10, 12, 8)) > 0.4), label="random 3D masks")
    yield Case((_square((16, 16), (0, 0), 8).astype(np.uint8), _square((16, 16), (8, 8), 8).astype(np.uint8)),
               label="uint8 masks that do not overlap")
    yield Case((np.zeros((8, 8), bool), np.zeros((8, 8), bool)), label="two empty masks")
    yield Case((np.zeros((8, 8), bool), _square((8, 8), (2, 2), 4)), label="an empty prediction of a non-empty target")
    yield Case((_square((8, 8), (2, 2), 4), np.zeros((8, 8), bool)), label="a non-empty prediction of an empty target")


def _compare_dice(got, expected, case):
    pred, target = (np.asarray(a).astype(bool) for a in case.args)
    value = as_number(got)
    if not np.isfinite(value):
        raise Incorrect("Your function returned NaN or inf. When both masks are empty, |P| + |T| = 0: "
                        "the course's rule is Dice = 1.0 there (both agree that nothing is present).")
    if pred.any() != target.any() and value != 0.0:
        raise Incorrect(f"Your function returned {value:g} when exactly one mask is empty. They share no "
                        "pixel, so Dice is 0.0; only two empty masks agree perfectly (1.0).")
    inter, union = np.logical_and(pred, target).sum(), np.logical_or(pred, target).sum()
    if union and inter and np.isclose(value, inter / union) and not np.isclose(value, expected):
        raise Incorrect("Your result is the IoU (Jaccard index), |P∩T| / |P∪T|. Dice counts the overlap "
                        "twice: 2|P∩T| / (|P| + |T|).")
    compare_values(value, expected, what="Your function's result", rtol=1e-6)


dice = FunctionQuestion(
    NOTEBOOK, "dice", "The Dice coefficient", points=3,
    reference=reference_dice, cases=_dice_cases, compare=_compare_dice,
    hints=["Dice = 2 |P ∩ T| / (|P| + |T|). Convert both masks to bool first.",
           "np.logical_and(p, t).sum() is |P ∩ T|; p.sum() is |P|. Handle two empty masks separately (return 1.0)."],
    solution_code='''
    def my_dice(pred, target):
        pred, target = np.asarray(pred, bool), np.asarray(target, bool)
        total = pred.sum() + target.sum()
        if total == 0:
            return 1.0
        return 2.0 * np.logical_and(pred, target).sum() / total
    ''',
)

QUESTIONS: list[Question] = [window, volume_ml, zscore, dice]


def summary():
    """Show this notebook's progress table."""
    return _summary(QUESTIONS)
