"""MiT backbones, checkpoint loading (official and Hugging Face layouts) and the classifier head."""

from __future__ import annotations

import copy
import importlib.util

import pytest
import torch

from core.errors import UserFacingError
from models.heads import Classifier, ClassifierHead
from models.mit import MIT_VARIANTS, create_mit
from models.pretrained import read_state_dict

# Encoder sizes from the SegFormer paper (millions of parameters).
PUBLISHED_PARAMS = {"mit_b0": 3.4, "mit_b1": 13.1, "mit_b2": 24.2, "mit_b3": 44.0, "mit_b4": 60.8, "mit_b5": 81.4}
HAS_SAFETENSORS = importlib.util.find_spec("safetensors") is not None

# Parameter names of one block and one stage in the official NVlabs/mmseg release.
OFFICIAL_BLOCK = ["norm1", "attn.q", "attn.kv", "attn.sr", "attn.norm", "attn.proj", "norm2",
                  "mlp.fc1", "mlp.dwconv.dwconv", "mlp.fc2"]
# The same in transformers' SegformerForImageClassification (nvidia/mit-bX).
HF_BLOCK = ["layer_norm_1", "attention.self.query", "attention.self.key", "attention.self.value",
            "attention.self.sr", "attention.self.layer_norm", "attention.output.dense", "layer_norm_2",
            "mlp.dense1", "mlp.dwconv.dwconv", "mlp.dense2"]


@pytest.fixture(scope="module")
def b0() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_mit("mit_b0").eval()


def stage_size(size: int, stage: int) -> int:
    size = (size + 2 * 3 - 7) // 4 + 1  # 7x7 stride-4 patch embedding, padding 3
    for _ in range(stage):
        size = (size + 2 * 1 - 3) // 2 + 1  # 3x3 stride-2, padding 1
    return size


def run(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return model(x)


# --- architecture ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MIT_VARIANTS))
def test_parameter_count_matches_paper(name):
    with torch.device("meta"):  # same parameters, no memory or init time
        model = create_mit(name)
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert count == pytest.approx(PUBLISHED_PARAMS[name], rel=0.03)


@pytest.mark.parametrize("in_chans", [1, 4, 8])
@pytest.mark.parametrize("size", [(67, 45), (20, 20), (128, 250)])
def test_output_shapes_any_size_and_channels(in_chans, size):
    model = create_mit("mit_b0", in_chans=in_chans).eval()
    out = run(model, torch.randn(2, in_chans, *size))
    expected = [(2, c, stage_size(size[0], i), stage_size(size[1], i)) for i, c in enumerate(model.out_channels)]
    assert [tuple(o.shape) for o in out] == expected
    assert all(torch.isfinite(o).all() for o in out)


def test_native_names_are_the_official_layout(b0):
    keys = {k.rsplit(".", 1)[0] for k in b0.state_dict()}
    assert {f"block1.0.{name}" for name in OFFICIAL_BLOCK} <= keys
    assert {"patch_embed1.proj", "patch_embed1.norm", "norm1", "norm4", "patch_embed4.proj"} <= keys


def test_channels_last_equals_contiguous(b0):
    x = torch.randn(2, 3, 70, 90)
    model_cl = copy.deepcopy(b0).to(memory_format=torch.channels_last)
    for a, b in zip(run(b0, x), run(model_cl, x.to(memory_format=torch.channels_last)), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_autocast_bf16_runs_finite(b0):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = b0(torch.randn(2, 3, 64, 96))
    assert all(torch.isfinite(o.float()).all() for o in out)


def test_grad_checkpointing_same_outputs_and_grads():
    torch.manual_seed(0)
    plain = create_mit("mit_b0", in_chans=2).train()
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    x = torch.randn(2, 2, 48, 64)
    losses = [sum(o.square().mean() for o in m(x)) for m in (plain, ckpt)]
    for loss in losses:
        loss.backward()
    torch.testing.assert_close(losses[0], losses[1])
    torch.testing.assert_close(plain.patch_embed1.proj.weight.grad, ckpt.patch_embed1.proj.weight.grad)


def test_drop_path_only_in_training():
    model = create_mit("mit_b0", drop_path_rate=0.5)
    x = torch.randn(4, 3, 32, 32)
    model.train()
    assert not torch.equal(run(model, x)[-1], run(model, x)[-1])
    model.eval()
    assert torch.equal(run(model, x)[-1], run(model, x)[-1])


def test_unknown_name_is_a_user_error():
    with pytest.raises(UserFacingError, match="mit_b9"):
        create_mit("mit_b9")


# --- checkpoints ----------------------------------------------------------------------------------


def to_hf_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official → Hugging Face names, written independently of models/pretrained.py."""
    prefixes, inner = {}, {
        ".attn.q.": ".attention.self.query.", ".attn.sr.": ".attention.self.sr.",
        ".attn.norm.": ".attention.self.layer_norm.", ".attn.proj.": ".attention.output.dense.",
        ".norm1.": ".layer_norm_1.", ".norm2.": ".layer_norm_2.",
        ".mlp.fc1.": ".mlp.dense1.", ".mlp.fc2.": ".mlp.dense2.",
    }
    for i in range(1, 5):
        prefixes[f"patch_embed{i}.proj."] = f"segformer.encoder.patch_embeddings.{i - 1}.proj."
        prefixes[f"patch_embed{i}.norm."] = f"segformer.encoder.patch_embeddings.{i - 1}.layer_norm."
        prefixes[f"block{i}."] = f"segformer.encoder.block.{i - 1}."
        prefixes[f"norm{i}."] = f"segformer.encoder.layer_norm.{i - 1}."
    out = {"classifier.weight": torch.zeros(1000, 256), "classifier.bias": torch.zeros(1000)}
    for key, value in state.items():
        old = next(p for p in prefixes if key.startswith(p))
        new = prefixes[old] + key[len(old):]
        if ".attn.kv." in new:
            key_half, value_half = value.chunk(2, dim=0)
            out[new.replace(".attn.kv.", ".attention.self.key.")] = key_half.clone()
            out[new.replace(".attn.kv.", ".attention.self.value.")] = value_half.clone()
            continue
        for a, b in inner.items():
            new = new.replace(a, b)
        out[new] = value.clone()
    return out


def save(state: dict, path) -> None:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)


def assert_same_outputs(a: torch.nn.Module, b: torch.nn.Module, in_chans: int = 3) -> None:
    x = torch.randn(1, in_chans, 45, 61)
    for out_a, out_b in zip(run(a, x), run(b.eval(), x), strict=True):
        assert torch.equal(out_a, out_b)


@pytest.mark.parametrize("wrap", ["plain", "state_dict+backbone", "model+head"])
def test_official_layout_round_trip(b0, tmp_path, wrap):
    state = b0.state_dict()
    if wrap == "state_dict+backbone":
        wrapped = {f"backbone.{k}": v for k, v in state.items()} | {"decode_head.conv.weight": torch.ones(1)}
        ckpt = {"state_dict": wrapped, "meta": {"epoch": 3}}
    elif wrap == "model+head":
        ckpt = {"model": {**state, "head.weight": torch.zeros(1000, 256), "head.bias": torch.zeros(1000)}}
    else:
        ckpt = state
    path = tmp_path / "mit_b0.pth"
    torch.save(ckpt, path)
    assert_same_outputs(b0, create_mit("mit_b0", pretrained=path))


@pytest.mark.parametrize("suffix", [".bin", pytest.param(".safetensors", marks=pytest.mark.skipif(
    not HAS_SAFETENSORS, reason="safetensors not installed"))])
def test_hf_layout_round_trip(b0, tmp_path, suffix):
    state = to_hf_layout(b0.state_dict())
    assert {f"segformer.encoder.block.0.0.{n}.weight" for n in HF_BLOCK} <= set(state)
    path = tmp_path / f"pytorch_model{suffix}"
    save(state, path)
    assert_same_outputs(b0, create_mit("mit_b0", pretrained=path))


def test_hf_layout_without_segformer_prefix(b0, tmp_path):
    state = {k.removeprefix("segformer."): v for k, v in to_hf_layout(b0.state_dict()).items()}
    path = tmp_path / "encoder.pt"
    torch.save(state, path)
    assert_same_outputs(b0, create_mit("mit_b0", pretrained=path))


def test_missing_key_names_it(b0, tmp_path):
    state = dict(b0.state_dict())
    del state["block1.0.attn.q.weight"]
    path = tmp_path / "missing.pth"
    torch.save(state, path)
    with pytest.raises(UserFacingError, match=r"missing\.pth.*missing keys \[block1\.0\.attn\.q\.weight\]"):
        create_mit("mit_b0", pretrained=path)


def test_extra_key_names_it(b0, tmp_path):
    state = {**b0.state_dict(), "block1.0.attn.extra.weight": torch.zeros(3)}
    path = tmp_path / "extra.pth"
    torch.save(state, path)
    with pytest.raises(UserFacingError, match=r"extra\.pth.*unexpected keys \[block1\.0\.attn\.extra\.weight\]"):
        create_mit("mit_b0", pretrained=path)


def test_other_variant_is_refused(b0, tmp_path):
    path = tmp_path / "b0.pth"
    torch.save(b0.state_dict(), path)
    with pytest.raises(UserFacingError, match="does not fit mit_b1.*wrong shapes") as err:
        create_mit("mit_b1", pretrained=path)
    assert "\n" not in str(err.value)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserFacingError, match="not found"):
        read_state_dict(tmp_path / "nope.pth")


def test_unreadable_file_is_a_one_line_user_error(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint\nat all\n")
    with pytest.raises(UserFacingError, match="notes.pth") as err:
        read_state_dict(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("in_chans", [1, 4])
def test_first_conv_adapted_to_in_chans(b0, tmp_path, in_chans):
    path = tmp_path / "rgb.pth"
    torch.save(b0.state_dict(), path)
    model = create_mit("mit_b0", in_chans=in_chans, pretrained=path).eval()
    rgb = b0.patch_embed1.proj.weight
    expected = rgb.mean(dim=1, keepdim=True).repeat(1, in_chans, 1, 1) * 3 / in_chans
    torch.testing.assert_close(model.patch_embed1.proj.weight, expected)
    # A grey image: every channel identical, so both models must see the same thing.
    grey = torch.randn(1, 1, 40, 52)
    for a, b in zip(run(b0, grey.repeat(1, 3, 1, 1)), run(model, grey.repeat(1, in_chans, 1, 1)), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


# --- head -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["last_avg", "all_avgmax"])
def test_classifier_returns_six_logits(pool):
    backbone = create_mit("mit_b0", in_chans=4)
    model = Classifier(backbone, ClassifierHead.for_backbone(backbone, pool=pool, dropout=0.2)).eval()
    with torch.no_grad():
        logits = model(torch.randn(3, 4, 64, 80))
    assert logits.shape == (3, 6)
    assert model.head.in_features == (256 if pool == "last_avg" else 2 * (32 + 64 + 160 + 256))


def test_head_rejects_unknown_pool():
    with pytest.raises(ValueError, match="pool"):
        ClassifierHead([32, 64], pool="median")

