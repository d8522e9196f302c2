"""The ``medseg-course`` command line (``medseg_course.cli.main``)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from medseg_course import course, notebook_links
from medseg_course.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
WELCOME = ROOT / "notebooks" / "00_welcome.ipynb"


# -- parsing -----------------------------------------------------------------------------------

def test_parser_defaults_and_options():
    parser = build_parser()
    args = parser.parse_args(["run"])
    assert args.notebooks == [] and args.out == "runs/latest" and not args.fast
    args = parser.parse_args(["run", "01", "00_welcome", "--fast", "--cell-timeout", "30",
                              "--out", "x"])
    assert args.notebooks == ["01", "00_welcome"] and args.fast
    assert args.cell_timeout == 30.0 and args.out == "x"
    args = parser.parse_args(["grade", "a.ipynb", "b.ipynb", "--out", "g.csv", "--timeout", "0",
                              "--jobs", "2"])
    assert args.submissions == ["a.ipynb", "b.ipynb"] and args.timeout is None and args.jobs == 2
    assert parser.parse_args(["sync-notebooks", "--check"]).check


@pytest.mark.parametrize("argv", [
    [], ["frobnicate"], ["grade", "a.ipynb"], ["run", "--cell-timeout", "-3"],
    ["grade", "a.ipynb", "--out", "g.csv", "--jobs", "0"],
])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "sync-notebooks" in capsys.readouterr().out


def test_unknown_notebook_is_one_line(capsys, tmp_path):
    assert main(["run", "99_nothing", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a course notebook" in err and "Traceback" not in err


def test_missing_submission_is_one_line(capsys, tmp_path):
    assert main(["grade", str(tmp_path / "nope.ipynb"), "--out", str(tmp_path / "g.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such submission file" in err


# -- sync-notebooks ----------------------------------------------------------------------------

@pytest.fixture
def only_existing_notebooks(monkeypatch):
    """Restrict the course to the notebooks that exist in this checkout."""
    present = tuple(nb for nb in course.NOTEBOOKS if (ROOT / "notebooks" / nb.filename).exists())
    monkeypatch.setattr(notebook_links, "NOTEBOOKS", present)
    return present


def test_sync_check_on_the_repository(only_existing_notebooks, capsys):
    code = main(["sync-notebooks", "--check"])
    out = capsys.readouterr().out
    assert code == 0, f"notebooks out of sync; run `medseg-course sync-notebooks`:\n{out}"
    assert "in sync" in out


def test_sync_reports_missing_notebooks_without_crashing(tmp_path, capsys):
    (tmp_path / "notebooks").mkdir()
    shutil.copy(WELCOME, tmp_path / "notebooks")
    missing = [nb.filename for nb in notebook_links.NOTEBOOKS
               if not (tmp_path / "notebooks" / nb.filename).exists()]
    if not missing:
        pytest.skip("every course notebook exists")
    assert main(["sync-notebooks", "--check", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert missing[0] in err and "Traceback" not in err


def test_sync_check_lists_out_of_sync_files_then_fixes_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(notebook_links, "NOTEBOOKS", (course.notebook("00_welcome"),))
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.read(WELCOME, as_version=4)
    nb.cells = nb.cells[2:]  # lose the badge and install cells
    target = tmp_path / "notebooks" / "00_welcome.ipynb"
    nbformat.write(nb, target)
    assert main(["sync-notebooks", "--check", "--root", str(tmp_path)]) == 1
    assert str(target) in capsys.readouterr().out
    assert main(["sync-notebooks", "--root", str(tmp_path)]) == 0
    assert main(["sync-notebooks", "--check", "--root", str(tmp_path)]) == 0


# -- run and grade (one kernel each) -----------------------------------------------------------

def test_run_welcome_fast(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "00", "--fast", "--out", str(out), "--cell-timeout", "60"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "00_welcome" in printed and "not attempted" in printed
    executed = nbformat.read(out / "00_welcome.ipynb", as_version=4)
    assert any(c.get("outputs") for c in executed.cells if c.cell_type == "code")
    assert "budget: fast" in json.dumps(executed.cells[4].outputs)  # MEDSEG_FAST=1 reached it
    summary = json.loads((out / "summary.json").read_text())
    (row,) = summary["notebooks"]
    assert row["status"] == "ok" and row["not_attempted"] == 2 and summary["fast"]
    with open(out / "summary.csv", newline="") as f:
        assert next(csv.DictReader(f))["notebook"] == "00_welcome"


def test_run_reports_a_failing_notebook(tmp_path, capsys):
    nb = nbformat.read(WELCOME, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('broken on purpose')"))
    path = tmp_path / "00_welcome.ipynb"
    nbformat.write(nb, path)
    code = main(["run", str(path), "--out", str(tmp_path / "run")])
    printed = capsys.readouterr().out
    assert code == 1
    assert "FAILED 00_welcome" in printed and "RuntimeError" in printed


def test_grade_exits_0_even_when_students_fail(tmp_path, capsys):
    sub = tmp_path / "alice_00_welcome.ipynb"
    sub.write_text("{ not a notebook", encoding="utf-8")
    out = tmp_path / "grades.csv"
    assert main(["grade", str(sub), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "0/3" in printed and "not valid JSON" in printed
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["question"] for r in rows] == ["foreground_fraction", "count_objects"]
