"""KL figures (all rows / high-vote rows) for members, baselines and stackers, as JSON and as a table.

`KL all` and `KL >=N` count every row once (unweighted); `CV` is the figure the choice uses (each
recording weighing the same with recording_weights=true), with its recording-clustered SE.
"""

from __future__ import annotations

import math

import numpy as np

from core.artifacts import code_version
from core.metric import class_prior_predictions, score
from stacking.honest import Choice
from stacking.members import MemberSet


def scores(members: MemberSet, preds: np.ndarray, high_votes: int) -> dict:
    return score(members.targets, preds, members.n_votes, high_votes)


def mean_predictions(probs: np.ndarray) -> np.ndarray:
    return probs.mean(axis=0)


def member_table(members: MemberSet, high_votes: int) -> dict[str, dict]:
    return {name: scores(members, members.probs[j], high_votes) for j, name in enumerate(members.names)}


def baseline_table(members: MemberSet, high_votes: int) -> dict[str, dict]:
    prior = class_prior_predictions(members.targets, len(members.targets))
    return {"mean": scores(members, mean_predictions(members.probs), high_votes),
            "class prior": scores(members, prior, high_votes)}


def format_table(rows: dict[str, dict], high_votes: int, title: str = "") -> str:
    """Fixed-width lines: label, KL on all rows, KL on high-vote rows (then CV ± SE and the nested
    estimate, if any)."""
    width = max([len(label) for label in rows] + [len(title), 6])
    nested = any("nested_kl_high" in s for s in rows.values())
    cv = any("cv_kl_high" in s for s in rows.values())
    lines = [f"{title:<{width}}  {'KL all':>8}  {f'KL >={high_votes}':>8}" + ("        CV ± SE" if cv else "")
             + ("    nested" if nested else "")]
    for label, s in rows.items():
        extra = f"  {_fmt(s.get('cv_kl_high'))} ± {s.get('se', float('nan')):.4f}" if cv else ""
        extra += f"  {_fmt(s.get('nested_kl_high'))}" if nested else ""
        lines.append(f"{label:<{width}}  {_fmt(s['kl_all'])}  {_fmt(s['kl_high'])}{extra}")
    return "\n".join(lines)


def configuration_table(choice: Choice) -> str:
    """Every configuration the rule compared: CV ± SE, paired difference to the best ± SE, complexity."""
    width = max([len(r["label"]) for r in choice.table] + [13])
    lines = [f"{'configuration':<{width}}  {'cplx':>4}  {'CV':>7} ± {'SE':<6}  {'vs best':>8} ± {'SE':<6}  within"]
    for r in choice.table:
        mark = " *chosen" if r.get("chosen") else ""
        lines.append(f"{r['label']:<{width}}  {r['complexity']:4g}  {r['cv_kl_high']:7.4f} ± {r['se']:.4f}  "
                     f"{r['diff_vs_best']:+8.4f} ± {r['diff_se']:.4f}  {'yes' if r['within'] else 'no':>6}{mark}")
    lines.append(f"rule {choice.rule}: {choice.reason}")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:8.4f}" if value is not None and not math.isnan(value) else f"{'-':>8}"


def stacker_table(members: MemberSet, choice: Choice, high_votes: int) -> dict[str, dict]:
    """Each stacker's selected configuration; `nested` repeats its inner choice (policy, trial) per fold."""
    return {run.label: {**scores(members, run.oof, high_votes),
                        "cv_kl_high": choice.per_method[method]["cv_kl_high"], "se": choice.per_method[method]["se"],
                        "nested_kl_high": choice.per_method[method]["nested_kl_high"]}
            for method, run in choice.runs.items()}


def build_report(members: MemberSet, choice: Choice, config: dict, high_votes: int, timings: dict) -> dict:
    stackers = {}
    for method, run in choice.runs.items():
        stackers[method] = {"policy": run.policy.label, "variant": run.variant,
                            **scores(members, run.oof, high_votes),
                            "cv_kl_high": choice.per_method[method]["cv_kl_high"],
                            "cv_se": choice.per_method[method]["se"],
                            "nested_kl_high": choice.per_method[method]["nested_kl_high"],
                            **run.details}
    return {
        "members": members.names,
        "n_rows": int(len(members.targets)),
        "high_votes": high_votes,
        "member_kl": member_table(members, high_votes),
        "baselines": baseline_table(members, high_votes),
        "stackers": stackers,
        "configurations": choice.table,
        "final": {
            "method": choice.run.method, "policy": choice.run.policy.label, "variant": choice.run.variant,
            "label": choice.run.label, **scores(members, choice.run.oof, high_votes),
            "cv_kl_high": choice.cv_kl_high, "cv_se": next(r["se"] for r in choice.table if r.get("chosen")),
            "nested_kl_high": choice.nested_kl_high, "nested_per_fold": choice.per_fold,
            "rule": choice.rule, "reason": choice.reason,
        },
        "config": config,
        "code_version": code_version(),
        "timings_s": timings,
    }


def final_line(choice: Choice, high_votes: int) -> str:
    se = next(r["se"] for r in choice.table if r.get("chosen"))
    return (f"final: {choice.run.label}, chosen by the {choice.rule} rule on CV KL on >={high_votes}-vote rows "
            f"{choice.cv_kl_high:.4f} ± {se:.4f} (nested estimate of the choice: {choice.nested_kl_high:.4f})")
