"""Pixel classifiers: small hand-checkable cases, equality with scikit-learn, validation."""

import numpy as np
import pytest

from medseg_course.classical import classifiers as C
from medseg_course.classical.features import pixel_features
from medseg_course.data import Sample
from medseg_course.data.synthetic import make_nuclei2d
from medseg_course.metrics import dice


# -- labelled pixels ------------------------------------------------------------------------------

def test_sample_pixels_by_hand():
    mask = np.zeros((6, 6), int)
    mask[0, :3] = 1                                   # 3 foreground pixels
    coords, labels = C.sample_pixels(mask, 5, seed=0)
    assert labels.tolist() == [0] * 5 + [1] * 3       # a small class gives all its pixels
    assert sorted(map(tuple, coords[labels == 1].tolist())) == [(0, 0), (0, 1), (0, 2)]
    assert np.all(mask[coords[:, 0], coords[:, 1]] == labels)
    assert len(set(map(tuple, coords.tolist()))) == len(coords)   # without replacement


def test_sample_pixels_is_seeded_and_handles_labels_and_bool():
    mask = np.random.default_rng(0).integers(0, 3, (20, 20))
    a = C.sample_pixels(mask, 10, seed=3)
    b = C.sample_pixels(mask, 10, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.bincount(a[1]).tolist() == [10, 10, 10]
    coords, labels = C.sample_pixels(mask > 0, 4, seed=np.random.default_rng(1))
    assert labels.tolist() == [0] * 4 + [1] * 4


def test_training_pixels_rows_are_feature_vectors():
    features = np.arange(3 * 5 * 7, dtype=float).reshape(3, 5, 7)
    mask = np.zeros((5, 7), int)
    mask[2:4, 3:6] = 1
    X, y = C.training_pixels(features, mask, 4, seed=0)
    assert X.shape == (8, 3) and y.shape == (8,)
    for row, label in zip(X, y):
        r, c = divmod(int(row[0]), 7)                 # plane 0 holds r * 7 + c
        assert mask[r, c] == label and np.array_equal(row, features[:, r, c])


@pytest.mark.parametrize("call, error, message", [
    (lambda: C.sample_pixels(np.zeros((4, 4)), 2), TypeError, "boolean or integer"),
    (lambda: C.sample_pixels(np.zeros((2, 4, 4), int), 2), ValueError, "2D"),
    (lambda: C.sample_pixels(np.zeros((4, 4), int), 0), ValueError, "n_per_class"),
    (lambda: C.sample_pixels(np.zeros((4, 4), int), 2, seed=-1), TypeError, "seed"),
    (lambda: C.training_pixels(np.zeros((4, 5, 2)), np.zeros((4, 5), int)), ValueError, "moveaxis"),
    (lambda: C.training_pixels(np.zeros((4, 5)), np.zeros((4, 5), int)), ValueError, "(F, H, W)"),
])
def test_pixel_validation(call, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


# -- standardisation ------------------------------------------------------------------------------

def test_standardize_by_hand_and_like_scikit_learn():
    from sklearn.preprocessing import StandardScaler

    X_train = np.array([[0.0, 5.0, 1.0], [2.0, 5.0, 3.0], [4.0, 5.0, 8.0]])
    X_test = np.array([[2.0, 6.0, 0.0]])
    Z_train, Z_test = C.standardize(X_train, X_test)
    assert Z_train[:, 0].tolist() == pytest.approx([-1.2247449, 0.0, 1.2247449])
    assert Z_train[:, 1].tolist() == [0.0, 0.0, 0.0] and Z_test[0, 1] == 1.0   # constant: centred only
    scaler = StandardScaler().fit(X_train)
    np.testing.assert_allclose(Z_train, scaler.transform(X_train), atol=1e-12)
    np.testing.assert_allclose(Z_test, scaler.transform(X_test), atol=1e-12)
    with pytest.raises(ValueError, match="3 features"):
        C.standardize(X_train, X_test[:, :2])
    with pytest.raises(ValueError, match="reshape"):
        C.standardize(np.zeros((3, 4, 4)), X_test)


# -- logistic regression ------------------------------------------------------------------------

def _toy(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) @ np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0.9], [0, 0, 0, 0.3]])
    y = (X[:, 0] - X[:, 2] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


def test_logistic_step_by_hand_and_against_a_numerical_gradient():
    w, b = C.logistic_step(np.zeros(1), 0.0, np.array([[-1.0], [1.0]]), np.array([0, 1]), lr=1.0)
    assert w.tolist() == [0.5] and b == 0.0
    X, y = _toy(50)
    w0, b0, lr, l2 = np.array([0.3, -0.2, 0.1, 0.4]), 0.2, 0.1, 0.05
    w1, b1 = C.logistic_step(w0, b0, X, y, lr, l2)
    eps = 1e-6
    num = [(C.logistic_loss(w0 + eps * e, b0, X, y, l2) - C.logistic_loss(w0 - eps * e, b0, X, y, l2)) / (2 * eps)
           for e in np.eye(4)]
    num_b = (C.logistic_loss(w0, b0 + eps, X, y, l2) - C.logistic_loss(w0, b0 - eps, X, y, l2)) / (2 * eps)
    np.testing.assert_allclose((w0 - w1) / lr, num, atol=1e-7)
    assert (b0 - b1) / lr == pytest.approx(num_b, abs=1e-7)


def test_logistic_loss_is_log2_at_zero_and_stable_for_large_logits():
    assert C.logistic_loss(np.zeros(2), 0.0, np.ones((4, 2)), np.array([0, 1, 0, 1])) == pytest.approx(np.log(2))
    assert np.isfinite(C.logistic_loss(np.array([1e4]), 0.0, np.array([[1.0], [-1.0]]), np.array([0, 1])))


@pytest.mark.parametrize("l2", [1e-1, 1e-2, 1e-3])
def test_logistic_regression_equals_scikit_learn(l2):
    from sklearn.linear_model import LogisticRegression as SkLogistic

    X, y = _toy()
    ours = C.LogisticRegression(l2=l2, tol=1e-8, max_iter=20000).fit(X, y)
    theirs = SkLogistic(C=1.0 / (l2 * len(y)), tol=1e-10, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_[0], atol=1e-5)
    assert ours.intercept_ == pytest.approx(theirs.intercept_[0], abs=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-5)
    assert np.array_equal(ours.predict(X), theirs.predict(X))
    assert ours.loss_history_[-1] <= ours.loss_history_[0]


def test_logistic_regression_without_penalty_converges_on_overlapping_classes():
    X, y = _toy(seed=1)
    model = C.LogisticRegression(l2=0.0, tol=1e-6, max_iter=20000).fit(X, y)
    p = model.predict_proba(X)[:, 1]
    assert np.abs(X.T @ (p - y) / len(y)).max() < 1e-5 and abs(np.mean(p - y)) < 1e-5


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.fit(np.zeros((4, 2)), np.array([0, 0, 0, 0])), ValueError, "one class only"),
    (lambda m: m.fit(np.zeros((4, 2)), np.array([0, 1, 2, 1])), ValueError, "labels 0 and 1"),
    (lambda m: m.fit(np.zeros((4, 2)), np.array([0, 1])), ValueError, "one label per row"),
    (lambda m: m.fit(np.full((2, 2), np.nan), np.array([0, 1])), ValueError, "NaN"),
    (lambda m: m.predict(np.zeros((2, 2))), RuntimeError, "not fitted"),
    (lambda m: C.LogisticRegression(l2=-1), ValueError, "l2"),
    (lambda m: C.LogisticRegression(max_iter=0), ValueError, "max_iter"),
    (lambda m: C.logistic_step(np.zeros(3), 0.0, np.zeros((4, 2)), np.zeros(4), 0.1), ValueError, "one weight per feature"),
    (lambda m: C.logistic_step(np.zeros(2), 0.0, np.zeros((4, 2)), np.zeros(4), 0.0), ValueError, "lr"),
])
def test_logistic_validation(call, error, message):
    with pytest.raises(error, match=message):
        call(C.LogisticRegression())


def test_fitted_logistic_checks_feature_count():
    X, y = _toy(40)
    model = C.LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="4 features"):
        model.predict(X[:, :3])


# -- naive Bayes ------------------------------------------------------------------------------------

def test_naive_bayes_by_hand_and_equals_scikit_learn():
    from sklearn.naive_bayes import GaussianNB

    nb = C.GaussianNaiveBayes().fit(np.array([[0.0], [0.2], [1.0], [1.2]]), np.array([0, 0, 1, 1]))
    assert nb.theta_.ravel().tolist() == pytest.approx([0.1, 1.1])
    assert nb.var_.ravel().tolist() == pytest.approx([0.01, 0.01])
    X, y = _toy(seed=2)
    y3 = y + (X[:, 1] > 1)                            # three classes
    ours, theirs = C.GaussianNaiveBayes().fit(X, y3), GaussianNB().fit(X, y3)
    np.testing.assert_allclose(ours.theta_, theirs.theta_, atol=1e-12)
    np.testing.assert_allclose(ours.var_, theirs.var_, atol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-10)
    assert np.array_equal(ours.predict(X), theirs.predict(X))
    with pytest.raises(ValueError, match="one class only"):
        C.GaussianNaiveBayes().fit(X, np.zeros(len(X)))
    with pytest.raises(RuntimeError, match="not fitted"):
        C.GaussianNaiveBayes().predict(X)


# -- the pixel classifier on synthetic scenes ---------------------------------------------------

def _scenes(n, offset=0, shape=(64, 64)):
    return [make_nuclei2d(shape, 6, seed=offset + i) for i in range(n)]


def test_pixel_classifier_segments_synthetic_nuclei():
    train = [(s.image, s.mask) for s in _scenes(2)]
    clf = C.fit_pixel_classifier(train, n_per_class=50, sigmas=(1, 2), group_by=None)
    for s in _scenes(2, offset=10):
        pred = clf.predict(s.image)
        assert pred.dtype == bool and pred.shape == s.mask.shape
        assert dice(pred, s.mask > 0) > 0.9
    assert clf.models["all"].n_pixels == 200 and clf.models["all"].n_images == 2
    assert len(clf.feature_names()) == clf.models["all"].X.shape[1] == 1 + 2 * 6
    assert "LogisticRegression" in repr(clf)


def test_pixel_classifier_is_repeatable_and_seed_dependent():
    train = [(s.image, s.mask) for s in _scenes(1)]
    a = C.fit_pixel_classifier(train, n_per_class=20, sigmas=(1,), seed=5, group_by=None)
    b = C.fit_pixel_classifier(train, n_per_class=20, sigmas=(1,), seed=5, group_by=None)
    c = C.fit_pixel_classifier(train, n_per_class=20, sigmas=(1,), seed=6, group_by=None)
    assert np.array_equal(a.models["all"].X, b.models["all"].X)
    assert not np.array_equal(a.models["all"].X, c.models["all"].X)


def test_grouping_by_modality_and_channel_matching():
    scenes = _scenes(2)
    rgb = [np.repeat(1.0 - s.image[None], 3, axis=0) for s in scenes]    # dark nuclei, 3 channels
    train = [(scenes[0].image[None], scenes[0].mask, "fluorescence_gray_64x64"),
             (rgb[1], scenes[1].mask, "brightfield_stained_color_64x64")]
    clf = C.fit_pixel_classifier(train, n_per_class=30, sigmas=(1, 2), group_by="modality")
    assert sorted(clf.models) == ["brightfield", "fluorescence"]
    assert clf.models["brightfield"].n_channels == 3 and clf.models["fluorescence"].n_channels == 1
    test = make_nuclei2d((64, 64), 6, seed=20)
    assert dice(clf.predict(test.image, "fluorescence_x"), test.mask) > 0.9
    inverted = np.repeat(1.0 - test.image[None], 3, axis=0)
    assert dice(clf.predict(inverted, "brightfield_y"), test.mask) > 0.9
    assert dice(C.segment_pixel_classifier(inverted, model=clf), test.mask) > 0.9   # 3 channels -> brightfield
    with pytest.raises(ValueError, match="category is needed"):
        clf.predict(test.image)
    with pytest.raises(ValueError, match="no model for category"):
        clf.predict(test.image, "phase_contrast")
    one = C.fit_pixel_classifier(train, n_per_class=30, sigmas=(1,), group_by=None)
    assert one.models["all"].n_channels == 3                      # grey repeated to RGB
    assert one.predict(test.image).shape == (64, 64)


def test_with_classifier_refits_on_the_same_pixels():
    from sklearn.ensemble import RandomForestClassifier

    train = [(s.image, s.mask) for s in _scenes(2)]
    clf = C.fit_pixel_classifier(train, n_per_class=40, sigmas=(1, 2), group_by=None)
    forest = clf.with_classifier(RandomForestClassifier(n_estimators=10, random_state=0))
    nb = clf.with_classifier("naive_bayes")
    assert isinstance(forest.estimator(), RandomForestClassifier) and isinstance(nb.estimator(), C.GaussianNaiveBayes)
    assert forest.models["all"].X is clf.models["all"].X
    assert isinstance(clf.estimator(), C.LogisticRegression)   # the original is unchanged
    test = _scenes(1, offset=30)[0]
    assert dice(forest.predict(test.image), test.mask) > 0.85


@pytest.mark.parametrize("kwargs, error, message", [
    ({"samples": []}, ValueError, "samples is empty"),
    ({"group_by": "size"}, ValueError, "group_by"),
    ({"threshold": 1.0}, ValueError, "threshold"),
    ({"classifier": "svm"}, ValueError, "classifier must be"),
    ({"classifier": object()}, TypeError, "predict_proba"),
    ({"n_per_class": 0}, ValueError, "n_per_class"),
    ({"group_by": "modality"}, ValueError, "has no category"),
    ({"samples": [(np.zeros((16, 16)), np.zeros((16, 16), int))]}, ValueError, "one class only"),
    ({"samples": [(np.zeros((16, 16)), np.zeros((8, 8), int))]}, ValueError, "same pixels"),
    ({"samples": [np.zeros((16, 16))]}, TypeError, "must have .image and .mask"),
])
def test_fit_validation(kwargs, error, message):
    s = make_nuclei2d((48, 48), 2, seed=0)
    args = {"samples": [(s.image, s.mask)], "group_by": None, "sigmas": (1,), **kwargs}
    with pytest.raises(error, match=message):
        C.fit_pixel_classifier(**args)


def test_match_channels():
    rgb = np.stack([np.full((2, 2), v) for v in (1.0, 0.0, 0.0)])
    assert C.match_channels(rgb, 1)[0, 0, 0] == pytest.approx(0.2125)
    assert C.match_channels(np.ones((2, 2)), 3).shape == (3, 2, 2)
    with pytest.raises(ValueError, match="cannot turn"):
        C.match_channels(np.ones((2, 4, 4)), 3)


# -- splits and slices ---------------------------------------------------------------------------

def test_split_by_group_keeps_groups_whole():
    groups = np.repeat(list("abcdef"), [3, 1, 4, 2, 2, 5])
    train, test = C.split_by_group(groups, 2, seed=0)
    assert not set(groups[train]) & set(groups[test])
    assert len(set(groups[train])) == 2
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(groups.size))
    with pytest.raises(ValueError, match="smaller than the number of groups"):
        C.split_by_group(groups, 6)
    with pytest.raises(ValueError, match="non-empty"):
        C.split_by_group([], 1)


def test_volume_slices():
    image = np.random.default_rng(0).random((1, 5, 6, 7)).astype(np.float32)
    mask = np.zeros((5, 6, 7), np.int64)
    mask[1:4, 2:4, 2:5] = 2
    vol = Sample(image, mask, "case_1", spacing=(2.0, 1.0, 0.5))
    slices = C.volume_slices([vol])
    assert [s.case_id for s in slices] == ["case_1/1", "case_1/2", "case_1/3"]
    assert slices[0].image.shape == (1, 6, 7) and slices[0].mask.shape == (6, 7)
    assert slices[0].spacing == (1.0, 0.5) and slices[0].meta["patient"] == "case_1"
    assert len(C.volume_slices([vol], min_foreground=0)) == 5
    assert len(C.volume_slices([vol], axis=2, min_foreground=0, step=2)) == 4
    with pytest.raises(ValueError, match="3D samples"):
        C.volume_slices([Sample(image[:, 0], mask[0], "flat")])
    with pytest.raises(ValueError, match="axis"):
        C.volume_slices([vol], axis=3)


def test_with_features_and_precomputed_stack():
    from medseg_course.classical.features import feature_families

    train = [(s.image, s.mask) for s in _scenes(2)]
    clf = C.fit_pixel_classifier(train, n_per_class=40, sigmas=(1, 2), group_by=None)
    fewer = clf.with_features(("gaussian", "intensity"))
    assert fewer.features == ("intensity", "gaussian")
    cols = [i for i, f in enumerate(feature_families(1, (1, 2))) if f in ("intensity", "gaussian")]
    np.testing.assert_array_equal(fewer.models["all"].X, clf.models["all"].X[:, cols])
    test = _scenes(1, offset=40)[0]
    stack = clf.stack(test.image)
    assert stack.shape == (13, 64, 64)
    np.testing.assert_array_equal(clf.predict(test.image, stack=stack), clf.predict(test.image))
    assert fewer.predict(test.image).shape == (64, 64)
    with pytest.raises(ValueError, match="subset"):
        fewer.with_features(("log",))
    with pytest.raises(ValueError, match="stack must be"):
        fewer.predict(test.image, stack=stack)


def test_grey_image_in_an_rgb_model_gets_repeated_features():
    from medseg_course.classical.features import pixel_features

    s = _scenes(1)[0]
    rgb = np.repeat(s.image[None], 3, axis=0)
    clf = C.fit_pixel_classifier([(rgb, s.mask)], n_per_class=20, sigmas=(1,), group_by=None)
    np.testing.assert_array_equal(clf.stack(s.image), pixel_features(rgb, (1,)))


SHARED = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "datasets"


@pytest.mark.skipif(not SHARED.exists(), reason="needs the dataset copies in ../shared/datasets")
def test_default_classifier_on_real_images(monkeypatch):
    from medseg_course.data import load_dataset

    monkeypatch.setenv("MEDSEG_DATA_DIR", str(SHARED))
    clf = C.default_pixel_classifier(1)                      # one image per category: fast
    assert clf is C.default_pixel_classifier(1)              # cached
    assert sorted(clf.models) == ["brightfield", "fluorescence"]
    assert clf.models["fluorescence"].n_images == 3 and clf.models["brightfield"].n_channels == 3
    val = load_dataset("dsb2018", "val", progress=False)
    for i in (0, len(val) - 1):
        s = val[i]
        pred = C.segment_pixel_classifier(s.image, s.category, model=clf)
        assert pred.shape == s.mask.shape and pred.dtype == bool
        assert dice(pred, s.mask) > 0.5
    with pytest.raises(ValueError, match="max_per_category"):
        C.default_pixel_classifier(0)
