"""Tests of medseg_course.recipes.folder: train_on_folder and Segmenter on real-format folders."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from medseg_course.data import DataFormatError, load_folder, read_image, read_mask, read_volume
from medseg_course.data.synthetic import make_organ3d
from medseg_course.models import UNet, UNetPlusPlus
from medseg_course.recipes import folder as F
from medseg_course.recipes.folder import Segmenter, train_on_folder
from medseg_course.train import save_checkpoint

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
TINY_2D = {"features": (4, 8, 16)}
TINY_3D = {"features": (4, 8)}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions on a shared machine: one thread is several times faster than two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# folders
# --------------------------------------------------------------------------------------------


def _crop_with_nuclei(mask: np.ndarray, h: int, w: int) -> tuple[slice, slice]:
    """The h x w window (on a coarse grid) holding the most foreground."""
    best, where = -1, (0, 0)
    for y in range(0, mask.shape[0] - h + 1, 16):
        for x in range(0, mask.shape[1] - w + 1, 16):
            n = int(mask[y:y + h, x:x + w].sum())
            if n > best:
                best, where = n, (y, x)
    return slice(where[0], where[0] + h), slice(where[1], where[1] + w)


@pytest.fixture(scope="module")
def dsb_folder(tmp_path_factory) -> Path:
    """images/ + masks/ with six DSB2018 crops as PNG: five grey 64 x 64, one colour 96 x 80."""
    if not (SHARED / "dsb2018-nuclei").is_dir():
        pytest.skip(f"needs the dataset copies in {SHARED}")
    from medseg_course.data import load_dataset

    ds = load_dataset("dsb2018", "train", root=SHARED, normalize=False, verify=False, progress=False)
    grey, colour = [], []
    for case, category in zip(ds.case_ids, ds.categories):  # read only the cases used
        kind = colour if category.startswith("brightfield") else grey
        if len(kind) < (1 if kind is colour else 5):
            kind.append(ds[case])
        if len(grey) == 5 and len(colour) == 1:
            break
    assert [s.image.shape[0] for s in grey + colour] == [1] * 5 + [3]
    root = tmp_path_factory.mktemp("dsb_pairs")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for s, (h, w) in zip(grey + colour, [(64, 64)] * 5 + [(96, 80)]):
        ys, xs = _crop_with_nuclei(s.mask > 0, h, w)
        image = s.image[:, ys, xs].astype(np.uint8)  # stored 8-bit values
        pixels = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
        Image.fromarray(pixels).save(root / "images" / f"{s.case_id[:10]}.png")
        mask = ((s.mask[ys, xs] > 0) * 255).astype(np.uint8)
        Image.fromarray(mask).save(root / "masks" / f"{s.case_id[:10]}_mask.png")
    return root


def _write_nifti(path: Path, array: np.ndarray, spacing) -> None:
    affine = np.diag([*spacing[::-1], 1.0])  # array (D, H, W) = NIfTI (k, j, i)
    nib.save(nib.Nifti1Image(np.ascontiguousarray(array.transpose(2, 1, 0)), affine), path)


@pytest.fixture(scope="module")
def nifti_folder(tmp_path_factory) -> Path:
    """imagesTr/ + labelsTr/ with three synthetic 16 x 20 x 16 volumes (labels 0, 1, 2)."""
    root = tmp_path_factory.mktemp("nifti_pairs")
    (root / "imagesTr").mkdir()
    (root / "labelsTr").mkdir()
    spacing = (2.5, 2.5, 2.5)
    for i in range(3):
        s = make_organ3d((16, 20, 16), spacing=spacing, seed=i)
        _write_nifti(root / "imagesTr" / f"organ_{i:03d}.nii.gz", (s.image * 1000).astype(np.int16), spacing)
        _write_nifti(root / "labelsTr" / f"organ_{i:03d}.nii.gz", s.mask.astype(np.uint8), spacing)
    return root


@pytest.fixture(scope="module")
def seg2d(dsb_folder) -> Segmenter:
    return train_on_folder(dsb_folder, epochs=2, model_kwargs=TINY_2D, val_fraction=0.34, device="cpu",
                           progress=False)


def _binary_pairs(root: Path, n: int = 3, size: int = 32, empty: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = np.zeros((size, size), np.uint8)
        if not empty:
            mask[8:20, 10:24] = 255
        image = (rng.random((size, size)) * 60 + (mask > 0) * 150).astype(np.uint8)
        Image.fromarray(image).save(root / f"im{i}.png")
        Image.fromarray(mask).save(root / f"im{i}_mask.png")
    return root


# --------------------------------------------------------------------------------------------
# 2D
# --------------------------------------------------------------------------------------------


def test_2d_training_infers_the_task(seg2d, dsb_folder):
    assert (seg2d.spatial_dims, seg2d.n_classes, seg2d.channels) == (2, 2, 3)  # grey + colour: 3 channels
    assert seg2d.normalize == "percentile" and seg2d.patch_size == (64, 64)
    assert isinstance(seg2d.model, UNet) and seg2d.model.init_kwargs["out_channels"] == 2
    h = seg2d.history
    assert h["epoch"] == [1.0, 2.0] and len(h["val_dice"]) == 2 and np.isfinite(h["train_loss"]).all()
    train, val = seg2d.preprocessing["train_cases"], seg2d.preprocessing["val_cases"]
    assert len(val) == 2 and not set(train) & set(val)
    assert sorted(train + val) == sorted(load_folder(dsb_folder, progress=False).case_ids)
    assert (train, val) == tuple(F._split(sorted(train + val), 0.34, 0))  # seeded
    assert F._split(sorted(train + val), 0.34, 1) != (train, val)


def test_2d_predict_path_array_and_preprocessed_agree(seg2d, dsb_folder):
    path = next(p for p in sorted((dsb_folder / "images").iterdir()) if read_image(p).shape[0] == 3)
    labels = seg2d.predict(path)
    assert labels.shape == (96, 80) and labels.dtype == np.int64 and set(np.unique(labels)) <= {0, 1}
    assert np.array_equal(seg2d.predict(read_image(path)), labels)
    sample = load_folder(dsb_folder, channels=3, progress=False)[path.stem]  # what training saw
    assert np.allclose(seg2d.preprocess(read_image(path)), sample.image, atol=1e-6)
    assert np.array_equal(seg2d.predict(sample.image, preprocessed=True), labels)
    probs = seg2d.predict(path, output="probabilities")
    assert probs.shape == (2, 96, 80) and probs.dtype == np.float32
    assert np.allclose(probs.sum(0), 1, atol=1e-5) and np.array_equal(probs.argmax(0), labels)
    grey = next(p for p in sorted((dsb_folder / "images").iterdir()) if read_image(p).shape[0] == 1)
    assert seg2d.predict(grey).shape == (64, 64)  # grey input repeated into 3 channels


def test_2d_sliding_window_only_for_images_larger_than_the_patch(seg2d, dsb_folder, monkeypatch):
    calls = []
    real = F.predict
    monkeypatch.setattr(F, "predict", lambda *a, **k: calls.append(k["patch_size"]) or real(*a, **k))
    seg2d.predict(np.zeros((1, 96, 80), np.uint8))
    seg2d.predict(np.zeros((1, 64, 64), np.uint8))
    assert calls == [(64, 64), None]


def test_2d_predict_folder_writes_label_pngs(seg2d, dsb_folder, tmp_path):
    flat = tmp_path / "flat"  # images with their masks beside them: the masks are skipped
    flat.mkdir()
    for p in sorted((dsb_folder / "images").iterdir())[:2]:
        (flat / p.name).write_bytes(p.read_bytes())
        (flat / f"{p.stem}_mask.png").write_bytes((dsb_folder / "masks" / f"{p.stem}_mask.png").read_bytes())
    out = tmp_path / "out"
    written = seg2d.predict_folder(flat, out, progress=False)
    assert [p.name for p in written] == sorted(p.name for p in flat.iterdir() if "_mask" not in p.name)
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in written]  # no temporary files left
    for p in written:
        stored = np.asarray(Image.open(p))
        assert stored.dtype == np.uint8
        assert np.array_equal(read_mask(p), seg2d.predict(flat / p.name))
    with pytest.raises(ValueError, match="out_dir must differ"):
        seg2d.predict_folder(flat, flat, progress=False)


def test_save_load_round_trip_gives_identical_predictions(seg2d, dsb_folder, tmp_path):
    path = seg2d.save(tmp_path / "seg.pt")
    loaded = Segmenter.load(path, device="cpu")
    assert loaded.preprocessing == {k: list(v) if isinstance(v, tuple) else v for k, v in seg2d.preprocessing.items()}
    assert loaded.patch_size == seg2d.patch_size and loaded.history["val_dice"] == seg2d.history["val_dice"]
    image = next(iter(sorted((dsb_folder / "images").iterdir())))
    a = seg2d.predict(image, output="probabilities")
    b = loaded.predict(image, output="probabilities")
    assert np.array_equal(a, b)
    plain = save_checkpoint(tmp_path / "plain.pt", seg2d.model)
    with pytest.raises(ValueError, match="not a Segmenter"):
        Segmenter.load(plain)


def test_same_seed_same_model(tmp_path):
    root = _binary_pairs(tmp_path / "pairs", n=4)
    kw = dict(epochs=2, model_kwargs={"features": (4, 8)}, device="cpu", progress=False)
    a, b = train_on_folder(root, **kw), train_on_folder(root, **kw)
    assert a.history["train_loss"] == b.history["train_loss"]
    assert np.array_equal(a.predict(root / "im0.png", output="probabilities"),
                          b.predict(root / "im0.png", output="probabilities"))
    assert a.channels == 1 and a.patch_size == (32, 32)


def test_any_course_model_and_deep_supervision(tmp_path):
    root = _binary_pairs(tmp_path / "pairs", n=3)
    net = UNetPlusPlus(1, 2, features=(2, 4, 8, 8, 8), deep_supervision=True)
    seg = train_on_folder(root, model=net, epochs=1, device="cpu", progress=False)
    assert seg.model is net and seg.predict(root / "im1.png").shape == (32, 32)
    seg = train_on_folder(root, model="unet++", model_kwargs={"features": (2, 4, 8, 8, 8)}, epochs=1,
                          device="cpu", progress=False)
    assert type(seg.model).__name__ == "UNetPlusPlus"
    assert Segmenter.load(seg.save(tmp_path / "pp.pt")).predict(root / "im1.png").shape == (32, 32)


def test_minutes_budget_sets_the_epochs(tmp_path):
    root = _binary_pairs(tmp_path / "pairs", n=3)
    seg = train_on_folder(root, minutes=0.001, epochs=3, model_kwargs={"features": (4, 8)}, device="cpu",
                          progress=False)
    assert seg.config.epochs == 1 and len(seg.history["epoch"]) == 1  # 0.06 s allows one epoch at most
    seg = train_on_folder(root, minutes=60, epochs=2, model_kwargs={"features": (4, 8)}, device="cpu",
                          progress=False)
    assert seg.config.epochs == 2  # the smaller of the two


# --------------------------------------------------------------------------------------------
# 3D
# --------------------------------------------------------------------------------------------


def test_3d_nifti_training_predict_and_folder(nifti_folder, tmp_path):
    seg = train_on_folder(nifti_folder, epochs=1, model_kwargs=TINY_3D, device="cpu", progress=False)
    assert (seg.spatial_dims, seg.n_classes, seg.channels, seg.normalize) == (3, 3, 1, "zscore")
    assert type(seg.model).__name__ == "UNet3D" and seg.patch_size == (16, 20, 16)
    src = nifti_folder / "imagesTr" / "organ_000.nii.gz"
    labels = seg.predict(src)
    assert labels.shape == (16, 20, 16) and labels.dtype == np.int64 and labels.max() <= 2
    written = seg.predict_folder(nifti_folder / "imagesTr", tmp_path / "pred", progress=False)
    assert [p.name for p in written] == [f"organ_{i:03d}.nii.gz" for i in range(3)]
    vol, ref = read_volume(written[0]), read_volume(src)
    assert vol.array.dtype == np.uint8 and np.array_equal(vol.array, labels)
    assert np.allclose(vol.affine, ref.affine) and vol.spacing == ref.spacing
    with pytest.raises(ValueError, match="3D segmenter"):
        seg.predict(np.zeros((4, 16, 16, 16, 1)))


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_error_empty_folder_and_no_pairs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no image or mask files"):
        train_on_folder(tmp_path / "empty", epochs=1, progress=False)
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(lonely / "a.png")
    with pytest.raises(DataFormatError, match="no pair"):
        train_on_folder(lonely, epochs=1, progress=False)
    with pytest.raises(FileNotFoundError):
        train_on_folder(tmp_path / "nowhere", epochs=1, progress=False)


def test_error_mixed_2d_and_3d(tmp_path):
    root = _binary_pairs(tmp_path / "mixed", n=1)
    _write_nifti(root / "vol.nii.gz", np.zeros((8, 8, 8), np.int16), (1.0, 1.0, 1.0))
    _write_nifti(root / "vol_mask.nii.gz", np.ones((8, 8, 8), np.uint8), (1.0, 1.0, 1.0))
    with pytest.raises(DataFormatError, match="mixes 2D and 3D"):
        train_on_folder(root, epochs=1, progress=False)


def test_error_single_class(tmp_path):
    root = _binary_pairs(tmp_path / "empty_masks", n=2, empty=True)
    with pytest.raises(ValueError, match="single label 0.*at least two"):
        train_on_folder(root, epochs=1, progress=False)


def test_error_bad_models_and_settings(tmp_path):
    root = _binary_pairs(tmp_path / "pairs", n=2)
    with pytest.raises(ValueError, match=r"model must be one of \['unet', 'unet3d', 'unetpp', 'fcn'\]"):
        train_on_folder(root, model="resnet", epochs=1, progress=False)
    with pytest.raises(TypeError, match="model must be a name"):
        train_on_folder(root, model=UNet, epochs=1, progress=False)
    with pytest.raises(ValueError, match="unet3d' needs 3D data"):
        train_on_folder(root, model="unet3d", epochs=1, progress=False)
    with pytest.raises(ValueError, match="out_channels=2"):
        train_on_folder(root, model=UNet(1, 3, features=(4, 8)), epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="1 channel"):
        train_on_folder(root, model=UNet(3, 2, features=(4, 8)), epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="must not set 'out_channels'"):
        train_on_folder(root, model_kwargs={"out_channels": 2}, epochs=1, progress=False)
    for kw, msg in [({"epochs": 0}, "epochs must be a positive int"), ({"val_fraction": 1.0}, "val_fraction"),
                    ({"minutes": -1}, "minutes must be a positive number"), ({"patch_size": (8,)}, "patch_size")]:
        with pytest.raises(ValueError, match=msg):
            train_on_folder(root, **{"epochs": 1, **kw}, progress=False)
