"""Benchmark the pixel classifiers of 04_classifiers against scikit-learn / scikit-image.

Run: ``MEDSEG_DATA_DIR=/path/to/datasets python benchmarks/bench_classifiers.py`` (CPU).

Inputs are real: the feature bank (every family, scales 1, 2, 4, 8) of DSB2018 training images, a
few labelled pixels per class and image (the notebook's recipe), and the whole of a validation
image for prediction. Without the dataset, synthetic nuclei scenes stand in.

For each pair it prints the median time of ours and of the reference (timed alternately in this
one process, after a warm-up), their ratio (reference time / our time: above 1 means ours is
faster) and the largest difference between the two answers:

* ``LogisticRegression`` (NumPy, Nesterov gradient descent) vs scikit-learn's
  ``LogisticRegression(C=1 / (l2 * N))`` (L-BFGS): same objective, so the same weights;
* ``GaussianNaiveBayes`` vs ``sklearn.naive_bayes.GaussianNB``: same probabilities;
* ``standardize`` vs ``sklearn.preprocessing.StandardScaler``;
* ``hessian_eigenvalues`` vs ``skimage.feature.hessian_matrix(..., use_gaussian_derivatives=True)``
  with ``hessian_matrix_eigvals``: the same quantity computed differently, compared away from the
  border (relative to the range);
* ``pixel_features`` (all 6 families) vs ``skimage.feature.multiscale_basic_features`` (intensity,
  edges, texture at 4 scales): not the same features, time only, for scale;
* the whole pipeline with our logistic regression vs scikit-learn's on the same training pixels:
  fraction of the validation pixels on which the two masks agree, and both Dice scores.
"""

from __future__ import annotations

import os
import platform
import sys

import numpy as np

from medseg_course.classical import classifiers as C
from medseg_course.classical.features import hessian_eigenvalues, pixel_features
from medseg_course.metrics import dice
from _timing import median_times  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

SEED = 0




def load_inputs(n_train=8):
    """Training samples (fluorescence, 1 channel) and one validation sample, real if possible."""
    try:
        from medseg_course.data import load_dataset

        train = [s for s in load_dataset("dsb2018", "train", download=False, progress=False)
                 if s.category == "fluorescence_gray_256x256"][:n_train]
        val = next(s for s in load_dataset("dsb2018", "val", download=False, progress=False)
                   if s.category == "fluorescence_gray_256x256")
        return "DSB2018 fluorescence 256x256", train, val
    except Exception as exc:  # noqa: BLE001 - fall back to synthetic scenes
        print(f"(DSB2018 not available: {exc}; using synthetic scenes)")
        from medseg_course.data.synthetic import make_nuclei2d

        scenes = [make_nuclei2d((256, 256), 30, seed=i) for i in range(n_train + 1)]
        return "synthetic nuclei 256x256", [(s.image, s.mask) for s in scenes[:-1]], \
            (scenes[-1].image, scenes[-1].mask)


def row(name, ours_s, ref_name, ref_s, diff):
    return f"| {name} | {ours_s * 1e3:.2f} | {ref_name} | {ref_s * 1e3:.2f} | {ref_s / ours_s:.2f} | {diff} |"


def main():
    from sklearn.linear_model import LogisticRegression as SkLogistic
    from sklearn.naive_bayes import GaussianNB
    from sklearn.preprocessing import StandardScaler
    from skimage.feature import hessian_matrix, hessian_matrix_eigvals, multiscale_basic_features

    print(f"# bench_classifiers | Python {platform.python_version()} | numpy {np.__version__} | "
          f"{platform.machine()} | OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    what, train, val = load_inputs()
    clf = C.fit_pixel_classifier(train, group_by=None, seed=SEED)
    model = clf.models["all"]
    Z = (model.X - model.mean) / model.scale
    y = model.y
    image = val.image if hasattr(val, "image") else val[0]
    target = (val.mask if hasattr(val, "mask") else val[1]) > 0
    stack = pixel_features(image)
    rows_val = (stack.reshape(stack.shape[0], -1).T - model.mean) / model.scale
    print(f"inputs: {what}; {len(train)} training images, {Z.shape[0]} labelled pixels x {Z.shape[1]} "
          f"features; prediction on one {image.shape[-2]}x{image.shape[-1]} image "
          f"({rows_val.shape[0]} pixels)\n")
    print("| what | ours ms | reference | ref ms | ratio | max abs diff |")
    print("|---|---:|---|---:|---:|---|")

    # logistic regression: fit
    l2 = 1e-3
    ours = C.LogisticRegression(l2=l2, tol=1e-7, max_iter=20000)
    ref = SkLogistic(C=1.0 / (l2 * len(y)), tol=1e-10, max_iter=20000)
    t_o, t_r = median_times(lambda: ours.fit(Z, y), lambda: ref.fit(Z, y), max_runs=5)
    diff = max(np.abs(ours.coef_ - ref.coef_[0]).max(), abs(ours.intercept_ - ref.intercept_[0]))
    print(row(f"LogisticRegression.fit ({ours.n_iter_} steps)", t_o, "sklearn LogisticRegression (lbfgs)",
              t_r, f"{diff:.1e} (weights)"))
    t_o, t_r = median_times(lambda: ours.predict_proba(rows_val), lambda: ref.predict_proba(rows_val))
    diff = np.abs(ours.predict_proba(rows_val) - ref.predict_proba(rows_val)).max()
    print(row("LogisticRegression.predict_proba (image)", t_o, "sklearn predict_proba", t_r, f"{diff:.1e}"))

    # naive Bayes
    nb, gnb = C.GaussianNaiveBayes(), GaussianNB()
    t_o, t_r = median_times(lambda: nb.fit(Z, y), lambda: gnb.fit(Z, y))
    diff = np.abs(nb.fit(Z, y).predict_proba(rows_val) - gnb.fit(Z, y).predict_proba(rows_val)).max()
    print(row("GaussianNaiveBayes.fit", t_o, "sklearn GaussianNB.fit", t_r, f"{diff:.1e} (proba)"))
    t_o, t_r = median_times(lambda: nb.predict_proba(rows_val), lambda: gnb.predict_proba(rows_val))
    print(row("GaussianNaiveBayes.predict_proba (image)", t_o, "sklearn GaussianNB", t_r, f"{diff:.1e}"))

    # standardisation
    raw = model.X
    rows_raw = stack.reshape(stack.shape[0], -1).T.astype(np.float64)
    scaler = StandardScaler()
    t_o, t_r = median_times(lambda: C.standardize(raw, rows_raw),
                            lambda: scaler.fit(raw).transform(rows_raw))
    diff = np.abs(C.standardize(raw, rows_raw)[1] - scaler.fit(raw).transform(rows_raw)).max()
    print(row("standardize", t_o, "sklearn StandardScaler fit+transform", t_r, f"{diff:.1e}"))

    # Hessian eigenvalues
    grey = np.asarray(image, dtype=np.float64).mean(axis=0) if np.ndim(image) == 3 else np.asarray(image, float)
    sigma = 2.0

    def theirs():
        return hessian_matrix_eigvals(hessian_matrix(grey, sigma, mode="reflect", order="rc",
                                                     use_gaussian_derivatives=True))

    t_o, t_r = median_times(lambda: hessian_eigenvalues(grey, sigma), theirs)
    a, b = hessian_eigenvalues(grey, sigma), theirs()
    inner = np.s_[:, 12:-12, 12:-12]
    rel = np.abs(a[inner] - b[inner]).max() / np.abs(b).max()
    print(row("hessian_eigenvalues (sigma 2)", t_o, "skimage hessian_matrix + eigvals", t_r,
              f"{rel:.1e} of range (interior)"))

    # the whole bank, for scale
    t_o, t_r = median_times(lambda: pixel_features(grey),
                            lambda: multiscale_basic_features(grey, sigma_min=1, sigma_max=8, num_sigma=4),
                            max_runs=5)
    n_theirs = multiscale_basic_features(grey, sigma_min=1, sigma_max=8, num_sigma=4).shape[-1]
    print(row(f"pixel_features ({stack.shape[0]} planes)", t_o,
              f"skimage multiscale_basic_features ({n_theirs} planes)", t_r, "different features: time only"))

    # the whole pipeline with either logistic regression
    ours_clf = clf
    ref_clf = clf.with_classifier(SkLogistic(C=1.0 / (l2 * len(y)), max_iter=5000))
    t_o, t_r = median_times(lambda: ours_clf.predict(image), lambda: ref_clf.predict(image), max_runs=5)
    p_o, p_r = ours_clf.predict(image), ref_clf.predict(image)
    agree = float((p_o == p_r).mean())
    print(row("PixelClassifier.predict (features + LR)", t_o, "same with sklearn LR", t_r,
              f"masks agree on {agree:.4%} of pixels; Dice {dice(p_o, target):.4f} vs {dice(p_r, target):.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
