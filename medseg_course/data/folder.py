"""Bring your own data: load a folder of image/mask pairs like a course dataset.

:func:`load_folder` reads 2D images (PNG, TIFF) or 3D volumes (NIfTI, TIFF stacks) with their
masks into the same :class:`~medseg_course.data.datasets.SegmentationDataset` that
:func:`~medseg_course.data.datasets.load_dataset` returns, so every notebook works on your
data unchanged.

Accepted layouts
----------------
1. **Two subfolders**, images and masks matched by file name::

       my_data/images/case_01.png      my_data/masks/case_01.png
       my_data/images/case_02.png      my_data/masks/case_02_mask.png

   The image folder may be called ``images/`` or ``imagesTr/``; the mask folder ``masks/``,
   ``labels/`` or ``labelsTr/`` (the MSD / nnU-Net names). A mask matches the image with the
   same stem, or with the stem followed by ``_mask``, ``_label`` or ``_seg``. The extensions
   may differ (``a.tif`` with ``a.png``). nnU-Net channel files (``case_0000.nii.gz``,
   ``case_0001.nii.gz`` with label ``case.nii.gz``) are stacked as channels, when every image
   name ends in such a 4-digit suffix.
2. **One flat folder**, masks named after their image with ``_mask``, ``_label`` or ``_seg``::

       my_data/cell_01.png   my_data/cell_01_mask.png

3. **One folder per image with one mask file per object** (the 2018 Data Science Bowl layout)::

       stage1_train/<id>/images/<id>.png   stage1_train/<id>/masks/<one file per nucleus>.png

   The masks are merged into an instance map (``sample.instances``) and a binary mask.

Files: ``.png``, ``.tif``/``.tiff`` and ``.nii``/``.nii.gz``; other files, hidden files and
macOS ``._*`` files are ignored. Masks hold integer class labels (0 = background); an 8-bit
mask whose only values are 0 and 255 is read as 0/1. All cases must have the same number of
spatial dimensions; images may differ in size.

Errors are raised when the folder is loaded, before any pixel is read: files without a partner
(listed), image/mask shapes that differ (both shapes and files named), voxel spacings that
differ, and files whose header cannot be read.

Introduced in 01_medical_images.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from medseg_course.data.datasets import (
    SegmentationDataset,
    _Case,
    _check_channels,
    _check_label_range,
    _check_normalize,
    _Raw,
    _read_image_and_instances,
)
from medseg_course.data.errors import DataFormatError
from medseg_course.data.io import (
    IMAGE_SUFFIXES_2D,
    NIFTI_SUFFIXES,
    probe_shape,
    read_image,
    read_mask,
    read_volume,
    split_suffix,
)

__all__ = ["load_folder", "IMAGE_FOLDERS", "MASK_FOLDERS", "MASK_SUFFIXES"]

#: Names of the image subfolder in layout 1.
IMAGE_FOLDERS = ("images", "imagesTr")
#: Names of the mask subfolder in layout 1.
MASK_FOLDERS = ("masks", "labels", "labelsTr")
#: Stem endings that mark a mask file.
MASK_SUFFIXES = ("_mask", "_label", "_seg")
_SUFFIXES = (*NIFTI_SUFFIXES, *IMAGE_SUFFIXES_2D)
_CHANNEL = re.compile(r"^(.+)_(\d{4})$")
_LAYOUT_HELP = (
    "Accepted layouts: (1) images/ + masks/ (or labels/, imagesTr/ + labelsTr/) with matching "
    "file names; (2) one folder with <name>.png and <name>_mask.png (or _label, _seg); "
    "(3) <id>/images/<id>.png + <id>/masks/*.png (one file per object). "
    "See help(medseg_course.data.folder)."
)


def _usable(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and split_suffix(p)[1] in _SUFFIXES
    )


def _strip_mask_suffix(stem: str) -> str | None:
    for suffix in MASK_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return None


def _unpaired_error(folder: Path, lonely_images: list[str], lonely_masks: list[str]) -> DataFormatError:
    parts = [f"some files in {folder} have no partner:"]
    for label, names in (("images without a mask", lonely_images), ("masks without an image", lonely_masks)):
        if names:
            shown = ", ".join(names[:20]) + (f", ... ({len(names) - 20} more)" if len(names) > 20 else "")
            parts.append(f"  {len(names)} {label}: {shown}")
    parts.append(
        "Give each mask its image's name (optionally followed by _mask, _label or _seg), or move "
        "the unpaired files out of the folder."
    )
    return DataFormatError("\n".join(parts))


def _duplicates_error(kind: str, groups: dict[str, list[Path]]) -> DataFormatError:
    shown = "; ".join(f"{k}: {', '.join(p.name for p in v)}" for k, v in list(groups.items())[:10])
    return DataFormatError(
        f"several {kind} files have the same name (stem): {shown}; keep one file per name"
    )


def _group_images(images: list[Path], mask_stems: set[str]) -> dict[str, list[Path]]:
    """Case id -> image file(s) (several = channels, nnU-Net style)."""
    stems = [split_suffix(p)[0] for p in images]
    channel_style = (
        bool(images)
        and all(split_suffix(p)[1] in NIFTI_SUFFIXES for p in images)
        and all(_CHANNEL.match(s) for s in stems)
        and not any(s in mask_stems for s in stems)
    )
    groups: dict[str, list[tuple[int, Path]]] = defaultdict(list)
    for p, stem in zip(images, stems):
        if channel_style:
            m = _CHANNEL.match(stem)
            groups[m.group(1)].append((int(m.group(2)), p))
        else:
            groups[stem].append((0, p))
    out = {}
    dups = {}
    for key, items in groups.items():
        items.sort()
        if [c for c, _ in items] != list(range(len(items))):
            dups[key] = [p for _, p in items]
        out[key] = [p for _, p in items]
    if dups:
        if channel_style:
            raise DataFormatError(
                "nnU-Net channel files must be numbered _0000, _0001, ... without gaps or repeats; "
                + "; ".join(f"{k}: {', '.join(p.name for p in v)}" for k, v in list(dups.items())[:10])
            )
        raise _duplicates_error("image", dups)
    return out


def _match_masks(masks: list[Path], image_keys: set[str]) -> tuple[dict[str, Path], list[str]]:
    out: dict[str, list[Path]] = defaultdict(list)
    lonely = []
    for p in masks:
        stem = split_suffix(p)[0]
        key = stem if stem in image_keys else _strip_mask_suffix(stem)
        if key is None or key not in image_keys:
            lonely.append(p.name)
        else:
            out[key].append(p)
    dups = {k: v for k, v in out.items() if len(v) > 1}
    if dups:
        raise _duplicates_error("mask", dups)
    return {k: v[0] for k, v in out.items()}, lonely


def _pairs_two_folders(image_dir: Path, mask_dir: Path) -> list[tuple[str, list[Path], Path]]:
    images, masks = _usable(image_dir), _usable(mask_dir)
    if not images:
        raise DataFormatError(f"{image_dir} holds no image files ({', '.join(_SUFFIXES)}). {_LAYOUT_HELP}")
    mask_stems = {split_suffix(p)[0] for p in masks}
    groups = _group_images(images, mask_stems)
    matched, lonely_masks = _match_masks(masks, set(groups))
    lonely_images = sorted(
        ", ".join(p.name for p in groups[k]) for k in groups if k not in matched
    )
    if lonely_images or lonely_masks:
        raise _unpaired_error(image_dir.parent, lonely_images, lonely_masks)
    return [(k, groups[k], matched[k]) for k in sorted(groups)]


def _pairs_flat(folder: Path) -> list[tuple[str, list[Path], Path]]:
    files = _usable(folder)
    images, masks = [], []
    for p in files:
        (masks if _strip_mask_suffix(split_suffix(p)[0]) is not None else images).append(p)
    if not images and not masks:
        raise DataFormatError(f"{folder} holds no image or mask files. {_LAYOUT_HELP}")
    groups = _group_images(images, set())
    matched, lonely_masks = _match_masks(masks, set(groups))
    lonely_images = sorted(", ".join(p.name for p in groups[k]) for k in groups if k not in matched)
    if not matched:
        raise DataFormatError(
            f"{folder} holds {len(images)} image(s) and {len(masks)} mask(s) but no pair. {_LAYOUT_HELP}"
        )
    if lonely_images or lonely_masks:
        raise _unpaired_error(folder, lonely_images, lonely_masks)
    return [(k, groups[k], matched[k]) for k in sorted(groups)]


def _cases_per_folder(folder: Path, subdirs: list[Path]) -> list[tuple[str, Path, Path]]:
    out, problems = [], []
    for d in subdirs:
        images = _usable(d / "images") if (d / "images").is_dir() else []
        has_masks = (d / "masks").is_dir() and bool(_usable(d / "masks"))
        if len(images) != 1 or not has_masks:
            why = (f"{len(images)} image files in images/" if len(images) != 1 else "no mask files in masks/")
            problems.append(f"{d.name} ({why})")
            continue
        out.append((d.name, images[0], d / "masks"))
    if problems:
        shown = "; ".join(problems[:20]) + (f"; ... ({len(problems) - 20} more)" if len(problems) > 20 else "")
        raise DataFormatError(
            f"in {folder}, each case folder must hold exactly one file in images/ and at least one "
            f"mask file in masks/; these do not: {shown}"
        )
    return out


def _read_pair(images: list[Path], mask: Path, n_classes: int | None) -> _Raw:
    arrays, spacing, meta = [], None, {}
    for p in images:
        if split_suffix(p)[1] in NIFTI_SUFFIXES:
            vol = read_volume(p)
            arrays.append(vol.array if vol.array.ndim == 4 else vol.array[None])
            if spacing is None:
                spacing, meta["affine"] = vol.spacing, vol.affine
        else:
            arrays.append(read_image(p))
    image = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
    labels = read_mask(mask)
    if labels.shape != image.shape[1:]:
        raise DataFormatError(
            f"image {images[0]} has shape {image.shape[1:]} but mask {mask} has shape {labels.shape}"
        )
    if n_classes is not None:
        _check_label_range(labels, n_classes, mask)
    meta.update({"image_path": str(images[0]) if len(images) == 1 else [str(p) for p in images],
                 "label_path": str(mask), "dtype": str(image.dtype)})
    return _Raw(image, labels, None, spacing, meta)


def _first_mask(masks_dir: Path) -> Path:
    return _usable(masks_dir)[0]


def load_folder(
    path: str | os.PathLike,
    *,
    normalize: bool | str = True,
    channels: int | None = None,
    class_names: Sequence[str] | None = None,
    cache: bool = True,
    preload: bool = False,
    progress: bool = True,
) -> SegmentationDataset:
    """Load your own folder of image/mask pairs (2D PNG/TIFF or 3D NIfTI).

    Parameters
    ----------
    path : str or path-like
        The folder, in one of the layouts of :mod:`medseg_course.data.folder` (images/ +
        masks/, flat ``_mask`` files, or one folder per image with one mask per object).
    normalize : bool or {"zscore", "percentile"}
        True (default): z-score with 0.5..99.5 percentile clipping for NIfTI volumes, 1..99.8
        percentile scaling to 0..1 for PNG/TIFF images. False: stored intensities as float32.
    channels : {None, 1, 3}
        As in :func:`load_dataset`: None keeps what is stored.
    class_names : sequence of str, optional
        Name of each label value (``class_names[k]`` names label ``k``). When given, a mask
        with a label ``>= len(class_names)`` raises an error when read.
    cache, preload, progress : bool
        As in :func:`load_dataset`.

    Returns
    -------
    SegmentationDataset
        ``split="all"``, cases in sorted case-id order (the image stem, or the folder name in
        layout 3). Use :func:`make_split` on ``case_ids`` to split it.

    Raises
    ------
    TypeError
        If `path` is not a path.
    FileNotFoundError
        If `path` does not exist.
    DataFormatError
        No recognisable layout, files without a partner (listed), image/mask shapes or
        spacings that differ (both files named), mixed 2D and 3D cases, unreadable files.

    Notes
    -----
    Shapes are checked from file headers when the folder is loaded; pixel data is read on
    first access (or by ``preload=True``).

    Introduced in 01_medical_images.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> root = Path(tempfile.mkdtemp())
    >>> for sub in ("images", "masks"):
    ...     (root / sub).mkdir()
    >>> img = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    >>> Image.fromarray(img).save(root / "images" / "a.png")
    >>> Image.fromarray(((img > 128) * 255).astype(np.uint8)).save(root / "masks" / "a_mask.png")
    >>> ds = load_folder(root, progress=False)
    >>> ds.case_ids, ds[0].image.shape, int(ds[0].mask.max())
    (('a',), (1, 8, 8), 1)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder path (str or Path), got {type(path).__name__}")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"path {str(folder)!r} does not exist or is not a folder")
    channels = _check_channels(channels)
    if class_names is not None:
        if isinstance(class_names, str) or not all(isinstance(c, str) for c in class_names):
            raise TypeError(f"class_names must be a sequence of strings, got {class_names!r}")
        class_names = tuple(class_names)

    image_dir = next((folder / n for n in IMAGE_FOLDERS if (folder / n).is_dir()), None)
    mask_dir = next((folder / n for n in MASK_FOLDERS if (folder / n).is_dir()), None)
    n_classes = len(class_names) if class_names is not None else None
    records: list[_Case] = []
    checks: list[tuple[str, Path, Path]] = []  # (case, image file, mask file) for header checks
    if image_dir is not None or mask_dir is not None:
        if image_dir is None or mask_dir is None:
            have, lack = (image_dir, MASK_FOLDERS) if image_dir is not None else (mask_dir, IMAGE_FOLDERS)
            raise DataFormatError(
                f"{folder} has {have.name}/ but none of {', '.join(n + '/' for n in lack)}. {_LAYOUT_HELP}"
            )
        pairs = _pairs_two_folders(image_dir, mask_dir)
    else:
        subdirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        per_case = [d for d in subdirs if (d / "images").is_dir() or (d / "masks").is_dir()]
        if per_case:
            pairs = None
            for case, image, masks_dir in _cases_per_folder(folder, per_case):
                read = _bind(_read_image_and_instances, image, masks_dir)
                records.append(_Case(case, None, read))
                checks.append((case, image, _first_mask(masks_dir)))
        else:
            pairs = _pairs_flat(folder)
    if pairs is not None:
        for case, images, mask in pairs:
            records.append(_Case(case, None, _bind(_read_pair, images, mask, n_classes)))
            checks.extend((case, image, mask) for image in images)

    dims, is_nifti = _check_headers(checks, progress)
    method = _check_normalize(normalize, "zscore" if is_nifti else "percentile")
    dataset = SegmentationDataset(
        records, name=folder.name, split="all", class_names=class_names, spatial_dims=dims,
        normalize=method, channels=channels, cache=cache, info=None, root=folder,
    )
    if preload:
        dataset.preload(progress=progress)
    return dataset


def _bind(fn, *args):
    def read():
        return fn(*args)

    return read


def _check_headers(checks: list[tuple[str, Path, Path]], progress: bool) -> tuple[int, bool]:
    """Compare image and mask shapes (and spacings) from headers; return (spatial dims, any NIfTI)."""
    dims: dict[int, str] = {}
    any_nifti = False
    bar = tqdm(checks, desc="checking files", unit="file", disable=not progress, delay=0.5, leave=False)
    for case, image, mask in bar:
        ishape, ispacing = probe_shape(image)
        mshape, mspacing = probe_shape(mask)
        if ishape != mshape:
            raise DataFormatError(
                f"image {image} has shape {ishape} but its mask {mask} has shape {mshape}; "
                "an image and its mask must have the same size (was one of them resized or cropped?)"
            )
        if ispacing is not None and mspacing is not None and not np.allclose(ispacing, mspacing, rtol=1e-3, atol=1e-4):
            raise DataFormatError(
                f"image {image} has voxel spacing {ispacing} mm but its mask {mask} has {mspacing} mm; "
                "they must be on the same voxel grid"
            )
        any_nifti |= split_suffix(image)[1] in NIFTI_SUFFIXES
        dims.setdefault(len(ishape), str(image))
    if len(dims) > 1:
        raise DataFormatError(
            f"the folder mixes 2D and 3D cases (e.g. {dims.get(2)} and {dims.get(3)}); keep one kind per folder"
        )
    return (next(iter(dims)) if dims else 2), any_nifti
