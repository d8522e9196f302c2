"""Benchmark: the course's 2D ``UNet`` against MONAI's ``BasicUNet`` at matched width, in one process.

Run::

    MEDSEG_DATA_DIR=/path/to/datasets MEDSEG_THREADS=1 python benchmarks/bench_unet_vs_monai.py [--fast]

MONAI is a development dependency (``pip install -e .[dev]``); the course itself never imports it.

The two networks
----------------
MONAI's ``BasicUNet(features=(f0, f0, 2 f0, 4 f0, 8 f0, f0))`` is a four-pooling U-Net whose
first two levels have the same width, instance norm (affine), LeakyReLU(0.1), 2x2 transposed
convolutions that halve the channels, and a last decoder step that keeps them. The course's
``UNet(features=(f0, f0, 2 f0, 4 f0, 8 f0), norm="instance", act="leakyrelu")`` has exactly
this topology (same convolutions, same up-convolutions, skips concatenated ``[skip, up]``);
the remaining differences are MONAI's convolution biases in front of every instance norm (which
the norm cancels; the course leaves them out), the LeakyReLU slope (0.1 against 0.01), how odd
sizes are handled (MONAI pads the upsampled features by one replicated row; the course pads
the input to a multiple of 16 and crops the logits) and the weight initialisation (both
PyTorch's defaults). Both return one binary logit channel.

What is measured (all in this one process, on the same inputs)
--------------------------------------------------------------
1. **Parameters** of both networks.
2. **Training throughput**: one step = forward, ``DiceCELoss``, backward, AdamW update, on the
   same batch of 8 DSB2018 crops of 128 x 128; the two models' steps are timed alternately
   (``benchmarks/_timing.py``), so both see the same machine load; images/s and the ratio, in
   three rounds (the range of the ratio is printed: on a shared machine it moves).
   Also at MONAI's default width ``f0 = 32`` when another width is trained.
3. **Inference time** (eval mode, no gradients) on one 256 x 256 and one 520 x 696 image,
   timed alternately; the ratio.
4. **Dice after the same training budget**: the same seed, the same loader (the same random
   crops and flips, in the same order: ``fit`` seeds the global generator they are drawn from),
   the same loss (``DiceCELoss``), optimizer (AdamW, cosine schedule) and number of epochs,
   trained by ``medseg_course.train.fit`` on the DSB2018 training split; the weights after the
   last epoch are scored (no epoch selection: ``fit``'s validation Dice, pixels pooled over the
   split, is printed per epoch but not used). Reported: the mean per-image Dice on the validation
   and test splits (whole images, as in the Part I table) and the training time of each model
   (the two runs are sequential, so their times depend on the load of the moment).

Inputs: one grey channel with bright nuclei (``nuclei_bright``, brightfield images inverted), the
binary mask, as in notebook 07. ``--fast`` trains 2 epochs on 16 images and scores 4
validation / 4 test images: a smoke run, not a result.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_times  # noqa: E402

from medseg_course import metrics  # noqa: E402
from medseg_course.data import load_dataset  # noqa: E402
from medseg_course.data.loaders import ImageDataset, PatchDataset, make_loader  # noqa: E402
from medseg_course.data.transforms import nuclei_bright  # noqa: E402
from medseg_course.losses import DiceCELoss  # noqa: E402
from medseg_course.models import UNet  # noqa: E402
from medseg_course.runtime import choose_device, limit_threads, seed_everything  # noqa: E402
from medseg_course.train import TrainConfig, fit, make_optimizer, predict  # noqa: E402

SEED = 0
CROP = 128
BATCH = 8


def course_unet(f0: int) -> torch.nn.Module:
    return UNet(1, 1, features=(f0, f0, 2 * f0, 4 * f0, 8 * f0), norm="instance", act="leakyrelu")


def monai_unet(f0: int) -> torch.nn.Module:
    from monai.networks.nets import BasicUNet

    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=1, features=(f0, f0, 2 * f0, 4 * f0, 8 * f0, f0))


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def pairs(dataset, n: int | None):
    samples = [dataset[i] for i in range(len(dataset) if n is None else min(n, len(dataset)))]
    return [(nuclei_bright(s.image, s.category)[None], (s.mask > 0).astype(np.int64)) for s in samples]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_step(model, x, y, device):
    model.to(device).train()
    opt = make_optimizer(model, TrainConfig(lr=1e-3))
    loss_fn = DiceCELoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        sync(device)

    return step


def throughput(f0: int, x, y, device, budget_s: float, rounds: int) -> list[tuple[float, float]]:
    """Median seconds per training step of the course's UNet and of BasicUNet (alternated), per round."""
    seed_everything(SEED)
    ours, theirs = train_step(course_unet(f0), x, y, device), train_step(monai_unet(f0), x, y, device)
    return [median_times(ours, theirs, budget_s=budget_s) for _ in range(rounds)]


def inference_times(f0: int, image, device, budget_s: float) -> tuple[float, float]:
    seed_everything(SEED)
    ours, theirs = course_unet(f0).to(device).eval(), monai_unet(f0).to(device).eval()

    def run(model):
        def f():
            with torch.no_grad():
                model(image)
            sync(device)
        return f

    return median_times(run(ours), run(theirs), budget_s=budget_s)


def per_image_dice(model, data, device) -> float:
    scores = [metrics.dice(predict(model, image, device=device, output="labels"), mask) for image, mask in data]
    return float(np.mean(scores))


def train_and_score(name, make_model, train_pairs, val_pairs, test_pairs, epochs, device, progress):
    seed_everything(SEED)
    model = make_model()  # same initial generator state for both
    crops = PatchDataset(train_pairs, CROP, patches_per_image=2, augment=True, foreground_fraction=0.5)
    train_loader = make_loader(crops, batch_size=BATCH, shuffle=True, drop_last=True, seed=SEED)
    val_loader = make_loader(ImageDataset(val_pairs), batch_size=1)
    config = TrainConfig(epochs=epochs, lr=3e-3, lr_schedule="cosine", batch_size=BATCH, seed=SEED,
                         restore_best=False)  # the weights after the whole budget: no selection on val
    start = time.perf_counter()
    history = fit(model, train_loader, val_loader, DiceCELoss(), config, device=device, progress=progress)
    seconds = time.perf_counter() - start
    result = dict(seconds=seconds, steps=len(train_loader) * epochs, best_epoch=history.best_epoch,
                  val=per_image_dice(model, val_pairs, device),
                  test=per_image_dice(model, test_pairs, device))
    print(f"  {name:<16} {result['steps']} steps in {seconds:6.1f} s; per-image Dice after the last epoch: "
          f"val {result['val']:.4f}, test {result['test']:.4f}\n"
          f"  {'':<16} validation Dice (pixels pooled) by epoch: "
          f"{' '.join(f'{v:.3f}' for v in history['val_dice'])}", flush=True)
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="a quick smoke run (2 epochs, few images)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: MEDSEG_THREADS, else the usable cores)")
    parser.add_argument("--width", type=int, default=16, help="f0, the width of the first level (default 16)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default 24; 2 with --fast)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    else:
        limit_threads()
    device = choose_device(args.device)
    f0 = args.width
    epochs = args.epochs or (2 if args.fast else 24)
    n_train, n_eval = (16, 4) if args.fast else (None, None)
    budget_s = 1.0 if args.fast else 8.0
    rounds = 1 if args.fast else 3
    progress = sys.stderr.isatty()

    import monai

    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, load average "
          f"{load[0]:.2f} at start; python {sys.version.split()[0]}, torch {torch.__version__}, "
          f"monai {monai.__version__}, threads {torch.get_num_threads()}, device {device}"
          f"{', FAST smoke run' if args.fast else ''}")
    t0 = time.perf_counter()
    train_pairs = pairs(load_dataset("dsb2018", split="train", progress=False), n_train)
    val_pairs = pairs(load_dataset("dsb2018", split="val", progress=False), n_eval)
    test_pairs = pairs(load_dataset("dsb2018", split="test", progress=False), n_eval)
    print(f"DSB2018: {len(train_pairs)} train, {len(val_pairs)} val, {len(test_pairs)} test images\n")

    # 1. parameters ------------------------------------------------------------------------
    widths = [f0] if args.fast or f0 == 32 else [f0, 32]
    print("1. Parameters (UNet features=(f0, f0, 2f0, 4f0, 8f0), BasicUNet features=(f0, f0, 2f0, 4f0, 8f0, f0))")
    params = {}
    for w in widths:
        params[w] = (n_params(course_unet(w)), n_params(monai_unet(w)))
        print(f"  f0={w:<3} course UNet {params[w][0]:>9,}   MONAI BasicUNet {params[w][1]:>9,}   "
              f"difference {params[w][1] - params[w][0]:,} (MONAI's conv biases before instance norm)")

    # 2. training throughput -----------------------------------------------------------------
    crops = PatchDataset(train_pairs, CROP, foreground_fraction=0.5, seed=SEED)
    x = torch.stack([crops[i][0] for i in range(BATCH)]).to(device)  # (8, 1, 128, 128)
    y = torch.stack([crops[i][1] for i in range(BATCH)]).to(device)  # (8, 128, 128)
    print(f"\n2. Training throughput, batch {BATCH} x 1 x {CROP} x {CROP}, forward + DiceCE + backward + AdamW "
          "(medians, alternated)")
    speed, spread = {}, {}
    for w in widths:
        times = throughput(w, x, y, device, budget_s, rounds)
        ratios = sorted(t_theirs / t_ours for t_ours, t_theirs in times)
        t_ours, t_theirs = (float(np.median([t[i] for t in times])) for i in (0, 1))
        speed[w], spread[w] = (BATCH / t_ours, BATCH / t_theirs), ratios
        print(f"  f0={w:<3} course {speed[w][0]:7.2f} images/s   MONAI {speed[w][1]:7.2f} images/s   "
              f"ratio course/MONAI {float(np.median(ratios)):.2f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})",
              flush=True)

    # 3. inference time ------------------------------------------------------------------------
    big = max(val_pairs + train_pairs, key=lambda p: p[0].size)[0]
    sizes = [(256, 256)] + ([] if args.fast else [tuple(big.shape[1:])])
    print("\n3. Inference time per image (eval, no gradients; medians, alternated)")
    infer = {}
    for h, w_ in sizes:
        image = torch.from_numpy(np.ascontiguousarray(big[:, :h, :w_]))[None].to(device)  # (1, 1, h, w)
        t_ours, t_theirs = inference_times(f0, image, device, budget_s)
        infer[(h, w_)] = (t_ours, t_theirs)
        print(f"  f0={f0:<3} {h}x{w_:<4} course {t_ours * 1e3:8.1f} ms   MONAI {t_theirs * 1e3:8.1f} ms   "
              f"ratio MONAI/course {t_theirs / t_ours:.2f}", flush=True)

    # 4. Dice after the same budget ----------------------------------------------------------------
    print(f"\n4. Training f0={f0}: {epochs} epochs, {2 * len(train_pairs)} random {CROP}x{CROP} crops per epoch "
          f"(flips/rot90, half centred on nuclei), batch {BATCH}, AdamW lr 3e-3 cosine, DiceCELoss, seed {SEED}")
    dice = {
        "course UNet": train_and_score("course UNet", lambda: course_unet(f0), train_pairs, val_pairs, test_pairs,
                                       epochs, device, progress),
        "MONAI BasicUNet": train_and_score("MONAI BasicUNet", lambda: monai_unet(f0), train_pairs, val_pairs,
                                           test_pairs, epochs, device, progress),
    }

    # summary ------------------------------------------------------------------------------------------
    ours, theirs = dice["course UNet"], dice["MONAI BasicUNet"]
    load_end = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    print(f"\nSummary (f0={f0}; load average {load[0]:.2f} at start, {load_end[0]:.2f} at end; "
          f"{time.perf_counter() - t0:.0f} s in total)")
    print("| | course `UNet` | MONAI `BasicUNet` | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| parameters | {params[f0][0]:,} | {params[f0][1]:,} | {params[f0][0] / params[f0][1]:.3f} |")
    for w in widths:
        r = spread[w]
        rng = "" if len(r) == 1 else f" ({r[0]:.2f}–{r[-1]:.2f})"
        print(f"| training, images/s (f0={w}) | {speed[w][0]:.2f} | {speed[w][1]:.2f} | "
              f"{float(np.median(r)):.2f}{rng} |")
    for (h, w_), (a, b) in infer.items():
        print(f"| inference {h}x{w_}, ms | {a * 1e3:.1f} | {b * 1e3:.1f} | {b / a:.2f} |")
    print(f"| training time, {epochs} epochs, s (one after the other: load-dependent) | {ours['seconds']:.0f} | "
          f"{theirs['seconds']:.0f} | {theirs['seconds'] / ours['seconds']:.2f} |")
    print(f"| Dice, val ({len(val_pairs)} images) | {ours['val']:.3f} | {theirs['val']:.3f} | "
          f"{ours['val'] - theirs['val']:+.3f} |")
    print(f"| Dice, test ({len(test_pairs)} images) | {ours['test']:.3f} | {theirs['test']:.3f} | "
          f"{ours['test'] - theirs['test']:+.3f} |")
    print("(ratios: throughput course/MONAI, times MONAI/course: > 1 means the course's UNet is faster; "
          "Dice rows give the difference course - MONAI)")


if __name__ == "__main__":
    main()
