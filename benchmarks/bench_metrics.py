"""Benchmark medseg_course.metrics against independent implementations on the same inputs.

Run: ``python benchmarks/bench_metrics.py`` (CPU; adds CUDA rows where a GPU is present).

For each metric it prints the median time of ours and of the reference (scikit-learn for the
overlap metrics, MONAI for the surface distances and the batched torch metrics), their ratio
(reference time / our time: above 1 means ours is faster), the peak memory of one call, and the
largest difference between the two results. All timings come from this one process, with fixed
seeds and torch limited to one thread, ours and the reference timed alternately, so the ratios
are comparable even where the absolute times are not.

Peak memory is the larger of tracemalloc's peak (numpy and Python allocations) and the growth of
the process's resident memory sampled every 0.2 ms (which also sees torch's CPU allocator); for
CUDA rows it is ``torch.cuda.max_memory_allocated``. Calls shorter than the sampling interval can
be under-reported.
"""

from __future__ import annotations

import platform
import sys
import threading
import time
import tracemalloc
import warnings

import numpy as np
import torch
from scipy import ndimage as ndi

from medseg_course import metrics as M
from _timing import median_times  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

try:
    import psutil
except ImportError:  # pragma: no cover - psutil comes with ipykernel
    psutil = None

SEED = 20240601
MIB = 2**20


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------




class _RssSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss
        self.running = True

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.0002)


def peak_memory(fn, device="cpu"):
    """Peak extra memory of one call of ``fn`` in MiB (see the module docstring)."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / MIB
    sampler = _RssSampler() if psutil is not None else None
    if sampler is not None:
        sampler.start()
    tracemalloc.start()
    fn()
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = 0
    if sampler is not None:
        sampler.running = False
        sampler.join()
        rss = sampler.peak - sampler.base
    return max(traced, rss) / MIB


def as_array(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


def smooth_mask(rng, shape, sigma, level=0.3):
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / field.std() > level


def prediction_of(rng, target, sigma, noise=0.8):
    """A plausible prediction: the target blurred with smooth noise, re-thresholded."""
    field = ndi.gaussian_filter(target.astype(float), sigma) + noise * ndi.gaussian_filter(
        rng.standard_normal(target.shape), sigma) / 0.1
    return ndi.gaussian_filter(field, 1.0) > 0.5


def make_inputs():
    rng = np.random.default_rng(SEED)
    target_2d = smooth_mask(rng, (512, 512), sigma=12)
    pred_2d = prediction_of(rng, target_2d, sigma=6, noise=0.03)
    target_3d = smooth_mask(rng, (48, 64, 48), sigma=4)
    pred_3d = prediction_of(rng, target_3d, sigma=2, noise=0.03)
    labels = np.digitize(ndi.gaussian_filter(rng.standard_normal((8, 128, 128)), (0, 6, 6)) * 12,
                         [-0.5, 0.5])  # (8, 128, 128), classes 0, 1, 2
    noisy = np.digitize(ndi.gaussian_filter(labels.astype(float), (0, 2, 2))
                        + 0.3 * rng.standard_normal(labels.shape), [0.5, 1.5])
    onehot = lambda x: np.stack([x == k for k in range(3)], axis=1)  # noqa: E731
    return {
        "2D 512x512": (pred_2d, target_2d, (0.7, 0.7)),
        "3D 48x64x48": (pred_3d, target_3d, (2.5, 0.8, 0.8)),
        "batch 8x3x128x128": (onehot(noisy), onehot(labels), (1.0, 1.0)),
    }


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------


def pair_cases(pred, target, spacing):
    from sklearn import metrics as sk
    from monai import metrics as mm

    y_pred, y_true = pred.ravel(), target.ravel()
    pt = torch.as_tensor(pred, dtype=torch.float32)[None, None]
    tt = torch.as_tensor(target, dtype=torch.float32)[None, None]
    def reference_report():
        """The seven metrics of segmentation_report, from the reference libraries."""
        kw = dict(include_background=True, spacing=spacing)
        return (sk.f1_score(y_true, y_pred), sk.jaccard_score(y_true, y_pred),
                sk.precision_score(y_true, y_pred), sk.recall_score(y_true, y_pred),
                mm.compute_hausdorff_distance(pt, tt, **kw),
                mm.compute_hausdorff_distance(pt, tt, percentile=95, **kw),
                mm.compute_average_surface_distance(pt, tt, symmetric=True, **kw))

    cases = [
        ("dice", lambda: M.dice(pred, target), "sklearn f1_score", lambda: sk.f1_score(y_true, y_pred)),
        ("iou", lambda: M.iou(pred, target), "sklearn jaccard_score", lambda: sk.jaccard_score(y_true, y_pred)),
        ("precision", lambda: M.precision(pred, target), "sklearn precision_score",
         lambda: sk.precision_score(y_true, y_pred)),
        ("recall", lambda: M.recall(pred, target), "sklearn recall_score",
         lambda: sk.recall_score(y_true, y_pred)),
        ("hausdorff", lambda: M.hausdorff(pred, target, spacing=spacing), "MONAI hausdorff",
         lambda: mm.compute_hausdorff_distance(pt, tt, include_background=True, spacing=spacing)),
        ("hd95", lambda: M.hd95(pred, target, spacing=spacing), "MONAI hausdorff p95",
         lambda: mm.compute_hausdorff_distance(pt, tt, include_background=True, percentile=95,
                                               spacing=spacing)),
        ("assd", lambda: M.assd(pred, target, spacing=spacing), "MONAI ASD symmetric",
         lambda: mm.compute_average_surface_distance(pt, tt, include_background=True,
                                                     symmetric=True, spacing=spacing)),
        ("hd95_torch", lambda: M.hd95_torch(pt, tt, spacing=spacing), "MONAI hausdorff p95",
         lambda: mm.compute_hausdorff_distance(pt, tt, include_background=True, percentile=95,
                                               spacing=spacing)),
        ("segmentation_report", lambda: M.segmentation_report(pred, target, spacing=spacing)[1]["hd95"],
         "sklearn (4) + MONAI (3)", lambda: reference_report()[5]),
    ]
    return [(name, ours, ref_name, ref, "cpu") for name, ours, ref_name, ref in cases]


def batch_cases(pred, target, spacing, device):
    from monai import metrics as mm

    p = torch.as_tensor(pred, device=device)
    t = torch.as_tensor(target, device=device)
    pf, tf = p.float(), t.float()
    cases = [
        ("dice_torch", lambda: M.dice_torch(p, t), "MONAI compute_dice",
         lambda: mm.compute_dice(pf, tf, include_background=True)),
        ("iou_torch", lambda: M.iou_torch(p, t), "MONAI compute_iou",
         lambda: mm.compute_iou(pf, tf, include_background=True)),
        ("hausdorff_torch", lambda: M.hausdorff_torch(p, t, spacing=spacing), "MONAI hausdorff",
         lambda: mm.compute_hausdorff_distance(pf, tf, include_background=True, spacing=spacing)),
        ("hd95_torch", lambda: M.hd95_torch(p, t, spacing=spacing), "MONAI hausdorff p95",
         lambda: mm.compute_hausdorff_distance(pf, tf, include_background=True, percentile=95,
                                               spacing=spacing)),
        ("assd_torch", lambda: M.assd_torch(p, t, spacing=spacing), "MONAI ASD symmetric",
         lambda: mm.compute_average_surface_distance(pf, tf, include_background=True,
                                                     symmetric=True, spacing=spacing)),
    ]
    if device == "cpu":
        cases.append(("hd95 (numpy loop)", lambda: np.array(
            [[M.hd95(pb, tb, spacing=spacing) for pb, tb in zip(pp, tt)] for pp, tt in zip(pred, target)]),
            "MONAI hausdorff p95", cases[3][3]))
    return [(name, ours, ref_name, ref, device) for name, ours, ref_name, ref in cases]


def synced(fn, device):
    if device != "cuda":
        return fn

    def run():
        out = fn()
        torch.cuda.synchronize()
        return out

    return run


def main():
    warnings.filterwarnings("ignore")  # MONAI warns about optional packages
    # One thread: scipy, scikit-learn and MONAI's KD-tree are single-threaded, so the ratios
    # compare algorithms rather than thread counts; and multi-threaded torch on a small, shared
    # CPU is at the mercy of other processes' load.
    torch.set_num_threads(1)
    import monai
    import sklearn

    print("medseg_course.metrics benchmark")
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), scikit-learn {sklearn.__version__}, MONAI {monai.__version__}")
    print(f"machine: {platform.machine()}, {platform.processor() or platform.system()}, "
          f"cuda: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    print("ratio = reference time / our time (> 1: ours faster); memory = peak extra MiB of one call")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for label, (pred, target, spacing) in make_inputs().items():
        print()
        fg = f"{pred.mean():.1%} / {target.mean():.1%} foreground"
        if pred.ndim <= 3:
            print(f"## {label}, spacing {spacing}, pred/target {fg}")
            cases = pair_cases(pred, target, spacing)
        else:
            print(f"## {label} (one-hot), spacing {spacing}, pred/target {fg}")
            cases = [c for d in devices for c in batch_cases(pred, target, spacing, d)]
        print("| metric | device | ours ms | reference | ref ms | ratio | ours MiB | ref MiB | max abs diff |")
        print("|---|---|---:|---|---:|---:|---:|---:|---:|")
        for name, ours, ref_name, ref, device in cases:
            ours_s, ref_s = synced(ours, device), synced(ref, device)
            diff = np.max(np.abs(as_array(ours_s()) - as_array(ref_s())))
            t_ours, t_ref = median_times(ours_s, ref_s)
            m_ours, m_ref = peak_memory(ours_s, device), peak_memory(ref_s, device)
            print(f"| {name} | {device} | {t_ours * 1e3:.2f} | {ref_name} | {t_ref * 1e3:.2f} | "
                  f"{t_ref / t_ours:.2f} | {m_ours:.1f} | {m_ref:.1f} | {diff:.1e} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
