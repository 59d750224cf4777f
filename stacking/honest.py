"""Choosing a stacker on CV, and an honest (nested) estimate of what that choice is worth.

Every choice — row policy, method, hyper-parameters — is made by KL on high-vote OOF rows. The
figure of the chosen configuration is optimistic: it won because it did well on those very rows.
The nested estimate repeats the whole choice once per outer fold k looking only at the other
folds' scores, and scores the configuration chosen there on fold k. (The models behind the other
folds' scores may have trained on fold k; fold k's own errors never enter its choice.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from core.metric import kl_per_row
from stacking.crossfit import Fitter, StackerRun, cross_fit, final_fit
from stacking.members import MemberSet
from stacking.policy import RowPolicy


@dataclass
class FoldScores:
    """Per fold: sum of row KL and number of rows, on the high-vote rows."""

    kl_sum: np.ndarray
    count: np.ndarray

    def mean(self, exclude: int | None = None) -> float:
        keep = np.ones(len(self.count), dtype=bool)
        if exclude is not None:
            keep[exclude] = False
        n = self.count[keep].sum()
        return float(self.kl_sum[keep].sum() / n) if n else float("inf")


def fold_scores(pred: np.ndarray, members: MemberSet, high: np.ndarray) -> FoldScores:
    row_kl = kl_per_row(members.targets, pred)
    masks = [(members.fold == k) & high for k in members.folds]
    return FoldScores(np.array([row_kl[m].sum() for m in masks]), np.array([int(m.sum()) for m in masks]))


class Search(Protocol):
    """A stacker's inner candidates (policies, trials) and their full runs."""

    method: str

    def inner_scores(self) -> list[FoldScores]: ...

    def candidate(self, i: int) -> StackerRun: ...

    def finalise(self, i: int) -> StackerRun: ...


class PolicySearch:
    """A stacker with nothing to tune but its row policy: one honest OOF run per policy."""

    def __init__(self, method: str, members: MemberSet, policies: list[RowPolicy], fit: Fitter,
                 high: np.ndarray, seed: int = 0):
        self.method = method
        self.members = members
        self.fit = fit
        self.seed = seed
        self.runs = [StackerRun(method, p, cross_fit(members, p, fit, seed)) for p in policies]
        self._scores = [fold_scores(r.oof, members, high) for r in self.runs]

    def inner_scores(self) -> list[FoldScores]:
        return self._scores

    def candidate(self, i: int) -> StackerRun:
        return self.runs[i]

    def finalise(self, i: int) -> StackerRun:
        """Fit on every policy row: the weights to report and the test predictions."""
        run = self.runs[i]
        if run.fitted is None:
            run.fitted, run.test = final_fit(self.members, run.policy, self.fit, self.seed)
            run.details = run.fitted.describe(self.members.names)
        return run


@dataclass
class Choice:
    run: StackerRun                      # the winner
    runs: dict[str, StackerRun]          # each method's selected configuration, finalised
    cv_kl_high: float
    nested_kl_high: float
    per_fold: list[dict] = field(default_factory=list)
    per_method: dict[str, dict] = field(default_factory=dict)


def _inner_choice(search: Search, exclude: int | None) -> int:
    means = [s.mean(exclude) for s in search.inner_scores()]
    return int(np.argmin(means))  # first on ties: candidates are listed in order of preference


def choose(searches: list[Search], members: MemberSet, high: np.ndarray) -> Choice:
    """The configuration with the best CV KL on high-vote rows, with nested estimates."""
    best = {s.method: s.finalise(_inner_choice(s, None)) for s in searches}
    scores = {m: fold_scores(run.oof, members, high) for m, run in best.items()}
    winner = min(scores, key=lambda m: scores[m].mean())
    folds = [int(k) for k in members.folds]
    nested_sum, nested_n, per_fold = 0.0, 0, []
    method_nested = {s.method: [0.0, 0] for s in searches}
    for j, k in enumerate(folds):
        options = []
        for s in searches:
            run = s.candidate(_inner_choice(s, j))
            sc = fold_scores(run.oof, members, high)
            method_nested[s.method][0] += sc.kl_sum[j]
            method_nested[s.method][1] += sc.count[j]
            options.append((sc.mean(exclude=j), run, sc))
        _, run, sc = min(options, key=lambda o: o[0])
        nested_sum += sc.kl_sum[j]
        nested_n += sc.count[j]
        per_fold.append({"fold": k, "chosen": run.label,
                         "kl_high": float(sc.kl_sum[j] / sc.count[j]) if sc.count[j] else None})
    per_method = {
        m: {"selected": best[m].label, "cv_kl_high": scores[m].mean(),
            "nested_kl_high": total / n if n else None}
        for m, (total, n) in method_nested.items()
    }
    return Choice(best[winner], best, scores[winner].mean(),
                  nested_sum / nested_n if nested_n else float("nan"), per_fold, per_method)
