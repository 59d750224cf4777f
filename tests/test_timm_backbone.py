"""timm backbones: stage maps sized by out_channels, local-file pretrained loading offline, clear errors."""

from __future__ import annotations

import socket

import pytest
import timm
import torch

from core.errors import UserFacingError
from models.heads import ClassifierHead
from models.timm_family import create_timm_backbone, forward_features_backbone


@pytest.fixture
def offline(monkeypatch):
    """No network: any socket connection fails, and the Hugging Face hub is told it is offline."""

    def refuse(*args, **kwargs):
        raise OSError("network blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0"])
def test_stage_maps_match_out_channels(name):
    backbone = create_timm_backbone(name, in_chans=8).eval()
    x = torch.randn(2, 8, 64, 96).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        maps = backbone(x)
    assert [m.shape[1] for m in maps] == backbone.out_channels
    assert all(m.ndim == 4 and m.shape[0] == 2 for m in maps)
    assert maps[-1].shape[-2:] == (2, 3)  # stride 32
    head = ClassifierHead.for_backbone(backbone, pool="all_avgmax")
    assert head(maps).shape == (2, 6)


def test_out_indices_pick_stages():
    backbone = create_timm_backbone("resnet18", in_chans=1, out_indices=(3, 4))
    assert backbone.out_channels == [256, 512]
    assert [m.shape[1] for m in backbone(torch.randn(1, 1, 64, 64))] == [256, 512]


def test_forward_features_fallback_lays_tokens_on_the_patch_grid():
    backbone = forward_features_backbone(timm, "vit_tiny_patch16_224", dict(in_chans=5, img_size=32))
    (grid,) = backbone(torch.randn(2, 5, 32, 32))
    assert grid.shape == (2, backbone.out_channels[0], 2, 2)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_pretrained_local_file_loads_offline_and_adapts_first_conv(tmp_path, offline, suffix):
    torch.manual_seed(0)
    source = timm.create_model("resnet18", in_chans=3)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    path = tmp_path / f"resnet18{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)

    torch.manual_seed(1)  # a different random init: only the file can make the weights equal
    backbone = create_timm_backbone("resnet18", in_chans=8, pretrained=str(path))
    loaded = {k.removeprefix("body."): v for k, v in backbone.state_dict().items()}

    rgb = state["conv1.weight"]
    expected_conv1 = torch.cat([rgb, rgb, rgb], dim=1)[:, :8] * (3 / 8)  # timm: repeat RGB, scale by 3/in_chans
    assert loaded["conv1.weight"].shape == (64, 8, 7, 7)
    torch.testing.assert_close(loaded["conv1.weight"], expected_conv1)
    others = [k for k in loaded if k != "conv1.weight"]
    assert len(others) > 50
    for key in others:
        assert torch.equal(loaded[key], state[key]), key


def test_checkpoint_of_another_architecture_is_one_clear_line(tmp_path, offline):
    path = tmp_path / "r18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), path)
    with pytest.raises(UserFacingError) as err:
        create_timm_backbone("resnet34", in_chans=3, pretrained=path)  # same names, resnet34 has more blocks
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "resnet34" in msg and "layer1.2" in msg


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UserFacingError, match="efficientnet_b0") as err:
        create_timm_backbone("efficientnet_b00", in_chans=3)
    assert "did you mean" in str(err.value)


def test_missing_file_is_one_line(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(UserFacingError) as err:
        create_timm_backbone("resnet18", in_chans=3, pretrained=path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "not found" in msg
