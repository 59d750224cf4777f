"""Inference speed of the submission build: test recordings per second, and the projected time for
10,000 test recordings against Kaggle's 9-hour limit.

    python -m bench.inference [--work WORK --data DATA] [--device auto] [--n-test 64]

Without --work it makes a demo ensemble first (the CPU presets, one epoch each, over the presets'
5 folds, on a synthetic folder with --n-test test recordings) under artifacts/bench_inference/.
Timed phases: loading the fold models (once per run), reading + computing the views, the models
(every fold, with swap TTA where the recipe says so; bf16 autocast on CUDA), the stacker.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

from core.device import resolve_device
from core.metric import normalise_rows
from core.work import Work
from features.kaggle_data import KaggleFolder
from stacking.saved_stacker import load_stacker
from submission.infer import MemoryViews, compute_test_views, load_member, predict_member

DEMO_MEMBERS = ("wave1d_cpu", "mit_b0_spec_cpu", "mit_b0_kspec_cpu")
DEMO_ARGS = ("epochs=1", "stage2_epochs=0")
KAGGLE_LIMIT_S = 9 * 3600
PROJECT_RECORDINGS = 10_000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="WORK folder after `make stack` (default: build the demo)")
    parser.add_argument("--data", type=Path, help="data folder whose test files are predicted")
    parser.add_argument("--demo-dir", type=Path, default=Path("artifacts/bench_inference"))
    parser.add_argument("--n-test", type=int, default=64, help="test recordings of the demo's synthetic folder")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    return parser.parse_args()


def make_demo(root: Path, n_test: int) -> tuple[Path, Path]:
    """Synthetic data + the CPU presets + stack, reusing whatever a previous run left."""
    from core.cli import main as cli

    data, work = root / "data", root / "work"
    if not (data / "test.csv").is_file():
        assert cli(["synth", str(data), "--n-eegs", "48", "--seed", "0", "--n-test", str(n_test)]) == 0
    for name in DEMO_MEMBERS:
        assert cli(["oof", "--model", name, "--data", str(data), "--work", str(work), *DEMO_ARGS]) == 0
    if not Work(work).stacker().is_file():
        assert cli(["stack", "--data", str(data), "--work", str(work), "trials=20"]) == 0
    return data, work


def time_inference(data: Path, work: Path, device: torch.device) -> dict:
    timings = {}
    started = time.perf_counter()
    stacker = load_stacker(work)
    members = [load_member(work, name, device) for name in stacker.members]
    timings["load_s"] = time.perf_counter() - started
    folder = KaggleFolder(data)
    table = folder.test_table().reset_index(drop=True)
    view_names = list(dict.fromkeys(v for m in members for v in m.recipe.model.views))
    started = time.perf_counter()
    computed = compute_test_views(folder, table, view_names)
    timings["views_s"] = time.perf_counter() - started
    ids = table["eeg_id"].to_numpy(np.int64)
    probs, timings["per_member_s"] = {}, {}
    for m in members:
        started = time.perf_counter()
        views = MemoryViews(m.recipe.model.views, computed.arrays, ids)
        probs[m.name] = normalise_rows(predict_member(m, views, table, device))
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings["per_member_s"][m.name] = time.perf_counter() - started
    timings["models_s"] = sum(timings["per_member_s"].values())
    started = time.perf_counter()
    stacker.apply(probs)
    timings["stack_s"] = time.perf_counter() - started
    timings.update(n=len(table), members=stacker.members, folds=sum(len(m.models) for m in members),
                   views=view_names)
    return timings


def report(t: dict, device: torch.device) -> str:
    per_recording = (t["views_s"] + t["models_s"] + t["stack_s"]) / t["n"]
    projected = t["load_s"] + PROJECT_RECORDINGS * per_recording
    return "\n".join([
        f"device {device} ({torch.get_num_threads()} torch threads), {len(t['members'])} members "
        f"({', '.join(t['members'])}), {t['folds']} fold models, views {', '.join(t['views'])}",
        f"{t['n']} test recordings: load models {t['load_s']:.1f} s, views {t['views_s']:.2f} s, "
        f"models {t['models_s']:.2f} s, stacker {t['stack_s']:.3f} s",
        "per member (all folds): " + ", ".join(f"{k} {v:.2f} s" for k, v in t["per_member_s"].items()),
        f"throughput: {1 / per_recording:.1f} test recordings/s "
        f"(views {t['n'] / t['views_s']:.1f}/s, models {t['n'] / t['models_s']:.1f}/s)",
        f"projected for {PROJECT_RECORDINGS:,} recordings: {projected / 60:.1f} min "
        f"({projected / KAGGLE_LIMIT_S:.1%} of Kaggle's 9-hour limit)",
    ])


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.work is None:
        data, work = make_demo(args.demo_dir, args.n_test)
    else:
        data, work = args.data or Path("data"), args.work
    device = resolve_device(args.device)
    print(report(time_inference(data, work, device), device))


if __name__ == "__main__":
    from core.cli import run_main

    raise SystemExit(run_main(main))
