"""Load local MiT (SegFormer encoder) checkpoints: the official mmseg layout or Hugging Face's.

The model's own parameter names are the official ones (`patch_embed1.proj.weight`,
`block1.0.attn.kv.weight`, `norm1.weight`, …), so an official file only needs unwrapping; a
Hugging Face `nvidia/mit-bX` file is renamed and its separate key/value linears are stacked into
the single `kv` linear. Nothing is ever downloaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from core.errors import UserFacingError

WRAPPER_KEYS = ("state_dict", "model")
FIRST_CONV = "patch_embed1.proj.weight"
# Hugging Face block sub-module → official name; the parameter name (weight/bias) follows.
HF_BLOCK_NAMES = {
    "layer_norm_1": "norm1",
    "layer_norm_2": "norm2",
    "attention.self.query": "attn.q",
    "attention.self.key": "attn.k",
    "attention.self.value": "attn.v",
    "attention.self.sr": "attn.sr",
    "attention.self.layer_norm": "attn.norm",
    "attention.output.dense": "attn.proj",
    "mlp.dense1": "mlp.fc1",
    "mlp.dwconv.dwconv": "mlp.dwconv.dwconv",
    "mlp.dense2": "mlp.fc2",
}
HF_PATCH_NAMES = {"proj": "proj", "layer_norm": "norm"}
HF_BLOCK = re.compile(r"block\.(\d+)\.(\d+)\.(.+)\.(weight|bias)")
HF_PATCH = re.compile(r"patch_embeddings\.(\d+)\.(.+)\.(weight|bias)")
HF_STAGE_NORM = re.compile(r"layer_norm\.(\d+)\.(weight|bias)")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped from `state_dict`/`model` containers."""
    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"{path}: checkpoint file not found; pass the path of a local .pth/.bin/.safetensors")
    try:
        obj = read_safetensors(path) if path.suffix == ".safetensors" else read_torch(path)
    except UserFacingError:
        raise
    except Exception as err:  # unpickling/format errors come in many types; all mean "not a tensor file"
        reason = " ".join(str(err).split())[:200]  # the messages span lines; ours must not
        raise UserFacingError(
            f"{path}: cannot be read as a tensor checkpoint ({type(err).__name__}: {reason}); re-save just "
            f"its state dict, e.g. torch.save(checkpoint['state_dict'], path)"
        ) from err
    while isinstance(obj, dict) and any(isinstance(obj.get(k), dict) for k in WRAPPER_KEYS):
        obj = next(obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict))
    if not isinstance(obj, dict):
        raise UserFacingError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def read_torch(path: Path) -> object:
    # weights_only: a checkpoint is data; never run the code a pickle could carry.
    return torch.load(path, map_location="cpu", weights_only=True)


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file as load_safetensors
    except ImportError as err:
        raise UserFacingError(f"{path}: reading .safetensors needs `pip install safetensors`") from err
    return load_safetensors(str(path))


def is_hf_layout(state: dict[str, torch.Tensor]) -> bool:
    return any(".patch_embeddings." in f".{k}" for k in state)


def from_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip DDP/mmseg prefixes; drop classification and decode heads."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if any(k.startswith("backbone.") for k in state):
        # A full segmentor checkpoint: the encoder is under `backbone.`, the rest is decoder.
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    return {k: v for k, v in state.items() if not k.startswith("head.")}


def from_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a Hugging Face Segformer state dict to official names and fuse key/value into kv."""
    out = {}
    for key, value in state.items():
        if not key.startswith(("classifier.", "decode_head.", "segformer.decode_head.")):
            out[hf_to_official_name(key)] = value
    return fuse_key_value(out)


def hf_to_official_name(key: str) -> str:
    """One HF name → official name; a name it does not know is returned unchanged (it will then be
    reported as unexpected)."""
    short = key.removeprefix("segformer.").removeprefix("encoder.")
    if m := HF_BLOCK.fullmatch(short):
        stage, index, module, param = m.groups()
        if module in HF_BLOCK_NAMES:
            return f"block{int(stage) + 1}.{index}.{HF_BLOCK_NAMES[module]}.{param}"
    elif m := HF_PATCH.fullmatch(short):
        stage, module, param = m.groups()
        if module in HF_PATCH_NAMES:
            return f"patch_embed{int(stage) + 1}.{HF_PATCH_NAMES[module]}.{param}"
    elif m := HF_STAGE_NORM.fullmatch(short):
        stage, param = m.groups()
        return f"norm{int(stage) + 1}.{param}"
    return key


def fuse_key_value(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF keeps `key` and `value` linears; the official `kv` linear is the two stacked, key first."""
    out = dict(state)
    for name in [k for k in state if ".attn.k." in k]:
        value_name = name.replace(".attn.k.", ".attn.v.")
        if value_name in out:
            out[name.replace(".attn.k.", ".attn.kv.")] = torch.cat([out.pop(name), out.pop(value_name)])
    return out


def adapt_first_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Spread pretrained RGB filters over `in_chans` inputs: each new channel gets the mean filter,
    scaled so that a constant input still gives the pretrained response (sum over channels kept)."""
    src = weight.shape[1]
    mean = weight.mean(dim=1, keepdim=True)
    return mean.repeat(1, in_chans, 1, 1) * (src / in_chans)


def check_fits(path: Path, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    problems = [f"{label} {_few(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)) if keys]
    if problems:
        name = getattr(model, "variant", type(model).__name__)
        raise UserFacingError(
            f"{path}: checkpoint does not fit {name}: {'; '.join(problems)}; pass a MiT/SegFormer encoder "
            f"checkpoint of the same variant (official mmseg or Hugging Face nvidia/mit-bX layout)"
        )


def _few(keys: list[str], shown: int = 4) -> str:
    more = f", … (+{len(keys) - shown} more)" if len(keys) > shown else ""
    return "[" + ", ".join(keys[:shown]) + more + "]"


def load_mit_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Load a local official or Hugging Face MiT checkpoint into `model` (in place, strict)."""
    path = Path(path)
    raw = read_state_dict(path)
    state = from_hf(raw) if is_hf_layout(raw) else from_official(raw)
    target = model.state_dict().get(FIRST_CONV)
    if target is not None and FIRST_CONV in state and state[FIRST_CONV].shape[1] != target.shape[1]:
        state[FIRST_CONV] = adapt_first_conv(state[FIRST_CONV], target.shape[1])
    check_fits(path, model, state)
    model.load_state_dict(state)
