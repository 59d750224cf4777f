"""A recipe: everything that defines one model run, as typed dataclasses overridable by `key=value`."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from features.errors import UserFacingError
from oof.augment import AugmentConfig
from oof.train_loop import TrainConfig


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "mit_b0"             # a name from models.mit or models.wave1d
    views: tuple[str, ...] = ("eeg_spec",)  # cached views (features.views), concatenated on channels
    image_layout: str = "tile"           # tile: chains tiled into one image; stack: chains as channels
    image_size: int = 512                # side of the square image fed to 2D backbones
    pretrained: str = ""                 # local checkpoint file; nothing is ever downloaded
    drop_path_rate: float = 0.1
    head_pool: str = "last_avg"
    dropout: float = 0.2


@dataclass(frozen=True)
class DataConfig:
    n_folds: int = 5
    high_vote_min: int = 10              # stage 2 trains on rows with at least this many voters
    vote_weighting: str = "none"         # loss weight per row: none | sqrt | linear (in n_votes, capped at 20)
    tta_swap: bool = True                # test-time augmentation: mean with the hemisphere-swapped input
    max_train_recordings: int = 0        # 0 = all; a cap for quick experiments


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of everything that changes the trained weights (not the description)."""
        payload = {k: v for k, v in self.to_dict().items() if k != "description"}
        return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


SECTIONS = ("model", "data", "train", "augment")


def field_index(recipe: Recipe) -> dict[str, str]:
    """Flat field name → section, so `epochs=3` needs no section prefix (`train.epochs=3` works too)."""
    index: dict[str, str] = {}
    for section in SECTIONS:
        for f in fields(getattr(recipe, section)):
            index[f.name] = section if f.name not in index else "<ambiguous>"
    return index


def apply_overrides(recipe: Recipe, overrides: list[str] | str) -> Recipe:
    """Return `recipe` with `key=value` overrides applied, each value parsed by the field's type."""
    items = overrides.split() if isinstance(overrides, str) else list(overrides)
    index = field_index(recipe)
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UserFacingError(f"override {item!r} is not key=value; e.g. ARGS=\"epochs=3 image_size=256\"")
        if key == "name":  # a variant (another seed, view, size) gets its own OOF files and can be stacked
            recipe = _renamed(recipe, raw)
            continue
        section, name = key.split(".", 1) if "." in key else (index.get(key), key)
        if section == "<ambiguous>":
            raise UserFacingError(f"override {key!r} exists in several sections; prefix it, e.g. train.{key}=...")
        if section not in SECTIONS or name not in {f.name for f in fields(getattr(recipe, section))}:
            close = difflib.get_close_matches(name, list(index), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `make models` lists the recipes"
            raise UserFacingError(f"recipe {recipe.name} has no setting {key!r}{hint}")
        part = getattr(recipe, section)
        value = parse_value(raw, _field_type(part, name), key)
        recipe = replace(recipe, **{section: replace(part, **{name: value})})
    return recipe


def _renamed(recipe: Recipe, name: str) -> Recipe:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UserFacingError(f"override name={name}: use letters, digits, '_', '.' or '-' (it names files)")
    return replace(recipe, name=name, description=f"{recipe.description} (variant {name} of {recipe.name})")


def _field_type(instance: Any, name: str) -> Any:
    hints = typing.get_type_hints(type(instance))
    return hints[name]


def parse_value(raw: str, kind: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(raw)
            return raw.lower() in {"true", "1", "yes"}
        if origin is tuple:
            return tuple(part for part in raw.split(",") if part)
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            return None if raw.lower() == "none" else parse_value(raw, args[0], key)
        if kind in (int, float, str):
            return kind(raw)
    except ValueError:
        raise UserFacingError(f"override {key}={raw}: expected {getattr(kind, '__name__', kind)}") from None
    if is_dataclass(kind):
        raise UserFacingError(f"override {key}: set its fields instead, e.g. {key}.<field>=...")
    return raw
