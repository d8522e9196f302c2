"""Reading image and mask files into the course's array conventions.

Conventions (the whole data layer uses them)
--------------------------------------------
* A 2D image is ``(C, H, W)``, a 3D volume ``(C, D, H, W)``: channels first, as PyTorch wants.
* A mask (label map) is ``(H, W)`` or ``(D, H, W)``, integer, value ``k`` = class ``k``.
* 3D arrays are in NIfTI voxel order **reversed**: array axes ``(D, H, W)`` are the NIfTI
  voxel axes ``(k, j, i)``, as SimpleITK's ``GetArrayFromImage`` gives them. ``volume[d]`` is
  then one slice along the file's third axis, shown by ``imshow`` with rows ``j`` and
  columns ``i``. Spacing is given in the same ``(D, H, W)`` order, in millimetres, and the
  affine maps ``(d, h, w, 1)`` array indices to world (scanner) millimetres.
* 2D colour: an alpha channel is dropped; an RGB image whose three channels are equal
  everywhere is gray and becomes one channel; other RGB images keep three channels.

The readers here return the stored values unchanged (native dtype); intensity normalisation
is the loaders' job (with :mod:`medseg_course.data.transforms`).

Introduced in 01_medical_images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from medseg_course.data.errors import DataFormatError

__all__ = [
    "IMAGE_SUFFIXES_2D",
    "NIFTI_SUFFIXES",
    "Volume",
    "probe_shape",
    "read_image",
    "read_instance_masks",
    "read_mask",
    "read_volume",
    "split_suffix",
]

#: File suffixes read as 3D NIfTI volumes.
NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: File suffixes read as 2D images (a 3-axis TIFF that is not RGB is read as a 3D stack).
IMAGE_SUFFIXES_2D = (".png", ".tif", ".tiff")


def split_suffix(path: str | os.PathLike) -> tuple[str, str]:
    """Split a file name into stem and (lower-case) suffix, treating ``.nii.gz`` as one suffix.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    stem, suffix : str

    Notes
    -----
    Introduced in 01_medical_images.

    Examples
    --------
    >>> split_suffix("labels/hippocampus_001.nii.gz")
    ('hippocampus_001', '.nii.gz')
    >>> split_suffix("cell_01_mask.PNG")
    ('cell_01_mask', '.png')
    """
    name = Path(path).name
    lower = name.lower()
    for suffix in (".nii.gz", *NIFTI_SUFFIXES, *IMAGE_SUFFIXES_2D):
        if lower.endswith(suffix):
            return name[: -len(suffix)], suffix
    stem, dot, ext = name.rpartition(".")
    return (stem, "." + ext.lower()) if dot and stem else (name, "")


class Volume(NamedTuple):
    """A 3D image as read from a NIfTI file.

    Attributes
    ----------
    array : ndarray
        ``(D, H, W)``, or ``(C, D, H, W)`` for a 4D file (its 4th axis becomes ``C``), in the
        stored dtype (scaled by the header's slope/intercept when it sets them).
    spacing : tuple of float
        Voxel size in millimetres along ``(D, H, W)``.
    affine : (4, 4) ndarray
        Maps ``(d, h, w, 1)`` array indices to world millimetres.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray


def _spacing(zooms) -> tuple[float, ...]:
    """Header zooms as Python floats, without float32 noise (0.8 rather than 0.800000011920929)."""
    return tuple(float(str(np.float32(z))) for z in zooms)


def _unreadable(path: Path, err: Exception, kind: str) -> DataFormatError:
    return DataFormatError(
        f"cannot read {path} as {kind} ({type(err).__name__}: {err}); the file is damaged or not "
        f"a {kind} file: re-export it, or move it out of the folder"
    )


def _check_path(path, name: str = "path") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or Path), got {type(path).__name__}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} {str(path)!r} does not exist or is not a file")
    return path


def read_volume(path: str | os.PathLike) -> Volume:
    """Read a NIfTI volume (``.nii`` / ``.nii.gz``) in the course's ``(D, H, W)`` order.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    Volume
        ``(array, spacing, affine)``; see :class:`Volume` and the module notes on axis order.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataFormatError
        If nibabel cannot read it, or it is not 3D/4D.

    Notes
    -----
    Reading uses nibabel's ``dataobj``, which keeps the stored dtype (``get_fdata`` would turn
    every volume into float64, eight times the memory of uint8).

    Introduced in 01_medical_images.

    Examples
    --------
    >>> import tempfile, nibabel as nib
    >>> data = np.zeros((4, 5, 6), np.uint8)                      # NIfTI axes (i, j, k)
    >>> path = Path(tempfile.mkdtemp()) / "v.nii.gz"
    >>> nib.save(nib.Nifti1Image(data, np.diag([0.5, 0.8, 2.0, 1.0])), path)
    >>> vol = read_volume(path)
    >>> vol.array.shape, vol.spacing                             # (D, H, W) = (k, j, i)
    ((6, 5, 4), (2.0, 0.8, 0.5))
    """
    import nibabel as nib

    path = _check_path(path)
    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
        zooms = _spacing(img.header.get_zooms()[:3])
        affine = np.asarray(img.affine, dtype=np.float64)
    except Exception as err:  # noqa: BLE001 - nibabel raises many types for damaged files
        raise _unreadable(path, err, "NIfTI") from err
    if data.ndim == 4:
        data = data.transpose(3, 2, 1, 0)
    elif data.ndim == 3:
        data = data.transpose(2, 1, 0)
    else:
        raise DataFormatError(
            f"{path} holds a {data.ndim}D array of shape {data.shape}; a 3D volume (or 4D with "
            "channels last) was expected"
        )
    return Volume(np.ascontiguousarray(data), zooms[::-1], affine[:, [2, 1, 0, 3]])


def _read_pixels(path: Path, kind: str) -> np.ndarray:
    """Decode a PNG or TIFF to an array, as stored."""
    suffix = split_suffix(path)[1]
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(str(path)))
        from PIL import Image

        with Image.open(path) as im:
            if im.mode == "P" and kind == "image":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            return np.asarray(im)
    except Exception as err:  # noqa: BLE001 - PIL/tifffile raise many types for damaged files
        raise _unreadable(path, err, "a PNG/TIFF image") from err


def _is_colour(array: np.ndarray) -> bool:
    return array.ndim == 3 and array.shape[-1] in (3, 4)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a 2D image (PNG, TIFF) as ``(C, H, W)``, or a 3D TIFF stack as ``(1, D, H, W)``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ndarray
        In the stored dtype. Alpha is dropped; gray stored as RGB (three equal channels)
        becomes one channel; real colour keeps three. NIfTI files go to :func:`read_volume`
        and come back as ``(C, D, H, W)``.

    Raises
    ------
    FileNotFoundError, DataFormatError

    Notes
    -----
    A TIFF with three axes whose last axis has 3 or 4 entries is read as a colour image;
    any other 3-axis TIFF as a ``(D, H, W)`` stack.

    Introduced in 01_medical_images.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> rgba = np.zeros((8, 9, 4), np.uint8); rgba[..., :3] = 7; rgba[..., 3] = 255
    >>> path = Path(tempfile.mkdtemp()) / "gray_as_rgba.png"
    >>> Image.fromarray(rgba).save(path)
    >>> read_image(path).shape                                    # alpha dropped, gray -> 1 channel
    (1, 8, 9)
    """
    path = _check_path(path)
    if split_suffix(path)[1] in NIFTI_SUFFIXES:
        array = read_volume(path).array
        return array if array.ndim == 4 else array[None]
    a = _read_pixels(path, "image")
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.ndim == 2:
        return a[None]
    if a.ndim == 3 and a.shape[-1] == 2:  # gray + alpha
        return np.ascontiguousarray(a[None, ..., 0])
    if _is_colour(a):
        rgb = a[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
            return np.ascontiguousarray(rgb[None, ..., 0])
        return np.ascontiguousarray(rgb.transpose(2, 0, 1))
    if a.ndim == 3:  # a stack
        return a[None]
    raise DataFormatError(
        f"{path} holds an array of shape {a.shape}; expected (H, W), (H, W, 3|4) or a (D, H, W) stack"
    )


def _as_labels(a: np.ndarray, path: Path) -> np.ndarray:
    """Integer label map from a decoded mask, refusing values that are not whole numbers."""
    if a.dtype == bool:
        return a.astype(np.uint8)
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
            bad = a[~np.isfinite(a) | (a != np.round(a))][:3]
            raise DataFormatError(
                f"{path} is a mask with non-integer values (e.g. {bad.tolist()}); a mask must hold "
                "integer class labels (0 = background). Was it resampled with linear interpolation? "
                "Use nearest-neighbour interpolation for masks."
            )
        if a.size and (a.min() < 0 or a.max() > np.iinfo(np.int32).max):
            raise DataFormatError(f"{path} is a mask with labels outside 0..2**31-1")
        small = np.uint8 if a.size == 0 or a.max() <= 255 else np.int32
        return a.astype(small)
    if not np.issubdtype(a.dtype, np.integer):
        raise DataFormatError(f"{path} is a mask of dtype {a.dtype}; integer labels were expected")
    if a.size and a.min() < 0:
        raise DataFormatError(f"{path} is a mask with negative labels (min {a.min()}); labels must be >= 0")
    return a


def read_mask(path: str | os.PathLike, *, binary_255: bool = True) -> np.ndarray:
    """Read a mask (label map) file as an integer array ``(H, W)`` or ``(D, H, W)``.

    Parameters
    ----------
    path : str or path-like
        PNG, TIFF or NIfTI.
    binary_255 : bool
        If True (default), a mask whose only values are 0 and 255 (the usual way to save a
        binary mask as an 8-bit image) becomes 0/1. Other values are kept as class labels.

    Returns
    -------
    ndarray
        Integer dtype as small as the values allow (uint8 for most masks). Float files are
        accepted only when every value is a whole number.

    Raises
    ------
    FileNotFoundError, DataFormatError
        Unreadable file, colour mask with unequal channels, negative or non-integer values.

    Notes
    -----
    Introduced in 01_medical_images.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> m = np.zeros((4, 4), np.uint8); m[1:3, 1:3] = 255
    >>> path = Path(tempfile.mkdtemp()) / "m.png"
    >>> Image.fromarray(m).save(path)
    >>> int(read_mask(path).max()), int(read_mask(path, binary_255=False).max())
    (1, 255)
    """
    path = _check_path(path)
    if split_suffix(path)[1] in NIFTI_SUFFIXES:
        a = read_volume(path).array
        if a.ndim == 4:
            if a.shape[0] != 1:
                raise DataFormatError(
                    f"{path} is a mask with {a.shape[0]} channels (shape {a.shape}); a mask must "
                    "be one label map"
                )
            a = a[0]
    else:
        a = _read_pixels(path, "mask")
        if _is_colour(a) or (a.ndim == 3 and a.shape[-1] == 2):
            chans = a[..., :3] if a.shape[-1] != 2 else a[..., :1]
            if not all(np.array_equal(chans[..., 0], chans[..., c]) for c in range(chans.shape[-1])):
                raise DataFormatError(
                    f"{path} is a colour mask (its RGB channels differ); a mask must be one label "
                    "map: save each class as an integer value (0 = background) in a grayscale PNG/TIFF"
                )
            a = np.ascontiguousarray(chans[..., 0])
    labels = _as_labels(a, path)
    if binary_255 and labels.size:
        values = np.unique(labels)
        if values[-1] == 255 and np.all(np.isin(values, (0, 255))):
            labels = (labels > 0).astype(np.uint8)
    return labels


def read_instance_masks(folder: str | os.PathLike) -> tuple[np.ndarray, int, int]:
    """Merge a folder of one-mask-per-object files (DSB2018 style) into an instance label map.

    Parameters
    ----------
    folder : str or path-like
        Folder of 2D mask files (PNG/TIFF), one object each; non-zero pixels belong to it.
        Hidden files and macOS ``._*`` files are skipped.

    Returns
    -------
    instances : (H, W) ndarray of uint16 (int32 beyond 65535 objects)
        0 = background, ``i`` = the i-th mask file in sorted file-name order. Where masks
        overlap, the later file wins.
    n_objects : int
        Number of mask files.
    n_overlap : int
        Number of pixels claimed by more than one mask.

    Raises
    ------
    FileNotFoundError, DataFormatError
        No mask files, an unreadable file, or masks of different shapes.

    Notes
    -----
    Introduced in 01_medical_images.

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> d = Path(tempfile.mkdtemp())
    >>> for i, sl in enumerate([np.s_[0:2, 0:2], np.s_[1:3, 1:4]]):
    ...     m = np.zeros((4, 5), np.uint8); m[sl] = 255; Image.fromarray(m).save(d / f"n{i}.png")
    >>> inst, n, overlap = read_instance_masks(d)
    >>> inst.tolist()[:2], n, overlap
    ([[1, 1, 0, 0, 0], [1, 2, 2, 2, 0]], 2, 1)
    """
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a folder path, got {type(folder).__name__}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {str(folder)!r} does not exist or is not a folder")
    files = sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and split_suffix(p)[1] in IMAGE_SUFFIXES_2D
    )
    if not files:
        raise DataFormatError(f"{folder} holds no mask files (.png, .tif, .tiff)")
    instances = None
    claimed = None
    for i, p in enumerate(files, start=1):
        m = _read_pixels(p, "mask")
        if m.ndim == 3:
            m = m[..., 0]
        if instances is None:
            dtype = np.uint16 if len(files) < 65536 else np.int32
            instances = np.zeros(m.shape, dtype)
            claimed = np.zeros(m.shape, np.uint8)
        elif m.shape != instances.shape:
            raise DataFormatError(
                f"mask {p.name} has shape {m.shape} but {files[0].name} has shape "
                f"{instances.shape}, in {folder}; all masks of one image must have its shape"
            )
        on = m > 0
        instances[on] = i
        claimed[on] = np.minimum(claimed[on], 254) + 1
    return instances, len(files), int(np.count_nonzero(claimed > 1))


def probe_shape(path: str | os.PathLike) -> tuple[tuple[int, ...], tuple[float, ...] | None]:
    """Spatial shape (and spacing, for NIfTI) of an image or mask file, read from its header.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    shape : tuple of int
        ``(H, W)`` or ``(D, H, W)``, without channels.
    spacing : tuple of float or None
        ``(D, H, W)`` millimetres for NIfTI, None for PNG/TIFF.

    Raises
    ------
    DataFormatError
        If the header cannot be read.

    Notes
    -----
    Introduced in 01_medical_images.
    """
    path = Path(path)
    suffix = split_suffix(path)[1]
    try:
        if suffix in NIFTI_SUFFIXES:
            import nibabel as nib

            img = nib.load(str(path))
            shape = tuple(int(s) for s in img.shape[:3])[::-1]
            return shape, _spacing(img.header.get_zooms()[:3])[::-1]
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(str(path)) as tf:
                shape = tuple(int(s) for s in tf.series[0].shape)
            if len(shape) == 3 and shape[-1] in (2, 3, 4):
                shape = shape[:2]
            return shape, None
        from PIL import Image

        with Image.open(path) as im:
            return (im.height, im.width), None
    except Exception as err:  # noqa: BLE001
        raise _unreadable(path, err, "an image") from err
