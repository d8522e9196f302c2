"""The dataset manifests: content, packaging, and the fixed splits."""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

from medseg_course.data.registry import (
    DatasetInfo,
    _check_split,
    _manifest_dir,
    dataset_info,
    list_datasets,
    make_split,
)

NAMES = ("dsb2018", "msd-hippocampus", "stardist-sample")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
REPO = Path(__file__).resolve().parents[2]


def test_list_datasets():
    assert list_datasets() == NAMES


@pytest.mark.parametrize(
    "alias, name",
    [("hippocampus", "msd-hippocampus"), ("MSD-Hippocampus", "msd-hippocampus"),
     ("dsb2018-nuclei", "dsb2018"), ("stardist-dsb2018-sample", "stardist-sample"),
     (" dsb ", "dsb2018")],
)
def test_aliases(alias, name):
    assert dataset_info(alias).name == name


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"name must be one of 'dsb2018', 'msd-hippocampus'.*got 'brats'"):
        dataset_info("brats")
    with pytest.raises(TypeError, match="name must be a dataset name"):
        dataset_info(3)


def test_info_passthrough_and_text():
    info = dataset_info("msd-hippocampus")
    assert dataset_info(info) is info
    text = str(info)
    assert "CC-BY-SA-4.0" in text and "arXiv:1902.09063" in text and "train 182, val 39, test 39" in text


@pytest.mark.parametrize("name", NAMES)
def test_manifest_content(name):
    info = dataset_info(name)
    assert isinstance(info, DatasetInfo)
    assert info.source["url"].startswith("https://")
    assert info.source["format"] in ("tar", "zip")
    assert info.licence["id"] and info.citation and info.class_names[0] == "background"
    assert info.folder in {"msd-hippocampus", "dsb2018-nuclei", "stardist-dsb2018-sample"}
    for case in info.case_ids:
        files = info.files(case)
        assert files, case
        for rel, spec in files.items():
            assert SHA256.match(spec["sha256"]) and spec["size"] > 0, (case, rel)
            assert ".." not in Path(rel).parts and not Path(rel).is_absolute()
        for rel, spec in info.dirs(case).items():
            assert SHA256.match(spec["sha256_of_listing"]) and spec["count"] > 0


def test_published_archive_checksums():
    # The archive checksums are the publishers' own values (see data/README.md).
    assert dataset_info("msd-hippocampus").source["hash"] == "md5:9d24dba78a72977dbd1d2e110310f31b"
    assert dataset_info("stardist-sample").source["hash"] == (
        "sha256:2316c0feb7bd5621e7a277cb3868df475c338943c591925c420ee3622c42f023"
    )
    assert dataset_info("dsb2018").source["hash"] is None  # GitHub archives have none


def test_case_counts_match_the_provenance():
    msd, dsb = dataset_info("msd-hippocampus"), dataset_info("dsb2018")
    assert len(msd.case_ids) == 260
    assert sum(len(msd.files(c)) for c in msd.case_ids) == 520
    assert len(dsb.case_ids) == 180
    assert sum(dsb.dirs(c)[f"stage1_train/{c}/masks"]["count"] for c in dsb.case_ids) == 6897
    assert Counter(dsb.category(c) for c in dsb.case_ids) == {
        "fluorescence_gray_256x256": 120, "fluorescence_gray_360x360": 20,
        "fluorescence_gray_520x696": 15, "brightfield_stained_color_256x320": 25,
    }


@pytest.mark.parametrize("name", ["msd-hippocampus", "dsb2018"])
def test_splits_are_disjoint_and_cover_all(name):
    info = dataset_info(name)
    train, val, test = (set(info.splits[s]) for s in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert train | val | test == set(info.case_ids)
    for s in ("train", "val", "test", "all"):
        assert list(info.splits[s]) == sorted(info.splits[s])


@pytest.mark.parametrize("name", ["msd-hippocampus", "dsb2018"])
def test_stored_split_is_reproduced_by_make_split(name):
    info = dataset_info(name)
    method = info.split_method
    strata = {c: info.category(c) for c in info.case_ids} if method["stratify_by"] == "category" else None
    fractions = {k: v for k, v in method["fractions"].items() if k != "train"}
    again = make_split(info.case_ids, seed=method["seed"], fractions=fractions, strata=strata)
    assert again == {s: list(info.splits[s]) for s in ("train", "val", "test")}


def test_dsb_split_is_stratified():
    info = dataset_info("dsb2018")
    expected = {  # round(0.15 n) per split, per category
        "fluorescence_gray_256x256": (84, 18, 18), "fluorescence_gray_360x360": (14, 3, 3),
        "fluorescence_gray_520x696": (11, 2, 2), "brightfield_stained_color_256x320": (17, 4, 4),
    }
    for category, counts in expected.items():
        got = tuple(sum(info.category(c) == category for c in info.splits[s]) for s in ("train", "val", "test"))
        assert got == counts, category


def test_make_split_properties():
    ids = [f"c{i:03d}" for i in range(100)]
    parts = make_split(ids)
    assert [len(parts[s]) for s in ("train", "val", "test")] == [70, 15, 15]
    assert make_split(list(reversed(ids))) == parts  # order of input does not matter
    assert make_split(ids, seed="other") != parts
    assert make_split(ids, fractions={"val": 0.0, "test": 0.5})["val"] == []


def test_make_split_errors():
    with pytest.raises(ValueError, match="case_ids must be unique.*'a'"):
        make_split(["a", "a", "b"])
    with pytest.raises(TypeError, match="single string"):
        make_split("abc")
    with pytest.raises(ValueError, match="fractions must be"):
        make_split(["a"], fractions={"val": 0.8, "test": 0.5})
    with pytest.raises(ValueError, match="fractions must be"):
        make_split(["a"], fractions={"valid": 0.1})
    with pytest.raises(ValueError, match="strata must give a group.*'b'"):
        make_split(["a", "b"], strata={"a": "x"})


def test_check_split():
    msd, sample = dataset_info("msd-hippocampus"), dataset_info("stardist-sample")
    assert _check_split(msd, None) == "train"
    assert _check_split(sample, None) == "all"
    with pytest.raises(ValueError, match=r"split must be one of .*got 'training'"):
        _check_split(msd, "training")
    with pytest.raises(ValueError, match="split must be 'all' for 'stardist-sample'"):
        _check_split(sample, "train")
    with pytest.raises(TypeError, match="split must be one of"):
        _check_split(msd, 1)


def _glob_match(path: str, pattern: str) -> bool:
    """Glob semantics as setuptools applies them: '*' does not cross '/', '**' does."""
    parts, pats = path.split("/"), pattern.split("/")
    if "**" in pats:
        i = pats.index("**")
        head, tail = pats[:i], pats[i + 1:]
        return (len(parts) >= len(head) + len(tail)
                and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, head))
                and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts[len(parts) - len(tail):], tail)))
    return len(parts) == len(pats) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pats))


def test_manifests_are_package_data():
    """The manifests reach the package (symlink) and a built wheel (pyproject package-data)."""
    folder = _manifest_dir()
    assert {p.name for p in folder.glob("*.json")} == {f"{n}.json" for n in NAMES}
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["medseg_course"]
    for name in NAMES:
        path = f"data/manifests/{name}.json"
        assert any(_glob_match(path, pattern) for pattern in patterns), (
            f"pyproject.toml [tool.setuptools.package-data] must include 'data/manifests/*.json' "
            f"so that wheels ship {path}; it has {patterns}"
        )
