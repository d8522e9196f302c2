"""UNet, UNet3D and UNetPlusPlus: shapes, overlap-tile consistency, pruning, checkpoints, errors."""

import pytest
import torch

from medseg_course.models import UNet, UNet3D, UNetPlusPlus, mirror_pad, valid_output_size
from medseg_course.train import load_checkpoint, save_checkpoint


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("size", [(17, 23), (32, 32), (61, 40)])
def test_unet_returns_logits_of_the_input_size(padding, size):
    model = UNet(1, 3, features=(4, 8, 16), padding=padding).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, *size))
    assert out.shape == (2, 3, *size)


def test_valid_output_size_matches_the_network_and_the_paper():
    assert valid_output_size(572, 4) == 388
    model = UNet(1, 1, features=(2, 2, 2), padding="valid", norm=None)
    n = model.valid_input_size(30)
    # run the unpadded network by hand on exactly that size: encoder + decoder without the tiling
    x = torch.randn(1, 1, n, n)
    skips = [model.encoder0(x)]
    for down in model.downs:
        skips.append(down(skips[-1]))
    y = skips.pop()
    for up in reversed(model.ups):
        y = up(y, skips.pop())
    assert y.shape[-1] == valid_output_size(n, 2) >= 30
    assert valid_output_size(n - 1, 2) is None or valid_output_size(n - 1, 2) < 30


def test_overlap_tile_gives_the_same_logits_for_a_tile_as_for_the_whole_image():
    torch.manual_seed(0)
    model = UNet(1, 2, features=(4, 8, 16), padding="valid").eval()
    image = torch.randn(1, 1, 96, 96)
    with torch.no_grad():
        whole = model(image)
        tile = model(image[..., :64, :64])
    context = (model.valid_input_size(64) - valid_output_size(model.valid_input_size(64), 2)) // 2
    inner = 64 - context  # pixels whose receptive field lies inside the tile (or the shared mirrored border)
    assert torch.allclose(whole[..., :inner, :inner], tile[..., :inner, :inner], atol=1e-5)
    assert not torch.allclose(whole[..., :64, :64], tile)  # near the tile's cut the context differs


def test_mirror_pad_reflects_and_repeats_for_long_pads():
    x = torch.arange(3.0).view(1, 1, 1, 3)
    assert mirror_pad(x, [(0, 0), (1, 1)]).flatten().tolist() == [1, 0, 1, 2, 1]
    assert mirror_pad(x, [(0, 0), (5, 0)]).shape[-1] == 8
    with pytest.raises(ValueError, match="one \\(before, after\\) pair per spatial axis"):
        mirror_pad(x, [(1, 1)])


def test_unet3d_is_the_unet_with_three_spatial_dims():
    torch.manual_seed(1)
    a = UNet3D(1, 3, features=(4, 8))
    torch.manual_seed(1)
    b = UNet(1, 3, spatial_dims=3, features=(4, 8), norm="instance", act="leakyrelu")
    assert a.state_dict().keys() == b.state_dict().keys()
    x = torch.randn(1, 1, 9, 14, 11)
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b.eval()(x))
    assert a(x).shape == (1, 3, 9, 14, 11)
    assert "spatial_dims" not in a.init_kwargs


@pytest.mark.parametrize("model", [UNet(1, 2, features=(4, 8, 16), padding="valid"),
                                   UNet3D(2, 3, features=(4, 8)),
                                   UNetPlusPlus(1, 2, features=(2, 4, 4, 8, 8), deep_supervision=True)])
def test_models_rebuild_from_their_checkpoint(model, tmp_path):
    path = save_checkpoint(tmp_path / "model.pt", model)
    loaded = load_checkpoint(path).model
    assert type(loaded) is type(model) and loaded.init_kwargs == model.init_kwargs
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_unetpp_deep_supervision_returns_one_output_per_level_and_pruning_computes_the_subnetwork():
    torch.manual_seed(0)
    model = UNetPlusPlus(1, 2, features=(4, 4, 8, 8, 16), deep_supervision=True, norm="instance")
    x = torch.randn(2, 1, 37, 45)
    with torch.no_grad():
        levels = model.train()(x)
        assert len(levels) == 4 and all(out.shape == (2, 2, 37, 45) for out in levels)
        model.eval()
        for level in (1, 2, 3, 4):
            assert torch.allclose(model.prune(level)(x), levels[level - 1], atol=1e-6)


def test_unetpp_without_deep_supervision_trains_one_output_and_refuses_pruning():
    model = UNetPlusPlus(1, 2, features=(2, 2, 4, 4, 8))
    out = model.train()(torch.randn(2, 1, 16, 16))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 2, 16, 16)
    with pytest.raises(ValueError, match="deep_supervision=True"):
        model.prune(2)
    with pytest.raises(ValueError, match="level must be 1, 2, 3 or 4"):
        UNetPlusPlus(deep_supervision=True, features=(2, 2, 2, 2, 2)).prune(5)


@pytest.mark.parametrize("make, message", [
    (lambda: UNet(features=(16,)), "at least two"),
    (lambda: UNet(padding="full"), "padding must be one of"),
    (lambda: UNetPlusPlus(features=(8, 16, 32)), "5 levels"),
    (lambda: UNet3D(norm="layer"), "norm must be one of"),
])
def test_bad_arguments_name_the_parameter(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_input_rank_says_which_layout_is_expected():
    with pytest.raises(ValueError, match=r"\(B, C, D, H, W\)"):
        UNet3D(features=(2, 4))(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        UNet(features=(2, 4))(torch.zeros(1, 8, 8))
