"""``grade`` on submissions built from notebooks/00_welcome.ipynb (GitHub issue 2, item 6).

One ``grade`` call executes every kind of submission at once (solved, untouched, raising,
looping, with deleted cells, not a notebook, not identifiable); the tests read its rows.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import nbformat
import pytest

from medseg_course.execution import inject_solutions, read_notebook
from medseg_course.grading import COLUMNS, GradeRow, grade, identify, totals

ROOT = Path(__file__).resolve().parents[1]
WELCOME = ROOT / "notebooks" / "00_welcome.ipynb"
CELL_TIMEOUT = 20
TOTAL_TIMEOUT = 90


def _exercise_cell(nb, question):
    for cell in nb.cells:
        if cell.metadata.get("medseg", {}).get("question") == question:
            return cell
    raise AssertionError(f"00_welcome has no exercise cell for {question}")


def _write(nb, path):
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade all submissions in one call; return (rows by submission name, seconds, csv path)."""
    tmp = tmp_path_factory.mktemp("submissions")
    shipped = read_notebook(WELCOME)
    subs = {}

    subs["solved"] = _write(inject_solutions(shipped), tmp / "solved_00_welcome.ipynb")
    subs["untouched"] = _write(shipped, tmp / "untouched_00_welcome.ipynb")

    nb = read_notebook(WELCOME)
    _exercise_cell(nb, "foreground_fraction").source = 'raise ValueError("I gave up here")'
    subs["raises"] = _write(nb, tmp / "raises_00_welcome.ipynb")

    nb = read_notebook(WELCOME)
    _exercise_cell(nb, "foreground_fraction").source = (
        "def my_foreground_fraction(mask):\n    return mask.sum() / 0.0 + undefined_name")
    subs["function_raises"] = _write(nb, tmp / "function_raises_00_welcome.ipynb")

    nb = read_notebook(WELCOME)
    _exercise_cell(nb, "count_objects").source = "while True:\n    pass"
    subs["loops"] = _write(nb, tmp / "loops_00_welcome.ipynb")

    nb = inject_solutions(read_notebook(WELCOME))
    nb.cells = [c for c in nb.cells if "count_objects.check(" not in c.source]
    subs["deleted"] = _write(nb, tmp / "deleted_00_welcome.ipynb")

    (tmp / "broken_00_welcome.ipynb").write_text('{"cells": [', encoding="utf-8")
    subs["not_json"] = tmp / "broken_00_welcome.ipynb"

    nb = read_notebook(WELCOME)
    del nb.metadata["medseg"]
    subs["anonymous"] = _write(nb, tmp / "homework.ipynb")

    out = tmp / "grades.csv"
    start = time.monotonic()
    rows = grade([str(p) for p in subs.values()], out, cell_timeout=CELL_TIMEOUT,
                 total_timeout=TOTAL_TIMEOUT, jobs=2, executed_dir=tmp / "executed",
                 progress=False)
    seconds = time.monotonic() - start
    by_name = {key: [r for r in rows if r.submission == str(path)] for key, path in subs.items()}
    return by_name, seconds, out, rows


def _row(by_name, sub, question):
    (row,) = [r for r in by_name[sub] if r.question == question]
    return row


def test_one_row_per_submission_and_question(graded):
    by_name, _, _, rows = graded
    for sub, sub_rows in by_name.items():
        expected = [""] if sub == "anonymous" else ["foreground_fraction", "count_objects"]
        assert [r.question for r in sub_rows] == expected, sub
    assert all(isinstance(r, GradeRow) for r in rows)


def test_whole_call_respects_its_limits(graded):
    _, seconds, _, _ = graded
    # Eight submissions, six executed two at a time; the loop costs one cell limit.
    assert seconds < TOTAL_TIMEOUT + 30


def test_solved_gets_full_points(graded):
    by_name = graded[0]
    for row in by_name["solved"]:
        assert row.outcome == "correct"
        assert row.points == row.max_points > 0
        assert row.status == "ok"
    assert sum(r.points for r in by_name["solved"]) == 3


def test_untouched_is_not_attempted(graded):
    for row in graded[0]["untouched"]:
        assert row.outcome == "not attempted"
        assert row.points == 0
        assert "not attempted" in row.reason


def test_top_level_error_is_explained(graded):
    row = _row(graded[0], "raises", "foreground_fraction")
    assert row.points == 0 and row.outcome == "not run"
    assert "ValueError: I gave up here" in row.reason
    assert "NameError" in row.reason  # the check cell then failed
    # The other question is unaffected.
    assert _row(graded[0], "raises", "count_objects").outcome == "not attempted"


def test_student_function_raising_is_incorrect(graded):
    row = _row(graded[0], "function_raises", "foreground_fraction")
    assert row.outcome == "incorrect" and row.points == 0
    assert "raised" in row.reason and "on the inputs" in row.reason


def test_infinite_loop_names_the_cell_and_the_limit(graded):
    row = _row(graded[0], "loops", "count_objects")
    assert row.outcome == "not run" and row.points == 0
    assert row.status == "timeout"
    assert f"time limit of {CELL_TIMEOUT} s" in row.reason
    assert "interrupted" in row.reason and "cell 19" in row.reason
    # Questions before the loop are still graded.
    assert _row(graded[0], "loops", "foreground_fraction").outcome == "not attempted"
    assert row.seconds >= CELL_TIMEOUT


def test_deleted_check_cell(graded):
    row = _row(graded[0], "deleted", "count_objects")
    assert row.outcome == "not run" and row.points == 0
    assert "missing" in row.reason and "deleted" in row.reason
    assert "count_objects.check" in row.reason
    assert _row(graded[0], "deleted", "foreground_fraction").outcome == "correct"


def test_invalid_json_is_reported(graded):
    rows = graded[0]["not_json"]
    assert {r.outcome for r in rows} == {"not run"}
    assert all(r.points == 0 and "not valid JSON" in r.reason for r in rows)
    assert all(r.notebook == "00_welcome" for r in rows)


def test_unidentifiable_notebook(graded):
    (row,) = graded[0]["anonymous"]
    assert row.outcome == "ungraded" and row.notebook == ""
    assert "cannot tell which course notebook" in row.reason


def test_csv_has_the_same_rows(graded):
    _, _, out, rows = graded
    with open(out, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == COLUMNS
        read = list(reader)
    assert len(read) == len(rows)
    assert [r["question"] for r in read] == [r.question for r in rows]
    assert float(read[0]["points"]) == rows[0].points


def test_executed_submissions_are_saved_with_their_feedback(graded):
    out = graded[2]
    executed = read_notebook(out.parent / "executed" / "solved_00_welcome.ipynb")
    assert "Well done" in str(executed.cells)
    assert not (out.parent / "executed" / "broken_00_welcome.ipynb").exists()


def test_totals(graded):
    rows = graded[3]
    by_sub = {t["submission"]: t for t in totals(rows)}
    solved = next(t for s, t in by_sub.items() if s.endswith("solved_00_welcome.ipynb"))
    assert solved["points"] == solved["max_points"] == 3


def test_identify_prefers_metadata_then_file_name():
    nb = read_notebook(WELCOME)
    assert identify("whatever.ipynb", nb) == ("00_welcome", "metadata")
    assert identify("Bob - 00_welcome (2).ipynb")[0] == "00_welcome"
    stem, why = identify("homework.ipynb")
    assert stem is None and "rename" in why


def test_grade_refuses_missing_files_and_bad_jobs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such submission"):
        grade([tmp_path / "nope.ipynb"], None, progress=False)
    path = tmp_path / "x_00_welcome.ipynb"
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        grade([path], None, jobs=0, progress=False)
