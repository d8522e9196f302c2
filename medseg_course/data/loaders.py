"""PyTorch datasets and loaders over the course's samples: random patches, whole images, and
centre-pixel patches for a patch classifier, with flips/rot90 augmentation and seeding.

Introduced in 06_cnn.

Samples
-------
Every dataset here takes a sequence of samples: :class:`~medseg_course.data.datasets.Sample`
(``image (C, *spatial)``), :class:`~medseg_course.data.synthetic.SyntheticSample`
(``image (*spatial)``, a channel axis is added) or ``(image, mask)`` pairs. They are converted
once, at construction, to float32 images ``(C, *spatial)`` and int64 masks ``(*spatial)`` held in
memory (DSB2018 and MSD Hippocampus fit easily). Items come out as torch tensors, and a
:class:`torch.utils.data.DataLoader` stacks them into the batches that the models, losses and
:func:`medseg_course.train.fit` expect::

    image (B, C, *patch) float32,  mask (B, *patch) int64  [, weight_map (B, *patch) float32]

Randomness
----------
Random crops, pixels and augmentations are drawn from PyTorch's generator inside
``__getitem__``. A DataLoader made by :func:`make_loader` carries its own seeded generator, which
drives the shuffling and seeds each worker process's generator; without workers the draws come
from the global generator, which :func:`medseg_course.train.fit` seeds from its config. Either
way, the same seeds give the same batches. Give a dataset ``seed=`` to draw its crops or pixels
**once**, at construction, from that seed: a fixed validation set, the same at every epoch.
"""

from __future__ import annotations

import numbers
import random
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "PatchDataset",
    "ImageDataset",
    "CentrePixelDataset",
    "random_flip_rot90",
    "make_loader",
    "seed_worker",
]


# --------------------------------------------------------------------------------------------
# converting samples
# --------------------------------------------------------------------------------------------


def _as_pair(item, index: int) -> tuple[np.ndarray, np.ndarray]:
    if hasattr(item, "image") and hasattr(item, "mask"):
        image, mask = item.image, item.mask
    elif isinstance(item, (tuple, list)) and len(item) == 2:
        image, mask = item
    else:
        raise TypeError(
            f"samples[{index}] must be a Sample/SyntheticSample (with .image and .mask) or an "
            f"(image, mask) pair, got {type(item).__name__}"
        )
    image = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    mask = np.asarray(mask.detach().cpu() if isinstance(mask, torch.Tensor) else mask)
    if mask.ndim not in (2, 3):
        raise ValueError(f"samples[{index}].mask must be (H, W) or (D, H, W), got shape {mask.shape}")
    if image.ndim == mask.ndim:
        image = image[None]  # (1, *spatial): a channel axis for single-channel images
    if image.ndim != mask.ndim + 1 or image.shape[1:] != mask.shape:
        raise ValueError(
            f"samples[{index}]: image {image.shape} and mask {mask.shape} do not share a grid; "
            "expected image (C, *spatial) or (*spatial) and mask (*spatial)"
        )
    if mask.dtype.kind not in "biu":
        if mask.dtype.kind != "f" or not np.array_equal(mask, np.round(mask)):
            raise ValueError(f"samples[{index}].mask must hold integer labels, got dtype {mask.dtype}")
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(mask, dtype=np.int64)


def _as_pairs(samples) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(samples, (str, bytes)) or not isinstance(samples, Sequence):
        raise TypeError(f"samples must be a sequence of samples, got {type(samples).__name__}")
    if len(samples) == 0:
        raise ValueError("samples is empty: pass at least one sample")
    pairs = [_as_pair(s, i) for i, s in enumerate(samples)]
    dims = {m.ndim for _, m in pairs}
    chans = {im.shape[0] for im, _ in pairs}
    if len(dims) > 1 or len(chans) > 1:
        raise ValueError(
            f"samples mix spatial dimensions {sorted(dims)} or channel counts {sorted(chans)}; "
            "use one kind (load_dataset(..., channels=1) gives the same channels everywhere)"
        )
    return pairs


def _as_weight_maps(weight_maps, pairs) -> list[np.ndarray] | None:
    if weight_maps is None:
        return None
    if len(weight_maps) != len(pairs):
        raise ValueError(f"weight_maps must hold one map per sample ({len(pairs)}), got {len(weight_maps)}")
    out = []
    for i, (w, (_, m)) in enumerate(zip(weight_maps, pairs)):
        w = np.asarray(w.detach().cpu() if isinstance(w, torch.Tensor) else w, dtype=np.float32)
        if w.shape != m.shape:
            raise ValueError(f"weight_maps[{i}] must have the mask's shape {m.shape}, got {w.shape}")
        out.append(np.ascontiguousarray(w))
    return out


def _check_size(size, ndim: int, name: str) -> tuple[int, ...]:
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size),) * ndim
    if (not isinstance(size, Sequence) or len(size) != ndim
            or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in size)):
        raise ValueError(f"{name} must be a positive int or {ndim} positive ints, got {size!r}")
    return tuple(int(n) for n in size)


def _pad_to(array: np.ndarray, size: Sequence[int], value) -> np.ndarray:
    """Pad the trailing len(size) axes of ``array`` (centred) to at least ``size``."""
    lead = array.ndim - len(size)
    pads = [(0, 0)] * lead
    for n, p in zip(array.shape[lead:], size):
        d = max(p - n, 0)
        pads.append((d // 2, d - d // 2))
    if not any(a or b for a, b in pads):
        return array
    return np.pad(array, pads, mode="constant", constant_values=value)


def _randint(high: int) -> int:
    """A random int in [0, high) from PyTorch's global generator (seeded per loader worker)."""
    return int(torch.randint(high, (1,)).item()) if high > 1 else 0


# --------------------------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------------------------


def random_flip_rot90(*arrays: torch.Tensor, spatial_dims: int = 2) -> tuple[torch.Tensor, ...]:
    """Flip every spatial axis with probability 1/2 and rotate by a random multiple of 90 degrees.

    Introduced in 06_cnn.

    Parameters
    ----------
    *arrays : torch.Tensor
        An image ``(C, *spatial)`` and masks/weight maps ``(*spatial)``: the same transform is
        applied to all, on their last ``spatial_dims`` axes.
    spatial_dims : {2, 3}, default 2

    Returns
    -------
    tuple of torch.Tensor
        The transformed arrays (contiguous copies).

    Notes
    -----
    The rotation acts in the ``(H, W)`` plane (for volumes too: the through-plane axis of MRI
    usually has another spacing) and only when ``H == W``, since a rotation swaps them and
    crops of one batch must share a shape. Flips and 90-degree rotations move pixels without
    interpolation, so labels stay exact. Random draws come from PyTorch's global generator.

    Examples
    --------
    >>> image, mask = torch.arange(16.0).view(1, 4, 4), torch.eye(4, dtype=torch.long)
    >>> a, m = random_flip_rot90(image, mask)
    >>> a.shape, m.shape, bool((a[0] == a[0]).all())
    (torch.Size([1, 4, 4]), torch.Size([4, 4]), True)
    """
    if spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    draws = torch.randint(2, (spatial_dims,))
    flips = [-(i + 1) for i in range(spatial_dims) if draws[i]]  # axes counted from the end
    out = list(arrays)
    if flips:
        out = [a.flip(flips) for a in out]
    if out and out[0].shape[-1] == out[0].shape[-2]:
        k = int(torch.randint(4, (1,)).item())
        if k:
            out = [torch.rot90(a, k, dims=(-2, -1)) for a in out]
    return tuple(a.contiguous() for a in out)


# --------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------


class _Base(Dataset):
    def __init__(self, samples, weight_maps, augment):
        self.pairs = _as_pairs(samples)
        self.weights = _as_weight_maps(weight_maps, self.pairs)
        self.spatial_dims = self.pairs[0][1].ndim
        self.in_channels = self.pairs[0][0].shape[0]
        self.augment = bool(augment)

    def _finish(self, image, mask, weight):
        arrays = [torch.from_numpy(np.ascontiguousarray(image)), torch.from_numpy(np.ascontiguousarray(mask))]
        if weight is not None:
            arrays.append(torch.from_numpy(np.ascontiguousarray(weight)))
        if self.augment:
            arrays = list(random_flip_rot90(*arrays, spatial_dims=self.spatial_dims))
        return tuple(arrays)


class PatchDataset(_Base):
    """Random fixed-size patches of images and masks, for training fully convolutional networks.

    Introduced in 06_cnn.

    Parameters
    ----------
    samples : sequence
        Samples or ``(image, mask)`` pairs (see the module notes), 2D or 3D.
    patch_size : int or tuple of int
        Patch size ``(h, w)`` or ``(d, h, w)``; an int means a square/cube. Images smaller than
        the patch are padded (centred): the image with ``pad_value``, the mask with
        ``mask_pad_value``.
    patches_per_image : int, default 1
        Length of the dataset is ``len(samples) * patches_per_image``; item ``i`` comes from
        sample ``i % len(samples)``.
    foreground_fraction : float, default 0.0
        Probability that a patch is centred on a random foreground pixel (label > 0, clamped so
        that the patch stays inside the image) instead of uniformly placed: nnU-Net's
        oversampling (1/3) for small structures.
    augment : bool, default False
        Random flips and rot90 (:func:`random_flip_rot90`).
    weight_maps : sequence of array, optional
        One per-pixel weight map per sample (mask's shape), cropped with it and returned third.
    seed : int, optional
        Draw every patch position once, now, from this seed: the same patches at every epoch
        (a validation set). By default positions are drawn afresh at each access.
    pad_value : float, default 0.0
    mask_pad_value : int, default 0
        Label of padded pixels; an ``ignore_index`` keeps them out of the loss.

    Notes
    -----
    Items: ``(image (C, *patch) float32, mask (*patch) int64[, weight (*patch) float32])``.

    Examples
    --------
    >>> from medseg_course.data.synthetic import make_dataset
    >>> samples = make_dataset(2, "nuclei2d", shape=(64, 48), n_objects=4, seed=0)
    >>> ds = PatchDataset(samples, 32, patches_per_image=3)
    >>> len(ds), [tuple(t.shape) for t in ds[0]]
    (6, [(1, 32, 32), (32, 32)])
    """

    def __init__(self, samples, patch_size, *, patches_per_image: int = 1,
                 foreground_fraction: float = 0.0, augment: bool = False, weight_maps=None,
                 seed: int | None = None, pad_value: float = 0.0, mask_pad_value: int = 0):
        super().__init__(samples, weight_maps, augment)
        self.patch_size = _check_size(patch_size, self.spatial_dims, "patch_size")
        if isinstance(patches_per_image, bool) or not isinstance(patches_per_image, numbers.Integral) or patches_per_image < 1:
            raise ValueError(f"patches_per_image must be a positive int, got {patches_per_image!r}")
        self.patches_per_image = int(patches_per_image)
        if isinstance(foreground_fraction, bool) or not isinstance(foreground_fraction, numbers.Real) \
                or not 0 <= foreground_fraction <= 1:
            raise ValueError(f"foreground_fraction must be in [0, 1], got {foreground_fraction!r}")
        self.foreground_fraction = float(foreground_fraction)
        # pad small images once; remember the foreground voxels for oversampling
        self.pairs = [(_pad_to(im, self.patch_size, pad_value), _pad_to(m, self.patch_size, mask_pad_value))
                      for im, m in self.pairs]
        if self.weights is not None:
            self.weights = [_pad_to(w, self.patch_size, 0.0) for w in self.weights]
        self._foreground = [np.flatnonzero(m > 0) for _, m in self.pairs] if self.foreground_fraction else None
        self._fixed = None
        if seed is not None:
            rng = np.random.default_rng(seed)
            self._fixed = [self._draw_start(i % len(self.pairs), rng) for i in range(len(self))]

    def __len__(self) -> int:
        return len(self.pairs) * self.patches_per_image

    def _draw_start(self, k: int, rng: np.random.Generator | None) -> tuple[int, ...]:
        """Corner of a patch in sample ``k`` (from ``rng``, or torch's generator when None)."""
        draw = (lambda n: int(rng.integers(n)) if n > 1 else 0) if rng is not None else _randint
        shape = self.pairs[k][1].shape
        fg = self._foreground[k] if self._foreground is not None else None
        use_fg = (fg is not None and fg.size > 0
                  and (rng.random() if rng is not None else torch.rand(()).item()) < self.foreground_fraction)
        if use_fg:
            centre = np.unravel_index(fg[draw(fg.size)], shape)
            return tuple(int(min(max(c - p // 2, 0), n - p)) for c, p, n in zip(centre, self.patch_size, shape))
        return tuple(draw(n - p + 1) for n, p in zip(shape, self.patch_size))

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} patches")
        k = index % len(self.pairs)
        start = self._fixed[index] if self._fixed is not None else self._draw_start(k, None)
        window = tuple(slice(s, s + p) for s, p in zip(start, self.patch_size))
        image, mask = self.pairs[k]
        weight = self.weights[k][window] if self.weights is not None else None
        return self._finish(image[(slice(None), *window)], mask[window], weight)


class ImageDataset(_Base):
    """Whole images and masks, one per item, for validation and testing.

    Introduced in 06_cnn.

    Parameters
    ----------
    samples : sequence
        Samples or ``(image, mask)`` pairs.
    weight_maps : sequence of array, optional
        Returned third, as in :class:`PatchDataset`.
    augment : bool, default False

    Notes
    -----
    Items ``(image (C, *spatial), mask (*spatial)[, weight])`` keep each image's size: batch them
    with ``batch_size=1`` unless every image has the same size (the models of the course take
    any size).

    Examples
    --------
    >>> import numpy as np
    >>> ds = ImageDataset([(np.zeros((5, 7), np.float32), np.zeros((5, 7), np.int64))])
    >>> [tuple(t.shape) for t in ds[0]]
    [(1, 5, 7), (5, 7)]
    """

    def __init__(self, samples, *, weight_maps=None, augment: bool = False):
        super().__init__(samples, weight_maps, augment)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int):
        image, mask = self.pairs[index]
        weight = self.weights[index] if self.weights is not None else None
        return self._finish(image, mask, weight)


class CentrePixelDataset(_Base):
    """Square patches and the label of their centre pixel, for a patch classifier (2D).

    Introduced in 06_cnn.

    Parameters
    ----------
    samples : sequence
        2D samples or ``(image, mask)`` pairs.
    patch_size : int
        Odd side ``P`` of the patch (``PatchCNN.patch_size``).
    length : int
        Patches per epoch (the dataset's length).
    balanced : bool, default True
        Draw the class first (uniformly among the classes present in the chosen image), then a
        pixel of that class; otherwise draw pixels uniformly, and the background dominates.
    augment : bool, default False
        Random flips and rot90 of the patch (the centre stays the centre).
    seed : int, optional
        Draw every (image, pixel) once, now, from this seed: a fixed validation set.
    pad_value : float, default 0.0
        Images are padded by ``P // 2`` on every side with this value, so that border pixels
        get a full patch (``DensePatchCNN`` pads with zeros too).

    Notes
    -----
    Items: ``(patch (C, P, P) float32, label () int64)``; batches ``(B, C, P, P)`` and ``(B,)``,
    what :class:`~medseg_course.models.PatchCNN` and the losses take.

    Examples
    --------
    >>> from medseg_course.data.synthetic import make_dataset
    >>> samples = make_dataset(2, "nuclei2d", shape=(48, 48), n_objects=4, radius=4.0, seed=0)
    >>> ds = CentrePixelDataset(samples, 29, length=100)
    >>> patch, label = ds[0]
    >>> tuple(patch.shape), label.dtype
    ((1, 29, 29), torch.int64)
    """

    def __init__(self, samples, patch_size: int, *, length: int, balanced: bool = True,
                 augment: bool = False, seed: int | None = None, pad_value: float = 0.0):
        super().__init__(samples, None, augment)
        if self.spatial_dims != 2:
            raise ValueError("CentrePixelDataset takes 2D samples (image (C, H, W), mask (H, W))")
        if isinstance(patch_size, bool) or not isinstance(patch_size, numbers.Integral) or patch_size < 1 or patch_size % 2 == 0:
            raise ValueError(f"patch_size must be an odd positive int (a patch has a centre pixel), got {patch_size!r}")
        if isinstance(length, bool) or not isinstance(length, numbers.Integral) or length < 1:
            raise ValueError(f"length must be a positive int (patches per epoch), got {length!r}")
        self.patch_size, self.length, self.balanced = int(patch_size), int(length), bool(balanced)
        r = self.patch_size // 2
        self._padded = [np.pad(im, ((0, 0), (r, r), (r, r)), constant_values=pad_value) for im, _ in self.pairs]
        # pixel indices of each class in each image, for balanced sampling
        self._by_class = []
        for _, m in self.pairs:
            flat = m.ravel()
            order = np.argsort(flat, kind="stable").astype(np.int32)  # half the memory of int64
            labels, starts = np.unique(flat[order], return_index=True)
            self._by_class.append(np.split(order, starts[1:]))
        self._fixed = None
        if seed is not None:
            rng = np.random.default_rng(seed)
            self._fixed = [self._draw(rng) for _ in range(self.length)]

    def __len__(self) -> int:
        return self.length

    def _draw(self, rng: np.random.Generator | None) -> tuple[int, int]:
        """(image index, flat pixel index), from ``rng`` or torch's generator when None."""
        draw = (lambda n: int(rng.integers(n)) if n > 1 else 0) if rng is not None else _randint
        k = draw(len(self.pairs))
        if self.balanced:
            groups = self._by_class[k]
            pixels = groups[draw(len(groups))]
            return k, int(pixels[draw(pixels.size)])
        return k, draw(self.pairs[k][1].size)

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} patches")
        k, flat = self._fixed[index] if self._fixed is not None else self._draw(None)
        mask = self.pairs[k][1]
        y, x = divmod(flat, mask.shape[1])
        P = self.patch_size
        patch = torch.from_numpy(np.ascontiguousarray(self._padded[k][:, y:y + P, x:x + P]))
        if self.augment:
            (patch,) = random_flip_rot90(patch, spatial_dims=2)
        return patch, torch.tensor(mask[y, x], dtype=torch.int64)


# --------------------------------------------------------------------------------------------
# loaders
# --------------------------------------------------------------------------------------------


def seed_worker(worker_id: int) -> None:
    """Seed NumPy and ``random`` in a DataLoader worker from the seed PyTorch gave it.

    Introduced in 06_cnn.

    PyTorch seeds each worker's torch generator from the loader's generator, but not NumPy's
    or Python's: without this, every worker would repeat the same NumPy "random" numbers.
    Pass it as ``worker_init_fn`` (:func:`make_loader` does).
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, *, batch_size: int, shuffle: bool = False, seed: int = 0,
                num_workers: int = 0, drop_last: bool = False, pin_memory: bool = False) -> DataLoader:
    """A seeded :class:`~torch.utils.data.DataLoader`: same seed, same batches.

    Introduced in 06_cnn.

    Parameters
    ----------
    dataset : Dataset
        E.g. :class:`PatchDataset`, :class:`ImageDataset`, :class:`CentrePixelDataset`.
    batch_size : int
        E.g. ``config.batch_size`` of a :class:`~medseg_course.train.TrainConfig`.
    shuffle : bool, default False
        True for training.
    seed : int, default 0
        Seeds the loader's own generator (shuffling, and each worker's torch generator, from
        which the random patches and augmentations are drawn).
    num_workers : int, default 0
        Worker processes; 0 loads in the main process (simplest, fine for in-memory data).
    drop_last : bool, default False
        Drop a last incomplete batch (avoids a batch of one with batch norm).
    pin_memory : bool, default False
        Page-locked batches for faster copies to a GPU: pass ``rt.device.type == "cuda"``.

    Returns
    -------
    torch.utils.data.DataLoader

    Notes
    -----
    With ``num_workers=0`` the random draws come from PyTorch's global generator, which
    :func:`~medseg_course.train.fit` seeds from its config, so a training run is reproducible
    either way. Workers stay alive between epochs (``persistent_workers``), avoiding a restart
    per epoch.

    Examples
    --------
    >>> from medseg_course.data.synthetic import make_dataset
    >>> ds = PatchDataset(make_dataset(4, shape=(48, 48), n_objects=3, radius=4.0, seed=0), 32)
    >>> image, mask = next(iter(make_loader(ds, batch_size=2, shuffle=True, seed=0)))
    >>> tuple(image.shape), tuple(mask.shape)
    ((2, 1, 32, 32), (2, 32, 32))
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, numbers.Integral) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(dataset, batch_size=int(batch_size), shuffle=shuffle, drop_last=drop_last,
                      num_workers=int(num_workers), worker_init_fn=seed_worker,
                      generator=generator, pin_memory=pin_memory,
                      persistent_workers=num_workers > 0)
