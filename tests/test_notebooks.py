"""Second pass over the course: every notebook, with each exercise filled by its reference solution.

The first pass (nbval, ``--nbval-lax``) executes the notebooks as shipped, exercises untouched, and
fails if any cell raises. This pass injects each question's ``solution_code`` into its exercise cell
(the harness does it in memory; the notebooks stay as students get them) and asserts that every
check of the notebook ran and reported correct.

The same run checks the output of the notebook's deterministic cells: cells tagged ``check-output``
carry their expected text in ``metadata.medseg.expected_output`` (the notebooks are stored without
outputs, so nbval has nothing to compare them with).
"""

from pathlib import Path

import pytest

from medseg_course import course
from medseg_course.execution import execute_notebook, expected_questions, inject_solutions, read_notebook

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.mark.parametrize("entry", course.NOTEBOOKS, ids=lambda e: e.stem)
def test_reference_solutions_make_every_check_correct(entry):
    solved = inject_solutions(read_notebook(NOTEBOOKS_DIR / entry.filename), entry.stem)
    report = execute_notebook(solved, cell_timeout=900, total_timeout=1800, cwd=NOTEBOOKS_DIR,
                              env={"MEDSEG_FAST": "1"}, allow_errors=False)
    assert report.status == "ok", report.message
    outcomes = {r["name"]: r["outcome"] for r in report.records}
    expected = [q.name for q in expected_questions(entry.stem)]
    assert expected, f"{entry.stem} declares no questions"
    assert outcomes == {name: "correct" for name in expected}

    checked = [c for c in report.notebook.cells if "check-output" in c.metadata.get("tags", [])]
    for cell in checked:
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert printed == cell.metadata["medseg"]["expected_output"], (
            f"cell {cell.id} of {entry.stem} printed something else than its "
            f"metadata.medseg.expected_output; if the change is intended, update that field.\n{printed}")
