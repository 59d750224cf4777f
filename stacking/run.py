"""`python -m stacking stack`: load the OOF sets, fit every stacker honestly, pick one on CV, write the outputs."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
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
from stacking.honest import RULES, Choice, Scorer, Search, choose
from stacking.lgbm import TooFewRows
from stacking.members import MemberSet, imported_members, load_members
from stacking.policy import RowPolicy, candidate_policies, require_rows
from stacking.prior_shift import check_correction, correct
from stacking.report import (
    baseline_table,
    build_report,
    configuration_table,
    final_line,
    format_table,
    member_table,
    stacker_table,
)
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
    attach_patients(members, folds, config.data)
    high = members.n_votes >= config.high_votes
    policies = candidate_policies(config.min_votes, config.vote_weighting, config.auto_thresholds,
                                  config.recording_weights)
    _check_inputs(config, members, high, policies)
    show(format_table({**member_table(members, config.high_votes), **baseline_table(members, config.high_votes)},
                      config.high_votes, title=f"{len(members.names)} members, {len(high)} rows"))
    timings = {"load": time.perf_counter() - started}
    stacked = fit_and_choose(config, members, timings)
    submitted = for_submission(config, members, stacked, timings)
    timings["total"] = time.perf_counter() - started
    report = build_report(members, stacked.choice, to_plain(config), config.high_votes, timings)
    report["prior_correction"] = stacked.prior_info
    report["submission_stacker"] = submitted.describe()
    report["submission"] = _write_outputs(config, members, stacked, submitted, report)
    show(format_table(stacker_table(members, stacked.choice, config.high_votes), config.high_votes,
                      title="stacker (CV ± SE by recording)"))
    show(configuration_table(stacked.choice))
    show(final_line(stacked.choice, config.high_votes))
    return report


@dataclass
class Stacked:
    """The choice, and the chosen stacker's test predictions after any prior correction."""

    choice: Choice
    test: np.ndarray | None
    train_prior: np.ndarray | None = None
    prior_steps: int = 1
    prior_info: dict | None = None
    class_prior: np.ndarray | None = None  # the scored rows' class mix, for test recordings no member saw


def fit_and_choose(config: StackConfig, members: MemberSet, timings: dict | None = None) -> Stacked:
    """Every stacker of `config.methods` fitted honestly, the rule's choice, and its test predictions."""
    timings = {} if timings is None else timings
    check_correction(config.prior_correction)
    if config.choice not in RULES:
        raise UserFacingError(f"choice= must be one of {', '.join(RULES)}, not {config.choice!r}")
    high = members.n_votes >= config.high_votes
    policies = candidate_policies(config.min_votes, config.vote_weighting, config.auto_thresholds,
                                  config.recording_weights)
    scorer = Scorer.of(members, high, config.recording_weights)
    searches = _searches(StackContext(config, members, policies, high, scorer), timings)
    t0 = time.perf_counter()
    choice = choose(searches, scorer, config.choice, config.choice_se)
    timings["choose"] = time.perf_counter() - t0
    stacked = Stacked(choice, choice.run.test, class_prior=scorer_prior(scorer, members.targets))
    if config.prior_correction == "em":
        stacked.train_prior = scorer_prior(scorer, choice.run.oof)
        stacked.prior_steps = config.prior_steps
        stacked.prior_info = {"method": "em", "steps": config.prior_steps, "train_prior": stacked.train_prior.tolist()}
        if stacked.test is not None:
            stacked.test = correct(choice.run.test, stacked.train_prior, config.prior_steps)
            stacked.prior_info["test_prior"] = stacked.test.mean(axis=0).tolist()
    return stacked


def scorer_prior(scorer: Scorer, oof: np.ndarray) -> np.ndarray:
    """The class mix a stacker is calibrated to (of its OOF predictions; of the targets: the class prior),
    weighted as the CV figures are."""
    w = scorer.weights
    return (w @ oof) / w.sum()


@dataclass
class Submitted:
    """What `make submission` will apply: the chosen stacker, or the chosen method refit without the
    imported members, which have no checkpoints to predict a new test set with."""

    stacked: Stacked
    members: MemberSet
    excluded: list[str]

    def describe(self) -> dict:
        return {"method": self.stacked.choice.run.method, "label": self.stacked.choice.run.label,
                "members": self.members.names, "excluded": self.excluded,
                "cv_kl_high": self.stacked.choice.cv_kl_high}


def for_submission(config: StackConfig, members: MemberSet, stacked: Stacked, timings: dict) -> Submitted:
    """The chosen stacker if every member has checkpoints; else the chosen method fitted again on the
    members that have (a second search of that one method), and one line saying so."""
    imported = imported_members(config.work, members.names)
    own = [name for name in members.names if name not in imported]
    if not imported:
        return Submitted(stacked, members, [])
    if not own:
        log.warning("every member is imported (%s): they have no checkpoints, so `make submission` and "
                    "`make bundle` cannot predict a new test set; train a member here with `make oof`",
                    ", ".join(imported))
        return Submitted(stacked, members, [])
    t0 = time.perf_counter()
    trained_here = members.subset(own)
    refit = fit_and_choose(replace(config, methods=(stacked.choice.run.method,)), trained_here)
    timings["refit_without_imported"] = time.perf_counter() - t0
    log.warning("imported members have no checkpoints (%s): `make submission` and `make bundle` cannot predict "
                "with them, so stacker.json, stack/test.parquet and submission.csv use %s refit on the other %d "
                "members, CV KL %.4f (with them %.4f: stack/oof.parquet, report.json)", ", ".join(imported),
                refit.choice.run.label, len(own), refit.choice.cv_kl_high, stacked.choice.cv_kl_high)
    return Submitted(refit, trained_here, imported)


def attach_patients(members: MemberSet, folds: pd.DataFrame | None, data: Path) -> None:
    """Patient ids for the OOF rows (WORK/folds.parquet) and the test rows (DATA/test.csv), where known."""
    if folds is not None and "patient_id" in folds.columns:
        key = [c for c in ("eeg_id", "label_id") if c in members.keys.columns and c in folds.columns]
        table = folds[[*key, "patient_id"]].drop_duplicates(key)
        merged = members.keys[key].merge(table, on=key, how="left")
        if merged["patient_id"].notna().all():
            members.groups = merged["patient_id"].to_numpy(np.int64)
    if members.groups is None:
        log.info("no patient ids for the OOF rows (WORK/folds.parquet): patient-level features are off")
    if members.test_ids is None or not (Path(data) / "test.csv").is_file():
        return
    try:  # the ids alone: a missing test recording is make submission's to degrade, not a reason to drop these
        test = KaggleFolder(data).test_table(require_files=False)
    except UserFacingError as err:
        log.info("test.csv unreadable (%s): patient-level features are off", err)
        return
    patient = pd.Series(test["patient_id"].to_numpy(np.int64), index=test["eeg_id"].to_numpy(np.int64))
    ids = pd.Index(members.test_ids)
    if ids.isin(patient.index).all():
        members.test_groups = patient.loc[members.test_ids].to_numpy(np.int64)


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
    """Fit each method's search; a method's fit time is its own."""
    searches: list[Search] = []
    for method in ctx.config.methods:
        t0 = time.perf_counter()
        try:
            searches.append(STACKERS[method].fit(ctx))
        except TooFewRows as err:  # a tiny folder: the other methods still stack it
            if len(ctx.config.methods) == 1:
                raise
            log.warning("%s left out: %s", method, err)
            continue
        timings[method] = time.perf_counter() - t0
        log.info("%s: fitted in %.1f s", method, timings[method])
    return searches


def _write_outputs(config: StackConfig, members: MemberSet, stacked: Stacked, submitted: Submitted,
                   report: dict) -> str | None:
    """stack/oof.parquet of the choice; stacker.json, stack/test.parquet and submission.csv of what
    `make submission` applies (the same unless imported members were left out of it)."""
    work = Work(config.work)
    choice = stacked.choice
    provenance = {"method": choice.run.method, "policy": choice.run.policy.label, "members": members.names}
    oof = members.keys.copy()
    oof["fold"] = members.fold
    oof[list(VOTE_COLUMNS)] = choice.run.oof
    oof[list(TARGET_COLUMNS)] = members.targets
    oof["n_votes"] = members.n_votes
    write_parquet(work.stack_oof(), oof, provenance)
    final = submitted.stacked
    save_stacker(work, from_run(final.choice.run, submitted.members.names, final.train_prior, final.prior_steps,
                                final.class_prior))
    submission = None
    if final.test is not None:
        test = pd.DataFrame(final.test, columns=list(VOTE_COLUMNS))
        test.insert(0, "eeg_id", members.test_ids)
        write_parquet(work.stack_test(), test, {**provenance, "method": final.choice.run.method,
                                                "policy": final.choice.run.policy.label,
                                                "members": submitted.members.names})
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
