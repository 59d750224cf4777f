"""`python -m stacking report`: WORK/report/index.html with PNG figures of the members and the stack.

KL per model and stacked (all / high-vote rows; per fold, class and voter bucket), learning curves,
the confusion of the argmax, per-class reliability with bin counts, the test-vs-OOF class mix, the
members' correlation, the stack weights, the blend's bias and temperature, the Optuna history and
LightGBM importances (submission.report_sections), and three high-vote example recordings (best,
median, worst stacked KL) drawn with `features.plot` beside their votes and predictions. Reads the
OOF sets and their shards, WORK/stack/ and, for the examples, the train recordings under --data.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import atomic_path
from core.errors import UserFacingError
from core.metric import kl_per_row, score
from core.schema import VOTE_COLUMNS
from core.work import Work
from features.kaggle_data import KaggleFolder
from features.plot import find_row, plot_window
from stacking.members import MemberSet, load_members
from stacking.report import baseline_table, member_table
from submission import report_plots, report_sections
from submission.report_sections import figure as _figure

log = logging.getLogger(__name__)

N_EXAMPLES = 3


def build_report(work: Path | str, data: Path | str, out: Path | None = None) -> Path:
    work, data = Path(work), Path(data)
    out = Path(out) if out else Work(work).report_dir()
    stack_report = _read_stack_report(work)
    members = load_members(work, stack_report["members"])
    stacked = _stack_oof(work, members)
    high_votes = int(stack_report.get("high_votes", 10))
    final = stack_report["final"]["method"]
    sections = [_kl_section(members, stacked, final, high_votes, out),
                report_sections.breakdown_section(members, stacked, out),
                report_sections.voter_section(members, stacked, out),
                report_sections.learning_section(work, members, out),
                _calibration_section(members, stacked, out),
                report_sections.class_mix_section(work, members, stacked, out),
                report_sections.correlation_section(members, out),
                _weights_section(stack_report, out),
                report_sections.blend_section(work, stack_report, out),
                report_sections.optuna_section(work, stack_report, out),
                report_sections.importance_section(work, stack_report, out),
                _examples_section(members, stacked, data, high_votes, out)]
    page = _page(stack_report, sections)
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page)
    return out / "index.html"


def _read_stack_report(work: Path) -> dict:
    path = Work(work).stack_report()
    if not path.is_file():
        raise UserFacingError(f"{path} is missing: run `make stack` in this WORK folder first")
    return json.loads(path.read_text())


def _stack_oof(work: Path, members: MemberSet) -> np.ndarray:
    """The stack's OOF probabilities in the members' row order."""
    path = Work(work).stack_oof()
    if not path.is_file():
        raise UserFacingError(f"{path} is missing: run `make stack` in this WORK folder first")
    frame = pd.read_parquet(path)
    key = list(members.keys.columns)
    merged = members.keys.merge(frame[[*key, *VOTE_COLUMNS]], on=key, how="left")
    if merged[list(VOTE_COLUMNS)].isna().any(axis=None):
        raise UserFacingError(f"{path} does not cover the members' OOF rows: rerun `make stack`")
    return merged[list(VOTE_COLUMNS)].to_numpy(np.float64)


def _kl_section(members: MemberSet, stacked: np.ndarray, final: str, high_votes: int, out: Path) -> str:
    rows = {**member_table(members, high_votes), **baseline_table(members, high_votes),
            f"stack ({final})": score(members.targets, stacked, members.n_votes, high_votes)}
    report_plots.kl_bars(rows, high_votes, out / "kl.png")
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['kl_all']:.4f}</td><td>{v['kl_high']:.4f}</td></tr>"
                    for k, v in rows.items())
    return (f"<h2>KL divergence</h2><table><tr><th>model</th><th>KL all ({members.targets.shape[0]} rows)</th>"
            f"<th>KL &ge;{high_votes} voters</th></tr>{table}</table>" + _figure("KL per model and stacked", "kl.png"))


def _calibration_section(members: MemberSet, stacked: np.ndarray, out: Path) -> str:
    report_plots.confusion(members.targets, stacked, "Stacked OOF: voted vs predicted class", out / "confusion.png")
    report_plots.reliability(members.targets, stacked, out / "reliability.png")
    return ("<h2>Classes and calibration</h2>"
            + _figure("Confusion of the argmax (stack)", "confusion.png",
                      "Rows are the class most experts voted for; each row sums to 1.")
            + _figure("Reliability per class (stack)", "reliability.png",
                      "Points on the diagonal: predicted probabilities match the vote shares. The number by each "
                      "point (and the grey bars) is how many rows fall in that bin: few rows, noisy point."))


def _weights_section(stack_report: dict, out: Path) -> str:
    stackers = {m: s["weights"] for m, s in stack_report.get("stackers", {}).items()
                if isinstance(s.get("weights"), dict)}
    final = stack_report["final"]["method"]
    if not stackers:
        return "<h2>Stack weights</h2><p>No weighted stacker was fitted.</p>"
    report_plots.weights(stackers, final, out / "weights.png")
    note = " LightGBM has no member weights: it learns from the members' probabilities and their spread." \
        if final == "lgbm" else ""
    return "<h2>Stack weights</h2>" + _figure("Stack weights", "weights.png",
                                              f"Blend and ensemble-selection weights per member.{note}")


def pick_examples(members: MemberSet, stacked: np.ndarray, high_votes: int) -> dict[str, int]:
    """{best, median, worst: row index} by stacked KL among the high-vote rows (all rows if too few),
    each from a different recording where there are enough."""
    candidates = np.flatnonzero(members.n_votes >= high_votes)
    if len(candidates) < N_EXAMPLES:
        candidates = np.arange(len(members.n_votes))
    order = candidates[np.argsort(kl_per_row(members.targets[candidates], stacked[candidates]), kind="stable")]
    eeg = members.keys["eeg_id"].to_numpy()
    picks: dict[str, int] = {}
    for rank, position in (("best", 0), ("worst", -1), ("median", None)):
        free = [int(i) for i in order if eeg[i] not in {eeg[p] for p in picks.values()}] or [int(i) for i in order]
        picks[rank] = free[len(free) // 2 if position is None else position]
    return {rank: picks[rank] for rank in ("best", "median", "worst")}


def _examples_section(members: MemberSet, stacked: np.ndarray, data: Path, high_votes: int, out: Path) -> str:
    folder = KaggleFolder(data)
    parts = ["<h2>Example recordings</h2><p>High-vote OOF rows with the lowest, median and highest stacked "
             "KL: traces and spectrograms as the models see them, then votes and predictions.</p>"]
    for rank, i in pick_examples(members, stacked, high_votes).items():
        keys = members.keys.iloc[i]
        label_id = int(keys["label_id"]) if "label_id" in keys else None
        split, row = find_row(folder, int(keys["eeg_id"]), label_id)
        plot_window(folder, split, row, out / f"example_{rank}_window.png")
        kl = float(kl_per_row(members.targets[i:i + 1], stacked[i:i + 1])[0])
        preds = {name: members.probs[j, i] for j, name in enumerate(members.names)} | {"stack": stacked[i]}
        title = f"eeg_id {int(keys['eeg_id'])}: {int(members.n_votes[i])} voters, stacked KL {kl:.3f}"
        report_plots.example_predictions(members.targets[i], preds, title, out / f"example_{rank}_votes.png")
        parts.append(f"<h3>{rank}: {html.escape(title)}</h3>"
                     + _figure(f"{rank} example: window", f"example_{rank}_window.png")
                     + _figure(f"{rank} example: votes and predictions", f"example_{rank}_votes.png"))
    return "".join(parts)


def _page(stack_report: dict, sections: list[str]) -> str:
    final = stack_report["final"]
    head = (f"<p>Members: {html.escape(', '.join(stack_report['members']))}. Final stacker: "
            f"{html.escape(final['method'])} ({html.escape(str(final['policy']))}), CV KL on high-vote rows "
            f"{final['cv_kl_high']:.4f}, nested estimate {final['nested_kl_high']:.4f}.</p>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}img{max-width:100%}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
             "td:first-child{text-align:left}figure{margin:1em 0}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>hms-stack report</title><style>{style}"
            f"</style></head><body><h1>hms-stack report</h1>{head}{''.join(sections)}</body></html>\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work", type=Path, default=Path("artifacts"), help="work folder after `make stack`")
    parser.add_argument("--data", type=Path, default=Path("data"), help="Kaggle data folder (example recordings)")
    parser.add_argument("--out", type=Path, help="report folder (default WORK/report)")


def run(args: argparse.Namespace) -> None:
    page = build_report(args.work, args.data, args.out)
    print(f"wrote {page}")
