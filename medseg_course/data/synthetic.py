"""Synthetic images with exact ground truth: a teaching instrument.

Real data never tells you *why* a method fails. Synthetic scenes do: every object, boundary and
label is known exactly, and each thing that makes medical images hard has its own knob. The
generators here make the clean scene (shape, size, touching, inter-subject variability, contrast,
texture); :mod:`medseg_course.data.degrade` adds the acquisition (blur, bias field, noise).

* :func:`make_nuclei2d`: a fluorescence-microscopy-like 2D field of nuclei, with a binary mask
  and an instance label map (like the 2018 Data Science Bowl data of the course).
* :func:`make_organ3d`: an MRI-like 3D crop with a hippocampus-like organ in two labelled parts
  (anterior head, posterior body and tail) and an unlabelled look-alike neighbour, with the label
  convention of the Medical Segmentation Decathlon Task04 Hippocampus (0, 1 anterior, 2 posterior).
* :func:`make_dataset`: lists of either, optionally degraded, for training toy models offline.

Conventions: images are float32 in ``[0, 1]`` with 1 the reference signal level (the unit of
every noise knob in :mod:`~medseg_course.data.degrade`); label maps are int64 (what
``torch.nn.functional.cross_entropy`` expects); ``seed`` is an int (same seed, bitwise same
sample), a :class:`numpy.random.Generator`, or None (drawn from NumPy's global generator, which
:func:`medseg_course.runtime.setup` seeds). Geometry and intensities draw from separate random
streams, so for a given seed changing ``contrast``, ``background``, ``texture`` or
``intensity_variability`` changes intensities only, never the objects.

Introduced in 01_medical_images.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy import ndimage, signal

from medseg_course.data.degrade import (
    Degradation,
    _as_generator,
    _check_number,
    _check_spacing,
    _spawn,
    degrade,
)

__all__ = ["SyntheticSample", "make_dataset", "make_nuclei2d", "make_organ3d"]


@dataclass(frozen=True, eq=False)
class SyntheticSample:
    """One synthetic image with its exact ground truth.

    Attributes
    ----------
    image : (H, W) or (D, H, W) ndarray of float32
        The image, clean intensities in ``[0, 1]`` (degraded ones may leave that range).
    mask : ndarray of int64, same shape as ``image``
        Semantic label map: 0 background, ``k`` the class ``class_names[k]``. Binary (0/1) for
        nuclei.
    instances : ndarray of int64, same shape as ``image``, or None
        Instance label map, 0 background and ``1..N`` one id per object, so that
        ``mask == (instances > 0)``. None for :func:`make_organ3d`, whose classes are single
        structures.
    spacing : tuple of float
        Pixel or voxel size per axis (mm for volumes, pixels for nuclei).
    class_names : tuple of str
        Name of each label value, ``class_names[0] == "background"``.
    params : Mapping
        Read-only record of how the sample was made: every generator argument (the seed
        included, None when a Generator was passed) and exact derived quantities (object centres,
        touching labels, structure volumes).

    Notes
    -----
    Frozen: the fields cannot be reassigned; :func:`dataclasses.replace` makes a modified copy,
    e.g. ``replace(sample, image=degrade(sample.image, noise=0.1, seed=0))``. The arrays
    themselves stay writable so that ``torch.from_numpy`` accepts them without a warning.

    Examples
    --------
    >>> s = make_nuclei2d((64, 64), n_objects=3, seed=0)
    >>> s
    SyntheticSample(kind='nuclei2d', image=float32(64, 64), mask=int64 classes ('background', 'nucleus'), instances=3, spacing=(1.0, 1.0))

    Introduced in 01_medical_images.
    """

    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray | None
    spacing: tuple[float, ...]
    class_names: tuple[str, ...]
    params: Mapping[str, Any]

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions, 2 or 3."""
        return self.image.ndim

    def __repr__(self) -> str:
        inst = "None" if self.instances is None else str(int(self.instances.max(initial=0)))
        return (f"SyntheticSample(kind={self.params.get('kind')!r}, "
                f"image={self.image.dtype}{self.image.shape}, "
                f"mask={self.mask.dtype} classes {self.class_names}, instances={inst}, "
                f"spacing={self.spacing})")


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------
def _check_shape(shape, ndim: int, minimum: int, name: str = "shape") -> tuple[int, ...]:
    axes = "(H, W)" if ndim == 2 else "(D, H, W)"
    if not isinstance(shape, (tuple, list)) or len(shape) != ndim or not all(
            isinstance(n, Integral) and not isinstance(n, bool) for n in shape):
        raise TypeError(f"{name} must be a tuple of {ndim} ints {axes}, got {shape!r}")
    if any(n < minimum for n in shape):
        raise ValueError(f"{name} must be at least {minimum} along every axis, got {tuple(shape)}")
    return tuple(int(n) for n in shape)


def _check_int(value, name: str, low: int, fix: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}" + (f"; {fix}" if fix else ""))
    return int(value)


def _check_intensities(background: float, contrast: float) -> tuple[float, float]:
    background = _check_number(background, "background", high=1.0,
                               fix="clean images live in [0, 1]")
    contrast = _check_number(contrast, "contrast", low=-1.0, high=1.0,
                             fix="it is object minus background intensity, e.g. 0.6")
    if not 0.0 <= background + contrast <= 1.0:
        raise ValueError(f"background + contrast must be in [0, 1] (the object intensity), got "
                         f"{background:g} + {contrast:g} = {background + contrast:g}; lower "
                         "background or |contrast|")
    return background, contrast


def _seed_record(seed):
    return int(seed) if isinstance(seed, Integral) and not isinstance(seed, bool) else None


def _smooth_field(rng: np.random.Generator, shape, sigma_px) -> np.ndarray:
    """A smooth random field of mean 0 and standard deviation 1."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


# --------------------------------------------------------------------------------------------
# 2D nuclei
# --------------------------------------------------------------------------------------------
_HARMONICS = np.arange(2, 7)  # radial Fourier harmonics k = 2..6 perturb the ellipse


def _radius(theta, a, b, orient, amps, phases):
    """Boundary radius r(theta) of perturbed ellipses; parameters broadcast against theta.

    ``amps``/``phases`` have the harmonic index on their last axis; the rest of their shape
    broadcasts like ``a``.
    """
    alpha = theta - orient
    r_ell = a * b / np.sqrt((b * np.cos(alpha)) ** 2 + (a * np.sin(alpha)) ** 2)
    wobble = sum(amps[..., j] * np.cos(k * theta + phases[..., j])
                 for j, k in enumerate(_HARMONICS))
    return r_ell * (1.0 + wobble)


def _cluster_sizes(n_touch: int, rng: np.random.Generator) -> list[int]:
    """Split ``n_touch`` objects into clumps of 2 to 4, never leaving a lone object."""
    sizes, rem = [], n_touch
    while rem > 0:
        options = [s for s in (2, 3, 4) if s <= rem and rem - s != 1]
        s = int(rng.choice(options))
        sizes.append(s)
        rem -= s
    return sizes


def _touching_labels(instances: np.ndarray) -> np.ndarray:
    """Labels that share an edge (4-connectivity) with another object."""
    found = []
    for a, b in ((instances[:, :-1], instances[:, 1:]), (instances[:-1, :], instances[1:, :])):
        sel = (a != b) & (a > 0) & (b > 0)
        found += [a[sel], b[sel]]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)


def make_nuclei2d(shape=(256, 256), n_objects: int = 30, *, radius: float = 8.0,
                  size_variability: float = 0.2, shape_variability: float = 0.3,
                  touching: float = 0.2, background: float = 0.2, contrast: float = 0.6,
                  intensity_variability: float = 0.0, texture: float = 0.0,
                  min_gap: float = 2.0, seed=None) -> SyntheticSample:
    """A 2D scene of nucleus-like objects with exact binary and instance ground truth.

    Parameters
    ----------
    shape : tuple of int
        Image size ``(H, W)``, at least 16 each.
    n_objects : int
        Exact number of nuclei (``instances.max() == n_objects``), ``>= 0``.
    radius : float
        Mean equivalent radius in pixels, ``>= 2``.
    size_variability : float
        In ``[0, 1]``: coefficient of variation of the radius (log-normal); radii never fall
        below 2 px.
    shape_variability : float
        In ``[0, 1]``: 0 gives circles; larger values give elongated ellipses (aspect ratio up to
        about 2 at 1) with irregular boundaries (random radial Fourier harmonics 2 to 6).
    touching : float
        In ``[0, 1]``: fraction of nuclei that touch another one, in clumps of 2 to 4 that share
        a boundary. The count is ``round(touching * n_objects)``, raised to 2 if that gives 1
        (and 0 when ``n_objects < 2``); ``params["touching_labels"]`` lists them. All other
        nuclei keep at least ``min_gap`` pixels from every other nucleus.
    background : float
        Background intensity in ``[0, 1]``.
    contrast : float
        Object minus background intensity, in ``[-1, 1]`` with ``background + contrast`` in
        ``[0, 1]``. Positive: bright nuclei (fluorescence); negative: dark nuclei (brightfield).
    intensity_variability : float
        In ``[0, 1]``: coefficient of variation of each nucleus's contrast (log-normal), as with
        uneven staining; it defeats a single global threshold.
    texture : float
        In ``[0, 1]``: standard deviation of a smooth random chromatin-like texture inside the
        nuclei, as a fraction of ``|contrast|``.
    min_gap : float
        Smallest distance in pixels between nuclei that do not touch, ``>= 1.5`` (so they are not
        even diagonal neighbours).
    seed : None, int or numpy.random.Generator
        Random seed.

    Returns
    -------
    SyntheticSample
        ``image`` (H, W) float32 in ``[0, 1]``; ``mask`` (H, W) int64 in {0, 1};
        ``instances`` (H, W) int64 in ``0..n_objects`` numbered in raster order of the centres;
        ``spacing`` ``(1.0, 1.0)`` (pixel units); ``params`` with the arguments, ``centers``
        ``((y, x), ...)``, ``radii`` (equivalent radius per label) and ``touching_labels``.

    Raises
    ------
    ValueError
        If an argument is out of range, or the nuclei do not fit (too many or too large for the
        image: lower ``n_objects`` or ``radius``, or enlarge ``shape``).

    Notes
    -----
    Each nucleus is a star-shaped region ``rho <= r(theta)`` around its centre, with
    ``r(theta) = r_ellipse(theta) * (1 + sum_k a_k cos(k theta + phi_k))``. Nuclei of a clump
    are placed so that their outlines overlap by about a quarter of the smaller radius; each
    contested pixel goes to the nucleus in which it lies relatively deeper (smaller
    ``rho / r(theta)``), which flattens the shared boundary as in real clumps. No object touches
    the image border, so every nucleus is complete. The clean image is
    ``background + contrast_i`` inside nucleus ``i`` (plus texture), ``background`` outside,
    clipped to ``[0, 1]``; without texture and intensity variability its CNR after
    ``degrade(..., noise=s)`` is ``|contrast| / s``.

    The difficulties it models: touching nuclei that a threshold merges into one connected
    component (the reason for watershed and instance methods), irregular shapes, varied sizes,
    and uneven staining.

    References
    ----------
    .. [1] Caicedo et al. "Nucleus segmentation across imaging experiments: the 2018 Data
       Science Bowl", Nature Methods 16, 1247-1253, 2019. doi:10.1038/s41592-019-0612-7

    Examples
    --------
    >>> s = make_nuclei2d(n_objects=12, touching=0.5, seed=0)
    >>> s.image.shape, s.image.dtype, int(s.instances.max())
    ((256, 256), dtype('float32'), 12)
    >>> bool(np.array_equal(s.mask, s.instances > 0)), len(s.params["touching_labels"])
    (True, 6)

    Introduced in 01_medical_images.
    """
    shape = _check_shape(shape, 2, 16)
    n = _check_int(n_objects, "n_objects", 0)
    radius = _check_number(radius, "radius", low=2.0, fix="nuclei smaller than 2 px vanish")
    size_variability = _check_number(size_variability, "size_variability", high=1.0)
    shape_variability = _check_number(shape_variability, "shape_variability", high=1.0)
    touching = _check_number(touching, "touching", high=1.0,
                             fix="it is the fraction of nuclei that touch another")
    background, contrast = _check_intensities(background, contrast)
    intensity_variability = _check_number(intensity_variability, "intensity_variability", high=1.0)
    texture = _check_number(texture, "texture", high=1.0)
    min_gap = _check_number(min_gap, "min_gap", low=1.5,
                            fix="below 1.5 px separate nuclei could be diagonal neighbours")
    geo_rng, tone_rng, tex_rng = _spawn(seed, 3)

    # --- shapes: equivalent radius, ellipse, Fourier wobble (always drawn: same stream use) ---
    s_ln = math.sqrt(math.log1p(size_variability**2))
    r_eq = np.maximum(radius * np.exp(s_ln * geo_rng.standard_normal(n) - s_ln**2 / 2), 2.0)
    aspect = np.exp(0.45 * shape_variability * np.abs(geo_rng.standard_normal(n)))
    a, b = r_eq * np.sqrt(aspect), r_eq / np.sqrt(aspect)
    orient = geo_rng.uniform(0, np.pi, n)
    amps = shape_variability * 0.3 / _HARMONICS * np.abs(geo_rng.standard_normal((n, 5)))
    amps *= np.minimum(1.0, 0.5 / np.maximum(amps.sum(1, keepdims=True), 1e-12))  # keeps r > 0
    phases = geo_rng.uniform(0, 2 * np.pi, (n, 5))
    probe = np.linspace(0, 2 * np.pi, 361)[None, :]
    r_max = _radius(probe, a[:, None], b[:, None], orient[:, None], amps[:, None, :],
                    phases[:, None, :]).max(1) + 0.5

    def r_at(i, theta):
        return _radius(np.asarray(theta, float), a[i], b[i], orient[i], amps[i], phases[i])

    # --- which nuclei touch: clumps of 2-4 ---
    n_touch = int(round(touching * n)) if n >= 2 else 0
    n_touch = 2 if n_touch == 1 else n_touch
    sizes = _cluster_sizes(n_touch, geo_rng)

    # --- footprints: pixels of each nucleus around an integer centre, and its keep-out halo ---
    reach = np.ceil(r_max).astype(int)
    if n and np.any(2 * reach + 3 > np.array(shape)[:, None]):
        raise ValueError(f"radius {radius:g} is too large for shape {shape}: a nucleus does not "
                         "fit; lower radius, size_variability or shape_variability, or enlarge "
                         "shape")
    g = int(math.floor(min_gap))
    oy, ox = np.mgrid[-g:g + 1, -g:g + 1]
    disk = np.hypot(oy, ox) <= min_gap
    depth_maps, offsets, halos = [], [], []
    for i in range(n):
        oy, ox = np.mgrid[-reach[i]:reach[i] + 1, -reach[i]:reach[i] + 1]
        q = np.hypot(oy, ox) / r_at(i, np.arctan2(oy, ox))
        foot = q <= 1.0
        depth_maps.append(q)
        offsets.append(np.nonzero(foot))
        halo = ndimage.binary_dilation(np.pad(foot, g), structure=disk)
        halos.append(np.nonzero(halo))

    # --- placement: random sequential, exact at pixel level, never touching the image border ---
    centers = np.zeros((n, 2), int)
    forbidden = np.zeros(shape, bool)  # committed nuclei dilated by min_gap

    def lo_hi(i):
        return reach[i] + 1, np.array(shape) - 2 - reach[i]

    def fits(i, cand):
        """Which integer candidate centres (k, 2) keep nucleus i off every forbidden pixel."""
        lo, hi = lo_hi(i)
        ok = np.all((cand >= lo) & (cand <= hi), axis=1)
        cy = np.clip(cand[:, :1], lo, hi[0]) + offsets[i][0][None] - reach[i]
        cx = np.clip(cand[:, 1:], lo, hi[1]) + offsets[i][1][None] - reach[i]
        return ok & ~forbidden[cy, cx].any(1)

    def place_free(i):
        lo, hi = lo_hi(i)
        for _ in range(24):  # cheap: a few random candidates at a time
            cand = geo_rng.integers(lo, hi + 1, size=(32, 2))
            ok = np.flatnonzero(fits(i, cand))
            if ok.size:
                return cand[ok[0]]
        # exact: every free position at once (correlation of forbidden with the footprint)
        foot = depth_maps[i] <= 1.0
        hit = signal.fftconvolve(forbidden.astype(np.float32), foot[::-1, ::-1].astype(np.float32),
                                 mode="same") > 0.5
        hit[:lo], hit[hi[0] + 1:], hit[:, :lo], hit[:, hi[1] + 1:] = True, True, True, True
        free = np.argwhere(~hit)
        if not free.size:
            return None
        c = free[int(geo_rng.integers(len(free)))]
        return c if fits(i, c[None])[0] else None

    def commit(i):
        hy, hx = halos[i]
        yy = np.clip(hy + centers[i, 0] - reach[i] - g, 0, shape[0] - 1)
        xx = np.clip(hx + centers[i, 1] - reach[i] - g, 0, shape[1] - 1)
        forbidden[yy, xx] = True

    def crowded():
        return ValueError(f"could not place {n} nuclei of radius {radius:g} in shape {shape}: "
                          "the scene is too crowded; lower n_objects or radius, or enlarge shape")

    # Biggest first, clumps and single nuclei alike: large shapes find no room in a full scene.
    units = [[int(i) for i in m] for m in np.split(np.arange(n_touch), np.cumsum(sizes)[:-1])]
    units = [u for u in units if u] + [[i] for i in range(n_touch, n)]
    units.sort(key=lambda u: (-int(reach[u].max()), u[0]))
    for members in units:
        for _attempt in range(30):
            c0 = place_free(members[0])
            if c0 is None:
                raise crowded()
            centers[members[0]] = c0
            done = [members[0]]
            for i in members[1:]:
                anchor = done[int(geo_rng.integers(len(done)))]
                phi = geo_rng.uniform(0, 2 * np.pi, 64)
                overlap = max(2.0, 0.25 * min(r_eq[i], r_eq[anchor]))
                dist = r_at(anchor, phi) + r_at(i, phi + np.pi) - overlap
                step = dist[:, None] * np.stack([np.sin(phi), np.cos(phi)], 1)
                cand = np.rint(centers[anchor] + step).astype(int)
                ok = fits(i, cand)
                for j in done:  # clump mates other than the anchor: no deep overlap
                    if j != anchor:
                        ok &= np.linalg.norm(cand - centers[j], axis=1) >= 0.9 * (r_eq[i] + r_eq[j])
                hits = np.flatnonzero(ok)
                if not hits.size:
                    break
                centers[i] = cand[hits[0]]
                done.append(i)
            if len(done) == len(members):
                for j in done:
                    commit(j)
                break
        else:
            raise crowded()

    # --- rasterise: label = raster order of centres; contested pixels go to the deeper nucleus ---
    order = np.lexsort((centers[:, 1], centers[:, 0])) if n else np.zeros(0, int)
    label_of = np.empty(n, np.int64)
    label_of[order] = np.arange(1, n + 1)
    instances = np.zeros(shape, np.int64)
    depth = np.full(shape, np.inf)
    boxes = []
    for i in range(n):
        box = (slice(centers[i, 0] - reach[i], centers[i, 0] + reach[i] + 1),
               slice(centers[i, 1] - reach[i], centers[i, 1] + reach[i] + 1))
        boxes.append(box)
        q, sub_d, sub_l = depth_maps[i], depth[box], instances[box]
        claim = (q <= 1.0) & (q < sub_d)
        sub_d[claim] = q[claim]
        sub_l[claim] = label_of[i]
    # A pixel joined to its nucleus only diagonally (tip of a thin spike) is dropped, so that
    # every nucleus is one 4-connected region.
    for i in range(n):
        own = instances[boxes[i]] == label_of[i]
        parts, count = ndimage.label(own)
        if count > 1:
            keep = 1 + int(np.argmax(ndimage.sum_labels(own, parts, range(1, count + 1))))
            instances[boxes[i]][own & (parts != keep)] = 0
    mask = (instances > 0).astype(np.int64)

    # --- intensities (own streams: changing them never moves a nucleus) ---
    s_iv = math.sqrt(math.log1p(intensity_variability**2))
    gains = np.exp(s_iv * tone_rng.standard_normal(n) - s_iv**2 / 2)
    level = np.zeros(n + 1)
    level[label_of] = contrast * gains
    image = background + level[instances]
    if texture > 0 and n:
        image += texture * abs(contrast) * _smooth_field(tex_rng, shape, 1.5) * mask
    image = np.clip(image, 0.0, 1.0).astype(np.float32)

    by_label = np.argsort(label_of)
    params = dict(
        kind="nuclei2d", shape=shape, n_objects=n, radius=radius,
        size_variability=size_variability, shape_variability=shape_variability,
        touching=touching, background=background, contrast=contrast,
        intensity_variability=intensity_variability, texture=texture, min_gap=min_gap,
        seed=_seed_record(seed),
        centers=tuple((float(centers[i, 0]), float(centers[i, 1])) for i in by_label),
        radii=tuple(float(r_eq[i]) for i in by_label),
        touching_labels=tuple(int(v) for v in _touching_labels(instances)),
    )
    return SyntheticSample(image=image, mask=mask, instances=instances, spacing=(1.0, 1.0),
                           class_names=("background", "nucleus"),
                           params=MappingProxyType(params))


# --------------------------------------------------------------------------------------------
# 3D organ
# --------------------------------------------------------------------------------------------
# Template anatomy in mm, axes (z, y, x), origin at the centre of the field of view: a curved
# tube whose thick anterior end (the "head") tapers into a thin posterior "body and tail".
_CTRL = np.array([[-6.0, 13.0, -1.0], [-6.0, 2.0, 0.0], [-2.0, -9.0, 2.0], [3.0, -17.0, 4.0]])
_R_HEAD, _R_TAIL, _T_SPLIT = 6.5, 2.5, 0.33
_DISTRACTOR_OFFSET = np.array([12.5, 1.0, 0.0])  # from the head end, superior
_DISTRACTOR_AXES = np.array([4.5, 6.0, 5.0])
_GAP_MM = 1.5


def _rotation(angles_deg) -> np.ndarray:
    az, ay, ax = np.deg2rad(angles_deg)
    rz = np.array([[1, 0, 0], [0, np.cos(az), -np.sin(az)], [0, np.sin(az), np.cos(az)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rx = np.array([[np.cos(ax), -np.sin(ax), 0], [np.sin(ax), np.cos(ax), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _bezier(ctrl: np.ndarray, n: int) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    return ((1 - t) ** 3 * ctrl[0] + 3 * (1 - t) ** 2 * t * ctrl[1]
            + 3 * (1 - t) * t**2 * ctrl[2] + t**3 * ctrl[3])


def _tube_distance(points: np.ndarray, coords) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each voxel to a polyline and the arc-length fraction of its nearest point."""
    seg = np.diff(points, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg_len)]) / seg_len.sum()
    best = best_t = None
    for s in range(len(seg)):
        w = [c - p for c, p in zip(coords, points[s])]
        u = np.clip(sum(wi * si for wi, si in zip(w, seg[s])) / seg_len[s] ** 2, 0.0, 1.0)
        d2 = sum((wi - u * si) ** 2 for wi, si in zip(w, seg[s]))
        t = cum[s] + u * (cum[s + 1] - cum[s])
        if best is None:
            best, best_t = d2, t
        else:
            closer = d2 < best
            best = np.where(closer, d2, best)
            best_t = np.where(closer, t, best_t)
    return np.sqrt(best), np.clip(best_t, 0.0, 1.0)


def make_organ3d(shape=(48, 64, 48), *, spacing=(1.0, 1.0, 1.0), variability: float = 0.5,
                 background: float = 0.3, contrast: float = 0.4, distractor: bool = True,
                 distractor_contrast: float | None = None, label_distractor: bool = False,
                 texture: float = 0.0, seed=None) -> SyntheticSample:
    """A 3D MRI-like crop with a two-part organ, a look-alike distractor and exact labels.

    Parameters
    ----------
    shape : tuple of int
        Volume size ``(D, H, W)``, at least 8 each. The anatomy is defined in millimetres, so the
        field of view is ``shape * spacing``; it should be at least about 36 x 48 x 36 mm to hold
        the whole organ (the default is 48 x 64 x 48 mm).
    spacing : float or tuple of float
        Voxel size in mm per axis, e.g. ``(3.0, 1.0, 1.0)`` for thick slices: the same anatomy is
        sampled more coarsely along that axis.
    variability : float
        In ``[0, 1]``: inter-subject variability, a multiplier on every standard deviation of the
        population. 0 gives the same template subject for every seed (only texture differs); at 1
        the standard deviations are: size 7 %, position 2 mm, orientation 4 degrees per axis,
        centreline control points 1.5 mm (curvature), head and tail radius 5 %, head/body split
        2.5 % of the length, surface bumpiness 8 % of the radius, distractor position 1 mm and
        size 5 %; every draw is truncated at 2 standard deviations.
    background : float
        Intensity of the surrounding tissue, in ``[0, 1]``.
    contrast : float
        Organ minus background intensity (``background + contrast`` in ``[0, 1]``). Head and body
        have the same intensity: only anatomy separates the two labels.
    distractor : bool
        Add an unlabelled ellipsoid just above the head (like the amygdala above the
        hippocampal head), at least 1.5 mm away from the organ.
    distractor_contrast : float, optional
        Distractor minus background intensity; default: equal to ``contrast`` (indistinguishable
        by intensity alone).
    label_distractor : bool
        Give the distractor label 3 (``"distractor"``) instead of leaving it background.
    texture : float
        In ``[0, 1]``: standard deviation of a smooth tissue texture (correlation about 1 mm)
        everywhere, as a fraction of ``|contrast|``.
    seed : None, int or numpy.random.Generator
        Random seed: it picks the subject from the population.

    Returns
    -------
    SyntheticSample
        ``image`` (D, H, W) float32 in ``[0, 1]``; ``mask`` (D, H, W) int64 with 0 background,
        1 anterior (head), 2 posterior (body and tail) [, 3 distractor]; ``instances`` None;
        ``spacing`` in mm; ``params`` with the arguments and ``volumes_mm3`` (exact volume of each
        labelled structure), ``scale``, ``translation_mm`` and ``rotation_deg`` of the subject.

    Raises
    ------
    ValueError
        If an argument is out of range.

    Notes
    -----
    The organ is a tube around a cubic Bezier centreline whose radius tapers from 6.5 mm at the
    anterior end to 2.5 mm at the posterior end (times a smooth random bumpiness). A voxel belongs
    to it when its distance to the centreline is at most the radius at the nearest centreline
    point; it is *anterior* when that point lies in the first third of the centreline's arc length,
    *posterior* otherwise (the split moves with ``variability``). Labels are evaluated at voxel
    centres, so the label map is exact for the sampled image: no partial volume in the clean image
    (add it with ``degrade(..., blur=...)``). The subject is kept inside the field of view by
    shifting it when a draw would push it out. Everything but the surface bumpiness is drawn in
    millimetres, so with ``variability=0`` the same seed gives the same anatomy at any
    ``spacing``; the bumpiness (and the texture) is drawn on the voxel grid and changes with
    ``shape`` and ``spacing``.

    The difficulties it models: a boundary between two labels with no intensity edge (head vs
    body), a neighbour with the organ's intensity (the distractor), anisotropic voxels, and
    variation between subjects, as in the Medical Segmentation Decathlon hippocampus task [1]_.

    References
    ----------
    .. [1] Antonelli et al. "The Medical Segmentation Decathlon", Nature Communications 13, 4128,
       2022. doi:10.1038/s41467-022-30695-9

    Examples
    --------
    >>> s = make_organ3d(seed=0)
    >>> s.image.shape, s.class_names, sorted(np.unique(s.mask).tolist())
    ((48, 64, 48), ('background', 'anterior', 'posterior'), [0, 1, 2])
    >>> thick = make_organ3d(spacing=(3.0, 1.0, 1.0), shape=(16, 64, 48), seed=0)
    >>> thick.spacing, thick.image.shape
    ((3.0, 1.0, 1.0), (16, 64, 48))

    Introduced in 01_medical_images.
    """
    shape = _check_shape(shape, 3, 8)
    sp = _check_spacing(spacing, 3)
    variability = _check_number(variability, "variability", high=1.0,
                                fix="0 is the template subject, 1 the widest population")
    background, contrast = _check_intensities(background, contrast)
    if not isinstance(distractor, (bool, np.bool_)):
        raise TypeError(f"distractor must be True or False, got {distractor!r}")
    if not isinstance(label_distractor, (bool, np.bool_)):
        raise TypeError(f"label_distractor must be True or False, got {label_distractor!r}")
    if label_distractor and not distractor:
        raise ValueError("label_distractor=True needs distractor=True; there is nothing to label")
    if distractor_contrast is None:
        distractor_contrast = contrast
    else:
        _, distractor_contrast = _check_intensities(background, distractor_contrast)
    texture = _check_number(texture, "texture", high=1.0)
    geo_rng, bump_rng, tex_rng = _spawn(seed, 3)
    v = variability

    def z(*size):  # standard normals truncated at 2, always drawn whatever the variability
        return np.clip(geo_rng.standard_normal(size), -2.0, 2.0)

    scale = float(np.exp(0.07 * v * z(1)[0]))
    rot = 4.0 * v * z(3)
    trans = 2.0 * v * z(3)
    ctrl = _CTRL + 1.5 * v * z(4, 3)
    r_head = _R_HEAD * np.exp(0.05 * v * z(1)[0])
    r_tail = _R_TAIL * np.exp(0.05 * v * z(1)[0])
    t_split = _T_SPLIT + 0.025 * v * z(1)[0]
    d_offset = _DISTRACTOR_OFFSET + np.array([0.0, 1.0, 1.0]) * v * z(3)
    d_axes = _DISTRACTOR_AXES * np.exp(0.05 * v * z(3))

    # Subject transform x -> R (scale x) + trans, applied to the template points.
    R = _rotation(rot)
    line = _bezier(ctrl, 17) * scale @ R.T
    radii_scale = scale
    d_center = (ctrl[0] + d_offset) * scale @ R.T
    d_axes = d_axes * scale
    # Keep the subject inside the field of view (1 voxel margin).
    half = (np.array(shape) - 1) / 2.0 * np.array(sp) - np.array(sp)
    r_top = r_head * radii_scale * 1.1
    lo_pts = np.vstack([line - r_top, (d_center - d_axes)[None]] if distractor else [line - r_top])
    hi_pts = np.vstack([line + r_top, (d_center + d_axes)[None]] if distractor else [line + r_top])
    lo_ext, hi_ext = lo_pts.min(0) + trans, hi_pts.max(0) + trans
    shift = np.where(hi_ext > half, half - hi_ext, 0.0) + np.where(lo_ext < -half, -half - lo_ext, 0.0)
    shift = np.where((hi_ext - lo_ext) > 2 * half, 0.0, shift)  # does not fit: stay centred
    trans = trans + shift
    line = line + trans
    d_center = d_center + trans

    bumps = np.ones(shape)
    if v > 0:
        bumps = 1.0 + 0.08 * v * _smooth_field(bump_rng, shape, [3.0 / d for d in sp])
    # Work in the bounding box of organ and distractor only (about a quarter of the volume).
    reach = r_head * radii_scale * float(bumps.max()) + _GAP_MM + max(sp)
    lo_mm, hi_mm = line.min(0) - reach, line.max(0) + reach
    if distractor:
        lo_mm = np.minimum(lo_mm, d_center - d_axes.max())
        hi_mm = np.maximum(hi_mm, d_center + d_axes.max())
    box = tuple(slice(int(np.clip(np.floor(lo / d + (n - 1) / 2.0), 0, n)),
                      int(np.clip(np.ceil(hi / d + (n - 1) / 2.0) + 1, 0, n)))
                for lo, hi, n, d in zip(lo_mm, hi_mm, shape, sp))
    coords = [((np.arange(n)[b] - (n - 1) / 2.0) * d).reshape([-1 if k == a else 1 for k in range(3)])
              for a, (n, d, b) in enumerate(zip(shape, sp, box))]
    dist, t = _tube_distance(line, coords)
    radius_at = (r_tail + (r_head - r_tail) * (1.0 - t) ** 1.5) * radii_scale * bumps[box]
    organ = dist <= radius_at
    labels = np.zeros(organ.shape, np.int64)
    labels[organ & (t < t_split)] = 1
    labels[organ & (t >= t_split)] = 2
    near = np.zeros(organ.shape, bool)
    if distractor:
        local = [c - m for c, m in zip(coords, d_center)]
        u = [sum(R[i, j] * local[i] for i in range(3)) / d_axes[j] for j in range(3)]
        near = (u[0] ** 2 + u[1] ** 2 + u[2] ** 2 <= 1.0) & (dist > radius_at + _GAP_MM)
        if label_distractor:
            labels[near] = 3
    mask = np.zeros(shape, np.int64)
    mask[box] = labels
    distractor_voxels = np.zeros(shape, bool)
    distractor_voxels[box] = near
    image = np.full(shape, background)
    image[(mask == 1) | (mask == 2)] += contrast
    image[distractor_voxels] += distractor_contrast
    if texture > 0:
        image += texture * abs(contrast) * _smooth_field(tex_rng, shape, [1.0 / d for d in sp])
    image = np.clip(image, 0.0, 1.0).astype(np.float32)

    voxel = float(np.prod(sp))
    class_names = ("background", "anterior", "posterior") + (("distractor",) if label_distractor
                                                              else ())
    params = dict(
        kind="organ3d", shape=shape, spacing=sp, variability=variability, background=background,
        contrast=contrast, distractor=bool(distractor), distractor_contrast=distractor_contrast,
        label_distractor=bool(label_distractor), texture=texture, seed=_seed_record(seed),
        volumes_mm3={name: float((mask == k).sum()) * voxel
                     for k, name in enumerate(class_names) if k > 0},
        distractor_volume_mm3=float(distractor_voxels.sum()) * voxel,
        scale=scale, translation_mm=tuple(float(x) for x in trans),
        rotation_deg=tuple(float(x) for x in rot),
    )
    return SyntheticSample(image=image, mask=mask, instances=None, spacing=sp,
                           class_names=class_names, params=MappingProxyType(params))


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------
_GENERATORS = {"nuclei2d": make_nuclei2d, "organ3d": make_organ3d}


def make_dataset(n: int, kind: str = "nuclei2d", *, degradation: Degradation | None = None,
                 seed=None, **kwargs) -> list[SyntheticSample]:
    """A list of ``n`` independent synthetic samples, optionally degraded, for toy training.

    Parameters
    ----------
    n : int
        Number of samples, ``>= 0``.
    kind : {"nuclei2d", "organ3d"}
        Which generator: :func:`make_nuclei2d` or :func:`make_organ3d`.
    degradation : Degradation, optional
        If given, each image goes through :func:`~medseg_course.data.degrade.degrade` with these
        settings (its own noise per sample); the labels stay exact.
    seed : None, int or numpy.random.Generator
        Random seed for the whole set.
    **kwargs
        Passed to the generator, e.g. ``n_objects=20`` or ``variability=1.0``.

    Returns
    -------
    list of SyntheticSample
        Sample ``i`` has ``params["index"] == i``, ``params["dataset_seed"]`` and, if degraded,
        ``params["degradation"]`` (the settings as a dict).

    Raises
    ------
    ValueError
        If ``n`` or ``kind`` is invalid.
    TypeError
        If a keyword is not an argument of the generator.

    Notes
    -----
    Each sample gets its own stream from ``numpy.random.SeedSequence(seed).spawn``, so sample ``i``
    is the same whatever ``n``: ``make_dataset(10, seed=0)[:5]`` equals ``make_dataset(5, seed=0)``,
    and a training set and a test set made with different seeds are independent.

    Examples
    --------
    >>> train = make_dataset(4, "nuclei2d", n_objects=8, radius=5.0, shape=(64, 64), seed=0,
    ...                      degradation=Degradation(noise=0.1))
    >>> len(train), train[0].image.shape, train[3].params["index"]
    (4, (64, 64), 3)

    Introduced in 01_medical_images.
    """
    n = _check_int(n, "n", 0)
    if kind not in _GENERATORS:
        raise ValueError(f"kind must be one of {sorted(_GENERATORS)}, got {kind!r}")
    generator = _GENERATORS[kind]
    accepted = set(inspect.signature(generator).parameters) - {"seed"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise TypeError(f"{generator.__name__} has no argument(s) {unknown}; it accepts "
                        f"{sorted(accepted)}")
    if degradation is not None and not isinstance(degradation, Degradation):
        raise TypeError(f"degradation must be a Degradation or None, got "
                        f"{type(degradation).__name__}; e.g. Degradation(noise=0.1)")
    if isinstance(seed, Integral) and not isinstance(seed, bool) and seed >= 0:
        entropy = int(seed)
    else:
        entropy = int(_as_generator(seed).integers(0, 2**63 - 1))
    samples = []
    for i, child in enumerate(np.random.SeedSequence(entropy).spawn(n)):
        make_rng, noise_rng = (np.random.default_rng(s) for s in child.spawn(2))
        sample = generator(seed=make_rng, **kwargs)
        params = dict(sample.params, index=i, dataset_seed=_seed_record(seed))
        image = sample.image
        if degradation is not None:
            image = degrade(image, degradation, spacing=sample.spacing, seed=noise_rng)
            params["degradation"] = dataclasses.asdict(degradation)
        samples.append(dataclasses.replace(sample, image=image, params=MappingProxyType(params)))
    return samples
