"""The feature-GBDT member's core: LightGBM on flat feature views (features/views/bands.py), soft targets.

Soft targets by row expansion: each row becomes one row per class with a positive target, weighted
by that target times the row's weight, under the multiclass objective; its log-loss is then the
cross-entropy to the vote distribution (KL plus a constant), as stacking/lgbm.py does.

Swap augmentation appends the hemisphere-mirrored feature rows (`X[:, swap_index]`) with the same
targets (mirroring does not change the class); TTA averages the predictions of both.

Honesty: `fit_gbdt` sees training rows only. Early stopping uses an INNER split of those rows (by
`groups`, e.g. patients, when given); with `refit` the model is then refitted on all training rows
for the rounds found. `oof_gbdt` fits one model per fold on the other folds and predicts the fold.
Torch-free; deterministic for a seed (deterministic=True, force_row_wise, fixed num_threads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np

from core.artifacts import atomic_path
from core.schema import N_CLASSES
from core.vote_weights import vote_weights


@dataclass(frozen=True)
class GbdtConfig:
    num_leaves: int = 15
    learning_rate: float = 0.05
    n_estimators: int = 2000  # most boosting rounds; early stopping usually ends far sooner
    min_child_samples: int = 20
    feature_fraction: float = 0.5
    bagging_fraction: float = 0.8
    bagging_freq: int = 1
    lambda_l2: float = 1.0
    max_bin: int = 63
    min_votes: int = 3  # rows with fewer voters are left out of fitting (their labels are noisy)
    swap_augment: bool = True
    early_stopping_rounds: int = 50  # 0: no early stopping, n_estimators rounds
    inner_fraction: float = 0.2  # of the training rows (groups), held out for early stopping
    refit: bool = True  # refit on all training rows for the early-stopped number of rounds
    seed: int = 0
    threads: int = 1

    def __post_init__(self):
        if not 0.0 < self.inner_fraction < 1.0:
            raise ValueError(f"inner_fraction must be in (0, 1), got {self.inner_fraction}")

    def params(self) -> dict:
        return {"objective": "multiclass", "num_class": N_CLASSES, "verbosity": -1,
                "num_leaves": self.num_leaves, "learning_rate": self.learning_rate,
                "min_data_in_leaf": self.min_child_samples, "feature_fraction": self.feature_fraction,
                "bagging_fraction": self.bagging_fraction, "bagging_freq": self.bagging_freq,
                "lambda_l2": self.lambda_l2, "max_bin": self.max_bin, "seed": self.seed,
                "num_threads": self.threads, "deterministic": True, "force_row_wise": True,
                "feature_pre_filter": False}

    def to_dict(self) -> dict:
        return asdict(self)


def row_weights(n_votes: np.ndarray, cfg: GbdtConfig, weighting: str = "none") -> np.ndarray:
    """Fitting weight per row: 0 below `min_votes`, else the vote weighting's."""
    n = np.asarray(n_votes, dtype=np.float64)
    return np.where(n >= cfg.min_votes, vote_weights(n, weighting), 0.0)


def inner_split(n_rows: int, groups: np.ndarray | None, cfg: GbdtConfig) -> np.ndarray:
    """Boolean mask of the early-stopping rows: a seeded `inner_fraction` of the groups (or rows)."""
    rng = np.random.default_rng(cfg.seed + 7919)
    if groups is None:
        return rng.random(n_rows) < cfg.inner_fraction
    unique, inverse = np.unique(np.asarray(groups), return_inverse=True)
    chosen = rng.random(len(unique)) < cfg.inner_fraction
    if not chosen.any() or chosen.all():  # too few groups: hold out one (or keep one)
        chosen = np.zeros(len(unique), dtype=bool)
        chosen[rng.integers(len(unique))] = len(unique) > 1
    return chosen[inverse]


def _expanded(x: np.ndarray, targets: np.ndarray, weights: np.ndarray, swap_index: Sequence[int] | None):
    """(X, class, weight) with one row per (row, class) with positive weight; mirrored copies appended."""
    rows, classes = np.nonzero(targets * weights[:, None] > 0)
    data = np.asarray(x, dtype=np.float32)[rows]
    label, weight = classes, targets[rows, classes] * weights[rows]
    if swap_index is not None:
        data = np.concatenate([data, data[:, np.asarray(swap_index)]])
        label, weight = np.concatenate([label, label]), np.concatenate([weight, weight])
    return data, label, weight


def _dataset(x, targets, weights, swap_index, cfg: GbdtConfig, reference: lgb.Dataset | None = None):
    data, label, weight = _expanded(x, targets, weights, swap_index)
    params = {"max_bin": cfg.max_bin, "verbosity": -1, "feature_pre_filter": False}
    return lgb.Dataset(data, label=label, weight=weight, params=params, reference=reference, free_raw_data=True)


def fit_gbdt(x: np.ndarray, targets: np.ndarray, n_votes: np.ndarray, cfg: GbdtConfig = GbdtConfig(),
             swap_index: Sequence[int] | None = None, groups: np.ndarray | None = None,
             weighting: str = "none") -> lgb.Booster:
    """Fit on these (training) rows only: (n, F) features, (n, 6) vote distributions, (n,) voters.

    `swap_index` (the features' left-right permutation) enables swap augmentation when
    `cfg.swap_augment`; `groups` (n,) keeps each group (patient) on one side of the inner split;
    `weighting`: the row weight by voters (core.vote_weights), on top of the `min_votes` cut.
    """
    x, targets = np.asarray(x), np.asarray(targets, dtype=np.float64)
    if targets.shape != (len(x), N_CLASSES):
        raise ValueError(f"targets must be ({len(x)}, {N_CLASSES}), got {targets.shape}")
    weights = row_weights(n_votes, cfg, weighting)
    if not (weights > 0).any():
        raise ValueError(f"no training row has {cfg.min_votes}+ voters")
    swap = swap_index if cfg.swap_augment else None
    if swap is not None and sorted(swap) != list(range(x.shape[1])):
        raise ValueError("swap_index must be a permutation of the feature columns")
    params = cfg.params()
    rounds = cfg.n_estimators
    if cfg.early_stopping_rounds > 0:
        stop = inner_split(len(x), groups, cfg)
        if (weights[stop] > 0).any() and (weights[~stop] > 0).any():
            train = _dataset(x, targets, np.where(stop, 0.0, weights), swap, cfg)
            valid = _dataset(x, targets, np.where(stop, weights, 0.0), swap, cfg, reference=train)
            booster = lgb.train(params, train, num_boost_round=cfg.n_estimators, valid_sets=[valid],
                                callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
            if not cfg.refit:
                return _trimmed(booster, booster.best_iteration)
            rounds = max(1, booster.best_iteration)
    booster = lgb.train(params, _dataset(x, targets, weights, swap, cfg), num_boost_round=rounds)
    return _trimmed(booster, rounds)


def _trimmed(booster: lgb.Booster, rounds: int) -> lgb.Booster:
    """The booster with exactly `rounds` iterations (what save/load and predict then use)."""
    rounds = rounds if rounds > 0 else booster.current_iteration()
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=rounds))


def predict_gbdt(model: lgb.Booster | Sequence[lgb.Booster], x: np.ndarray, swap_index: Sequence[int] | None = None,
                 tta: bool = True, threads: int = 1) -> np.ndarray:
    """(n, 6) probabilities; with `tta` and a `swap_index`, the mean over the features and their mirror.
    A sequence of boosters (e.g. seeds) is averaged. `threads`: a loaded booster would use every core."""
    models = [model] if isinstance(model, lgb.Booster) else list(model)
    x = np.asarray(x, dtype=np.float32)
    inputs = [x] + ([x[:, np.asarray(swap_index)]] if tta and swap_index is not None else [])
    preds = [m.predict(v, num_threads=threads) for m in models for v in inputs]
    out = np.mean(preds, axis=0)
    return out / out.sum(axis=1, keepdims=True)


def save_gbdt(model: lgb.Booster, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(model.model_to_string())


def load_gbdt(path: Path | str) -> lgb.Booster:
    return lgb.Booster(model_str=Path(path).read_text())


def oof_gbdt(x: np.ndarray, targets: np.ndarray, n_votes: np.ndarray, fold: np.ndarray,
             cfg: GbdtConfig = GbdtConfig(), swap_index: Sequence[int] | None = None,
             groups: np.ndarray | None = None, tta: bool = True) -> np.ndarray:
    """Out-of-fold (n, 6) predictions: fold k's rows predicted by a model fitted on the other folds only."""
    fold = np.asarray(fold)
    out = np.full((len(x), N_CLASSES), np.nan)
    for k in np.unique(fold):
        train = fold != k
        model = fit_gbdt(x[train], targets[train], np.asarray(n_votes)[train], cfg, swap_index,
                         None if groups is None else np.asarray(groups)[train])
        out[~train] = predict_gbdt(model, x[~train], swap_index, tta, cfg.threads)
    return out
