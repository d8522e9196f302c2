"""Figures for segmentation: mask overlays, prediction-vs-truth contours, comparison grids,
learning curves and a 3D slice viewer.

Introduced in 01_medical_images.

Conventions
-----------
* **Images** are 2D ``(H, W)`` (grayscale) or channel-first ``(C, H, W)`` with ``C`` 1 or 3,
  PyTorch's layout, the one the whole course uses. Channel-last ``(H, W, 3)`` arrays are refused
  with the fix (``np.moveaxis(image, -1, 0)``), because a silent guess would sometimes be wrong.
  Torch tensors are accepted (detached and moved to the CPU).
* **Masks** are ``(H, W)`` (or ``(1, H, W)``) binary masks or integer label maps, 0 being the
  background. Class ``k`` is drawn in colour ``k`` of :data:`CLASS_COLORS`; ``class_names`` is a
  sequence indexed by label (``class_names[0]`` names the background) or a mapping
  ``{label: name}``, as in :func:`medseg_course.metrics.segmentation_report`.
* **Volumes** are ``(D, H, W)``, axes ``(z, y, x)``, with ``spacing`` ``(sz, sy, sx)``.
* Every plotting function takes an optional ``ax`` (or array of axes) to draw into, returns the
  matplotlib ``Figure`` (the viewer returns a widget), and never calls ``plt.show()``. In a
  notebook, assign the result (``fig = overlay(...)``) or end the line with ``;``: a Figure left as
  the value of a cell is shown a second time by Jupyter.

Errors are coloured with the Okabe-Ito palette, readable with the common colour-vision
deficiencies: true positives green, false positives vermillion, false negatives blue.
"""

from __future__ import annotations

import math
import os
import numbers
from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from medseg_course.metrics import _check_spacing, _probability_message, dice
from medseg_course.runtime import detect_environment

__all__ = [
    "CLASS_COLORS",
    "ERROR_COLORS",
    "overlay",
    "overlay_contours",
    "comparison_grid",
    "plot_history",
    "show_volume",
    "widgets_supported",
]

#: Colour of class ``k`` is ``CLASS_COLORS[(k - 1) % 10]`` (matplotlib's tab10); 0 is transparent.
CLASS_COLORS = tuple(plt.get_cmap("tab10").colors)
#: Okabe-Ito colours of true positives, false positives and false negatives.
ERROR_COLORS = {"TP": "#009E73", "FP": "#D55E00", "FN": "#0072B2"}
_TRUTH_COLOR, _PRED_COLOR = "#FFFFFF", "#F0E442"  # contour colours: white truth, yellow prediction
_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _to_numpy(x, name):
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    return arr


def _as_image(image, name="image"):
    """Return (array for imshow, is_rgb) from an (H, W) or channel-first (C, H, W) image."""
    arr = _to_numpy(image, name)
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        if arr.shape[0] == 1:
            arr = arr[0]
        else:
            arr = np.moveaxis(arr, 0, -1)
            if arr.dtype != np.uint8:  # imshow wants floats in [0, 1] for RGB
                lo, hi = float(arr.min()), float(arr.max())
                arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr, dtype=float)
            return arr, True
    elif arr.ndim == 3 and arr.shape[-1] in (3, 4):
        raise ValueError(
            f"{name} of shape {arr.shape} looks channel-last (H, W, C); the course uses "
            f"channel-first (C, H, W): pass np.moveaxis({name}, -1, 0)"
        )
    if arr.ndim != 2:
        hint = f"; pass one image, e.g. {name}[0]" if arr.ndim == 4 else ""
        raise ValueError(
            f"{name} must be (H, W) or channel-first (C, H, W) with C 1 or 3, got shape "
            f"{arr.shape}{hint}"
        )
    return arr, False


def _as_mask(mask, name, shape=None, *, ndim=2):
    """Integer (H, W) (or (D, H, W) with ndim=3) label map from a mask; checks shape and values."""
    arr = _to_numpy(mask, name)
    if arr.ndim == ndim + 1 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != ndim:
        expected = "(H, W) or (1, H, W)" if ndim == 2 else "(D, H, W)"
        raise ValueError(f"{name} must be a {ndim}D mask {expected}, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or inf values; a mask holds 0/1 or class labels")
        if not np.array_equal(arr, np.round(arr)):
            raise ValueError(_probability_message(name, arr))
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(
            f"{name} must have the image's shape {tuple(shape)}, got {arr.shape}; masks and "
            "images must share one pixel grid"
        )
    return arr.astype(np.int64)


def _class_name(label, class_names):
    if isinstance(class_names, Mapping):
        return str(class_names.get(label, f"class {label}"))
    if class_names is not None and 0 <= label < len(class_names):
        return str(class_names[label])
    return f"class {label}"


def _check_class_names(class_names):
    if class_names is not None and (isinstance(class_names, str)
                                    or not isinstance(class_names, (Mapping, Sequence))):
        raise TypeError(
            "class_names must be a sequence indexed by label (class_names[0] is the background) "
            f"or a mapping {{label: name}}, got {class_names!r}"
        )


def _class_color(label, colors=None):
    if colors is not None and label in colors:
        return to_rgba(colors[label])
    return to_rgba(CLASS_COLORS[(label - 1) % len(CLASS_COLORS)])


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number between 0 and 1, got {alpha!r}")
    return float(alpha)


def _new_axes(ax, nrows=1, ncols=1, figsize=None):
    """Return (figure, 2D array of axes): new ones, or ``ax`` checked for the expected count."""
    if ax is None:
        fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")
        return fig, axes
    axes = np.asarray(ax, dtype=object).reshape(-1)
    if axes.size != nrows * ncols or not all(isinstance(a, matplotlib.axes.Axes) for a in axes):
        raise ValueError(
            f"ax must be {'a matplotlib Axes' if nrows * ncols == 1 else f'{nrows * ncols} matplotlib Axes'} "
            f"({nrows} x {ncols}), got {ax!r}; leave ax=None to make a new figure"
        )
    return axes[0].figure, axes.reshape(nrows, ncols)


# --------------------------------------------------------------------------------------------
# drawing helpers
# --------------------------------------------------------------------------------------------


def _draw_image(ax, image, *, aspect=None, origin="upper"):
    arr, rgb = image
    if rgb:
        ax.imshow(arr, aspect=aspect, origin=origin, interpolation="nearest")
    else:
        ax.imshow(arr, cmap="gray", aspect=aspect, origin=origin, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _has_contour(region):
    """A level-0.5 contour exists: the region is neither empty nor everything, and is 2D."""
    return min(region.shape) > 1 and region.any() and not region.all()


def _draw_labels(ax, labels, *, alpha, colors=None, aspect=None, origin="upper", outline=True):
    """Filled semi-transparent classes with a thin outline; returns the labels drawn."""
    present = [int(v) for v in np.unique(labels) if v != 0]
    rgba = np.zeros(labels.shape + (4,))
    for label in present:
        color = _class_color(label, colors)
        region = labels == label
        rgba[region] = (*color[:3], alpha)
        if outline and _has_contour(region):
            # contour puts Z[i, j] at (x=j, y=i), which matches imshow for either origin
            ax.contour(region, levels=[0.5], colors=[color[:3]], linewidths=0.8)
    ax.imshow(rgba, aspect=aspect, origin=origin, interpolation="nearest")
    return present


def _legend(ax, labels, class_names, colors, alpha):
    handles = [Patch(facecolor=_class_color(k, colors)[:3], alpha=max(alpha, 0.6),
                     label=_class_name(k, class_names)) for k in labels]
    if handles:
        ax.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)


# --------------------------------------------------------------------------------------------
# public figures
# --------------------------------------------------------------------------------------------


def overlay(image, mask, *, ax=None, alpha=0.4, class_names=None, colors=None, legend=None,
            title=None):
    """Draw a mask or label map over an image: filled, semi-transparent, outlined, with a legend.

    Introduced in 01_medical_images.

    Parameters
    ----------
    image : (H, W) or (C, H, W) array_like
        Grayscale or channel-first image, C 1 or 3.
    mask : (H, W) or (1, H, W) array_like
        Binary mask or integer label map (0 = background, not drawn).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure by default.
    alpha : float, default 0.4
        Opacity of the filled classes.
    class_names : sequence of str or mapping, optional
        Legend names: a sequence indexed by label (``class_names[0]`` is the background) or a
        mapping ``{label: name}``. Unnamed classes show as ``"class k"``.
    colors : mapping, optional
        ``{label: colour}`` overriding :data:`CLASS_COLORS`.
    legend : bool, optional
        Draw the legend; by default when ``class_names`` is given or several classes are present.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``.

    Raises
    ------
    ValueError
        If the image or mask has the wrong shape, the mask holds probabilities, or ``alpha`` is
        outside [0, 1].
    TypeError
        If ``class_names`` is neither a sequence nor a mapping.

    Notes
    -----
    Only the labels present in ``mask`` are drawn and listed. Probabilities are refused:
    threshold first (``prob > 0.5``).

    Examples
    --------
    >>> import numpy as np
    >>> image = np.random.default_rng(0).random((32, 32))
    >>> labels = np.zeros((32, 32), dtype=int); labels[4:20, 4:20] = 1; labels[8:12, 8:12] = 2
    >>> fig = overlay(image, labels, class_names=["background", "liver", "tumour"])
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['liver', 'tumour']
    """
    img = _as_image(image)
    labels = _as_mask(mask, "mask", img[0].shape[:2])
    alpha = _check_alpha(alpha)
    _check_class_names(class_names)
    fig, axes = _new_axes(ax)
    a = axes[0, 0]
    _draw_image(a, img)
    present = _draw_labels(a, labels, alpha=alpha, colors=colors)
    if legend or (legend is None and (class_names is not None or len(present) > 1)):
        _legend(a, present, class_names, colors, alpha)
    if title is not None:
        a.set_title(title)
    return fig


def overlay_contours(image, pred, target, *, ax=None, label=None, show_errors=True, alpha=0.45,
                     legend=True, title=None):
    """Compare a prediction with the truth on an image: contours and TP / FP / FN colouring.

    Introduced in 01_medical_images.

    Parameters
    ----------
    image : (H, W) or (C, H, W) array_like
        Grayscale or channel-first image, C 1 or 3.
    pred, target : (H, W) or (1, H, W) array_like
        Binary masks, or label maps with ``label`` naming the class to compare.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into; a new figure by default.
    label : int, optional
        Class to compare in label maps (masks ``pred == label`` and ``target == label``).
    show_errors : bool, default True
        Fill true positives (green), false positives (vermillion) and false negatives (blue).
    alpha : float, default 0.45
        Opacity of the filled errors.
    legend : bool, default True
        Legend of the contours and error colours.
    title : str, optional
        Axes title, e.g. ``f"Dice {dice(pred, target):.3f}"``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding ``ax``.

    Raises
    ------
    ValueError
        If shapes differ, masks hold probabilities, or label maps are given without ``label``.

    Notes
    -----
    The truth is outlined in white (solid), the prediction in yellow (dashed). Contours pass
    half-way between pixel centres (``ax.contour`` at level 0.5). The fill colours come from the
    Okabe-Ito palette, distinguishable with the common colour-vision deficiencies.

    References
    ----------
    .. [1] M. Okabe and K. Ito, "Color Universal Design (CUD): how to make figures and
       presentations that are friendly to colorblind people", 2008.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.zeros((32, 32)); target = np.zeros((32, 32), dtype=bool)
    >>> target[6:26, 6:26] = True; pred = np.roll(target, 2, axis=1)
    >>> fig = overlay_contours(image, pred, target, title="Dice 0.900")
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['truth', 'prediction', 'TP', 'FP', 'FN']
    """
    img = _as_image(image)
    shape = img[0].shape[:2]
    masks = []
    for name, m in (("pred", pred), ("target", target)):
        arr = _as_mask(m, name, shape)
        if label is None:
            if arr.min() < 0 or arr.max() > 1:
                values = [int(v) for v in np.unique(arr) if v != 0][:5]
                raise ValueError(
                    f"{name} is a label map (values {values}); pass label= to choose the class to "
                    f"compare, e.g. label={values[0]}"
                )
            masks.append(arr.astype(bool))
        else:
            masks.append(arr == label)
    p, t = masks
    alpha = _check_alpha(alpha)
    fig, axes = _new_axes(ax)
    a = axes[0, 0]
    _draw_image(a, img)
    handles = [
        matplotlib.lines.Line2D([], [], color=_TRUTH_COLOR, lw=1.5, label="truth"),
        matplotlib.lines.Line2D([], [], color=_PRED_COLOR, lw=1.5, ls="--", label="prediction"),
    ]
    if show_errors:
        rgba = np.zeros(shape + (4,))
        for key, region in (("TP", p & t), ("FP", p & ~t), ("FN", ~p & t)):
            rgba[region] = (*to_rgba(ERROR_COLORS[key])[:3], alpha)
            handles.append(Patch(facecolor=ERROR_COLORS[key], alpha=max(alpha, 0.6), label=key))
        a.imshow(rgba, interpolation="nearest")
    for m, color, style in ((t, _TRUTH_COLOR, "solid"), (p, _PRED_COLOR, "dashed")):
        if _has_contour(m):
            a.contour(m, levels=[0.5], colors=[color], linewidths=1.5, linestyles=style)
    if legend:
        a.legend(handles=handles, loc="upper right", fontsize="small", framealpha=0.8)
    if title is not None:
        a.set_title(title)
    return fig


def _as_stack(x, name, count=None):
    """A list of items from a sequence, or from an array with a leading N axis."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        items = list(x) if x.ndim >= 3 else None
    elif isinstance(x, Sequence) and not isinstance(x, str):
        items = list(x)
    else:
        items = None
    if items is None:
        raise ValueError(
            f"{name} must be a sequence of 2D items or an array with a leading N axis (N, H, W), "
            f"got {type(x).__name__}{getattr(x, 'shape', '')}; for one case wrap it in a list: [{name}]"
        )
    if count is not None and len(items) != count:
        raise ValueError(f"{name} must hold {count} items, one per image, got {len(items)}")
    return items


def comparison_grid(images, targets, predictions, *, metric=dice, metric_name=None, labels=None,
                    class_names=None, alpha=0.4, row_titles=None, ax=None):
    """Rows of image | ground truth | one or more predictions, with each prediction's score.

    Introduced in 01_medical_images.

    Parameters
    ----------
    images : sequence of (H, W) or (C, H, W), or (N, H, W) / (N, C, H, W) array
        One image per row.
    targets : sequence of (H, W), or (N, H, W) array
        Ground-truth masks or label maps, one per row.
    predictions : mapping of str to masks, or masks
        ``{"U-Net": masks, "Otsu": masks}``, each like ``targets``: one column per entry, in
        order. A bare sequence / array is one column named "prediction".
    metric : callable or None, default :func:`~medseg_course.metrics.dice`
        ``metric(pred, target)`` (binary) or ``metric(pred, target, labels=labels)`` (label maps,
        averaged with ``np.nanmean``) shown in each prediction's title; None shows no score.
    metric_name : str, optional
        Name in the titles; default ``metric.__name__``.
    labels : sequence of int, optional
        Classes scored in label maps; default every non-zero label present in the inputs.
    class_names : sequence of str or mapping, optional
        Legend names (see :func:`overlay`), shown on the first truth panel.
    alpha : float, default 0.4
        Opacity of the masks.
    row_titles : sequence of str, optional
        A label for each row, e.g. case identifiers.
    ax : (N, 2 + P) array of matplotlib.axes.Axes, optional
        Axes to draw into; a new figure by default.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the grid.

    Raises
    ------
    ValueError
        If the numbers of images, targets and predictions differ, or any shape is wrong.

    Examples
    --------
    >>> import numpy as np
    >>> target = np.zeros((2, 32, 32), dtype=bool); target[:, 6:26, 6:26] = True
    >>> images = target + np.random.default_rng(0).normal(0, 0.3, target.shape)
    >>> fig = comparison_grid(images, target, {"shifted": np.roll(target, 2, axis=2),
    ...                                        "perfect": target}, metric_name="Dice")
    >>> fig.axes[2].get_title()
    'shifted\\nDice 0.900'
    """
    image_list = _as_stack(images, "images")
    n = len(image_list)
    target_list = _as_stack(targets, "targets", n)
    if isinstance(predictions, Mapping):
        columns = {str(k): _as_stack(v, f"predictions[{k!r}]", n) for k, v in predictions.items()}
    else:
        columns = {"prediction": _as_stack(predictions, "predictions", n)}
    if not columns:
        raise ValueError("predictions must hold at least one column of masks, got an empty mapping")
    if metric is not None and not callable(metric):
        raise TypeError(f"metric must be a function metric(pred, target) or None, got {metric!r}")
    if row_titles is not None and len(row_titles) != n:
        raise ValueError(f"row_titles must hold {n} titles, one per row, got {len(row_titles)}")
    alpha = _check_alpha(alpha)
    _check_class_names(class_names)
    imgs = [_as_image(im, f"images[{i}]") for i, im in enumerate(image_list)]
    tgts = [_as_mask(m, f"targets[{i}]", imgs[i][0].shape[:2]) for i, m in enumerate(target_list)]
    preds = {name: [_as_mask(m, f"predictions[{name!r}][{i}]", imgs[i][0].shape[:2])
                    for i, m in enumerate(ms)] for name, ms in columns.items()}
    binary = all(m.min() >= 0 and m.max() <= 1 for m in tgts + sum(preds.values(), []))
    if labels is None and not binary:
        labels = sorted({int(v) for m in tgts + sum(preds.values(), []) for v in np.unique(m) if v != 0})
    name = metric_name or getattr(metric, "__name__", "score")
    ncols = 2 + len(preds)
    fig, axes = _new_axes(ax, n, ncols, figsize=(2.4 * ncols, 2.4 * n))
    for i in range(n):
        _draw_image(axes[i, 0], imgs[i])
        _draw_image(axes[i, 1], imgs[i])
        present = _draw_labels(axes[i, 1], tgts[i], alpha=alpha)
        if i == 0:
            axes[i, 0].set_title("image")
            axes[i, 1].set_title("truth")
            if class_names is not None:
                _legend(axes[i, 1], present, class_names, None, alpha)
        if row_titles is not None:
            axes[i, 0].set_ylabel(str(row_titles[i]))
        for j, (col, masks) in enumerate(preds.items(), start=2):
            _draw_image(axes[i, j], imgs[i])
            _draw_labels(axes[i, j], masks[i], alpha=alpha)
            title = col if i == 0 else ""
            if metric is not None:
                if labels is None:
                    score = float(metric(masks[i].astype(bool), tgts[i].astype(bool)))
                else:
                    score = float(np.nanmean(metric(masks[i], tgts[i], labels=labels)))
                title = f"{title}\n{name} {score:.3f}" if title else f"{name} {score:.3f}"
            axes[i, j].set_title(title)
    return fig


def _history_series(history):
    """Return ({key: 1D float array}, x values or None) from a dict or a list of dicts."""
    if isinstance(history, Mapping):
        series = dict(history)
    elif isinstance(history, Sequence) and not isinstance(history, str):
        if not all(isinstance(h, Mapping) for h in history):
            raise TypeError(
                "history must be a dict {name: values per epoch} or a list of dicts, one per "
                f"epoch; got a {type(history).__name__} holding "
                f"{sorted({type(h).__name__ for h in history})}"
            )
        keys = list(dict.fromkeys(k for h in history for k in h))
        series = {k: [h.get(k, math.nan) for h in history] for k in keys}
    else:
        raise TypeError(
            "history must be a dict {name: values per epoch} or a list of dicts, one per epoch; "
            f"got {type(history).__name__}"
        )
    out = {}
    for key, values in series.items():
        try:
            arr = np.asarray(values, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise TypeError(f"history[{key!r}] must hold numbers, got {values!r}") from None
        out[str(key)] = arr
    if not out or all(v.size == 0 for v in out.values()):
        raise ValueError("history is empty: train for at least one epoch, or check the keys")
    x = out.pop("epoch", None)
    if x is not None:
        for key, v in out.items():
            if v.size != x.size:
                raise ValueError(
                    f"history[{key!r}] has {v.size} values but 'epoch' has {x.size}; log every "
                    "value each epoch, or pass a list of per-epoch dicts (missing values become NaN)"
                )
    return out, x


def plot_history(history, *, keys=None, ax=None, title=None):
    """Learning curves: losses in one panel, metrics in another, best validation epochs marked.

    Introduced in 01_medical_images.

    Parameters
    ----------
    history : dict of str to sequence of float, or list of dict
        ``{"train_loss": [...], "val_loss": [...], "val_dice": [...]}``, or one dict per epoch
        (missing entries become NaN). An ``"epoch"`` entry gives the x values (default 1, 2, ...).
    keys : sequence of str, optional
        Curves to draw; default all. Keys containing ``"loss"`` go to the loss panel.
    ax : matplotlib.axes.Axes or sequence of two Axes, optional
        One Axes draws every curve together; two Axes receive losses then metrics. By default a
        new figure with one panel per group present.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the panels.

    Raises
    ------
    TypeError
        If ``history`` is not a dict or a list of dicts, or holds non-numbers.
    ValueError
        If it is empty, a key is missing, or a series does not match ``"epoch"``.

    Notes
    -----
    ``train_x`` and ``val_x`` share a colour (solid and dashed). The best epoch of each
    validation curve (lowest loss, highest metric) is marked with a dot.

    Examples
    --------
    >>> fig = plot_history({"train_loss": [0.9, 0.5, 0.3], "val_loss": [1.0, 0.6, 0.5],
    ...                     "val_dice": [0.4, 0.7, 0.8]})
    >>> [a.get_ylabel() for a in fig.axes]
    ['loss', 'metric']
    """
    series, x = _history_series(history)
    if keys is not None:
        missing = [k for k in keys if k not in series]
        if missing:
            raise ValueError(f"keys {missing} are not in the history, which has {sorted(series)}")
        series = {k: series[k] for k in keys}
    groups = {"loss": {k: v for k, v in series.items() if "loss" in k.lower()},
              "metric": {k: v for k, v in series.items() if "loss" not in k.lower()}}
    groups = {g: s for g, s in groups.items() if s}
    if ax is not None and isinstance(ax, matplotlib.axes.Axes):
        fig, axes = ax.figure, [ax] * len(groups)
    else:
        fig, grid = _new_axes(ax, 1, len(groups), figsize=(4.5 * len(groups), 3.2))
        axes = list(grid[0])
    shared = len(groups) > 1 and len({id(a) for a in axes}) == 1
    bases = list(dict.fromkeys(_strip_split(k) for k in series))
    for a, (group, curves) in zip(axes, groups.items()):
        for key, values in curves.items():
            xs = x if x is not None else np.arange(1, values.size + 1)
            color = f"C{bases.index(_strip_split(key)) % 10}"
            is_val = key.lower().startswith(("val", "valid"))
            a.plot(xs, values, color=color, ls="--" if is_val else "-", label=key)
            if is_val and np.isfinite(values).any():
                best = np.nanargmin(values) if group == "loss" else np.nanargmax(values)
                a.plot(xs[best], values[best], "o", color=color, ms=5)
        a.set_xlabel("epoch")
        a.set_ylabel("value" if shared else group)
        a.grid(alpha=0.3)
        a.legend(fontsize="small")
    if title is not None:
        fig.suptitle(title)
    return fig


def _strip_split(key):
    low = key.lower()
    for prefix in ("train_", "val_", "valid_", "validation_", "test_"):
        if low.startswith(prefix):
            return low[len(prefix):]
    return low


# --------------------------------------------------------------------------------------------
# 3D viewer
# --------------------------------------------------------------------------------------------

#: plane -> (array axis cut, axes of the 2D slice, origin). z grows upwards in coronal/sagittal.
_PLANES = {"axial": (0, (1, 2), "upper"), "coronal": (1, (0, 2), "lower"),
           "sagittal": (2, (0, 1), "lower")}


def widgets_supported():
    """True when an interactive widget can be shown: inside a Jupyter kernel, not CI, and with an
    interactive matplotlib backend.

    Introduced in 01_medical_images.

    Returns
    -------
    bool
        False under CI (``CI`` set, see :func:`medseg_course.runtime.detect_environment`), in a
        headless run (``MEDSEG_HEADLESS=1``, set by ``medseg-course run`` and ``grade``), with a
        non-interactive backend such as Agg, or outside an IPython kernel (scripts, pytest).

    Examples
    --------
    >>> widgets_supported()  # doctests run outside a Jupyter kernel
    False
    """
    if detect_environment() == "ci" or os.environ.get("MEDSEG_HEADLESS", "") == "1":
        return False
    backend = matplotlib.get_backend().lower()
    if backend in _NON_INTERACTIVE:
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of ipykernel
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _slice(arr, plane, index):
    axis = _PLANES[plane][0]
    return np.take(arr, index, axis=axis)


def _aspect(plane, spacing):
    _, (rows, cols), _ = _PLANES[plane]
    return spacing[rows] / spacing[cols]  # height / width of one displayed pixel


def _draw_plane(a, vol, labels, plane, index, spacing, alpha, vmin, vmax, colors):
    _, _, origin = _PLANES[plane]
    a.clear()
    a.imshow(_slice(vol, plane, index), cmap="gray", vmin=vmin, vmax=vmax,
             aspect=_aspect(plane, spacing), origin=origin, interpolation="nearest")
    present = []
    if labels is not None:
        present = _draw_labels(a, _slice(labels, plane, index), alpha=alpha, colors=colors,
                               aspect=_aspect(plane, spacing), origin=origin, outline=False)
    a.set_title(f"{plane} {index}")
    a.set_xticks([])
    a.set_yticks([])
    return present


def show_volume(volume, mask=None, *, spacing=None, plane="axial", position=None, interactive=None,
                alpha=0.4, class_names=None, colors=None, ax=None):
    """Browse a 3D volume (and its mask) slice by slice, or show three orthogonal slices.

    Introduced in 01_medical_images.

    Parameters
    ----------
    volume : (D, H, W) or (1, D, H, W) array_like
        The volume, axes ``(z, y, x)``.
    mask : (D, H, W) array_like, optional
        Binary mask or label map drawn over it.
    spacing : sequence of 3 float, optional
        Voxel size ``(sz, sy, sx)``; sets each plane's pixel aspect ratio. Default isotropic.
    plane : {"axial", "coronal", "sagittal"}, default "axial"
        Plane shown first by the interactive viewer (axial cuts z, coronal y, sagittal x).
    position : sequence of 3 int, optional
        Voxel ``(z, y, x)`` where the slices cross; default the centre of the volume.
    interactive : bool, optional
        True: an ipywidgets viewer (plane buttons and a slice slider). False: a static figure of
        the three planes through ``position``. Default: interactive only where widgets can be
        shown (:func:`widgets_supported`: a Jupyter kernel, not CI, an interactive backend).
    alpha : float, default 0.4
        Opacity of the mask.
    class_names : sequence of str or mapping, optional
        Legend names of the mask's classes (see :func:`overlay`).
    colors : mapping, optional
        ``{label: colour}`` overriding :data:`CLASS_COLORS`.
    ax : sequence of 3 matplotlib.axes.Axes, optional
        Axes for the static figure (axial, coronal, sagittal).

    Returns
    -------
    matplotlib.figure.Figure or ipywidgets.VBox
        The static figure, or the viewer widget (its ``figure`` attribute holds the figure).

    Raises
    ------
    ValueError
        If shapes, ``spacing``, ``plane`` or ``position`` are invalid.

    Notes
    -----
    No reorientation is done: the array is shown in index order, with z growing upwards in the
    coronal and sagittal planes. Display aspect is ``spacing[rows] / spacing[cols]`` of the plane,
    so a CT with 5 mm slices and 0.7 mm pixels looks anatomically right. The viewer redraws its
    figure on each change; with ``%matplotlib widget`` (ipympl) the canvas itself is the display.

    Examples
    --------
    >>> import numpy as np
    >>> volume = np.random.default_rng(0).random((10, 32, 24))
    >>> mask = np.zeros(volume.shape, dtype=int); mask[3:7, 8:20, 6:18] = 1
    >>> fig = show_volume(volume, mask, spacing=(5.0, 0.8, 0.8), interactive=False)
    >>> [a.get_title() for a in fig.axes]
    ['axial 5', 'coronal 16', 'sagittal 12']
    >>> fig.axes[1].get_aspect()  # 5 mm slices over 0.8 mm pixels
    6.25
    """
    vol = _to_numpy(volume, "volume")
    if vol.ndim == 4 and vol.shape[0] == 1:
        vol = vol[0]
    if vol.ndim != 3:
        raise ValueError(
            f"volume must be 3D (D, H, W) or (1, D, H, W), got shape {vol.shape}; for a 2D image "
            "use overlay()"
        )
    labels = None if mask is None else _as_mask(mask, "mask", ndim=3)
    if labels is not None and labels.shape != vol.shape:
        raise ValueError(f"mask must have the volume's shape {vol.shape}, got {labels.shape}")
    spacing = _check_spacing(spacing, 3)
    if plane not in _PLANES:
        raise ValueError(f"plane must be one of {list(_PLANES)}, got {plane!r}")
    if position is None:
        position = tuple(n // 2 for n in vol.shape)
    else:
        position = tuple(int(p) for p in position)
        if len(position) != 3 or not all(0 <= p < n for p, n in zip(position, vol.shape)):
            raise ValueError(
                f"position must be a voxel (z, y, x) inside the volume of shape {vol.shape}, "
                f"got {position}"
            )
    alpha = _check_alpha(alpha)
    _check_class_names(class_names)
    vmin, vmax = float(np.min(vol)), float(np.max(vol))
    if interactive is None:
        interactive = widgets_supported()
    if interactive:
        return _volume_viewer(vol, labels, spacing, plane, position, alpha, class_names, colors,
                              vmin, vmax)
    fig, axes = _new_axes(ax, 1, 3, figsize=(11, 4))
    present = set()
    for a, name in zip(axes[0], _PLANES):
        index = position[_PLANES[name][0]]
        present.update(_draw_plane(a, vol, labels, name, index, spacing, alpha, vmin, vmax, colors))
    if labels is not None and (class_names is not None or len(present) > 1):
        _legend(axes[0, 0], sorted(present), class_names, colors, alpha)
    return fig


def _volume_viewer(vol, labels, spacing, plane, position, alpha, class_names, colors, vmin, vmax):
    import ipywidgets as widgets

    ipympl = "ipympl" in matplotlib.get_backend().lower() or "widget" in matplotlib.get_backend().lower()
    if ipympl:
        with plt.ioff():
            fig = plt.figure(figsize=(5, 5))
    else:  # not managed by pyplot, so the inline backend does not show it a second time
        fig = Figure(figsize=(5, 5))
    a = fig.add_subplot()
    buttons = widgets.ToggleButtons(options=list(_PLANES), value=plane, description="plane")
    axis = _PLANES[plane][0]
    slider = widgets.IntSlider(value=position[axis], min=0, max=vol.shape[axis] - 1,
                               description="slice", continuous_update=True)
    out = widgets.Output()

    def render(*_):
        present = _draw_plane(a, vol, labels, buttons.value, slider.value, spacing, alpha, vmin,
                              vmax, colors)
        if labels is not None and (class_names is not None or len(present) > 1):
            _legend(a, present, class_names, colors, alpha)
        if ipympl:
            fig.canvas.draw_idle()
            return
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is not None:  # nothing to display outside a kernel (tests, scripts)
            with out:
                out.clear_output(wait=True)
                display(fig)

    def change_plane(change):
        cut = _PLANES[change["new"]][0]
        slider.unobserve(render, names="value")  # one redraw, after both updates
        slider.max = vol.shape[cut] - 1
        slider.value = position[cut]
        slider.observe(render, names="value")
        render()

    buttons.observe(change_plane, names="value")
    slider.observe(render, names="value")
    render()
    viewer = widgets.VBox([buttons, slider, fig.canvas if ipympl else out])
    viewer.figure = fig
    return viewer


# --------------------------------------------------------------------------------------------
# Interactive explorers with a static fallback
# --------------------------------------------------------------------------------------------

def explore(render, controls, *, static, interactive=None, ncols=None, panel_size=(4.0, 4.0)):
    """An interactive explorer: widgets that redraw ``render``, or a static row of panels.

    Every notebook's widget (a threshold slider, a seed and tolerance for region growing, k for
    clustering) is built with this one function, so each falls back the same way where no widget
    front end exists (CI, a rendered page, a script).

    Parameters
    ----------
    render : callable
        ``render(ax=ax, **values)`` draws one panel on the matplotlib axes ``ax`` for one setting
        of the controls (and may set the panel's title).
    controls : dict of str to ipywidgets.Widget
        The widgets, keyed by the names ``render`` takes.
    static : list of dict
        The settings drawn side by side by the static fallback, e.g. ``[{"t": 0.3}, {"t": 0.5}]``.
        Each must give a value for every control.
    interactive : bool, optional
        Force widgets (True) or the static figure (False); by default :func:`widgets_supported`.
    ncols : int, optional
        Panels per row in the static figure (default: all in one row).
    panel_size : (float, float)
        Size of one panel in inches.

    Returns
    -------
    ipywidgets.VBox or matplotlib.figure.Figure
        The widget box (display it as a cell's last expression), or the static figure.

    Examples
    --------
    >>> import ipywidgets as widgets
    >>> image = np.linspace(0, 1, 64).reshape(8, 8)
    >>> def render(ax, t):
    ...     ax.imshow(image > t, cmap="gray"); ax.set_title(f"t = {t}")
    >>> fig = explore(render, {"t": widgets.FloatSlider(0.5, min=0, max=1)},
    ...               static=[{"t": 0.25}, {"t": 0.75}], interactive=False)
    >>> len(fig.axes)
    2

    Introduced in 02_thresholding.
    """
    if not callable(render):
        raise TypeError(f"render must be a callable render(ax=..., **values), got {type(render).__name__}")
    if not isinstance(controls, dict) or not controls:
        raise ValueError("controls must be a non-empty dict of name -> ipywidgets widget")
    if not static:
        raise ValueError("static must list at least one setting of the controls, e.g. [{'t': 0.5}]")
    for i, values in enumerate(static):
        missing = set(controls) - set(values)
        if missing:
            raise ValueError(f"static[{i}] gives no value for {sorted(missing)}; every setting needs "
                             f"a value for each control {sorted(controls)}")
    if interactive is None:
        interactive = widgets_supported()
    if interactive:
        import ipywidgets as widgets
        from IPython.display import display

        out = widgets.Output()

        def redraw(**values):
            with out:
                out.clear_output(wait=True)
                fig, ax = plt.subplots(figsize=panel_size)
                render(ax=ax, **values)
                display(fig)
                plt.close(fig)

        widgets.interactive_output(redraw, controls)
        return widgets.VBox([*controls.values(), out])
    ncols = ncols or len(static)
    nrows = -(-len(static) // ncols)
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, values in zip(axes, static):
        render(ax=ax, **values)
    for ax in axes[len(static):]:
        ax.set_visible(False)
    return fig
