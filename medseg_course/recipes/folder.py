"""Train on your own data: one call from a folder of image/mask pairs to a segmenter.

::

    from medseg_course.recipes.folder import train_on_folder, Segmenter

    segmenter = train_on_folder("my_data", minutes=10)       # 2D PNG/TIFF or 3D NIfTI pairs
    labels = segmenter.predict("new_image.png")               # (H, W) int64 labels
    segmenter.predict_folder("unlabelled/", "predictions/")   # one label file per image
    segmenter.save("my_model.pt")
    segmenter = Segmenter.load("my_model.pt")

:func:`train_on_folder` reads the folder with :func:`medseg_course.data.load_folder` (any of its
layouts), finds out whether the data is 2D or 3D and how many classes the masks hold, holds
out a seeded validation fraction of the cases, and trains a course model with
:func:`medseg_course.train.fit` on random patches (flips and 90-degree rotations, a third of the
patches centred on a labelled pixel), Dice + cross-entropy loss, AdamW with a cosine schedule.
The :class:`Segmenter` it returns carries the model with its preprocessing (channels,
intensity normalisation, patch size), so that a new image goes through exactly what the
training images went through; images larger than the training patch are segmented by a
sliding window with Gaussian blending (:func:`medseg_course.train.predict`).

Introduced in 08_unet.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from medseg_course.data.datasets import PERCENTILE_RANGE, RGB_TO_GRAY, _robust_zscore
from medseg_course.data.folder import MASK_SUFFIXES, load_folder
from medseg_course.data.io import IMAGE_SUFFIXES_2D, NIFTI_SUFFIXES, read_image, split_suffix
from medseg_course.data.loaders import ImageDataset, PatchDataset, make_loader
from medseg_course.data.transforms import percentile_normalize
from medseg_course.losses import DiceCELoss
from medseg_course.runtime import choose_device, seed_everything
from medseg_course.train import History, TrainConfig, fit, load_checkpoint, predict, save_checkpoint

__all__ = ["Segmenter", "train_on_folder", "MODELS"]

#: Model names :func:`train_on_folder` builds (``"unet"`` is a 2D UNet or a UNet3D, as the data).
MODELS = ("unet", "unet3d", "unetpp", "fcn")
#: Constructor arguments of the named models, unless ``model_kwargs`` overrides them.
_DEFAULT_KWARGS = {
    ("unet", 2): dict(features=(16, 32, 64, 128, 256), norm="group"),
    ("unet", 3): {},  # UNet3D's defaults: (16, 32, 64, 128), instance norm, leaky ReLU
    ("unetpp", 2): dict(features=(16, 32, 64, 128, 256), norm="group"),
    ("unetpp", 3): dict(features=(8, 16, 32, 64, 128), norm="instance", act="leakyrelu"),
    ("fcn", 2): {},
    ("fcn", 3): {},
}
_MAX_PATCH = {2: 128, 3: 64}
_BATCH = {2: 8, 3: 2}
_MIN_STEPS = 8  # an epoch has at least this many batches
_WHOLE_IMAGE_FACTOR = {2: 32, 3: 8}  # validate on whole images up to this many patches in size
_FORMAT = "medseg-course-segmenter"
_VERSION = 1


# --------------------------------------------------------------------------------------------
# preprocessing (the same as SegmentationDataset's, for images read outside a dataset)
# --------------------------------------------------------------------------------------------


def _convert_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """``(C, *spatial)`` -> ``(channels, *spatial)``: colour to grey (BT.709) or grey repeated."""
    c = image.shape[0]
    if c == channels:
        return image
    if channels == 1 and c == 3:
        w = np.asarray(RGB_TO_GRAY).reshape((3,) + (1,) * (image.ndim - 1))
        return (image.astype(np.float64) * w).sum(axis=0, keepdims=True)
    if channels == 3 and c == 1:
        return np.repeat(image, 3, axis=0)
    raise ValueError(
        f"the image has {c} channels but the segmenter was trained on {channels}; give it images "
        f"like its training images ({channels} channel(s)), channels first: (C, H, W) or (C, D, H, W)"
    )


def _normalize(image: np.ndarray, method: str | None) -> np.ndarray:
    if method == "zscore":
        return np.stack([_robust_zscore(c) for c in image]).astype(np.float32)
    if method == "percentile":
        return percentile_normalize(image, *PERCENTILE_RANGE).astype(np.float32)
    return image.astype(np.float32)


# --------------------------------------------------------------------------------------------
# the segmenter
# --------------------------------------------------------------------------------------------


class Segmenter:
    """A trained model with its preprocessing: predicts label maps for new images and folders.

    Made by :func:`train_on_folder` or :meth:`Segmenter.load`.

    Introduced in 08_unet.

    Parameters
    ----------
    model : nn.Module
        Returns logits ``(B, K, *spatial)`` (K >= 2: softmax over the classes).
    preprocessing : mapping
        ``spatial_dims`` (2 or 3), ``channels`` (input channels), ``normalize`` (``"percentile"``,
        ``"zscore"`` or None), ``patch_size`` (training patch), ``n_classes``; optionally
        ``class_names``, ``train_cases``, ``val_cases``, ``source``.
    history : History, optional
        The learning curve of the training run.
    config : TrainConfig, optional
        The settings of the training run.
    device : torch.device or str, optional
        Where predictions run; :func:`~medseg_course.runtime.choose_device` by default.

    Attributes
    ----------
    model, history, config, device
    spatial_dims, channels, normalize, patch_size, n_classes, class_names
        The preprocessing, as attributes.
    """

    def __init__(self, model: nn.Module, preprocessing: Mapping, *, history: History | None = None,
                 config: TrainConfig | None = None, device=None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        missing = [k for k in ("spatial_dims", "channels", "normalize", "patch_size", "n_classes")
                   if k not in preprocessing]
        if missing:
            raise ValueError(f"preprocessing lacks {missing}; it needs spatial_dims, channels, normalize, "
                             "patch_size and n_classes")
        self.model = model
        self.preprocessing = dict(preprocessing)
        self.history = history
        self.config = config
        self.device = choose_device() if device is None else torch.device(device)
        self.spatial_dims = int(preprocessing["spatial_dims"])
        self.channels = int(preprocessing["channels"])
        self.normalize = preprocessing["normalize"]
        self.patch_size = tuple(int(p) for p in preprocessing["patch_size"])
        self.n_classes = int(preprocessing["n_classes"])
        names = preprocessing.get("class_names")
        self.class_names = tuple(names) if names is not None else None

    def __repr__(self) -> str:
        best = ""
        if self.history is not None and self.history.best is not None:
            best = f", best {self.history.monitor} {self.history.best:.4f}"
        return (f"Segmenter({type(self.model).__name__}, {self.spatial_dims}D, {self.channels} channel(s), "
                f"{self.n_classes} classes, patch {self.patch_size}, normalize={self.normalize!r}{best})")

    # -- inputs --------------------------------------------------------------------------------
    def preprocess(self, image) -> np.ndarray:
        """Stored intensities -> the network's input ``(C, *spatial)`` float32, as in training.

        Parameters
        ----------
        image : ndarray
            ``(*spatial)`` or ``(C, *spatial)``, channels first, the values as stored in the file
            (what :func:`~medseg_course.data.read_image` returns).

        Returns
        -------
        (C, *spatial) ndarray of float32
        """
        image = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
        nd = self.spatial_dims
        if image.ndim == nd:
            image = image[None]  # (1, *spatial)
        if image.ndim != nd + 1:
            axes = "(H, W) or (C, H, W)" if nd == 2 else "(D, H, W) or (C, D, H, W)"
            raise ValueError(f"image must be {axes} for this {nd}D segmenter, got shape {image.shape}")
        return _normalize(_convert_channels(image, self.channels), self.normalize)

    def _read(self, path: Path) -> np.ndarray:
        image = read_image(path)  # (C, *spatial), NIfTI included
        if image.ndim - 1 != self.spatial_dims:
            raise ValueError(f"{path} holds a {image.ndim - 1}D image but the segmenter is {self.spatial_dims}D")
        return image

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, image, *, output: str = "labels", preprocessed: bool = False, overlap: float = 0.5,
                batch_size: int = 4) -> np.ndarray:
        """Segment one image: a file path or an array.

        Parameters
        ----------
        image : str, path or ndarray
            A file (PNG, TIFF or NIfTI, read as in training), or an array ``(*spatial)`` /
            ``(C, *spatial)`` of stored intensities.
        output : {"labels", "probabilities"}, default "labels"
        preprocessed : bool, default False
            True: ``image`` is already the network's input (e.g. ``sample.image`` of a
            :func:`~medseg_course.data.load_folder` dataset); it is used as it is.
        overlap : float, default 0.5
            Overlap of the sliding windows.
        batch_size : int, default 4
            Windows per forward pass.

        Returns
        -------
        ndarray
            ``"labels"``: int64 ``(*spatial)``, class ``k`` = ``class_names[k]``.
            ``"probabilities"``: float32 ``(K, *spatial)``, summing to 1 over the classes.

        Notes
        -----
        An image no larger than the training patch goes through the network whole; a larger one
        by windows of the training patch size, ``overlap`` apart, their logits blended with
        Gaussian weights (:func:`medseg_course.train.predict`).
        """
        if output not in ("labels", "probabilities"):
            raise ValueError(f"output must be 'labels' or 'probabilities', got {output!r}")
        if isinstance(image, (str, os.PathLike)):
            x = self.preprocess(self._read(Path(image)))
        elif preprocessed:
            x = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float32)
            if x.ndim != self.spatial_dims + 1 or x.shape[0] != self.channels:
                raise ValueError(f"a preprocessed image must be ({self.channels}, *spatial) with "
                                 f"{self.spatial_dims} spatial axes, got shape {x.shape}")
        else:
            x = self.preprocess(image)
        large = any(n > p for n, p in zip(x.shape[1:], self.patch_size))
        return predict(self.model, x, device=self.device, patch_size=self.patch_size if large else None,
                       overlap=overlap, batch_size=batch_size, output=output)

    def predict_folder(self, in_dir, out_dir, *, progress: bool = True) -> list[Path]:
        """Segment every image file of ``in_dir`` and write one label file each into ``out_dir``.

        Parameters
        ----------
        in_dir : str or path
            A folder of images (PNG, TIFF, NIfTI); hidden files and files named like masks
            (``*_mask``, ``*_label``, ``*_seg``) are skipped, and subfolders are not entered.
        out_dir : str or path
            Created if needed; must not be ``in_dir``.
        progress : bool, default True

        Returns
        -------
        list of pathlib.Path
            The files written, in the order of the sorted input names.

        Notes
        -----
        Labels are written as values ``0 .. K - 1`` (uint8, uint16 beyond 255 classes), which
        :func:`~medseg_course.data.load_folder` reads back: ``<name>.png`` for a 2D image,
        ``<name>.tif`` for a 3D TIFF stack, ``<name>.nii.gz`` with the input's affine for a NIfTI
        volume. Each file is written to a temporary name in ``out_dir`` and renamed: an
        interrupted run never leaves a truncated file.
        """
        in_dir, out_dir = Path(in_dir), Path(out_dir)
        if not in_dir.is_dir():
            raise FileNotFoundError(f"in_dir {str(in_dir)!r} does not exist or is not a folder")
        if out_dir.exists() and out_dir.resolve() == in_dir.resolve():
            raise ValueError("out_dir must differ from in_dir (the label files would mix with the images)")
        files = sorted(
            p for p in in_dir.iterdir()
            if p.is_file() and not p.name.startswith(".")
            and split_suffix(p)[1] in (*NIFTI_SUFFIXES, *IMAGE_SUFFIXES_2D)
            and not any(split_suffix(p)[0].endswith(s) for s in MASK_SUFFIXES)
        )
        if not files:
            raise ValueError(f"{in_dir} holds no image file ({', '.join((*IMAGE_SUFFIXES_2D, *NIFTI_SUFFIXES))})")
        out_dir.mkdir(parents=True, exist_ok=True)
        dtype = np.uint8 if self.n_classes <= 256 else np.uint16
        written = []
        for path in tqdm(files, desc="predicting", unit="image", disable=not progress):
            stem, suffix = split_suffix(path)
            labels = self.predict(path).astype(dtype)
            if suffix in NIFTI_SUFFIXES:
                written.append(_write_atomic(out_dir / f"{stem}.nii.gz", labels, _nifti_writer(path)))
            elif labels.ndim == 3:
                written.append(_write_atomic(out_dir / f"{stem}.tif", labels, _tiff_writer))
            else:
                written.append(_write_atomic(out_dir / f"{stem}.png", labels, _png_writer))
        return written

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the model, its preprocessing and learning curve to one checkpoint file.

        A course checkpoint (:func:`medseg_course.train.save_checkpoint`, written atomically)
        whose ``extra["segmenter"]`` holds the preprocessing; :meth:`load` reads it back.
        """
        extra = {"segmenter": {"format": _FORMAT, "version": _VERSION, **_plain_preprocessing(self.preprocessing)}}
        epoch = self.history.best_epoch if self.history is not None else None
        return save_checkpoint(path, self.model, self.config, self.history, epoch=epoch, extra=extra)

    @classmethod
    def load(cls, path, *, device=None, model_class=None) -> Segmenter:
        """Read a segmenter written by :meth:`save`.

        Parameters
        ----------
        path : str or path
        device : torch.device or str, optional
        model_class : type, optional
            The model's class, for a model defined outside :mod:`medseg_course`.
        """
        ckpt = load_checkpoint(path, model_class=model_class)
        pre = ckpt.extra.get("segmenter")
        if not isinstance(pre, Mapping) or pre.get("format") != _FORMAT:
            raise ValueError(f"{path} is a course checkpoint but not a Segmenter's; read it with "
                             "medseg_course.train.load_checkpoint")
        pre = {k: v for k, v in pre.items() if k not in ("format", "version")}
        return cls(ckpt.model, pre, history=ckpt.history, config=ckpt.config, device=device)


def _plain_preprocessing(pre: Mapping) -> dict:
    out = {}
    for k, v in pre.items():
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def _write_atomic(path: Path, array: np.ndarray, writer) -> Path:
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        writer(tmp, array)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _png_writer(path, labels: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(labels).save(path, format="PNG")


def _tiff_writer(path, labels: np.ndarray) -> None:
    import tifffile

    tifffile.imwrite(path, labels)


def _nifti_writer(source: Path):
    def write(path, labels: np.ndarray) -> None:
        import nibabel as nib

        ref = nib.load(str(source))
        header = ref.header.copy()
        header.set_data_dtype(labels.dtype)
        header.set_slope_inter(1.0, 0.0)
        data = labels.transpose(2, 1, 0)  # (D, H, W) -> NIfTI (i, j, k)
        nib.save(nib.Nifti1Image(data, ref.affine, header), path)

    return write


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------


def _check_positive(value, name: str, integral: bool = False, allow_none: bool = True):
    if value is None and allow_none:
        return None
    kind = numbers.Integral if integral else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not value > 0 or not math.isfinite(value):
        what = "a positive int" if integral else "a positive number"
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}, got {value!r}")
    return int(value) if integral else float(value)


def _model_key(name: str) -> str:
    """``"UNet++"``, ``"unet_pp"``, ``"UNetPP"`` -> ``"unetpp"``; ``"UNet-3D"`` -> ``"unet3d"``."""
    return name.lower().replace("++", "pp").replace("-", "").replace("_", "").replace(" ", "")


def _build_model(name: str, spatial_dims: int, in_channels: int, n_classes: int, model_kwargs: Mapping) -> nn.Module:
    from medseg_course.models import FCN, UNet, UNet3D, UNetPlusPlus

    key = _model_key(name)
    if key not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)} or an nn.Module, got {name!r}")
    if key == "unet3d" and spatial_dims != 3:
        raise ValueError("model='unet3d' needs 3D data (NIfTI volumes); this folder holds 2D images: use model='unet'")
    for k in ("in_channels", "out_channels", "spatial_dims"):
        if k in model_kwargs:
            raise ValueError(f"model_kwargs must not set {k!r}: it is read from the data")
    kwargs = {**_DEFAULT_KWARGS[("unet" if key == "unet3d" else key, spatial_dims)], **model_kwargs}
    if key in ("unet", "unet3d"):
        if spatial_dims == 3:
            return UNet3D(in_channels, n_classes, **kwargs)
        return UNet(in_channels, n_classes, spatial_dims=2, **kwargs)
    if key == "unetpp":
        return UNetPlusPlus(in_channels, n_classes, spatial_dims=spatial_dims, **kwargs)
    return FCN(in_channels, n_classes, spatial_dims=spatial_dims, **kwargs)


def _default_patch(shapes: Sequence[tuple[int, ...]], spatial_dims: int, multiple: int) -> tuple[int, ...]:
    """Per axis: the median image size, at most 128 (2D) / 64 (3D), rounded up to ``multiple``."""
    median = np.median(np.asarray(shapes), axis=0)
    return tuple(int(math.ceil(min(_MAX_PATCH[spatial_dims], m) / multiple) * multiple) for m in median)


def _check_patch(patch_size, spatial_dims: int) -> tuple[int, ...]:
    if isinstance(patch_size, numbers.Integral) and not isinstance(patch_size, bool):
        patch_size = (int(patch_size),) * spatial_dims
    if (isinstance(patch_size, (str, bytes)) or not isinstance(patch_size, Sequence)
            or len(patch_size) != spatial_dims
            or not all(isinstance(p, numbers.Integral) and not isinstance(p, bool) and p > 0 for p in patch_size)):
        raise ValueError(f"patch_size must be None, a positive int or {spatial_dims} positive ints for "
                         f"{spatial_dims}D data, got {patch_size!r}")
    return tuple(int(p) for p in patch_size)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds_per_epoch(model, dataset, batch_size, val_loader, loss_fn, device, steps: int = 3) -> float:
    """Estimated seconds of one epoch of ``fit``: a few timed steps on a copy of the model."""
    probe = copy.deepcopy(model).to(device).train()
    opt = torch.optim.AdamW(probe.parameters(), lr=1e-4)
    loader = make_loader(dataset, batch_size=batch_size, shuffle=True, drop_last=True, seed=12345)
    times = []
    for i, (x, y) in enumerate(loader):
        if i > steps:
            break
        x, y = x.to(device), y.to(device)
        _sync(device)
        start = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(probe(x), y).backward()
        opt.step()
        _sync(device)
        if i > 0:  # the first step warms up
            times.append(time.perf_counter() - start)
    seconds = float(np.median(times)) * len(loader)
    if val_loader is not None:
        probe.eval()
        with torch.no_grad():
            x, _ = next(iter(val_loader))
            x = x.to(device)
            _sync(device)
            start = time.perf_counter()
            probe(x)
            _sync(device)
            seconds += (time.perf_counter() - start) * len(val_loader)
    return seconds


def _split(case_ids: Sequence[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    n = len(case_ids)
    n_val = 0 if val_fraction == 0 or n < 2 else min(n - 1, max(1, round(val_fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    val = sorted(case_ids[i] for i in order[:n_val])
    train = sorted(case_ids[i] for i in order[n_val:])
    return train, val


def train_on_folder(
    path,
    *,
    model: str | nn.Module = "unet",
    epochs: int | None = None,
    minutes: float | None = None,
    patch_size=None,
    batch_size: int | None = None,
    val_fraction: float = 0.2,
    lr: float = 3e-3,
    model_kwargs: Mapping | None = None,
    seed: int = 0,
    device=None,
    progress: bool = True,
) -> Segmenter:
    """Train a segmentation network on a folder of image/mask pairs; return a :class:`Segmenter`.

    Introduced in 08_unet.

    Parameters
    ----------
    path : str or path
        A folder in one of the layouts of :func:`~medseg_course.data.load_folder`:
        ``images/`` + ``masks/`` (or ``imagesTr/`` + ``labelsTr/``), a flat folder with
        ``<name>.png`` and ``<name>_mask.png``, or one folder per image with one mask per object.
        2D (PNG, TIFF) or 3D (NIfTI) images; masks of integer class labels (0 = background;
        0/255 masks are read as 0/1).
    model : {"unet", "unet3d", "unetpp", "fcn"} or nn.Module, default "unet"
        A name: the course model built for the data (``"unet"``: :class:`~medseg_course.models.UNet`
        with features (16, 32, 64, 128, 256) and group norm for 2D,
        :class:`~medseg_course.models.UNet3D` with its defaults for 3D), ``in_channels`` and
        ``out_channels`` read from the data. Or a model of your own making, which must take the
        images' channels and return one logit map per class (``out_channels = K``, see Notes).
    epochs : int, optional
        Number of epochs (an epoch: one random patch per training image, more for small folders,
        at least 8 batches).
    minutes : float, optional
        Training time budget: the number of epochs is estimated from a few timed steps before
        training (the learning-rate schedule then fits the run). With ``epochs`` too, the smaller
        number wins. With neither, ``minutes=10``.
    patch_size : int or tuple of int, optional
        Training patch; by default the median image size per axis, at most 128 (2D) or 64 (3D),
        rounded up to a multiple of 16 (2D) or 8 (3D). Larger images are predicted by a sliding
        window of this size.
    batch_size : int, optional
        8 in 2D, 2 in 3D.
    val_fraction : float, default 0.2
        Share of the cases held out for validation (at least one when there are two or more
        cases; 0 for none). The best epoch by validation Dice is kept.
    lr : float, default 3e-3
        AdamW learning rate, decayed to 0 by a cosine schedule.
    model_kwargs : mapping, optional
        Constructor arguments of a named model, e.g. ``{"features": (8, 16, 32)}``.
    seed : int, default 0
        Seeds the validation split, the weights and the patches.
    device : torch.device or str, optional
        :func:`~medseg_course.runtime.choose_device` by default (the GPU when there is one).
    progress : bool, default True
        Progress bars while loading and training.

    Returns
    -------
    Segmenter
        ``.predict(image_or_path)``, ``.predict_folder(in_dir, out_dir)``, ``.save(path)``,
        ``.history`` (the learning curve; ``viz.plot_history(segmenter.history)`` draws it).

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a folder.
    DataFormatError
        From :func:`~medseg_course.data.load_folder`: an empty folder, no pair, unpaired files,
        image/mask shapes that differ, 2D and 3D cases mixed.
    ValueError
        Masks holding a single class, images with different channel counts that cannot be
        reconciled (only grey and RGB can), an unknown model name, a model whose output does
        not have one channel per class, bad settings.

    Notes
    -----
    Classes: ``K = 1 + the largest label`` found in the masks (labels ``0 .. K - 1``). The model
    outputs ``K`` logit maps (two for a binary task) and is trained with Dice (foreground
    classes, pooled over the batch) + cross-entropy. Channels: images keep their channels; a
    folder that mixes grey and RGB images gets three channels everywhere (grey repeated).
    Intensities are normalised per image as :func:`~medseg_course.data.load_folder` does:
    1..99.8 percentiles scaled to 0..1 for PNG/TIFF, a clipped z-score for NIfTI.
    Patches: ``PatchDataset`` with random flips and 90-degree rotations, a third centred on a
    labelled pixel (nnU-Net's oversampling). Validation: whole images when they are at most 32
    (2D) / 8 (3D) patches in size, otherwise four fixed patches per image. With a ``minutes``
    budget the number of epochs depends on the machine's speed; with ``epochs`` two runs on the
    same machine give the same model.

    Examples
    --------
    >>> segmenter = train_on_folder("my_data", minutes=10)            # doctest: +SKIP
    >>> segmenter.predict("new_image.png").shape                      # doctest: +SKIP
    (520, 696)

    A runnable miniature: four synthetic 48 x 48 images, one epoch of a tiny U-Net.

    >>> import tempfile
    >>> from PIL import Image
    >>> from medseg_course.data.synthetic import make_dataset
    >>> root = Path(tempfile.mkdtemp())
    >>> for i, s in enumerate(make_dataset(4, shape=(48, 48), n_objects=4, radius=6.0, seed=0)):
    ...     Image.fromarray((s.image * 255).astype(np.uint8)).save(root / f"cell{i}.png")
    ...     Image.fromarray((s.mask * 255).astype(np.uint8)).save(root / f"cell{i}_mask.png")
    >>> seg = train_on_folder(root, epochs=1, batch_size=2, model_kwargs={"features": (4, 8)},
    ...                       device="cpu", progress=False)
    >>> seg.n_classes, seg.patch_size, seg.predict(root / "cell0.png").shape
    (2, (48, 48), (48, 48))
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a folder path (str or Path), got {type(path).__name__}")
    if not isinstance(model, (str, nn.Module)):
        raise TypeError(f"model must be a name ({', '.join(MODELS)}) or an nn.Module, got {type(model).__name__}")
    if isinstance(model, str) and _model_key(model) not in MODELS:
        raise ValueError(f"model must be one of {list(MODELS)} or an nn.Module, got {model!r}")
    epochs = _check_positive(epochs, "epochs", integral=True)
    minutes = _check_positive(minutes, "minutes")
    batch_size = _check_positive(batch_size, "batch_size", integral=True)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real) or not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise TypeError(f"model_kwargs must be a dict of constructor arguments, got {type(model_kwargs).__name__}")
    if model_kwargs and not isinstance(model, str):
        raise ValueError("model_kwargs is for a named model; an nn.Module is used as it is")
    if epochs is None and minutes is None:
        minutes = 10.0
    device = choose_device() if device is None else torch.device(device)

    # 1. the data: dimensions, channels, classes ------------------------------------------------
    dataset = load_folder(path, cache=False, progress=progress)  # samples are kept below, once
    if len(dataset) == 0:
        raise ValueError(f"{path} holds no image/mask pair")
    nd = dataset.spatial_dims
    samples = list(tqdm(dataset, desc="reading", unit="case", disable=not progress, delay=0.5, leave=False))
    channel_counts = sorted({s.image.shape[0] for s in samples})
    if len(channel_counts) > 1:
        if channel_counts != [1, 3]:
            raise ValueError(f"the images of {path} have different numbers of channels {channel_counts}; "
                             "only grey and RGB can be mixed (grey is then repeated into 3 channels)")
        dataset = load_folder(path, channels=3, cache=False, progress=False)
        samples = list(dataset)
    channels = channel_counts[-1]
    labels = sorted(set().union(*(np.unique(s.mask).tolist() for s in samples)))
    if len(labels) < 2:
        raise ValueError(
            f"every mask in {path} holds the single label {labels[0]}; a segmentation needs at least two "
            "classes (0 for the background and 1, 2, ... for the structures): check that the masks are "
            "not empty or all foreground"
        )
    if labels[0] < 0:
        raise ValueError(f"the masks of {path} hold negative labels {[v for v in labels if v < 0]}; "
                         "use 0 for the background and 1, 2, ... for the classes")
    n_classes = int(labels[-1]) + 1

    # 2. the model -------------------------------------------------------------------------------
    seed_everything(seed)  # the same initial weights for the same seed
    if isinstance(model, str):
        net = _build_model(model, nd, channels, n_classes, dict(model_kwargs or {}))
    else:
        net = model
    depth = getattr(net, "depth", 4 if nd == 2 else 3)
    multiple = 32 if type(net).__name__ == "FCN" else 2 ** int(depth)
    shapes = [s.mask.shape for s in samples]
    patch = _default_patch(shapes, nd, multiple) if patch_size is None else _check_patch(patch_size, nd)
    batch_size = batch_size or _BATCH[nd]

    # 3. split, loaders, loss --------------------------------------------------------------------
    train_ids, val_ids = _split(dataset.case_ids, float(val_fraction), seed)
    by_id = dict(zip(dataset.case_ids, samples))
    train_samples = [by_id[c] for c in train_ids]
    val_samples = [by_id[c] for c in val_ids]
    per_image = max(1, math.ceil(_MIN_STEPS * batch_size / len(train_samples)))
    train_set = PatchDataset(train_samples, patch, patches_per_image=per_image, augment=True,
                             foreground_fraction=1 / 3)
    train_loader = make_loader(train_set, batch_size=batch_size, shuffle=True, drop_last=True, seed=seed,
                               pin_memory=device.type == "cuda")
    val_loader = None
    if val_samples:
        limit = _WHOLE_IMAGE_FACTOR[nd] * math.prod(patch)
        if max(math.prod(s.mask.shape) for s in val_samples) <= limit:
            val_loader = make_loader(ImageDataset(val_samples), batch_size=1)
        else:
            val_set = PatchDataset(val_samples, patch, patches_per_image=4, foreground_fraction=0.5, seed=seed)
            val_loader = make_loader(val_set, batch_size=batch_size)
    loss_fn = DiceCELoss(include_background=False, batch_dice=True)
    if getattr(net, "deep_supervision", False):
        from medseg_course.losses import DeepSupervisionLoss

        loss_fn = DeepSupervisionLoss(loss_fn)

    # a dry run: the model must take the channels and return one logit map per class
    x, _ = train_set[0]
    net.to(device)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(x[None].to(device))
    except RuntimeError as err:
        raise ValueError(f"the model fails on a training patch of shape {tuple(x[None].shape)} "
                         f"({channels} channel(s)): {err}") from err
    finally:
        net.train(was_training)
    if isinstance(out, (list, tuple)):
        out = out[-1]
    if out.shape[1] != n_classes or tuple(out.shape[2:]) != tuple(x.shape[1:]):
        raise ValueError(
            f"the model maps a patch {tuple(x[None].shape)} to {tuple(out.shape)}; it must return "
            f"(1, {n_classes}, *patch): one logit map per class ({n_classes} classes, labels 0..{n_classes - 1}), "
            f"e.g. build it with out_channels={n_classes}"
        )

    # 4. the budget and the run -------------------------------------------------------------------
    if minutes is not None:
        per_epoch = _seconds_per_epoch(net, train_set, batch_size, val_loader, loss_fn, device)
        by_time = max(1, int(minutes * 60 / max(per_epoch, 1e-6)))
        epochs = by_time if epochs is None else min(epochs, by_time)
    config = TrainConfig(epochs=epochs, lr=lr, lr_schedule="cosine", batch_size=batch_size, seed=seed)
    history = fit(net, train_loader, val_loader, loss_fn, config, device=device, progress=progress)
    net.eval()
    preprocessing = dict(
        spatial_dims=nd, channels=channels, normalize=dataset.normalize, patch_size=list(patch),
        n_classes=n_classes, class_names=list(dataset.class_names) if dataset.class_names else None,
        train_cases=list(train_ids), val_cases=list(val_ids), source=str(Path(path).expanduser().resolve()),
    )
    return Segmenter(net, preprocessing, history=history, config=config, device=device)
