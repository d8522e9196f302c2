"""Intensity transforms: normalisation and windowing of medical images.

Medical intensities have no fixed scale: an MRI volume may range up to 150 or up to 10^6 depending
on the scanner and its settings, while CT is calibrated in Hounsfield units. So every loader
normalises **per image or per volume**, and CT is shown through a **window** (level, width).

Introduced in 01_medical_images.
"""

from __future__ import annotations

import numpy as np

__all__ = ["zscore", "percentile_normalize", "window", "nuclei_bright"]


def _as_float_image(image, name: str = "image") -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); pass an image with at least one pixel")
    arr = arr.astype(np.float32, copy=True)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; replace them first, "
                         "e.g. np.nan_to_num(image)")
    return arr


def zscore(image, mask=None, eps: float = 1e-8) -> np.ndarray:
    """Shift and scale an image to zero mean and unit standard deviation.

    Parameters
    ----------
    image : ndarray, any shape
        Intensities; converted to float32 (the input is not modified).
    mask : bool ndarray, optional
        Compute the mean and standard deviation over these pixels only (for example the
        foreground, so that a large black background does not dominate the statistics).
    eps : float
        Guards against a constant image: its result is all zeros.

    Returns
    -------
    ndarray of float32, same shape as ``image``

    Examples
    --------
    >>> out = zscore(np.array([1.0, 2.0, 3.0]))
    >>> [round(float(v), 4) for v in out]
    [-1.2247, 0.0, 1.2247]

    Introduced in 01_medical_images.
    """
    arr = _as_float_image(image)
    values = arr
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != arr.shape:
            raise ValueError(f"mask must have the image's shape {arr.shape}, got {mask.shape}")
        if not mask.any():
            raise ValueError("mask selects no pixels; pass a mask with at least one True value or mask=None")
        values = arr[mask]
    mean = values.mean(dtype=np.float64)
    std = values.std(dtype=np.float64)
    return ((arr - mean) / max(std, eps)).astype(np.float32)


def percentile_normalize(image, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Clip to the ``[low, high]`` percentiles, then scale linearly to ``[0, 1]``.

    Robust to a few extreme voxels (a bright vessel, a scanner artefact), which would otherwise
    squeeze every other intensity into a narrow band.

    Parameters
    ----------
    image : ndarray, any shape
    low, high : float
        Percentiles in ``[0, 100]`` with ``low < high``.

    Returns
    -------
    ndarray of float32 in ``[0, 1]``, same shape as ``image``
        A constant image gives all zeros.

    Examples
    --------
    >>> percentile_normalize(np.array([0.0, 5.0, 10.0]), low=0, high=100).tolist()
    [0.0, 0.5, 1.0]

    Introduced in 01_medical_images.
    """
    if not 0 <= low < high <= 100:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low!r}, high={high!r}")
    arr = _as_float_image(image)
    lo, hi = np.percentile(arr, [low, high])
    if hi - lo <= 0:
        return np.zeros_like(arr)
    return ((np.clip(arr, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def window(image, level: float, width: float) -> np.ndarray:
    """Map the intensity window ``[level - width/2, level + width/2]`` to ``[0, 1]``.

    This is how radiologists look at CT: a soft-tissue window (level 40 HU, width 400 HU) shows
    organs, a lung window (level -600, width 1500) shows airways. Values below the window become 0,
    above it 1.

    Parameters
    ----------
    image : ndarray, any shape
    level : float
        Centre of the window, in the image's units (Hounsfield units for CT).
    width : float
        Width of the window; must be positive.

    Returns
    -------
    ndarray of float32 in ``[0, 1]``, same shape as ``image``

    Examples
    --------
    >>> window(np.array([-1000.0, 40.0, 240.0, 1000.0]), level=40, width=400).tolist()
    [0.0, 0.5, 1.0, 1.0]

    Introduced in 01_medical_images.
    """
    if not np.isfinite(width) or width <= 0:
        raise ValueError(f"width must be a positive number, got {width!r}")
    arr = _as_float_image(image)
    lo = level - width / 2.0
    return np.clip((arr - lo) / width, 0.0, 1.0).astype(np.float32)


def nuclei_bright(image, category: str | None = None) -> np.ndarray:
    """One grey channel in which the objects are brighter than the background.

    Fluorescence microscopy shows bright nuclei on a dark background; brightfield (stained) images
    show dark nuclei on a bright background. Classical methods (a threshold, region growing,
    clustering by intensity) are written for one polarity, so this gives every image the same one:
    channels are averaged, and brightfield images are inverted.

    Parameters
    ----------
    image : (H, W) or (C, H, W) ndarray
        Channel-first, as the course's loaders return it (values in ``[0, 1]`` for microscopy).
    category : str, optional
        The dataset's category, e.g. ``"brightfield_stained_color_256x320"``; a category starting
        with ``"brightfield"`` is inverted. Without it the polarity is detected: an image whose
        median (mostly background) lies above the middle of its range is inverted.

    Returns
    -------
    (H, W) ndarray of float32

    Examples
    --------
    >>> bright_background = np.array([[[0.9, 0.2], [0.9, 0.9]]])
    >>> out = nuclei_bright(bright_background)  # inverted within its own range
    >>> [[round(float(v), 2) for v in row] for row in out]
    [[0.2, 0.9], [0.2, 0.2]]

    Introduced in 02_thresholding.
    """
    arr = _as_float_image(image)
    if arr.ndim == 3:
        arr = arr.mean(axis=0)
    elif arr.ndim != 2:
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {arr.shape}")
    lo, hi = float(arr.min()), float(arr.max())
    if category is not None:
        invert = str(category).startswith("brightfield")
    else:
        invert = float(np.median(arr)) > (lo + hi) / 2
    return (hi - arr + lo).astype(np.float32) if invert else arr
