"""Benchmark: the course's 3D recipe on MSD Hippocampus, trained for a wall-clock budget (15 minutes by
default), scored per class on the held-out test split (and on the validation split).

Run::

    MEDSEG_DATA_DIR=/path/to/datasets python benchmarks/bench_unet3d.py [--minutes 15] [--threads N]
        [--device cpu|cuda] [--epochs E] [--seed 0] [--save model.pt] [--set key=value ...]

The issue's target: a mean Dice over the anterior and posterior hippocampus of at least 0.88 on
held-out data after 15 minutes of training on a 2-core CPU (and 0.89 on a GPU). A plain U-Net reaches
about 0.87 in 12 minutes on that CPU; nnU-Net reports about 0.90 / 0.89 after hours of GPU training.

What it does, in one process:

1. trains :class:`~medseg_course.recipes.hippocampus.HippocampusRecipe` (or the settings changed with
   ``--set``) on the 143 training volumes, for ``--minutes`` of training time (the learning rate decays
   over that time; ``--epochs`` gives a fixed number of epochs instead). The clock counts the training
   loop only: data loading before it and the evaluation after it are timed and printed apart;
2. scores the trained network on the 27 test volumes and the 30 validation volumes with the recipe's
   inference (whole volumes, or sliding windows with Gaussian blending for volumes larger than the box),
   without and with the test-time left-right flip and the largest-connected-component postprocessing,
   per case, then averaged: anterior, posterior, and their mean (the target's metric);
3. prints the machine (CPU model, cores, torch threads, load average before and after), so that a
   timing taken on a busy machine can be recognised as such: on a shared machine the training loop
   gets fewer steps in its 15 minutes, and the Dice is then a lower bound.

``--threads`` sets torch's thread count (default: ``medseg_course.runtime.available_cpus()``, one per
usable core; ``MEDSEG_THREADS`` overrides it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

from medseg_course.recipes import hippocampus as H
from medseg_course.runtime import available_cpus, choose_device, seed_everything


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _parse_set(items) -> dict:
    out = {}
    for item in items or []:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget in minutes (default 15)")
    parser.add_argument("--epochs", type=int, default=None, help="train a fixed number of epochs instead")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: one per usable core)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="change recipe settings, e.g. lr=0.01")
    parser.add_argument("--save", default=None, help="save the trained model (medseg-course checkpoint)")
    args = parser.parse_args(argv)

    threads = args.threads or available_cpus()
    torch.set_num_threads(threads)
    device = choose_device(args.device)
    seed_everything(args.seed)
    budget = dict(minutes=None, epochs=args.epochs) if args.epochs else dict(minutes=args.minutes)
    recipe = H.HippocampusRecipe(seed=args.seed, **budget, **_parse_set(args.set))

    print(f"machine: {_cpu_name()}, {os.cpu_count()} CPUs visible, {available_cpus()} usable, torch threads "
          f"{torch.get_num_threads()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"torch {torch.__version__}, python {platform.python_version()}, load average before: {_load()}")
    print(f"recipe: {recipe}")

    start = time.perf_counter()
    train = H.load_hippocampus("train")
    val = H.load_hippocampus("val")
    test = H.load_hippocampus("test")
    print(f"data: {len(train)} train, {len(val)} val, {len(test)} test volumes, loaded in "
          f"{time.perf_counter() - start:.1f} s")

    model, history = H.train_hippocampus(recipe, train, device=device, progress=sys.stderr.isatty())
    train_s = sum(history.seconds)
    epochs = len(history["epoch"])
    print(f"training: {train_s:.1f} s ({train_s / 60:.2f} min) of training loop, {history.steps} steps of "
          f"{recipe.batch_size} volumes ({history.steps * recipe.batch_size / len(train):.1f} epochs), final loss "
          f"{history['train_loss'][-1]:.4f}; load average after: {_load()}")
    if args.save:
        from medseg_course.train import save_checkpoint

        save_checkpoint(args.save, model, history=history, extra={"recipe": recipe.to_dict()})

    results = {"train_seconds": train_s, "epochs": epochs, "steps": history.steps}
    print(f"{'split':<6}{'inference':<28}{'anterior':>10}{'posterior':>11}{'mean':>8}{'seconds':>9}")
    for split, samples in (("test", test), ("val", val)):
        for name, kw in (("network alone", dict(tta=False, lcc=False)),
                         ("+ left-right flip", dict(tta=True, lcc=False)),
                         ("+ flip + largest component", dict(tta=True, lcc=True))):
            t = time.perf_counter()
            sc = H.evaluate_hippocampus(model, samples=samples, recipe=recipe, device=device, **kw)
            print(f"{split:<6}{name:<28}{sc.anterior:>10.4f}{sc.posterior:>11.4f}{sc.mean:>8.4f}"
                  f"{time.perf_counter() - t:>9.1f}")
            results[f"{split}/{name}"] = sc
    final = results["test/+ flip + largest component"]
    verdict = "meets" if final.mean >= 0.88 else "misses"
    print(f"RESULT: test mean Dice {final.mean:.4f} (anterior {final.anterior:.4f}, posterior {final.posterior:.4f}) "
          f"after {train_s / 60:.2f} min of training on {threads} thread(s) of {device}: {verdict} the 0.88 target")
    return results


if __name__ == "__main__":
    main()
