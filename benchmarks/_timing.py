"""Timing helper shared by the benchmark scripts (imported as ``from _timing import median_times``)."""

import statistics
import time


def median_times(fn_a, fn_b, min_runs=3, max_runs=20, budget_s=3.0):
    """Median wall times (s) of ``fn_a()`` and ``fn_b()``, timed alternately after a warm-up.

    Alternating the two calls exposes both to the same machine load, so their ratio is steadier than
    either time on a shared machine.
    """
    fn_a()
    fn_b()
    times_a, times_b = [], []
    start = time.perf_counter()
    while len(times_a) < min_runs or (len(times_a) < max_runs and time.perf_counter() - start < budget_s):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times_a), statistics.median(times_b)
