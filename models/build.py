"""From a ModelConfig to a torch module: the backbone by name (models.backbones) + the head.

Every family module is imported here so that its `@register_backbone` runs (as timm's models/__init__).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from core.errors import UserFacingError
from models import effnet1d, gbdt_family, mit, specnet1d, timm_family, wave1d  # noqa: F401  (each registers its family)
from models.backbones import find_family

__all__ = ["build_model", "find_family", "input_transform", "is_gbdt_model", "is_image_model", "model_input_channels"]
from models.config import ModelConfig
from models.heads import Classifier, ClassifierHead


def is_image_model(cfg: ModelConfig) -> bool:
    """2D backbones take images assembled from the views; 1D ones take the views as they are."""
    return find_family(cfg.backbone).kind == "2d"


def is_gbdt_model(cfg: ModelConfig) -> bool:
    return find_family(cfg.backbone).kind == "gbdt"


def input_transform(cfg: ModelConfig) -> Callable | None:
    """The on-device step from batched view tensors to the backbone's input (None: used as they are)."""
    if not is_image_model(cfg):
        return None
    from features.images import assemble_image

    layout, size = cfg.image_layout, (cfg.image_size, cfg.image_width or cfg.image_size)
    return lambda x: assemble_image(x, layout=layout, size=size)


def model_input_channels(cfg: ModelConfig, sample) -> int:
    """Channels the backbone sees for a batch `sample` of view tensors."""
    to_input = input_transform(cfg)
    return (to_input(sample) if to_input else sample).shape[1]


def build_model(cfg: ModelConfig, in_chans: int) -> nn.Module:
    """The backbone + classification head, for inputs with `in_chans` channels."""
    family = find_family(cfg.backbone)
    backbone = family.build(cfg.backbone, in_chans, cfg)
    pool = cfg.head_pool if family.kind == "2d" else "last_avg"
    head = ClassifierHead.for_backbone(backbone, pool=pool, dropout=cfg.dropout)
    return Classifier(backbone, head, input_norm=_input_norm(cfg, family.kind, in_chans))


def _input_norm(cfg: ModelConfig, kind: str, in_chans: int) -> nn.Module | None:
    if cfg.input_norm == "none":
        return None
    if kind != "2d":
        raise UserFacingError(f"input_norm={cfg.input_norm} is for 2D backbones; {cfg.backbone} normalises its own "
                              "input (set input_norm=none)")
    return nn.BatchNorm2d(in_chans)
