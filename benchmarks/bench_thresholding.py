"""Benchmark medseg_course.classical.thresholding against scikit-image on the same inputs.

Run: ``python benchmarks/bench_thresholding.py`` (CPU; ``MEDSEG_DATA_DIR`` pointing at the dataset
copies adds real DSB2018 and Hippocampus inputs, else only synthetic and scikit-image samples run).

For each function it prints the median time of ours and of scikit-image's counterpart, their ratio
(reference time / our time: above 1 means ours is faster) and whether the answers agree:

* ``otsu_threshold`` vs ``skimage.filters.threshold_otsu``: equal thresholds (exactly);
* ``multi_otsu_thresholds`` vs ``threshold_multiotsu``: equal thresholds, or, where they differ,
  the between-class variance (float64) that each reaches: scikit-image searches in float32, so on
  near-flat optima it can stop on a slightly worse split;
* ``local_threshold`` (box mean via an integral image; Gaussian) vs ``threshold_local``: the largest
  absolute difference of the threshold images;
* ``local_mean`` vs ``scipy.ndimage.uniform_filter``: same (the integral image vs a running sum).

Timings come from one process, ours and the reference alternately, so the ratios are comparable
even where the absolute times are not.
"""

from __future__ import annotations

import platform
import sys

import numpy as np
import scipy
import skimage
from scipy import ndimage
from skimage import data as skdata
from skimage.filters import threshold_local, threshold_multiotsu, threshold_otsu

from medseg_course.classical import thresholding as th
from medseg_course.data import synthetic
from _timing import median_times  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

SEED = 20240602




def criterion(image, thresholds):
    """Between-class variance (float64) of the histogram split by ``thresholds``."""
    counts, centers = th.histogram(image)
    p = counts / counts.sum()
    x = np.asarray(centers, dtype=np.float64)
    labels = np.digitize(x, np.asarray(thresholds, dtype=np.float64), right=True)
    mu = np.sum(p * x)
    return sum(p[labels == k].sum() * (np.sum(p[labels == k] * x[labels == k]) / p[labels == k].sum() - mu) ** 2
               for k in range(len(thresholds) + 1) if p[labels == k].sum() > 0)


def make_inputs():
    rng = np.random.default_rng(SEED)
    scene = synthetic.make_nuclei2d(shape=(512, 512), n_objects=60, seed=SEED)
    inputs = {
        "camera uint8 512x512": skdata.camera(),
        "camera float32 512x512": skdata.camera().astype(np.float32) / 255,
        "synthetic nuclei + noise 512x512": scene.image + rng.normal(0, 0.1, scene.image.shape).astype(np.float32),
        "random float64 1024x1024": rng.random((1024, 1024)),
    }
    try:
        from medseg_course import data
        from medseg_course.data.transforms import nuclei_bright

        dsb = data.load_dataset("dsb2018", split="train")
        big = next(s for s in dsb if s.category.startswith("fluorescence_gray_520"))
        inputs["DSB2018 fluorescence 520x696"] = nuclei_bright(big.image, big.category)
        bright = next(s for s in dsb if s.category.startswith("brightfield"))
        inputs["DSB2018 brightfield 256x320"] = nuclei_bright(bright.image, bright.category)
        inputs["Hippocampus MRI volume 35x51x35"] = data.load_dataset("msd-hippocampus", split="train")[0].image[0]
    except Exception as err:  # pragma: no cover - without the dataset copies
        print(f"(real datasets not available: {err}; synthetic inputs only)")
    return inputs


def row(name, ours, ref, agree):
    t_ours, t_ref = median_times(ours, ref)
    print(f"| {name} | {t_ours * 1e3:.2f} | {t_ref * 1e3:.2f} | {t_ref / t_ours:.2f} | {agree} |")
    sys.stdout.flush()


def main():
    print("medseg_course.classical.thresholding benchmark")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"scikit-image {skimage.__version__}, machine {platform.machine()}")
    print("ratio = scikit-image time / our time (> 1: ours faster)")
    inputs = make_inputs()

    print("\n## Otsu: otsu_threshold vs skimage.filters.threshold_otsu")
    print("| input | ours ms | skimage ms | ratio | same threshold |")
    print("|---|---:|---:|---:|---|")
    for label, image in inputs.items():
        a, b = th.otsu_threshold(image), threshold_otsu(image)
        row(label, lambda: th.otsu_threshold(image), lambda: threshold_otsu(image),
            "yes" if a == b else f"NO ({a} vs {b})")

    print("\n## Multi-level Otsu: multi_otsu_thresholds vs threshold_multiotsu")
    print("| input, classes | ours ms | skimage ms | ratio | agreement |")
    print("|---|---:|---:|---:|---|")
    for label, image in inputs.items():
        for classes in (3, 4):
            a, b = th.multi_otsu_thresholds(image, classes), threshold_multiotsu(image, classes)
            if np.array_equal(a, b):
                agree = "same thresholds"
            else:
                ca, cb = criterion(image, a), criterion(image, b)
                agree = (f"differ; between-class variance ours {ca:.6g} vs {cb:.6g} "
                         f"({(ca - cb) / cb:+.1e} relative)")
            row(f"{label}, {classes}", lambda: th.multi_otsu_thresholds(image, classes),
                lambda: threshold_multiotsu(image, classes), agree)

    print("\n## Local thresholds: local_threshold vs threshold_local (offset -0.02)")
    print("| input, method, block | ours ms | skimage ms | ratio | max abs diff |")
    print("|---|---:|---:|---:|---|")
    for label, image in inputs.items():
        if image.ndim != 2:
            continue
        img = image.astype(np.float64)
        for method, block in (("mean", 15), ("mean", 101), ("gaussian", 51)):
            diff = np.max(np.abs(th.local_threshold(img, block, method=method, offset=-0.02)
                                 - threshold_local(img, block, method=method, offset=-0.02)))
            row(f"{label}, {method}, {block}", lambda: th.local_threshold(img, block, method=method, offset=-0.02),
                lambda: threshold_local(img, block, method=method, offset=-0.02), f"{diff:.1e}")

    print("\n## Integral-image local mean: local_mean vs scipy.ndimage.uniform_filter")
    print("| input, block | ours ms | scipy ms | ratio | max abs diff |")
    print("|---|---:|---:|---:|---|")
    img = inputs["random float64 1024x1024"]
    for block in (3, 15, 101, 301):
        diff = np.max(np.abs(th.local_mean(img, block) - ndimage.uniform_filter(img, block, mode="reflect")))
        row(f"random 1024x1024, {block}", lambda: th.local_mean(img, block),
            lambda: ndimage.uniform_filter(img, block, mode="reflect"), f"{diff:.1e}")


if __name__ == "__main__":
    main()
