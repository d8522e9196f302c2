"""Benchmark: each notebook's run time and peak memory, on one CPU core, in fast and full mode.

Binder gives a student one CPU and 2 GB of memory, so this is the budget every notebook is sized for.
Each notebook is executed in a fresh kernel pinned to one core (``taskset -c 0``, or ``--core N``; one
BLAS/OpenMP/torch thread); the peak resident memory is the largest of the processes involved (the kernel dominates).

Run::

    MEDSEG_DATA_DIR=/path/to/datasets python benchmarks/bench_notebooks.py [STEM ...] [--modes fast full]

Figures are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in a child process so that its RUSAGE_CHILDREN peak belongs to this notebook alone.
_CHILD = r"""
import json, resource, subprocess, sys, time
cmd = json.loads(sys.argv[1])
t0 = time.perf_counter()
rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"rc": rc.returncode, "seconds": elapsed, "peak_mib": peak, "stderr": rc.stderr[-2000:]}))
"""


def run_one(stem: str, fast: bool, keep: Path | None = None, core: int = 0) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MPLBACKEND="Agg")
    env.pop("MEDSEG_FAST", None)
    if fast:
        env["MEDSEG_FAST"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["jupyter", "nbconvert", "--to", "notebook", "--execute",
               "--ExecutePreprocessor.timeout=3600", str(ROOT / "notebooks" / f"{stem}.ipynb"),
               "--output-dir", tmp]
        if shutil.which("taskset"):
            cmd = ["taskset", "-c", str(core)] + cmd
        out = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(cmd)], env=env, capture_output=True,
                             text=True, cwd=ROOT / "notebooks", check=True)
        if keep is not None and (Path(tmp) / f"{stem}.ipynb").exists():
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(tmp) / f"{stem}.ipynb", keep / f"{stem}_{'fast' if fast else 'full'}.ipynb")
    return json.loads(out.stdout)


def main(argv=None) -> int:
    from medseg_course.course import NOTEBOOKS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stems", nargs="*", help="notebooks to run (default: all)")
    parser.add_argument("--modes", nargs="+", default=["fast", "full"], choices=["fast", "full"])
    parser.add_argument("--core", type=int, default=0,
                        help="the CPU core to pin the notebooks to (two runs side by side use different cores)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="save the executed notebooks here (STEM_fast.ipynb, STEM_full.ipynb) to read their numbers")
    args = parser.parse_args(argv)
    stems = args.stems or [nb.stem for nb in NOTEBOOKS if (ROOT / "notebooks" / nb.filename).exists()]
    print(f"notebook run time and peak memory, one CPU core (taskset -c {args.core}, 1 thread)")
    print(f"python {sys.version.split()[0]}, started {time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| notebook | mode | seconds | peak MiB | status |")
    print("|---|---|---:|---:|---|")
    failed = 0
    for stem in stems:
        for mode in args.modes:
            r = run_one(stem, fast=(mode == "fast"), keep=args.keep, core=args.core)
            status = "ok" if r["rc"] == 0 else "FAILED: " + r["stderr"].strip().splitlines()[-1][:80]
            failed += r["rc"] != 0
            print(f"| {stem} | {mode} | {r['seconds']:.1f} | {r['peak_mib']:.0f} | {status} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
