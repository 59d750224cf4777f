"""`python -m stacking`: load the OOF sets, fit every stacker honestly, pick one on CV, write the outputs."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from features.artifacts import write_json, write_parquet
from features.errors import UserFacingError
from features.schema import HIGH_VOTE_MIN, TARGET_COLUMNS, VOTE_COLUMNS
from oof.folds import folds_path, read_folds
from stacking.blend import SPACES, BlendConfig, fit_blend
from stacking.honest import Choice, PolicySearch, Search, choose
from stacking.lgbm import LgbmConfig, LgbmSearch, default_storage
from stacking.members import MemberSet, load_members
from stacking.policy import AUTO_THRESHOLDS, WEIGHTINGS, RowPolicy, candidate_policies, require_rows
from stacking.report import baseline_table, build_report, final_line, format_table, member_table, stacker_table
from stacking.saved_stacker import from_run, save_stacker
from stacking.selection import SelectionConfig, select_ensemble
from stacking.submission import expected_ids, write_submission

log = logging.getLogger(__name__)

METHODS = ("blend", "selection", "lgbm")


@dataclass(frozen=True)
class StackConfig:
    work: Path = Path("artifacts")
    data: Path = Path("data")
    models: tuple[str, ...] | None = None
    methods: tuple[str, ...] = METHODS
    min_votes: str = str(HIGH_VOTE_MIN)
    vote_weighting: str = "none"
    auto_thresholds: tuple[int, ...] = AUTO_THRESHOLDS
    high_votes: int = HIGH_VOTE_MIN
    blend: BlendConfig = field(default_factory=BlendConfig)
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    lgbm: LgbmConfig = field(default_factory=LgbmConfig)
    submission: bool = True


def run_stack(config: StackConfig, show: Callable[[str], None] = lambda text: None) -> dict:
    """Fit, choose and write; `show` receives the tables as they become available. Returns the report."""
    # BLAS gets LightGBM's thread count (default 1): on a busy 2-core machine a second OpenBLAS thread
    # made the blend 3x slower, every parallel section waiting for a descheduled thread.
    with threadpool_limits(limits=config.lgbm.threads, user_api="blas"):
        return _stack(config, show)


def _stack(config: StackConfig, show: Callable[[str], None]) -> dict:
    started = time.perf_counter()
    folds = read_folds(config.work) if folds_path(config.work).exists() else None
    members = load_members(config.work, list(config.models) if config.models else None, folds)
    high = members.n_votes >= config.high_votes
    policies = candidate_policies(config.min_votes, config.vote_weighting, config.auto_thresholds)
    _check_inputs(config, members, high, policies)
    show(format_table({**member_table(members, config.high_votes), **baseline_table(members, config.high_votes)},
                      config.high_votes, title=f"{len(members.names)} members, {len(high)} rows"))
    timings = {"load": time.perf_counter() - started}
    searches = _searches(config, members, policies, high, timings)
    t0 = time.perf_counter()
    choice = choose(searches, members, high)
    timings["choose"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    report = build_report(members, choice, _config_dict(config), config.high_votes, timings)
    report["submission"] = _write_outputs(config, members, choice, report)
    show(format_table(stacker_table(members, choice, config.high_votes), config.high_votes, title="stacker"))
    show(final_line(choice, config.high_votes))
    return report


def _check_inputs(config: StackConfig, members: MemberSet, high: np.ndarray, policies: list[RowPolicy]) -> None:
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown or not config.methods:
        raise UserFacingError(f"--methods must name some of {', '.join(METHODS)}, got {', '.join(unknown)}")
    if not high.any():
        raise UserFacingError(f"{config.work / 'oof'}: no OOF rows with >= {config.high_votes} voters to score "
                              f"on; lower --high-votes")
    for policy in policies:
        require_rows(policy, members.n_votes, str(config.work / "oof"))
    if len(members.folds) < 2:
        raise UserFacingError(f"{config.work / 'oof'}: every row is in one fold; stacking needs OOF sets over "
                              f"at least two folds")
    if config.submission and members.test_ids is not None and _has_test_ids(config.data):
        ids, source = expected_ids(config.data)
        if set(ids.tolist()) != set(members.test_ids.tolist()):
            raise UserFacingError(f"{config.work / 'test'}: members' test eeg_ids differ from {source}; predict "
                                  f"that test set with every member, or pass the matching --data")


def _has_test_ids(data: Path) -> bool:
    return (data / "sample_submission.csv").is_file() or (data / "test.csv").is_file()


def _searches(config: StackConfig, members: MemberSet, policies: list[RowPolicy], high: np.ndarray,
              timings: dict) -> list[Search]:
    searches: list[Search] = []
    for method in config.methods:
        t0 = time.perf_counter()
        if method == "blend":
            fit = lambda p, t, w, seed: fit_blend(p, t, w, replace(config.blend, seed=config.blend.seed + seed))
            searches.append(PolicySearch("blend", members, policies, fit, high, config.blend.seed))
        elif method == "selection":
            fit = lambda p, t, w, seed: select_ensemble(
                p, t, w, replace(config.selection, seed=config.selection.seed + seed))
            searches.append(PolicySearch("selection", members, policies, fit, high, config.selection.seed))
        else:
            storage = config.lgbm.storage or default_storage(config.work)
            search = LgbmSearch(members, policies, config.lgbm, config.high_votes, storage)
            search.tune()
            searches.append(search)
        timings[method] = time.perf_counter() - t0
        log.info("%s: fitted in %.1f s", method, timings[method])
    return searches


def _write_outputs(config: StackConfig, members: MemberSet, choice: Choice, report: dict) -> str | None:
    stack = config.work / "stack"
    provenance = {"method": choice.run.method, "policy": choice.run.policy.label, "members": members.names}
    oof = members.keys.copy()
    oof["fold"] = members.fold
    oof[list(VOTE_COLUMNS)] = choice.run.oof
    oof[list(TARGET_COLUMNS)] = members.targets
    oof["n_votes"] = members.n_votes
    write_parquet(stack / "oof.parquet", oof, provenance)
    save_stacker(stack, from_run(choice.run, members.names))
    submission = None
    if choice.run.test is not None:
        test = pd.DataFrame(choice.run.test, columns=list(VOTE_COLUMNS))
        test.insert(0, "eeg_id", members.test_ids)
        write_parquet(stack / "test.parquet", test, provenance)
        if config.submission and _has_test_ids(config.data):
            write_submission(test, config.data, config.work / "submission.csv")
            submission = str(config.work / "submission.csv")
        elif config.submission:
            log.warning("%s has no sample_submission.csv or test.csv: submission.csv not written", config.data)
    write_json(stack / "report.json", report)
    return submission


def _config_dict(config: StackConfig) -> dict:
    out = asdict(config)
    out["work"], out["data"] = str(config.work), str(config.data)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work", type=Path, default=Path("artifacts"), help="work folder (default artifacts)")
    parser.add_argument("--data", type=Path, default=Path("data"), help="Kaggle data folder, for submission ids")
    parser.add_argument("--models", help="comma-separated OOF set names (default: all in WORK/oof/)")
    parser.add_argument("--methods", default=",".join(METHODS), help="stackers to fit (default: all three)")
    parser.add_argument("--trials", type=int, default=100, help="Optuna trials per blend fit and per lgbm call")
    parser.add_argument("--storage", help="Optuna storage URL (default sqlite:///WORK/stack/optuna.db)")
    parser.add_argument("--min-votes", default=str(HIGH_VOTE_MIN),
                        help="fit on rows with at least this many voters, or 'auto' (default 10)")
    parser.add_argument("--auto-thresholds", default=",".join(map(str, AUTO_THRESHOLDS)),
                        help="thresholds tried by --min-votes auto")
    parser.add_argument("--vote-weighting", choices=WEIGHTINGS, default="none")
    parser.add_argument("--high-votes", type=int, default=HIGH_VOTE_MIN,
                        help="rows with at least this many voters are the high-vote rows scored on")
    parser.add_argument("--space", choices=SPACES, default="prob", help="blend in probability or log space")
    parser.add_argument("--no-bias", action="store_true", help="blend without per-class bias")
    parser.add_argument("--no-temperature", action="store_true", help="blend without temperature")
    parser.add_argument("--selection-steps", type=int, default=50)
    parser.add_argument("--selection-bags", type=int, default=1)
    parser.add_argument("--tune-rows", type=int, default=LgbmConfig.tune_rows,
                        help="row cap for lgbm tuning trials")
    parser.add_argument("--threads", type=int, default=LgbmConfig.threads,
                        help="LightGBM and BLAS threads (default 1: small fits, often a busy machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-submission", action="store_true", help="do not write WORK/submission.csv")


def config_from_args(args: argparse.Namespace) -> StackConfig:
    try:
        thresholds = tuple(int(t) for t in args.auto_thresholds.split(","))
    except ValueError:
        raise UserFacingError(
            f"--auto-thresholds must be comma-separated numbers, not {args.auto_thresholds!r}") from None
    return StackConfig(
        work=args.work, data=args.data,
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()) if args.models else None,
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        min_votes=args.min_votes, vote_weighting=args.vote_weighting, auto_thresholds=thresholds,
        high_votes=args.high_votes,
        blend=BlendConfig(space=args.space, bias=not args.no_bias, temperature=not args.no_temperature,
                          trials=args.trials, seed=args.seed),
        selection=SelectionConfig(steps=args.selection_steps, bags=args.selection_bags, seed=args.seed),
        lgbm=LgbmConfig(trials=args.trials, storage=args.storage, tune_rows=args.tune_rows,
                        threads=args.threads, seed=args.seed),
        submission=not args.no_submission,
    )


def run(args: argparse.Namespace) -> None:
    run_stack(config_from_args(args), show=print)
