"""The loaders on the real dataset copies (used as a read-only cache), and on partial copies."""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pytest

from medseg_course.data.datasets import Sample, SegmentationDataset, load_dataset
from medseg_course.data.errors import ChecksumError, DatasetNotFoundError
from medseg_course.data.registry import dataset_info


@pytest.fixture(scope="module")
def msd_all(shared_datasets):
    return load_dataset("msd-hippocampus", "all", root=shared_datasets, progress=False)


@pytest.fixture(scope="module")
def dsb_all(shared_datasets):
    return load_dataset("dsb2018", "all", root=shared_datasets, progress=False)


# --------------------------------------------------------------------------------------------
# MSD Hippocampus
# --------------------------------------------------------------------------------------------


def test_msd_samples(msd_all):
    info = dataset_info("msd-hippocampus")
    assert len(msd_all) > 0 and not set(msd_all.case_ids) & set(msd_all.missing)
    assert set(msd_all.case_ids) | set(msd_all.missing) == set(info.case_ids)
    assert msd_all.class_names == ("background", "anterior", "posterior") and msd_all.spatial_dims == 3
    for s in msd_all[:: max(1, len(msd_all) // 12)]:
        assert isinstance(s, Sample)
        assert s.image.dtype == np.float32 and s.image.ndim == 4 and s.image.shape[0] == 1
        assert s.mask.dtype == np.int64 and s.mask.shape == s.image.shape[1:]
        assert s.mask.shape == tuple(info.cases[s.case_id]["shape"])  # (D, H, W) as documented
        assert set(np.unique(s.mask)) == {0, 1, 2}
        assert s.spacing == (1.0, 1.0, 1.0)
        assert abs(float(s.image.mean())) < 1e-4 and abs(float(s.image.std()) - 1) < 1e-3


def test_msd_raw_intensities_and_axis_order(msd_all):
    case = msd_all.case_ids[-1]
    raw = load_dataset("msd-hippocampus", "all", root=msd_all.root.parent, normalize=False,
                       verify=False, progress=False)[case]
    img = nib.load(raw.meta["image_path"])
    stored = np.asanyarray(img.dataobj)
    assert np.array_equal(raw.image[0], stored.transpose(2, 1, 0).astype(np.float32))
    assert raw.meta["dtype"] == str(stored.dtype)
    assert np.allclose(raw.meta["affine"] @ [2, 3, 4, 1], img.affine @ [4, 3, 2, 1])


def test_msd_float32_label_files_load_as_integers(msd_all):
    for case in ("hippocampus_003", "hippocampus_243"):
        if case in msd_all:
            s = msd_all[case]
            assert s.mask.dtype == np.int64 and set(np.unique(s.mask)) == {0, 1, 2}


def test_splits_are_disjoint_subsets_of_the_fixed_split(shared_datasets):
    info = dataset_info("msd-hippocampus")
    parts = {s: load_dataset("msd-hippocampus", s, root=shared_datasets, progress=False)
             for s in ("train", "val", "test")}
    ids = {s: set(ds.case_ids) for s, ds in parts.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    for s, ds in parts.items():
        assert ids[s] <= set(info.splits[s]) and ds.split == s
        assert set(ds.missing) == set(info.splits[s]) - ids[s]
    default = load_dataset("msd-hippocampus", root=shared_datasets, progress=False)
    assert default.split == "train" and default.case_ids == parts["train"].case_ids


def test_partial_copy_gives_a_subset_of_the_same_split(copy_cases, shared_cases):
    info = dataset_info("msd-hippocampus")
    chosen = [shared_cases("msd-hippocampus", s)[0] for s in ("train", "val")]
    chosen += shared_cases("msd-hippocampus", "test")[:2]
    root = copy_cases("msd-hippocampus", chosen)
    for split, expected in (("train", chosen[:1]), ("val", chosen[1:2]), ("test", sorted(chosen[2:]))):
        ds = load_dataset("msd-hippocampus", split, root=root, progress=False)
        assert list(ds.case_ids) == expected
        assert len(ds.missing) == len(info.splits[split]) - len(expected)
    assert len(load_dataset("msd-hippocampus", "all", root=root, progress=False)) == 4


def test_copy_without_the_requested_split(copy_cases, shared_cases):
    root = copy_cases("msd-hippocampus", shared_cases("msd-hippocampus", "train")[:1])
    with pytest.raises(DatasetNotFoundError, match=r"none of the 39 of split 'test'.*download_dataset"):
        load_dataset("msd-hippocampus", "test", root=root)


def test_corrupt_file_is_named_with_the_fix(copy_cases, shared_cases):
    cases = shared_cases("msd-hippocampus", "train")[:2]
    root = copy_cases("msd-hippocampus", cases)
    label = root / "msd-hippocampus" / "labels" / f"{cases[1]}.nii.gz"
    data = bytearray(label.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, same size
    label.write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as err:
        load_dataset("msd-hippocampus", "train", root=root, progress=False)
    text = str(err.value)
    assert str(label) in text and "sha256" in text
    assert "Delete these files" in text and "download_dataset('msd-hippocampus')" in text
    image = root / "msd-hippocampus" / "images" / f"{cases[0]}.nii.gz"
    image.write_bytes(image.read_bytes()[:1000])  # truncated
    with pytest.raises(ChecksumError, match=r"1000 bytes instead of \d+ \(truncated or damaged\)"):
        load_dataset("msd-hippocampus", "train", root=root, progress=False)
    # without verification the damage surfaces only when the file is read
    ds = load_dataset("msd-hippocampus", "train", root=root, verify=False, progress=False)
    with pytest.raises(Exception, match="cannot read"):
        ds[cases[0]]


def test_incomplete_case_is_left_out_with_a_warning(copy_cases, shared_cases):
    cases = shared_cases("msd-hippocampus", "train")[:2]
    root = copy_cases("msd-hippocampus", cases)
    (root / "msd-hippocampus" / "labels" / f"{cases[1]}.nii.gz").unlink()
    with pytest.warns(UserWarning, match=r"1 case\(s\) .* have only some of their files"):
        ds = load_dataset("msd-hippocampus", "train", root=root, progress=False)
    assert ds.case_ids == (cases[0],)


def test_environment_variable_selects_the_cache(shared_datasets, monkeypatch, capsys):
    monkeypatch.setenv("MEDSEG_DATA_DIR", str(shared_datasets))
    ds = load_dataset("hippocampus", "val", progress=False)
    assert ds.root == shared_datasets / "msd-hippocampus"
    ds[0]
    assert capsys.readouterr().out == ""  # library code prints nothing


# --------------------------------------------------------------------------------------------
# Indexing, caching, arguments
# --------------------------------------------------------------------------------------------


def test_indexing_and_cache(msd_all):
    first = msd_all[0]
    assert msd_all[first.case_id].case_id == first.case_id
    assert msd_all[-1].case_id == msd_all.case_ids[-1]
    head = msd_all[:3]
    assert isinstance(head, SegmentationDataset) and len(head) == 3 and head.case_ids == msd_all.case_ids[:3]
    assert msd_all.subset([msd_all.case_ids[2]]).case_ids == (msd_all.case_ids[2],)
    first.image[...] = 42  # samples are fresh copies: the dataset is not changed
    first.mask[...] = 7
    again = msd_all[0]
    assert again.image.max() < 42 and again.mask.max() == 2
    with pytest.raises(KeyError, match="no case 'nope'"):
        msd_all["nope"]
    with pytest.raises(IndexError, match="out of range"):
        msd_all[len(msd_all)]
    with pytest.raises(TypeError, match="indexed by an int"):
        msd_all[1.5]
    assert "SegmentationDataset 'msd-hippocampus' split='all'" in repr(msd_all)
    assert "not on disk" in repr(msd_all)


def test_preload_and_clear_cache(shared_datasets):
    ds = load_dataset("msd-hippocampus", "test", root=shared_datasets, preload=True, progress=False)
    assert len(ds._store) == len(ds)
    ds.clear_cache()
    assert len(ds._store) == 0
    lazy = load_dataset("msd-hippocampus", "test", root=shared_datasets, cache=False, progress=False)
    lazy[0]
    assert len(lazy._store) == 0
    with pytest.raises(ValueError, match="preload needs cache=True"):
        lazy.preload()


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"split": "training"}, ValueError, "split must be one of"),
        ({"normalize": "minmax"}, ValueError, "normalize must be True"),
        ({"channels": 2}, ValueError, "channels must be None"),
        ({"verify": "yes"}, TypeError, "verify must be True or False"),
    ],
)
def test_argument_errors(shared_datasets, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        load_dataset("msd-hippocampus", root=shared_datasets, **kwargs)


# --------------------------------------------------------------------------------------------
# DSB2018 and the StarDist sample
# --------------------------------------------------------------------------------------------


def test_dsb_samples(dsb_all):
    info = dataset_info("dsb2018")
    assert dsb_all.class_names == ("background", "nucleus") and dsb_all.spatial_dims == 2
    seen = set()
    for case, category in zip(dsb_all.case_ids, dsb_all.categories):
        if category in seen:
            continue
        seen.add(category)
        s = dsb_all[case]
        assert s.category == category == info.category(case)
        assert s.image.shape[0] == (3 if category.startswith("brightfield") else 1)
        assert s.image.shape[1:] == tuple(info.cases[case]["shape"]) == s.mask.shape
        assert s.image.dtype == np.float32 and 0 <= s.image.min() and s.image.max() <= 1
        assert s.mask.dtype == np.int64 and set(np.unique(s.mask)) == {0, 1}
        assert s.instances.max() == info.cases[case]["n_nuclei"] == s.meta["n_instances"]
        assert np.array_equal(s.mask, (s.instances > 0).astype(np.int64))
        assert s.spacing is None
    assert len(seen) == 4


def test_dsb_channels_and_raw(shared_datasets):
    info = dataset_info("dsb2018")
    gray = load_dataset("dsb2018", "all", root=shared_datasets, channels=1, normalize=False, progress=False)
    colour = next(c for c, cat in zip(gray.case_ids, gray.categories) if cat.startswith("brightfield"))
    s = gray[colour]
    assert s.image.shape[0] == 1 and s.image.max() <= 255 and s.meta["dtype"] == "uint8"
    rgb = load_dataset("dsb2018", "all", root=shared_datasets, channels=3, progress=False)
    assert all(rgb[c].image.shape[0] == 3 for c in rgb.case_ids[:3])
    assert set(gray.categories) <= set(info.category(c) for c in info.case_ids)


def test_dsb_split_is_stratified_on_disk(shared_datasets):
    info = dataset_info("dsb2018")
    val = load_dataset("dsb2018", "val", root=shared_datasets, progress=False)
    assert set(val.case_ids) <= set(info.splits["val"])
    assert {info.category(c) for c in info.splits["val"]} == set(info.category(c) for c in info.case_ids)


def test_dsb_missing_mask_file_is_detected(copy_cases, shared_cases):
    info = dataset_info("dsb2018")
    case = shared_cases("dsb2018", "train")[0]
    root = copy_cases("dsb2018", [case])
    masks = root / "dsb2018-nuclei" / "stage1_train" / case / "masks"
    sorted(masks.iterdir())[0].unlink()
    n = info.cases[case]["n_nuclei"]
    with pytest.raises(ChecksumError, match=rf"{n - 1} files instead of {n}"):
        load_dataset("dsb2018", "train", root=root, progress=False)


def test_stardist_sample(shared_datasets):
    ds = load_dataset("stardist-sample", root=shared_datasets, progress=False)
    assert ds.split == "all" and ds.case_ids == ("img2d",)
    s = ds[0]
    assert s.image.shape == (1, 512, 512) and s.mask.shape == (512, 512)
    assert s.instances.max() == 125 and len(np.unique(s.instances)) == 126  # relabelled 1..125
    assert abs(s.mask.mean() - 0.199) < 0.005  # nuclei cover 19.9 % of the pixels
    with pytest.raises(ValueError, match="split must be 'all' for 'stardist-sample'"):
        load_dataset("stardist-sample", "train", root=shared_datasets)


def test_no_warnings_on_the_reference_copies(shared_datasets):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("msd-hippocampus", "dsb2018", "stardist-sample"):
            load_dataset(name, "all", root=shared_datasets, progress=False)


def test_robust_zscore_clips_extreme_voxels():
    from medseg_course.data.datasets import _robust_zscore

    rng = np.random.default_rng(0)
    volume = rng.normal(1000, 50, size=(20, 20, 20))
    volume[0, 0, :3] = 1e7  # a few hot voxels, as in scans with a bright artefact
    z = _robust_zscore(volume)
    assert z.dtype == np.float32 and abs(float(z.mean())) < 1e-4 and abs(float(z.std()) - 1) < 1e-3
    assert float(z.max()) < 4  # without clipping the hot voxels would sit near +45 std
