"""Benchmark: time and peak memory to load whole datasets through the course's loaders.

For each dataset the course's ``load_dataset(..., split="all")`` (checksum verification, reading,
per-volume normalisation) is timed against a bare reference in the same process: nibabel (MSD
Hippocampus) or imageio (DSB2018) reading the same files with no verification and no
normalisation. The ratio says what verification and normalisation cost.

Run::

    MEDSEG_DATA_DIR=/path/to/datasets python benchmarks/bench_data.py

Figures are recorded in BENCHMARKS.md.
"""

from __future__ import annotations

import gc
import platform
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np


def measure(fn, repeats: int = 3):
    """Best wall time of ``repeats`` calls, and the peak traced memory of one call (MiB)."""
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    gc.collect()
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return min(times), peak


def course_hippocampus():
    from medseg_course.data import load_dataset

    ds = load_dataset("msd-hippocampus", split="all", progress=False, cache=False)
    return [(s.image, s.mask) for s in ds]


def reference_hippocampus():
    import nibabel as nib
    from medseg_course.data import dataset_path

    root = dataset_path("msd-hippocampus")
    images = sorted((root / "images").glob("hippocampus_*.nii.gz"))
    return [(np.asarray(nib.load(p).dataobj, dtype=np.float32),
             np.asarray(nib.load(root / "labels" / p.name).dataobj, dtype=np.uint8)) for p in images]


def course_dsb():
    from medseg_course.data import load_dataset

    ds = load_dataset("dsb2018", split="all", progress=False, cache=False)
    return [(s.image, s.mask) for s in ds]


def reference_dsb():
    import imageio.v3 as iio
    from medseg_course.data import dataset_path

    out = []
    for case in sorted((dataset_path("dsb2018") / "stage1_train").iterdir()):
        image = iio.imread(case / "images" / f"{case.name}.png")[..., :3]
        masks = [iio.imread(p) > 0 for p in sorted((case / "masks").glob("*.png"))]
        out.append((image, np.any(masks, axis=0)))
    return out


def main() -> None:
    from medseg_course.data import data_dir

    print("medseg_course.data loading benchmark")
    print(f"python {platform.python_version()}, numpy {np.__version__}, machine {platform.machine()}, "
          f"data dir {data_dir()}")
    print("ratio = course time / reference time (> 1: verification and normalisation cost that much)\n")
    print("| dataset | cases | course s | course peak MiB | reference | ref s | ref peak MiB | ratio |")
    print("|---|---:|---:|---:|---|---:|---:|---:|")
    for name, course, reference, ref_name in [
        ("msd-hippocampus", course_hippocampus, reference_hippocampus, "nibabel, no checks"),
        ("dsb2018", course_dsb, reference_dsb, "imageio, no checks"),
    ]:
        n = len(course())
        t_course, m_course = measure(course)
        t_ref, m_ref = measure(reference)
        print(f"| {name} | {n} | {t_course:.2f} | {m_course:.0f} | {ref_name} | {t_ref:.2f} | {m_ref:.0f} | "
              f"{t_course / t_ref:.2f} |")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nprocess peak resident memory: {rss:.0f} MiB")


if __name__ == "__main__":
    if not Path(__file__).exists():  # pragma: no cover
        raise SystemExit("run from a checkout")
    main()
