"""Benchmark: the sliding-window PatchCNN against its fully convolutional rewrite and FCN-32s/16s/8s,
on the same images, with the outputs checked equal where they must be.

Run::

    MEDSEG_DATA_DIR=/path/to/datasets python benchmarks/bench_fcn.py [--device cuda] [--threads N]

``benchmarks/bench_training.py`` already times training steps and one 256 x 256 inference comparison
(PatchCNN 45 with (16, 32, 64) channels, sliding window vs ``to_fcn()`` vs FCN-8s). This script reuses
its timing helpers and adds what notebook 07_fcn relies on:

1. **Speed-up against patch size.** The sliding window runs one ``P x P`` patch per pixel, so its cost
   grows with ``P**2``; the dense rewrite shares the overlapping work. Same crop, same process, for the
   patch sizes 29, 45 and 61 (three stages), with the largest logit difference between the two.
2. **Inference time against image size** for the dense PatchCNN and FCN-32s/16s/8s (the notebook's
   ``base_channels=8``, group norm): 128 x 128, 256 x 256, the 520 x 696 DSB2018 size and the odd
   257 x 301, as seconds and megapixels per second.
3. **Equalities.** ``classify_every_pixel`` == ``PatchCNN.to_fcn()`` to float rounding, at an odd crop
   size too; an FCN on an odd-sized image == the centre crop of its output on the image zero-padded to
   the next multiple of 32 (what ``FCN.forward`` does inside), bit for bit.

Inputs are DSB2018 images (nuclei made bright) when ``MEDSEG_DATA_DIR`` holds a copy, synthetic nuclei
otherwise; weights are random (time does not depend on them). Times are the medians of repeated runs
after a warm-up; a sliding window runs once. ``--threads`` sets torch's thread count (default: torch's
own choice). On a machine whose cores are busy with other work, compare ``--threads 1``: OpenMP
threads that wait for a busy core can make small convolutions many times slower.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import median_time, sync  # noqa: E402  (the shared timing helpers)

from medseg_course.models import FCN, PatchCNN, classify_every_pixel, pad_to_multiple, match_size  # noqa: E402
from medseg_course.runtime import choose_device, seed_everything  # noqa: E402

SEED = 0


def load_image(height: int, width: int) -> tuple[np.ndarray, str]:
    """A ``(1, height, width)`` float32 image: a DSB2018 image with bright nuclei (cropped or tiled),
    or synthetic nuclei."""
    try:
        from medseg_course.data import load_dataset
        from medseg_course.data.transforms import nuclei_bright

        ds = load_dataset("dsb2018", split="train")
        s = max(ds, key=lambda s: s.image.shape[1] * s.image.shape[2])  # a 520 x 696 image
        grey = nuclei_bright(s.image, s.category)
        reps = (-(-height // grey.shape[0]), -(-width // grey.shape[1]))
        return np.tile(grey, reps)[None, :height, :width].copy(), f"DSB2018 {s.case_id[:8]}"
    except Exception as err:  # no local copy: synthetic nuclei
        from medseg_course.data.synthetic import make_nuclei2d

        print(f"(dsb2018 not available: {type(err).__name__}; using synthetic nuclei)")
        return make_nuclei2d(shape=(height, width), n_objects=height * width // 2000, seed=SEED).image[None], "synthetic"


def once(fn, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def patch_sizes(image: torch.Tensor, device, crop: int, repeats: int) -> None:
    x = image[..., :crop, :crop]
    print(f"1. Sliding window vs PatchCNN.to_fcn() on one {crop}x{crop} crop ({crop * crop} patches), "
          "channels (16, 32, 64), hidden 128")
    print(f"{'patch':>6}{'sliding s':>11}{'dense s':>10}{'speed-up':>10}{'max |diff|':>12}{'labels equal':>14}")
    with torch.no_grad():
        for P in (29, 45, 61):
            seed_everything(SEED)
            model = PatchCNN(1, 2, patch_size=P).to(device).eval()
            dense = model.to_fcn().eval()
            classify_every_pixel(model, x[..., :8, :8], batch_size=1024)  # warm-up
            slow = [None]
            t_slow = once(lambda: slow.__setitem__(0, classify_every_pixel(model, x, batch_size=1024)), device)
            t_dense = median_time(lambda: dense(x), device, repeats)
            fast = dense(x)
            diff = (slow[0] - fast).abs().max().item()
            same = torch.equal(slow[0].argmax(1), fast.argmax(1))
            print(f"{P:>6}{t_slow:>11.3f}{t_dense:>10.4f}{t_slow / t_dense:>9.0f}x{diff:>12.1e}{str(same):>14}")


def image_sizes(image: torch.Tensor, device, repeats: int) -> None:
    seed_everything(SEED)
    models = {"PatchCNN 29 dense": PatchCNN(1, 1, patch_size=29, channels=(8, 16, 32), hidden=32).to_fcn()}
    for v in ("32s", "16s", "8s"):
        models[f"FCN-{v}"] = FCN(1, 1, v, base_channels=8, norm="group")
    sizes = [(128, 128), (256, 256), (520, 696), (257, 301)]
    print("\n2. Inference time per image (seconds; megapixels per second in brackets), notebook 07's models")
    print(f"{'model':<20}" + "".join(f"{f'{h}x{w}':>20}" for h, w in sizes))
    with torch.no_grad():
        for name, model in models.items():
            model = model.to(device).eval()
            cells = []
            for h, w in sizes:
                x = image[..., :h, :w]
                t = median_time(lambda: model(x), device, repeats)
                cells.append(f"{t:.4f} ({h * w / t / 1e6:.2f})")
            print(f"{name:<20}" + "".join(f"{c:>20}" for c in cells))


def equalities(image: torch.Tensor, device) -> None:
    print("\n3. Equalities")
    seed_everything(SEED)
    model = PatchCNN(1, 2, patch_size=29, channels=(8, 16, 32), hidden=32).to(device).eval()
    x = image[..., :37, :53]
    with torch.no_grad():
        diff = (classify_every_pixel(model, x) - model.to_fcn().eval()(x)).abs().max().item()
    print(f"classify_every_pixel vs to_fcn() on a 37x53 crop: max |logit difference| {diff:.1e}")
    for v in ("32s", "8s"):
        fcn = FCN(1, 2, v, base_channels=8, norm="group").to(device).eval()
        x = image[..., :257, :301]
        with torch.no_grad():
            direct = fcn(x)
            padded = match_size(fcn(pad_to_multiple(x, 32)), x.shape[2:])
        print(f"FCN-{v} on 257x301: equal to the centre crop of its output on the zero-padded 288x320 "
              f"image: {torch.equal(direct, padded)}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--crop", type=int, default=128, help="side of the sliding-window crop")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = choose_device(args.device)
    array, source = load_image(520, 696)
    image = torch.from_numpy(array)[None].to(device)  # (1, 1, 520, 696)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, python {sys.version.split()[0]}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}; image: {source}\n")
    patch_sizes(image, device, args.crop, args.repeats)
    image_sizes(image, device, args.repeats)
    equalities(image, device)


if __name__ == "__main__":
    main()
