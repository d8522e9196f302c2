"""Loading the course's real datasets as lazy, indexable collections of samples.

:func:`load_dataset` returns a :class:`SegmentationDataset`: a sequence of :class:`Sample`
objects, read from disk the first time each is asked for and kept in memory after that
(``cache=True``). It works with a complete download, or with a partial copy (it uses the cases
that are there, after checking their checksums).

Array conventions
-----------------
===================  ====================================  =====================================
field                2D datasets (dsb2018, stardist)       3D datasets (msd-hippocampus)
===================  ====================================  =====================================
``image``            ``(C, H, W)`` float32                 ``(C, D, H, W)`` float32, ``C = 1``
``mask``             ``(H, W)`` int64                      ``(D, H, W)`` int64
``instances``        ``(H, W)`` int64, 0 = background,     None
                     1..n = one id per nucleus
``spacing``          None (pixel size not published)       ``(D, H, W)`` millimetres
===================  ====================================  =====================================

``mask`` value ``k`` is class ``dataset.class_names[k]``. 3D axes follow
:mod:`medseg_course.data.io`: ``(D, H, W)`` is the NIfTI voxel order ``(k, j, i)`` reversed.
Microscopy images keep their colour: gray images (R = G = B) have one channel, brightfield
colour images three (ask for ``channels=1`` or ``channels=3`` to get the same everywhere).

Intensities are normalised per image (``normalize=True``, the default):

* ``"zscore"`` for MRI: clip to the 0.5th..99.5th percentile of the volume, then subtract its
  mean and divide by its standard deviation (:func:`~medseg_course.data.transforms.zscore`),
  channel by channel. MRI intensities have no unit and change from scanner to scanner (the MSD
  Hippocampus maxima range from 112 to 1.7e6), so each volume is normalised on its own; the
  clipping keeps a few extreme voxels from dominating the standard deviation.
* ``"percentile"`` for microscopy: clip to the 1st..99.8th percentile of the image (all channels
  together, which keeps the colour balance) and scale that range to 0..1, as CSBDeep/StarDist
  do (:func:`~medseg_course.data.transforms.percentile_normalize`).

``normalize=False`` gives the stored intensities, converted to float32 without any change of
value (``sample.meta["dtype"]`` names the stored dtype).

Splits
------
``split="train" | "val" | "test"`` selects the fixed split stored in the manifest (70/15/15,
made once from the full case list by :func:`~medseg_course.data.registry.make_split`):
per case for MSD Hippocampus (MSD does not say which volumes share a subject), per image and
stratified by image category for DSB2018. ``split="all"`` is every case.

Introduced in 01_medical_images.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from medseg_course.data import download as _dl
from medseg_course.data.errors import ChecksumError, DataFormatError
from medseg_course.data.transforms import percentile_normalize, zscore
from medseg_course.data.io import _as_labels, read_image, read_instance_masks, read_mask, read_volume
from medseg_course.data.registry import DatasetInfo, _check_split, dataset_info

__all__ = ["Sample", "SegmentationDataset", "load_dataset"]

#: Luminance weights (ITU-R BT.709, as ``skimage.color.rgb2gray``) for ``channels=1``.
RGB_TO_GRAY = (0.2125, 0.7154, 0.0721)
_NORMALIZERS = ("zscore", "percentile")
#: Percentiles clipped before the z-score (MRI) and mapped to 0..1 (microscopy).
ZSCORE_CLIP = (0.5, 99.5)
PERCENTILE_RANGE = (1.0, 99.8)


def _robust_zscore(channel: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(channel, ZSCORE_CLIP)
    return zscore(np.clip(channel, lo, hi))


@dataclass(frozen=True, eq=False)
class Sample:
    """One image with its mask, as the loaders return it.

    Attributes
    ----------
    image : ndarray of float32
        ``(C, H, W)`` or ``(C, D, H, W)``.
    mask : ndarray of int64
        ``(H, W)`` or ``(D, H, W)``; value ``k`` = class ``k``.
    case_id : str
        Id of the case (file stem, or DSB image id).
    spacing : tuple of float or None
        Pixel/voxel size in millimetres along the spatial axes, None where unknown.
    category : str or None
        Image category (DSB2018), else None.
    instances : ndarray of int64 or None
        Instance label map (0 = background, 1..n = objects) where the dataset has one.
    meta : mapping
        Where it came from and how it was stored: ``image_path``, ``dtype`` (stored image
        dtype), ``affine`` for 3D (maps ``(d, h, w, 1)`` to world mm), and dataset extras.

    Notes
    -----
    Every access returns fresh arrays: changing them does not change the dataset.

    Introduced in 01_medical_images.

    Examples
    --------
    >>> s = Sample(np.zeros((1, 4, 4), np.float32), np.zeros((4, 4), np.int64), "a")
    >>> s.image.shape, s.mask.dtype.name, s.spacing
    ((1, 4, 4), 'int64', None)
    """

    image: np.ndarray
    mask: np.ndarray
    case_id: str
    spacing: tuple[float, ...] | None = None
    category: str | None = None
    instances: np.ndarray | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        extra = f", category={self.category!r}" if self.category else ""
        if self.instances is not None:
            extra += f", instances={int(self.instances.max(initial=0))}"
        return (
            f"Sample({self.case_id!r}, image={tuple(self.image.shape)} {self.image.dtype}, "
            f"mask={tuple(self.mask.shape)} {self.mask.dtype}, spacing={self.spacing}{extra})"
        )


@dataclass(frozen=True)
class _Raw:
    """A case as stored (native dtypes), the thing that is cached."""

    image: np.ndarray
    labels: np.ndarray
    instances: np.ndarray | None
    spacing: tuple[float, ...] | None
    meta: Mapping[str, Any]


@dataclass(frozen=True)
class _Case:
    case_id: str
    category: str | None
    read: Callable[[], _Raw]


def _check_normalize(normalize, default: str) -> str | None:
    if normalize is True:
        return default
    if normalize is False or normalize is None:
        return None
    if isinstance(normalize, str) and normalize in _NORMALIZERS:
        return normalize
    raise ValueError(
        f"normalize must be True (the dataset's default, {default!r}), False (stored intensities) "
        f"or one of {_NORMALIZERS}, got {normalize!r}"
    )


def _check_channels(channels) -> int | None:
    if channels is None:
        return None
    if isinstance(channels, (bool, np.bool_)) or not isinstance(channels, (int, np.integer)) or channels not in (1, 3):
        raise ValueError(f"channels must be None (as stored), 1 or 3, got {channels!r}")
    return int(channels)


class SegmentationDataset(Sequence):
    """A lazy, indexable collection of :class:`Sample` objects.

    Made by :func:`load_dataset` and :func:`~medseg_course.data.folder.load_folder`; not meant
    to be built by hand. Index it with an integer (``ds[0]``), a case id (``ds["hippocampus_001"]``)
    or a slice (``ds[:10]``, another dataset sharing the same cache); iterate over it; ``len(ds)``.

    Attributes
    ----------
    name : str
        Dataset name (or the folder name for :func:`load_folder`).
    split : str
        ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
    case_ids : tuple of str
        Cases in this dataset, in order.
    categories : tuple of (str or None)
        Category of each case (DSB2018), else None.
    class_names : tuple of str or None
        ``class_names[k]`` names label ``k`` (None when unknown, for some folders).
    spatial_dims : int
        2 or 3.
    missing : tuple of str
        Cases of this split that the local copy lacks (empty for a complete copy).
    info : DatasetInfo or None
        The manifest entry (None for :func:`load_folder`).
    root : pathlib.Path
        The folder the files are read from.

    Notes
    -----
    Samples are read on first access and their stored arrays cached (``cache=True``); the MSD
    Hippocampus training split takes about 70 MB once cached. Call :meth:`preload` to read
    everything at once with a progress bar, :meth:`clear_cache` to free the memory.
    To feed PyTorch, wrap it: ``__getitem__`` returns numpy arrays, ``torch.from_numpy`` turns
    them into tensors without copying.

    Introduced in 01_medical_images.
    """

    def __init__(
        self,
        cases: Sequence[_Case],
        *,
        name: str,
        split: str,
        class_names: Sequence[str] | None,
        spatial_dims: int,
        normalize: str | None,
        channels: int | None = None,
        cache: bool = True,
        info: DatasetInfo | None = None,
        root: Path | None = None,
        missing: Sequence[str] = (),
        _store: dict | None = None,
    ) -> None:
        self._cases = tuple(cases)
        self._index = {c.case_id: i for i, c in enumerate(self._cases)}
        self.name = name
        self.split = split
        self.class_names = tuple(class_names) if class_names is not None else None
        self.spatial_dims = int(spatial_dims)
        self.normalize = normalize
        self.channels = channels
        self.cache = bool(cache)
        self.info = info
        self.root = root
        self.missing = tuple(missing)
        self._store: dict[str, _Raw] = {} if _store is None else _store

    # -- sequence protocol ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._cases)

    def __getitem__(self, key):
        if isinstance(key, slice):
            return self._subset(self._cases[key])
        if isinstance(key, str):
            if key not in self._index:
                raise KeyError(
                    f"no case {key!r} in {self.name!r} (split {self.split!r}); "
                    f"see .case_ids for the {len(self)} cases"
                )
            return self._sample(self._cases[self._index[key]])
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            n = len(self._cases)
            if not -n <= key < n:
                raise IndexError(f"index {key} is out of range for a dataset of {n} cases")
            return self._sample(self._cases[int(key)])
        raise TypeError(
            f"a dataset is indexed by an int, a case id (str) or a slice, got {type(key).__name__}"
        )

    def __iter__(self):
        for case in self._cases:
            yield self._sample(case)

    def __contains__(self, case_id) -> bool:
        return case_id in self._index

    def __repr__(self) -> str:
        found = f"{len(self)} cases"
        if self.missing:
            found += f" (of {len(self) + len(self.missing)}; {len(self.missing)} not on disk)"
        classes = list(self.class_names) if self.class_names else "unknown"
        return (
            f"<SegmentationDataset {self.name!r} split={self.split!r}: {found}, "
            f"{self.spatial_dims}D, classes={classes}, normalize={self.normalize!r}>"
        )

    # -- attributes ----------------------------------------------------------------------------
    @property
    def case_ids(self) -> tuple[str, ...]:
        return tuple(c.case_id for c in self._cases)

    @property
    def categories(self) -> tuple[str | None, ...]:
        return tuple(c.category for c in self._cases)

    # -- loading -------------------------------------------------------------------------------
    def _raw(self, case: _Case) -> _Raw:
        raw = self._store.get(case.case_id)
        if raw is None:
            raw = case.read()
            if self.cache:
                self._store[case.case_id] = raw
        return raw

    def _sample(self, case: _Case) -> Sample:
        raw = self._raw(case)
        image = raw.image
        if self.channels is not None and image.shape[0] != self.channels:
            if self.channels == 1 and image.shape[0] == 3:
                w = np.asarray(RGB_TO_GRAY).reshape((3,) + (1,) * (image.ndim - 1))
                image = (image.astype(np.float64) * w).sum(axis=0, keepdims=True)
            elif self.channels == 3 and image.shape[0] == 1:
                image = np.repeat(image, 3, axis=0)
            else:
                raise DataFormatError(
                    f"case {case.case_id!r} has {image.shape[0]} channels, which cannot be turned into "
                    f"channels={self.channels}; use channels=None"
                )
        if self.normalize == "zscore":
            image = np.stack([_robust_zscore(c) for c in image])
        elif self.normalize == "percentile":
            image = percentile_normalize(image, *PERCENTILE_RANGE)
        else:
            image = image.astype(np.float32)  # always a copy
        return Sample(
            image=image,
            mask=raw.labels.astype(np.int64),
            case_id=case.case_id,
            spacing=raw.spacing,
            category=case.category,
            instances=None if raw.instances is None else raw.instances.astype(np.int64),
            meta={k: v.copy() if isinstance(v, np.ndarray) else v for k, v in raw.meta.items()},
        )

    def _subset(self, cases: Sequence[_Case]) -> SegmentationDataset:
        return SegmentationDataset(
            cases, name=self.name, split=self.split, class_names=self.class_names,
            spatial_dims=self.spatial_dims, normalize=self.normalize, channels=self.channels,
            cache=self.cache, info=self.info, root=self.root, missing=(), _store=self._store,
        )

    def subset(self, case_ids: Sequence[str]) -> SegmentationDataset:
        """A dataset of the given case ids (in that order), sharing this one's cache.

        Parameters
        ----------
        case_ids : sequence of str

        Returns
        -------
        SegmentationDataset

        Raises
        ------
        KeyError
            If a case id is not in this dataset.
        """
        if isinstance(case_ids, str):
            raise TypeError(f"case_ids must be a sequence of ids, got the single string {case_ids!r}")
        unknown = [c for c in case_ids if c not in self._index]
        if unknown:
            raise KeyError(f"case_ids not in {self.name!r} (split {self.split!r}): {unknown[:5]}")
        return self._subset([self._cases[self._index[c]] for c in case_ids])

    def preload(self, progress: bool = True) -> SegmentationDataset:
        """Read every case now (with a progress bar) and keep it in memory; returns self."""
        if not self.cache:
            raise ValueError("preload needs cache=True; this dataset was made with cache=False")
        todo = [c for c in self._cases if c.case_id not in self._store]
        for case in tqdm(todo, desc=f"loading {self.name}", unit="case", disable=not progress,
                         delay=0.5, leave=False):
            self._raw(case)
        return self

    def clear_cache(self) -> None:
        """Forget the arrays read so far (shared with datasets sliced from this one)."""
        self._store.clear()


# --------------------------------------------------------------------------------------------
# Readers of one case, per dataset
# --------------------------------------------------------------------------------------------


def _check_label_range(labels: np.ndarray, n_classes: int, path: Path) -> None:
    top = int(labels.max(initial=0))
    if top >= n_classes:
        raise DataFormatError(
            f"{path} holds label {top}, but the dataset has only {n_classes} classes (0..{n_classes - 1})"
        )


def _read_msd(folder: Path, info: DatasetInfo, case: str) -> _Raw:
    image_path = folder / info.layout["image"].format(case=case)
    label_path = folder / info.layout["label"].format(case=case)
    image, label = read_volume(image_path), read_volume(label_path)
    if image.array.shape != label.array.shape:
        raise DataFormatError(
            f"image {image_path} has shape {image.array.shape} but its label {label_path} has "
            f"shape {label.array.shape}"
        )
    labels = _as_labels(label.array, label_path)  # two MSD labels are stored as float32 0/1/2
    _check_label_range(labels, len(info.class_names), label_path)
    meta = {"image_path": str(image_path), "label_path": str(label_path),
            "dtype": str(image.array.dtype), "affine": image.affine}
    return _Raw(image.array[None], labels.astype(np.uint8), None, image.spacing, meta)


def _read_dsb(folder: Path, info: DatasetInfo, case: str) -> _Raw:
    image_path = folder / info.layout["image"].format(case=case)
    masks_dir = folder / info.layout["masks_dir"].format(case=case)
    return _read_image_and_instances(image_path, masks_dir)


def _read_image_and_instances(image_path: Path, masks_dir: Path) -> _Raw:
    """An image and its folder of one-mask-per-object PNGs (the DSB2018 layout)."""
    image = read_image(image_path)
    instances, n, overlap = read_instance_masks(masks_dir)
    if instances.shape != image.shape[1:]:
        raise DataFormatError(
            f"image {image_path} has shape {image.shape[1:]} but its masks in {masks_dir} have "
            f"shape {instances.shape}"
        )
    meta = {"image_path": str(image_path), "masks_dir": str(masks_dir), "dtype": str(image.dtype),
            "n_instances": n, "overlap_pixels": overlap}
    return _Raw(image, (instances > 0).astype(np.uint8), instances, None, meta)


def _read_label_image(folder: Path, info: DatasetInfo, case: str) -> _Raw:
    """A 2D image with an instance label map file (stardist sample)."""
    from skimage.segmentation import relabel_sequential

    image_path = folder / info.layout["image"].format(case=case)
    label_path = folder / info.layout["label"].format(case=case)
    image = read_image(image_path)
    ids = read_mask(label_path, binary_255=False)
    if ids.shape != image.shape[1:]:
        raise DataFormatError(
            f"image {image_path} has shape {image.shape[1:]} but {label_path} has shape {ids.shape}"
        )
    instances = relabel_sequential(ids)[0]  # stored ids are not contiguous
    meta = {"image_path": str(image_path), "label_path": str(label_path), "dtype": str(image.dtype),
            "n_instances": int(instances.max(initial=0))}
    return _Raw(image, (instances > 0).astype(np.uint8), instances, None, meta)


_READERS: dict[str, Callable[[Path, DatasetInfo, str], _Raw]] = {
    "msd-hippocampus": _read_msd,
    "dsb2018": _read_dsb,
    "stardist-sample": _read_label_image,
}


# --------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------


def load_dataset(
    name: str,
    split: str | None = None,
    *,
    normalize: bool | str = True,
    channels: int | None = None,
    root: str | os.PathLike | None = None,
    download: bool = True,
    verify: bool = True,
    cache: bool = True,
    preload: bool = False,
    progress: bool = True,
) -> SegmentationDataset:
    """Load one of the course's real datasets (downloading it the first time).

    Parameters
    ----------
    name : str
        ``"msd-hippocampus"`` (3D MRI, classes background / anterior / posterior),
        ``"dsb2018"`` (2D nuclei, binary masks plus instance maps) or ``"stardist-sample"``
        (one 2D nuclei image), or an alias; see :func:`list_datasets` and :func:`dataset_info`.
    split : {"train", "val", "test", "all"}, optional
        The fixed split of the manifest (see the module notes). Default ``"train"``, or
        ``"all"`` for a dataset without a split (``"stardist-sample"``).
    normalize : bool or {"zscore", "percentile"}
        True (default): the dataset's normalisation (z-score with 0.5..99.5 percentile clipping
        for MRI, 1..99.8 percentile scaling to 0..1 for microscopy), per image or volume.
        False: stored intensities as float32. A name forces that method.
    channels : {None, 1, 3}
        None keeps images as stored (DSB2018: 1 channel for gray images, 3 for colour);
        1 converts colour to gray (BT.709 luminance); 3 repeats gray into three channels.
    root : str or path-like, optional
        Data cache folder; default ``$MEDSEG_DATA_DIR`` or the user cache (see :func:`data_dir`).
    download : bool
        Download the dataset if no case of it is on disk (default True). A partial copy is
        used as it is; call :func:`download_dataset` to complete it.
    verify : bool
        Check the sha256 of every file of the requested cases before use (default True; takes
        a fraction of a second, once per session).
    cache : bool
        Keep cases in memory after their first read (default True).
    preload : bool
        Read every case now, with a progress bar (default False: read on first access).
    progress : bool
        Show progress bars for long steps (download, checking, preloading).

    Returns
    -------
    SegmentationDataset
        Samples of the split whose files are on disk, in case-id order; ``.missing`` lists the
        split's cases that are not.

    Raises
    ------
    TypeError, ValueError
        Unknown dataset name, split, normalize or channels.
    DatasetNotFoundError
        Nothing on disk and the download failed or was not allowed; or the local copy has no
        case of this split. The message says how to get the data.
    ChecksumError
        A file on disk does not match its published checksum; the message names it and says
        how to fix it.

    Warns
    -----
    UserWarning
        If some cases have only part of their files on disk (they are left out).

    Notes
    -----
    Licences: MSD Hippocampus is CC-BY-SA 4.0 (cite Simpson et al. 2019 and name MSD);
    DSB2018 and the StarDist sample are CC0 (please cite Caicedo et al. 2019).
    ``print(dataset_info(name))`` shows the citation.

    Introduced in 01_medical_images.

    Examples
    --------
    >>> train = load_dataset("msd-hippocampus", "train")  # doctest: +SKIP
    >>> s = train[0]  # doctest: +SKIP
    >>> s.image.shape, s.mask.shape, s.spacing  # doctest: +SKIP
    ((1, 36, 51, 35), (36, 51, 35), (1.0, 1.0, 1.0))
    >>> nuclei = load_dataset("dsb2018", "val", channels=1)  # doctest: +SKIP
    >>> s = nuclei[0]  # doctest: +SKIP
    >>> s.image.shape[0], s.category, s.instances.max() == s.meta["n_instances"]  # doctest: +SKIP
    (1, 'brightfield_stained_color_256x320', True)
    """
    info = dataset_info(name)
    split = _check_split(info, split)
    method = _check_normalize(normalize, info.normalization)
    channels = _check_channels(channels)
    for flag, value in (("download", download), ("verify", verify), ("cache", cache),
                        ("preload", preload), ("progress", progress)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{flag} must be True or False, got {value!r}")

    base = _dl.data_dir(root)
    folder = base / info.folder
    present, incomplete, _ = _dl._scan(info, folder, info.case_ids) if folder.is_dir() else ([], [], [])
    if not present:
        if not download:
            raise _dl._not_found(info, base, "download=False was given")
        _dl.download_dataset(info, root=base, progress=progress)
        present, incomplete, _ = _dl._scan(info, folder, info.case_ids)
    if incomplete:
        warnings.warn(
            f"{len(incomplete)} case(s) of {info.name!r} in {folder} have only some of their files "
            f"and are left out (e.g. {incomplete[:3]}); run download_dataset({info.name!r}) to "
            "complete them",
            stacklevel=2,
        )
    wanted = info.splits[split]
    on_disk = set(present)
    cases = [c for c in wanted if c in on_disk]
    missing = [c for c in wanted if c not in on_disk]
    if not cases:
        raise _dl._not_found(
            info, base,
            f"the local copy has {len(present)} of its {len(info.case_ids)} cases but none of the "
            f"{len(wanted)} of split {split!r}; run download_dataset({info.name!r}) to get them all",
        )
    if verify:
        copy = _dl.verify_dataset(info, root=base, cases=cases, progress=progress)
        if copy.corrupt:
            raise ChecksumError(_dl._corrupt_message(info, folder, copy.corrupt))

    reader = _READERS[info.name]
    records = [_Case(c, info.category(c), functools.partial(reader, folder, info, c)) for c in cases]
    dataset = SegmentationDataset(
        records, name=info.name, split=split, class_names=info.class_names,
        spatial_dims=info.spatial_dims, normalize=method, channels=channels, cache=cache,
        info=info, root=folder, missing=missing,
    )
    if preload:
        dataset.preload(progress=progress)
    return dataset
