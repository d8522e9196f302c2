"""Benchmark medseg_course.classical.clustering's k-means against scikit-learn's KMeans.

Run: ``python benchmarks/bench_clustering.py`` (CPU, with ``MEDSEG_DATA_DIR`` set).

Inputs: the pixels of real images as the notebook clusters them: a DSB2018 brightfield image in
RGB, the largest DSB2018 fluorescence image in grey, and a whole Hippocampus MRI crop in 3D.

1. **Same initial centres** (k-means++ from the course, seeded): ours
   ``kmeans(X, k, init=centres)`` against ``KMeans(k, init=centres, n_init=1,
   algorithm="lloyd")``. The answer must be the same: the fraction of identical labels, the relative
   inertia difference, the largest centre difference and both iteration counts are printed.
2. **Each with its own seeding** (ours: k-means++ with one trial; scikit-learn: greedy k-means++,
   ``n_init=1``): the inertias should agree within a small tolerance (different local minima are
   possible, the printed ratio shows how close).

Times are medians of alternate runs in this one process, with scikit-learn's OpenMP/BLAS pools
limited to one thread (``threadpoolctl``), as ours uses one core; ``ratio = sklearn time / our
time`` (above 1: ours faster).
"""

from __future__ import annotations

import os
import platform
import sys

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from medseg_course import data
from medseg_course.classical import clustering as cl
from _timing import median_times  # noqa: E402  (benchmarks/ is on sys.path when run as a script)




def inputs():
    train = data.load_dataset("dsb2018", split="train")
    bright = next(s for s in train if s.category.startswith("brightfield"))
    fluo = max((s for s in train if s.category.startswith("fluorescence")), key=lambda s: s.image.size)
    hippo = data.load_dataset("msd-hippocampus", split="train")[0]
    yield f"DSB2018 brightfield RGB {bright.image.shape[1:]}", bright.image.reshape(3, -1).T, (3, 4)
    yield f"DSB2018 fluorescence grey {fluo.image.shape[1:]}", fluo.image.reshape(1, -1).T, (2, 3)
    yield f"Hippocampus MRI 3D {hippo.image.shape[1:]}", hippo.image.reshape(1, -1).T, (3, 4)


def main():
    print(f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"{os.cpu_count()} CPU(s); sklearn limited to 1 thread")
    print()
    print("1. same initial centres (course k-means++, seed 0)")
    header = (f"{'input':<38} {'k':>2} {'N':>7} {'ours ms':>8} {'sk ms':>8} {'ratio':>6} "
              f"{'same labels':>11} {'inertia rel diff':>16} {'max centre diff':>15} {'iters':>7}")
    print(header)
    print("-" * len(header))
    rows2 = []
    with threadpool_limits(1):
        for name, X, ks in inputs():
            X = np.ascontiguousarray(X, dtype=np.float64)
            for k in ks:
                init, _ = cl.kmeans_plusplus(X, k, seed=0)
                ours = cl.kmeans(X, k, init=init)
                sk = KMeans(k, init=init, n_init=1, algorithm="lloyd").fit(X)
                same = float(np.mean(ours.labels == sk.labels_))
                rel = abs(ours.inertia - sk.inertia_) / sk.inertia_
                dc = float(np.abs(ours.centers - sk.cluster_centers_).max())
                t_ours, t_sk = median_times(lambda: cl.kmeans(X, k, init=init),
                                            lambda: KMeans(k, init=init, n_init=1, algorithm="lloyd").fit(X))
                print(f"{name:<38} {k:>2} {len(X):>7} {t_ours * 1e3:>8.1f} {t_sk * 1e3:>8.1f} "
                      f"{t_sk / t_ours:>6.2f} {same:>11.6f} {rel:>16.2e} {dc:>15.2e} "
                      f"{ours.n_iter:>3}/{sk.n_iter_:<3}")
                assert same == 1.0 and rel < 1e-9, "k-means differs from scikit-learn from the same init"
                # 2. each with its own seeding
                t_o2, t_s2 = median_times(lambda: cl.kmeans(X, k, seed=0),
                                          lambda: KMeans(k, n_init=1, random_state=0).fit(X))
                rows2.append((name, k, cl.kmeans(X, k, seed=0).inertia,
                              KMeans(k, n_init=1, random_state=0).fit(X).inertia_, t_o2, t_s2))
    print()
    print("2. each with its own seeding (n_init=1)")
    header = f"{'input':<38} {'k':>2} {'ours inertia':>13} {'sk inertia':>13} {'ours/sk':>8} {'ours ms':>8} {'sk ms':>8} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    for name, k, io, isk, to, ts in rows2:
        print(f"{name:<38} {k:>2} {io:>13.5g} {isk:>13.5g} {io / isk:>8.4f} {to * 1e3:>8.1f} {ts * 1e3:>8.1f} "
              f"{ts / to:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
