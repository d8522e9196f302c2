"""Tests for medseg_course.train: fit learns a toy problem, is deterministic, stops early,
checkpoints round-trip with weights_only=True, evaluate's Dice, and predict (whole image,
sliding window in 2D and 3D)."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pytest
import torch
import torch.nn as nn

from medseg_course.data.degrade import Degradation
from medseg_course.data.loaders import ImageDataset, PatchDataset, make_loader
from medseg_course.data.synthetic import make_dataset
from medseg_course.losses import CrossEntropyLoss, DiceCELoss
from medseg_course.models import FCN, ConvBlock, PatchCNN
from medseg_course.runtime import seed_everything
from medseg_course.train import (
    History,
    TrainConfig,
    amp_dtype_for,
    evaluate,
    fit,
    load_checkpoint,
    predict,
    save_checkpoint,
    train_one_epoch,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and lose a lot to spinning on a busy shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy():
    """Noisy synthetic nuclei: 8 training and 4 validation images of 64 x 64."""
    kw = dict(shape=(64, 64), n_objects=6, radius=5.0, degradation=Degradation(noise=0.1))
    return make_dataset(8, seed=0, **kw), make_dataset(4, seed=1, **kw)


def _loaders(toy, seed=0):
    train, val = toy
    return (make_loader(ImageDataset(train, augment=True), batch_size=2, shuffle=True, seed=seed),
            make_loader(ImageDataset(val), batch_size=4))


def _tiny_fcn(seed=0, **kw):
    seed_everything(seed)
    return FCN(1, 2, "8s", base_channels=kw.pop("base_channels", 4), **kw)


# --------------------------------------------------------------------------------------------
# config and history
# --------------------------------------------------------------------------------------------


def test_config_is_frozen_validated_and_round_trips():
    config = TrainConfig(epochs=3, lr=0.01, patience=2, monitor="val_loss")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 5
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.mode == "min" and TrainConfig().mode == "max"
    for kwargs, message in [(dict(epochs=0), "epochs must be a positive int"),
                            (dict(lr=-1.0), "lr must be a finite number"),
                            (dict(optimizer="lion"), "optimizer must be one of"),
                            (dict(patience=0), "patience must be a positive int or None"),
                            (dict(grad_clip=0), "grad_clip must be a positive number")]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**kwargs)
    with pytest.raises(ValueError, match="unknown TrainConfig settings"):
        TrainConfig.from_dict({"epochs": 2, "learning_rate": 0.1})


def test_history_fills_gaps_and_plots():
    from medseg_course.viz import plot_history

    h = History(monitor="val_loss")
    h.append({"epoch": 1, "train_loss": 1.0}, lr=0.1, seconds=1.0)
    h.append({"epoch": 2, "train_loss": 0.5, "val_loss": 0.7}, lr=0.1, seconds=1.0)
    h.append({"epoch": 3, "train_loss": 0.4, "val_loss": 0.9, "val_dice": 0.5})
    assert math.isnan(h["val_loss"][0]) and h["val_dice"][:2] == [pytest.approx(math.nan, nan_ok=True)] * 2
    assert h.best_epoch == 2 and h.best == 0.7
    assert History.from_dict(h.to_dict()) == h
    fig = plot_history(h)
    assert [a.get_ylabel() for a in fig.axes] == ["loss", "metric"]


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def test_fit_learns_the_toy_problem(toy):
    model = _tiny_fcn(base_channels=8)
    train_loader, val_loader = _loaders(toy)
    history = fit(model, train_loader, val_loader, CrossEntropyLoss(),
                  TrainConfig(epochs=14, lr=1e-2), device="cpu", progress=False)
    assert history["epoch"] == list(range(1, 15))
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    assert max(history["val_dice"]) > 0.7
    assert len(history.lr) == len(history.seconds) == 14
    # restore_best: the model holds the best epoch's weights
    ev = evaluate(model, val_loader, CrossEntropyLoss())
    assert ev.mean_dice == pytest.approx(max(history["val_dice"]))


def test_fit_is_deterministic_on_cpu(toy):
    def run():
        model = _tiny_fcn()
        train_loader, val_loader = _loaders(toy)
        return fit(model, train_loader, val_loader, DiceCELoss(), TrainConfig(epochs=3, lr=1e-2, seed=7),
                   device="cpu", progress=False), model

    (h1, m1), (h2, m2) = run(), run()
    assert {k: h1[k] for k in h1} == {k: h2[k] for k in h2}
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_early_stopping_triggers_and_restores_the_best(toy, tmp_path):
    model = _tiny_fcn()
    train_loader, val_loader = _loaders(toy)
    config = TrainConfig(epochs=20, lr=1e-2, patience=2, monitor="val_loss", min_delta=1e9)
    path = tmp_path / "run" / "best.pt"
    history = fit(model, train_loader, val_loader, CrossEntropyLoss(), config, device="cpu",
                  progress=False, checkpoint_path=path)
    assert history["epoch"] == [1, 2, 3] and history.stopped_early  # no change is big enough
    ckpt = load_checkpoint(path)
    assert ckpt.epoch == 1 and ckpt.history["epoch"] == [1, 2, 3] and ckpt.config == config
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ckpt.model.state_dict().values()))
    assert sorted(os.listdir(path.parent)) == ["best.pt"]  # no temporary file left behind


def test_fit_without_validation_and_with_weight_maps(toy):
    train, _ = toy
    weights = [1.0 + s.mask.astype(np.float32) for s in train]
    ds = PatchDataset(train, 32, weight_maps=weights)
    model = _tiny_fcn()
    history = fit(model, make_loader(ds, batch_size=4, shuffle=True), None, CrossEntropyLoss(),
                  TrainConfig(epochs=2), device="cpu", progress=False)
    assert set(history) == {"epoch", "train_loss"} and history.monitor == "train_loss"
    with pytest.raises(ValueError, match="config.monitor must be"):
        fit(model, make_loader(ds, batch_size=4), make_loader(ds, batch_size=4), CrossEntropyLoss(),
            TrainConfig(monitor="dice"), device="cpu", progress=False)
    with pytest.raises(ValueError, match="needs a val_loader"):
        fit(model, make_loader(ds, batch_size=4), None, CrossEntropyLoss(), TrainConfig(patience=2),
            device="cpu", progress=False)


def test_fit_trains_a_patch_classifier():
    seed_everything(0)
    model = PatchCNN(patch_size=13, channels=(4, 8), hidden=8)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (64,), generator=g)
    patches = torch.randn(64, 1, 13, 13, generator=g) * 0.3 + labels.view(-1, 1, 1, 1).float()
    data = list(zip(patches.split(16), labels.split(16)))
    history = fit(model, data, data, CrossEntropyLoss(), TrainConfig(epochs=4, lr=1e-2), device="cpu",
                  progress=False)
    assert history["val_dice"][-1] > 0.9


def test_train_one_epoch_reports_non_finite_losses():
    model = nn.Conv2d(1, 2, 1)
    batch = (torch.full((1, 1, 4, 4), float("nan")), torch.zeros(1, 4, 4, dtype=torch.long))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train_one_epoch(model, [batch], CrossEntropyLoss(), opt)


def test_amp_is_off_on_cpu():
    assert amp_dtype_for("cpu") is None and amp_dtype_for("cpu", enabled=False) is None


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


class _Fixed(nn.Module):
    """A 'model' that returns given logits, whatever the input."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x):
        return self.logits


def test_evaluate_global_dice_by_hand_and_mode_restored():
    # 3 classes on 1 x 6 pixels; prediction = argmax of one-hot logits
    pred = torch.tensor([0, 1, 1, 2, 2, 0])
    target = torch.tensor([[[0, 1, 2, 2, 2, 1]]])
    model = _Fixed(nn.functional.one_hot(pred, 3).T.reshape(1, 3, 1, 6).float()).train()
    ev = evaluate(model, [(torch.zeros(1, 1, 1, 6), target)], CrossEntropyLoss())
    # class 0: tp 1, fp 1, fn 0 -> 2/3; class 1: tp 1, fp 1, fn 1 -> 1/2; class 2: tp 2, fp 0, fn 1 -> 4/5
    np.testing.assert_allclose(ev.dice, [2 / 3, 1 / 2, 4 / 5])
    assert ev.mean_dice == pytest.approx((1 / 2 + 4 / 5) / 2)
    assert model.training  # restored
    # pixels labelled -1 are left out: only the first three pixels count
    sparse = target.clone(); sparse[..., 3:] = -1
    ev = evaluate(model, [(torch.zeros(1, 1, 1, 6), sparse)], ignore_index=-1)
    np.testing.assert_allclose(ev.dice, [1.0, 2 / 3, 0.0])
    assert math.isnan(ev.loss)


def test_evaluate_binary_and_patch_logits():
    binary = _Fixed(torch.tensor([[[[3.0, -1.0, 2.0, -2.0]]]]))  # predicts 1, 0, 1, 0
    ev = evaluate(binary, [(torch.zeros(1, 1, 1, 4), torch.tensor([[[1, 1, 0, 0]]]))])
    assert ev.dice.shape == (1,) and ev.mean_dice == pytest.approx(0.5)
    patches = _Fixed(torch.tensor([[2.0, 0.0], [0.0, 1.0], [0.0, 3.0]]))  # (B, K): predicts 0, 1, 1
    ev = evaluate(patches, [(torch.zeros(3, 1, 5, 5), torch.tensor([0, 1, 0]))])
    np.testing.assert_allclose(ev.dice, [2 / 3, 2 / 3])


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model = _tiny_fcn()
    model(torch.randn(2, 1, 32, 32))  # change the batch-norm statistics
    config = TrainConfig(epochs=2, lr=3e-3)
    history = History({"epoch": [1, 2], "train_loss": [1.0, 0.5]}, lr=[3e-3, 3e-3], stopped_early=True)
    path = save_checkpoint(tmp_path / "fcn.pt", model, config, history, epoch=2, extra={"class_names": ("bg", "nucleus")})
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["model_class"] == "medseg_course.models.fcn.FCN" and raw["train_config"]["lr"] == 3e-3
    ckpt = load_checkpoint(path, map_location="cpu")
    assert isinstance(ckpt.model, FCN) and not ckpt.model.training
    assert ckpt.config == config and ckpt.history == history and ckpt.history.stopped_early
    assert ckpt.epoch == 2 and ckpt.extra == {"class_names": ("bg", "nucleus")}
    x = torch.randn(1, 1, 40, 36)
    torch.testing.assert_close(ckpt.model(x), model.eval()(x))


def test_checkpoint_refuses_what_it_cannot_rebuild(tmp_path):
    with pytest.raises(TypeError, match="init_kwargs"):
        save_checkpoint(tmp_path / "a.pt", nn.Conv2d(1, 1, 1))

    class Mine(nn.Module):
        def __init__(self, width=2):
            super().__init__()
            self.init_kwargs = dict(width=width)
            self.conv = nn.Conv2d(1, width, 1)

    path = save_checkpoint(tmp_path / "mine.pt", Mine(3))
    with pytest.raises(ValueError, match="model_class=MyModel"):
        load_checkpoint(path)
    assert load_checkpoint(path, model_class=Mine).model.conv.out_channels == 3
    with pytest.raises(TypeError, match="checkpoints store only"):
        save_checkpoint(tmp_path / "b.pt", Mine(), extra={"f": object()})
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------


def _conv_net(spatial_dims, in_ch=1, out_ch=3, layers=2):
    """Stride-1 convolutions with zero padding: receptive-field radius ``layers``."""
    seed_everything(0)
    blocks = [ConvBlock(spatial_dims, in_ch if i == 0 else 4, 4, norm=None) for i in range(layers)]
    conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
    return nn.Sequential(*blocks, conv(4, out_ch, 1))


@pytest.mark.parametrize("blend", ["gaussian", "constant"])
def test_sliding_window_equals_whole_image_for_a_pointwise_model(blend):
    seed_everything(0)
    model = nn.Sequential(nn.Conv2d(2, 8, 1), nn.ReLU(), nn.Conv2d(8, 3, 1))
    image = np.random.default_rng(0).random((2, 45, 70), dtype=np.float32)
    whole = predict(model, image, device="cpu")
    tiled = predict(model, image, device="cpu", patch_size=(16, 24), overlap=0.3, blend=blend)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    np.testing.assert_allclose(whole.sum(0), 1.0, atol=1e-5)  # softmax probabilities


@pytest.mark.parametrize("spatial_dims, shape, patch", [
    (2, (1, 37, 52), (16, 20)),
    (3, (1, 13, 18, 21), (10, 10, 12)),
])
def test_sliding_window_with_margin_equals_whole_image(spatial_dims, shape, patch):
    model = _conv_net(spatial_dims)
    image = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    whole = predict(model, image, device="cpu", output="logits")
    tiled = predict(model, image, device="cpu", output="logits", patch_size=patch, margin=2, overlap=0.25)
    assert whole.shape == tiled.shape == (3, *shape[1:])
    np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # without the margin the window borders differ, but the centres still agree
    rough = predict(model, image, device="cpu", output="logits", patch_size=patch, overlap=0.25)
    assert np.abs(rough - whole).max() > 1e-4


def test_predict_small_images_labels_and_modes():
    model = _conv_net(2, out_ch=1).train()
    image = torch.rand(1, 5, 7)
    probs = predict(model, image, device="cpu", patch_size=16)  # smaller than one window
    assert probs.shape == (1, 5, 7) and ((probs > 0) & (probs < 1)).all()
    labels = predict(model, image, device="cpu", output="labels", threshold=0.3)
    assert labels.dtype == np.int64 and labels.shape == (5, 7)
    np.testing.assert_array_equal(labels, (probs[0] > 0.3).astype(np.int64))
    assert model.training  # restored
    multi = predict(_conv_net(2), image, device="cpu", output="labels")
    assert set(np.unique(multi)) <= {0, 1, 2}


def test_predict_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"add a channel axis with image\[None\]"):
        predict(nn.Conv2d(1, 1, 1), np.zeros((8, 8), np.float32), device="cpu")
    with pytest.raises(ValueError, match="to_fcn"):
        predict(PatchCNN(patch_size=13, channels=(2, 2)), np.zeros((1, 13, 13), np.float32), device="cpu")
    with pytest.raises(ValueError, match="overlap must be a fraction"):
        predict(nn.Conv2d(1, 1, 1), np.zeros((1, 8, 8), np.float32), device="cpu", overlap=1.0)
    with pytest.raises(ValueError, match="twice the margin"):
        predict(nn.Conv2d(1, 1, 1), np.zeros((1, 8, 8), np.float32), device="cpu", patch_size=4, margin=2)


def test_predict_dense_patch_cnn_equals_patchwise():
    from medseg_course.models import classify_every_pixel

    seed_everything(0)
    model = PatchCNN(patch_size=13, channels=(4, 4), hidden=8).eval()
    image = torch.rand(1, 12, 15)
    probs = predict(model.to_fcn(), image, device="cpu")
    ref = torch.softmax(classify_every_pixel(model, image[None]), dim=1)[0].numpy()
    np.testing.assert_allclose(probs, ref, atol=1e-5)
