"""One runtime helper for the whole course: device, seed, environment and work budget.

Every notebook starts with ``rt = setup()``. Nothing else in the course picks a device, seeds a
generator or decides how much work to do: it asks the :class:`Runtime` that ``setup`` returns.

The budget has two modes:

* **full** (the default): what a student runs; the numbers quoted in the notebooks come from it.
* **fast** (``MEDSEG_FAST=1``, set by CI and by ``medseg-course run --fast``): fewer epochs and
  less data, but every code path still runs.

Introduced in 00_welcome.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}


def detect_environment() -> str:
    """Name the environment the course runs in.

    Returns
    -------
    str
        One of ``"colab"``, ``"kaggle"``, ``"binder"``, ``"ci"`` or ``"local"``.

    Notes
    -----
    Detection uses the environment variables those platforms set: ``COLAB_RELEASE_TAG`` /
    ``COLAB_GPU`` (Colab), ``KAGGLE_KERNEL_RUN_TYPE`` (Kaggle), ``BINDER_SERVICE_HOST`` /
    ``BINDER_REPO_URL`` (mybinder.org), ``CI`` (CI services, and ``.ci/run``).

    Examples
    --------
    >>> detect_environment() in {"colab", "kaggle", "binder", "ci", "local"}
    True
    """
    env = os.environ
    if "COLAB_RELEASE_TAG" in env or "COLAB_GPU" in env:
        return "colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in env:
        return "kaggle"
    if "BINDER_SERVICE_HOST" in env or "BINDER_REPO_URL" in env:
        return "binder"
    if env.get("CI", "").lower() in _TRUE:
        return "ci"
    return "local"


def fast_mode() -> bool:
    """True when the fast budget is on (``MEDSEG_FAST=1``).

    Examples
    --------
    >>> isinstance(fast_mode(), bool)
    True
    """
    return os.environ.get("MEDSEG_FAST", "").strip().lower() in _TRUE


def choose_device(prefer: str | None = None):
    """Pick the compute device: CUDA, then Apple MPS, then CPU.

    Parameters
    ----------
    prefer : str, optional
        Force a device (``"cpu"``, ``"cuda"``, ``"mps"``). The ``MEDSEG_DEVICE`` environment
        variable does the same for a whole run.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the preferred device is unknown or not available on this machine.
    """
    import torch

    prefer = prefer or os.environ.get("MEDSEG_DEVICE") or None
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if prefer is not None:
        name = prefer.split(":")[0]
        if name not in available:
            raise ValueError(f"prefer must be one of 'cpu', 'cuda', 'mps', got {prefer!r}")
        if not available[name]:
            raise ValueError(
                f"device {prefer!r} was asked for but is not available on this machine; "
                "unset MEDSEG_DEVICE or pass prefer=None to choose automatically"
            )
        return torch.device(prefer)
    for name in ("cuda", "mps"):
        if available[name]:
            return torch.device(name)
    return torch.device("cpu")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_cpus() -> int:
    """The number of CPU cores this process may actually use.

    Containers (Binder, CI runners) often show every core of the host while a CPU quota allows
    one or two; PyTorch then starts a thread per visible core and small convolutions run many
    times slower than on one thread. This reads the affinity mask and the cgroup quota
    (``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us`` in v1) and returns the smaller, at least 1.
    ``MEDSEG_THREADS`` overrides it.

    Examples
    --------
    >>> available_cpus() >= 1
    True
    """
    override = os.environ.get("MEDSEG_THREADS", "").strip()
    if override:
        try:
            return max(1, int(override))
        except ValueError:
            raise ValueError(f"MEDSEG_THREADS must be a whole number of threads, got {override!r}") from None
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = None
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            q, period = f.read().split()[:2]
            if q != "max":
                quota = int(q) / int(period)
    except (OSError, ValueError):
        try:
            with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
                q = int(f.read())
            with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
                period = int(f.read())
            if q > 0:
                quota = q / period
        except (OSError, ValueError):
            pass
    if quota is not None:
        cpus = min(cpus, max(1, int(quota)))
    return max(1, cpus)


def limit_threads() -> int:
    """Give PyTorch one thread per usable core (see :func:`available_cpus`); return the count."""
    import torch

    n = available_cpus()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (CPU and GPU) so that two runs give the same numbers.

    Parameters
    ----------
    seed : int
        A non-negative integer.

    Notes
    -----
    On the CPU results are then bitwise repeatable on the same machine. On a GPU some kernels
    (atomic adds in backward passes) stay non-deterministic; differences are in the last digits.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    import torch

    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))  # also seeds every CUDA device


@dataclass(frozen=True)
class Runtime:
    """What a notebook needs to know about where it runs.

    Attributes
    ----------
    device : torch.device
        Where tensors and models go.
    seed : int
        The seed every generator was given.
    fast : bool
        True under the fast budget (CI).
    environment : str
        ``"colab"``, ``"kaggle"``, ``"binder"``, ``"ci"`` or ``"local"``.
    """

    device: object
    seed: int
    fast: bool
    environment: str

    def budget(self, full: T, fast: T) -> T:
        """Return ``full`` in full mode and ``fast`` in fast mode.

        Examples
        --------
        >>> Runtime("cpu", 0, fast=True, environment="ci").budget(full=50, fast=2)
        2
        """
        return fast if self.fast else full

    def rng(self, offset: int = 0) -> np.random.Generator:
        """A NumPy generator derived from the run's seed (``offset`` gives independent streams)."""
        return np.random.default_rng(self.seed + offset)

    def report(self) -> str:
        """The one-line report that ``setup`` shows."""
        import torch

        dev = str(self.device)
        if dev.startswith("cuda"):
            where = f"GPU {torch.cuda.get_device_name(self.device)}"
        elif dev == "mps":
            where = "Apple GPU (MPS)"
        else:
            where = f"CPU ({torch.get_num_threads()} threads), no GPU found"
            if self.environment in {"colab", "kaggle"}:
                where += (
                    " (Colab: Runtime > Change runtime type > T4 GPU; "
                    "Kaggle: Settings > Accelerator > GPU)"
                )
            else:
                where += " (every notebook runs on the CPU; a GPU only makes training faster)"
        mode = "fast (MEDSEG_FAST=1)" if self.fast else "full"
        return f"medseg-course | device: {where} | budget: {mode} | seed: {self.seed} | environment: {self.environment}"


def setup(seed: int = 0, device: str | None = None, verbose: bool = True) -> Runtime:
    """Seed everything, choose the device and the budget, and report them in one line.

    Parameters
    ----------
    seed : int
        Seed for Python, NumPy and PyTorch.
    device : str, optional
        Force a device instead of choosing automatically (CUDA, then MPS, then CPU).
    verbose : bool
        Print the one-line report (the only thing this function prints).

    Returns
    -------
    Runtime

    Examples
    --------
    >>> rt = setup(seed=1, device="cpu", verbose=False)
    >>> rt.seed, str(rt.device)
    (1, 'cpu')

    Introduced in 00_welcome.
    """
    seed_everything(seed)
    limit_threads()
    rt = Runtime(device=choose_device(device), seed=int(seed), fast=fast_mode(),
                 environment=detect_environment())
    if verbose:
        print(rt.report())
    return rt
