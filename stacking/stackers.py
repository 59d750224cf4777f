"""The stacker table: every stacker is one entry (fit, save, load), so a new one is a new entry here
plus its own module; `make stack` fits every entry named by `methods`, the saved stacker
(WORK/stack/stacker.json) names its entry, and `make submission` loads it through the same entry.

- fit(ctx) -> Search: honest OOF candidates and their final fits (stacking.honest)
- model(run) -> Predictor: what predicts new member probabilities (M, T, 6) -> (T, 6)
- save(model, stack_dir) -> dict: JSON-ready fields of stacker.json; side files written beside it are
  listed under "files" (the bundle copies them, the next save removes them)
- load(saved, stack_dir) -> Predictor
- subset(model, keep) -> Predictor: the model on members `keep` alone, its weights renormalised over
  them (for a test recording the other members could not see); None: the stacker cannot leave one out
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np

from core.artifacts import atomic_path
from core.errors import UserFacingError
from core.work import STACKER_FILE, checked_name
from stacking.blend import BlendFit, fit_blend
from stacking.crossfit import StackerRun
from stacking.honest import PolicySearch, Scorer, Search, Variant
from stacking.lgbm import LgbmSearch, default_storage
from stacking.logit_linear import LogitFit, fit_logit
from stacking.members import MemberSet
from stacking.meta_features import FEATURE_VERSION, meta_features
from stacking.mlp import MlpFit, fit_mlp
from stacking.patient_features import augment
from stacking.policy import RowPolicy
from stacking.selection import SelectionFit, select_ensemble

log = logging.getLogger(__name__)


class Predictor(Protocol):
    def predict(self, probs: np.ndarray) -> np.ndarray: ...


@dataclass
class StackContext:
    config: Any                  # stacking.config.StackConfig
    members: MemberSet
    policies: list[RowPolicy]
    high: np.ndarray
    scorer: Scorer


@dataclass(frozen=True)
class StackerEntry:
    fit: Callable[[StackContext], Search]
    model: Callable[[StackerRun], Predictor]
    save: Callable[[Predictor, Path], dict]
    load: Callable[[dict, Path], Predictor]
    subset: Callable[[Predictor, np.ndarray], Predictor | None] | None = field(default=None)


def _renormalised(weights: np.ndarray, keep: np.ndarray) -> np.ndarray | None:
    """The weights of members `keep`, rescaled to the total of all weights; None when they carry none."""
    kept = np.asarray(weights, dtype=np.float64)[keep]
    total, part = float(np.sum(weights)), float(kept.sum())
    if not np.isfinite(part) or abs(part) <= 1e-12 * max(abs(total), 1.0) or np.sign(part) != np.sign(total):
        return None
    return kept * (total / part)


def _weights_subset(model, keep: np.ndarray):
    """Blend, selection and logit predict from a weighted sum over members: drop the others' weights."""
    weights = _renormalised(model.weights, keep)
    return None if weights is None else replace(model, weights=weights)


# ---- blend and ensemble selection: one final fit each -----------------------------------------
def _fit_blend(ctx: StackContext) -> Search:
    cfg = ctx.config.blend
    variants = [Variant(name, _blend_fitter(cfg.variant(name))) for name in cfg.variants]
    return PolicySearch("blend", ctx.members, ctx.policies, variants, cfg.seed)


def _blend_fitter(cfg):
    return lambda p, t, w, seed: fit_blend(p, t, w, replace(cfg, seed=cfg.seed + seed))


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
    return PolicySearch("selection", ctx.members, ctx.policies, [Variant("", fit)], cfg.seed)


def _save_selection(m: SelectionFit, stack_dir: Path) -> dict:
    return {"selection": {"counts": m.counts.tolist(), "weights": m.weights.tolist(), "fit_kl": float(m.fit_kl)}}


def _load_selection(saved: dict, stack_dir: Path) -> SelectionFit:
    s = saved["selection"]
    return SelectionFit(np.array(s["counts"], dtype=np.int64), np.array(s["weights"]), float(s["fit_kl"]))


# ---- logit-linear with class bias (3rd place) ---------------------------------------------------
def _fit_logit(ctx: StackContext) -> Search:
    cfg = ctx.config.logit
    fit = lambda p, t, w, seed: fit_logit(p, t, w, cfg)
    return PolicySearch("logit", ctx.members, ctx.policies, [Variant("", fit)])


def _save_logit(m: LogitFit, stack_dir: Path) -> dict:
    return {"logit": {"weights": m.weights.tolist(), "bias": m.bias.tolist(), "fit_kl": float(m.fit_kl)}}


def _load_logit(saved: dict, stack_dir: Path) -> LogitFit:
    s = saved["logit"]
    return LogitFit(np.array(s["weights"]), np.array(s["bias"]), float(s["fit_kl"]))


# ---- small MLP on member logits, optionally with patient features (5th place) -------------------
class JointSearch:
    """Several searches of one method (e.g. the MLP on members, and on members + patient channels)."""

    def __init__(self, method: str, parts: list[Search]):
        self.method = method
        self.parts = parts

    def configurations(self, exclude: int | None) -> list[StackerRun]:
        return [r for part in self.parts for r in part.configurations(exclude)]

    def finalise(self, run: StackerRun) -> StackerRun:
        owner = next(p for p in self.parts if any(r is run for r in p.configurations(None)))
        return owner.finalise(run)


def _fit_mlp(ctx: StackContext) -> Search:
    cfg, members = ctx.config.mlp, ctx.members
    fit = lambda p, t, w, seed: fit_mlp(p, t, w, replace(cfg, seed=cfg.seed + seed))
    parts: list[Search] = [PolicySearch("mlp", members, ctx.policies, [Variant("", fit)], cfg.seed)]
    if cfg.patient_features and patients_known(members):
        n = len(members.names)
        with_patients = replace(members, probs=augment(members.probs, members.recordings, members.groups),
                                test_probs=None if members.test_probs is None else
                                augment(members.test_probs, members.test_ids, members.test_groups))
        patient_fit = lambda p, t, w, seed: fit_mlp(p, t, w, replace(cfg, seed=cfg.seed + seed), n_members=n)
        parts.append(PolicySearch("mlp", with_patients, ctx.policies, [Variant("patient", patient_fit)], cfg.seed))
    return JointSearch("mlp", parts)


def patients_known(members: MemberSet) -> bool:
    """Patient features need patient ids for the OOF rows and, when there is a test set, for it too."""
    if members.groups is None or (members.test_probs is not None and members.test_groups is None):
        log.info("mlp: patient ids unknown for the %s rows; the patient-feature variant is off",
                 "OOF" if members.groups is None else "test")
        return False
    return True


@dataclass
class PatientMlp:
    """The MLP on members + patient channels: computes the channels from the rows' recordings and patients."""

    fit: MlpFit
    uses_patients = True

    def predict(self, probs: np.ndarray, recordings: np.ndarray | None = None,
                groups: np.ndarray | None = None) -> np.ndarray:
        if recordings is None or groups is None:
            log.warning("mlp:patient applied without test eeg_ids/patient ids: no other recordings are used")
            recordings = np.arange(probs.shape[1]) if recordings is None else recordings
        return self.fit.predict(augment(probs, recordings, groups))


def _mlp_model(run: StackerRun):
    return PatientMlp(run.fitted) if run.variant == "patient" else run.fitted


def _save_mlp(m, stack_dir: Path) -> dict:
    fit = m.fit if isinstance(m, PatientMlp) else m
    with atomic_path(stack_dir / "mlp.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, mean=fit.mean, scale=fit.scale, **{f"state.{k}": v for k, v in fit.state.items()})
    return {"mlp": {"file": "mlp.npz", "n_members": fit.n_members, "hidden": fit.hidden,
                    "patient": isinstance(m, PatientMlp), "fit_kl": fit.fit_kl}, "files": ["mlp.npz"]}


def _load_mlp(saved: dict, stack_dir: Path):
    s = saved["mlp"]
    path = stack_dir / checked_name(s.get("file"), stack_dir / STACKER_FILE)
    if not path.is_file():
        raise UserFacingError(f"{path} is missing: stacker.json names it; rerun `make stack` (or rebuild the bundle)")
    with np.load(path) as arrays:
        state = {k.removeprefix("state."): arrays[k] for k in arrays.files if k.startswith("state.")}
        fit = MlpFit(int(s["n_members"]), arrays["mean"], arrays["scale"], state, int(s["hidden"]), s["fit_kl"])
    return PatientMlp(fit) if s["patient"] else fit


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
                        cfg.storage or default_storage(ctx.config.work), ctx.scorer.weights)
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
        path = stack_dir / checked_name(fold.get("file"), stack_dir / STACKER_FILE)
        if not path.is_file():
            raise UserFacingError(f"{path} is missing: stacker.json names it; rerun `make stack` (or rebuild the "
                                  f"bundle) so that the LightGBM boosters and stacker.json are written together")
        folds.append(LgbmFold(np.asarray(fold["raw_members"], dtype=np.int64), int(fold["best_iteration"]), path=path))
    return LgbmStack(folds)


STACKERS: dict[str, StackerEntry] = {
    "blend": StackerEntry(_fit_blend, lambda run: run.fitted, _save_blend, _load_blend, _weights_subset),
    "selection": StackerEntry(_fit_selection, lambda run: run.fitted, _save_selection, _load_selection,
                              _weights_subset),
    "logit": StackerEntry(_fit_logit, lambda run: run.fitted, _save_logit, _load_logit, _weights_subset),
    "mlp": StackerEntry(_fit_mlp, _mlp_model, _save_mlp, _load_mlp),
    "lgbm": StackerEntry(_fit_lgbm, _lgbm_model, _save_lgbm, _load_lgbm),
}


def stacker_entry(method: str) -> StackerEntry:
    if method not in STACKERS:
        raise UserFacingError(f"no stacker named {method!r}; choose from {', '.join(STACKERS)}")
    return STACKERS[method]
