"""Any timm architecture as a 2D backbone: forward(x (B, C, H, W)) → stage maps [(B, C_i, H_i, W_i)].

`create_timm_backbone("efficientnet_b0", in_chans=8)` builds timm's feature extractor
(`features_only=True`), so its stage maps and `out_channels` come from timm's `feature_info`; models
timm has no feature extractor for fall back to `forward_features` (a map, or transformer tokens laid
back on their patch grid). Pretrained weights are a LOCAL file only, loaded by timm's own loader
(`pretrained_cfg_overlay=dict(file=...)`), which also adapts the first conv to `in_chans`; nothing is
downloaded. The load is checked: a weight the backbone uses but the file lacks is an error, not a
silent random init.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from core.errors import UserFacingError
from models.backbones import register_backbone
from models.config import ModelConfig


class TimmBackbone(nn.Module):
    """A timm feature extractor returning NCHW stage maps, with `out_channels` (one per map)."""

    def __init__(self, body: nn.Module, out_channels: Sequence[int], name: str, nhwc: bool = False):
        super().__init__()
        self.body = body
        self.out_channels = list(out_channels)
        self.name = name
        self.nhwc = nhwc  # timm returns some models' maps channels-last (swin, …): permuted, never viewed

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps = self.body(x)
        maps = [maps] if isinstance(maps, torch.Tensor) else list(maps)
        return [m.permute(0, 3, 1, 2) for m in maps] if self.nhwc else maps

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        fn = getattr(self.body, "set_grad_checkpointing", None)
        if fn is not None:
            fn(enable)


class ForwardFeatures(nn.Module):
    """The last feature map of a model that timm cannot wrap with `features_only`."""

    def __init__(self, model: nn.Module, tokens: bool):
        super().__init__()
        self.model = model
        self.tokens = tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model.forward_features(x)
        if not self.tokens:
            return out
        prefix = getattr(self.model, "num_prefix_tokens", 0)
        h, w = token_grid(self.model, x.shape[-2:])
        return out[:, prefix:].transpose(1, 2).reshape(out.shape[0], out.shape[-1], h, w)


def token_grid(model: nn.Module, size: Sequence[int]) -> tuple[int, int]:
    patch = getattr(getattr(model, "patch_embed", None), "patch_size", None)
    if patch is None:
        raise UserFacingError(f"timm model {type(model).__name__} returns tokens without a patch grid, so it "
                              f"cannot provide 2D stage maps; choose a convolutional or hierarchical model")
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    return size[0] // ph, size[1] // pw


def create_timm_backbone(
    name: str,
    in_chans: int,
    pretrained: str | Path | None = "",
    drop_path_rate: float = 0.0,
    out_indices: Sequence[int] | None = None,
    **timm_kwargs,
) -> TimmBackbone:
    """timm's `name` as a backbone for `in_chans`-channel images; `pretrained` is a local checkpoint path.

    `out_indices` picks the stages (timm's numbering; None: all of them). Extra keyword arguments go to
    `timm.create_model` (e.g. `img_size=` for ViTs).
    """
    import timm

    check_name(name)
    path = Path(pretrained) if pretrained else None
    if path is not None and not path.is_file():
        raise UserFacingError(f"{path}: pretrained checkpoint file not found; pass the path of a local timm "
                              f".pth/.bin/.safetensors file, or leave pretrained empty for random init")
    kwargs = dict(in_chans=in_chans, **timm_kwargs)
    if drop_path_rate:
        kwargs["drop_path_rate"] = drop_path_rate
    if path is not None:
        # Only the file: `custom_load` would hand a .pth to a model-specific (e.g. .npz) reader.
        kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(path), custom_load=False))
    feature_kwargs = {} if out_indices is None else {"out_indices": tuple(out_indices)}

    with recorded_loads(name) as loads:
        try:
            body = timm.create_model(name, features_only=True, **feature_kwargs, **kwargs)
            backbone = TimmBackbone(body, body.feature_info.channels(), name, nhwc=is_nhwc(body))
        except _LoadFailed:
            raise
        except (RuntimeError, AttributeError, NotImplementedError, AssertionError) as err:
            if path is not None and loads:  # the file loaded, so the failure is the feature wrapper's
                raise
            if out_indices is not None:
                raise UserFacingError(f"timm model {name!r} has no feature extractor ({one_line(err)}), so "
                                      f"out_indices cannot pick its stages; leave out_indices unset") from err
            loads.clear()
            backbone = forward_features_backbone(timm, name, kwargs)
        except TypeError as err:  # an argument this architecture does not take (drop_path_rate, …)
            raise UserFacingError(f"timm model {name!r}: {one_line(err)}") from err
    if path is not None:
        check_loaded(backbone, loads, path, name)
    return backbone


def check_name(name: str) -> None:
    import timm

    if ":" in name:  # hf-hub:… / local-dir:… names fetch their config; weights come from a file here
        raise UserFacingError(f"backbone {name!r}: use a timm architecture name (e.g. efficientnet_b0) and pass "
                              f"the weights as a local file with pretrained=PATH")
    arch = name.split(".", 1)[0]  # "convnext_nano.in12k_ft_in1k" names the architecture convnext_nano
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.75)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UserFacingError(f"unknown timm model {name!r}{hint}; timm.list_models('*pattern*') lists them")


def is_nhwc(body: nn.Module) -> bool:
    fmt = getattr(body, "output_fmt", None)
    return fmt is not None and str(getattr(fmt, "value", fmt)).upper() == "NHWC"


def forward_features_backbone(timm, name: str, kwargs: dict) -> TimmBackbone:
    """A one-map backbone from `forward_features`, for models without timm feature support."""
    model = timm.create_model(name, num_classes=0, **kwargs)
    _, h, w = model.pretrained_cfg.get("input_size", (3, 224, 224))
    if "img_size" in kwargs:  # the probe input must match a fixed-size model
        size = kwargs["img_size"]
        h, w = (size, size) if isinstance(size, int) else size
    with torch.no_grad():
        was_training = model.training
        out = model.eval().forward_features(torch.zeros(1, kwargs["in_chans"], h, w))
        model.train(was_training)
    if isinstance(out, torch.Tensor) and out.ndim == 4:
        nhwc = str(getattr(model, "output_fmt", "NCHW")).upper().endswith("NHWC")
        channels = out.shape[-1] if nhwc else out.shape[1]
        return TimmBackbone(ForwardFeatures(model, tokens=False), [channels], name, nhwc=nhwc)
    if isinstance(out, torch.Tensor) and out.ndim == 3:
        token_grid(model, (h, w))  # raises when the tokens have no grid
        return TimmBackbone(ForwardFeatures(model, tokens=True), [out.shape[-1]], name)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    raise UserFacingError(f"timm model {name!r} has no feature extractor and its forward_features gives {shape}, "
                          f"not 2D maps; choose a convolutional or hierarchical model")


class _LoadFailed(UserFacingError):
    pass


@contextlib.contextmanager
def recorded_loads(name: str) -> Iterator[list[dict[str, torch.Tensor]]]:
    """Record, for each timm pretrained load, the tensors the checkpoint left missing.

    timm loads non-strictly when it builds a feature extractor (it drops the classifier), so a file of
    the wrong architecture would otherwise load nothing and say nothing. The missing tensors are kept
    by identity: the caller checks which of them the final (wrapped) backbone still uses.
    """
    from timm.models import _builder

    original = _builder.load_pretrained
    loads: list[dict[str, torch.Tensor]] = []

    def load_pretrained(model: nn.Module, *args, **kwargs):
        tensors = model.state_dict(keep_vars=True)
        load_state_dict = model.load_state_dict

        def recording(state_dict, strict=True, **kw):
            result = load_state_dict(state_dict, strict=strict, **kw)
            loads.append({k: tensors[k] for k in result.missing_keys if k in tensors})
            return result

        model.load_state_dict = recording
        logger = logging.getLogger(_builder.__name__)
        level = logger.level
        logger.setLevel(logging.ERROR)  # its "unexpected keys" warning is the dropped classifier; we check
        try:
            original(model, *args, **kwargs)
        except (RuntimeError, KeyError, ValueError, AssertionError, OSError) as err:
            file = (kwargs.get("pretrained_cfg") or {}).get("file", "the checkpoint")
            raise _LoadFailed(f"{file}: does not fit timm model {name!r} ({one_line(err)}); pass a state dict "
                              f"saved from timm.create_model({name!r})") from err
        finally:
            del model.load_state_dict
            logger.setLevel(level)

    _builder.load_pretrained = load_pretrained
    try:
        yield loads
    finally:
        _builder.load_pretrained = original


def check_loaded(backbone: nn.Module, loads: list[dict[str, torch.Tensor]], path: Path, name: str) -> None:
    if not loads:
        raise UserFacingError(f"{path}: timm did not report loading it into {name!r} (a model with its own weight "
                              f"format, or a timm whose loader this module does not know); use another model")
    used = {id(t) for t in backbone.state_dict(keep_vars=True).values()}
    missing = [k for k, t in loads[-1].items() if id(t) in used]
    if missing:
        raise UserFacingError(
            f"{path}: does not fit timm model {name!r}: {len(missing)} of the backbone's weights are not in the "
            f"file (e.g. {', '.join(missing[:3])}); pass a state dict saved from timm.create_model({name!r})"
        )


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:300]


def _timm_names() -> list[str]:
    import timm

    return timm.list_models()


# Asked last (catch_all): any name the project's own families do not claim goes to timm, whose
# check_name gives the close matches of an unknown one.
@register_backbone("timm", kind="2d", names=_timm_names, owns=lambda name: True, catch_all=True)
def build_timm(name: str, in_chans: int, cfg: ModelConfig) -> TimmBackbone:
    return create_timm_backbone(name, in_chans, pretrained=cfg.pretrained, drop_path_rate=cfg.drop_path_rate)
