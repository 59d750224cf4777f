"""A recipe: everything that defines one model run (model, data, training, augmentation), typed and
overridable by `key=value` (core.config); named recipes live in oof.recipes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from core.config import apply_settings, expand_config_files, split_items
from core.errors import UserFacingError
from core.work import checked_name
from models.build import is_gbdt_model
from models.config import ModelConfig
from oof.augment import AugmentConfig
from oof.gbdt import GbdtConfig
from oof.tracking import TRACKING_FIELDS
from oof.train_loop import RESULT_NEUTRAL as TRAIN_NEUTRAL
from oof.train_loop import TrainConfig

__all__ = ["DataConfig", "ModelConfig", "Recipe", "apply_overrides"]


@dataclass(frozen=True)
class DataConfig:
    n_folds: int = 5
    high_vote_min: int = 10              # stage 2 trains on rows with at least this many voters
    vote_weighting: str = "none"         # loss weight per row: none | sqrt | linear (votes/20, capped at 1)
    tta_swap: bool = True                # test-time augmentation: mean with the hemisphere-swapped input
    max_train_recordings: int = 0        # 0 = all; a cap for quick experiments
    windows_per_recording: int = 1       # labelled windows per recording in a training epoch (0: all)


# Fields added after runs were trained without them: at these values (which are how those runs trained) a
# field stays out of the fingerprint, so a WORK trained before it existed resumes as the same run.
LATER_FIELDS: dict[str, dict[str, object]] = {"model": {"input_norm": "none"}, "train": {"precise_bn_batches": 0}}


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    provenance: str = ""  # what it reproduces (a solution, a notebook), one line for `make models`
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    gbdt: GbdtConfig = field(default_factory=GbdtConfig)  # the LightGBM members' settings (backbone lgbm)

    @property
    def is_gbdt(self) -> bool:
        return is_gbdt_model(self.model)

    @property
    def unused_sections(self) -> tuple[str, ...]:
        return ("train", "augment") if self.is_gbdt else ("gbdt",)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """Hash of everything that changes the trained weights: not the description, nor the sections the
        model kind does not use (a neural recipe's gbdt settings, a LightGBM recipe's training loop), nor
        where the training curves go (TRACKING_FIELDS: dropped, not defaulted, so older fingerprints hold)."""
        skip = ("description", "provenance", *self.unused_sections)
        payload = {k: v for k, v in self.to_dict().items() if k not in skip}
        if "train" in payload:
            payload["train"] = {k: v for k, v in payload["train"].items() if k not in TRACKING_FIELDS}
        for section, defaults in LATER_FIELDS.items():
            if section in payload:
                payload[section] = {k: v for k, v in payload[section].items() if k not in defaults or defaults[k] != v}
        return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def result_settings(self, sections: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Every setting that decides a fold's result, flat (`model.dropout`, `augment.swap_p`, ...) and as
        JSON keeps it (lists for tuples): the sections this model kind uses, less RESULT_NEUTRAL."""
        used = sections or tuple(s for s in SECTIONS if s not in self.unused_sections)
        flat = {f"{s}.{k}": list(v) if isinstance(v, tuple) else v
                for s in used for k, v in dataclasses.asdict(getattr(self, s)).items()}
        return {k: v for k, v in flat.items() if k not in RESULT_NEUTRAL}

    def changed_since(self, stored: dict) -> list[str]:
        """The settings in which this recipe differs from a stored one (its `to_dict()`, as a fold's files
        keep it); a field added to the code since then had its default."""
        current = self.result_settings()
        before = recipe_from_dict(stored).result_settings(tuple(s for s in SECTIONS if s not in self.unused_sections))
        return sorted(k for k, v in current.items() if before.get(k) != v)


SECTIONS = ("model", "data", "train", "augment", "gbdt")
# Settings that cannot change a fold's result (ARCHITECTURE.md "Resume"): a killed fold resumes, and a
# finished fold or shard is reused, when the recipe differs from the one it was trained with in these alone.
RESULT_NEUTRAL = frozenset(f"train.{name}" for name in TRAIN_NEUTRAL)


def apply_overrides(recipe: Recipe, overrides: list[str] | str) -> Recipe:
    """Return `recipe` with `key=value` overrides (and `config=FILE` settings) applied."""
    for key, value in expand_config_files(split_items(overrides)):
        if key == "name":  # a variant (another seed, view, size) gets its own OOF files and can be stacked
            recipe = _renamed(recipe, str(value))
        elif key in ("description", "provenance"):
            raise UserFacingError(f"setting {key}: a recipe's {key} is not a setting")
        else:
            recipe = apply_settings(recipe, [(key, value)], what=f"recipe {recipe.name}", idle=recipe.unused_sections)
    return recipe


def _renamed(recipe: Recipe, name: str) -> Recipe:
    checked_name(name, "override name=")
    return replace(recipe, name=name, description=f"{recipe.description} (variant {name} of {recipe.name})")


def recipe_from_dict(stored: dict) -> Recipe:
    """The Recipe dataclass from its `to_dict()` form (JSON turns tuples into lists)."""
    return _build(Recipe, stored)


def _build(cls, values: dict):
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in fields(cls):
        if f.name not in values:
            continue
        kind, value = hints[f.name], values[f.name]
        if is_dataclass(kind):
            value = _build(kind, value)
        elif typing.get_origin(kind) is tuple:
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
