"""The stacker table: every stacker is one entry (fit, save, load), so a new one is a new entry here
plus its own module; `make stack` fits every entry named by `methods`, the saved stacker
(WORK/stack/stacker.json) names its entry, and `make submission` loads it through the same entry.

- fit(ctx) -> Search: honest OOF candidates and their final fits (stacking.honest)
- model(run) -> Predictor: what predicts new member probabilities (M, T, 6) -> (T, 6)
- save(model, stack_dir) -> dict: JSON-ready fields of stacker.json; side files written beside it are
  listed under "files" (the bundle copies them, the next save removes them)
- load(saved, stack_dir) -> Predictor
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np

from core.artifacts import atomic_path
from core.errors import UserFacingError
from stacking.blend import BlendFit, fit_blend
from stacking.crossfit import StackerRun
from stacking.honest import PolicySearch, Search
from stacking.lgbm import LgbmSearch, default_storage
from stacking.members import MemberSet
from stacking.meta_features import FEATURE_VERSION, meta_features
from stacking.policy import RowPolicy
from stacking.selection import SelectionFit, select_ensemble


class Predictor(Protocol):
    def predict(self, probs: np.ndarray) -> np.ndarray: ...


@dataclass
class StackContext:
    config: Any                  # stacking.config.StackConfig
    members: MemberSet
    policies: list[RowPolicy]
    high: np.ndarray


@dataclass(frozen=True)
class StackerEntry:
    fit: Callable[[StackContext], Search]
    model: Callable[[StackerRun], Predictor]
    save: Callable[[Predictor, Path], dict]
    load: Callable[[dict, Path], Predictor]


# ---- blend and ensemble selection: one final fit each -----------------------------------------
def _fit_blend(ctx: StackContext) -> Search:
    cfg = ctx.config.blend
    fit = lambda p, t, w, seed: fit_blend(p, t, w, replace(cfg, seed=cfg.seed + seed))
    return PolicySearch("blend", ctx.members, ctx.policies, fit, ctx.high, cfg.seed)


def _save_blend(m: BlendFit, stack_dir: Path) -> dict:
    return {"blend": {"weights": m.weights.tolist(), "bias": m.bias.tolist(), "temperature": float(m.temperature),
                      "space": m.space, "fit_kl": float(m.fit_kl)}}


def _load_blend(saved: dict, stack_dir: Path) -> BlendFit:
    b = saved["blend"]
    return BlendFit(np.array(b["weights"]), np.array(b["bias"]), float(b["temperature"]), b["space"],
                    float(b["fit_kl"]))


def _fit_selection(ctx: StackContext) -> Search:
    cfg = ctx.config.selection
    fit = lambda p, t, w, seed: select_ensemble(p, t, w, replace(cfg, seed=cfg.seed + seed))
    return PolicySearch("selection", ctx.members, ctx.policies, fit, ctx.high, cfg.seed)


def _save_selection(m: SelectionFit, stack_dir: Path) -> dict:
    return {"selection": {"counts": m.counts.tolist(), "weights": m.weights.tolist(), "fit_kl": float(m.fit_kl)}}


def _load_selection(saved: dict, stack_dir: Path) -> SelectionFit:
    s = saved["selection"]
    return SelectionFit(np.array(s["counts"], dtype=np.int64), np.array(s["weights"]), float(s["fit_kl"]))


# ---- LightGBM: one booster per outer fold, averaged -----------------------------------------
@dataclass
class LgbmFold:
    """One outer fold's booster and the members whose raw probabilities are its features."""

    raw_members: np.ndarray
    best_iteration: int
    booster: lgb.Booster | None = None
    path: Path | None = None  # read on first use

    def model(self) -> lgb.Booster:
        # Read when the stacker is applied, after the torch models ran: LightGBM's OpenMP threads then
        # start only once torch's are done (a precaution: two OpenMP runtimes in one process may contend).
        if self.booster is None:
            self.booster = lgb.Booster(model_file=str(self.path))
        return self.booster


@dataclass
class LgbmStack:
    folds: list[LgbmFold]

    def predict(self, probs: np.ndarray) -> np.ndarray:
        total = None
        for fold in self.folds:  # summed in fold order, as the cross-fitted test prediction is
            pred = fold.model().predict(meta_features(probs, fold.raw_members), num_iteration=fold.best_iteration)
            part = pred / len(self.folds)
            total = part if total is None else total + part
        return total


def _fit_lgbm(ctx: StackContext) -> Search:
    cfg = ctx.config.lgbm
    search = LgbmSearch(ctx.members, ctx.policies, cfg, ctx.config.high_votes,
                        cfg.storage or default_storage(ctx.config.work))
    search.tune()
    return search


def _lgbm_model(run: StackerRun) -> LgbmStack:
    return LgbmStack([LgbmFold(np.asarray(raw), int(booster.best_iteration), booster) for booster, raw in run.fitted])


def _save_lgbm(m: LgbmStack, stack_dir: Path) -> dict:
    folds = []
    for i, fold in enumerate(m.folds):
        name = f"lgbm_fold{i}.txt"
        with atomic_path(stack_dir / name) as tmp:
            fold.model().save_model(str(tmp), num_iteration=fold.best_iteration)
        folds.append({"file": name, "raw_members": fold.raw_members.tolist(), "best_iteration": fold.best_iteration})
    return {"feature_version": FEATURE_VERSION, "lgbm_folds": folds, "files": [f["file"] for f in folds]}


def _load_lgbm(saved: dict, stack_dir: Path) -> LgbmStack:
    if saved.get("feature_version") != FEATURE_VERSION:
        raise UserFacingError(f"{stack_dir}/stacker.json: its LightGBM features are version "
                              f"{saved.get('feature_version')}, this code computes {FEATURE_VERSION}; "
                              f"rerun `make stack`")
    folds = []
    for fold in saved["lgbm_folds"]:
        path = stack_dir / fold["file"]
        if not path.is_file():
            raise UserFacingError(f"{path} is missing: stacker.json names it; rerun `make stack` (or rebuild the "
                                  f"bundle) so that the LightGBM boosters and stacker.json are written together")
        folds.append(LgbmFold(np.asarray(fold["raw_members"], dtype=np.int64), int(fold["best_iteration"]), path=path))
    return LgbmStack(folds)


STACKERS: dict[str, StackerEntry] = {
    "blend": StackerEntry(_fit_blend, lambda run: run.fitted, _save_blend, _load_blend),
    "selection": StackerEntry(_fit_selection, lambda run: run.fitted, _save_selection, _load_selection),
    "lgbm": StackerEntry(_fit_lgbm, _lgbm_model, _save_lgbm, _load_lgbm),
}


def stacker_entry(method: str) -> StackerEntry:
    if method not in STACKERS:
        raise UserFacingError(f"no stacker named {method!r}; choose from {', '.join(STACKERS)}")
    return STACKERS[method]
