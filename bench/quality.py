"""Quality benchmark: OOF KL of every CPU preset, the LightGBM member, their mean and the stack, next to
the class prior and the KL floor.

    python -m bench.quality --data data_synth --work artifacts/bench_quality [--models a,b] [--args "epochs=4"]

Makes the folds (5 unless --n-folds), trains each recipe over them (resuming whatever is already
there), stacks the members (`hms-stack stack`, no submission), then prints a table: model, KL on all
rows and on >= 10-voter rows, the share of the prior-to-floor distance it closes on those rows, wall
time; the equal-weight mean of the members; the stack; the class prior and the floor (a predictor
that knows the true distributions, from the synthetic folder's truth/).
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

DEFAULT_MODELS = ("lgbm_bands,wave1d_cpu,effnet1d_wave_cpu,mit_b0_spec_cpu,mit_b0_kspec_cpu,effb0_kspec_eegspec_cpu,"
                  "effb5_raw_image_cpu,mixnet_pair_mel_cpu,specnet1d_wave_cpu")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data_synth"))
    parser.add_argument("--work", type=Path, default=Path("artifacts/bench_quality"))
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--args", default="", help="overrides applied to every recipe, e.g. 'epochs=4'")
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--stack-args", default="trials=30", help="settings of the stack, e.g. 'trials=50'")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    _run(["folds", "--data", str(args.data), "--work", str(args.work), "--n-folds", str(args.n_folds)], "folds")
    rows, frames = [], []
    for model in args.models.split(","):
        started = time.perf_counter()
        _run(["oof", "--model", model, "--data", str(args.data), "--work", str(args.work), *args.args.split()], model)
        frame = pd.read_parquet(Work(args.work).oof(model))
        frames.append(frame)
        rows.append({"model": model, **_kl(frame, frame[list(VOTE_COLUMNS)].to_numpy()),
                     "wall_s": time.perf_counter() - started, "train_s": _train_seconds(Work(args.work), model)})
    mean = np.mean([f[list(VOTE_COLUMNS)].to_numpy() for f in frames], axis=0)
    rows.append({"model": "mean", **_kl(frames[0], mean), "wall_s": np.nan})
    started = time.perf_counter()
    _run(["stack", "--data", str(args.data), "--work", str(args.work), "submission=false",
          f"models={','.join(args.models.split(','))}", *args.stack_args.split()], "stack")
    stack = pd.read_parquet(Work(args.work).stack_oof())
    chosen = json.loads(Work(args.work).stack_report().read_text())["final"]["method"]
    rows.append({"model": f"stack ({chosen})", **_kl(stack, stack[list(VOTE_COLUMNS)].to_numpy()),
                 "wall_s": time.perf_counter() - started})
    targets = frames[0][list(TARGET_COLUMNS)].to_numpy()
    prior = {"model": "class prior", **_kl(frames[0], class_prior_predictions(targets, len(targets))), "wall_s": np.nan}
    rows.append(prior)
    truth = args.data / "truth" / "summary.json"
    floor = None
    if truth.exists():
        kl = json.loads(truth.read_text())["kl"]
        floor = kl["floor_high"]
        rows.append({"model": "floor (true distributions)", "kl_all": kl["floor_all"], "kl_high": floor,
                     "wall_s": np.nan})
    table = pd.DataFrame(rows)
    if floor is not None:
        table.insert(3, "gap_closed_high", (prior["kl_high"] - table["kl_high"]) / (prior["kl_high"] - floor))
    print(f"{args.data}: {len(frames[0])} evaluation samples, {int((frames[0]['n_votes'] >= 10).sum())} with >= 10 "
          f"voters, {args.n_folds} folds")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _run(argv: list[str], what: str) -> None:
    code = cli(argv)
    if code != 0:
        raise SystemExit(f"{what} failed (exit {code})")


def _train_seconds(work: Work, model: str) -> float:
    """The folds' training time as the member's OOF record has it: also right for a member this run only
    resumed (whose wall_s is the seconds to find it done)."""
    seconds = json.loads(work.oof_json(model).read_text()).get("seconds_per_fold", {})
    return float(sum(seconds.values())) if seconds else np.nan


def _kl(frame: pd.DataFrame, preds: np.ndarray) -> dict:
    s = score(frame[list(TARGET_COLUMNS)].to_numpy(), preds, frame["n_votes"].to_numpy())
    return {"kl_all": s["kl_all"], "kl_high": s["kl_high"]}


if __name__ == "__main__":
    from core.cli import run_main

    raise SystemExit(run_main(main))
