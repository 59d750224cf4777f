"""One fold of a LightGBM member (backbone `lgbm`): the flat feature views of the recipe, oof.gbdt on soft
targets, the booster saved as WORK/models/NAME/foldK/best.txt. The CV driver calls it instead of the
training loop; the shards it returns are the same OOF contract as a neural member's.

It fits on the training folds' evaluation samples (one per identical-vote run of label rows, like the
OOF rows themselves), grouped by patient for the inner early-stopping split.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.metric import score
from core.schema import TARGET_COLUMNS
from oof.datasets import ViewArrays
from oof.gbdt import GbdtConfig, fit_gbdt, load_gbdt, predict_gbdt, save_gbdt
from oof.recipe import Recipe
from oof.tracking import HISTORY_FILE, write_history

log = logging.getLogger(__name__)

BOOSTER_SUFFIX = ".txt"


@dataclass
class GbdtFoldResult:
    best_epoch: int          # boosting rounds, in the place of a neural fold's best epoch
    valid_probs: np.ndarray
    history: list[dict]


def checkpoint_suffix(recipe: Recipe) -> str:
    """best.txt (a booster) for a LightGBM member, best.pt (a torch state_dict) for the others."""
    return BOOSTER_SUFFIX if recipe.is_gbdt else ".pt"


def recorded_fit_seconds(run_dir: Path) -> float | None:
    """The seconds the fit of a reloaded booster took, as its history.csv has them: a resumed fold keeps
    the training time it had (not the second it took to reload)."""
    path = run_dir / HISTORY_FILE
    if not path.is_file():
        return None
    seconds = pd.read_csv(path).get("seconds")
    return None if seconds is None or seconds.isna().all() else float(seconds.iloc[0])


def features(views: ViewArrays, keys: np.ndarray) -> np.ndarray:
    rows = views.row_of.reindex(keys).to_numpy()
    return views.gather(rows.astype(np.int64)).numpy()


def fit_gbdt_fold(recipe: Recipe, cfg: GbdtConfig, train_views: ViewArrays, train: pd.DataFrame,
                  valid: pd.DataFrame, path: Path) -> tuple[object, GbdtFoldResult]:
    """Fit on `train` samples (label_id, targets, n_votes, patient_id), or reload a finished fold's
    booster from `path`; predict `valid`. Returns (booster, result)."""
    started = time.perf_counter()
    swap = train_views.swap_index
    fit_seconds = None
    if path.is_file():  # the fold finished before its shards were written: same booster, no refit
        booster = load_gbdt(path)
        fit_seconds = recorded_fit_seconds(path.parent)
    else:
        booster = fit_gbdt(features(train_views, train["label_id"].to_numpy()), train[list(TARGET_COLUMNS)].to_numpy(),
                           train["n_votes"].to_numpy(), cfg, swap, train["patient_id"].to_numpy(),
                           recipe.data.vote_weighting)
        save_gbdt(booster, path)
    valid_probs = predict_booster(recipe, booster, train_views, valid["label_id"].to_numpy())
    kl = score(valid[list(TARGET_COLUMNS)].to_numpy(), valid_probs, valid["n_votes"].to_numpy())
    row = {"epoch": booster.current_iteration(), "stage": 1, "kl_all": kl["kl_all"], "kl_high": kl["kl_high"],
           "seconds": time.perf_counter() - started if fit_seconds is None else fit_seconds}
    log.info("%s: %d rounds, valid kl %.4f high %.4f (%.1f s)", path.parent, row["epoch"], kl["kl_all"],
             kl["kl_high"], row["seconds"])
    write_history(path.parent, [row])
    return booster, GbdtFoldResult(booster.current_iteration(), valid_probs, [row])


def predict_booster(recipe: Recipe, booster, views: ViewArrays, keys: np.ndarray) -> np.ndarray:
    swap = views.swap_index if recipe.data.tta_swap else None
    return predict_gbdt(booster, features(views, keys), swap, tta=swap is not None, threads=recipe.gbdt.threads)
