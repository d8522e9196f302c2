"""The Part I results table: every classical method on the DSB2018 validation split.

One call reproduces the numbers that Parts II and III must beat::

    from medseg_course.classical.results import classical_results
    table = classical_results()          # DSB2018 validation split, every method
    print(table.to_markdown())

Each method segments every image with the defaults its notebook recommends (chosen on the training
split); the pixel classifier is trained on the training split only. Dice is computed per image with
:func:`medseg_course.metrics.dice` and averaged per image category and over all images.

Introduced in 05_clustering.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from medseg_course import metrics

__all__ = ["METHODS", "ResultsTable", "classical_results", "modality"]


def _methods() -> dict[str, Callable]:
    from medseg_course.classical import clustering, region_growing, thresholding

    return {
        "otsu": thresholding.segment_otsu,
        "smoothed otsu": thresholding.segment_smoothed_otsu,
        "multi-otsu": thresholding.segment_multiotsu,
        "adaptive threshold": thresholding.segment_adaptive,
        "region growing": region_growing.segment_region_growing,
        "watershed": region_growing.segment_watershed,
        "k-means": clustering.segment_kmeans,
        "fuzzy c-means": clustering.segment_fcm,
        "spatial fuzzy c-means": clustering.segment_spatial_fcm,
    }


#: Method names in table order; ``"pixel classifier"`` is trained on the training split first.
METHODS: tuple[str, ...] = ("otsu", "smoothed otsu", "multi-otsu", "adaptive threshold", "region growing",
                            "watershed", "pixel classifier", "k-means", "fuzzy c-means",
                            "spatial fuzzy c-means")


def modality(category: str) -> str:
    """``"fluorescence"`` or ``"brightfield"`` from a DSB2018 category such as ``"fluorescence_gray_256x256"``.

    Examples
    --------
    >>> modality("brightfield_stained_color_256x320")
    'brightfield'
    """
    return str(category).split("_", 1)[0]


@dataclass
class ResultsTable:
    """Dice of every method on every image, with per-group means.

    Attributes
    ----------
    dice : dict of str to (N,) ndarray
        Per-image Dice of each method, in the order of ``case_ids``.
    case_ids, categories : list of str
    split : str
    """

    dice: dict[str, np.ndarray]
    case_ids: list[str]
    categories: list[str]
    split: str
    groups: list[str] = field(init=False)

    def __post_init__(self):
        self.groups = sorted({modality(c) for c in self.categories})

    def mean(self, method: str, group: str | None = None) -> float:
        """Mean Dice of ``method`` over all images, or over one modality (``"fluorescence"``)."""
        if method not in self.dice:
            raise KeyError(f"no method {method!r} in the table; it has {list(self.dice)}")
        values = self.dice[method]
        if group is not None:
            keep = np.array([modality(c) == group for c in self.categories])
            if not keep.any():
                raise KeyError(f"no image of group {group!r}; groups: {self.groups}")
            values = values[keep]
        return float(np.mean(values))

    def best(self) -> tuple[str, float]:
        """The method with the highest mean Dice over all images, and that Dice."""
        name = max(self.dice, key=self.mean)
        return name, self.mean(name)

    def rows(self) -> list[dict]:
        """One dict per method: ``method``, one mean per group, ``all``."""
        counts = {g: sum(modality(c) == g for c in self.categories) for g in self.groups}
        return [{"method": m, **{f"{g} ({counts[g]})": self.mean(m, g) for g in self.groups},
                 f"all ({len(self.case_ids)})": self.mean(m)} for m in self.dice]

    def to_markdown(self) -> str:
        """The table as Markdown (what BENCHMARKS.md and the notebooks show)."""
        rows = self.rows()
        header = list(rows[0])
        lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
        for r in rows:
            lines.append("| " + " | ".join([r["method"]] + [f"{r[h]:.3f}" for h in header[1:]]) + " |")
        return "\n".join(lines)


def classical_results(split: str = "val", methods: Sequence[str] | None = None, *, dataset="dsb2018",
                      progress: bool = True) -> ResultsTable:
    """Run every classical method on a DSB2018 split and tabulate Dice per method and modality.

    Parameters
    ----------
    split : {"val", "test", "train"}
        The split to score (the defaults were chosen on ``"train"``; report ``"val"``).
    methods : sequence of str, optional
        A subset of :data:`METHODS` (default: all).
    dataset : str
        The dataset name for :func:`medseg_course.data.load_dataset`.
    progress : bool
        Show a progress bar over methods.

    Returns
    -------
    ResultsTable

    Raises
    ------
    ValueError
        For an unknown method name.

    Notes
    -----
    Deterministic: every method is seeded, so two calls give the same table on the same machine.

    Introduced in 05_clustering.
    """
    from medseg_course.data import load_dataset

    methods = list(METHODS if methods is None else methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    samples = list(load_dataset(dataset, split=split, progress=False))
    segmenters = _methods()
    if "pixel classifier" in methods:
        from medseg_course.classical.classifiers import fit_pixel_classifier

        model = fit_pixel_classifier(list(load_dataset(dataset, split="train", progress=False)), seed=0)
        segmenters["pixel classifier"] = model.predict
    dice = {}
    for name in tqdm(methods, desc="classical methods", disable=not progress):
        segment = segmenters[name]
        dice[name] = np.array([metrics.dice(segment(s.image, s.category), s.mask > 0) for s in samples])
    return ResultsTable(dice=dice, case_ids=[s.case_id for s in samples],
                        categories=[s.category for s in samples], split=split)
