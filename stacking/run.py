"""`python -m stacking stack`: load the OOF sets, fit every stacker honestly, pick one on CV, write the outputs."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from core.artifacts import write_json, write_parquet
from core.config import to_plain
from core.errors import UserFacingError
from core.schema import TARGET_COLUMNS, VOTE_COLUMNS
from core.work import Work
from features.kaggle_data import KaggleFolder
from features.submission_file import expected_ids, write_submission
from oof.folds import read_folds
from stacking.config import StackConfig, stack_config
from stacking.honest import Choice, Search, choose
from stacking.members import MemberSet, load_members
from stacking.policy import RowPolicy, candidate_policies, require_rows
from stacking.report import baseline_table, build_report, final_line, format_table, member_table, stacker_table
from stacking.saved_stacker import from_run, save_stacker
from stacking.stackers import STACKERS, StackContext

log = logging.getLogger(__name__)


def run_stack(config: StackConfig, show: Callable[[str], None] = lambda text: None) -> dict:
    """Fit, choose and write; `show` receives the tables as they become available. Returns the report."""
    # BLAS gets LightGBM's thread count (default 1): on a busy 2-core machine a second OpenBLAS thread
    # made the blend 3x slower, every parallel section waiting for a descheduled thread.
    with threadpool_limits(limits=config.lgbm.threads, user_api="blas"):
        return _stack(config, show)


def _stack(config: StackConfig, show: Callable[[str], None]) -> dict:
    started = time.perf_counter()
    work = Work(config.work)
    folds = read_folds(work) if work.folds().exists() else None
    members = load_members(work, list(config.models) if config.models else None, folds)
    high = members.n_votes >= config.high_votes
    policies = candidate_policies(config.min_votes, config.vote_weighting, config.auto_thresholds)
    _check_inputs(config, members, high, policies)
    show(format_table({**member_table(members, config.high_votes), **baseline_table(members, config.high_votes)},
                      config.high_votes, title=f"{len(members.names)} members, {len(high)} rows"))
    timings = {"load": time.perf_counter() - started}
    searches = _searches(StackContext(config, members, policies, high), timings)
    t0 = time.perf_counter()
    choice = choose(searches, members, high)
    timings["choose"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - started
    report = build_report(members, choice, to_plain(config), config.high_votes, timings)
    report["submission"] = _write_outputs(config, members, choice, report)
    show(format_table(stacker_table(members, choice, config.high_votes), config.high_votes, title="stacker"))
    show(final_line(choice, config.high_votes))
    return report


def _check_inputs(config: StackConfig, members: MemberSet, high: np.ndarray, policies: list[RowPolicy]) -> None:
    oof_dir = Work(config.work).oof_dir()
    unknown = [m for m in config.methods if m not in STACKERS]
    if unknown or not config.methods:
        raise UserFacingError(f"methods= must name some of {', '.join(STACKERS)}, got {', '.join(unknown)}")
    if not high.any():
        raise UserFacingError(f"{oof_dir}: no OOF rows with >= {config.high_votes} voters to score on; lower "
                              f"high_votes=")
    for policy in policies:
        require_rows(policy, members.n_votes, str(oof_dir))
    if len(members.folds) < 2:
        raise UserFacingError(f"{oof_dir}: every row is in one fold; stacking needs OOF sets over at least two folds")
    if config.submission and members.test_ids is not None and KaggleFolder(config.data).has_submission_ids():
        ids, source = expected_ids(config.data)
        if set(ids.tolist()) != set(members.test_ids.tolist()):
            raise UserFacingError(f"{Work(config.work).test_dir()}: members' test eeg_ids differ from {source}; "
                                  f"predict that test set with every member, or pass the matching DATA=")


def _searches(ctx: StackContext, timings: dict) -> list[Search]:
    searches: list[Search] = []
    for method in ctx.config.methods:
        t0 = time.perf_counter()
        searches.append(STACKERS[method].fit(ctx))
        timings[method] = time.perf_counter() - t0
        log.info("%s: fitted in %.1f s", method, timings[method])
    return searches


def _write_outputs(config: StackConfig, members: MemberSet, choice: Choice, report: dict) -> str | None:
    work = Work(config.work)
    provenance = {"method": choice.run.method, "policy": choice.run.policy.label, "members": members.names}
    oof = members.keys.copy()
    oof["fold"] = members.fold
    oof[list(VOTE_COLUMNS)] = choice.run.oof
    oof[list(TARGET_COLUMNS)] = members.targets
    oof["n_votes"] = members.n_votes
    write_parquet(work.stack_oof(), oof, provenance)
    save_stacker(work, from_run(choice.run, members.names))
    submission = None
    if choice.run.test is not None:
        test = pd.DataFrame(choice.run.test, columns=list(VOTE_COLUMNS))
        test.insert(0, "eeg_id", members.test_ids)
        write_parquet(work.stack_test(), test, provenance)
        if config.submission and KaggleFolder(config.data).has_submission_ids():
            write_submission(test, config.data, work.submission())
            submission = str(work.submission())
        elif config.submission:
            log.warning("%s has no sample_submission.csv or test.csv: submission.csv not written", config.data)
    write_json(work.stack_report(), report)
    return submission


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work", type=Path, default=Path("artifacts"), help="work folder (default artifacts)")
    parser.add_argument("--data", type=Path, default=Path("data"), help="Kaggle data folder, for submission ids")
    parser.add_argument("settings", nargs="*", metavar="KEY=VALUE",
                        help="stack settings, e.g. trials=200 blend.space=log min_votes=auto methods=blend,lgbm "
                             "config=stack.yaml (`hms-stack stack --list` shows them all)")
    parser.add_argument("--list", action="store_true", help="print every setting with its default and exit")


def run(args: argparse.Namespace) -> None:
    config = stack_config(args.work, args.data, args.settings)
    if args.list:
        print(describe_settings(config))
        return
    run_stack(config, show=print)


def describe_settings(config: StackConfig) -> str:
    plain = to_plain(config)
    lines = []
    for key, value in plain.items():
        if isinstance(value, dict):
            lines.extend(f"{key}.{k} = {v}" for k, v in value.items())
        elif key not in ("work", "data"):
            lines.append(f"{key} = {value}")
    return "\n".join(lines)
