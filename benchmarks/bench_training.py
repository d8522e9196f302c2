"""Benchmark: training throughput of PatchCNN and FCN, and sliding-window vs fully convolutional
inference, on DSB2018-sized 256 x 256 inputs.

Run::

    MEDSEG_DATA_DIR=/path/to/datasets python benchmarks/bench_training.py [--device cuda]

1. **Training throughput** (one optimizer step = forward, loss, backward, AdamW update), as
   samples per second and as *supervised pixels* per second: a PatchCNN step learns from one
   pixel per 45 x 45 patch, an FCN step from every pixel of a 256 x 256 image.
2. **Inference on one 256 x 256 image**: the patch classifier run on the patch around every pixel
   (:func:`~medseg_course.models.classify_every_pixel`, the sliding window) against the same
   weights rewritten as a fully convolutional network (:meth:`PatchCNN.to_fcn`), in the same
   process, with the outputs compared; FCN-8s inference on the same image for reference.

Inputs are crops of DSB2018 training images when ``MEDSEG_DATA_DIR`` holds a copy, synthetic
nuclei otherwise (throughput does not depend on the content). Times are medians of repeated runs
after a warm-up (the sliding window, which takes about a minute on two CPU cores, runs once);
torch uses the threads it is given (``--threads``, default: all cores).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np
import torch

from medseg_course.losses import CrossEntropyLoss
from medseg_course.models import FCN, PatchCNN, classify_every_pixel
from medseg_course.runtime import choose_device, seed_everything
from medseg_course.train import TrainConfig, make_optimizer

SIZE = 256
SEED = 0


def images_256(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` 256 x 256 single-channel images and masks: DSB2018 crops, or synthetic nuclei."""
    try:
        from medseg_course.data import load_dataset

        ds = load_dataset("dsb2018", split="train", channels=1)
        picked = [s for s in ds if min(s.image.shape[1:]) >= SIZE][:n]
        if len(picked) == n:
            return (np.stack([s.image[:, :SIZE, :SIZE] for s in picked]),
                    np.stack([(s.mask[:SIZE, :SIZE] > 0).astype(np.int64) for s in picked]), "dsb2018 crops")
    except Exception as err:  # no local copy: fall back to synthetic data
        print(f"(dsb2018 not available: {type(err).__name__}; using synthetic nuclei)")
    from medseg_course.data.synthetic import make_dataset

    samples = make_dataset(n, shape=(SIZE, SIZE), n_objects=30, seed=SEED)
    return (np.stack([s.image[None] for s in samples]), np.stack([s.mask for s in samples]),
            "synthetic nuclei")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn, device, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_step_fn(model, x, y, device):
    model.to(device).train()
    x, y = x.to(device), y.to(device)
    opt = make_optimizer(model, TrainConfig(lr=1e-3))
    loss_fn = CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    return step


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    seed_everything(SEED)
    images, masks, source = images_256(4)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, python {sys.version.split()[0]}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}")
    print(f"inputs: {source}, {SIZE}x{SIZE}\n")

    patch_model = PatchCNN(1, 2, patch_size=45)
    fcn = FCN(1, 2, "8s", base_channels=16)
    P = patch_model.patch_size

    # 1. training throughput ----------------------------------------------------------------
    rows = []
    batch_p = 256
    rng = np.random.default_rng(SEED)
    padded = np.pad(images[:, 0], ((0, 0), (P // 2, P // 2), (P // 2, P // 2)))
    ks, ys, xs = rng.integers(0, 4, batch_p), rng.integers(0, SIZE, batch_p), rng.integers(0, SIZE, batch_p)
    patches = torch.from_numpy(np.stack([padded[k, y:y + P, x:x + P] for k, y, x in zip(ks, ys, xs)])[:, None])
    labels = torch.from_numpy(masks[ks, ys, xs])
    t = median_time(train_step_fn(patch_model, patches, labels, device), device, args.repeats)
    rows.append(("PatchCNN (45x45 patches)", batch_p, t, batch_p / t, batch_p / t))
    batch_f = 4
    x, y = torch.from_numpy(images[:batch_f].copy()), torch.from_numpy(masks[:batch_f].copy())
    t = median_time(train_step_fn(fcn, x, y, device), device, args.repeats)
    rows.append(("FCN-8s (256x256 images)", batch_f, t, batch_f / t, batch_f * SIZE * SIZE / t))
    print("Training throughput (forward + loss + backward + AdamW step)")
    print(f"{'model':<26}{'batch':>6}{'ms/step':>10}{'samples/s':>12}{'pixels/s':>12}{'images/s':>10}")
    for name, b, t, sps, pps in rows:
        print(f"{name:<26}{b:>6}{1000 * t:>10.1f}{sps:>12.1f}{pps:>12.3g}{pps / SIZE**2:>10.3f}")
    print("(pixels/s: supervised pixels per second; images/s: the same in 256x256 images' worth)\n")

    # 2. inference: sliding window vs fully convolutional -----------------------------------
    patch_model.eval()
    dense = patch_model.to_fcn().eval()
    fcn.eval()
    image = torch.from_numpy(images[:1].copy()).to(device)
    with torch.no_grad():
        classify_every_pixel(patch_model, image[..., :16, :], batch_size=1024)  # warm-up
        sync(device)
        t0 = time.perf_counter()  # one run: 65,536 patches take long enough to time once
        slow_out = classify_every_pixel(patch_model, image, batch_size=1024)
        sync(device)
        t_slow = time.perf_counter() - t0
        fast_out = dense(image)
        t_dense = median_time(lambda: dense(image), device, args.repeats)
        t_fcn = median_time(lambda: fcn(image), device, args.repeats)
    diff = (slow_out - fast_out).abs().max().item()
    same = torch.equal(slow_out.argmax(1), fast_out.argmax(1))
    print(f"Inference on one {SIZE}x{SIZE} image ({SIZE * SIZE} pixels)")
    print(f"{'method':<44}{'s':>9}{'pixels/s':>12}")
    print(f"{'PatchCNN sliding window (65,536 patches)':<44}{t_slow:>9.3f}{SIZE**2 / t_slow:>12.3g}")
    print(f"{'PatchCNN.to_fcn() (one dense pass)':<44}{t_dense:>9.3f}{SIZE**2 / t_dense:>12.3g}")
    print(f"{'FCN-8s (one pass, for reference)':<44}{t_fcn:>9.3f}{SIZE**2 / t_fcn:>12.3g}")
    print(f"speed-up of the dense rewrite: {t_slow / t_dense:.1f}x; max |logit difference| {diff:.2e}; "
          f"identical labels: {same}")


if __name__ == "__main__":
    main()
