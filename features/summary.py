"""`python -m features summary`: what a data folder holds, and how hard it is (floor and prior KL)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.metric import class_prior_predictions, kl_divergence
from core.schema import CLASSES, HIGH_VOTE_MIN, TARGET_COLUMNS
from features.kaggle_data import KaggleFolder
from features.labels import samples

VOTER_BINS = ((1, 2), (3, 5), (6, 9), (10, 10_000))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("data"), help="competition folder (default data/)")
    parser.add_argument("--min-votes", type=int, default=HIGH_VOTE_MIN, help="high-vote threshold")


def run(args: argparse.Namespace) -> None:
    print(summarise(args.data, args.min_votes))


def voter_table(sample_table: pd.DataFrame) -> pd.DataFrame:
    """Rows, mean target entropy and largest class per voter-count bin."""
    targets = sample_table[list(TARGET_COLUMNS)].to_numpy()
    entropy = -np.where(targets > 0, targets * np.log(np.where(targets > 0, targets, 1)), 0).sum(axis=1)
    rows = []
    for lo, hi in VOTER_BINS:
        mask = sample_table["n_votes"].between(lo, hi).to_numpy()
        if not mask.any():
            continue
        main = np.bincount(targets[mask].argmax(axis=1), minlength=len(CLASSES)) / mask.sum()
        label = f">= {lo}" if hi >= 10_000 else f"{lo}-{hi}"
        rows.append({"voters": label, "rows": int(mask.sum()), "share": mask.mean(),
                     "mean_entropy": entropy[mask].mean(),
                     "largest_class": f"{CLASSES[main.argmax()]} {main.max():.0%}"})
    return pd.DataFrame(rows)


def summarise(data: Path, min_votes: int = HIGH_VOTE_MIN) -> str:
    folder = KaggleFolder(data)
    train = folder.train_table()
    evaluation = samples(train)
    targets = evaluation[list(TARGET_COLUMNS)].to_numpy()
    high = evaluation["n_votes"].to_numpy() >= min_votes
    prior = class_prior_predictions(targets, len(targets))
    lines = [
        f"data folder {data}",
        f"  train: {len(train)} label rows, {train['eeg_id'].nunique()} recordings, "
        f"{train['patient_id'].nunique()} patients, {len(evaluation)} evaluation samples "
        f"({high.sum()} with >= {min_votes} voters)",
    ]
    if (Path(data) / "test.csv").exists():
        lines.append(f"  test: {len(folder.test_table())} recordings")
    mean_target = pd.Series(targets.mean(axis=0), index=CLASSES)
    lines.append("  mean target: " + ", ".join(f"{c} {v:.3f}" for c, v in mean_target.items()))
    lines.append("  voters per sample:")
    table = voter_table(evaluation).to_string(index=False, float_format="%.2f")
    lines += ["    " + line for line in table.splitlines()]
    lines.append(f"  class-prior KL (computed): all {kl_divergence(targets, prior):.4f}, "
                 f"high-vote {kl_divergence(targets[high], prior[high]) if high.any() else float('nan'):.4f}")
    truth = Path(data) / "truth" / "summary.json"
    if truth.exists():
        kl = json.loads(truth.read_text()).get("kl", {})
        lines.append(f"  synthetic truth: KL floor all {kl.get('floor_all', float('nan')):.4f}, high-vote "
                     f"{kl.get('floor_high', float('nan')):.4f} (a predictor that knows the true distributions)")
    return "\n".join(lines)
