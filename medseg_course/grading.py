"""Grade students' notebooks: run each one in a fresh kernel and collect its checks.

``medseg-course grade`` calls :func:`grade`. Each submission (a ``.ipynb`` file a student hands
in) is executed from top to bottom in a fresh kernel, with a per-cell and a total time limit
(:func:`medseg_course.execution.execute_notebook`). Every check the notebook runs displays a
machine-readable record (:data:`medseg_course.exercises.engine.RESULT_MIME`); the grade of a
question is its **last** record. The output is a CSV with one row per (submission, question).

Which questions are expected comes from the course, not from the submission: the notebook is
identified by its ``metadata.medseg.notebook`` (or, failing that, by a course notebook's name in
the file name, e.g. ``alice_00_welcome.ipynb``), and its exercise module's ``QUESTIONS`` list the
questions. A question whose check never ran (its cell deleted, never reached because of a time
limit, the kernel died, an earlier error) still gets a row, with 0 points and a reason.

Threat model
------------
This is **feedback grading**, not an exam system:

* The checks run inside the student's own kernel, next to the student's code. A student who
  wants to can forge a record (display a fake "correct" bundle), replace a question object, or
  edit the check cells. The grader limits the damage only a little (points are taken from the
  course's question definitions, not from the record, and only the last record per question of
  the identified notebook counts); it does not prevent cheating. Use it to give fast, consistent
  feedback and a first pass at marks, and read the notebooks whose grades matter.
* Executing a submission runs arbitrary code with the permissions of the grading account: it
  can read and write files, use the network and start processes. The time limits stop runaway
  code, not malicious code. Grade untrusted notebooks only inside a sandbox: a container or
  virtual machine without credentials, network access or valuable files (for example
  ``docker run --rm --network none -v "$PWD/submissions:/subs" <course image>
  medseg-course grade /subs/*.ipynb --out /subs/grades.csv``).

Introduced in 00_welcome (see its section "How exercises work").
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from medseg_course import course
from medseg_course.execution import (
    ExecutionReport,
    InvalidNotebookError,
    exercise_question,
    execute_notebook,
    expected_questions,
    notebook_stem,
    read_notebook,
    repo_root,
)

__all__ = ["GradeRow", "COLUMNS", "OUTCOMES", "grade", "grade_one", "identify", "totals"]

#: The CSV's columns, in order.
COLUMNS = ["submission", "notebook", "question", "points", "max_points", "outcome", "reason",
           "seconds", "status"]

#: Outcomes in the CSV: the engine's three, ``"not run"`` (the question's check displayed no
#: record) and ``"ungraded"`` (the submission's questions are unknown: one row, question "").
OUTCOMES = ("correct", "incorrect", "not attempted", "not run", "ungraded")


@dataclass(frozen=True)
class GradeRow:
    """One row of the grades CSV: one question of one submission.

    Attributes
    ----------
    submission : str
        The submission's path, as given.
    notebook : str
        The course notebook it was identified as ("" if it could not be).
    question : str
        The question's name ("" on an ``"ungraded"`` row).
    points, max_points : float
        ``max_points`` comes from the course's question definition.
    outcome : str
        One of :data:`OUTCOMES`.
    reason : str
        The check's message, or why there is no grade.
    seconds : float
        How long the submission took to execute (the same on each of its rows).
    status : str
        The submission's execution status (:data:`medseg_course.execution.STATUSES`, or
        ``"not run"`` when it was not executed).
    """

    submission: str
    notebook: str
    question: str
    points: float
    max_points: float
    outcome: str
    reason: str
    seconds: float
    status: str


def identify(path: str | os.PathLike, nb=None) -> tuple[str | None, str]:
    """Which course notebook a submission is, and how that was decided.

    Parameters
    ----------
    path : path
        The submission's file name (only its name is used).
    nb : NotebookNode, optional
        The submission, if it could be read: its ``metadata.medseg.notebook`` comes first.

    Returns
    -------
    stem : str or None
    how : str
        ``"metadata"``, ``"file name"`` or an explanation of why it could not be identified.

    Examples
    --------
    >>> identify("alice-00_welcome (1).ipynb")
    ('00_welcome', 'file name')
    """
    stems = [nb_.stem for nb_ in course.NOTEBOOKS]
    declared = notebook_stem(nb) if nb is not None else None
    if declared in stems:
        return declared, "metadata"
    name = re.sub(r"[\s\-]+", "_", Path(path).name.lower())
    found = sorted((s for s in stems if s.lower() in name), key=len, reverse=True)
    if found:
        return found[0], "file name"
    why = (f"its metadata.medseg.notebook is {declared!r}, not a course notebook"
           if declared else "it has no metadata.medseg.notebook")
    return None, (f"cannot tell which course notebook this is: {why}, and its file name contains "
                  f"no course notebook name ({', '.join(stems)}); rename the file to include one, "
                  f"e.g. student_{stems[0]}.ipynb")


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("The notebook continues with")]
    return " ".join(lines)


def _check_pattern(name: str) -> re.Pattern:
    return re.compile(rf"\b{re.escape(name)}\s*\.\s*check\s*\(")


def _check_cells(cells, name: str) -> list[int]:
    pattern = _check_pattern(name)
    return [i for i, c in enumerate(cells)
            if c.get("cell_type") == "code" and pattern.search(c.get("source", ""))]


def _exercise_cells(cells, name: str) -> list[int]:
    return [i for i, c in enumerate(cells) if exercise_question(c) == name]


def _shipped(stem: str, notebooks_dir: Path | None):
    if notebooks_dir is None:
        return None
    path = notebooks_dir / f"{stem}.ipynb"
    try:
        return read_notebook(path)
    except (FileNotFoundError, InvalidNotebookError):
        return None


def _shipped_ids(shipped, find, name: str) -> str:
    """`` (id X in the shipped notebook)`` for the cells ``find`` locates there, or ""."""
    if shipped is None:
        return ""
    ids = [shipped.cells[i].get("id") for i in find(shipped.cells, name)]
    ids = [i for i in ids if i]
    return f" (id {', '.join(ids)} in the shipped notebook)" if ids else ""


def _missing_reason(q, nb, report: ExecutionReport, shipped) -> str:
    """Why question ``q`` has no record in ``report``."""
    cells = report.notebook.cells if report.notebook is not None else nb.cells
    checks = _check_cells(cells, q.name)
    exercises = _exercise_cells(cells, q.name)
    deleted = []
    if not exercises:
        deleted.append(f"its exercise cell{_shipped_ids(shipped, _exercise_cells, q.name)} "
                       "is missing")
    if not checks:
        deleted.append(f"the cell that calls `{q.name}.check(...)`"
                       f"{_shipped_ids(shipped, _check_cells, q.name)} is missing")
    if deleted:
        return ("no check ran for this question: " + " and ".join(deleted)
                + "; were cells deleted? Restore them from the course notebook")
    check_at = checks[-1]
    if report.notebook is None:
        return f"no check ran: {report.message or 'the notebook did not execute'}"
    if report.killed and (report.last_cell is None or check_at >= report.last_cell):
        where = f" while cell {report.last_cell} was running" if report.last_cell is not None else ""
        return (f"never reached: the notebook ran past its total time limit{where} and was "
                f"stopped before the check in cell {check_at} completed")
    dead = next((e for e in report.errors if e.ename == "DeadKernelError"), None)
    if dead is not None and (dead.index is None or check_at >= dead.index):
        return (f"never reached: the kernel died while cell {dead.index} was running "
                f"(out of memory, or the code exited the process), before the check in cell "
                f"{check_at}")
    parts = []
    for i in exercises:
        err = report.error_in(i)
        if err is not None and i < check_at:
            parts.append(f"the exercise {err.describe()}")
    err = report.error_in(check_at)
    if err is not None:
        parts.append(f"then its check in {err.describe()}" if parts else
                     f"its check in {err.describe()}")
        return "the check did not complete: " + "; ".join(parts)
    if cells[check_at].get("execution_count") is None:
        earlier = [e for e in report.errors if e.index is not None and e.index < check_at]
        cause = (f" (execution stopped after {earlier[0].describe()})" if earlier
                 else f" ({report.message})" if report.message else "")
        return f"the check in cell {check_at} never ran{cause}"
    return (f"the check in cell {check_at} ran but displayed no result: was its output cleared, "
            "or the check call changed?")


def _notes(q, report: ExecutionReport) -> str:
    """Errors in the question's exercise cell(s), worth noting even when the check ran."""
    if report.notebook is None:
        return ""
    notes = []
    for i in _exercise_cells(report.notebook.cells, q.name):
        err = report.error_in(i)
        if err is not None:
            notes.append(f"note: the exercise {err.describe()}")
    return "; ".join(notes)


def grade_one(submission: str | os.PathLike, *, cell_timeout: float | None = 300,
              total_timeout: float | None = 1800, fast: bool = True,
              notebooks_dir: str | os.PathLike | None = None,
              workdir: str | os.PathLike | None = None,
              save_executed: str | os.PathLike | None = None) -> list[GradeRow]:
    """Grade one submission; see :func:`grade` for the parameters.

    ``save_executed`` is a file path where the executed submission (with the feedback of its
    checks) is written, when it executed.

    Returns
    -------
    list of GradeRow
        One per expected question, or a single ``"ungraded"`` row.
    """
    sub = str(submission)
    path = Path(submission)
    nb = None
    invalid = ""
    try:
        nb = read_notebook(path)
    except InvalidNotebookError as exc:
        invalid = str(exc).replace(str(path), "the file", 1)  # rows already name the file
    stem, how = identify(path, nb)
    if stem is None:
        reason = f"{invalid}; also, {how}" if invalid else how
        return [GradeRow(sub, "", "", 0.0, 0.0, "ungraded", reason, 0.0, "not run")]
    try:
        questions = expected_questions(stem)
    except Exception as exc:  # the exercise module is missing or broken
        module = course.notebook(stem).exercises
        return [GradeRow(sub, stem, "", 0.0, 0.0, "ungraded",
                         f"cannot load the questions of {stem} ({module}): "
                         f"{type(exc).__name__}: {exc}", 0.0, "not run")]
    if not questions:
        return [GradeRow(sub, stem, "", 0.0, 0.0, "ungraded",
                         f"{stem} has no graded questions", 0.0, "not run")]
    if nb is None:
        return [GradeRow(sub, stem, q.name, 0.0, q.points, "not run",
                         f"{invalid} (identified as {stem} by its file name)", 0.0,
                         "invalid notebook") for q in questions]

    with tempfile.TemporaryDirectory(prefix="medseg-grade-") as tmp:
        report = execute_notebook(nb, cell_timeout=cell_timeout, total_timeout=total_timeout,
                                  env={"MEDSEG_FAST": "1" if fast else "0"},
                                  cwd=workdir if workdir is not None else tmp, allow_errors=True)
    if save_executed is not None and report.notebook is not None:
        import nbformat

        Path(save_executed).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(report.notebook, save_executed)
    shipped = _shipped(stem, Path(notebooks_dir) if notebooks_dir is not None else None)
    seconds = round(report.elapsed, 1)
    rows = []
    for q in questions:
        record = report.record_for(q.id)
        if record is None or record.get("outcome") not in OUTCOMES[:3]:
            reason = _missing_reason(q, nb, report, shipped)
            rows.append(GradeRow(sub, stem, q.name, 0.0, q.points, "not run", reason, seconds,
                                 report.status))
            continue
        outcome = record["outcome"]
        # Points come from the course's definition, never from the (forgeable) record.
        points = q.points if outcome == "correct" else 0.0
        reason = _one_line(record.get("message", ""))
        note = _notes(q, report)
        if note:
            reason = f"{reason} ({note})" if reason else note
        rows.append(GradeRow(sub, stem, q.name, points, q.points, outcome, reason, seconds,
                             report.status))
    return rows


def grade(submissions: Iterable[str | os.PathLike], out_csv: str | os.PathLike | None, *,
          cell_timeout: float | None = 300, total_timeout: float | None = 1800, jobs: int = 1,
          fast: bool = True, notebooks_dir: str | os.PathLike | None = None,
          workdir: str | os.PathLike | None = None, executed_dir: str | os.PathLike | None = None,
          progress: bool = True) -> list[GradeRow]:
    """Execute each submission in a fresh kernel and write one CSV row per (submission, question).

    Parameters
    ----------
    submissions : path or iterable of path
        The students' ``.ipynb`` files.
    out_csv : path or None
        Where to write the grades (columns :data:`COLUMNS`); None writes nothing.
    cell_timeout : float or None
        Seconds one cell may run before it is interrupted (the notebook then goes on).
    total_timeout : float or None
        Seconds one submission may run in all before its kernel is killed.
    jobs : int
        How many submissions to execute at once (each in its own process and kernel).
    fast : bool
        Run under the fast budget (``MEDSEG_FAST=1``); checks do not depend on it.
    notebooks_dir : path, optional
        The course's ``notebooks/`` folder, used to name the shipped cells a submission lacks;
        defaults to the one next to this package, if any.
    workdir : path, optional
        Working directory of every kernel. Default: a fresh, empty temporary folder per
        submission, so that submissions cannot see or overwrite each other's files.
    executed_dir : path, optional
        Also save each executed submission there (same file name; prefixed with its position
        when two submissions share a name), e.g. to hand the feedback back to students.
    progress : bool
        Show a ``tqdm`` progress bar over submissions.

    Returns
    -------
    list of GradeRow
        In submission order, then question order.

    Raises
    ------
    FileNotFoundError
        If a submission does not exist (nothing is graded then).
    ValueError
        If ``jobs`` is not a positive integer.

    Notes
    -----
    A submission that is not a notebook, cannot be identified, raises, loops forever or lost
    cells still gets rows, with 0 points and a reason; the others are graded all the same.
    See the module docstring for the threat model: feedback grading, not an exam system; run
    untrusted notebooks only in a sandbox.

    Examples
    --------
    >>> rows = grade(["alice_00_welcome.ipynb"], "grades.csv", cell_timeout=60)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    if isinstance(submissions, (str, os.PathLike)):
        submissions = [submissions]
    paths = [Path(s) for s in submissions]
    if not paths:
        raise ValueError("submissions is empty; pass at least one .ipynb file")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no such submission file: {', '.join(missing)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if notebooks_dir is None:
        try:
            notebooks_dir = repo_root(Path(__file__).parent) / "notebooks"
        except FileNotFoundError:
            notebooks_dir = None
    kwargs = dict(cell_timeout=cell_timeout, total_timeout=total_timeout, fast=fast,
                  notebooks_dir=notebooks_dir, workdir=workdir)
    targets: list[Path | None] = [None] * len(paths)
    if executed_dir is not None:
        names = [p.name for p in paths]
        targets = [Path(executed_dir) / (n if names.count(n) == 1 else f"{i:03d}_{n}")
                   for i, n in enumerate(names)]
    results: list[list[GradeRow] | None] = [None] * len(paths)
    bar = tqdm(total=len(paths), desc="grading", unit="nb", disable=not progress)
    try:
        if jobs == 1:
            for i, p in enumerate(paths):
                results[i] = grade_one(p, save_executed=targets[i], **kwargs)
                bar.update()
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = {pool.submit(grade_one, p, save_executed=targets[i], **kwargs): i
                           for i, p in enumerate(paths)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update()
    finally:
        bar.close()
    rows = [row for rs in results for row in (rs or [])]
    if out_csv is not None:
        out = Path(out_csv)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow(asdict(row))
    return rows


def totals(rows: Sequence[GradeRow]) -> list[dict]:
    """Per-submission totals: ``submission, notebook, points, max_points, counts, status, note``.

    ``counts`` maps each outcome to its number of questions; ``note`` is the first reason of a
    question that did not run (empty if every check ran).
    """
    out: dict[str, dict] = {}
    for r in rows:
        t = out.setdefault(r.submission, {"submission": r.submission, "notebook": r.notebook,
                                          "points": 0.0, "max_points": 0.0, "counts": {},
                                          "status": r.status, "seconds": r.seconds, "note": ""})
        t["points"] += r.points
        t["max_points"] += r.max_points
        t["counts"][r.outcome] = t["counts"].get(r.outcome, 0) + 1
        if r.outcome in ("not run", "ungraded") and not t["note"]:
            t["note"] = r.reason
    return list(out.values())
