"""Parallel test runs: how many pytest-xdist workers, how many threads each, and what runs together.

The test command (``python -m pytest``, see ``pyproject.toml``) runs with ``-n auto --dist loadscope``:

- ``auto`` means one worker per core this process may use (the affinity mask and container quota, as
  :func:`medseg_course.runtime.available_cpus` reads them), at most 4: every worker starts notebook
  kernels of 1.5-2 GB. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` or ``-n N`` on the command line override it,
  ``-n 0`` runs everything in one process.
- The usable cores are shared out between the workers: each worker, and every kernel it starts (through
  the environment variable ``MEDSEG_THREADS``), gets ``cores // workers`` torch threads. Two workers with
  one thread each keep two cores busier than one process with two threads, on these small networks.
- An nbval notebook must run in one kernel, cell after cell: all the cells of a notebook form one group.
  The tests of a module stay together too (their module-scoped fixtures, such as a trained model, are
  then built once), except ``tests/test_notebooks.py``, whose tests each execute a whole notebook and
  are spread over the workers one by one. (xdist's own ``loadgroup`` would say this with markers, but it
  renames test ids in a way that pytest 9.2 ignores; a scheduler that computes the scope is simpler.)
- The longest work units are handed out first (those notebook executions, then the notebooks' cells),
  the many short modules last, so that no worker is left alone with a long notebook at the end.
"""

from __future__ import annotations

import os

import pytest

MAX_WORKERS = 4
#: Modules whose tests are independent and long enough to be scheduled one by one.
SPREAD_MODULES = {"tests/test_notebooks.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    from medseg_course.runtime import available_cpus

    return min(available_cpus(), MAX_WORKERS)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class NotebookScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if module in SPREAD_MODULES else module

    return NotebookScheduling(config, log)


def pytest_configure(config):
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if count is None or os.environ.get("MEDSEG_THREADS"):
        return  # not an xdist worker, or the user chose the threads
    from medseg_course.runtime import available_cpus

    threads = max(1, available_cpus() // max(1, int(count)))
    os.environ["MEDSEG_THREADS"] = str(threads)  # inherited by the kernels this worker starts
    import torch

    torch.set_num_threads(threads)


def _schedule_rank(item) -> int:
    module = item.nodeid.split("::", 1)[0]
    return 0 if module in SPREAD_MODULES else 1 if module.endswith(".ipynb") else 2


def pytest_collection_modifyitems(config, items):
    items.sort(key=_schedule_rank)  # stable: the cells of a notebook keep their order
