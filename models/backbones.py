"""The backbone registry: a family of backbones registers its builder by decorator, in its own file.

    @register_backbone("mit", kind="2d", names=MIT_VARIANTS)
    def build_mit(name, in_chans, cfg): ...

`kind` says what the family eats and gives: "2d" takes images (B, C, H, W) and returns a list of
stage maps (`out_channels`); "1d" takes (B, C, T) and returns (B, out_features); "gbdt" is no torch
module (LightGBM on flat feature views, trained by oof.gbdt). A family with
`catch_all=True` (timm) is asked last, for any name the others do not own.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from torch import nn

from core.errors import UserFacingError
from models.config import ModelConfig

KINDS = ("2d", "1d", "gbdt")
Builder = Callable[[str, int, ModelConfig], nn.Module]


@dataclass(frozen=True)
class Family:
    name: str
    kind: str                                 # "2d" or "1d"
    names: Callable[[], Iterable[str]]        # the names it lists (`make models --backbones`)
    owns: Callable[[str], bool]
    build: Builder
    catch_all: bool = False


FAMILIES: dict[str, Family] = {}


def register_backbone(family: str, kind: str, names: Iterable[str] | Callable[[], Iterable[str]],
                      owns: Callable[[str], bool] | None = None, catch_all: bool = False):
    """Decorator: `fn(name, in_chans, cfg) -> nn.Module` builds every backbone named by `names`."""
    if kind not in KINDS:
        raise ValueError(f"backbone family {family}: kind must be one of {KINDS}, not {kind!r}")
    listing = names if callable(names) else (lambda fixed=tuple(names): fixed)

    def wrap(fn: Builder) -> Builder:
        if family in FAMILIES:
            raise ValueError(f"backbone family {family!r} registered twice")
        FAMILIES[family] = Family(family, kind, listing, owns or (lambda n: n in set(listing())), fn, catch_all)
        return fn

    return wrap


def find_family(name: str) -> Family:
    ordered = sorted(FAMILIES.values(), key=lambda f: f.catch_all)
    for family in ordered:
        if family.owns(name):
            return family
    known = [n for f in FAMILIES.values() if not f.catch_all for n in f.names()]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
    raise UserFacingError(f"unknown backbone {name!r}{hint}")


def own_variant(name: str, variants: dict, family_words: str):
    """The variant `name` of a family without published weights, or one line listing the family's names."""
    if name not in variants:
        raise UserFacingError(f"unknown backbone {name!r}; the {family_words} are {', '.join(variants)}")
    return variants[name]


def refuse_pretrained(name: str, cfg: ModelConfig, family_words: str) -> None:
    """Families trained from scratch (no published weights) refuse pretrained= in one line."""
    if cfg.pretrained:
        raise UserFacingError(f"backbone {name}: pretrained={cfg.pretrained} is not supported for the "
                              f"{family_words} (no published weights); drop the pretrained= override")
