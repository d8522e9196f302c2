"""Benchmark the course's region growing against scikit-image's ``flood`` on the same inputs.

Run: ``python benchmarks/bench_region_growing.py`` (CPU only; ``MEDSEG_DATA_DIR`` set to use a real
Hippocampus volume and DSB2018 image, otherwise synthetic ones of the same size are used).

For each input and tolerance it checks that the regions are identical and prints the median time
of ours and of the reference, and their ratio (reference time / our time: above 1 means ours is
faster). Ours and the reference are timed alternately in this one process, so that load from
other processes affects both alike. Rows:

* ``region_grow`` (one seed, fixed tolerance: one ``scipy.ndimage.label`` of the tolerance band)
  against ``skimage.segmentation.flood`` (a breadth-first search in Cython);
* ``region_grow_bfs`` (the textbook queue in pure Python) against ``flood``: what Python costs;
* ``region_grow`` with every automatic seed of a DSB2018 image (union of the regions) against a
  loop of ``flood`` calls;
* ``region_grow(criterion="mean")``, which has no scikit-image counterpart: its time against
  ``flood`` with the same tolerance, and the size of both regions (they differ by design).
"""

from __future__ import annotations

import os
import platform

import numpy as np
import skimage
from scipy import ndimage
from skimage.segmentation import flood

from medseg_course.classical import region_growing as rg
from _timing import median_times  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

SEED = 20240603




def inputs():
    """(name, image, seed) triples: a 2D nuclei image and a 3D MRI volume, real when available."""
    rng = np.random.default_rng(SEED)
    out = []
    try:
        if not os.environ.get("MEDSEG_DATA_DIR"):
            raise FileNotFoundError
        from medseg_course import data
        from medseg_course.data.transforms import nuclei_bright

        nuc = next(s for s in data.load_dataset("dsb2018", split="train")
                   if s.category == "fluorescence_gray_256x256")
        grey = nuclei_bright(nuc.image, nuc.category)
        hip = data.load_dataset("msd-hippocampus", split="train")[0]
        volume = hip.image[0]
        inner = np.argwhere(ndimage.binary_erosion(hip.mask > 0))
        centre = np.array(ndimage.center_of_mass(hip.mask > 0))
        seed3 = tuple(int(v) for v in inner[np.argmin(((inner - centre) ** 2).sum(1))])
        out.append((f"DSB2018 {nuc.case_id[:8]} {grey.shape}", grey.astype(np.float64), None))
        out.append((f"Hippocampus {hip.case_id} {volume.shape}", volume.astype(np.float64), seed3))
    except (FileNotFoundError, OSError, StopIteration, KeyError):
        from medseg_course.data import degrade, synthetic

        scene = synthetic.make_nuclei2d((256, 256), n_objects=30, seed=1)
        grey = degrade.degrade(scene.image, noise=0.05, blur=1.0, seed=2).astype(np.float64)
        organ = synthetic.make_organ3d(seed=3)
        volume = degrade.degrade(organ.image, noise=0.1, seed=4).astype(np.float64)
        seed3 = tuple(int(v) for v in np.argwhere(organ.mask == 1)[0])
        out.append(("synthetic nuclei (256, 256)", grey, None))
        out.append(("synthetic organ (48, 64, 48)", volume, seed3))
    # the 2D seed: the brightest automatic seed (inside a nucleus)
    name, grey, _ = out[0]
    out[0] = (name + ", seed in a nucleus", grey, tuple(int(v) for v in rg.local_maxima_seeds(grey, sigma=1.0)[0]))
    # and a seed in the background, whose region covers most of the image
    out.insert(1, (name + ", seed in the background", grey,
                   tuple(int(v) for v in np.unravel_index(np.argmin(np.abs(grey - np.median(grey))), grey.shape))))
    del rng
    return out


def row(label, ours_ms, ref_name, ref_ms, same):
    print(f"| {label} | {ours_ms:.2f} | {ref_name} | {ref_ms:.2f} | {ref_ms / ours_ms:.2f} | {same} |")


def main():
    print(f"python {platform.python_version()}, numpy {np.__version__}, scikit-image {skimage.__version__}, "
          f"{platform.machine()}")
    print()
    print("| case | ours ms | reference | ref ms | ratio | same region |")
    print("|---|---:|---|---:|---:|---|")
    cases = inputs()
    for name, image, seed in cases:
        span = float(np.ptp(image))
        for frac in (0.05, 0.2):
            tol = frac * span
            conn = 1
            ours = rg.region_grow(image, [seed], tol, conn)
            ref = flood(image, seed, tolerance=tol, connectivity=conn)
            t_ours, t_ref = median_times(lambda: rg.region_grow(image, [seed], tol, conn),
                                         lambda: flood(image, seed, tolerance=tol, connectivity=conn))
            row(f"{name}, tol {frac:g} x range ({int(ref.sum())} px): region_grow", 1e3 * t_ours,
                "flood", 1e3 * t_ref, bool(np.array_equal(ours, ref)))
        if image.ndim == 2 and "nucleus" in name:
            tol = 0.2 * span
            ours = rg.region_grow_bfs(image, seed, tol)
            t_ours, t_ref = median_times(lambda: rg.region_grow_bfs(image, seed, tol),
                                         lambda: flood(image, seed, tolerance=tol, connectivity=1),
                                         max_runs=5)
            row(f"{name}, tol 0.2 x range: region_grow_bfs (pure Python)", 1e3 * t_ours, "flood",
                1e3 * t_ref, bool(np.array_equal(ours, flood(image, seed, tolerance=tol, connectivity=1))))
            seeds = rg.local_maxima_seeds(image, sigma=1.0, min_distance=4,
                                          threshold=float(np.percentile(image, 75)))
            tol = 0.1 * span

            def flood_loop():
                out = np.zeros(image.shape, bool)
                for s in seeds:
                    out |= flood(image, tuple(s), tolerance=tol, connectivity=1)
                return out

            same = bool(np.array_equal(rg.region_grow(image, seeds, tol), flood_loop()))
            t_ours, t_ref = median_times(lambda: rg.region_grow(image, seeds, tol), flood_loop)
            row(f"{name}, {len(seeds)} automatic seeds, tol 0.1 x range: region_grow", 1e3 * t_ours,
                "loop of flood", 1e3 * t_ref, same)
        tol = 0.05 * span
        mean = rg.region_grow(image, [seed], tol, criterion="mean")
        fixed = flood(image, seed, tolerance=tol, connectivity=1)
        t_ours, t_ref = median_times(lambda: rg.region_grow(image, [seed], tol, criterion="mean"),
                                     lambda: flood(image, seed, tolerance=tol, connectivity=1))
        row(f"{name}, tol 0.05 x range: region_grow(criterion='mean') ({int(mean.sum())} px)",
            1e3 * t_ours, f"flood ({int(fixed.sum())} px)", 1e3 * t_ref, "n/a (other criterion)")


if __name__ == "__main__":
    main()
