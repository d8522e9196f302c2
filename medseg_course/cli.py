"""The ``medseg-course`` command: run the course's notebooks, grade submissions, sync notebooks.

::

    medseg-course run [NOTEBOOK ...] [--out DIR] [--fast] [--cell-timeout S] [--timeout S]
    medseg-course grade SUBMISSION.ipynb ... --out grades.csv [--cell-timeout S] [--timeout S]
    medseg-course sync-notebooks [--check] [--root DIR]

``NOTEBOOK`` is a stem (``01_medical_images``), a prefix (``01``) or a path. Exit codes: 0 when
all went well, 1 when a notebook failed to execute (``run``) or files are out of sync
(``sync-notebooks --check``), 2 for usage errors (unknown notebook, missing file). ``grade``
exits with 0 whenever grading itself succeeded, however the students did.

Introduced in 00_welcome.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _positive_seconds(text: str) -> float | None:
    """argparse type: a positive number of seconds, or 0/none for no limit."""
    if text.strip().lower() in {"0", "none", "inf"}:
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds (or 0 for no "
                                         f"limit), got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``medseg-course`` (exposed for tests and documentation)."""
    parser = argparse.ArgumentParser(
        prog="medseg-course",
        description="Run the medseg-course notebooks, grade students' notebooks, and keep the "
                    "notebooks' generated cells in sync.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run", help="execute course notebooks headlessly and report times and check outcomes",
        description="Execute course notebooks, each in a fresh kernel, into an output folder "
                    "(executed .ipynb, summary.json, summary.csv), and print a table of times "
                    "and check outcomes.")
    run.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                     help="a stem (01_medical_images), a prefix (01) or a path; default: all")
    run.add_argument("--out", default="runs/latest", metavar="DIR",
                     help="output folder (default: %(default)s)")
    run.add_argument("--fast", action="store_true",
                     help="the fast budget (MEDSEG_FAST=1): fewer epochs, less data")
    run.add_argument("--cell-timeout", type=_positive_seconds, default=600.0, metavar="S",
                     help="seconds a cell may run before it is interrupted (default: "
                          "%(default)s; 0 for no limit)")
    run.add_argument("--timeout", type=_positive_seconds, default=None, metavar="S",
                     help="seconds a whole notebook may run (default: no limit)")
    run.add_argument("--solutions", action="store_true",
                     help="inject the reference solutions first: every check should pass")
    run.add_argument("--keep-going", action="store_true",
                     help="run the cells after a failing one too (default: stop at the first)")
    run.add_argument("--root", metavar="DIR", help="the course repository (default: found "
                     "from the package location or the current folder)")

    grade = sub.add_parser(
        "grade", help="grade students' notebooks into a CSV",
        description="Execute each submission in a fresh kernel and write one CSV row per "
                    "(submission, question). Feedback grading, not an exam system: run "
                    "untrusted notebooks only in a sandbox.")
    grade.add_argument("submissions", nargs="+", metavar="SUBMISSION.ipynb")
    grade.add_argument("--out", required=True, metavar="CSV", help="the grades file to write")
    grade.add_argument("--cell-timeout", type=_positive_seconds, default=300.0, metavar="S",
                       help="seconds a cell may run before it is interrupted (default: "
                            "%(default)s)")
    grade.add_argument("--timeout", type=_positive_seconds, default=1800.0, metavar="S",
                       help="seconds a whole submission may run (default: %(default)s)")
    grade.add_argument("--jobs", type=_positive_int, default=1, metavar="N",
                       help="submissions to execute at once (default: %(default)s)")
    grade.add_argument("--executed", metavar="DIR",
                       help="also save each executed submission, with its feedback, in DIR")
    grade.add_argument("--full", action="store_true",
                       help="run under the full budget instead of the fast one (MEDSEG_FAST=1)")

    sync = sub.add_parser(
        "sync-notebooks", help="regenerate badges, install cells and metadata from REPO_URL",
        description="Rewrite the generated cells (badges, install cell) and metadata of every "
                    "course notebook, and the README badge block.")
    sync.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 and list the files that are out of sync")
    sync.add_argument("--root", metavar="DIR", help="the course repository (default: found "
                      "from the package location or the current folder)")
    return parser


def _error(message: str) -> None:
    print(f"medseg-course: error: {message}", file=sys.stderr)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.ljust(w) if i == 0 or n == 0 or not c.replace(".", "").isdigit()
                               else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


def _cmd_run(args) -> int:
    from medseg_course.execution import resolve_notebook, run_course

    root = Path(args.root) if args.root else None  # found when a stem needs it
    if args.notebooks:
        for name in args.notebooks:  # fail fast on a typo, before anything runs
            resolve_notebook(name, root)
    runs = run_course(args.notebooks or None, args.out, fast=args.fast,
                      cell_timeout=args.cell_timeout, total_timeout=args.timeout,
                      solutions=args.solutions, allow_errors=args.keep_going, root=root)
    rows = [(r.notebook, r.status, f"{r.seconds:.1f}",
             *((r.correct, r.incorrect, r.not_attempted, r.missing_checks) if r.output
               else ("-",) * 4)) for r in runs]
    print(_table(("notebook", "status", "seconds", "correct", "incorrect", "not attempted",
                  "no check"), rows))
    failed = [r for r in runs if not r.ok]
    for r in failed:
        print(f"FAILED {r.notebook}: {r.message}")
    print(f"{len(runs) - len(failed)}/{len(runs)} notebooks ran cleanly; executed notebooks and "
          f"summary.json/summary.csv are in {args.out}")
    return EXIT_FAILED if failed else EXIT_OK


def _cmd_grade(args) -> int:
    from medseg_course.grading import grade, totals

    missing = [s for s in args.submissions if not Path(s).is_file()]
    if missing:
        _error(f"no such submission file: {', '.join(missing)}")
        return EXIT_USAGE
    rows = grade(args.submissions, args.out, cell_timeout=args.cell_timeout,
                 total_timeout=args.timeout, jobs=args.jobs, fast=not args.full,
                 executed_dir=args.executed)
    table = []
    for t in totals(rows):
        note = t["note"] or ", ".join(f"{n} {outcome}" for outcome, n in t["counts"].items())
        if len(note) > 90:
            note = note[:87] + "..."
        table.append((t["submission"], t["notebook"] or "?",
                      f"{t['points']:g}/{t['max_points']:g}", t["status"], note))
    print(_table(("submission", "notebook", "points", "status", "note"), table))
    print(f"wrote {len(rows)} rows to {args.out}"
          + (f"; executed submissions are in {args.executed}" if args.executed else ""))
    return EXIT_OK


def _cmd_sync(args) -> int:
    from medseg_course import notebook_links
    from medseg_course.execution import repo_root

    root = Path(args.root) if args.root else repo_root()
    if not (root / "notebooks").is_dir():
        _error(f"{root} has no notebooks/ folder; pass the repository root with --root")
        return EXIT_USAGE
    missing = [e.filename for e in notebook_links.NOTEBOOKS
               if not (root / "notebooks" / e.filename).exists()]
    if missing:
        _error(f"listed in medseg_course.course.NOTEBOOKS but missing from {root / 'notebooks'}: "
               f"{', '.join(missing)} (write them, or remove them from NOTEBOOKS); nothing was "
               + ("checked" if args.check else "written"))
        return EXIT_FAILED
    try:
        changed = notebook_links.sync_all(root, check=args.check)
    except FileNotFoundError as exc:
        _error(str(exc))
        return EXIT_FAILED
    if args.check:
        if changed:
            print("out of sync (run `medseg-course sync-notebooks` to fix):")
            for path in changed:
                print(f"  {path}")
            return EXIT_FAILED
        print("all notebooks are in sync")
        return EXIT_OK
    print("\n".join(f"rewrote {p}" for p in changed) or "nothing to change")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``medseg-course``; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 when something failed (a notebook, a sync check), 2 for usage errors.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse has already printed
        return int(exc.code or 0)
    commands = {"run": _cmd_run, "grade": _cmd_grade, "sync-notebooks": _cmd_sync}
    try:
        return commands[args.command](args)
    except (FileNotFoundError, ValueError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except KeyError as exc:
        _error(str(exc.args[0]) if exc.args else "unknown name")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
