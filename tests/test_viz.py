"""Tests for medseg_course.viz, on the Agg backend: what each figure holds, the errors, and the
3D viewer's static fallback."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from medseg_course import viz  # noqa: E402
from medseg_course.metrics import iou  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def scene(size=32):
    image = np.random.default_rng(0).random((size, size))
    labels = np.zeros((size, size), dtype=np.int64)
    labels[4:24, 4:24] = 1
    labels[8:12, 8:12] = 2
    return image, labels


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


# --------------------------------------------------------------------------------------------
# overlay
# --------------------------------------------------------------------------------------------


def test_overlay_draws_image_mask_outlines_and_legend():
    image, labels = scene()
    fig = viz.overlay(image, labels, class_names={1: "liver", 2: "tumour"}, title="case 1")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.images) == 2  # image + RGBA mask layer
    assert len(ax.collections) == 2  # one outline per class
    assert legend_texts(ax) == ["liver", "tumour"]
    assert ax.get_title() == "case 1"
    rgba = ax.images[1].get_array()
    assert rgba[0, 0, 3] == 0 and rgba[5, 5, 3] == pytest.approx(0.4)  # background transparent
    np.testing.assert_allclose(rgba[5, 5, :3], viz.CLASS_COLORS[0])


def test_overlay_accepts_channel_first_tensors_and_existing_axes():
    image, labels = scene()
    rgb = np.stack([image, image, 1 - image])
    fig, ax = plt.subplots()
    assert viz.overlay(rgb, labels == 1, ax=ax) is fig
    assert ax.images[0].get_array().shape == (32, 32, 3)  # (C, H, W) shown as (H, W, C)
    assert ax.get_legend() is None  # a single unnamed class needs no legend
    fig = viz.overlay(torch.as_tensor(image)[None], torch.as_tensor(labels)[None], legend=True)
    assert legend_texts(fig.axes[0]) == ["class 1", "class 2"]
    fig = viz.overlay(image, np.zeros_like(labels), colors={1: "red"})
    assert len(fig.axes[0].collections) == 0


def test_overlay_errors():
    image, labels = scene()
    with pytest.raises(ValueError, match=r"image of shape \(32, 32, 3\) looks channel-last.*np.moveaxis\(image, -1, 0\)"):
        viz.overlay(np.zeros((32, 32, 3)), labels)
    with pytest.raises(ValueError, match=r"image must be \(H, W\) or channel-first \(C, H, W\) with C 1 or 3, got shape \(2, 1, 32, 32\); pass one image, e.g. image\[0\]"):
        viz.overlay(np.zeros((2, 1, 32, 32)), labels)
    with pytest.raises(ValueError, match=r"got shape \(5, 32, 32\)$"):
        viz.overlay(np.zeros((5, 32, 32)), labels)
    with pytest.raises(ValueError, match=r"mask must have the image's shape \(32, 32\), got \(16, 16\)"):
        viz.overlay(image, labels[:16, :16])
    with pytest.raises(ValueError, match=r"mask must be a 2D mask \(H, W\) or \(1, H, W\), got shape \(2, 32, 32\)"):
        viz.overlay(image, np.zeros((2, 32, 32)))
    with pytest.raises(ValueError, match=r"mask has float values that are not whole numbers.*Threshold first, e.g. mask > 0.5"):
        viz.overlay(image, image)
    with pytest.raises(ValueError, match=r"mask contains NaN or inf"):
        viz.overlay(image, np.full((32, 32), np.nan))
    with pytest.raises(TypeError, match=r"image must be a numeric array, got dtype <U1"):
        viz.overlay(np.array([["a"]]), labels)
    with pytest.raises(ValueError, match=r"alpha must be a number between 0 and 1, got 40"):
        viz.overlay(image, labels, alpha=40)
    with pytest.raises(TypeError, match=r"class_names must be a sequence indexed by label .* got 'liver'"):
        viz.overlay(image, labels, class_names="liver")
    fig, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match=r"ax must be a matplotlib Axes \(1 x 1\), got"):
        viz.overlay(image, labels, ax=axes)


# --------------------------------------------------------------------------------------------
# overlay_contours
# --------------------------------------------------------------------------------------------


def test_overlay_contours_colours_errors():
    image, labels = scene()
    target = labels > 0
    pred = np.roll(target, 2, axis=1)
    fig = viz.overlay_contours(image, pred, target, title="Dice 0.900")
    ax = fig.axes[0]
    assert len(ax.images) == 2 and len(ax.collections) == 2  # image + errors; two contours
    assert legend_texts(ax) == ["truth", "prediction", "TP", "FP", "FN"]
    rgba = ax.images[1].get_array()
    from matplotlib.colors import to_rgb

    np.testing.assert_allclose(rgba[10, 10, :3], to_rgb(viz.ERROR_COLORS["TP"]))
    np.testing.assert_allclose(rgba[10, 24, :3], to_rgb(viz.ERROR_COLORS["FP"]))  # pred only
    np.testing.assert_allclose(rgba[10, 4, :3], to_rgb(viz.ERROR_COLORS["FN"]))  # truth only
    assert rgba[0, 0, 3] == 0


def test_overlay_contours_label_maps_and_options():
    image, labels = scene()
    pred = np.where(labels == 2, 0, labels)
    fig = viz.overlay_contours(image, pred, labels, label=2, show_errors=False, legend=False)
    ax = fig.axes[0]
    assert len(ax.images) == 1 and ax.get_legend() is None
    assert len(ax.collections) == 1  # the prediction has no class 2: only the truth's contour
    with pytest.raises(ValueError, match=r"pred is a label map \(values \[1, 2\]\); pass label= .* e.g. label=1"):
        viz.overlay_contours(image, labels, labels)
    with pytest.raises(ValueError, match=r"target must have the image's shape \(32, 32\), got \(32, 31\)"):
        viz.overlay_contours(image, labels == 1, labels[:, :31] == 1)


# --------------------------------------------------------------------------------------------
# comparison_grid
# --------------------------------------------------------------------------------------------


def test_comparison_grid_layout_and_scores():
    image, labels = scene()
    target = labels > 0
    images = np.stack([image, image])
    targets = np.stack([target, target])
    fig = viz.comparison_grid(images, targets, {"shifted": np.roll(targets, 2, axis=2), "same": targets},
                              metric_name="Dice", row_titles=["a", "b"])
    assert len(fig.axes) == 2 * 4
    titles = [a.get_title() for a in fig.axes]
    assert titles[:4] == ["image", "truth", "shifted\nDice 0.900", "same\nDice 1.000"]
    assert titles[6:] == ["Dice 0.900", "Dice 1.000"]
    assert fig.axes[4].get_ylabel() == "b"


def test_comparison_grid_label_maps_metric_and_axes():
    image, labels = scene()
    pred = np.where(labels == 2, 1, labels)  # tumour missed: class 1 IoU 384/400, class 2 IoU 0
    fig, axes = plt.subplots(1, 3)
    out = viz.comparison_grid([image], [labels], [pred], metric=iou, class_names=["bg", "liver", "tumour"],
                              ax=axes)
    assert out is fig
    assert fig.axes[2].get_title() == f"prediction\niou {np.mean([384 / 400, 0.0]):.3f}"
    assert legend_texts(fig.axes[1]) == ["liver", "tumour"]
    fig = viz.comparison_grid([image], [labels], [pred], metric=None)
    assert fig.axes[2].get_title() == "prediction"
    fig = viz.comparison_grid([image], [labels], [pred], labels=[2], metric_name="Dice")
    assert fig.axes[2].get_title() == "prediction\nDice 0.000"


def test_comparison_grid_errors():
    image, labels = scene()
    with pytest.raises(ValueError, match=r"targets must hold 2 items, one per image, got 1"):
        viz.comparison_grid([image, image], [labels], [labels, labels])
    with pytest.raises(ValueError, match=r"images must be a sequence of 2D items or an array with a leading N axis .* wrap it in a list: \[images\]"):
        viz.comparison_grid(image, [labels], [labels])
    with pytest.raises(ValueError, match=r"predictions must hold at least one column"):
        viz.comparison_grid([image], [labels], {})
    with pytest.raises(ValueError, match=r"predictions\['a'\] must hold 1 items"):
        viz.comparison_grid([image], [labels], {"a": [labels, labels]})
    with pytest.raises(TypeError, match=r"metric must be a function metric\(pred, target\) or None, got 'dice'"):
        viz.comparison_grid([image], [labels], [labels], metric="dice")
    with pytest.raises(ValueError, match=r"row_titles must hold 1 titles, one per row, got 2"):
        viz.comparison_grid([image], [labels], [labels], row_titles=["a", "b"])
    with pytest.raises(ValueError, match=r"predictions\['prediction'\]\[0\] must have the image's shape"):
        viz.comparison_grid([image], [labels], [labels[:10]])
    with pytest.raises(ValueError, match=r"ax must be 3 matplotlib Axes \(1 x 3\)"):
        viz.comparison_grid([image], [labels], [labels], ax=plt.subplots(1, 2)[1])


# --------------------------------------------------------------------------------------------
# plot_history
# --------------------------------------------------------------------------------------------


def test_plot_history_from_dict_and_list():
    history = {"train_loss": [0.9, 0.5, 0.3], "val_loss": [1.0, 0.6, 0.7], "val_dice": [0.4, 0.8, 0.7]}
    fig = viz.plot_history(history, title="run 1")
    loss_ax, metric_ax = fig.axes
    assert [a.get_ylabel() for a in fig.axes] == ["loss", "metric"]
    assert len(loss_ax.lines) == 2 + 1 and len(metric_ax.lines) == 1 + 1  # curves + best markers
    best = loss_ax.lines[2].get_xydata()[0]
    np.testing.assert_allclose(best, [2, 0.6])  # epochs count from 1; best val loss at epoch 2
    np.testing.assert_allclose(metric_ax.lines[1].get_xydata()[0], [2, 0.8])
    assert loss_ax.lines[0].get_color() == loss_ax.lines[1].get_color()  # train/val share colour
    assert fig._suptitle.get_text() == "run 1"
    per_epoch = [{"epoch": 0, "train_loss": 0.9}, {"epoch": 1, "train_loss": 0.5, "val_dice": 0.8}]
    fig = viz.plot_history(per_epoch)
    assert len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [np.nan, 0.8])


def test_plot_history_on_given_axes_and_keys():
    history = {"train_loss": [0.9, 0.5], "val_dice": [0.4, 0.8]}
    fig, ax = plt.subplots()
    assert viz.plot_history(history, ax=ax) is fig
    assert len(ax.lines) == 2 + 1 and ax.get_ylabel() == "value"
    fig = viz.plot_history(history, keys=["val_dice"])
    assert len(fig.axes) == 1 and fig.axes[0].get_ylabel() == "metric"


def test_plot_history_errors():
    with pytest.raises(TypeError, match=r"history must be a dict \{name: values per epoch\} or a list of dicts.*got float"):
        viz.plot_history(0.5)
    with pytest.raises(TypeError, match=r"holding \['float'\]"):
        viz.plot_history([0.9, 0.5])
    with pytest.raises(ValueError, match=r"history is empty"):
        viz.plot_history({})
    with pytest.raises(TypeError, match=r"history\['loss'\] must hold numbers, got \['a'\]"):
        viz.plot_history({"loss": ["a"]})
    with pytest.raises(ValueError, match=r"history\['loss'\] has 3 values but 'epoch' has 2; .* list of per-epoch dicts"):
        viz.plot_history({"epoch": [1, 2], "loss": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"keys \['dice'\] are not in the history, which has \['loss'\]"):
        viz.plot_history({"loss": [1.0]}, keys=["dice"])


# --------------------------------------------------------------------------------------------
# show_volume
# --------------------------------------------------------------------------------------------


def volume_scene():
    volume = np.random.default_rng(1).random((10, 32, 24))
    mask = np.zeros(volume.shape, dtype=np.int64)
    mask[3:7, 8:20, 6:18] = 1
    mask[4:6, 10:14, 8:12] = 2
    return volume, mask


def test_show_volume_falls_back_to_static_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    volume, mask = volume_scene()
    fig = viz.show_volume(volume, mask, spacing=(5.0, 0.8, 0.8), class_names=["bg", "organ", "core"])
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert [a.get_title() for a in fig.axes] == ["axial 5", "coronal 16", "sagittal 12"]
    assert [a.get_aspect() for a in fig.axes] == [1.0, 6.25, 6.25]
    assert fig.axes[0].images[0].get_array().shape == (32, 24)
    assert fig.axes[1].images[0].get_array().shape == (10, 24)
    assert fig.axes[2].images[0].get_array().shape == (10, 32)
    assert all(len(a.images) == 2 for a in fig.axes)  # slice + mask
    assert legend_texts(fig.axes[0]) == ["organ", "core"]


def test_show_volume_static_options():
    volume, mask = volume_scene()
    fig, axes = plt.subplots(1, 3)
    out = viz.show_volume(volume[None], interactive=False, position=(0, 1, 2), ax=axes)
    assert out is fig and [a.get_title() for a in fig.axes] == ["axial 0", "coronal 1", "sagittal 2"]
    assert all(len(a.images) == 1 for a in fig.axes)
    np.testing.assert_allclose(fig.axes[2].images[0].get_array(), volume[:, :, 2])


def test_widgets_supported_detection(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    for var in ("COLAB_RELEASE_TAG", "COLAB_GPU", "KAGGLE_KERNEL_RUN_TYPE", "BINDER_SERVICE_HOST",
                "BINDER_REPO_URL"):
        monkeypatch.delenv(var, raising=False)
    assert viz.widgets_supported() is False  # Agg backend, no kernel
    monkeypatch.setattr(viz.matplotlib, "get_backend", lambda: "module://matplotlib_inline.backend_inline")
    assert viz.widgets_supported() is False  # still no kernel

    class FakeKernelShell:
        kernel = object()

    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: FakeKernelShell())
    assert viz.widgets_supported() is True
    monkeypatch.setenv("CI", "1")
    assert viz.widgets_supported() is False


def test_show_volume_interactive_viewer():
    ipywidgets = pytest.importorskip("ipywidgets")
    volume, mask = volume_scene()
    viewer = viz.show_volume(volume, mask, spacing=(5.0, 0.8, 0.8), interactive=True)
    assert isinstance(viewer, ipywidgets.VBox)
    buttons, slider, _ = viewer.children
    ax = viewer.figure.axes[0]
    assert ax.get_title() == "axial 5" and slider.max == 9
    slider.value = 2
    assert ax.get_title() == "axial 2"
    np.testing.assert_allclose(ax.images[0].get_array(), volume[2])
    buttons.value = "sagittal"
    assert slider.max == 23 and slider.value == 12 and ax.get_title() == "sagittal 12"
    assert ax.get_aspect() == 6.25
    np.testing.assert_allclose(ax.images[0].get_array(), volume[:, :, 12])


def test_show_volume_errors():
    volume, mask = volume_scene()
    with pytest.raises(ValueError, match=r"volume must be 3D \(D, H, W\) or \(1, D, H, W\), got shape \(32, 24\); for a 2D image use overlay\(\)"):
        viz.show_volume(volume[0])
    with pytest.raises(ValueError, match=r"mask must have the volume's shape \(10, 32, 24\), got \(10, 32, 23\)"):
        viz.show_volume(volume, mask[..., :23], interactive=False)
    with pytest.raises(ValueError, match=r"mask must be a 3D mask \(D, H, W\), got shape \(32, 24\)"):
        viz.show_volume(volume, mask[0], interactive=False)
    with pytest.raises(ValueError, match=r"plane must be one of \['axial', 'coronal', 'sagittal'\], got 'transverse'"):
        viz.show_volume(volume, plane="transverse", interactive=False)
    with pytest.raises(ValueError, match=r"position must be a voxel \(z, y, x\) inside the volume of shape \(10, 32, 24\), got \(10, 0, 0\)"):
        viz.show_volume(volume, position=(10, 0, 0), interactive=False)
    with pytest.raises(ValueError, match=r"spacing must have one value per axis of the mask \(3, in the order \(z, y, x\)"):
        viz.show_volume(volume, spacing=(1.0, 1.0), interactive=False)


def test_masks_covering_everything_or_nothing_draw_without_warnings():
    import warnings

    image, _ = scene()
    full, empty = np.ones((32, 32), dtype=bool), np.zeros((32, 32), dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(viz.overlay(image, full).axes[0].collections) == 0
        assert len(viz.overlay_contours(image, full, empty).axes[0].collections) == 0


def test_explore_static_fallback_and_errors():
    import ipywidgets as widgets

    image = np.linspace(0, 1, 64).reshape(8, 8)
    calls = []

    def render(ax, t):
        calls.append(t)
        ax.imshow(image > t)

    slider = {"t": widgets.FloatSlider(value=0.5, min=0, max=1)}
    fig = viz.explore(render, slider, static=[{"t": 0.2}, {"t": 0.4}, {"t": 0.6}], ncols=2)
    assert calls == [0.2, 0.4, 0.6]
    assert sum(ax.get_visible() for ax in fig.axes) == 3 and len(fig.axes) == 4
    box = viz.explore(render, slider, static=[{"t": 0.2}], interactive=True)
    assert isinstance(box, widgets.VBox) and box.children[0] is slider["t"]
    with pytest.raises(ValueError, match=r"static\[0\] gives no value for \['t'\]"):
        viz.explore(render, slider, static=[{}])
    with pytest.raises(ValueError, match="controls must be a non-empty dict"):
        viz.explore(render, {}, static=[{"t": 1}])
