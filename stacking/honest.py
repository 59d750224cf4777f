"""Choosing a stacker configuration on CV, robustly, and an honest (nested) estimate of that choice.

A configuration is one stacker run: method, variant (e.g. blend with/without bias or temperature)
and row policy, each with OOF predictions. Every CV figure is a weighted mean KL over the scored
OOF rows (>= high_votes voters); with recording weights each recording weighs the same, as in the
test set (one row per recording).

Standard errors are clustered by recording (its rows share a recording, so they are not
independent): the analytic form of a bootstrap over recordings, deterministic and free.
SE(mean)² = R/(R-1) · Σ_r (S_r - mean·W_r)² / (Σ_r W_r)², with W_r, S_r the recording's weight
and weighted KL sum.

The robust rule (choice=robust): take the best CV configuration b; a configuration c is as good
when its paired difference to b, CV_c - CV_b over the same rows, is within choice_se standard
errors of that difference. Paired, because two stackers' errors on a recording are strongly
correlated: the difference's SE is several times smaller than either figure's, so the band is
sharp. Among the as-good ones the simplest wins (COMPLEXITY rank, then CV); a configuration that
wins on CV by less than the noise no longer beats a simpler one. choice=best is the plain argmin.

The nested estimate repeats the whole rule once per outer fold k on the other folds' rows only
(inner candidates — policies, trials — included) and scores the configuration chosen there on
fold k. (The models behind the other folds' OOF predictions may have trained on fold k; fold k's
own errors never enter its choice.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from core.metric import kl_per_row
from stacking.crossfit import Fitter, StackerRun, cross_fit, final_fit
from stacking.members import MemberSet
from stacking.policy import RowPolicy, recording_weights

RULES = ("robust", "best")


@dataclass
class FoldScores:
    """Per fold: weighted sum of row KL and sum of weights, on the scored rows."""

    kl_sum: np.ndarray
    count: np.ndarray

    def mean(self, exclude: int | None = None) -> float:
        keep = np.ones(len(self.count), dtype=bool)
        if exclude is not None:
            keep[exclude] = False
        n = self.count[keep].sum()
        return float(self.kl_sum[keep].sum() / n) if n else float("inf")


@dataclass
class Scorer:
    """How OOF predictions are scored: row weights (0 = not scored), recording clusters for SEs."""

    targets: np.ndarray
    fold: np.ndarray
    weights: np.ndarray
    clusters: np.ndarray

    @classmethod
    def of(cls, members: MemberSet, high: np.ndarray, balanced: bool = True) -> Scorer:
        weights = recording_weights(members.recordings, high) if balanced else high.astype(np.float64)
        _, clusters = np.unique(members.recordings, return_inverse=True)
        return cls(members.targets, members.fold, weights, clusters)

    @property
    def folds(self) -> list[int]:
        return [int(k) for k in np.unique(self.fold)]

    def row_kl(self, run: StackerRun) -> np.ndarray:
        if run.row_kl is None:
            run.row_kl = kl_per_row(self.targets, np.nan_to_num(run.oof, nan=1.0 / 6))
        return run.row_kl

    def mask(self, exclude: int | None = None, only: int | None = None) -> np.ndarray:
        keep = self.weights > 0
        if exclude is not None:
            keep &= self.fold != exclude
        if only is not None:
            keep &= self.fold == only
        return keep

    def sums(self, values: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
        w = self.weights[mask]
        return float(w @ values[mask]), float(w.sum())

    def mean(self, values: np.ndarray, mask: np.ndarray) -> float:
        total, weight = self.sums(values, mask)
        return total / weight if weight else float("inf")

    def se(self, values: np.ndarray, mask: np.ndarray) -> float:
        """Recording-clustered standard error of the weighted mean of `values` over `mask`."""
        codes, w = self.clusters[mask], self.weights[mask]
        total_w = w.sum()
        if not total_w:
            return float("nan")
        mean = float(w @ values[mask]) / total_w
        s_r = np.bincount(codes, weights=w * values[mask])
        w_r = np.bincount(codes, weights=w)
        present = w_r > 0
        n = int(present.sum())
        if n < 2:
            return float("nan")
        resid = (s_r - mean * w_r)[present]
        return float(np.sqrt(n / (n - 1) * (resid @ resid)) / total_w)

    def fold_scores(self, pred: np.ndarray) -> FoldScores:
        row_kl = kl_per_row(self.targets, pred)
        parts = [self.sums(row_kl, self.mask(only=k)) for k in self.folds]
        return FoldScores(np.array([p[0] for p in parts]), np.array([p[1] for p in parts]))


class Search(Protocol):
    """A stacker's configurations (with OOF predictions) and their final fits."""

    method: str

    def configurations(self, exclude: int | None) -> list[StackerRun]:
        """The runs the rule compares; inner choices (e.g. LightGBM trials) made without fold index `exclude`."""
        ...

    def finalise(self, run: StackerRun) -> StackerRun: ...


@dataclass(frozen=True)
class Variant:
    """One way to fit a stacker (e.g. blend with temperature): its name in labels, and its fitter."""

    name: str
    fit: Fitter


class PolicySearch:
    """A stacker with nothing to tune but its variant and row policy: one honest OOF run for each pair."""

    def __init__(self, method: str, members: MemberSet, policies: list[RowPolicy], variants: list[Variant],
                 seed: int = 0):
        self.method = method
        self.members = members
        self.seed = seed
        self.fits = {}
        self.runs = []
        for variant in variants:
            for policy in policies:
                run = StackerRun(method, policy, cross_fit(members, policy, variant.fit, seed), variant=variant.name)
                self.fits[id(run)] = variant.fit
                self.runs.append(run)

    def configurations(self, exclude: int | None) -> list[StackerRun]:
        return self.runs

    def finalise(self, run: StackerRun) -> StackerRun:
        """Fit on every policy row: the weights to report and the test predictions."""
        if run.fitted is None:
            run.fitted, run.test = final_fit(self.members, run.policy, self.fits[id(run)], self.seed)
            run.details = run.fitted.describe(self.members.names)
        return run


@dataclass
class Choice:
    run: StackerRun                      # the winner
    runs: dict[str, StackerRun]          # each method's own pick by the same rule, finalised
    cv_kl_high: float
    nested_kl_high: float
    per_fold: list[dict] = field(default_factory=list)
    per_method: dict[str, dict] = field(default_factory=dict)
    table: list[dict] = field(default_factory=list)   # every configuration: CV ± SE, paired difference
    rule: str = "robust"
    reason: str = ""


def rank(configs: list[StackerRun], scorer: Scorer, rule: str = "robust", band: float = 1.0,
         exclude: int | None = None) -> tuple[int, list[dict]]:
    """The chosen configuration's index and a row per configuration, on the rows outside fold `exclude`."""
    mask = scorer.mask(exclude=exclude)
    kls = [scorer.row_kl(r) for r in configs]
    cv = [scorer.mean(k, mask) for k in kls]
    best = int(np.argmin(cv))  # first on ties
    rows = []
    for run, kl, value in zip(configs, kls, cv, strict=True):
        diff_se = scorer.se(kl - kls[best], mask)
        diff = value - cv[best]
        rows.append({"label": run.label, "complexity": run.complexity, "cv_kl_high": value,
                     "se": scorer.se(kl, mask), "diff_vs_best": diff, "diff_se": diff_se,
                     "within": bool(diff <= band * np.nan_to_num(diff_se))})
    if rule == "best":
        return best, rows
    eligible = [i for i, row in enumerate(rows) if row["within"]]
    return min(eligible, key=lambda i: (rows[i]["complexity"], rows[i]["cv_kl_high"])), rows


def choose(searches: list[Search], scorer: Scorer, rule: str = "robust", band: float = 1.0) -> Choice:
    """The configuration the rule picks over every search's configurations, with nested estimates."""
    configs = [(s, r) for s in searches for r in s.configurations(None)]
    chosen, table = rank([r for _, r in configs], scorer, rule, band)
    for i, row in enumerate(table):
        row["chosen"] = i == chosen
    owner, winner = configs[chosen]
    runs, per_method = {}, {}
    for s in searches:
        own = s.configurations(None)
        i, rows = rank(own, scorer, rule, band)
        runs[s.method] = s.finalise(own[i])
        per_method[s.method] = {"selected": own[i].label, "cv_kl_high": rows[i]["cv_kl_high"], "se": rows[i]["se"]}
    winner = owner.finalise(winner)
    nested, per_fold, method_nested = _nested(searches, scorer, rule, band)
    for method, value in method_nested.items():
        per_method[method]["nested_kl_high"] = value
    return Choice(winner, runs, table[chosen]["cv_kl_high"], nested, per_fold, per_method, table, rule,
                  _reason(table, chosen, rule, band))


def _nested(searches: list[Search], scorer: Scorer, rule: str, band: float):
    """Per outer fold: the rule on the other folds (over all searches, and per method), scored on the fold."""
    total, per_fold = [0.0, 0.0], []
    method_total = {s.method: [0.0, 0.0] for s in searches}
    for j, k in enumerate(scorer.folds):
        configs = [r for s in searches for r in s.configurations(j)]
        i, _ = rank(configs, scorer, rule, band, exclude=k)
        kl_sum, weight = scorer.sums(scorer.row_kl(configs[i]), scorer.mask(only=k))
        total[0] += kl_sum
        total[1] += weight
        per_fold.append({"fold": k, "chosen": configs[i].label, "kl_high": kl_sum / weight if weight else None})
        for s in searches:
            own = s.configurations(j)
            m, _ = rank(own, scorer, rule, band, exclude=k)
            part = scorer.sums(scorer.row_kl(own[m]), scorer.mask(only=k))
            method_total[s.method][0] += part[0]
            method_total[s.method][1] += part[1]
    nested = total[0] / total[1] if total[1] else float("nan")
    return nested, per_fold, {m: (t / w if w else None) for m, (t, w) in method_total.items()}


def _reason(table: list[dict], chosen: int, rule: str, band: float) -> str:
    best = min(range(len(table)), key=lambda i: table[i]["cv_kl_high"])
    pick = table[chosen]
    if rule == "best" or chosen == best:
        simpler = sum(1 for r in table if r["complexity"] < pick["complexity"])
        return (f"{pick['label']} has the best CV KL {pick['cv_kl_high']:.4f} ± {pick['se']:.4f}"
                + (f"; none of the {simpler} simpler configurations is within {band:g} SE of it"
                   if rule == "robust" and simpler else ""))
    n_within = sum(r["within"] for r in table)
    return (f"{pick['label']} is the simplest (complexity {pick['complexity']:g}) of the {n_within} configurations "
            f"within {band:g} SE of the best, {table[best]['label']} (CV {table[best]['cv_kl_high']:.4f}): "
            f"{pick['diff_vs_best']:+.4f} ± {pick['diff_se']:.4f} (paired, by recording)")
