"""File readers: axis order, spacing, channels, label checks."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import tifffile
from PIL import Image

from medseg_course.data.errors import DataFormatError
from medseg_course.data.io import (
    probe_shape,
    read_image,
    read_instance_masks,
    read_mask,
    read_volume,
    split_suffix,
)


def _nifti(path, data, zooms=(1.0, 1.0, 1.0), affine=None):
    if affine is None:
        affine = np.diag([*zooms, 1.0])
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(zooms + ((1.0,) if data.ndim == 4 else ()))
    nib.save(img, path)
    return path


@pytest.mark.parametrize(
    "name, expected",
    [("a.nii.gz", ("a", ".nii.gz")), ("b.NII", ("b", ".nii")), ("c.d.png", ("c.d", ".png")),
     ("x.tiff", ("x", ".tiff")), ("noext", ("noext", "")), ("a.jpg", ("a", ".jpg"))],
)
def test_split_suffix(name, expected):
    assert split_suffix(name) == expected


def test_read_volume_axis_order_spacing_affine(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)  # NIfTI (i, j, k)
    affine = np.array([[0.5, 0, 0, -10], [0, 0.8, 0, 20], [0, 0, 2.0, 5], [0, 0, 0, 1]])
    vol = read_volume(_nifti(tmp_path / "v.nii.gz", data, (0.5, 0.8, 2.0), affine))
    assert vol.array.shape == (6, 5, 4) and vol.array.dtype == np.int16
    assert vol.spacing == (2.0, 0.8, 0.5)
    i, j, k = 3, 2, 1
    assert vol.array[k, j, i] == data[i, j, k]
    world = affine @ [i, j, k, 1]
    assert np.allclose(vol.affine @ [k, j, i, 1], world)
    assert vol.array.flags.c_contiguous


def test_read_volume_4d_channels_and_errors(tmp_path):
    data = np.zeros((4, 5, 6, 2), np.float32)
    data[..., 1] = 1
    vol = read_volume(_nifti(tmp_path / "c.nii.gz", data))
    assert vol.array.shape == (2, 6, 5, 4) and vol.array[1].min() == 1
    assert read_image(tmp_path / "c.nii.gz").shape == (2, 6, 5, 4)
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti file")
    with pytest.raises(DataFormatError, match=r"cannot read .*bad\.nii\.gz as NIfTI"):
        read_volume(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_volume(tmp_path / "missing.nii.gz")
    with pytest.raises(TypeError, match="path must be a file path"):
        read_volume(3)


def test_read_image_channels(tmp_path):
    rgba = np.zeros((6, 7, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 9, 255
    Image.fromarray(rgba).save(tmp_path / "gray_rgba.png")
    assert read_image(tmp_path / "gray_rgba.png").shape == (1, 6, 7)
    colour = rgba.copy()
    colour[..., 0] = 200
    Image.fromarray(colour).save(tmp_path / "colour.png")
    img = read_image(tmp_path / "colour.png")
    assert img.shape == (3, 6, 7) and img[0, 0, 0] == 200 and img[1, 0, 0] == 9
    u16 = (np.arange(42, dtype=np.uint16).reshape(6, 7) * 1000)
    Image.fromarray(u16).save(tmp_path / "u16.png")
    assert read_image(tmp_path / "u16.png").dtype == np.uint16
    assert read_image(tmp_path / "u16.png").max() == 41000
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((5, 6, 7), np.uint16))
    assert read_image(tmp_path / "stack.tif").shape == (1, 5, 6, 7)
    tifffile.imwrite(tmp_path / "rgb.tif", colour[..., :3])
    assert read_image(tmp_path / "rgb.tif").shape == (3, 6, 7)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(DataFormatError, match=r"cannot read .*broken\.png"):
        read_image(tmp_path / "broken.png")


def test_read_mask_values(tmp_path):
    m = np.zeros((5, 5), np.uint8)
    m[1:3, 1:3] = 255
    Image.fromarray(m).save(tmp_path / "binary.png")
    assert set(np.unique(read_mask(tmp_path / "binary.png"))) == {0, 1}
    assert set(np.unique(read_mask(tmp_path / "binary.png", binary_255=False))) == {0, 255}
    m[0, 0] = 2  # not purely 0/255: labels are kept
    Image.fromarray(m).save(tmp_path / "labels.png")
    assert set(np.unique(read_mask(tmp_path / "labels.png"))) == {0, 2, 255}

    lab = np.zeros((3, 4, 5), np.float32)
    lab[0, 0, 0], lab[1, 1, 1] = 1, 2
    out = read_mask(_nifti(tmp_path / "float_labels.nii.gz", lab))
    assert out.dtype == np.uint8 and out.max() == 2  # like hippocampus_003's float32 label
    lab[2, 2, 2] = 0.5
    with pytest.raises(DataFormatError, match="non-integer values.*nearest-neighbour"):
        read_mask(_nifti(tmp_path / "interp.nii.gz", lab))
    neg = np.zeros((3, 4, 5), np.int16)
    neg[0, 0, 0] = -1
    with pytest.raises(DataFormatError, match="negative labels"):
        read_mask(_nifti(tmp_path / "neg.nii.gz", neg))

    colour = np.zeros((5, 5, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    Image.fromarray(colour).save(tmp_path / "colour_mask.png")
    with pytest.raises(DataFormatError, match="colour mask"):
        read_mask(tmp_path / "colour_mask.png")
    gray3 = np.repeat(m[..., None], 3, axis=2)
    Image.fromarray(gray3).save(tmp_path / "gray3.png")
    assert read_mask(tmp_path / "gray3.png").shape == (5, 5)
    palette = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), mode="L").convert("P")
    palette.save(tmp_path / "palette.png")
    assert read_mask(tmp_path / "palette.png").max() >= 1


def test_read_instance_masks(tmp_path):
    for i, (r, c) in enumerate([(0, 0), (2, 2), (2, 3)]):
        m = np.zeros((6, 6), np.uint8)
        m[r:r + 2, c:c + 2] = 255
        Image.fromarray(m).save(tmp_path / f"m{i}.png")
    (tmp_path / "._m0.png").write_bytes(b"macOS junk")
    inst, n, overlap = read_instance_masks(tmp_path)
    assert n == 3 and overlap == 2 and inst.max() == 3
    assert inst[0, 0] == 1 and inst[2, 2] == 2 and inst[2, 3] == 3  # the later file wins
    Image.fromarray(np.zeros((5, 6), np.uint8)).save(tmp_path / "m9.png")
    with pytest.raises(DataFormatError, match=r"mask m9\.png has shape \(5, 6\) but m0\.png has shape \(6, 6\)"):
        read_instance_masks(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no mask files"):
        read_instance_masks(empty)


def test_probe_shape(tmp_path):
    Image.fromarray(np.zeros((6, 7, 3), np.uint8)).save(tmp_path / "a.png")
    assert probe_shape(tmp_path / "a.png") == ((6, 7), None)
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((3, 6, 7), np.uint8), photometric="minisblack")
    assert probe_shape(tmp_path / "s.tif") == ((3, 6, 7), None)
    _nifti(tmp_path / "v.nii.gz", np.zeros((4, 5, 6), np.uint8), (0.5, 0.8, 2.0))
    assert probe_shape(tmp_path / "v.nii.gz") == ((6, 5, 4), (2.0, 0.8, 0.5))
