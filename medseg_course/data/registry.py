"""The registry of real datasets: what each one is, where it comes from, and its fixed split.

Every dataset the course downloads is described by one JSON manifest in the repository's
top-level ``data/`` folder (shipped inside the package as ``medseg_course/data/manifests``).
A manifest records the official download URL and that archive's published checksum, the
licence and citation, the class names, the sha256 of every file of the full set, and the
fixed train/val/test split. :func:`dataset_info` reads one; :func:`list_datasets` names them.

The splits are made once, by :func:`make_split`, from the **full** case list, and stored in the
manifest. A partial local copy therefore gets a subset of the same split, and a case never
moves from one split to another when more data is downloaded.

Introduced in 01_medical_images.
"""

from __future__ import annotations

import functools
import hashlib
import json
import types
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DatasetInfo", "dataset_info", "list_datasets", "make_split", "SPLITS"]

#: The split names :func:`load_dataset` accepts. ``"all"`` is every case of the dataset.
SPLITS = ("train", "val", "test", "all")


def _manifest_dir() -> Path:
    """Folder holding the ``*.json`` manifests, in a wheel or in a source checkout."""
    here = Path(__file__).resolve().parent
    packaged = here / "manifests"
    if packaged.is_dir():
        return packaged
    # A checkout where the symlink did not survive (e.g. git on Windows without symlinks).
    checkout = here.parents[1] / "data"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(
        f"the dataset manifests are missing: neither {packaged} nor {checkout} exists; "
        "reinstall medseg-course (pip install --force-reinstall medseg-course)"
    )


@functools.lru_cache(maxsize=None)
def _manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(_manifest_dir().glob("*.json")):
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or manifest.get("schema_version") != 1:
            continue
        found[manifest["name"]] = manifest
    return found


def _aliases() -> dict[str, str]:
    table = {}
    for name, manifest in _manifests().items():
        for alias in (name, manifest["folder"], *manifest.get("aliases", ())):
            table[alias.lower()] = name
    return table


def list_datasets() -> tuple[str, ...]:
    """Names of the real datasets the course can download and load.

    Returns
    -------
    tuple of str
        Canonical names, sorted. Each also has aliases (see :attr:`DatasetInfo.aliases`).

    Notes
    -----
    Introduced in 01_medical_images.

    Examples
    --------
    >>> list_datasets()
    ('dsb2018', 'msd-hippocampus', 'stardist-sample')
    """
    return tuple(sorted(_manifests()))


@dataclass(frozen=True, eq=False)
class DatasetInfo:
    """What the course knows about one dataset: provenance, licence, classes, files and split.

    Built by :func:`dataset_info` from the dataset's manifest; do not create one by hand.

    Attributes
    ----------
    name : str
        Canonical name, e.g. ``"msd-hippocampus"``.
    title, description, modality : str
        Human descriptions.
    folder : str
        Name of the dataset's folder inside the data cache (see :func:`data_dir`).
    spatial_dims : int
        2 for images ``(C, H, W)``, 3 for volumes ``(C, D, H, W)``.
    class_names : tuple of str
        Name of each label value: ``class_names[k]`` is the name of label ``k``.
    normalization : str
        The intensity normalisation :func:`load_dataset` applies by default
        (``"zscore"`` or ``"percentile"``).
    homepage : str
    licence : mapping
        ``id`` (SPDX), ``url`` and a ``note`` on what the licence asks of you.
    citation : tuple of str
        What to cite when you use the data.
    source : mapping
        The official download: ``url``, ``format``, ``filename``, ``hash`` (``"md5:..."`` or
        ``"sha256:..."``, or None where none is published), ``hash_note``, ``size_bytes``,
        ``size_note`` and ``members`` (archive path prefix -> local path prefix).
    layout : mapping
        Path templates of a case's files inside the dataset folder (``{case}`` is the case id).
    splits : mapping of str to tuple of str
        Case ids of ``"train"``, ``"val"``, ``"test"`` and ``"all"`` (only ``"all"`` for a
        dataset without a fixed split).
    split_method : mapping or None
        How the split was made (``method``, ``seed``, ``fractions``, ``stratify_by``, ``unit``).
    cases : mapping
        Per case: its files with sha256 and size, folders with a digest, category, shape.
    aliases : tuple of str
        Other names :func:`dataset_info` accepts.

    Notes
    -----
    Introduced in 01_medical_images.

    Examples
    --------
    >>> info = dataset_info("msd-hippocampus")
    >>> info.class_names
    ('background', 'anterior', 'posterior')
    >>> len(info.splits["train"]), len(info.splits["val"]), len(info.splits["test"])
    (182, 39, 39)
    """

    name: str
    title: str
    description: str
    modality: str
    folder: str
    spatial_dims: int
    class_names: tuple[str, ...]
    normalization: str
    homepage: str
    licence: Mapping[str, Any]
    citation: tuple[str, ...]
    source: Mapping[str, Any]
    layout: Mapping[str, str]
    splits: Mapping[str, tuple[str, ...]]
    split_method: Mapping[str, Any] | None
    cases: Mapping[str, Mapping[str, Any]]
    aliases: tuple[str, ...]

    @property
    def case_ids(self) -> tuple[str, ...]:
        """Every case id of the full dataset, sorted."""
        return self.splits["all"]

    @property
    def has_split(self) -> bool:
        """True when the dataset has a fixed train/val/test split."""
        return self.split_method is not None

    def category(self, case_id: str) -> str | None:
        """The category of a case (DSB2018 image type), or None if the dataset has none."""
        return self.cases[case_id].get("category")

    def files(self, case_id: str) -> Mapping[str, Mapping[str, Any]]:
        """Files of a case: relative path -> ``{"sha256": ..., "size": ...}``."""
        return self.cases[case_id].get("files", {})

    def dirs(self, case_id: str) -> Mapping[str, Mapping[str, Any]]:
        """Folders of a case checked as a whole: relative path -> ``{"sha256_of_listing", "count"}``."""
        return self.cases[case_id].get("dirs", {})

    def __str__(self) -> str:
        lines = [f"{self.name}: {self.title}", f"  modality: {self.modality}, {self.spatial_dims}D"]
        lines.append("  classes: " + ", ".join(f"{k} {n}" for k, n in enumerate(self.class_names)))
        if self.has_split:
            counts = ", ".join(f"{s} {len(self.splits[s])}" for s in ("train", "val", "test"))
            lines.append(f"  cases: {len(self.case_ids)} ({counts})")
        else:
            lines.append(f"  cases: {len(self.case_ids)} (no train/val/test split)")
        lines.append(f"  licence: {self.licence['id']} - {self.licence.get('note', '')}")
        lines.append(f"  source: {self.source['url']}")
        lines.append("  cite: " + "\n        ".join(self.citation))
        return "\n".join(lines)


def _freeze(value):
    if isinstance(value, dict):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


@functools.lru_cache(maxsize=None)
def _build_info(name: str) -> DatasetInfo:
    return _info_from_manifest(_manifests()[name])


def _info_from_manifest(m: Mapping[str, Any]) -> DatasetInfo:
    """A DatasetInfo from a manifest dict (the registry's own, or a test's)."""
    case_ids = tuple(sorted(m["cases"]))
    split = m.get("split")
    if split:
        splits = {s: tuple(split[s]) for s in ("train", "val", "test")}
        method = {k: v for k, v in split.items() if k not in ("train", "val", "test")}
    else:
        splits, method = {}, None
    splits["all"] = case_ids
    return DatasetInfo(
        name=m["name"],
        title=m["title"],
        description=m["description"],
        modality=m["modality"],
        folder=m["folder"],
        spatial_dims=int(m["spatial_dims"]),
        class_names=tuple(m["class_names"]),
        normalization=m["normalization"],
        homepage=m["homepage"],
        licence=_freeze(m["licence"]),
        citation=tuple(m["citation"]),
        source=_freeze(m["source"]),
        layout=_freeze(m["layout"]),
        splits=types.MappingProxyType(splits),
        split_method=_freeze(method) if method is not None else None,
        cases=_freeze(m["cases"]),
        aliases=tuple(m.get("aliases", ())),
    )


def dataset_info(name: str | DatasetInfo) -> DatasetInfo:
    """Everything the course knows about one dataset (provenance, licence, files, split).

    Parameters
    ----------
    name : str or DatasetInfo
        A name from :func:`list_datasets` or one of its aliases (case-insensitive), e.g.
        ``"msd-hippocampus"``, ``"hippocampus"``, ``"dsb2018"``, ``"stardist-sample"``.
        A :class:`DatasetInfo` is returned unchanged.

    Returns
    -------
    DatasetInfo

    Raises
    ------
    TypeError
        If `name` is not a string.
    ValueError
        If no dataset has that name; the message lists the names that exist.

    Notes
    -----
    Introduced in 01_medical_images.

    Examples
    --------
    >>> info = dataset_info("dsb2018")
    >>> info.folder, info.spatial_dims, info.licence["id"]
    ('dsb2018-nuclei', 2, 'CC0-1.0')
    >>> dataset_info("Hippocampus").name
    'msd-hippocampus'
    """
    if isinstance(name, DatasetInfo):
        return name
    if not isinstance(name, str):
        raise TypeError(f"name must be a dataset name (str), got {type(name).__name__}: {name!r}")
    canonical = _aliases().get(name.strip().lower())
    if canonical is None:
        known = ", ".join(repr(n) for n in list_datasets())
        raise ValueError(
            f"name must be one of {known} (or an alias of one), got {name!r}; "
            "for your own images use load_folder(path) instead"
        )
    return _build_info(canonical)


def _rank(seed: str, case_id: str) -> str:
    return hashlib.sha256(f"{seed}/{case_id}".encode("utf-8")).hexdigest()


def make_split(
    case_ids: Iterable[str],
    *,
    seed: str = "medseg-course-split-v1",
    fractions: Mapping[str, float] | None = None,
    strata: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """Split case ids into train/val/test, reproducibly, optionally stratified.

    This is how the fixed splits in the manifests were made; use it to split your own data the
    same way. The result depends only on the case ids and the seed (not on NumPy's random
    generator, whose streams may change between versions, nor on the order of `case_ids`).

    Parameters
    ----------
    case_ids : iterable of str
        Unique ids of the units to split. Split **per patient** (or per case when patients are
        unknown): every image of one patient must share one id, or it leaks between splits.
    seed : str
        Any string; a different seed gives a different split.
    fractions : mapping, optional
        ``{"val": f_val, "test": f_test}``; the rest is ``"train"``. Default 0.15 and 0.15.
    strata : mapping of str to str, optional
        Group of each case id (e.g. image category). Each group is split on its own with the
        same fractions, so every split has the same mix of groups.

    Returns
    -------
    dict
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted.

    Raises
    ------
    TypeError
        If `case_ids` is a single string.
    ValueError
        If ids repeat, fractions are out of range, or a case has no stratum.

    Notes
    -----
    Within each group, cases are ranked by ``sha256(f"{seed}/{case_id}")``; the first
    ``round(n * f_test)`` go to test, the next ``round(n * f_val)`` to val, the rest to train.

    Introduced in 01_medical_images.

    Examples
    --------
    >>> ids = [f"case_{i:02d}" for i in range(20)]
    >>> parts = make_split(ids)
    >>> [len(parts[s]) for s in ("train", "val", "test")]
    [14, 3, 3]
    >>> make_split(reversed(ids)) == parts
    True
    """
    if isinstance(case_ids, str):
        raise TypeError(f"case_ids must be an iterable of ids, got the single string {case_ids!r}")
    ids = [str(c) for c in case_ids]
    if len(set(ids)) != len(ids):
        repeated = sorted({c for c in ids if ids.count(c) > 1})
        raise ValueError(f"case_ids must be unique, got repeated ids {repeated[:10]}")
    fractions = {"val": 0.15, "test": 0.15} if fractions is None else dict(fractions)
    unknown = set(fractions) - {"val", "test", "train"}
    f_val, f_test = float(fractions.get("val", 0.0)), float(fractions.get("test", 0.0))
    if unknown or not (0 <= f_val and 0 <= f_test and f_val + f_test <= 1):
        raise ValueError(
            f"fractions must be {{'val': f, 'test': f}} with f >= 0 and a sum <= 1, got {fractions}"
        )
    groups: dict[str, list[str]] = defaultdict(list)
    for c in ids:
        if strata is None:
            groups[""].append(c)
        elif c not in strata:
            raise ValueError(f"strata must give a group for every case id, got none for {c!r}")
        else:
            groups[str(strata[c])].append(c)
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for key in sorted(groups):
        ranked = sorted(groups[key], key=lambda c: _rank(seed, c))
        n_test, n_val = round(len(ranked) * f_test), round(len(ranked) * f_val)
        out["test"] += ranked[:n_test]
        out["val"] += ranked[n_test : n_test + n_val]
        out["train"] += ranked[n_test + n_val :]
    return {k: sorted(v) for k, v in out.items()}


def _check_split(info: DatasetInfo, split: str | None) -> str:
    """Validate a split name for a dataset; None means its default."""
    if split is None:
        return "train" if info.has_split else "all"
    if not isinstance(split, str):
        raise TypeError(f"split must be one of {SPLITS}, got {type(split).__name__}: {split!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split != "all" and not info.has_split:
        raise ValueError(
            f"split must be 'all' for {info.name!r}, which has {len(info.case_ids)} case(s) and no "
            f"train/val/test split, got {split!r}"
        )
    return split
