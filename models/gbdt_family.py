"""The feature-GBDT "backbone": LightGBM on flat feature views (features/views/bands.py).

It is a name in the backbone registry so that a recipe names it like any other model, but it is no
torch module: the CV driver trains it with oof.gbdt (kind "gbdt") instead of the training loop.
"""

from __future__ import annotations

from core.errors import UserFacingError
from models.backbones import register_backbone
from models.config import ModelConfig

GBDT_BACKBONES = ("lgbm",)


@register_backbone("lgbm", kind="gbdt", names=GBDT_BACKBONES)
def build_lgbm(name: str, in_chans: int, cfg: ModelConfig):
    raise UserFacingError(f"backbone {name} is a LightGBM member: `make oof` trains it with oof.gbdt, it is not "
                          f"built as a torch module")
