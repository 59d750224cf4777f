"""The final fitted stacker on disk (WORK/stack/stacker.json + lgbm_fold*.txt), and applying it to new
member predictions: what `python -m stacking submit` needs to predict a test set no OOF run has seen.

Floats go through JSON at full precision (Python's repr round-trips), and LightGBM boosters through
their own text format, so the applied stacker reproduces the test predictions of `make stack`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import lightgbm as lgb
import numpy as np

from features.artifacts import atomic_path, write_json
from features.errors import UserFacingError
from stacking.blend import BlendFit
from stacking.meta_features import FEATURE_VERSION, meta_features
from stacking.selection import SelectionFit

STACKER_FILE = "stacker.json"
FORMAT = 1


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
class SavedStacker:
    method: str                 # blend, selection or lgbm
    members: list[str]          # the order of the stacker's inputs
    policy: str = ""
    model: BlendFit | SelectionFit | None = None
    lgbm_folds: list[LgbmFold] = field(default_factory=list)

    def apply(self, test_probs: dict[str, np.ndarray]) -> np.ndarray:
        """{member: (T, 6)} -> (T, 6) stacked probabilities."""
        missing = [m for m in self.members if m not in test_probs]
        if missing:
            raise UserFacingError(f"no test predictions for stack member(s) {', '.join(missing)}; the saved "
                                  f"stacker needs {', '.join(self.members)}")
        probs = np.stack([_rows_sum_to_one(test_probs[m]) for m in self.members])
        if self.method != "lgbm":
            return self.model.predict(probs)
        total = None
        for fold in self.lgbm_folds:  # summed in fold order, as the cross-fitted test prediction is
            pred = fold.model().predict(meta_features(probs, fold.raw_members), num_iteration=fold.best_iteration)
            part = pred / len(self.lgbm_folds)
            total = part if total is None else total + part
        return total


def from_run(run, members: list[str]) -> SavedStacker:
    """The SavedStacker of a finalised StackerRun: `run.fitted` is the final model (blend, selection)
    or the LightGBM fold models as (booster, raw member indices) pairs."""
    if run.method != "lgbm":
        return SavedStacker(run.method, list(members), run.policy.label, model=run.fitted)
    folds = [LgbmFold(np.asarray(raw), int(booster.best_iteration), booster) for booster, raw in run.fitted]
    return SavedStacker(run.method, list(members), run.policy.label, lgbm_folds=folds)


def _rows_sum_to_one(probs: np.ndarray) -> np.ndarray:
    """As loading a test parquet does (members.check_probabilities): the stacker saw these inputs."""
    probs = np.asarray(probs, dtype=np.float64)
    return probs / probs.sum(axis=1, keepdims=True)


def save_stacker(stack_dir: Path | str, stacker: SavedStacker) -> Path:
    """Write stacker.json (last, so its presence means the boosters it names are complete)."""
    stack_dir = Path(stack_dir)
    stack_dir.mkdir(parents=True, exist_ok=True)
    for stale in stack_dir.glob("lgbm_fold*.txt"):
        stale.unlink()
    payload = {"format": FORMAT, "method": stacker.method, "policy": stacker.policy, "members": stacker.members}
    if stacker.method == "lgbm":
        payload["feature_version"] = FEATURE_VERSION
        payload["lgbm_folds"] = [_save_booster(stack_dir, i, fold) for i, fold in enumerate(stacker.lgbm_folds)]
    elif isinstance(stacker.model, BlendFit):
        m = stacker.model
        payload["blend"] = {"weights": m.weights.tolist(), "bias": m.bias.tolist(),
                            "temperature": float(m.temperature), "space": m.space, "fit_kl": float(m.fit_kl)}
    else:
        m = stacker.model
        payload["selection"] = {"counts": m.counts.tolist(), "weights": m.weights.tolist(),
                                "fit_kl": float(m.fit_kl)}
    write_json(stack_dir / STACKER_FILE, payload)
    return stack_dir / STACKER_FILE


def _save_booster(stack_dir: Path, i: int, fold: LgbmFold) -> dict:
    name = f"lgbm_fold{i}.txt"
    with atomic_path(stack_dir / name) as tmp:
        fold.model().save_model(str(tmp), num_iteration=fold.best_iteration)
    return {"file": name, "raw_members": fold.raw_members.tolist(), "best_iteration": int(fold.best_iteration)}


def load_stacker(stack_dir: Path | str) -> SavedStacker:
    stack_dir = Path(stack_dir)
    path = stack_dir / STACKER_FILE
    if not path.is_file():
        raise UserFacingError(f"{path} is missing: the fitted stacker is saved by `make stack`; run it in this "
                              f"WORK folder (or rebuild the bundle from one where it ran)")
    saved = json.loads(path.read_text())
    if saved.get("format") != FORMAT:
        raise UserFacingError(f"{path} has format {saved.get('format')}, this code reads {FORMAT}; rerun `make stack`")
    stacker = SavedStacker(saved["method"], list(saved["members"]), saved.get("policy", ""))
    if stacker.method == "lgbm":
        if saved.get("feature_version") != FEATURE_VERSION:
            raise UserFacingError(f"{path}: its LightGBM features are version {saved.get('feature_version')}, "
                                  f"this code computes {FEATURE_VERSION}; rerun `make stack`")
        stacker.lgbm_folds = [_load_booster(stack_dir, fold) for fold in saved["lgbm_folds"]]
    elif stacker.method == "blend":
        b = saved["blend"]
        stacker.model = BlendFit(np.array(b["weights"]), np.array(b["bias"]), float(b["temperature"]),
                                 b["space"], float(b["fit_kl"]))
    else:
        s = saved["selection"]
        stacker.model = SelectionFit(np.array(s["counts"], dtype=np.int64), np.array(s["weights"]),
                                     float(s["fit_kl"]))
    return stacker


def _load_booster(stack_dir: Path, fold: dict) -> LgbmFold:
    path = stack_dir / fold["file"]
    if not path.is_file():
        raise UserFacingError(f"{path} is missing: stacker.json names it; rerun `make stack` (or rebuild the "
                              f"bundle) so that the LightGBM boosters and stacker.json are written together")
    return LgbmFold(np.asarray(fold["raw_members"], dtype=np.int64), int(fold["best_iteration"]), path=path)
