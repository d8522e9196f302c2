"""load_folder: every accepted layout, and every error, on small generated folders."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image

from medseg_course.data.errors import DataFormatError
from medseg_course.data.folder import load_folder

RNG = np.random.default_rng(0)


def _png(path: Path, array) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array)).save(path)
    return path


def _image(h=8, w=10, rgb=False):
    shape = (h, w, 3) if rgb else (h, w)
    return RNG.integers(0, 255, size=shape, dtype=np.uint8)


def _mask(h=8, w=10, value=255):
    m = np.zeros((h, w), np.uint8)
    m[2:5, 3:7] = value
    return m


def _nifti(path: Path, data, zooms=(1.0, 1.0, 1.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(data, np.diag([*zooms, 1.0]))
    img.header.set_zooms(zooms + ((1.0,) if data.ndim == 4 else ()))
    nib.save(img, path)
    return path


# --------------------------------------------------------------------------------------------
# layouts
# --------------------------------------------------------------------------------------------


def test_two_folders_png_tif_and_suffixes(tmp_path):
    _png(tmp_path / "images" / "a.png", _image())
    _png(tmp_path / "masks" / "a.png", _mask())
    _png(tmp_path / "images" / "b.png", _image(rgb=True))
    _png(tmp_path / "masks" / "b_mask.png", _mask(value=1))
    tifffile.imwrite(tmp_path / "images" / "c.tif", RNG.integers(0, 4000, (8, 10), dtype=np.uint16))
    _png(tmp_path / "masks" / "c_label.png", _mask(value=2))
    (tmp_path / "images" / "._a.png").write_bytes(b"macOS junk")
    (tmp_path / "images" / "notes.txt").write_text("ignored")
    ds = load_folder(tmp_path, progress=False)
    assert ds.case_ids == ("a", "b", "c") and ds.split == "all" and ds.spatial_dims == 2
    assert ds.name == tmp_path.name and ds.normalize == "percentile" and ds.class_names is None
    a, b, c = ds
    assert a.image.shape == (1, 8, 10) and b.image.shape == (3, 8, 10) and c.image.shape == (1, 8, 10)
    assert a.mask.max() == 1 and b.mask.max() == 1 and c.mask.max() == 2  # 0/255 read as 0/1
    assert a.mask.dtype == np.int64 and a.image.dtype == np.float32
    assert 0 <= c.image.min() and c.image.max() <= 1
    raw = load_folder(tmp_path, normalize=False, progress=False)["c"]
    assert raw.image.max() > 255 and raw.meta["dtype"] == "uint16"
    assert load_folder(tmp_path, channels=3, progress=False)["a"].image.shape == (3, 8, 10)


def test_flat_folder(tmp_path):
    for name in ("cell_01", "cell_02"):
        _png(tmp_path / f"{name}.png", _image())
        _png(tmp_path / f"{name}_mask.png", _mask())
    ds = load_folder(tmp_path, class_names=["background", "cell"], progress=False)
    assert ds.case_ids == ("cell_01", "cell_02") and ds.class_names == ("background", "cell")
    assert ds[1].mask.sum() == 12


def test_per_case_folders_with_one_mask_per_object(tmp_path):
    for case in ("x1", "x2"):
        _png(tmp_path / case / "images" / f"{case}.png", _image(rgb=True))
        for i, (r, c) in enumerate([(0, 0), (4, 5)]):
            m = np.zeros((8, 10), np.uint8)
            m[r:r + 3, c:c + 3] = 255
            _png(tmp_path / case / "masks" / f"n{i}.png", m)
    ds = load_folder(tmp_path, progress=False)
    s = ds["x2"]
    assert s.instances.max() == 2 and s.mask.max() == 1 and s.meta["n_instances"] == 2


def test_nifti_pairs_and_nnunet_channels(tmp_path):
    vol = RNG.normal(1000, 100, size=(6, 7, 5)).astype(np.float32)  # NIfTI (i, j, k)
    lab = np.zeros((6, 7, 5), np.uint8)
    lab[1:3, 2:4, 1:3] = 2
    _nifti(tmp_path / "imagesTr" / "p1_0000.nii.gz", vol, (0.8, 0.8, 3.0))
    _nifti(tmp_path / "imagesTr" / "p1_0001.nii.gz", vol * 2, (0.8, 0.8, 3.0))
    _nifti(tmp_path / "labelsTr" / "p1.nii.gz", lab, (0.8, 0.8, 3.0))
    ds = load_folder(tmp_path, progress=False)
    s = ds["p1"]
    assert ds.spatial_dims == 3 and ds.normalize == "zscore"
    assert s.image.shape == (2, 5, 7, 6) and s.mask.shape == (5, 7, 6)
    assert s.spacing == (3.0, 0.8, 0.8) and s.meta["affine"].shape == (4, 4)
    assert abs(float(s.image[1].mean())) < 1e-4  # each channel normalised on its own
    with pytest.raises(DataFormatError, match="holds label 2, but the dataset has only 2 classes"):
        load_folder(tmp_path, class_names=["background", "organ"], progress=False)["p1"]


def test_tiff_stacks_are_3d(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "images" / "s.tif", RNG.integers(0, 255, (4, 8, 10), dtype=np.uint8),
                     photometric="minisblack")
    tifffile.imwrite(tmp_path / "masks" / "s.tif", np.zeros((4, 8, 10), np.uint8), photometric="minisblack")
    s = load_folder(tmp_path, progress=False)[0]
    assert s.image.shape == (1, 4, 8, 10) and s.mask.shape == (4, 8, 10) and s.spacing is None


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_unpaired_files_are_listed(tmp_path):
    _png(tmp_path / "images" / "a.png", _image())
    _png(tmp_path / "images" / "lonely.png", _image())
    _png(tmp_path / "masks" / "a.png", _mask())
    _png(tmp_path / "masks" / "orphan_mask.png", _mask())
    with pytest.raises(DataFormatError) as err:
        load_folder(tmp_path)
    text = str(err.value)
    assert "1 images without a mask: lonely.png" in text
    assert "1 masks without an image: orphan_mask.png" in text
    assert "_mask, _label or _seg" in text


def test_flat_folder_unpaired(tmp_path):
    _png(tmp_path / "a.png", _image())
    _png(tmp_path / "a_mask.png", _mask())
    _png(tmp_path / "b.png", _image())
    with pytest.raises(DataFormatError, match="1 images without a mask: b.png"):
        load_folder(tmp_path)


def test_shape_mismatch_names_both_files_and_shapes(tmp_path):
    _png(tmp_path / "images" / "a.png", _image(8, 10))
    _png(tmp_path / "masks" / "a.png", _mask(8, 9))
    with pytest.raises(DataFormatError, match=r"image .*a\.png has shape \(8, 10\) but its mask .*masks.a\.png has shape \(8, 9\)"):
        load_folder(tmp_path)


def test_spacing_mismatch(tmp_path):
    _nifti(tmp_path / "images" / "v.nii.gz", np.zeros((4, 5, 6), np.float32), (1.0, 1.0, 1.0))
    _nifti(tmp_path / "labels" / "v.nii.gz", np.zeros((4, 5, 6), np.uint8), (1.0, 1.0, 2.0))
    with pytest.raises(DataFormatError, match=r"voxel spacing \(1.0, 1.0, 1.0\) mm but its mask .* has \(2.0, 1.0, 1.0\) mm"):
        load_folder(tmp_path)


def test_unreadable_file(tmp_path):
    _png(tmp_path / "images" / "a.png", _image())
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataFormatError, match=r"cannot read .*masks.a\.png"):
        load_folder(tmp_path)


def test_mixed_2d_and_3d(tmp_path):
    _png(tmp_path / "images" / "a.png", _image())
    _png(tmp_path / "masks" / "a.png", _mask())
    _nifti(tmp_path / "images" / "v.nii.gz", np.zeros((4, 5, 6), np.float32))
    _nifti(tmp_path / "masks" / "v.nii.gz", np.zeros((4, 5, 6), np.uint8))
    with pytest.raises(DataFormatError, match="mixes 2D and 3D"):
        load_folder(tmp_path)


def test_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_folder(tmp_path / "nope")
    with pytest.raises(TypeError, match="path must be a folder path"):
        load_folder(5)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no image or mask files.*Accepted layouts"):
        load_folder(empty)
    only_images = tmp_path / "only_images"
    _png(only_images / "images" / "a.png", _image())
    with pytest.raises(DataFormatError, match="has images/ but none of masks/, labels/, labelsTr/"):
        load_folder(only_images)
    dup = tmp_path / "dup"
    _png(dup / "images" / "a.png", _image())
    tifffile.imwrite(dup / "images" / "a.tif", _image())
    _png(dup / "masks" / "a.png", _mask())
    with pytest.raises(DataFormatError, match="same name.*a: a.png, a.tif"):
        load_folder(dup)
    cases = tmp_path / "cases"
    _png(cases / "x" / "images" / "x.png", _image())
    (cases / "x" / "masks").mkdir()
    with pytest.raises(DataFormatError, match=r"x \(no mask files in masks/\)"):
        load_folder(cases)
    with pytest.raises(ValueError, match="channels must be None"):
        load_folder(tmp_path / "dup", channels=4)


def test_colour_mask_is_refused_when_read(tmp_path):
    _png(tmp_path / "images" / "a.png", _image())
    colour = np.zeros((8, 10, 3), np.uint8)
    colour[1, 1] = (255, 0, 0)
    _png(tmp_path / "masks" / "a.png", colour)
    ds = load_folder(tmp_path, progress=False)
    with pytest.raises(DataFormatError, match="colour mask"):
        ds[0]
