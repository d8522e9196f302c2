"""Seeded region growing: neighbourhoods, homogeneity criteria, automatic seeds, watershed.

Region growing starts from one pixel that surely belongs to the object, the **seed**, and adds
neighbouring pixels for as long as they look like the region: the **homogeneity criterion**.
Two criteria are implemented:

* ``criterion="seed"`` (fixed tolerance): a pixel joins if its intensity lies within
  ``tolerance`` of the seed's intensity. The region grown this way is exactly the connected
  component, containing the seed, of the band ``seed - tolerance <= image <= seed + tolerance``
  (what :func:`skimage.segmentation.flood` computes).
* ``criterion="mean"`` (running mean): a pixel joins if its intensity lies within ``tolerance``
  of the *current* mean of the region, so the reference follows the region as it grows.

Neighbourhoods follow scikit-image's ``connectivity`` convention: two pixels are neighbours when
they differ by at most 1 along every axis and along at most ``connectivity`` axes. In 2D,
``connectivity=1`` is the 4-neighbourhood and ``connectivity=2`` the 8-neighbourhood; in 3D,
1, 2, 3 give the 6-, 18- and 26-neighbourhoods.

Public functions:

* :func:`neighbour_offsets`, :func:`neighbours`: the neighbourhood of a pixel.
* :func:`region_grow_bfs`: the textbook algorithm, a breadth-first search with a queue (one seed,
  fixed tolerance), written for reading.
* :func:`region_grow`: the course's implementation, 2D and 3D, several seeds, both criteria.
* :func:`local_maxima_seeds`: automatic seeds at the local maxima of a smoothed image.
* :func:`watershed_from_seeds`: marker-controlled watershed from the same seeds (instances).
* :func:`touching_nuclei_separated`: how many touching ground-truth nuclei an instance map
  separates.
* :func:`segment_region_growing`, :func:`segment_watershed`: one call on a DSB2018 sample, for
  the course's results table.

Introduced in 03_region_growing.
"""

from __future__ import annotations

from collections import deque
from numbers import Integral, Real

import numpy as np
from scipy import ndimage

__all__ = [
    "neighbour_offsets",
    "neighbours",
    "region_grow_bfs",
    "region_grow",
    "local_maxima_seeds",
    "watershed_from_seeds",
    "touching_nuclei_separated",
    "segment_region_growing",
    "segment_watershed",
]

CRITERIA = ("seed", "mean")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
def _check_image(image, name: str = "image", ndims=(2, 3)) -> np.ndarray:
    """A real, finite array of one of ``ndims`` dimensions, as float32 or float64."""
    if type(image).__module__.startswith("torch") and hasattr(image, "detach"):  # no torch import
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        shapes = " or ".join({2: "(H, W)", 3: "(D, H, W)"}[n] for n in ndims)
        hint = "; pass one channel, e.g. image[0]" if arr.ndim == max(ndims) + 1 else ""
        raise ValueError(f"{name} must be {shapes}, got shape {arr.shape}{hint}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.dtype.kind != "f" or arr.dtype.itemsize < 4:
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values; replace them first, "
                         "e.g. np.nan_to_num(image)")
    return arr


def _check_connectivity(connectivity, ndim: int) -> int:
    if connectivity is None:
        return ndim
    if isinstance(connectivity, bool) or not isinstance(connectivity, Integral):
        raise TypeError(f"connectivity must be an int from 1 to {ndim}, got "
                        f"{type(connectivity).__name__} {connectivity!r}")
    if not 1 <= connectivity <= ndim:
        sizes = {2: "1 (4-neighbourhood) or 2 (8-neighbourhood)",
                 3: "1 (6-neighbourhood), 2 (18) or 3 (26)"}.get(ndim, f"1 to {ndim}")
        raise ValueError(f"connectivity must be {sizes} for a {ndim}D image, got {connectivity!r}")
    return int(connectivity)


def _check_seeds(seeds, shape) -> np.ndarray:
    """``seeds`` as an (N, ndim) int array of in-bounds indices."""
    ndim = len(shape)
    try:
        arr = np.array(seeds)
    except ValueError:
        raise ValueError(f"seeds must be a list of index tuples of length {ndim}, "
                         f"e.g. [(10, 20)], got {seeds!r}") from None
    if arr.ndim == 1 and arr.size == ndim:
        arr = arr[None, :]  # one seed given as a single tuple
    if arr.ndim != 2 or arr.shape[1] != ndim or arr.shape[0] == 0:
        raise ValueError(f"seeds must be a non-empty list of index tuples of length {ndim} (one "
                         f"per axis of the image), e.g. [{tuple(n // 2 for n in shape)}], "
                         f"got {seeds!r}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"seeds must hold integer indices, got dtype {arr.dtype} "
                            f"({seeds!r}); round them, e.g. np.round(seeds).astype(int)")
    arr = arr.astype(np.int64)
    outside = np.any((arr < 0) | (arr >= np.asarray(shape)), axis=1)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"seeds[{i}] = {tuple(int(v) for v in arr[i])} lies outside the image of "
                         f"shape {tuple(shape)}; every index must satisfy 0 <= index < size "
                         "(negative indices are not allowed)")
    return arr


def _check_tolerance(tolerance, n_seeds: int) -> np.ndarray:
    """``tolerance`` as an (n_seeds,) float64 array of non-negative values."""
    if isinstance(tolerance, bool):
        raise TypeError(f"tolerance must be a number, got {tolerance!r}")
    if isinstance(tolerance, Real):
        tol = np.full(n_seeds, float(tolerance))
    else:
        try:
            tol = np.asarray(tolerance, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise TypeError(f"tolerance must be a number or one number per seed, got "
                            f"{tolerance!r}") from None
        if tol.size != n_seeds:
            raise ValueError(f"tolerance must be one number, or one per seed ({n_seeds}), got "
                             f"{tol.size} values")
    if not np.all(np.isfinite(tol)) or np.any(tol < 0):
        raise ValueError(f"tolerance must be finite and >= 0 (an intensity difference), got "
                         f"{tolerance!r}")
    return tol


def _check_criterion(criterion) -> str:
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be 'seed' (tolerance around the seed value) or 'mean' "
                         f"(tolerance around the running region mean), got {criterion!r}")
    return criterion


# --------------------------------------------------------------------------------------------
# Neighbourhoods
# --------------------------------------------------------------------------------------------
def neighbour_offsets(ndim: int, connectivity: int = 1) -> np.ndarray:
    """Offsets from a pixel to its neighbours, scikit-image's ``connectivity`` convention.

    Parameters
    ----------
    ndim : int
        Number of image axes, >= 1.
    connectivity : int, default 1
        Largest number of axes along which a neighbour may differ (by one step each), from 1 to
        ``ndim``. 2D: 1 gives the 4-neighbourhood, 2 the 8-neighbourhood. 3D: 1, 2, 3 give 6,
        18 and 26 neighbours. None means ``ndim`` (all neighbours).

    Returns
    -------
    (K, ndim) ndarray of int64
        One row per neighbour, in raster order; the zero offset (the pixel itself) is excluded.

    Raises
    ------
    ValueError, TypeError
        If ``ndim`` or ``connectivity`` is not a valid integer.

    Notes
    -----
    Same neighbourhood as ``scipy.ndimage.generate_binary_structure(ndim, connectivity)``
    (without its centre) and as the ``connectivity`` argument of scikit-image.

    Examples
    --------
    >>> neighbour_offsets(2, 1).tolist()
    [[-1, 0], [0, -1], [0, 1], [1, 0]]
    >>> [len(neighbour_offsets(3, c)) for c in (1, 2, 3)]
    [6, 18, 26]

    Introduced in 03_region_growing.
    """
    if isinstance(ndim, bool) or not isinstance(ndim, Integral) or ndim < 1:
        raise ValueError(f"ndim must be a positive int (2 for an image, 3 for a volume), got {ndim!r}")
    connectivity = _check_connectivity(connectivity, int(ndim))
    structure = ndimage.generate_binary_structure(int(ndim), connectivity)
    offsets = np.argwhere(structure) - 1
    return offsets[np.any(offsets != 0, axis=1)].astype(np.int64)


def neighbours(index, shape, connectivity: int = 1) -> list[tuple[int, ...]]:
    """The neighbours of one pixel that lie inside the image.

    Parameters
    ----------
    index : tuple of int
        The pixel, one index per axis, inside ``shape``.
    shape : tuple of int
        The image's shape, e.g. ``image.shape``.
    connectivity : int, default 1
        See :func:`neighbour_offsets`: 1 gives 4 neighbours in 2D (6 in 3D), 2 gives 8 in 2D.

    Returns
    -------
    list of tuple of int
        The in-bounds neighbours, in raster order (a corner pixel of a 2D image has 2 with
        ``connectivity=1`` and 3 with ``connectivity=2``).

    Raises
    ------
    ValueError
        If ``index`` does not have one entry per axis or lies outside ``shape``.

    Examples
    --------
    >>> neighbours((0, 0), (3, 4))
    [(0, 1), (1, 0)]
    >>> neighbours((1, 1), (3, 4), connectivity=2)
    [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)]

    Introduced in 03_region_growing.
    """
    shape = tuple(int(n) for n in shape)
    index = tuple(int(i) for i in index)
    if len(index) != len(shape):
        raise ValueError(f"index must have one entry per axis of shape {shape}, got {index}")
    if any(not 0 <= i < n for i, n in zip(index, shape)):
        raise ValueError(f"index {index} lies outside the image of shape {shape}")
    out = []
    for offset in neighbour_offsets(len(shape), connectivity):
        q = tuple(i + int(d) for i, d in zip(index, offset))
        if all(0 <= j < n for j, n in zip(q, shape)):
            out.append(q)
    return out


# --------------------------------------------------------------------------------------------
# Region growing
# --------------------------------------------------------------------------------------------
def _bounds(seed_value: float, tolerance: float, dtype) -> tuple:
    """``seed -/+ tolerance`` in the image's float dtype, as skimage's flood rounds them."""
    return dtype.type(seed_value - tolerance), dtype.type(seed_value + tolerance)


def region_grow_bfs(image, seed, tolerance: float, connectivity: int = 1) -> np.ndarray:
    """Grow a region from one seed with a queue (breadth-first search), fixed tolerance.

    The textbook algorithm, kept short for reading; :func:`region_grow` computes the same region
    faster and also handles several seeds and the running-mean criterion.

    Parameters
    ----------
    image : (H, W) or (D, H, W) array_like
        Real-valued image.
    seed : tuple of int
        The starting pixel.
    tolerance : float
        A pixel joins when ``seed_value - tolerance <= image[p] <= seed_value + tolerance``.
    connectivity : int, default 1
        1: 4-neighbourhood in 2D (6 in 3D); 2: 8-neighbourhood in 2D; see
        :func:`neighbour_offsets`.

    Returns
    -------
    ndarray of bool, same shape as ``image``
        The region.

    Notes
    -----
    Each pixel is marked as visited when it is first put in the queue, so it enters the queue at
    most once and the loop ends after at most ``image.size`` iterations. A recursive version
    (grow(p) calls grow(q) for each neighbour q) is shorter but fails on real images: Python stops
    at about 1000 nested calls, and a region has many thousand pixels.

    Examples
    --------
    >>> image = np.array([[1, 1, 5],
    ...                   [1, 9, 5],
    ...                   [2, 1, 1]])
    >>> region_grow_bfs(image, (0, 0), tolerance=1).astype(int)
    array([[1, 1, 0],
           [1, 0, 0],
           [1, 1, 1]])

    Introduced in 03_region_growing.
    """
    img = _check_image(image)
    seeds = _check_seeds(seed, img.shape)
    if len(seeds) != 1:
        raise ValueError(f"seed must be one index tuple, e.g. (10, 20), got {len(seeds)} seeds; "
                         "region_grow accepts several")
    seed = seeds[0]
    (tol,) = _check_tolerance(tolerance, 1)
    connectivity = _check_connectivity(connectivity, img.ndim)
    seed = tuple(int(i) for i in seed)
    low, high = _bounds(float(img[seed]), tol, img.dtype)
    region = np.zeros(img.shape, dtype=bool)
    visited = np.zeros(img.shape, dtype=bool)
    region[seed] = visited[seed] = True
    queue = deque([seed])
    while queue:
        p = queue.popleft()
        for q in neighbours(p, img.shape, connectivity):
            if not visited[q]:
                visited[q] = True
                if low <= img[q] <= high:
                    region[q] = True
                    queue.append(q)
    return region


def _component(img: np.ndarray, seed: np.ndarray, low, high, structure: np.ndarray,
               half: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The connected component of ``low <= img <= high`` that contains ``seed``, as
    ``(offset, mask of a window)``. The window grows (doubling) until the component does not touch
    any window edge that lies inside the image: a path leaving the window would have to cross such
    an edge, so the component is then complete. Costs the size of the final window, not of the
    image, when the component is small."""
    shape = np.array(img.shape)
    while True:
        lo, hi = np.maximum(seed - half, 0), np.minimum(seed + half + 1, shape)
        window = img[tuple(slice(a, b) for a, b in zip(lo, hi))]
        labels, _ = ndimage.label((window >= low) & (window <= high), structure)
        comp = labels == labels[tuple(seed - lo)]
        open_edge = False
        for axis in range(img.ndim):
            if (lo[axis] > 0 and np.take(comp, 0, axis=axis).any()) or \
                    (hi[axis] < shape[axis] and np.take(comp, -1, axis=axis).any()):
                open_edge = True
                break
        if not open_edge:
            return lo, comp
        half *= 2


def _padded(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The image padded by one pixel on every side (flattened), and the flat mask of the padding:
    with it, flat neighbour offsets never leave the array."""
    padded = np.pad(img, 1)
    blocked = np.ones(padded.shape, dtype=bool)
    blocked[(slice(1, -1),) * img.ndim] = False
    return padded.ravel(), blocked.ravel()


def _flat_offsets(shape, connectivity: int) -> np.ndarray:
    strides = np.cumprod((1,) + tuple(shape[:0:-1]))[::-1]  # C-order strides, in elements
    return neighbour_offsets(len(shape), connectivity) @ strides


def _grow_rings(flat: np.ndarray, blocked: np.ndarray, offsets: np.ndarray, seed: int, tol: float,
                dtype, max_iterations: int | None, running: bool) -> np.ndarray:
    """Ring-by-ring growth from one seed on the padded, flattened image (see :func:`_padded`).

    ``ring`` holds the flat indices of the pixels adjacent to the region and not in it. Each
    iteration tests the whole ring against the reference (the current mean if ``running``, else
    the seed's value), adds the accepted pixels at once, updates the mean, and replaces them in
    the ring by their own new neighbours; rejected pixels stay in the ring and are tested again.
    Cost per iteration: the size of the ring."""
    region = np.zeros(flat.size, dtype=bool)
    region[seed] = True
    total, count = float(flat[seed]), 1
    ring = seed + offsets
    ring = ring[~blocked[ring]]
    iterations = 0
    while ring.size and (max_iterations is None or iterations < max_iterations):
        iterations += 1
        low, high = _bounds(total / count if running else float(flat[seed]), tol, dtype)
        values = flat[ring]
        accept = (values >= low) & (values <= high)
        if not accept.any():
            break
        new = ring[accept]
        region[new] = True
        total += float(values[accept].sum(dtype=np.float64))
        count += int(new.size)
        fresh = (new[:, None] + offsets[None, :]).ravel()
        fresh = fresh[~region[fresh] & ~blocked[fresh]]
        ring = np.unique(np.concatenate([ring[~accept], fresh]))
    return region


def region_grow(image, seeds, tolerance, connectivity: int = 1, *, criterion: str = "seed",
                max_iterations: int | None = None) -> np.ndarray:
    """Seeded region growing in 2D or 3D, with a fixed or a running-mean intensity criterion.

    Parameters
    ----------
    image : (H, W) or (D, H, W) array_like
        Real-valued image or volume (one channel: for a course sample pass ``sample.image[0]``).
    seeds : tuple of int, or sequence of tuples of int, or (N, ndim) array_like
        Starting pixels, one index per axis, inside the image. A single tuple is one seed.
    tolerance : float or sequence of float
        Largest intensity difference accepted, ``>= 0``, in the units of ``image``; one value for
        all seeds or one per seed.
    connectivity : int, default 1
        scikit-image's convention (see :func:`neighbour_offsets`): in 2D 1 is the 4-neighbourhood
        and 2 the 8-neighbourhood; in 3D 1, 2, 3 are the 6-, 18- and 26-neighbourhoods.
        None means the full neighbourhood (``image.ndim``).
    criterion : {"seed", "mean"}, default "seed"
        ``"seed"``: a pixel joins if ``|image[p] - image[seed]| <= tolerance`` (precisely:
        ``seed - tolerance <= image[p] <= seed + tolerance``, with the bounds rounded to the
        image's float type, as :func:`skimage.segmentation.flood` does). ``"mean"``: a pixel
        joins if it is within ``tolerance`` of the mean of the region grown so far.
    max_iterations : int, optional
        Stop each seed's growth after this many rings (to show growth step by step); None grows
        until nothing more joins.

    Returns
    -------
    ndarray of bool, same shape as ``image``
        The union of the regions grown from each seed.

    Raises
    ------
    ValueError, TypeError
        If the image is not 2D/3D or not finite, a seed is outside the image, the tolerance is
        negative or does not match the seeds, or ``connectivity`` / ``criterion`` is invalid.

    Notes
    -----
    *Fixed tolerance.* The pixels reachable from the seed through pixels inside the band
    ``[seed - tolerance, seed + tolerance]`` are exactly the band's connected component that
    contains the seed, so that component is taken from :func:`scipy.ndimage.label`, a
    breadth-first search written in C (:func:`region_grow_bfs` is the same search in Python),
    run on a window around the seed that doubles until the component stays inside it (so a
    small region costs little, even in a large image).
    The result equals ``skimage.segmentation.flood(image, seed, tolerance=tolerance,
    connectivity=connectivity)`` for float images, and for integer images with an integer
    tolerance (flood rounds ``seed -/+ tolerance`` to the integer type, so a fractional
    tolerance on an integer image can differ by one grey level). Beware that flood's default
    ``connectivity=None`` is the *full* neighbourhood (8 in 2D), while this function's default
    is 1 (4 in 2D): pass ``connectivity`` explicitly when comparing.

    With ``max_iterations`` the growth proceeds ring by ring as below, with the seed's value as
    the reference.

    *Running mean.* Growth proceeds in rings: every pixel adjacent to the region whose intensity
    lies within ``tolerance`` of the region's current mean joins at once; the mean is updated;
    pixels rejected earlier are tested again against the new mean; growth stops when a ring adds
    nothing. The result does not depend on the order in which neighbours are visited. The ring is
    kept as an array of flat indices (a vectorised frontier), so each step costs the size of the
    ring, not of the image.

    *Several seeds.* Each seed grows its own region (with its own seed value or mean, and its own
    tolerance), and the result is their union; the order of the seeds does not matter. The
    seeded region growing of Adams and Bischof [1]_ instead lets the seeds compete for pixels
    and returns one label per seed, which is close to :func:`watershed_from_seeds`.

    References
    ----------
    .. [1] R. Adams and L. Bischof, "Seeded region growing", IEEE Trans. Pattern Anal. Mach.
       Intell. 16(6), 641-647, 1994. doi:10.1109/34.295913

    Examples
    --------
    >>> image = np.array([[0.1, 0.2, 0.9, 0.9],
    ...                   [0.2, 0.1, 0.8, 0.3],
    ...                   [0.9, 0.9, 0.9, 0.2]])
    >>> region_grow(image, [(0, 0)], tolerance=0.15).astype(int)
    array([[1, 1, 0, 0],
           [1, 1, 0, 0],
           [0, 0, 0, 0]])
    >>> region_grow(image, [(0, 0), (1, 3)], tolerance=0.15).astype(int)  # two seeds
    array([[1, 1, 0, 0],
           [1, 1, 0, 1],
           [0, 0, 0, 1]])
    >>> region_grow(image, (2, 0), tolerance=0.1, connectivity=2).astype(int)  # 8-neighbours
    array([[0, 0, 1, 1],
           [0, 0, 1, 0],
           [1, 1, 1, 0]])

    Introduced in 03_region_growing.
    """
    img = _check_image(image)
    seeds = _check_seeds(seeds, img.shape)
    tol = _check_tolerance(tolerance, len(seeds))
    connectivity = _check_connectivity(connectivity, img.ndim)
    criterion = _check_criterion(criterion)
    if max_iterations is not None and (isinstance(max_iterations, bool) or not isinstance(
            max_iterations, Integral) or max_iterations < 0):
        raise ValueError(f"max_iterations must be None or an int >= 0, got {max_iterations!r}")
    structure = ndimage.generate_binary_structure(img.ndim, connectivity)
    out = np.zeros(img.shape, dtype=bool)
    if criterion == "mean" or max_iterations is not None:
        flat, blocked = _padded(img)
        padded_shape = tuple(n + 2 for n in img.shape)
        offsets = _flat_offsets(padded_shape, connectivity)
        grown = np.zeros(flat.size, dtype=bool)
        for seed, t in zip(seeds, tol):
            start = int(np.ravel_multi_index(tuple(seed + 1), padded_shape))
            grown |= _grow_rings(flat, blocked, offsets, start, float(t), img.dtype, max_iterations,
                                 running=criterion == "mean")
        return grown.reshape(padded_shape)[(slice(1, -1),) * img.ndim]
    # fixed tolerance: the seed's connected component of its band, found in a window around the
    # seed that doubles until the component does not reach the window's edge
    values = img[tuple(seeds.T)].astype(np.float64)
    found = {}  # (seed value, tolerance) -> components already found for that band
    for seed, value, t in zip(seeds, values.tolist(), tol.tolist()):
        done = found.setdefault((value, t), [])
        if any(comp[tuple(seed - lo)] for lo, comp in done
               if np.all(seed >= lo) and np.all(seed < lo + comp.shape)):
            continue  # the same band's component through this seed is already in the union
        lo, comp = _component(img, seed, *_bounds(value, t, img.dtype), structure)
        done.append((lo, comp))
        out[tuple(slice(a, a + n) for a, n in zip(lo, comp.shape))] |= comp
    return out


# --------------------------------------------------------------------------------------------
# Automatic seeds and the watershed
# --------------------------------------------------------------------------------------------
def local_maxima_seeds(image, *, sigma: float = 2.0, min_distance: int = 4,
                       threshold: float | None = None, exclude_border: bool = False) -> np.ndarray:
    """Automatic seeds: the local maxima of a Gaussian-smoothed image.

    Parameters
    ----------
    image : (H, W) or (D, H, W) array_like
        Image in which the objects are brighter than their surroundings (for brightfield nuclei
        use :func:`medseg_course.data.transforms.nuclei_bright` first).
    sigma : float, default 2.0
        Standard deviation of the Gaussian smoothing, in pixels, ``>= 0``. Smoothing removes the
        maxima that noise creates; take it below the objects' radius.
    min_distance : int, default 4
        Smallest distance in pixels between two seeds (``peak_local_max``'s ``min_distance``).
    threshold : float, optional
        Keep only maxima whose smoothed intensity is at least this (e.g. an Otsu threshold), so
        the background's own small maxima give no seed. Default: no threshold.
    exclude_border : bool, default False
        Drop maxima closer than ``min_distance`` to the border.

    Returns
    -------
    (N, ndim) ndarray of int64
        The seeds, brightest first, as accepted by :func:`region_grow`'s ``seeds``.

    Examples
    --------
    >>> image = np.zeros((20, 30)); image[5, 5] = image[14, 22] = 1.0
    >>> local_maxima_seeds(image, sigma=1.0).tolist()
    [[5, 5], [14, 22]]

    Introduced in 03_region_growing.
    """
    from skimage.feature import peak_local_max

    img = _check_image(image)
    if isinstance(sigma, bool) or not isinstance(sigma, Real) or not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a number >= 0 (pixels), got {sigma!r}")
    if isinstance(min_distance, bool) or not isinstance(min_distance, Integral) or min_distance < 1:
        raise ValueError(f"min_distance must be an int >= 1 (pixels), got {min_distance!r}")
    smooth = ndimage.gaussian_filter(img.astype(np.float64), float(sigma)) if sigma > 0 else img
    peaks = peak_local_max(smooth, min_distance=int(min_distance), threshold_abs=threshold,
                           exclude_border=bool(exclude_border))
    if len(peaks) > 1:  # brightest first, ties broken by position, so the order is reproducible
        order = np.lexsort((*peaks.T[::-1], -smooth[tuple(peaks.T)]))
        peaks = peaks[order]
    return peaks.astype(np.int64).reshape(-1, img.ndim)


def watershed_from_seeds(image, seeds, mask=None, *, connectivity: int = 1,
                         watershed_line: bool = False) -> np.ndarray:
    """Marker-controlled watershed of a bright-object image, one label per seed.

    Flooding starts from the seeds and climbs ``-image`` (it descends the intensity), so
    each pixel goes to the seed it can reach by the brightest path; two touching nuclei meet
    at the dark valley between them.

    Parameters
    ----------
    image : (H, W) or (D, H, W) array_like
        Objects brighter than their surroundings (smooth it first if it is noisy).
    seeds : sequence of tuples of int or (N, ndim) array_like
        Markers, as for :func:`region_grow`; seed ``i`` gets label ``i + 1``.
    mask : array_like of bool, optional
        Pixels that may be labelled (e.g. a region-growing or threshold mask); outside it the
        result is 0. Without a mask every pixel gets a label.
    connectivity : int, default 1
        Neighbourhood of the flooding (see :func:`neighbour_offsets`).
    watershed_line : bool, default False
        Leave a one-pixel line of 0 between touching regions.

    Returns
    -------
    ndarray of int32, same shape as ``image``
        0 outside ``mask``, ``i + 1`` where seed ``i`` won. Seeds outside the mask get no pixels.

    Examples
    --------
    >>> x = np.arange(18)
    >>> image = np.exp(-((x - 4) / 3.0) ** 2) + np.exp(-((x - 12) / 3.0) ** 2)  # two bumps
    >>> image = np.tile(image, (3, 1))
    >>> labels = watershed_from_seeds(image, [(1, 4), (1, 12)], mask=image > 0.3)
    >>> labels[1].tolist()  # the bumps meet in the valley at x = 8
    [0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 0, 0]

    Introduced in 03_region_growing.
    """
    from skimage.segmentation import watershed

    img = _check_image(image)
    seeds = _check_seeds(seeds, img.shape)
    connectivity = _check_connectivity(connectivity, img.ndim)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != img.shape:
            raise ValueError(f"mask must have the image's shape {img.shape}, got {mask.shape}")
        mask = mask.astype(bool)
    markers = np.zeros(img.shape, dtype=np.int32)
    markers[tuple(seeds.T)] = np.arange(1, len(seeds) + 1, dtype=np.int32)
    if mask is not None:
        markers[~mask] = 0
    return watershed(-img, markers, connectivity=connectivity, mask=mask,
                     watershed_line=watershed_line).astype(np.int32)


def _touching_ids(instances: np.ndarray) -> np.ndarray:
    """Instance ids that share an edge or a corner (8-connectivity) with another instance."""
    found = []
    padded = np.pad(instances, 1)
    core = padded[1:-1, 1:-1]
    h, w = instances.shape
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        other = padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        sel = (core != other) & (core > 0) & (other > 0)
        found += [core[sel], other[sel]]
    return np.unique(np.concatenate(found))


def touching_nuclei_separated(pred_labels, true_instances, *,
                              iou_threshold: float = 0.5) -> tuple[int, int]:
    """How many touching ground-truth nuclei a predicted instance map gets as separate objects.

    A ground-truth nucleus counts as *touching* if it shares an edge or a corner with another
    one, and as *separated* if some predicted object overlaps it with an intersection over union
    above ``iou_threshold``. A prediction that merges two touching nuclei into one blob scores
    at most IoU 1/2 with each, so it separates neither (for equal sizes).

    Parameters
    ----------
    pred_labels : (H, W) array_like of int
        Predicted instances: 0 background, one id per object (for a binary mask, its connected
        components: ``scipy.ndimage.label(mask)[0]``).
    true_instances : (H, W) array_like of int
        Ground-truth instances, 0 background.
    iou_threshold : float, default 0.5
        In ``[0.5, 1)``: at 0.5 or more, each true nucleus can match at most one predicted object.

    Returns
    -------
    (int, int)
        ``(separated, touching)``: touching true nuclei matched, and touching true nuclei.

    Examples
    --------
    >>> truth = np.zeros((6, 9), int); truth[1:5, 1:4] = 1; truth[1:5, 4:7] = 2
    >>> touching_nuclei_separated(truth > 0, truth)   # one blob: merged
    (0, 2)
    >>> touching_nuclei_separated(truth, truth)
    (2, 2)

    Introduced in 03_region_growing.
    """
    pred = np.asarray(pred_labels)
    true = np.asarray(true_instances)
    if pred.ndim != 2 or pred.shape != true.shape:
        raise ValueError(f"pred_labels and true_instances must be (H, W) arrays of the same shape, "
                         f"got {pred.shape} and {true.shape}")
    for name, arr in (("pred_labels", pred), ("true_instances", true)):
        if arr.dtype.kind not in "biu":
            raise TypeError(f"{name} must be an integer label map, got dtype {arr.dtype}; "
                            "label a binary mask with scipy.ndimage.label(mask)[0]")
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, Real) or \
            not 0.5 <= iou_threshold < 1:
        raise ValueError(f"iou_threshold must be in [0.5, 1), got {iou_threshold!r}")
    pred, true = pred.astype(np.int64), true.astype(np.int64)
    touching = _touching_ids(true)
    if touching.size == 0:
        return 0, 0
    # overlap counts between every (true, pred) pair that meet, via one bincount
    both = (true > 0) & (pred > 0)
    n_pred = int(pred.max()) + 1
    pairs = np.bincount(true[both] * n_pred + pred[both])
    t_ids, p_ids = np.divmod(np.nonzero(pairs)[0], n_pred)
    inter = pairs[pairs > 0]
    true_area = np.bincount(true.ravel())
    pred_area = np.bincount(pred.ravel(), minlength=n_pred)
    iou = inter / (true_area[t_ids] + pred_area[p_ids] - inter)
    matched = np.unique(t_ids[iou > iou_threshold])
    return int(np.isin(touching, matched).sum()), int(touching.size)


# --------------------------------------------------------------------------------------------
# One call per DSB2018 sample (the course's results table)
# --------------------------------------------------------------------------------------------
def _nuclei_seeds(image, category, sigma, min_distance):
    """Grey bright-nuclei image scaled to [0, 1], its smoothed version, background level,
    Otsu threshold and the seeds above it."""
    from skimage.filters import threshold_otsu

    from medseg_course.data.transforms import nuclei_bright

    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] not in (1, 3):
        raise ValueError(f"image must be (C, H, W) with C 1 or 3 (a DSB2018 sample.image), or "
                         f"(H, W), got shape {arr.shape}")
    if arr.ndim not in (2, 3):
        raise ValueError(f"image must be (C, H, W) or (H, W), got shape {arr.shape}")
    grey = nuclei_bright(_check_image(arr, ndims=(2, 3)), category).astype(np.float64)
    lo, hi = np.percentile(grey, [0.5, 99.5])
    grey = np.clip((grey - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(grey)
    smooth = ndimage.gaussian_filter(grey, sigma)
    background = float(np.median(smooth))
    otsu = float(threshold_otsu(smooth)) if np.ptp(smooth) > 0 else np.inf
    seeds = local_maxima_seeds(smooth, sigma=0.0, min_distance=min_distance, threshold=otsu)
    return smooth, background, seeds


def segment_region_growing(image, category: str | None = None, *, sigma: float = 1.0,
                           min_distance: int = 4, fraction: float = 0.6,
                           criterion: str = "seed") -> np.ndarray:
    """Segment the nuclei of a DSB2018 image by region growing from automatic seeds.

    The recipe of 03_region_growing: take one grey channel with bright nuclei
    (:func:`~medseg_course.data.transforms.nuclei_bright`), stretch it to [0, 1], smooth it
    (Gaussian, ``sigma``), put a seed at every local maximum brighter than the smoothed image's
    Otsu threshold, and grow each seed with a fixed tolerance of ``fraction`` times its height
    above the background (the smoothed image's median, since most pixels are background): with
    0.5, each nucleus stops where its intensity has fallen half-way to the background, the
    *half-maximum* rule, which puts the boundary of a blurred step edge in the right place
    whatever the nucleus's brightness. Holes are filled.

    Parameters
    ----------
    image : (C, H, W) or (H, W) array_like
        A course sample's ``image`` (C = 1 fluorescence, 3 brightfield RGB).
    category : str, optional
        The sample's ``category``; brightfield images are inverted. Without it the polarity is
        detected from the image.
    sigma : float, default 2.0
        Smoothing before seeding and growing, in pixels.
    min_distance : int, default 4
        Smallest distance between seeds, in pixels.
    fraction : float, default 0.5
        Tolerance of each seed as a fraction of its height above the background, in (0, 1].

    Returns
    -------
    (H, W) ndarray of bool
        The nuclei (all seeds' regions together). Empty if no maximum rises above Otsu's
        threshold.

    Examples
    --------
    >>> from medseg_course.metrics import dice
    >>> yy, xx = np.mgrid[:48, :48]
    >>> bright = (yy - 14) ** 2 + (xx - 14) ** 2 < 64          # a bright nucleus
    >>> dim = (yy - 32) ** 2 + (xx - 32) ** 2 < 49             # a dimmer one
    >>> image = 0.1 + 0.8 * bright + 0.5 * dim
    >>> mask = segment_region_growing(image[None])
    >>> mask.shape, round(dice(mask, bright | dim), 2)
    ((48, 48), 0.99)

    Introduced in 03_region_growing.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1] (share of each seed's height above the "
                         f"background), got {fraction!r}")
    smooth, background, seeds = _nuclei_seeds(image, category, sigma, min_distance)
    if len(seeds) == 0:
        return np.zeros(smooth.shape, dtype=bool)
    heights = np.maximum(smooth[tuple(seeds.T)] - background, 0.0)
    mask = region_grow(smooth, seeds, fraction * heights, connectivity=1, criterion=criterion)
    return ndimage.binary_fill_holes(mask)


def segment_watershed(image, category: str | None = None, *, sigma: float = 1.0,
                      min_distance: int = 4, fraction: float = 0.6) -> np.ndarray:
    """Segment DSB2018 nuclei with a watershed from the region-growing seeds, as a binary mask.

    Same seeds and foreground as :func:`segment_region_growing`; the watershed then splits the
    foreground between the seeds along the dark valleys of the smoothed image, with a one-pixel
    line of background between touching nuclei. The mask therefore differs from region growing's
    only by those lines; its point is that ``scipy.ndimage.label`` of it gives separate nuclei
    (see :func:`touching_nuclei_separated`).

    Parameters
    ----------
    image, category, sigma, min_distance, fraction
        As for :func:`segment_region_growing`.

    Returns
    -------
    (H, W) ndarray of bool

    Examples
    --------
    >>> x = np.arange(40)
    >>> image = np.exp(-((x - 14) / 6.0) ** 2) + np.exp(-((x - 26) / 6.0) ** 2)
    >>> image = np.tile(image, (12, 1)) * np.hanning(12)[:, None]
    >>> mask = segment_watershed(image[None])
    >>> int(ndimage.label(mask)[1])  # the two bumps come out as two objects
    2

    Introduced in 03_region_growing.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, Real) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1] (share of each seed's height above the "
                         f"background), got {fraction!r}")
    smooth, background, seeds = _nuclei_seeds(image, category, sigma, min_distance)
    if len(seeds) == 0:
        return np.zeros(smooth.shape, dtype=bool)
    heights = np.maximum(smooth[tuple(seeds.T)] - background, 0.0)
    foreground = ndimage.binary_fill_holes(region_grow(smooth, seeds, fraction * heights))
    labels = watershed_from_seeds(smooth, seeds, foreground, watershed_line=True)
    return labels > 0
