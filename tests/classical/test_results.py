"""The Part I results table: aggregation checked by hand, reproducible, errors explained."""

from pathlib import Path

import numpy as np
import pytest

from medseg_course.classical.results import ResultsTable, classical_results, modality

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"


def test_table_means_by_hand():
    table = ResultsTable(dice={"a": np.array([0.5, 1.0, 0.0]), "b": np.array([1.0, 1.0, 1.0])},
                         case_ids=["x", "y", "z"], split="val",
                         categories=["fluorescence_gray_256x256", "fluorescence_gray_360x360",
                                     "brightfield_stained_color_256x320"])
    assert table.groups == ["brightfield", "fluorescence"]
    assert table.mean("a") == pytest.approx(0.5)
    assert table.mean("a", "fluorescence") == pytest.approx(0.75)
    assert table.mean("a", "brightfield") == 0.0
    assert table.best() == ("b", 1.0)
    assert "| a | 0.000 | 0.750 | 0.500 |" in table.to_markdown()
    with pytest.raises(KeyError, match="no method 'c'"):
        table.mean("c")


@pytest.mark.skipif(not SHARED.exists(), reason="needs the dataset copies in ../shared/datasets")
def test_real_table_is_reproducible(monkeypatch):
    monkeypatch.setenv("MEDSEG_DATA_DIR", str(SHARED))
    first = classical_results("val", ["otsu", "k-means"], progress=False)
    second = classical_results("val", ["otsu", "k-means"], progress=False)
    assert list(first.dice) == ["otsu", "k-means"]
    for name in first.dice:
        assert np.array_equal(first.dice[name], second.dice[name])
        assert 0.5 < first.mean(name) <= 1.0
    assert set(first.groups) == {"fluorescence", "brightfield"}
    assert modality(first.categories[0]) in first.groups


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match=r"unknown method\(s\) \['magic'\]"):
        classical_results(methods=["magic"])
