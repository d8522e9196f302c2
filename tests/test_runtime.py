"""The runtime helper: device, seed, environment, budget."""

import numpy as np
import pytest
import torch

from medseg_course import runtime


def test_setup_seeds_everything_reproducibly():
    runtime.setup(seed=3, verbose=False)
    a = (np.random.rand(3), torch.rand(3))
    runtime.setup(seed=3, verbose=False)
    b = (np.random.rand(3), torch.rand(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_budget_follows_medseg_fast(monkeypatch):
    monkeypatch.setenv("MEDSEG_FAST", "1")
    assert runtime.setup(verbose=False).budget(full=10, fast=1) == 1
    monkeypatch.setenv("MEDSEG_FAST", "0")
    assert runtime.setup(verbose=False).budget(full=10, fast=1) == 10


@pytest.mark.parametrize("variables, expected", [
    ({"COLAB_RELEASE_TAG": "x"}, "colab"),
    ({"KAGGLE_KERNEL_RUN_TYPE": "Interactive"}, "kaggle"),
    ({"BINDER_SERVICE_HOST": "1.2.3.4"}, "binder"),
    ({"CI": "true"}, "ci"),
    ({}, "local"),
])
def test_environment_detection(monkeypatch, variables, expected):
    for name in ("COLAB_RELEASE_TAG", "COLAB_GPU", "KAGGLE_KERNEL_RUN_TYPE", "BINDER_SERVICE_HOST",
                 "BINDER_REPO_URL", "CI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert runtime.detect_environment() == expected


def test_device_choice_and_report(monkeypatch, capsys):
    monkeypatch.delenv("MEDSEG_DEVICE", raising=False)
    rt = runtime.setup(seed=0)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if runtime._mps_available() else "cpu")
    assert rt.device.type == expected
    line = capsys.readouterr().out.strip()
    assert line.startswith("medseg-course | device:") and "\n" not in line


def test_colab_without_gpu_says_how_to_get_one(monkeypatch):
    rt = runtime.Runtime(device=torch.device("cpu"), seed=0, fast=False, environment="colab")
    assert "Change runtime type" in rt.report()


def test_bad_device_and_seed_are_explained():
    with pytest.raises(ValueError, match="prefer must be one of"):
        runtime.choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available on this machine"):
            runtime.choose_device("cuda")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        runtime.seed_everything(-1)
