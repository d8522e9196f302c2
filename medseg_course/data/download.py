"""Getting the real datasets onto disk, and checking what is there.

The data cache
--------------
Datasets live in one folder per dataset inside the data cache, named as in the manifests:
``msd-hippocampus/``, ``dsb2018-nuclei/``, ``stardist-dsb2018-sample/``. The cache is the
folder named by the ``MEDSEG_DATA_DIR`` environment variable, or by default
``pooch.os_cache("medseg-course")`` (``~/.cache/medseg-course`` on Linux). A read-only folder
works as a cache too (a copy prepared by an instructor): nothing in it is ever changed.

Downloads
---------
:func:`download_dataset` fetches the official archive with :mod:`pooch` into
``<cache>/_downloads/`` (pooch writes to a temporary file, checks the published checksum and
only then renames it, so a partial or corrupt archive is never kept and is fetched again),
unpacks only the files the manifest lists into a temporary folder next to the dataset folder,
checks every file against the manifest's sha256, and only then renames the folder into place.
An interrupted download or unpacking therefore never leaves a half-written dataset folder.
Where a dataset folder already exists (a partial copy), only its missing or corrupt files are
replaced, each by an atomic rename.

Checking a local copy
---------------------
:func:`verify_dataset` reports which cases of a dataset are present, incomplete or missing,
and which files do not match their checksum. :func:`medseg_course.data.load_dataset` runs it
on the cases it loads, so a corrupt file is caught before it can silently spoil a result.

Introduced in 01_medical_images.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tqdm.auto import tqdm

from medseg_course.data.errors import ChecksumError, DataError, DatasetNotFoundError
from medseg_course.data.registry import DatasetInfo, dataset_info

__all__ = [
    "ENV_VAR",
    "LocalCopy",
    "data_dir",
    "dataset_path",
    "download_dataset",
    "verify_dataset",
]

#: Environment variable naming the data cache folder.
ENV_VAR = "MEDSEG_DATA_DIR"
#: Subfolder of the cache where archives are downloaded.
DOWNLOADS = "_downloads"
#: File, inside a dataset folder, recording the hashes of files unpacked from an archive whose
#: own checksum matched but whose content differs from the manifest (see ``_install``).
SIDECAR = ".medseg-extracted.json"
_JUNK_PREFIXES = ("._",)
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


# --------------------------------------------------------------------------------------------
# Where things live
# --------------------------------------------------------------------------------------------


def data_dir(root: str | os.PathLike | None = None) -> Path:
    """The data cache folder: `root`, else ``$MEDSEG_DATA_DIR``, else the user cache.

    Parameters
    ----------
    root : str or path-like, optional
        An explicit folder; wins over the environment variable.

    Returns
    -------
    pathlib.Path
        Absolute path (``~`` expanded). The folder is not created.

    Raises
    ------
    TypeError
        If `root` is not a string or path-like.

    Notes
    -----
    The default is ``pooch.os_cache("medseg-course")``: ``~/.cache/medseg-course`` on Linux,
    ``~/Library/Caches/medseg-course`` on macOS, ``%LOCALAPPDATA%\\medseg-course\\Cache`` on
    Windows.

    Introduced in 01_medical_images.

    Examples
    --------
    >>> str(data_dir("/tmp/my-cache"))
    '/tmp/my-cache'
    """
    if root is None:
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            root = env
        else:
            import pooch

            root = pooch.os_cache("medseg-course")
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder path (str or Path), got {type(root).__name__}: {root!r}")
    return Path(root).expanduser().absolute()


def dataset_path(name: str | DatasetInfo, root: str | os.PathLike | None = None) -> Path:
    """Folder of one dataset inside the data cache (it may not exist yet).

    Parameters
    ----------
    name : str or DatasetInfo
        Dataset name or alias, see :func:`list_datasets`.
    root : str or path-like, optional
        Cache folder; default :func:`data_dir`.

    Returns
    -------
    pathlib.Path

    Notes
    -----
    Introduced in 01_medical_images.

    Examples
    --------
    >>> dataset_path("dsb2018", "/tmp/cache").as_posix()
    '/tmp/cache/dsb2018-nuclei'
    """
    return data_dir(root) / dataset_info(name).folder


# --------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------

_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    """sha256 of a file, remembered while its size and modification time do not change."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    cached = _HASH_MEMO.get(key)
    if cached is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        cached = _HASH_MEMO[key] = h.hexdigest()
    return cached


def _visible_files(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and not _is_junk(p.name)), key=lambda p: p.name
    )


def _listing_digest(folder: Path) -> tuple[str, int]:
    """Digest of a folder's files: sha256 of '<sha256>  <name>\\n' lines in name order."""
    files = _visible_files(folder)
    text = "".join(f"{_sha256(p)}  {p.name}\n" for p in files)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), len(files)


def _writable(path: Path) -> bool:
    """True if we may write in `path`: permitted, and not marked read-only by its mode bits.

    The mode-bit test matters when running as root (as in some containers), for whom
    ``os.access`` says yes even to a folder made read-only on purpose (``chmod a-w``).
    """
    try:
        return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)
    except OSError:
        return False


def _is_junk(name: str) -> bool:
    return name.startswith(_JUNK_PREFIXES) or name in _JUNK_NAMES


# --------------------------------------------------------------------------------------------
# Checking a local copy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalCopy:
    """What :func:`verify_dataset` found in a dataset folder.

    Attributes
    ----------
    name : str
        Dataset name.
    folder : pathlib.Path
        The dataset folder.
    present : tuple of str
        Cases whose files are all there (and match their checksum when `checked` is True).
    incomplete : tuple of str
        Cases with some but not all of their files.
    missing : tuple of str
        Cases of the manifest with none of their files here.
    damaged : tuple of str
        Cases whose files are all there but at least one does not match its checksum.
    corrupt : mapping of str to str
        Path of each file or folder that does not match the manifest -> what is wrong.
    checked : bool
        True when checksums were computed, False when only existence was checked.

    Notes
    -----
    Introduced in 01_medical_images.
    """

    name: str
    folder: Path
    present: tuple[str, ...]
    incomplete: tuple[str, ...]
    missing: tuple[str, ...]
    damaged: tuple[str, ...] = ()
    corrupt: Mapping[str, str] = field(default_factory=dict)
    checked: bool = True

    @property
    def complete(self) -> bool:
        """True when every case of the manifest is present and nothing is corrupt."""
        return not (self.incomplete or self.missing or self.damaged)

    def __str__(self) -> str:
        total = len(self.present) + len(self.incomplete) + len(self.missing) + len(self.damaged)
        text = f"{self.name} in {self.folder}: {len(self.present)} of {total} cases present and intact"
        if self.incomplete:
            text += f", {len(self.incomplete)} incomplete"
        if self.damaged:
            text += f", {len(self.damaged)} with corrupt files ({len(self.corrupt)} file(s))"
        return text


def _case_paths(info: DatasetInfo, case: str) -> list[str]:
    return [*info.files(case), *info.dirs(case)]


def _scan(info: DatasetInfo, folder: Path, cases: Iterable[str]) -> tuple[list, list, list]:
    """Sort cases into present / incomplete / missing by existence only (no hashing)."""
    present, incomplete, missing = [], [], []
    for case in cases:
        exists = [(folder / rel).exists() for rel in _case_paths(info, case)]
        (present if all(exists) else incomplete if any(exists) else missing).append(case)
    return present, incomplete, missing


def _accepted(folder: Path) -> dict[str, Any]:
    """Alternative hashes recorded when files were unpacked from a checksum-verified archive."""
    try:
        return json.loads((folder / SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _problems(info: DatasetInfo, folder: Path, case: str, accepted: Mapping[str, Any]) -> dict[str, str]:
    """Files of one case that do not match the manifest: path -> reason."""
    found = {}
    for rel, spec in info.files(case).items():
        path = folder / rel
        if not path.is_file():
            found[str(path)] = "missing"
            continue
        size = path.stat().st_size
        digest = _sha256(path) if size == spec["size"] else None  # wrong size: no need to hash
        if digest is None or digest not in (spec["sha256"], accepted.get("files", {}).get(rel)):
            found[str(path)] = (
                f"sha256 {digest} instead of {spec['sha256']}" if digest else
                f"{size} bytes instead of {spec['size']} (truncated or damaged)"
            )
    for rel, spec in info.dirs(case).items():
        path = folder / rel
        if not path.is_dir():
            found[str(path)] = "missing folder"
            continue
        digest, count = _listing_digest(path)
        if digest not in (spec["sha256_of_listing"], accepted.get("dirs", {}).get(rel)):
            found[str(path)] = (
                f"{count} files instead of {spec['count']}" if count != spec["count"] else
                "a file in this folder differs from the published one"
            )
    return found


def verify_dataset(
    name: str | DatasetInfo,
    *,
    root: str | os.PathLike | None = None,
    cases: Iterable[str] | None = None,
    checksums: bool = True,
    progress: bool = True,
) -> LocalCopy:
    """Check a local copy of a dataset against its manifest.

    Parameters
    ----------
    name : str or DatasetInfo
        Dataset name or alias.
    root : str or path-like, optional
        Cache folder; default :func:`data_dir`.
    cases : iterable of str, optional
        Only check these case ids (default: every case of the manifest).
    checksums : bool
        Compute sha256 of every present file (default). False only checks that files exist.
    progress : bool
        Show a progress bar while hashing (only if it takes more than half a second).

    Returns
    -------
    LocalCopy
        Present, incomplete and missing cases, and the corrupt files with the reason.

    Raises
    ------
    ValueError
        If a case id is not in the manifest.

    Notes
    -----
    A missing folder gives every case as missing; nothing is ever written.

    Introduced in 01_medical_images.

    Examples
    --------
    >>> copy = verify_dataset("stardist-sample", root="/nonexistent")
    >>> copy.present, copy.missing
    ((), ('img2d',))
    """
    info = dataset_info(name)
    folder = data_dir(root) / info.folder
    if isinstance(cases, str):
        raise TypeError(f"cases must be a list of case ids, got the single string {cases!r}")
    wanted = list(info.case_ids if cases is None else cases)
    unknown = [c for c in wanted if c not in info.cases]
    if unknown:
        raise ValueError(
            f"cases must be case ids of {info.name!r}, got unknown ids {unknown[:5]}; "
            f"see dataset_info({info.name!r}).case_ids"
        )
    if not folder.is_dir():
        return LocalCopy(info.name, folder, (), (), tuple(wanted), (), {}, checksums)
    present, incomplete, missing = _scan(info, folder, wanted)
    corrupt: dict[str, str] = {}
    damaged = []
    if checksums:
        accepted = _accepted(folder)
        ok = []
        bar = tqdm(present, desc=f"checking {info.name}", unit="case", disable=not progress,
                   delay=0.5, leave=False)
        for case in bar:
            bad = _problems(info, folder, case, accepted)
            corrupt.update(bad)
            (damaged if bad else ok).append(case)
        present = ok
    return LocalCopy(info.name, folder, tuple(present), tuple(incomplete), tuple(missing),
                     tuple(damaged), corrupt, checksums)


# --------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------


def _layout_text(info: DatasetInfo, folder: Path) -> str:
    first = info.case_ids[0]
    lines = [f"    {folder}{os.sep}"]
    for rel in _case_paths(info, first):
        lines.append(f"        {rel}{'/' if rel in info.dirs(first) else ''}")
    lines.append(f"        ... the same for each of the {len(info.case_ids)} cases")
    mapping = "; ".join(
        f"'{src}' in the archive goes to '{dst}'" for src, dst in info.source["members"].items()
    )
    lines.append(f"    ({mapping})")
    return "\n".join(lines)


def _manual_instructions(info: DatasetInfo, root: Path) -> str:
    src = info.source
    folder = root / info.folder
    checksum = f" (checksum {src['hash']})" if src.get("hash") else ""
    return (
        f"To install it by hand:\n"
        f"  1. On a machine with internet access, download\n"
        f"       {src['url']}{checksum}\n"
        f"  2. Either put that file, unchanged, at\n"
        f"       {root / DOWNLOADS / src['filename']}\n"
        f"     and run medseg_course.data.download_dataset({info.name!r}) again (it is checked and "
        f"unpacked without a network),\n"
        f"     or unpack it yourself so that the files are laid out like this:\n"
        f"{_layout_text(info, folder)}\n"
        f"  3. Or point the {ENV_VAR} environment variable at a folder that already holds "
        f"'{info.folder}/'.\n"
        f"A partial copy (some cases only) works: the loaders use the cases that are present."
    )


def _not_found(info: DatasetInfo, root: Path, reason: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"the dataset {info.name!r} ({info.title}) is not (completely) in {root / info.folder}, "
        f"and {reason}{'' if reason.endswith(('.', '?', '!')) else '.'}\n"
        + _manual_instructions(info, root)
    )


def _corrupt_message(info: DatasetInfo, folder: Path, corrupt: Mapping[str, str]) -> str:
    """Friendly text for files that fail their checksum (used by the loaders)."""
    shown = list(corrupt.items())[:10]
    listing = "\n".join(f"  {path}: {why}" for path, why in shown)
    more = f"\n  ... and {len(corrupt) - len(shown)} more" if len(corrupt) > len(shown) else ""
    if _writable(folder):
        fix = (
            f"Delete these files (or folders), then run "
            f"medseg_course.data.download_dataset({info.name!r}) to fetch them again."
        )
    else:
        fix = (
            f"This copy is read-only: ask whoever maintains {folder} to replace them, or set "
            f"{ENV_VAR} to a writable folder and download the dataset there."
        )
    return (
        f"{len(corrupt)} file(s) of {info.name!r} do not match their published checksum "
        f"(damaged or edited copies):\n{listing}{more}\n{fix}"
    )


# --------------------------------------------------------------------------------------------
# Downloading and unpacking
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_pooch():
    """Pooch logs each download at INFO level; library code must print nothing."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _local_source(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):  # a Windows drive path
        return Path(url).expanduser()
    return None


def _fetch(info: DatasetInfo, url: str, root: Path, progress: bool) -> tuple[Path, bool, bool]:
    """Get the archive on disk.

    Returns its path, whether it is ours (in the downloads folder, so it may be deleted), and
    whether it was already there (reused without downloading).
    """
    import pooch
    import requests

    known = info.source.get("hash")
    local = _local_source(url)
    if local is not None:
        if not local.is_file():
            raise _not_found(info, root, f"the archive {local} given as url does not exist")
        if known and not pooch.hashes.hash_matches(str(local), known):
            raise ChecksumError(
                f"{local} does not match the published checksum {known} of {info.source['filename']}: "
                f"it is damaged or a different file; download it again from {info.source['url']}"
            )
        return local, False, True

    downloads = root / DOWNLOADS
    target = downloads / info.source["filename"]
    existed = target.is_file()
    bar = None
    if progress:
        bar = tqdm(total=info.source.get("size_bytes") or 0, unit="B", unit_scale=True,
                   unit_divisor=1024, desc=f"downloading {info.name}", leave=False)
    downloader = pooch.HTTPDownloader(progressbar=bar if bar is not None else False, timeout=60)
    try:
        with _quiet_pooch():
            path = pooch.retrieve(url, known_hash=known, fname=target.name, path=downloads,
                                  downloader=downloader, progressbar=False)
    except requests.exceptions.RequestException as err:  # offline, DNS, refused, timeout, HTTP 404
        raise _not_found(
            info, root, f"downloading it from {url} failed ({type(err).__name__}: {err}); "
            "are you offline, or behind a proxy?"
        ) from err
    except ValueError as err:
        if "hash" not in str(err).lower():  # pooch: unsupported URL protocol
            raise ValueError(
                f"url must be an http(s):// address, a file:// URL or a file path, got {url!r}"
            ) from err
        raise ChecksumError(  # pooch: the download does not match the known hash
            f"the file downloaded from {url} does not match the published checksum {known} "
            f"(a damaged transfer or a changed file); nothing was kept. Try again; if it keeps "
            f"failing, the source has changed: please report it.\n({err})"
        ) from err
    except OSError as err:  # disk full, permissions
        raise DataError(
            f"could not write the download of {info.name!r} to {downloads} "
            f"({type(err).__name__}: {err}); check the free disk space and the folder's "
            f"permissions, or set {ENV_VAR} to another folder"
        ) from err
    finally:
        if bar is not None:
            bar.close()
    return Path(path), True, existed


def _wanted(info: DatasetInfo) -> tuple[set[str], set[str]]:
    files, dirs = set(), set()
    for case in info.case_ids:
        files.update(info.files(case))
        dirs.update(info.dirs(case))
    return files, dirs


def _target(name: str, info: DatasetInfo, files: set[str], dirs: set[str]) -> str | None:
    """Local relative path for an archive member, or None to skip it."""
    while name.startswith("./"):
        name = name[2:]
    base = name.rsplit("/", 1)[-1]
    if not base or _is_junk(base) or "\\" in name:
        return None
    for src, dst in info.source["members"].items():
        if not src.endswith("/"):
            if name == src:
                return dst
            continue
        if not name.startswith(src):
            continue
        rel = dst + name[len(src):]
        if rel in files:
            return rel
        parent, _, leaf = rel.rpartition("/")
        if parent in dirs and leaf not in ("", ".", ".."):
            return rel
    return None


def _unpack(info: DatasetInfo, archive: Path, dest: Path, progress: bool) -> int:
    """Write the wanted members of `archive` under `dest`; return how many were written."""
    files, dirs = _wanted(info)
    fmt = info.source["format"]
    written = 0

    def write(rel: str, stream) -> None:
        nonlocal written
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "wb") as f:
            shutil.copyfileobj(stream, f, 1 << 20)
        written += 1

    desc = f"unpacking {archive.name}"
    try:
        if fmt == "tar":
            with tarfile.open(archive, "r:*") as tf:
                for member in tqdm(tf, desc=desc, unit="file", disable=not progress, delay=0.5,
                                   leave=False):
                    rel = _target(member.name, info, files, dirs) if member.isfile() else None
                    if rel is not None:
                        with tf.extractfile(member) as stream:
                            write(rel, stream)
        elif fmt == "zip":
            with zipfile.ZipFile(archive) as zf:
                for member in tqdm(zf.infolist(), desc=desc, unit="file", disable=not progress,
                                   delay=0.5, leave=False):
                    rel = None if member.is_dir() else _target(member.filename, info, files, dirs)
                    if rel is not None:
                        with zf.open(member) as stream:
                            write(rel, stream)
        else:  # pragma: no cover - manifests are ours
            raise DataError(f"unknown archive format {fmt!r} in the manifest of {info.name!r}")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise ChecksumError(
            f"the archive {archive} is damaged and cannot be unpacked ({type(err).__name__}: {err}); "
            f"delete it and download it again from {info.source['url']}"
        ) from err
    return written


def _record_deviations(info: DatasetInfo, tmp: Path, present: list[str]) -> dict[str, Any]:
    """Hashes of unpacked files that differ from the manifest (archive checksum matched)."""
    deviations: dict[str, dict[str, str]] = {"files": {}, "dirs": {}}
    for case in present:
        for rel, spec in info.files(case).items():
            digest = _sha256(tmp / rel)
            if digest != spec["sha256"]:
                deviations["files"][rel] = digest
        for rel, spec in info.dirs(case).items():
            digest, _ = _listing_digest(tmp / rel)
            if digest != spec["sha256_of_listing"]:
                deviations["dirs"][rel] = digest
    return deviations


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def _install(info: DatasetInfo, tmp: Path, folder: Path, present: list[str]) -> None:
    """Move the verified files from `tmp` into `folder`, atomically per file or folder."""
    try:
        os.rename(tmp, folder)  # atomic; fails when `folder` exists and is not empty
        return
    except OSError:
        if not folder.is_dir():
            raise
    accepted = _accepted(folder)
    new = _accepted(tmp)
    for case in present:
        if not _problems(info, folder, case, accepted):
            continue  # the copy already there is fine: keep it untouched
        for rel in info.files(case):
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, folder / rel)
        for rel in info.dirs(case):
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                trash = Path(tempfile.mkdtemp(dir=folder, prefix=".replaced-"))
                os.rename(target, trash / "old")
                os.rename(tmp / rel, target)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.rename(tmp / rel, target)
    for src, dst in info.source["members"].items():  # extra metadata files (e.g. dataset.json)
        if not src.endswith("/") and (tmp / dst).is_file() and not (folder / dst).exists():
            os.replace(tmp / dst, folder / dst)
    if new.get("files") or new.get("dirs"):
        merged = {
            "source": new.get("source"),
            "files": {**accepted.get("files", {}), **new.get("files", {})},
            "dirs": {**accepted.get("dirs", {}), **new.get("dirs", {})},
        }
        _write_json_atomic(folder / SIDECAR, merged)


def download_dataset(
    name: str | DatasetInfo,
    *,
    root: str | os.PathLike | None = None,
    url: str | None = None,
    progress: bool = True,
    keep_archive: bool = False,
) -> Path:
    """Download a dataset's official archive, verify it and unpack it into the data cache.

    Does nothing (and needs no network) when the local copy is already complete and intact.
    Otherwise the archive is downloaded (or reused from ``<cache>/_downloads/`` if its checksum
    matches), the files the manifest lists are unpacked into a temporary folder, each is
    checked against its sha256, and the result is moved into place atomically. Files already
    present and intact are kept; missing or corrupt ones are replaced.

    Parameters
    ----------
    name : str or DatasetInfo
        Dataset name or alias, see :func:`list_datasets`.
    root : str or path-like, optional
        Cache folder; default :func:`data_dir` (``$MEDSEG_DATA_DIR`` or the user cache).
    url : str, optional
        Another place to get the same archive from: a mirror URL (``http(s)://``) or a local
        file path (``file://`` or a plain path, e.g. a copy on a USB stick; it is never
        deleted). The manifest's checksums still apply.
    progress : bool
        Show progress bars (download, unpacking).
    keep_archive : bool
        Keep the downloaded archive in ``<cache>/_downloads/`` (default: delete it once
        unpacked, to save disk space).

    Returns
    -------
    pathlib.Path
        The dataset folder.

    Raises
    ------
    DatasetNotFoundError
        If the download fails (offline, unreachable) or the cache folder is not writable. The
        message says what to download, from where, and the folder layout to put it in.
    ChecksumError
        If the archive or a file in it does not match its published checksum.

    Warns
    -----
    UserWarning
        If the archive lacks some cases of the manifest, or if files of a checksum-verified
        archive differ from the manifest's per-file hashes (they are used, and recorded in
        ``.medseg-extracted.json`` in the dataset folder).

    Notes
    -----
    Which files are verified how is described in ``data/README.md``. Where an archive has no
    published checksum (DSB2018 from a GitHub archive), every unpacked file must match the
    manifest or nothing is installed.

    Introduced in 01_medical_images.

    Examples
    --------
    >>> folder = download_dataset("stardist-sample")  # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +SKIP
    ['img2d.tif', 'mask2d.tif']
    """
    info = dataset_info(name)
    if url is not None and not isinstance(url, str):
        raise TypeError(f"url must be a string (URL or file path), got {type(url).__name__}")
    base = data_dir(root)
    folder = base / info.folder
    if folder.is_dir():
        copy = verify_dataset(info, root=base, progress=progress)
        if copy.complete:
            return folder
    try:
        base.mkdir(parents=True, exist_ok=True)
        writable = _writable(base)
    except OSError:
        writable = False
    if not writable or (folder.is_dir() and not _writable(folder)):
        raise _not_found(
            info, base, f"that folder is read-only, so nothing can be downloaded into it; set "
            f"{ENV_VAR} to a writable folder (or pass root=...)"
        )

    source_url = url or info.source["url"]
    if _local_source(source_url) is None and urlparse(source_url).scheme not in ("http", "https"):
        raise ValueError(
            f"url must be an http(s):// address, a file:// URL or a file path, got {source_url!r}"
        )
    try:
        archive, owned, reused = _fetch(info, source_url, base, progress)
    except Exception:
        with contextlib.suppress(OSError):
            (base / DOWNLOADS).rmdir()  # only if empty
        raise
    while True:
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".{info.folder}.partial-"))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private; the dataset should not be
        try:
            _unpack(info, archive, tmp, progress)
            present, incomplete, missing = _scan(info, tmp, info.case_ids)
            if not present:
                raise ChecksumError(
                    f"the archive {archive} holds none of the files of {info.name!r}; it is not "
                    f"the right file. Delete it and download {info.source['url']} again."
                )
            if info.source.get("hash"):
                deviations = _record_deviations(info, tmp, present)
                if deviations["files"] or deviations["dirs"]:
                    n = len(deviations["files"]) + len(deviations["dirs"])
                    warnings.warn(
                        f"{n} file(s) unpacked from {archive.name} (whose checksum matched) differ from "
                        f"the per-file hashes in the course manifest of {info.name!r}; they are used "
                        f"as they are and recorded in {SIDECAR}. Please report this.",
                        stacklevel=2,
                    )
                    deviations["source"] = {"url": source_url, "hash": info.source["hash"]}
                    _write_json_atomic(tmp / SIDECAR, deviations)
            else:
                bad: dict[str, str] = {}
                for case in present:
                    bad.update(_problems(info, tmp, case, {}))
                if bad:
                    listing = "\n".join(
                        f"  {Path(p).relative_to(tmp)}: {why}" for p, why in list(bad.items())[:10]
                    )
                    fix = (
                        "The archive has been deleted: run download_dataset again to fetch a fresh "
                        "copy; if this keeps happening, the source has changed (please report it)."
                        if owned else f"Check that {archive} is an unchanged copy of {info.source['url']}."
                    )
                    raise ChecksumError(
                        f"{len(bad)} file(s) in {archive} do not match the published hashes of "
                        f"{info.name!r}; nothing was installed:\n{listing}\n{fix}"
                    )
            if incomplete or missing:
                warnings.warn(
                    f"the archive {archive.name} holds {len(present)} of the {len(info.case_ids)} "
                    f"cases of {info.name!r}; the others are not installed",
                    stacklevel=2,
                )
            _install(info, tmp, folder, present)
        except ChecksumError:
            if owned and not info.source.get("hash") and archive.exists():
                archive.unlink()  # an archive without a published checksum: never reuse a bad one
                if reused:  # it was left by an earlier attempt: fetch a fresh copy, once
                    archive, owned, reused = _fetch(info, source_url, base, progress)
                    reused = False
                    continue
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        break
    if owned and not keep_archive:
        with contextlib.suppress(OSError):
            archive.unlink()
        with contextlib.suppress(OSError):
            (base / DOWNLOADS).rmdir()  # only if empty
    return folder
