"""Execute course notebooks headlessly, in a fresh kernel, within time limits.

This module is what ``medseg-course run`` (and ``medseg-course grade``, through
:mod:`medseg_course.grading`) uses:

* :func:`inject_solutions` puts every question's reference solution into its exercise cell, to
  check that a notebook's checks pass with it;
* :func:`execute_notebook` runs one notebook in a fresh kernel with a per-cell and a total time
  limit, and returns an :class:`ExecutionReport` (errors per cell, the check records the
  exercise engine displayed, the executed notebook);
* :func:`run_course` runs several course notebooks into an output folder and writes a summary.

How the limits are enforced
---------------------------
The notebook runs in a child process (``python -m medseg_course.execution``) that drives an
``nbclient.NotebookClient``. The per-cell limit is nbclient's: a cell that runs too long is
interrupted (``KeyboardInterrupt`` in the kernel) and execution goes on with the next cell. The
total limit is enforced from outside: when it passes, the child's whole process group and the
kernel's process group (the kernel runs in its own session) are killed with ``SIGKILL``, so that
a cell that ignores interrupts, or a kernel stuck in C code, cannot outlive the limit. The child
saves the notebook after every cell, so a killed run still returns what it had executed.

Introduced in 00_welcome (the course's automated runs); see also ``medseg-course run --help``.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import nbformat

from medseg_course import course
from medseg_course.exercises.engine import RESULT_MIME

__all__ = [
    "CellError", "ExecutionReport", "NotebookRun", "STATUSES", "InvalidNotebookError",
    "inject_solutions", "execute_notebook", "run_course", "read_notebook", "check_records",
    "repo_root", "resolve_notebook", "expected_questions", "exercise_question", "notebook_stem",
]

#: The statuses an :class:`ExecutionReport` can have.
STATUSES = ("ok", "errors", "timeout", "invalid notebook")

_TIMEOUT_ENAME = "CellTimeoutError"
_TOTAL_TIMEOUT_ENAME = "TotalTimeoutError"
_DEAD_KERNEL_ENAME = "DeadKernelError"


class InvalidNotebookError(ValueError):
    """A file is not a readable Jupyter notebook (not JSON, or not the notebook format)."""


# -- reports ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CellError:
    """An error that stopped a cell.

    Attributes
    ----------
    index : int or None
        Position of the cell in the notebook (0-based), None when no cell was running (the
        kernel failed to start).
    cell_id : str or None
        The cell's ``id`` (nbformat >= 4.5), when it has one.
    ename, evalue : str
        Exception name and message. Time limits use ``"CellTimeoutError"`` (the per-cell limit:
        the cell was interrupted) and ``"TotalTimeoutError"`` (the notebook's limit: the kernel
        was killed); a kernel that died uses ``"DeadKernelError"``.
    timeout : bool
        True when the error is a time limit.
    """

    index: int | None
    cell_id: str | None
    ename: str
    evalue: str
    timeout: bool = False

    def describe(self) -> str:
        """One line for people: ``"cell 14 (id c12-92bb4e) raised ValueError: oops"``."""
        where = "the notebook" if self.index is None else f"cell {self.index}"
        if self.index is not None and self.cell_id:
            where += f" (id {self.cell_id})"
        if self.ename == _TIMEOUT_ENAME:
            return f"{where} {self.evalue}"
        if self.ename == _TOTAL_TIMEOUT_ENAME:
            return f"{where} was running when {self.evalue}"
        if self.ename == _DEAD_KERNEL_ENAME:
            return f"{where}: {self.evalue}"
        return f"{where} raised {self.ename}: {self.evalue}"


@dataclass
class ExecutionReport:
    """What :func:`execute_notebook` found.

    Attributes
    ----------
    status : str
        ``"ok"`` (no cell raised), ``"errors"`` (some cell raised, or the kernel died),
        ``"timeout"`` (a cell ran past the per-cell limit, or the notebook past the total limit)
        or ``"invalid notebook"`` (the input could not be read; nothing ran).
    elapsed : float
        Wall-clock seconds, kernel start-up included.
    notebook : NotebookNode or None
        The executed notebook (partial if execution stopped early), None if nothing ran.
    errors : list of CellError
        In cell order.
    records : list of dict
        The check records displayed by the exercise engine (MIME type
        :data:`~medseg_course.exercises.engine.RESULT_MIME`), the last one per question, each
        with an extra key ``"cell_index"``: the cell whose output held it.
    message : str
        Empty when all went well, else one line saying what stopped the run.
    killed : bool
        True when the total time limit passed and the kernel was killed.
    last_cell : int or None
        The last cell that started executing (the running one when the run was killed).
    """

    status: str
    elapsed: float
    notebook: Any = None
    errors: list[CellError] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    message: str = ""
    killed: bool = False
    last_cell: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def record_for(self, question: str) -> dict | None:
        """The last record of ``question`` (its id ``"<notebook>/<name>"`` or its name)."""
        for rec in self.records:
            if question in (rec.get("question"), rec.get("name")):
                return rec
        return None

    def error_in(self, index: int) -> CellError | None:
        """The error of cell ``index``, if it had one."""
        for err in self.errors:
            if err.index == index:
                return err
        return None


# -- reading and preparing notebooks ----------------------------------------------------------

def read_notebook(source: str | os.PathLike | Mapping) -> nbformat.NotebookNode:
    """Read and validate a notebook from a path, or copy and validate a loaded one.

    Parameters
    ----------
    source : path or dict or NotebookNode
        A ``.ipynb`` path, or an already loaded notebook (it is copied, never modified).

    Returns
    -------
    NotebookNode
        Upgraded to nbformat 4.

    Raises
    ------
    InvalidNotebookError
        If the file is not JSON, not a notebook, or fails nbformat validation; the message says
        which.
    FileNotFoundError
        If the path does not exist.
    """
    if isinstance(source, Mapping):
        name = "the notebook"
        try:
            text = json.dumps(source)
        except (TypeError, ValueError) as exc:
            raise InvalidNotebookError(f"{name} cannot be written as JSON: {exc}") from None
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no notebook at {path}; check the path")
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidNotebookError(f"{name} is not a text file ({exc.reason}); "
                                       "a notebook is a JSON (.ipynb) file") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidNotebookError(f"{name} is not valid JSON ({exc.msg} at line {exc.lineno}, "
                                   f"column {exc.colno}); it is not a readable notebook") from None
    if not isinstance(raw, dict) or ("cells" not in raw and "worksheets" not in raw):
        raise InvalidNotebookError(f"{name} is JSON but not a Jupyter notebook (it has no 'cells')")
    if (raw.get("nbformat"), raw.get("nbformat_minor", 0)) >= (4, 5):
        # Some editors drop cell ids; give the missing ones an id (nbformat would warn and do it).
        cells = raw.get("cells")
        if isinstance(cells, list) and any(isinstance(c, dict) and "id" not in c for c in cells):
            for cell in cells:
                if isinstance(cell, dict) and "id" not in cell:
                    cell["id"] = uuid.uuid4().hex[:8]
            text = json.dumps(raw)
    try:
        nb = nbformat.reads(text, as_version=4)  # also joins multi-line sources into strings
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types (ValidationError, KeyError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidNotebookError(f"{name} is not a valid Jupyter notebook: {first}") from None
    return nb


def _exercise_module(stem: str):
    entry = course.notebook(stem)
    if entry.exercises is None:
        return None
    return importlib.import_module(entry.exercises)


def expected_questions(stem: str) -> list:
    """The questions of course notebook ``stem`` (its exercise module's ``QUESTIONS``).

    Raises
    ------
    KeyError
        If ``stem`` is not a course notebook.
    ImportError
        If its exercise module cannot be imported.
    """
    module = _exercise_module(stem)
    return [] if module is None else list(module.QUESTIONS)


def notebook_stem(nb: Mapping) -> str | None:
    """The course notebook a notebook says it is (``metadata.medseg.notebook``), or None."""
    stem = (nb.get("metadata", {}) or {}).get("medseg", {}) or {}
    stem = stem.get("notebook") if isinstance(stem, Mapping) else None
    return stem if isinstance(stem, str) and stem else None


def exercise_question(cell: Mapping) -> str | None:
    """The question an exercise cell answers (tag ``exercise``, ``metadata.medseg.question``),
    or None for any other cell."""
    meta = cell.get("metadata", {}) or {}
    if "exercise" not in (meta.get("tags") or []):
        return None
    medseg = meta.get("medseg") or {}
    name = medseg.get("question") if isinstance(medseg, Mapping) else None
    return name if isinstance(name, str) and name else None


def inject_solutions(nb: Mapping, stem: str | None = None) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose exercise cells hold their question's reference solution.

    Exercise cells are code cells tagged ``exercise`` with ``metadata.medseg.question`` set to
    a question name; the question comes from the notebook's exercise module
    (:data:`medseg_course.course.NOTEBOOKS`, entry ``exercises``).

    Parameters
    ----------
    nb : NotebookNode or dict
        A course notebook; it is not modified.
    stem : str, optional
        The course notebook it is; defaults to its ``metadata.medseg.notebook``.

    Returns
    -------
    NotebookNode

    Raises
    ------
    ValueError
        If the notebook cannot be identified, or an exercise cell names a question that its
        exercise module does not define, or that question has no ``solution_code``.

    Examples
    --------
    >>> nb = read_notebook(repo_root() / "notebooks" / "00_welcome.ipynb")  # doctest: +SKIP
    >>> solved = inject_solutions(nb)                                        # doctest: +SKIP

    Introduced in 00_welcome (used by the course's tests and ``medseg-course run --solutions``).
    """
    nb = read_notebook(nb)
    stem = stem or notebook_stem(nb)
    if stem is None:
        raise ValueError("nb has no metadata.medseg.notebook; pass stem='00_welcome' (or the "
                         "notebook's stem) to say which course notebook it is")
    try:
        questions = {q.name: q for q in expected_questions(stem)}
    except KeyError as exc:
        raise ValueError(str(exc.args[0])) from None
    for index, cell in enumerate(nb.cells):
        name = exercise_question(cell)
        if name is None:
            continue
        if name not in questions:
            known = ", ".join(questions) or "(none)"
            raise ValueError(f"cell {index} of {stem} is an exercise for question {name!r}, which "
                             f"{course.notebook(stem).exercises} does not define; its questions "
                             f"are: {known}. Fix metadata.medseg.question of that cell.")
        code = questions[name].solution_code
        if not code:
            raise ValueError(f"question {stem}/{name} has no solution_code; add one to its "
                             "definition so that the solution can be injected")
        cell.source = code
        cell.outputs = []
        cell.execution_count = None
    return nb


def check_records(nb: Mapping) -> list[dict]:
    """The exercise engine's check records in an executed notebook, the last one per question.

    Parameters
    ----------
    nb : NotebookNode or dict
        An executed notebook.

    Returns
    -------
    list of dict
        Ordered by where each question's last record appears; each has the keys the engine
        writes (``question``, ``notebook``, ``name``, ``outcome``, ``points``, ``max_points``,
        ``used``, ``message``) and ``cell_index``.
    """
    last: dict[str, dict] = {}
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []) or []:
            data = out.get("data") if isinstance(out, Mapping) else None
            if not isinstance(data, Mapping) or RESULT_MIME not in data:
                continue
            rec = data[RESULT_MIME]
            if isinstance(rec, str):
                try:
                    rec = json.loads(rec)
                except json.JSONDecodeError:
                    continue
            if not isinstance(rec, Mapping) or not isinstance(rec.get("question"), str):
                continue
            rec = dict(rec)
            rec["cell_index"] = index
            last.pop(rec["question"], None)  # re-insert so the order follows the last record
            last[rec["question"]] = rec
    return list(last.values())


# -- execution ----------------------------------------------------------------------------------

def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _kill_group(pid: int | None) -> None:
    """SIGKILL the process group led by ``pid`` (ignoring one that is already gone)."""
    if not pid or os.name != "posix":
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def execute_notebook(nb_or_path: str | os.PathLike | Mapping, *, cell_timeout: float | None,
                     total_timeout: float | None, env: Mapping[str, str] | None = None,
                     cwd: str | os.PathLike | None = None, allow_errors: bool = True,
                     kernel_name: str = "python3") -> ExecutionReport:
    """Execute a notebook in a fresh kernel, with a per-cell and a total time limit.

    Parameters
    ----------
    nb_or_path : path or NotebookNode or dict
        The notebook; it is not modified.
    cell_timeout : float or None
        Seconds one cell may run before it is interrupted (``KeyboardInterrupt``); execution
        then goes on with the next cell (with ``allow_errors``). None: no limit.
    total_timeout : float or None
        Seconds the whole run may take, kernel start-up included; when they pass the kernel and
        its children are killed and the partial results returned. None: no limit.
    env : mapping, optional
        Environment variables to set (on top of this process's) for the kernel, e.g.
        ``{"MEDSEG_FAST": "1"}``.
    cwd : path, optional
        The kernel's working directory; defaults to the notebook's folder (for a path) or the
        current directory.
    allow_errors : bool
        Go on after a cell raises (True), or stop at the first error (False; cells tagged
        ``raises-exception`` may still raise).
    kernel_name : str
        The Jupyter kernel to start.

    Returns
    -------
    ExecutionReport

    Raises
    ------
    FileNotFoundError
        If ``nb_or_path`` is a path that does not exist, or ``cwd`` is not a folder.
    ValueError
        If a time limit is not positive.

    Notes
    -----
    An unreadable notebook does not raise: the report's status is ``"invalid notebook"`` and its
    message says why, so that a batch of notebooks (a class's submissions) goes on.

    Introduced in 00_welcome (``medseg-course run``).
    """
    for name, value in (("cell_timeout", cell_timeout), ("total_timeout", total_timeout)):
        if value is not None and (isinstance(value, bool) or not value > 0):
            raise ValueError(f"{name} must be a positive number of seconds or None, got {value!r}")
    start = time.monotonic()
    if not isinstance(nb_or_path, Mapping):
        path = Path(nb_or_path)
        if not path.exists():
            raise FileNotFoundError(f"no notebook at {path}; check the path")
        default_cwd = path.resolve().parent
    else:
        default_cwd = Path.cwd()
    try:
        nb = read_notebook(nb_or_path)
    except InvalidNotebookError as exc:
        return ExecutionReport("invalid notebook", time.monotonic() - start, message=str(exc))
    cwd = Path(cwd) if cwd is not None else default_cwd
    if not cwd.is_dir():
        raise FileNotFoundError(f"cwd {cwd} is not a folder; pass an existing folder")

    with tempfile.TemporaryDirectory(prefix="medseg-exec-") as tmp:
        tmp = Path(tmp)
        src, out, state_path, log = (tmp / "input.ipynb", tmp / "output.ipynb", tmp / "state.json",
                                     tmp / "child.log")
        nbformat.write(nb, src)
        cmd = [sys.executable, "-m", "medseg_course.execution", str(src), str(out),
               "--state", str(state_path), "--cwd", str(cwd.resolve()),
               "--kernel", kernel_name]
        if cell_timeout is not None:
            cmd += ["--cell-timeout", repr(float(cell_timeout))]
        if allow_errors:
            cmd.append("--allow-errors")
        child_env = dict(os.environ)
        # Headless: nobody will see a widget, so explorers and viewers draw static figures.
        child_env["MEDSEG_HEADLESS"] = "1"
        if child_env.get("MEDSEG_DATA_DIR"):  # the kernel runs elsewhere: keep a relative cache path valid
            child_env["MEDSEG_DATA_DIR"] = str(Path(child_env["MEDSEG_DATA_DIR"]).resolve())
        child_env.update({str(k): str(v) for k, v in (env or {}).items()})
        # Run the child (and so the kernel) with this very copy of the package.
        package_parent = str(Path(__file__).resolve().parent.parent)
        child_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_parent, child_env.get("PYTHONPATH", "")) if p)
        killed = False
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file,
                                    stderr=subprocess.STDOUT, env=child_env,
                                    start_new_session=True)
            try:
                remaining = None if total_timeout is None else max(
                    0.0, total_timeout - (time.monotonic() - start))
                proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                killed = True
            finally:
                if proc.poll() is None:  # the total limit passed, or we were interrupted
                    _kill_group(proc.pid)
                    if os.name != "posix":
                        proc.kill()
                    proc.wait()
                state = _read_json(state_path)
                if killed or not state.get("finished"):
                    _kill_group(state.get("kernel_pid"))
        elapsed = time.monotonic() - start
        executed = None
        if out.exists():
            try:
                executed = nbformat.read(out, as_version=4)
            except Exception:  # a partial write cannot happen (atomic), but be safe
                executed = None
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
    return _build_report(nb, executed, state, elapsed, killed, total_timeout, cell_timeout,
                         proc.returncode, tail)


def _build_report(nb, executed, state, elapsed, killed, total_timeout, cell_timeout, returncode,
                  log_tail) -> ExecutionReport:
    cells = (executed or nb).cells
    timed_out = set(state.get("timed_out_cells", []))
    last_cell = state.get("current_cell")
    errors: list[CellError] = []
    for index, cell in enumerate(cells if executed is not None else []):
        if cell.cell_type != "code":
            continue
        cell_id = cell.get("id")
        if index in timed_out:
            errors.append(CellError(index, cell_id, _TIMEOUT_ENAME,
                                    f"ran past the per-cell time limit of {cell_timeout:g} s "
                                    "and was interrupted", timeout=True))
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append(CellError(index, cell_id, output.get("ename", "Error"),
                                        str(output.get("evalue", "")).strip()))
                break
    message = ""
    died = state.get("dead_kernel")
    crash = state.get("exception")
    if killed:
        index = last_cell if isinstance(last_cell, int) else None
        cell_id = cells[index].get("id") if index is not None and index < len(cells) else None
        evalue = f"the notebook ran past its total time limit of {total_timeout:g} s"
        errors = [e for e in errors if e.index != index]
        errors.append(CellError(index, cell_id, _TOTAL_TIMEOUT_ENAME, evalue, timeout=True))
        message = f"killed: {evalue}" + (f" (while running cell {index})" if index is not None else "")
    elif died:
        index = last_cell if isinstance(last_cell, int) else None
        cell_id = cells[index].get("id") if index is not None and index < len(cells) else None
        errors = [e for e in errors if e.index != index]
        errors.append(CellError(index, cell_id, _DEAD_KERNEL_ENAME,
                                "the kernel died while running it (out of memory, or the code "
                                "exited the process)"))
        message = "the kernel died" + (f" while running cell {index}" if index is not None else "")
    elif crash:
        message = f"execution stopped: {crash}"
        if not errors:
            errors.append(CellError(None, None, "ExecutionError", crash))
    elif not state.get("finished"):
        detail = " | ".join(log_tail) or "no output"
        message = f"the execution process failed (exit status {returncode}): {detail}"
        errors.append(CellError(None, None, "ExecutionError", message))
    errors.sort(key=lambda e: (-1 if e.index is None else e.index))
    if killed or any(e.timeout for e in errors):
        status = "timeout"
    elif errors:
        status = "errors"
    else:
        status = "ok"
    if not message and errors:
        message = errors[0].describe()
    records = check_records(executed) if executed is not None else []
    return ExecutionReport(status=status, elapsed=elapsed, notebook=executed, errors=errors,
                           records=records, message=message, killed=killed,
                           last_cell=last_cell if isinstance(last_cell, int) else None)


def _watch_parent(state: dict) -> None:
    """If the parent process dies (killed, not just interrupted), kill the kernel and exit."""
    import threading

    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                _kill_group(state.get("kernel_pid"))
                os._exit(4)

    threading.Thread(target=watch, daemon=True, name="medseg-parent-watch").start()


def _child_main(argv: Sequence[str] | None = None) -> int:
    """Run inside the child process: execute one notebook with nbclient, saving as it goes."""
    import argparse

    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    parser = argparse.ArgumentParser(prog="python -m medseg_course.execution")
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("--state", required=True)
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--cell-timeout", type=float, default=None)
    parser.add_argument("--allow-errors", action="store_true")
    args = parser.parse_args(argv)

    out, state_path = Path(args.output), Path(args.state)
    nb = nbformat.read(args.input, as_version=4)
    state: dict[str, Any] = {"kernel_pid": None, "current_cell": None, "timed_out_cells": [],
                             "finished": False}

    def save_state() -> None:
        _atomic_write(state_path, json.dumps(state))

    def save_notebook() -> None:
        _atomic_write(out, nbformat.writes(nb))

    client: NotebookClient

    def on_notebook_start(notebook=None, **_):
        provisioner = getattr(client.km, "provisioner", None)
        pid = getattr(provisioner, "pid", None)
        if pid is None:
            pid = getattr(getattr(provisioner, "process", None), "pid", None)
        state["kernel_pid"] = pid
        save_state()

    started: dict[int, float] = {}

    def on_cell_execute(cell=None, cell_index=None, **_):
        state["current_cell"] = cell_index
        started[cell_index] = time.monotonic()
        save_state()

    def on_cell_executed(cell=None, cell_index=None, execute_reply=None, **_):
        # A cell interrupted by the per-cell limit ends in KeyboardInterrupt after running at
        # least that long (nbclient keeps interrupting a cell that ignores it).
        content = (execute_reply or {}).get("content", {})
        ran = time.monotonic() - started.get(cell_index, time.monotonic())
        if (timeout and content.get("status") == "error"
                and content.get("ename") == "KeyboardInterrupt" and ran >= timeout - 0.5):
            state["timed_out_cells"].append(cell_index)
            save_state()
        save_notebook()

    timeout = args.cell_timeout
    client = NotebookClient(
        nb, timeout=int(max(1, round(timeout))) if timeout else None, interrupt_on_timeout=True,
        allow_errors=args.allow_errors, kernel_name=args.kernel,
        resources={"metadata": {"path": args.cwd}},
        on_notebook_start=on_notebook_start, on_cell_execute=on_cell_execute,
        on_cell_executed=on_cell_executed,
    )
    save_state()
    _watch_parent(state)
    code = 0
    try:
        client.execute()
    except DeadKernelError:
        state["dead_kernel"] = True
        code = 3
    except CellExecutionError:
        pass  # allow_errors=False: stopped at the first error, which is in the notebook
    except Exception as exc:  # kernel failed to start, unknown kernel name, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        state["exception"] = f"{type(exc).__name__}: {first}"
        code = 2
    save_notebook()
    state["finished"] = True
    save_state()
    return code


# -- the course ---------------------------------------------------------------------------------

def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The course's root folder: the first parent (of ``start``, else of this package, else of
    the current directory) that holds a ``notebooks/`` folder.

    Raises
    ------
    FileNotFoundError
        If no such folder is found; the message says to pass the root explicitly.
    """
    candidates = [Path(start)] if start is not None else [Path(__file__).resolve().parent,
                                                          Path.cwd()]
    for base in candidates:
        base = base.resolve()
        for folder in (base, *base.parents):
            if (folder / "notebooks").is_dir():
                return folder
    where = start if start is not None else f"{Path(__file__).parent} or {Path.cwd()}"
    raise FileNotFoundError(f"found no course folder (one holding notebooks/) above {where}; "
                            "pass the repository root explicitly (--root)")


def resolve_notebook(name: str | os.PathLike, root: str | os.PathLike | None = None
                     ) -> tuple[str | None, Path]:
    """Turn a course stem, a stem prefix or a path into ``(stem or None, path)``.

    Parameters
    ----------
    name : str or path
        ``"01_medical_images"``, ``"01"`` (a prefix matching one notebook) or a path to a
        ``.ipynb`` file.
    root : path, optional
        The repository root; defaults to :func:`repo_root`.

    Raises
    ------
    ValueError
        If ``name`` matches no course notebook, or several.
    FileNotFoundError
        If ``name`` looks like a path that does not exist.
    """
    text = str(name)
    path = Path(text)
    looks_like_path = text.endswith(".ipynb") or os.sep in text or (os.altsep or "\0") in text
    if path.is_file():
        stem = path.stem if any(nb.stem == path.stem for nb in course.NOTEBOOKS) else None
        return stem, path
    stems = [nb.stem for nb in course.NOTEBOOKS]
    bare = path.name.removesuffix(".ipynb") if looks_like_path else text
    if looks_like_path and bare not in stems:
        raise FileNotFoundError(f"no notebook at {text}; check the path")
    matches = [s for s in stems if s == bare] or [s for s in stems if s.startswith(bare)]
    if not matches:
        raise ValueError(f"{text!r} is not a course notebook; the course has: {', '.join(stems)}")
    if len(matches) > 1:
        raise ValueError(f"{text!r} matches several notebooks ({', '.join(matches)}); "
                         "give more of the name")
    stem = matches[0]
    if looks_like_path:
        raise FileNotFoundError(f"no notebook at {text}; check the path")
    base = Path(root) if root is not None else repo_root()
    return stem, base / "notebooks" / f"{stem}.ipynb"


@dataclass
class NotebookRun:
    """One notebook's line in :func:`run_course`'s summary.

    Attributes
    ----------
    notebook : str
        The course stem, or the file name for a notebook outside the course.
    path, output : str
        The notebook that ran and where its executed copy was written ("" if none).
    status : str
        An :class:`ExecutionReport` status, or ``"missing"`` when the file does not exist.
    seconds : float
    correct, incorrect, not_attempted : int
        Check outcomes (last record per question).
    missing_checks : int
        Questions of the notebook whose check never displayed a record.
    message : str
        What went wrong, empty when the run was ok.
    """

    notebook: str
    path: str
    output: str
    status: str
    seconds: float
    correct: int = 0
    incorrect: int = 0
    not_attempted: int = 0
    missing_checks: int = 0
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


_SUMMARY_FIELDS = ["notebook", "status", "seconds", "correct", "incorrect", "not_attempted",
                   "missing_checks", "message", "path", "output"]


def run_course(stems_or_paths: Iterable[str | os.PathLike] | None = None,
               out_dir: str | os.PathLike = "runs/latest", *, fast: bool = False,
               cell_timeout: float | None = 600, total_timeout: float | None = None,
               solutions: bool = False, allow_errors: bool = False,
               root: str | os.PathLike | None = None, progress: bool = True) -> list[NotebookRun]:
    """Execute course notebooks, each in a fresh kernel, into ``out_dir``.

    Parameters
    ----------
    stems_or_paths : iterable of str or path, optional
        Stems (``"00_welcome"``), stem prefixes (``"00"``) or paths; default: every notebook of
        :data:`medseg_course.course.NOTEBOOKS`.
    out_dir : path
        Created if needed. Receives one executed ``.ipynb`` per notebook, ``summary.json`` and
        ``summary.csv``.
    fast : bool
        Set ``MEDSEG_FAST=1`` in the kernel (the fast budget); otherwise ``MEDSEG_FAST=0``.
    cell_timeout, total_timeout : float or None
        Per-cell and per-notebook limits in seconds (see :func:`execute_notebook`).
    solutions : bool
        Inject the reference solutions first (:func:`inject_solutions`), so every check should
        come out correct.
    allow_errors : bool
        Go on after a failing cell (default: stop at the first error, as a student would see).
    root : path, optional
        The repository root; defaults to :func:`repo_root`.
    progress : bool
        Show a ``tqdm`` progress bar over notebooks.

    Returns
    -------
    list of NotebookRun
        In the order given; a notebook that fails does not stop the others.

    Raises
    ------
    ValueError
        If a name matches no course notebook (nothing is run then).

    Notes
    -----
    Each notebook runs with its own folder as working directory, so relative paths in it work.

    Introduced in 00_welcome (``medseg-course run``).
    """
    from tqdm.auto import tqdm

    base = Path(root) if root is not None else None
    if stems_or_paths is None:
        base = base or repo_root()
        targets = [(nb.stem, base / "notebooks" / nb.filename) for nb in course.NOTEBOOKS]
    else:
        if isinstance(stems_or_paths, (str, os.PathLike)):
            stems_or_paths = [stems_or_paths]
        targets = [resolve_notebook(s, base) for s in stems_or_paths]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[NotebookRun] = []
    bar = tqdm(targets, desc="notebooks", unit="nb", disable=not progress)
    for stem, path in bar:
        label = stem or path.stem
        bar.set_postfix_str(label)
        runs.append(_run_one(stem, path, out, fast=fast, cell_timeout=cell_timeout,
                             total_timeout=total_timeout, solutions=solutions,
                             allow_errors=allow_errors))
    bar.close()
    rows = [{k: (round(v, 2) if k == "seconds" else v) for k, v in asdict(r).items()}
            for r in runs]
    _atomic_write(out / "summary.json", json.dumps(
        {"fast": fast, "solutions": solutions, "notebooks": rows}, indent=2) + "\n")
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=_SUMMARY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return runs


def _run_one(stem, path, out, *, fast, cell_timeout, total_timeout, solutions, allow_errors
             ) -> NotebookRun:
    label = stem or path.stem
    if not path.is_file():
        return NotebookRun(label, str(path), "", "missing", 0.0,
                           message=f"{path} does not exist (listed in the course but not written yet?)")
    start = time.monotonic()
    source: Any = path
    if solutions:
        try:
            source = inject_solutions(read_notebook(path), stem)
        except (InvalidNotebookError, ValueError) as exc:
            return NotebookRun(label, str(path), "", "invalid notebook", time.monotonic() - start,
                               message=str(exc))
    report = execute_notebook(source, cell_timeout=cell_timeout, total_timeout=total_timeout,
                              env={"MEDSEG_FAST": "1" if fast else "0"}, cwd=path.resolve().parent,
                              allow_errors=allow_errors)
    output = ""
    if report.notebook is not None:
        output = str(out / path.name)
        nbformat.write(report.notebook, output)
    counts = {"correct": 0, "incorrect": 0, "not attempted": 0}
    for rec in report.records:
        if rec.get("outcome") in counts:
            counts[rec["outcome"]] += 1
    missing = 0
    if stem is not None:
        try:
            expected = expected_questions(stem)
        except ImportError:
            expected = []
        missing = sum(report.record_for(q.id) is None for q in expected)
    return NotebookRun(label, str(path), output, report.status, report.elapsed,
                       correct=counts["correct"], incorrect=counts["incorrect"],
                       not_attempted=counts["not attempted"], missing_checks=missing,
                       message=report.message)


if __name__ == "__main__":  # the child process of execute_notebook
    sys.exit(_child_main())
