"""Quality benchmark: OOF KL of a list of recipes and of their mean blend, next to the KL floor and prior.

    python -m bench.quality --data data_synth --work artifacts/bench_quality \
        --models wave1d_cpu,mit_b0_spec_cpu,mit_b0_kspec_cpu [--args "epochs=4"]

Trains each recipe over the shared folds (resuming whatever is already there), then prints a table:
model, KL on all rows and on high-vote rows, wall time; the equal-weight mean of the members; and the
synthetic folder's floor (a predictor that knows the true distributions) and class-prior KL.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.cli import main as cli
from core.metric import class_prior_predictions, score
from core.schema import TARGET_COLUMNS, VOTE_COLUMNS
from core.work import Work

DEFAULT_MODELS = "wave1d_cpu,mit_b0_spec_cpu,mit_b0_kspec_cpu"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data_synth"))
    parser.add_argument("--work", type=Path, default=Path("artifacts/bench_quality"))
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--args", default="", help="overrides applied to every recipe, e.g. 'epochs=4'")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows, frames = [], []
    for model in args.models.split(","):
        started = time.perf_counter()
        code = cli(["oof", "--model", model, "--data", str(args.data), "--work", str(args.work),
                         *args.args.split()])
        if code != 0:
            raise SystemExit(f"{model} failed (exit {code})")
        frame = pd.read_parquet(Work(args.work).oof(model))
        frames.append(frame)
        rows.append({"model": model, **_kl(frame, frame[list(VOTE_COLUMNS)].to_numpy()),
                     "wall_s": time.perf_counter() - started})
    mean = np.mean([f[list(VOTE_COLUMNS)].to_numpy() for f in frames], axis=0)
    rows.append({"model": "mean blend", **_kl(frames[0], mean), "wall_s": np.nan})
    targets = frames[0][list(TARGET_COLUMNS)].to_numpy()
    rows.append({"model": "class prior (computed)", **_kl(frames[0], class_prior_predictions(targets, len(targets))),
                 "wall_s": np.nan})
    truth = args.data / "truth" / "summary.json"
    if truth.exists():
        kl = json.loads(truth.read_text())["kl"]
        rows.append({"model": "floor (true distributions)", "kl_all": kl["floor_all"], "kl_high": kl["floor_high"],
                     "wall_s": np.nan})
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _kl(frame: pd.DataFrame, preds: np.ndarray) -> dict:
    s = score(frame[list(TARGET_COLUMNS)].to_numpy(), preds, frame["n_votes"].to_numpy())
    return {"kl_all": s["kl_all"], "kl_high": s["kl_high"]}


if __name__ == "__main__":
    from core.cli import run_main

    raise SystemExit(run_main(main))
