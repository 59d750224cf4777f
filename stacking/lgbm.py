"""LightGBM stacker on soft targets, tuned by Optuna in a persistent, shareable study.

Soft targets: each row becomes one row per class with a positive target, weighted by that target
(times the row's policy weight); the multiclass log-loss of the expanded rows is then the
cross-entropy to the vote distribution, i.e. KL plus a constant.

Honesty: the model for outer fold k trains on the other folds minus one, early-stops on that one
(its high-vote rows: the rows we are scored on), and predicts fold k; fold k is never looked at.
The test prediction is the mean of the K fold models.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import lightgbm as lgb
import numpy as np
import optuna

from core.errors import UserFacingError
from core.metric import kl_per_row
from core.schema import VOTE_COLUMNS
from core.work import Work
from stacking.crossfit import StackerRun
from stacking.honest import FoldScores
from stacking.members import MemberSet
from stacking.meta_features import FEATURE_VERSION, feature_names, meta_features, rank_members
from stacking.policy import RowPolicy
from stacking.tuning import FINISHED, ReplayableTpe, TrialProgress, fail_stale_trials, quiet_optuna

log = logging.getLogger(__name__)

N_CLASSES = len(VOTE_COLUMNS)
# Bump when the search space or the sampler changes: old studies are then not resumed. 2: the sampler
# is reseeded per trial (stacking.tuning.ReplayableTpe) and a study runs to `trials` finished trials.
SEARCH_VERSION = 2
# Column-wise histograms give each feature to one thread: results do not depend on the thread count.
BASE_PARAMS = {"objective": "multiclass", "num_class": N_CLASSES, "verbosity": -1, "bagging_freq": 1,
               "force_col_wise": True}
DATASET_PARAMS = {"max_bin": 63, "feature_pre_filter": False, "verbosity": -1}


@dataclass(frozen=True)
class LgbmConfig:
    trials: int = 100
    storage: str | None = None
    tune_rows: int = 3000
    max_raw_members: int = 4
    max_rounds: int = 1000
    early_stopping: int = 10
    # One thread: trial datasets are small, and on a busy 2-core machine two OpenMP threads were
    # measured 10x slower (each barrier waits for a descheduled thread).
    threads: int = 1
    seed: int = 0


class TooFewRows(UserFacingError):
    """The LightGBM stacker cannot fit this folder (too few folds or rows): `make stack` leaves it out."""


def default_storage(work: Path | str) -> str:
    path = Work(work).optuna_db().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def expand_soft_targets(x: np.ndarray, targets: np.ndarray, row_weights: np.ndarray):
    """One row per (row, class) with positive weight: (X, class label, weight)."""
    rows, classes = np.nonzero(targets * row_weights[:, None] > 0)
    return x[rows], classes, targets[rows, classes] * row_weights[rows]


class FoldFeatures:
    """Feature matrices per outer fold; raw members are ranked on that fold's training rows only."""

    def __init__(self, members: MemberSet, max_raw_members: int, high_votes: int):
        self.members = members
        self.max_raw = max_raw_members
        self.high_votes = high_votes
        self._raw: dict[int, np.ndarray] = {}
        self._cache: dict[tuple, tuple[np.ndarray, np.ndarray | None, np.ndarray]] = {}

    def raw_members(self, k: int) -> np.ndarray:
        if k not in self._raw:
            m = self.members
            train_rows = (m.fold != k) & (m.n_votes >= self.high_votes)
            if not train_rows.any():
                train_rows = m.fold != k
            self._raw[k] = rank_members(m.probs, m.targets, train_rows, self.max_raw)
        return self._raw[k]

    def for_fold(self, k: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """(X for every row, X for the test set or None, raw member indices)."""
        m = self.members
        raw = self.raw_members(k)
        key = tuple(raw)
        if key not in self._cache:  # with few members every fold shares one matrix
            test = None if m.test_probs is None else meta_features(m.test_probs, raw)
            self._cache[key] = (meta_features(m.probs, raw), test, raw)
        return self._cache[key]


@dataclass
class CVOutput:
    """One parameter set's cross-validation: OOF, best iterations; with test: fold models and their mean."""

    oof: np.ndarray
    test: np.ndarray | None = None
    iterations: list[int] = field(default_factory=list)
    models: list[tuple[lgb.Booster, np.ndarray]] = field(default_factory=list)


class LgbmCV:
    """Cross-validation of one parameter set over the shared folds, with cached LightGBM datasets."""

    def __init__(self, members: MemberSet, config: LgbmConfig, high_votes: int,
                 score_weights: np.ndarray | None = None):
        self.members = members
        self.config = config
        self.high = members.n_votes >= high_votes
        # Per-row weight of the CV figure (stacking.honest.Scorer); default: every high-vote row counts 1.
        self.score_weights = self.high.astype(np.float64) if score_weights is None else score_weights
        self.features = FoldFeatures(members, config.max_raw_members, high_votes)
        self.folds = [int(k) for k in members.folds]
        self._datasets: dict[tuple, tuple[lgb.Dataset, lgb.Dataset]] = {}

    def stopping_fold(self, k: int) -> int:
        return self.folds[(self.folds.index(k) + 1) % len(self.folds)]

    def datasets(self, k: int, policy: RowPolicy, rows: np.ndarray, rows_key: str):
        key = (k, policy, rows_key)
        if key not in self._datasets:
            m = self.members
            x = self.features.for_fold(k)[0]
            v = self.stopping_fold(k)
            weights = np.where(rows & (m.fold != k) & (m.fold != v), policy.row_weights(m.n_votes, m.recordings), 0.0)
            valid_rows = rows & (m.fold == v) & self.high
            valid_weights = np.where(valid_rows, self.score_weights, 0.0)  # early-stop on what is scored
            if not valid_rows.any():
                valid_weights = (rows & (m.fold == v)).astype(np.float64)
            data, label, weight = expand_soft_targets(x, m.targets, weights)
            train = lgb.Dataset(data, label=label, weight=weight, params=DATASET_PARAMS)
            data, label, weight = expand_soft_targets(x, m.targets, valid_weights)
            valid = lgb.Dataset(data, label=label, weight=weight, params=DATASET_PARAMS, reference=train)
            self._datasets[key] = (train.construct(), valid.construct())
        return self._datasets[key]

    def fit_fold(self, k: int, policy: RowPolicy, params: dict, rows: np.ndarray, rows_key: str) -> lgb.Booster:
        train, valid = self.datasets(k, policy, rows, rows_key)
        full = {**BASE_PARAMS, **params, "num_threads": self.config.threads, "seed": self.config.seed}
        return lgb.train(full, train, num_boost_round=self.config.max_rounds, valid_sets=[valid],
                         callbacks=[lgb.early_stopping(self.config.early_stopping, verbose=False)])

    def run(self, params: dict, policy: RowPolicy, rows: np.ndarray | None = None, rows_key: str = "all",
            on_fold: Callable[[int, int, np.ndarray, np.ndarray], None] | None = None,
            with_test: bool = False) -> CVOutput:
        """OOF predictions on `rows` (NaN elsewhere); with_test: the fold models and their mean test prediction."""
        m = self.members
        rows = np.ones(len(m.fold), dtype=bool) if rows is None else rows
        out = CVOutput(np.full(m.targets.shape, np.nan))
        for step, k in enumerate(self.folds):
            booster = self.fit_fold(k, policy, params, rows, rows_key)
            x, x_test, raw = self.features.for_fold(k)
            held = rows & (m.fold == k)
            out.oof[held] = booster.predict(x[held], num_iteration=booster.best_iteration)
            out.iterations.append(int(booster.best_iteration))
            if with_test:
                out.models.append((booster, raw))
            if with_test and x_test is not None:
                # Summed in fold order: the saved stacker (saved_stacker.py) reproduces it exactly.
                part = booster.predict(x_test, num_iteration=booster.best_iteration) / len(self.folds)
                out.test = part if out.test is None else out.test + part
            if on_fold is not None:
                on_fold(step, k, held, out.oof[held])
        return out


def suggest_params(trial: optuna.Trial, policies: list[RowPolicy]) -> tuple[dict, RowPolicy]:
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 0.05, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 64, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 300, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.3, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
    }
    policy = policies[0]
    if len(policies) > 1:
        labels = [p.label for p in policies]
        policy = policies[labels.index(trial.suggest_categorical("row_policy", labels))]
    return params, policy


class LgbmSearch:
    """The tuned LightGBM stacker: Optuna trials as inner candidates, each resolvable to a full CV run."""

    method = "lgbm"

    def __init__(self, members: MemberSet, policies: list[RowPolicy], config: LgbmConfig, high_votes: int,
                 storage: str, score_weights: np.ndarray | None = None):
        self.members = members
        self.policies = policies
        self.config = config
        self.high_votes = high_votes
        self.storage = storage
        self.cv = LgbmCV(members, config, high_votes, score_weights)
        self.tune_rows = _tuning_rows(members, policies, high_votes, config)
        self.policies = fittable_policies(self.cv, policies, self.tune_rows)
        self._runs: dict[int, StackerRun] = {}
        self.trials: list[optuna.trial.FrozenTrial] = []  # finished trials: the inner candidates
        self.study_trials = 0  # the finished trials used (the first `trials`), pruned ones included

    @cached_property
    def study_name(self) -> str:
        """Derived from the members' content and the config: same inputs resume, other inputs start afresh."""
        config = {k: v for k, v in asdict(self.config).items() if k not in ("trials", "storage", "threads")}
        spec = {"members": self.members.names, "data": self.members.fingerprint(), "config": config,
                "policies": [p.label for p in self.policies], "high_votes": self.high_votes,
                "balanced": [p.balanced for p in self.policies],
                "score_weights": hashlib.sha1(self.cv.score_weights.tobytes()).hexdigest()[:12],
                "features": FEATURE_VERSION, "search": SEARCH_VERSION}
        digest = hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
        return f"lgbm-{len(self.members.names)}members-{digest}"

    def tune(self) -> None:
        """Run the persistent study up to `config.trials` finished trials and keep the first that many:
        a rerun resumes a killed run (failing the trial it left RUNNING) and adds nothing to a finished
        one, so the same inputs give the same trials and choice as one uninterrupted run."""
        quiet_optuna()
        study = optuna.create_study(storage=self.storage, study_name=self.study_name, load_if_exists=True,
                                    direction="minimize", sampler=ReplayableTpe(self.config.seed),
                                    pruner=_pruner())
        stale = fail_stale_trials(study)
        done = len(study.get_trials(deepcopy=False, states=FINISHED))
        if not study.trials:
            study.set_user_attr("members", self.members.names)
            study.set_user_attr("policies", [p.label for p in self.policies])
        todo = max(self.config.trials - done, 0)
        log.info("lgbm: study %s has %d finished trials%s; running %d more", self.study_name, done,
                 f" ({stale} left running by a killed run, now failed)" if stale else "", todo)
        if todo:
            progress = TrialProgress("lgbm", todo, always=True)
            study.optimize(self._objective, n_trials=todo, gc_after_trial=False, callbacks=[progress])
        finished = study.get_trials(deepcopy=False, states=FINISHED)[:self.config.trials]
        self.study_trials = len(finished)
        self.trials = [t for t in finished
                       if t.state == optuna.trial.TrialState.COMPLETE and "fold_kl_sum" in t.user_attrs]
        if not self.trials:
            raise RuntimeError(f"lgbm study {self.study_name} has no finished trials")

    def _objective(self, trial: optuna.Trial) -> float:
        params, policy = suggest_params(trial, self.policies)
        sums, counts = [], []

        def on_fold(step: int, k: int, held: np.ndarray, pred: np.ndarray) -> None:
            w = self.cv.score_weights[held]
            sums.append(float(w @ kl_per_row(self.members.targets[held], np.nan_to_num(pred, nan=1 / 6))))
            counts.append(float(w.sum()))
            trial.report(sum(sums) / max(sum(counts), 1), step)
            if trial.should_prune():
                raise optuna.TrialPruned()

        iterations = self.cv.run(params, policy, self.tune_rows, "tune", on_fold).iterations
        trial.set_user_attr("fold_kl_sum", sums)
        trial.set_user_attr("fold_n", counts)
        trial.set_user_attr("best_iterations", iterations)
        return sum(sums) / max(sum(counts), 1)

    def inner_scores(self) -> list[FoldScores]:
        return [FoldScores(np.array(t.user_attrs["fold_kl_sum"]), np.array(t.user_attrs["fold_n"]))
                for t in self.trials]

    def best_trial(self, exclude: int | None = None) -> int:
        """The trial with the best CV on the tuning rows outside fold index `exclude` (first on ties)."""
        return int(np.argmin([s.mean(exclude) for s in self.inner_scores()]))

    def configurations(self, exclude: int | None) -> list[StackerRun]:
        """One configuration: trials are hyper-parameters of one method, chosen by plain CV."""
        return [self.candidate(self.best_trial(exclude))]

    def finalise(self, run: StackerRun | int) -> StackerRun:
        return self.candidate(run) if isinstance(run, int) else run

    def candidate(self, i: int) -> StackerRun:
        """Trial i re-run on every row, with test predictions (cached)."""
        if i not in self._runs:
            trial = self.trials[i]
            params = {k: v for k, v in trial.params.items() if k != "row_policy"}
            policy = self.policies[0]
            if "row_policy" in trial.params:
                policy = next(p for p in self.policies if p.label == trial.params["row_policy"])
            out = self.cv.run(params, policy, with_test=True)
            raw = self.cv.features.for_fold(self.cv.folds[-1])[2]
            details = {"params": params, "trial": trial.number, "best_iterations": out.iterations,
                       "study": self.study_name, "storage": self.storage, "n_trials": self.study_trials,
                       "n_complete": len(self.trials),
                       "n_features": len(feature_names(self.members.names, raw)),
                       "tune_rows": int(self.tune_rows.sum())}
            self._runs[i] = StackerRun(self.method, policy, out.oof, out.test, details, fitted=out.models)
        return self._runs[i]


def fittable_policies(cv: LgbmCV, policies: list[RowPolicy], rows: np.ndarray) -> list[RowPolicy]:
    """The policies under which every outer fold has rows to train on and to early-stop on (LightGBM
    stops with "num_data > 0" otherwise); TooFewRows, in one line, when none has."""
    kept, reasons = [], []
    for policy in policies:
        problems = [p for k in cv.folds if (p := _empty_fold(cv, policy, rows, k))]
        if problems:
            reasons.append(problems[0])
            log.info("lgbm: policy %s not tried: %s", policy.label, problems[0])
        else:
            kept.append(policy)
    if not kept:
        raise TooFewRows(f"lgbm stacker: {reasons[0]}; with {len(cv.folds)} folds and {len(cv.members.fold)} "
                         f"OOF rows it cannot fit: use >= 3 folds and more rows, lower min_votes=, or leave it "
                         f"out with methods=blend,selection,logit,mlp")
    return kept


def _empty_fold(cv: LgbmCV, policy: RowPolicy, rows: np.ndarray, k: int) -> str:
    """Why outer fold k cannot be fitted under `policy` ("" when it can)."""
    m, v = cv.members, cv.stopping_fold(k)
    train = rows & (m.fold != k) & (m.fold != v) & (policy.row_weights(m.n_votes, m.recordings) > 0)
    if not train.any():
        return (f"outer fold {k} has no rows with >= {policy.min_votes} voters to train on outside folds {k} "
                f"and {v} (its early-stopping fold)")
    if not (rows & (m.fold == v)).any():
        return f"fold {v}, which early-stops outer fold {k}, has no rows"
    return ""


def _pruner() -> optuna.pruners.BasePruner:
    """Stop a trial after any fold where its running KL is outside the best third so far: TPE keeps
    proposing near the best trials, so a median rule would let most of them run every fold."""
    return optuna.pruners.PercentilePruner(33.0, n_startup_trials=5, n_warmup_steps=0)


def _tuning_rows(members: MemberSet, policies: list[RowPolicy], high_votes: int, config: LgbmConfig) -> np.ndarray:
    """Trials see at most `tune_rows` rows (those any policy fits on or we score on), drawn at random."""
    lowest = min(p.min_votes for p in policies)
    eligible = np.flatnonzero((members.n_votes >= lowest) | (members.n_votes >= high_votes))
    rows = np.zeros(len(members.fold), dtype=bool)
    if len(eligible) > config.tune_rows:
        eligible = np.random.default_rng(config.seed).choice(eligible, size=config.tune_rows, replace=False)
    rows[eligible] = True
    return rows
