"""Benchmark: UNet++ against U-Net at a similar parameter count, trained with the same recipe and
budget, and UNet++ pruned to L1..L4 at inference, in one process.

Run::

    MEDSEG_DATA_DIR=/path/to/datasets MEDSEG_THREADS=1 python benchmarks/bench_unetpp.py [--fast]
        [--width 16] [--epochs 24] [--device cpu|cuda] [--threads N]

The two networks
----------------
* ``UNet(1, 1, features=(f, 2f, 4f, 8f, 16f), norm="group")``: the U-Net of the 2D nuclei recipe
  (``medseg_course.recipes.nuclei``, ``f = 16`` there);
* ``UNetPlusPlus(1, 1, features=(f, 2f, 4f, 8f, 13f), norm="group", deep_supervision=True)``: the
  same widths except the bottom level, narrowed from 16f to 13f so that the two networks have
  about the same number of parameters (UNet++ has 2 % more at every width; with 16f it would have
  17 % more). UNet++'s extra parameters are its nested nodes; most of U-Net's sit in the bottom
  level.

What is measured (all in this one process)
------------------------------------------
1. **Parameters** of both, and their ratio.
2. **Training throughput**: one step = forward, loss, backward, AdamW update on the same batch
   of the recipe's loader (8 crops of 128 x 128); UNet++'s loss is the recipe's loss wrapped in
   ``DeepSupervisionLoss`` (mean over L1..L4). Steps of the two are timed alternately, so both
   see the same machine load; images/s and the ratio.
3. **Training with the same recipe and budget**: ``NucleiRecipe()`` (augmented crops, Dice + CE
   with batch Dice, AdamW 3e-3 with cosine decay, ``epochs`` epochs, seed 0, best epoch by the
   validation Dice of the full network), the same loader seed for both. Reported: training time,
   then per-image Dice on the validation split (used to pick the epoch, so slightly optimistic)
   and on the test split (untouched), with the recipe's inference (8 flips/rotations averaged,
   holes filled), for U-Net and for UNet++ pruned to each level L1..L4.
4. **Inference time per image** (eval, no gradients, one pass without test-time augmentation) on
   a 256 x 256 and a 520 x 696 DSB2018 image, for U-Net and UNet++ at L1..L4; the five are timed
   round-robin (medians), so they share the machine's load; ratios against U-Net.

``--fast`` trains 1 epoch on 16 images with the fast recipe's settings (64 x 64 crops) and
scores 4 validation / 4 test images: a smoke run, not a result.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_times  # noqa: E402

from medseg_course.data.loaders import ImageDataset, make_loader  # noqa: E402
from medseg_course.losses import DeepSupervisionLoss  # noqa: E402
from medseg_course.models import UNet, UNetPlusPlus  # noqa: E402
from medseg_course.recipes import nuclei as rc  # noqa: E402
from medseg_course.runtime import choose_device, limit_threads, seed_everything  # noqa: E402
from medseg_course.train import TrainConfig, fit, make_optimizer  # noqa: E402

SEED = 0
LEVELS = (1, 2, 3, 4)


def unet(f: int) -> UNet:
    return UNet(1, 1, features=(f, 2 * f, 4 * f, 8 * f, 16 * f), norm="group")


def unetpp(f: int) -> UNetPlusPlus:
    return UNetPlusPlus(1, 1, features=(f, 2 * f, 4 * f, 8 * f, 13 * f), norm="group", deep_supervision=True)


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def level_params(model: UNetPlusPlus, level: int) -> int:
    """Parameters the sub-network L``level`` uses: the nodes x_i_j with i + j <= level, and its head."""
    nodes = [getattr(model, f"conv_{i}_{j}") for i in range(5) for j in range(5 - i) if i + j <= level]
    return sum(n_params(m) for m in nodes) + n_params(model.heads[level - 1])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def loss_for(model, recipe):
    loss = rc.make_loss(recipe)
    return DeepSupervisionLoss(loss) if getattr(model, "deep_supervision", False) else loss


def train_step(model, recipe, x, y, device):
    model.to(device).train()
    opt = make_optimizer(model, TrainConfig(lr=recipe.lr))
    loss_fn = loss_for(model, recipe).to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        sync(device)

    return step


def round_robin_medians(fns: dict, device, min_runs: int = 3, max_runs: int = 20, budget_s: float = 5.0) -> dict:
    """Median wall time of each function, the functions called in turn after one warm-up each."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    start = time.perf_counter()
    while min(len(t) for t in times.values()) < min_runs or (
            len(times[next(iter(times))]) < max_runs and time.perf_counter() - start < budget_s):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(t) for k, t in times.items()}


def train(name, model, recipe, train_data, val_pairs, epochs, device, progress):
    """The recipe's training (what ``train_nuclei_unet`` does), with the loss wrapped for deep supervision."""
    samples, pairs = train_data
    loader = rc.make_train_loader(pairs, recipe, instances=[s.instances for s in samples])
    val_loader = make_loader(ImageDataset(val_pairs), batch_size=1)
    config = TrainConfig(epochs=epochs, lr=recipe.lr, weight_decay=recipe.weight_decay,
                         lr_schedule=recipe.lr_schedule, batch_size=recipe.batch_size, seed=recipe.seed)
    start = time.perf_counter()
    history = fit(model, loader, val_loader, loss_for(model, recipe), config, device=device, progress=progress)
    seconds = time.perf_counter() - start
    print(f"  {name:<8} {len(loader) * epochs} steps in {seconds:7.1f} s; best epoch {history.best_epoch} "
          f"(validation Dice of all pixels {history.best:.4f})", flush=True)
    return model.eval(), seconds


def scores(model, split_data, recipe, device) -> float:
    return rc.evaluate_nuclei(model, split_data, tta=recipe.tta, threshold=recipe.threshold,
                              min_size=recipe.min_size, fill_holes=recipe.fill_holes, device=device).mean


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="a quick smoke run (1 epoch, few images)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: MEDSEG_THREADS, else the usable cores)")
    parser.add_argument("--width", type=int, default=None,
                        help="f, the width of the first level (default 16; 8 with --fast)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the recipe's 24; 1 with --fast)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        limit_threads()
    device = choose_device(args.device)
    recipe = rc.FAST_RECIPE if args.fast else rc.NucleiRecipe()
    f = args.width or (8 if args.fast else recipe.features[0])
    recipe = dataclasses.replace(recipe, features=(f, 2 * f, 4 * f, 8 * f, 16 * f))
    epochs = args.epochs or (1 if args.fast else recipe.epochs)
    n_train, n_eval = (16, 4) if args.fast else (None, None)
    budget_s = 1.0 if args.fast else 8.0
    progress = sys.stderr.isatty()

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, load average "
          f"{load[0]:.2f} at start; python {sys.version.split()[0]}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {device}{', FAST smoke run' if args.fast else ''}")
    t0 = time.perf_counter()
    train_data = rc.nuclei_inputs("train", n=n_train)
    val = rc.nuclei_inputs("val", n=n_eval)
    test = rc.nuclei_inputs("test", n=n_eval)
    print(f"DSB2018: {len(train_data[1])} train, {len(val[1])} val, {len(test[1])} test images\n")

    # 1. parameters ------------------------------------------------------------------------------
    seed_everything(SEED)
    p_unet, p_pp = n_params(unet(f)), n_params(unetpp(f))
    print(f"1. Parameters: UNet features {tuple(unet(f).init_kwargs['features'])} {p_unet:,}; "
          f"UNet++ features {tuple(unetpp(f).init_kwargs['features'])} {p_pp:,}; ratio UNet++/UNet {p_pp / p_unet:.3f}")

    # 2. training throughput ------------------------------------------------------------------------
    x, y = next(iter(rc.make_train_loader(train_data[1], recipe,
                                          instances=[s.instances for s in train_data[0]])))[:2]
    x, y = x.to(device), y.to(device)
    seed_everything(SEED)
    t_unet, t_pp = median_times(train_step(unet(f), recipe, x, y, device),
                                train_step(unetpp(f), recipe, x, y, device), budget_s=budget_s)
    b = x.shape[0]
    print(f"\n2. Training throughput, batch {tuple(x.shape)}, forward + loss + backward + AdamW (medians, alternated):"
          f"\n  UNet {b / t_unet:7.2f} images/s   UNet++ (deep supervision) {b / t_pp:7.2f} images/s   "
          f"ratio UNet/UNet++ {t_pp / t_unet:.2f}")

    # 3. same recipe, same budget ------------------------------------------------------------------------
    print(f"\n3. Training, the nuclei recipe: {epochs} epochs of {recipe.patches_per_image} augmented "
          f"{recipe.patch_size}x{recipe.patch_size} crops per image, batch {recipe.batch_size}, {recipe.loss} "
          f"(batch Dice {recipe.batch_dice}), AdamW lr {recipe.lr:g} {recipe.lr_schedule}, seed {recipe.seed}; "
          f"inference with TTA {recipe.tta}, fill holes {recipe.fill_holes}")
    seed_everything(SEED)
    m_unet, s_unet = train("UNet", unet(f), recipe, train_data, val[1], epochs, device, progress)
    seed_everything(SEED)
    m_pp, s_pp = train("UNet++", unetpp(f), recipe, train_data, val[1], epochs, device, progress)
    dice = {"UNet": (scores(m_unet, val, recipe, device), scores(m_unet, test, recipe, device))}
    for level in LEVELS:
        m_pp.prune(level)
        dice[f"UNet++ L{level}"] = (scores(m_pp, val, recipe, device), scores(m_pp, test, recipe, device))
    m_pp.prune(4)
    for name, (v, t) in dice.items():
        print(f"  {name:<10} Dice val {v:.4f}   test {t:.4f}", flush=True)

    # 4. inference time per pruning level -----------------------------------------------------------------
    big = max(val[1] + test[1] + train_data[1], key=lambda p: p[0].size)[0]
    sizes = [(256, 256), tuple(big.shape[1:])]
    print("\n4. Inference time per image (eval, no gradients, one pass; medians, round-robin)")
    infer = {}
    for h, w in sizes:
        image = torch.from_numpy(np.ascontiguousarray(big[:, :h, :w]))[None].to(device)  # (1, 1, h, w)

        def run(model, level=None):
            def fn():
                if level is not None:
                    model.prune(level)
                with torch.no_grad():
                    model(image)
            return fn

        fns = {"UNet": run(m_unet.to(device).eval())}
        fns.update({f"UNet++ L{level}": run(m_pp.to(device).eval(), level) for level in LEVELS})
        infer[(h, w)] = round_robin_medians(fns, device, budget_s=budget_s)
        m_pp.prune(4)
        print(f"  {h}x{w}: " + "   ".join(f"{k} {v * 1e3:.1f} ms" for k, v in infer[(h, w)].items()), flush=True)

    # summary ------------------------------------------------------------------------------------------------
    load_end = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"\nSummary (f={f}, {epochs} epochs; load average {load[0]:.2f} at start, {load_end[0]:.2f} at end; "
          f"{time.perf_counter() - t0:.0f} s in total)")
    print("| | parameters | Dice val | Dice test | " + " | ".join(f"ms {h}x{w}" for h, w in sizes)
          + " | time vs UNet |")
    print("|---|---:|---:|---:|" + "---:|" * len(sizes) + "---:|")
    for name, (v, t) in dice.items():
        p = p_unet if name == "UNet" else level_params(m_pp, int(name[-1]))
        ms = " | ".join(f"{infer[s][name] * 1e3:.1f}" for s in sizes)
        ratio = infer[sizes[-1]][name] / infer[sizes[-1]]["UNet"]
        print(f"| {name} | {p:,} | {v:.3f} | {t:.3f} | {ms} | {ratio:.2f} |")
    print(f"| training ({epochs} epochs) | | | | | UNet {s_unet:.0f} s, UNet++ {s_pp:.0f} s: "
          f"ratio {s_pp / s_unet:.2f} |")
    print(f"| training throughput, images/s | | | | | UNet {b / t_unet:.2f}, UNet++ {b / t_pp:.2f}: "
          f"ratio {t_pp / t_unet:.2f} |")
    print(f"(parameters: those each level uses, of UNet++'s {p_pp:,}; time vs UNet: inference time on the largest "
          "image divided by U-Net's; Dice: mean per image, the recipe's inference with TTA)")


if __name__ == "__main__":
    main()
