"""The report's diagnostic sections (submission.report_page assembles them): learning curves, KL by
fold / class / voter count, member correlation, the blend's bias and temperature, the Optuna history,
LightGBM importances and the test-vs-OOF class mix. Each returns an HTML fragment and writes its PNG;
a section whose inputs are absent says so in one sentence instead of failing the report.
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import read_provenance
from core.metric import EPS, kl_per_row
from core.schema import CLASSES, VOTE_COLUMNS
from core.work import Work
from stacking.members import MemberSet
from submission import report_plots

log = logging.getLogger(__name__)

VOTER_BUCKETS = (("1-2 voters", 1, 2), ("3-9 voters", 3, 9), (">= 10 voters", 10, None))
TOP_FEATURES = 20


def figure(title: str, name: str, caption: str = "") -> str:
    text = f"<p>{html.escape(caption)}</p>" if caption else ""
    return f'<figure><img src="{name}" alt="{html.escape(title)}"><figcaption>{html.escape(title)}</figcaption>' \
           f"{text}</figure>"


def table(header: list[str], rows: list[list]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + f"</tr>{cells}</table>"


def _cell(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else html.escape(str(value))


def _models(members: MemberSet, stacked: np.ndarray) -> dict[str, np.ndarray]:
    return {**{n: members.probs[j] for j, n in enumerate(members.names)}, "stack": stacked}


# ---- learning curves ------------------------------------------------------------------------
def fold_histories(work: Path, names: list[str]) -> dict[str, dict[int, list[dict]]]:
    """{member: {fold: history rows}} from the OOF shards' metadata (`fit.history`); members without shards
    (imported OOF sets) are left out."""
    out: dict[str, dict[int, list[dict]]] = {}
    for name in names:
        folds = {}
        for shard in sorted(Work(work).oof_shard(name, 0).parent.glob(f"{name}.fold*.parquet")):
            meta = read_provenance(shard)
            if meta.get("fit", {}).get("history"):
                folds[int(meta["fold"])] = meta["fit"]["history"]
        if folds:
            out[name] = dict(sorted(folds.items()))
    return out


def learning_section(work: Path, members: MemberSet, out: Path) -> str:
    histories = fold_histories(work, members.names)
    if not histories:
        return "<h2>Learning curves</h2><p>No member has per-fold training histories (OOF shards).</p>"
    report_plots.learning_curves(histories, out / "learning_curves.png")
    return "<h2>Learning curves</h2>" + figure(
        "Validation KL and train loss per epoch and fold", "learning_curves.png",
        "From WORK/oof/shards/NAME.foldK.parquet metadata. A curve still falling at the last epoch: more epochs "
        "may help; a valid KL rising while the train loss falls: overfitting.")


# ---- KL per fold, per class, per voter bucket -------------------------------------------------
def class_kl(targets: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """(6,) each class's share of the mean KL: mean over rows of t_c log(t_c / p_c) (they sum to the KL)."""
    p = np.clip(preds, EPS, 1 - EPS)
    terms = np.where(targets > 0, targets * np.log(np.where(targets > 0, targets, 1.0) / p), 0.0)
    return terms.mean(axis=0)


def breakdown_section(members: MemberSet, stacked: np.ndarray, out: Path) -> str:
    models = _models(members, stacked)
    folds = [int(k) for k in members.folds]
    per_fold = np.array([[kl_per_row(members.targets[members.fold == k], p[members.fold == k]).mean()
                          for k in folds] for p in models.values()])
    report_plots.heatmap(per_fold, list(models), [f"fold {k}" for k in folds], "OOF KL per fold (all rows)",
                         out / "kl_per_fold.png", cmap="viridis_r", label="KL")
    per_class = {name: class_kl(members.targets, p).tolist() for name, p in models.items()}
    report_plots.grouped_bars(per_class, list(CLASSES), "Each class's part of the OOF KL (parts sum to the KL)",
                              "KL contribution", out / "kl_per_class.png")
    rows = [[name, *per_fold[i].tolist()] for i, name in enumerate(models)]
    counts = [int((members.fold == k).sum()) for k in folds]
    return ("<h2>KL per fold and per class</h2>"
            + table(["model", *[f"fold {k} ({n} rows)" for k, n in zip(folds, counts, strict=True)]], rows)
            + figure("KL per fold", "kl_per_fold.png", "A fold much worse than the others: a hard patient "
                                                       "group or an unlucky run.")
            + figure("KL per class", "kl_per_class.png", "Sum over rows of t log(t/p) in that class's column, "
                                                         "divided by the row count."))


def voter_section(members: MemberSet, stacked: np.ndarray, out: Path) -> str:
    models = _models(members, stacked)
    masks = [(label, (members.n_votes >= lo) & (members.n_votes <= (hi or np.inf))) for label, lo, hi in VOTER_BUCKETS]
    kl = {name: [float(kl_per_row(members.targets[m], p[m]).mean()) if m.any() else float("nan") for _, m in masks]
          for name, p in models.items()}
    labels = [f"{label} ({int(m.sum())} rows)" for label, m in masks]
    report_plots.grouped_bars(kl, labels, "OOF KL by number of voters", "KL divergence", out / "kl_voters.png")
    return ("<h2>KL by voter count</h2>" + table(["model", *labels], [[n, *v] for n, v in kl.items()])
            + figure("KL by voter bucket", "kl_voters.png", "Few-voter rows have spiky targets: their KL is "
                                                            "higher and weighs less in the score that matters."))


# ---- members --------------------------------------------------------------------------------
def correlation_section(members: MemberSet, out: Path) -> str:
    if len(members.names) < 2:
        return "<h2>Member correlation</h2><p>One member: nothing to correlate.</p>"
    probs = np.corrcoef(members.probs.reshape(len(members.names), -1))
    errors = np.corrcoef(np.stack([kl_per_row(members.targets, p) for p in members.probs]))
    report_plots.heatmap(probs, members.names, members.names, "Correlation of OOF probabilities",
                         out / "correlation_probs.png", fmt="{:.2f}", label="Pearson r")
    report_plots.heatmap(errors, members.names, members.names, "Correlation of per-row KL",
                         out / "correlation_kl.png", fmt="{:.2f}", label="Pearson r")
    return ("<h2>Member correlation</h2>"
            + figure("Correlation of the members' OOF probabilities", "correlation_probs.png",
                     "All rows and classes flattened. Members that agree less have more to add to a stack.")
            + figure("Correlation of the members' per-row KL", "correlation_kl.png",
                     "Whether the members fail on the same rows."))


def blend_section(work: Path, stack_report: dict, out: Path) -> str:
    blend = stack_report.get("stackers", {}).get("blend") or _saved_blend(work)
    if not blend or "bias" not in blend:
        return "<h2>Blend bias and temperature</h2><p>No blend was fitted.</p>"
    bias, temperature = [float(b) for b in blend["bias"]], float(blend["temperature"])
    report_plots.grouped_bars({"bias": bias}, list(CLASSES), f"Blend: per-class bias (log space), temperature "
                              f"{temperature:.3f}", "bias added to the log-probabilities", out / "blend_bias.png")
    flat = " Here T is so large that the members hardly count: the blend is about softmax(bias), a fitted " \
           "class prior." if temperature > 100 else ""
    return ("<h2>Blend bias and temperature</h2>"
            + table(["temperature", *CLASSES], [[temperature, *bias]])
            + figure("Blend bias per class", "blend_bias.png",
                     f"The blend predicts softmax(weighted members / T + bias), members in {blend.get('space')} "
                     f"space: T > 1 softens them, a positive bias raises that class everywhere.{flat}"))


def _saved_blend(work: Path) -> dict | None:
    path = Work(work).stacker()
    return json.loads(path.read_text()).get("blend") if path.is_file() else None


# ---- LightGBM stacker -------------------------------------------------------------------------
def optuna_section(work: Path, stack_report: dict, out: Path) -> str:
    head = "<h2>Optuna history (LightGBM stacker)</h2>"
    lgbm = stack_report.get("stackers", {}).get("lgbm")
    db = Work(work).optuna_db()
    if not lgbm or "study" not in lgbm:
        return head + "<p>The LightGBM stacker was not run: no study.</p>"
    if not db.is_file():  # load_study on a missing sqlite file would create an empty one
        return head + f"<p>{html.escape(str(db))} is absent (a study stored elsewhere, or deleted).</p>"
    try:
        trials = _study_trials(f"sqlite:///{db.resolve()}", lgbm["study"])
    except Exception as err:  # an unreadable or foreign database: the rest of the report still matters
        reason = html.escape(type(err).__name__)
        return head + f"<p>The study {html.escape(lgbm['study'])} does not load ({reason}).</p>"
    complete = [(t.number, t.value) for t in trials if t.state.name == "COMPLETE"]
    pruned = [(t.number, t.intermediate_values[max(t.intermediate_values)]) for t in trials
              if t.state.name == "PRUNED" and t.intermediate_values]
    if not complete:
        return head + "<p>The study has no finished trial.</p>"
    numbers, values = [n for n, _ in complete], [v for _, v in complete]
    report_plots.optuna_history(numbers, values, pruned, np.minimum.accumulate(values).tolist(),
                                f"{lgbm['study']}: {len(trials)} trials", out / "optuna.png")
    return head + figure("Optuna trials", "optuna.png", f"{len(complete)} complete, {len(pruned)} pruned; the "
                                                        f"final configuration is trial {lgbm.get('trial')}.")


def _study_trials(storage: str, name: str) -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def importance_section(work: Path, stack_report: dict, out: Path) -> str:
    if stack_report["final"]["method"] != "lgbm":
        return ""  # the saved boosters exist only when LightGBM is the final stacker
    saved = json.loads(Work(work).stacker().read_text())
    gains, names = _gains(work, saved, stack_report["members"])
    if gains is None:
        return "<h2>LightGBM importances</h2><p>The saved boosters are missing.</p>"
    if not gains.any():
        return "<h2>LightGBM importances</h2><p>The saved boosters made no split (too few rows?): every gain is 0.</p>"
    top = np.argsort(gains, kind="stable")[::-1][:TOP_FEATURES]
    report_plots.importances([names[i] for i in top], gains[top], "LightGBM stacker: feature gain",
                             out / "lgbm_importance.png")
    return "<h2>LightGBM importances</h2>" + figure(
        f"Top {len(top)} features by gain", "lgbm_importance.png",
        "MEMBER:CLASS is a member's probability; stat:CLASS are summaries across members.")


def _gains(work: Path, saved: dict, members: list[str]) -> tuple[np.ndarray | None, list[str]]:
    import lightgbm as lgb

    from stacking.meta_features import feature_names

    total, names = None, []
    for fold in saved.get("lgbm_folds", []):
        path = Work(work).stack_dir() / fold["file"]
        if not path.is_file():
            return None, []
        booster = lgb.Booster(model_file=str(path))
        names = feature_names(members, np.asarray(fold["raw_members"]))
        gain = booster.feature_importance("gain")
        if len(gain) != len(names):  # other feature code: name them as LightGBM does
            names = booster.feature_name()
        total = gain if total is None else total + gain
    return total, names


# ---- test vs OOF ---------------------------------------------------------------------------------
def class_mix_section(work: Path, members: MemberSet, stacked: np.ndarray, out: Path) -> str:
    path = Work(work).stack_test()
    if not path.is_file():
        return "<h2>Test vs OOF class mix</h2><p>No stacked test predictions (WORK/stack/test.parquet).</p>"
    test = pd.read_parquet(path)[list(VOTE_COLUMNS)].to_numpy(np.float64)
    series = {"OOF votes": members.targets.mean(axis=0).tolist(), "OOF stacked": stacked.mean(axis=0).tolist(),
              f"test stacked ({len(test)} rows)": test.mean(axis=0).tolist()}
    report_plots.grouped_bars(series, list(CLASSES), "Class mix: mean probability per class", "mean probability",
                              out / "class_mix.png", fmt="%.2f")
    return ("<h2>Test vs OOF class mix</h2>" + table(["", *CLASSES], [[k, *v] for k, v in series.items()])
            + figure("Class mix", "class_mix.png", "A test mix far from the OOF one: a shifted test set, or "
                                                   "test inputs the models read differently."))
