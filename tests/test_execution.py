"""medseg_course.execution: solutions injection, records, per-cell and total time limits."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest

from medseg_course.exercises.engine import RESULT_MIME
from medseg_course.exercises.welcome import QUESTIONS
from medseg_course.execution import (
    InvalidNotebookError,
    check_records,
    execute_notebook,
    inject_solutions,
    read_notebook,
    repo_root,
    resolve_notebook,
)

ROOT = Path(__file__).resolve().parents[1]
WELCOME = ROOT / "notebooks" / "00_welcome.ipynb"


def _notebook(*sources):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def _gone(pid, wait=5.0):
    """True once ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        except OSError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            state = "R"
        if state in {"Z", "X"}:
            return True
        time.sleep(0.1)
    return False


# -- inject_solutions (no kernel) ----------------------------------------------------------

def test_inject_solutions_replaces_every_exercise_cell():
    shipped = read_notebook(WELCOME)
    solved = inject_solutions(shipped)
    by_name = {q.name: q for q in QUESTIONS}
    seen = set()
    for before, after in zip(shipped.cells, solved.cells):
        name = before.metadata.get("medseg", {}).get("question")
        if name is None:
            assert after.source == before.source
        else:
            assert after.source == by_name[name].solution_code
            seen.add(name)
    assert seen == set(by_name)
    # The input is not modified.
    assert read_notebook(WELCOME).cells == shipped.cells


def test_inject_solutions_unknown_question_is_a_clear_error():
    nb = read_notebook(WELCOME)
    cell = next(c for c in nb.cells if "exercise" in c.metadata.get("tags", []))
    cell.metadata["medseg"]["question"] = "no_such_question"
    with pytest.raises(ValueError, match="no_such_question.*does not define.*foreground_fraction"):
        inject_solutions(nb)


def test_inject_solutions_needs_to_know_the_notebook():
    nb = read_notebook(WELCOME)
    del nb.metadata["medseg"]
    with pytest.raises(ValueError, match="pass stem="):
        inject_solutions(nb)
    assert inject_solutions(nb, stem="00_welcome").cells != nb.cells


# -- reading -----------------------------------------------------------------------------------

def test_read_notebook_reports_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{oops", encoding="utf-8")
    with pytest.raises(InvalidNotebookError, match="not valid JSON"):
        read_notebook(bad)
    bad.write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(InvalidNotebookError, match="not a Jupyter notebook"):
        read_notebook(bad)
    with pytest.raises(FileNotFoundError):
        read_notebook(tmp_path / "missing.ipynb")


def test_execute_invalid_notebook_does_not_raise(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text("not json at all", encoding="utf-8")
    report = execute_notebook(bad, cell_timeout=10, total_timeout=10)
    assert report.status == "invalid notebook"
    assert "not valid JSON" in report.message and report.notebook is None


def test_time_limits_are_validated():
    with pytest.raises(ValueError, match="cell_timeout must be a positive number"):
        execute_notebook(_notebook("1"), cell_timeout=0, total_timeout=10)


def test_check_records_last_one_wins():
    def bundle(outcome, points):
        return nbformat.v4.new_output("display_data", data={
            "text/plain": "x", RESULT_MIME: {"question": "00_welcome/count_objects",
                                             "name": "count_objects", "outcome": outcome,
                                             "points": points, "max_points": 1}})
    nb = _notebook("a", "b")
    nb.cells[0].outputs = [bundle("incorrect", 0)]
    nb.cells[1].outputs = [bundle("correct", 1)]
    (rec,) = check_records(nb)
    assert rec["outcome"] == "correct" and rec["cell_index"] == 1


def test_resolve_notebook_by_stem_prefix_and_path():
    assert resolve_notebook("00")[0] == "00_welcome"
    assert resolve_notebook("00_welcome")[1] == repo_root() / "notebooks" / "00_welcome.ipynb"
    assert resolve_notebook(str(WELCOME)) == ("00_welcome", WELCOME)
    with pytest.raises(ValueError, match="not a course notebook"):
        resolve_notebook("99_nothing")
    with pytest.raises(FileNotFoundError):
        resolve_notebook("nowhere/x.ipynb")


# -- execution (one fresh kernel each) -----------------------------------------------------

def test_errors_records_env_and_cwd(tmp_path):
    display = json.dumps({"text/plain": "r", RESULT_MIME: {
        "question": "demo/q", "name": "q", "outcome": "correct", "points": 1, "max_points": 1}})
    nb = _notebook(
        "import os; print(os.environ['MEDSEG_TEST_VAR'], os.getcwd())",
        "1 / 0",
        f"from IPython.display import display; display({display}, raw=True)",
    )
    report = execute_notebook(nb, cell_timeout=20, total_timeout=60,
                              env={"MEDSEG_TEST_VAR": "hello"}, cwd=tmp_path)
    assert report.status == "errors"
    out = report.notebook.cells[0].outputs[0].text.split()
    assert out == ["hello", str(tmp_path.resolve())]
    (err,) = report.errors
    assert (err.index, err.ename, err.timeout) == (1, "ZeroDivisionError", False)
    assert "cell 1" in err.describe() and "ZeroDivisionError" in err.describe()
    assert [r["name"] for r in report.records] == ["q"]  # allow_errors: execution went on


def test_cell_timeout_interrupts_and_goes_on():
    nb = _notebook("while True:\n    pass", "print('after')")
    report = execute_notebook(nb, cell_timeout=2, total_timeout=60)
    assert report.status == "timeout" and not report.killed
    (err,) = report.errors
    assert err.index == 0 and err.timeout and "time limit of 2 s" in err.describe()
    assert report.notebook.cells[1].outputs[0].text == "after\n"


def test_total_timeout_kills_the_kernel_and_keeps_partial_results():
    nb = _notebook(
        "import os, subprocess\n"
        "child = subprocess.Popen(['sleep', '300'])\n"
        "print(os.getpid(), child.pid)",
        # Ignores the per-cell interrupt: only the total limit can stop it.
        "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
        "print('never')",
    )
    start = time.monotonic()
    report = execute_notebook(nb, cell_timeout=2, total_timeout=8)
    assert time.monotonic() - start < 8 + 5
    assert report.status == "timeout" and report.killed
    assert report.last_cell == 1
    assert any(e.index == 1 and e.ename == "TotalTimeoutError" for e in report.errors)
    assert "total time limit of 8 s" in report.message
    kernel_pid, child_pid = map(int, report.notebook.cells[0].outputs[0].text.split())
    assert _gone(kernel_pid), "the kernel survived the total time limit"
    assert _gone(child_pid), "a process the kernel started survived the total time limit"
    assert report.notebook.cells[2].get("outputs") == []


def test_kernel_death_is_reported():
    report = execute_notebook(_notebook("import os\nos._exit(1)", "print(1)"), cell_timeout=20,
                              total_timeout=60)
    assert report.status == "errors"
    assert any(e.ename == "DeadKernelError" and e.index == 0 for e in report.errors)
    assert "kernel died" in report.message
