"""Downloads: checksums, atomic unpacking, repair, offline errors, read-only caches.

Every network access goes to a server on 127.0.0.1 started by the test (or to a closed port).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import socket
import tarfile
import zipfile
from pathlib import Path

import pooch
import pytest
import requests

from medseg_course.data import download as dl
from medseg_course.data.datasets import load_dataset
from medseg_course.data.download import data_dir, dataset_path, download_dataset, verify_dataset
from medseg_course.data.errors import ChecksumError, DatasetNotFoundError
from medseg_course.data.registry import _info_from_manifest, dataset_info

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

TOY_FILES = {"a": b"alpha " * 50, "b": b"bravo " * 70, "c": b"charlie " * 30}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _archive(path: Path, entries: dict[str, bytes], fmt: str) -> Path:
    if fmt == "tar":
        with tarfile.open(path, "w") as tf:
            for name, data in entries.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    else:
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in entries.items():
                zf.writestr(name, data)
    return path


def _toy(www: Path, base_url: str, *, fmt: str = "tar", hashed: bool = True,
         files: dict[str, bytes] | None = None, wrong_hash: bool = False):
    """A small dataset: its manifest-built DatasetInfo and its archive, served over HTTP."""
    files = TOY_FILES if files is None else files
    name = f"toy.{fmt}"
    entries = {f"Toy/files/{k}.txt": v for k, v in files.items()}
    entries["Toy/files/._a.txt"] = b"\x00\x05\x16\x07 macOS resource fork"
    entries["Toy/meta.json"] = b"{}"
    entries["Toy/unused/z.txt"] = b"not listed in the manifest"
    archive = _archive(www / name, entries, fmt)
    digest = "md5:" + ("0" * 32 if wrong_hash else hashlib.md5(archive.read_bytes()).hexdigest())
    manifest = {
        "schema_version": 1, "name": "toy", "aliases": [], "folder": "toy-data", "title": "Toy data",
        "description": "", "modality": "none", "spatial_dims": 2,
        "class_names": ["background", "thing"], "normalization": "percentile", "homepage": "",
        "licence": {"id": "CC0-1.0"}, "citation": ["nobody"],
        "source": {"url": f"{base_url}/{name}", "format": fmt, "filename": name,
                   "hash": digest if hashed else None,
                   "members": {"Toy/files/": "files/", "Toy/meta.json": "meta.json"}},
        "layout": {"file": "files/{case}.txt"}, "split": None,
        "cases": {k: {"files": {f"files/{k}.txt": {"sha256": _sha(v), "size": len(v)}}}
                  for k, v in TOY_FILES.items()},
    }
    return _info_from_manifest(manifest), archive


def _leftovers(root: Path) -> list[str]:
    """Temporary files or folders a failed download could leave behind."""
    found = [p.name for p in root.iterdir() if ".partial-" in p.name] if root.is_dir() else []
    downloads = root / dl.DOWNLOADS
    if downloads.is_dir():
        found += [p.name for p in downloads.iterdir()]
    return found


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# the cache folder
# --------------------------------------------------------------------------------------------


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(dl.ENV_VAR, raising=False)
    assert data_dir() == Path(pooch.os_cache("medseg-course")).absolute()
    monkeypatch.setenv(dl.ENV_VAR, str(tmp_path / "env"))
    assert data_dir() == tmp_path / "env"
    assert data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert dataset_path("hippocampus") == tmp_path / "env" / "msd-hippocampus"
    with pytest.raises(TypeError, match="root must be a folder path"):
        data_dir(42)


# --------------------------------------------------------------------------------------------
# download, verify, unpack
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, hashed", [("tar", True), ("zip", False)])
def test_download_verifies_and_unpacks(http_server, tmp_path, fmt, hashed):
    www, base, requests_log = http_server
    info, _ = _toy(www, base, fmt=fmt, hashed=hashed)
    root = tmp_path / "cache"
    folder = download_dataset(info, root=root, progress=False)
    assert folder == root / "toy-data"
    umask = os.umask(0o022)
    os.umask(umask)
    assert folder.stat().st_mode & 0o777 == 0o777 & ~umask  # not the 0o700 of a temporary folder
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "files/a.txt", "files/b.txt", "files/c.txt", "meta.json",  # no ._ junk, nothing unlisted
    ]
    assert verify_dataset(info, root=root).complete
    assert _leftovers(root) == [] and not (root / dl.DOWNLOADS).exists()  # archive deleted
    n = len(requests_log)
    assert download_dataset(info, root=root, progress=False) == folder  # complete: no network
    assert len(requests_log) == n


def test_keep_archive_allows_offline_reinstall(http_server, tmp_path):
    www, base, log = http_server
    info, _ = _toy(www, base)
    root = tmp_path / "cache"
    download_dataset(info, root=root, progress=False, keep_archive=True)
    assert (root / dl.DOWNLOADS / "toy.tar").is_file()
    for p in (root / "toy-data" / "files").iterdir():
        p.unlink()
    offline = dataclasses.replace(info, source={**info.source, "url": f"http://127.0.0.1:{_closed_port()}/toy.tar"})
    download_dataset(offline, root=root, progress=False)  # the kept archive matches its checksum
    assert verify_dataset(info, root=root).complete


def test_partial_archive_is_fetched_again(http_server, tmp_path):
    www, base, log = http_server
    info, archive = _toy(www, base)
    root = tmp_path / "cache"
    (root / dl.DOWNLOADS).mkdir(parents=True)
    (root / dl.DOWNLOADS / "toy.tar").write_bytes(archive.read_bytes()[:300])  # interrupted earlier
    download_dataset(info, root=root, progress=False)
    assert log == ["/toy.tar"]
    assert verify_dataset(info, root=root).complete


def test_checksum_mismatch_keeps_nothing(http_server, tmp_path):
    www, base, _ = http_server
    info, _ = _toy(www, base, wrong_hash=True)
    root = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="does not match the published checksum md5:0000"):
        download_dataset(info, root=root, progress=False)
    assert not (root / "toy-data").exists() and _leftovers(root) == []


def test_unverifiable_archive_with_a_bad_file_installs_nothing(http_server, tmp_path):
    www, base, _ = http_server
    info, _ = _toy(www, base, fmt="zip", hashed=False, files={**TOY_FILES, "b": b"tampered"})
    root = tmp_path / "cache"
    with pytest.raises(ChecksumError, match=r"(?s)1 file\(s\) in .*toy\.zip do not match.*files/b\.txt.*deleted"):
        download_dataset(info, root=root, progress=False)
    assert not (root / "toy-data").exists()
    assert _leftovers(root) == []  # the bad archive is deleted too


def test_stale_unverifiable_archive_is_replaced(http_server, tmp_path):
    www, base, log = http_server
    info, _ = _toy(www, base, fmt="zip", hashed=False)
    root = tmp_path / "cache"
    (root / dl.DOWNLOADS).mkdir(parents=True)
    (root / dl.DOWNLOADS / "toy.zip").write_bytes(b"PK\x03\x04 truncated")
    download_dataset(info, root=root, progress=False)
    assert log == ["/toy.zip"] and verify_dataset(info, root=root).complete


def test_archive_missing_cases_warns(http_server, tmp_path):
    www, base, _ = http_server
    files = {k: v for k, v in TOY_FILES.items() if k != "c"}
    info, _ = _toy(www, base, files=files)
    root = tmp_path / "cache"
    with pytest.warns(UserWarning, match="holds 2 of the 3 cases"):
        download_dataset(info, root=root, progress=False)
    copy = verify_dataset(info, root=root)
    assert copy.present == ("a", "b") and copy.missing == ("c",)


def test_repair_replaces_only_bad_files_and_keeps_a_local_archive(http_server, tmp_path):
    www, base, _ = http_server
    info, archive = _toy(www, base)
    root = tmp_path / "cache"
    download_dataset(info, root=root, progress=False)
    folder = root / "toy-data"
    good = folder / "files" / "a.txt"
    os.utime(good, (1, 1))
    (folder / "files" / "b.txt").write_bytes(b"bravo edited by hand")
    copy = verify_dataset(info, root=root)
    assert copy.present == ("a", "c") and copy.damaged == ("b",) and not copy.complete
    assert list(copy.corrupt) == [str(folder / "files" / "b.txt")]
    assert "2 of 3 cases present and intact, 1 with corrupt files" in str(copy)
    download_dataset(info, root=root, url=str(archive), progress=False)  # a local copy of the archive
    assert verify_dataset(info, root=root).complete
    assert good.stat().st_mtime == 1  # untouched
    assert archive.is_file()  # a user's own archive is never deleted


def test_interrupted_unpacking_leaves_no_folder(http_server, tmp_path, monkeypatch):
    www, base, _ = http_server
    info, _ = _toy(www, base)
    root = tmp_path / "cache"
    real_unpack = dl._unpack

    def unpack_then_crash(info, archive, dest, progress):
        real_unpack(info, archive, dest, progress)
        raise KeyboardInterrupt  # e.g. the student stops the cell

    monkeypatch.setattr(dl, "_unpack", unpack_then_crash)
    with pytest.raises(KeyboardInterrupt):
        download_dataset(info, root=root, progress=False)
    assert not (root / "toy-data").exists()
    assert [p for p in root.iterdir() if p.name != dl.DOWNLOADS] == []


# --------------------------------------------------------------------------------------------
# offline, unreachable, read-only
# --------------------------------------------------------------------------------------------


def test_offline_error_says_what_where_and_how(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Failed to resolve 'msd-for-monai.s3-us-west-2.amazonaws.com'")

    monkeypatch.setattr(pooch, "retrieve", offline)
    root = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError) as err:
        download_dataset("msd-hippocampus", root=root, progress=False)
    text = str(err.value)
    for needed in (
        "https://msd-for-monai.s3-us-west-2.amazonaws.com/Task04_Hippocampus.tar",  # what, from where
        "md5:9d24dba78a72977dbd1d2e110310f31b",
        str(root / "msd-hippocampus"),  # where to put it
        "images/hippocampus_001.nii.gz", "labels/hippocampus_001.nii.gz",  # the exact layout
        "'Task04_Hippocampus/imagesTr/' in the archive goes to 'images/'",
        str(root / dl.DOWNLOADS / "Task04_Hippocampus.tar"),
        "MEDSEG_DATA_DIR", "offline",
    ):
        assert needed in text, needed
    assert not (root / "msd-hippocampus").exists() and _leftovers(root) == []
    assert not (root / dl.DOWNLOADS).exists()
    assert isinstance(err.value, FileNotFoundError)


def test_unreachable_server_leaves_nothing(tmp_path):
    root = tmp_path / "cache"
    url = f"http://127.0.0.1:{_closed_port()}/stardist.whl"
    with pytest.raises(DatasetNotFoundError, match=r"(?s)downloading it from .*127\.0\.0\.1.*failed.*img2d\.tif"):
        download_dataset("stardist-sample", root=root, url=url, progress=False)
    assert not (root / "stardist-dsb2018-sample").exists() and _leftovers(root) == []


def test_load_without_download(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="download=False was given"):
        load_dataset("dsb2018", root=tmp_path / "empty", download=False)


def test_http_error_and_bad_url(http_server, tmp_path):
    _, base, _ = http_server
    with pytest.raises(DatasetNotFoundError, match="HTTPError.*404"):
        download_dataset("stardist-sample", root=tmp_path / "c", url=f"{base}/missing.whl", progress=False)
    with pytest.raises(ValueError, match="url must be an http"):
        download_dataset("stardist-sample", root=tmp_path / "c", url="gopher://old.example/x", progress=False)
    assert _leftovers(tmp_path / "c") == []


def test_missing_local_archive(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="given as url does not exist"):
        download_dataset("stardist-sample", root=tmp_path, url=str(tmp_path / "nope.whl"))


def test_read_only_cache_is_never_written(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("no download may be attempted into a read-only cache")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    root = tmp_path / "readonly"
    (root / "msd-hippocampus" / "images").mkdir(parents=True)
    root.chmod(0o555)
    (root / "msd-hippocampus").chmod(0o555)
    try:
        with pytest.raises(DatasetNotFoundError, match="read-only"):
            download_dataset("msd-hippocampus", root=root, progress=False)
        assert sorted(p.name for p in root.iterdir()) == ["msd-hippocampus"]
    finally:
        root.chmod(0o755)
        (root / "msd-hippocampus").chmod(0o755)


def test_shared_copy_is_left_alone(shared_datasets, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("no download may be attempted into the shared copy")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    before = sorted(os.listdir(shared_datasets / "msd-hippocampus" / "images"))
    with pytest.raises(DatasetNotFoundError, match="read-only"):
        download_dataset("msd-hippocampus", root=shared_datasets, progress=False)  # partial copy
    assert sorted(os.listdir(shared_datasets / "msd-hippocampus" / "images")) == before
    assert not (shared_datasets / dl.DOWNLOADS).exists()


# --------------------------------------------------------------------------------------------
# the real manifests, with archives built from the real files
# --------------------------------------------------------------------------------------------

MSD_CASES = ("hippocampus_001", "hippocampus_003", "hippocampus_004")


def _msd_tar(www: Path, shared: Path, tamper: str | None = None) -> Path:
    info = dataset_info("msd-hippocampus")
    entries = {"Task04_Hippocampus/dataset.json": b'{"name": "Hippocampus", "relase": "1.0 04/05/2018"}'}
    for case in MSD_CASES:
        for kind, folder in (("images", "imagesTr"), ("labels", "labelsTr")):
            data = (shared / info.folder / kind / f"{case}.nii.gz").read_bytes()
            if tamper == f"{kind}/{case}.nii.gz":
                data = data[:-1] + bytes([data[-1] ^ 1])
            entries[f"Task04_Hippocampus/{folder}/{case}.nii.gz"] = data
            entries[f"Task04_Hippocampus/{folder}/._{case}.nii.gz"] = b"\x00\x05\x16\x07junk"
    entries["Task04_Hippocampus/imagesTs/hippocampus_002.nii.gz"] = b"unlabelled test volume"
    return _archive(www / "Task04_Hippocampus.tar", entries, "tar")


def _with_archive_hash(info, archive: Path):
    md5 = "md5:" + hashlib.md5(archive.read_bytes()).hexdigest()
    return dataclasses.replace(info, source={**info.source, "hash": md5})


def test_msd_tar_end_to_end(http_server, shared_datasets, tmp_path):
    www, base, _ = http_server
    archive = _msd_tar(www, shared_datasets)
    info = _with_archive_hash(dataset_info("msd-hippocampus"), archive)  # our small tar's md5
    root = tmp_path / "cache"
    with pytest.warns(UserWarning, match="holds 3 of the 260 cases"):
        folder = download_dataset(info, root=root, url=f"{base}/Task04_Hippocampus.tar", progress=False)
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == ["dataset.json"] + [f"{k}/{c}.nii.gz" for k in ("images", "labels") for c in MSD_CASES]
    assert not (folder / dl.SIDECAR).exists()  # the files match the manifest's own hashes
    ours = load_dataset("msd-hippocampus", "all", root=root, progress=False)
    ref = load_dataset("msd-hippocampus", "all", root=shared_datasets, progress=False)
    assert ours.case_ids == MSD_CASES
    for case in MSD_CASES:
        assert (ours[case].image == ref[case].image).all() and (ours[case].mask == ref[case].mask).all()


def test_msd_file_differing_from_manifest_in_a_verified_archive(http_server, shared_datasets, tmp_path):
    www, base, _ = http_server
    archive = _msd_tar(www, shared_datasets, tamper="images/hippocampus_004.nii.gz")
    info = _with_archive_hash(dataset_info("msd-hippocampus"), archive)
    root = tmp_path / "cache"
    with pytest.warns(UserWarning) as caught:
        download_dataset(info, root=root, url=str(archive), progress=False)
    messages = " | ".join(str(w.message) for w in caught)
    assert "1 file(s) unpacked from Task04_Hippocampus.tar (whose checksum matched) differ" in messages
    assert "holds 3 of the 260 cases" in messages
    assert (root / "msd-hippocampus" / dl.SIDECAR).is_file()
    assert verify_dataset("msd-hippocampus", root=root, cases=MSD_CASES).present == MSD_CASES


def test_dsb_github_zip_end_to_end(http_server, shared_datasets, tmp_path):
    www, base, _ = http_server
    info = dataset_info("dsb2018")
    present = sorted(p.name for p in (shared_datasets / info.folder / "stage1_train").iterdir())[:2]
    top = f"kaggle-dsbowl-2018-dataset-fixes-{info.source['commit']}/"
    entries = {top + "README.md": b"fixes", top + "stage1_train/0000not-in-the-subset/images/x.png": b"x"}
    for case in present:
        for path in (shared_datasets / info.folder / "stage1_train" / case).rglob("*.png"):
            rel = path.relative_to(shared_datasets / info.folder).as_posix()
            entries[top + rel] = path.read_bytes()
    _archive(www / info.source["filename"], entries, "zip")
    root = tmp_path / "cache"
    with pytest.warns(UserWarning, match="holds 2 of the 180 cases"):
        download_dataset("dsb2018", root=root, url=f"{base}/{info.source['filename']}", progress=False)
    assert sorted(p.name for p in (root / info.folder / "stage1_train").iterdir()) == present
    ds = load_dataset("dsb2018", "all", root=root, progress=False)
    assert ds.case_ids == tuple(present)
    assert ds[0].instances.max() == info.cases[present[0]]["n_nuclei"]
