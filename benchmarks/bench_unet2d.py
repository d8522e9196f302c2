"""Benchmark: the course's 2D U-Net recipe on DSB2018, trained at its full budget, against Part I's
best classical method on the same images.

Run::

    MEDSEG_DATA_DIR=/path/to/datasets python benchmarks/bench_unet2d.py [--device cuda] [--threads N]

What it does:

1. trains :func:`medseg_course.recipes.nuclei.train_nuclei_unet` with the full
   :class:`~medseg_course.recipes.nuclei.NucleiRecipe` (``--epochs`` overrides its 24 epochs) on the
   training split, keeping the weights of the best validation epoch; prints the wall time and the
   process's CPU time (on a shared machine the wall time is an upper bound);
2. scores the model on the validation split (used to choose the epoch) and on the test split (used
   for nothing else): mean per-image Dice with one pass, with test-time flips (8 flips/rotations),
   and with flips + filled holes (the recipe's inference), per image category;
3. runs every Part I method (:func:`medseg_course.classical.results.classical_results`) on the same
   splits, and prints the recipe's margin over the best one and whether the course's targets hold
   (Dice >= 0.93 and >= 0.05 above Part I's best, on the same split);
4. how much of the remaining error is the outline alone: the mean Dice if each image's predicted
   outline were moved by the best whole-pixel offset (-3..+3, :func:`dice_by_offset`; an oracle that
   looks at the truth, so an upper bound for any rule that only moves outlines), with the images
   whose best offset is 2 pixels or more, and the training split's own Dice (does the network fit
   the images it learns from?);
5. times inference on one 520 x 696 image, one pass against test-time flips (alternating medians,
   :func:`_timing.median_times`).

``--save PATH`` writes the trained model as a course checkpoint (:func:`medseg_course.train.save_checkpoint`),
``--load PATH`` skips training and scores a saved one; ``--ensemble PATH PATH ...`` scores the mean
probability of several.

Variants of the recipe recorded in BENCHMARKS.md: ``--epochs N``, ``--features 24 48 96 192 384`` (a
wider network), ``--oversample-worst K --repeats R --fit-from PATH`` (the K training images that the
saved model fits worst enter every epoch R times: hard-example oversampling).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_times  # noqa: E402

from medseg_course import metrics  # noqa: E402
from medseg_course.classical.results import classical_results  # noqa: E402
from medseg_course.recipes.nuclei import (  # noqa: E402
    NucleiRecipe,
    NucleiScores,
    dice_by_offset,
    evaluate_nuclei,
    nuclei_inputs,
    predict_nuclei,
    short_category,
    train_nuclei_unet,
)
from medseg_course.runtime import Runtime, choose_device, seed_everything  # noqa: E402
from medseg_course.train import load_checkpoint, save_checkpoint, TrainConfig  # noqa: E402

TARGET = 0.93
MARGIN = 0.05


def per_category(categories, dice) -> str:
    cats = [short_category(c) for c in categories]
    parts = [f"{c} {np.mean([d for d, k in zip(dice, cats) if k == c]):.3f} ({cats.count(c)})" for c in sorted(set(cats))]
    return ", ".join(parts)


class MeanProbability(torch.nn.Module):
    """Several binary models as one: the logit of their mean foreground probability."""

    def __init__(self, models):
        super().__init__()
        self.members = torch.nn.ModuleList(models)

    def forward(self, x):
        p = torch.stack([torch.sigmoid(m(x)) for m in self.members]).mean(0)
        return torch.logit(p.clamp(1e-6, 1 - 1e-6))


def oversampled_worst(model, k: int, repeats: int, device):
    """The training pairs, the ``k`` images ``model`` fits worst (one pass, Dice) ``repeats`` times each."""
    samples, pairs = nuclei_inputs("train")
    fit = evaluate_nuclei(model, (samples, pairs), tta=False, device=device)
    order = np.argsort(fit.dice)[:k]
    print(f"oversampling x{repeats} the {k} training images fitted worst: "
          + ", ".join(f"{samples[i].case_id[:6]} {short_category(samples[i].category)} {fit.dice[i]:.3f}" for i in order))
    worst = set(order.tolist())
    return [p for i, p in enumerate(pairs) for _ in range(repeats if i in worst else 1)]


def pooled_dice(scores: NucleiScores, pairs) -> float:
    """Dice over all pixels of a split at once (large images weigh more than in the per-image mean)."""
    pred = np.concatenate([m.ravel() for m in scores.masks])[None]  # one (1, pixels) image of the whole split
    truth = np.concatenate([t.ravel() > 0 for _, t in pairs])[None]
    return metrics.dice(pred, truth)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="write the trained model here (course checkpoint)")
    parser.add_argument("--load", default=None, help="score this checkpoint instead of training")
    parser.add_argument("--ensemble", nargs="+", default=None, metavar="PATH",
                        help="score the mean probability of these checkpoints instead of training")
    parser.add_argument("--features", type=int, nargs="+", default=None, help="override the U-Net's widths")
    parser.add_argument("--oversample-worst", type=int, default=0, metavar="K",
                        help="oversample the K training images that --fit-from fits worst")
    parser.add_argument("--repeats", type=int, default=4, help="with --oversample-worst: times per epoch")
    parser.add_argument("--fit-from", default=None, metavar="PATH", help="with --oversample-worst: a checkpoint")
    args = parser.parse_args(argv)
    if args.oversample_worst and not args.fit_from:
        parser.error("--oversample-worst needs --fit-from: the checkpoint whose fit picks the images")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    seed_everything(args.seed)
    recipe = NucleiRecipe(seed=args.seed)
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    if args.features is not None:
        recipe = dataclasses.replace(recipe, features=tuple(args.features))
    print(f"machine: {platform.machine()} {platform.processor() or ''}, python {sys.version.split()[0]}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}")
    print(f"recipe: {recipe}\n")

    if args.load:
        model = load_checkpoint(args.load).model.to(device).eval()
        print(f"loaded {args.load}")
    elif args.ensemble:
        model = MeanProbability([load_checkpoint(path).model for path in args.ensemble]).to(device).eval()
        print(f"mean probability of {len(args.ensemble)} models: {', '.join(args.ensemble)}")
    else:
        train = None
        if args.oversample_worst:
            fit_model = load_checkpoint(args.fit_from).model.to(device).eval()
            train = oversampled_worst(fit_model, args.oversample_worst, args.repeats, device)
            seed_everything(args.seed)  # training starts from the same random state as without oversampling
        rt = Runtime(device=device, seed=args.seed, fast=False, environment="local")
        wall, cpu = time.perf_counter(), time.process_time()
        model, history = train_nuclei_unet(rt=rt, recipe=recipe, train=train, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"1. training: {recipe.epochs} epochs in {wall:.0f} s wall, {cpu:.0f} s CPU "
              f"(best validation epoch {history.best_epoch}, pooled validation Dice {history.best:.4f})")
        if args.save:
            save_checkpoint(args.save, model, TrainConfig(epochs=recipe.epochs, lr=recipe.lr, seed=recipe.seed),
                            history, extra={"recipe": recipe.to_dict()})
            print(f"   saved to {args.save}")

    print("\n2.-3. mean per-image Dice (images per category in brackets)")
    for split in ("val", "test"):
        data = nuclei_inputs(split)
        start = time.perf_counter()
        one = evaluate_nuclei(model, data, tta=False, fill_holes=False, device=device)
        tta = evaluate_nuclei(model, data, tta=True, fill_holes=False, device=device)
        full = evaluate_nuclei(model, data, tta=True, fill_holes=True, device=device, keep_masks=True)
        seconds = time.perf_counter() - start
        part1 = classical_results(split, progress=False)
        best, best_dice = part1.best()
        print(f"[{split}, {len(full.dice)} images; scoring {seconds:.0f} s]")
        print(f"  recipe, one pass         {one.mean:.4f}")
        print(f"  recipe, test-time flips  {tta.mean:.4f}")
        print(f"  recipe, flips + fill     {full.mean:.4f}   {per_category(full.categories, full.dice)}")
        print(f"  (pooled over all pixels  {pooled_dice(full, data[1]):.4f})")
        order = [part1.case_ids.index(c) for c in full.case_ids]
        print(f"  Part I best: {best:<14}{best_dice:.4f}   "
              f"{per_category(full.categories, part1.dice[best][order])}")
        margin = full.mean - best_dice
        ok = full.mean >= TARGET and margin >= MARGIN
        print(f"  margin over Part I's best {margin:+.4f}; target (>= {TARGET}, >= +{MARGIN}) "
              f"{'met' if ok else 'NOT met'}")

    print("\n4. the outline alone: mean Dice with each image's best outline offset (oracle, -3..+3 px)")
    for split in ("train", "val", "test"):
        data = nuclei_inputs(split)
        scores = evaluate_nuclei(model, data, device=device, keep_masks=True)
        table = np.array([dice_by_offset(m, t > 0) for m, (_, t) in zip(scores.masks, data[1])])  # (N, 7)
        offsets = table.argmax(axis=1) - 3
        wide = [f"{c[:8]} {short_category(k)} {d:.3f}->{b:.3f} (+{o})" for c, k, d, b, o in
                zip(scores.case_ids, scores.categories, table[:, 3], table.max(axis=1), offsets) if o >= 2]
        print(f"  {split:<5} as predicted {table[:, 3].mean():.4f}, best offset {table.max(axis=1).mean():.4f}; "
              f"{len(wide)} of {len(offsets)} images want >= 2 px wider outlines")
        for line in wide:
            print(f"        {line}")

    print("\n5. inference on one 520 x 696 image")
    big = max(nuclei_inputs("val")[1], key=lambda p: p[1].size)[0]
    t_one, t_tta = median_times(lambda: predict_nuclei(model, big, tta=False, device=device),
                                lambda: predict_nuclei(model, big, tta=True, device=device), budget_s=10.0)
    print(f"   one pass {t_one:.3f} s, test-time flips {t_tta:.3f} s ({t_tta / t_one:.1f}x)")


if __name__ == "__main__":
    main()
