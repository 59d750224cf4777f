"""`python -m oof folds`: write WORK/folds.parquet for DATA (or check the existing one)."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.work import Work
from oof.folds import create_or_load_folds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--work", type=Path, default=Path("artifacts"))
    parser.add_argument("--n-folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)


def run(args: argparse.Namespace) -> None:
    folds = create_or_load_folds(args.data, args.work, n_folds=args.n_folds, seed=args.seed)
    sizes = folds.groupby("fold").agg(samples=("label_id", "size"), patients=("patient_id", "nunique"))
    print(f"{Work(args.work).folds()}: " + "; ".join(
        f"fold {k}: {r.samples} samples, {r.patients} patients" for k, r in sizes.iterrows()))
