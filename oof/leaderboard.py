"""`hms-stack leaderboard --work W`: one table of every OOF set in WORK/oof, best high-vote KL first,
printed and written to WORK/leaderboard.csv.

The KL columns are computed from each OOF file itself (the contract's probabilities, targets, folds
and n_votes), so trained, imported and hand-made sets are ranked alike; NAME.json adds what only a
trained run records (recipe, wall time, code version). `kind` says where a set came from: trained
(`make oof`), imported (`hms-stack import`) or other (no record of how it was made).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import read_provenance, write_csv
from core.errors import UserFacingError
from core.metric import score
from core.schema import HIGH_VOTE_MIN, TARGET_COLUMNS, VOTE_COLUMNS
from core.work import Work

log = logging.getLogger(__name__)

NEEDED = ("fold", "n_votes", *VOTE_COLUMNS, *TARGET_COLUMNS)


def leaderboard(work: Path | str) -> pd.DataFrame:
    """One row per OOF set: member, kind, recipe, KL all / high-vote, KL per fold, samples, wall time, code version."""
    work = Work(work)
    names = work.member_names()
    if not names:
        raise UserFacingError(f"{work.oof_dir()} holds no OOF sets (NAME.parquet): train one with "
                              f"`make oof MODEL=...` or bring one in with `hms-stack import`")
    rows = [_member_row(work, name) for name in names]
    table = pd.DataFrame(rows)
    fold_columns = sorted((c for c in table.columns if c.startswith("fold")), key=_fold_order)
    first = ["member", "kind", "recipe", "kl_all", "kl_high", "n_samples", "n_high"]
    table = table[[*first, *fold_columns, "wall_s", "code_version"]]
    return table.sort_values(["kl_high", "kl_all"], na_position="last").reset_index(drop=True)


def _member_row(work: Work, name: str) -> dict:
    path = work.oof(name)
    oof = pd.read_parquet(path)
    missing = [c for c in NEEDED if c not in oof.columns]
    if missing:
        raise UserFacingError(f"{path} lacks {', '.join(missing)}: it is no OOF set (ARCHITECTURE.md, the OOF "
                              f"contract); `hms-stack import` converts outside files, or move it out of {path.parent}")
    record = _record(work.oof_json(name))
    targets, preds, votes = oof[list(TARGET_COLUMNS)].to_numpy(), oof[list(VOTE_COLUMNS)].to_numpy(), \
        oof["n_votes"].to_numpy()
    overall = score(targets, preds, votes, HIGH_VOTE_MIN)
    row = {"member": name, "kind": _kind(record, read_provenance(path)), "recipe": _recipe(record),
           "kl_all": overall["kl_all"], "kl_high": overall["kl_high"], "n_samples": overall["n_all"],
           "n_high": overall["n_high"], "wall_s": _wall_seconds(record),
           "code_version": record.get("code_version") or read_provenance(path).get("code_version", "")}
    for fold in sorted(oof["fold"].unique()):
        rows = (oof["fold"] == fold).to_numpy()
        kl = score(targets[rows], preds[rows], votes[rows], HIGH_VOTE_MIN)
        row[f"fold{int(fold)}_kl_all"], row[f"fold{int(fold)}_kl_high"] = kl["kl_all"], kl["kl_high"]
    return row


def _record(path: Path) -> dict:
    """NAME.json, or {} where a set has none."""
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserFacingError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}): retrain or re-import "
                              f"that set, or delete the file") from None


def _kind(record: dict, provenance: dict) -> str:
    if "recipe" in record:
        return "trained"
    if "imported_from" in record.get("config", {}) or "imported_from" in provenance:
        return "imported"
    return "other"


def _recipe(record: dict) -> str:
    """The registry name that trains it again (a `name=` variant's base recipe), else the recorded name."""
    if "make_oof" in record:
        return record["make_oof"]["MODEL"]
    return record.get("recipe", {}).get("name", "")


def _wall_seconds(record: dict) -> float:
    seconds = record.get("seconds_per_fold")
    return float(sum(seconds.values())) if seconds else np.nan


def _fold_order(column: str) -> tuple[int, str]:
    number = column[len("fold"):].split("_", 1)[0]
    return int(number), column


def format_leaderboard(table: pd.DataFrame) -> str:
    """The printed form: per-fold high-vote KL in one column (the CSV has all and high per fold)."""
    folds = [c for c in table.columns if c.endswith("_kl_high") and c.startswith("fold")]
    shown = pd.DataFrame({
        "member": table["member"], "kind": table["kind"], "recipe": table["recipe"].replace("", "-"),
        "KL all": table["kl_all"].map(_num), f"KL >={HIGH_VOTE_MIN}": table["kl_high"].map(_num),
        f"per fold (>={HIGH_VOTE_MIN})": table[folds].apply(lambda r: " ".join(_num(v) for v in r), axis=1),
        "samples": table["n_samples"], "wall": table["wall_s"].map(_duration),
        "code": table["code_version"].fillna(""),
    })
    return shown.to_string(index=False)


def _num(value: float) -> str:
    return "-" if pd.isna(value) else f"{value:.4f}"


def _duration(seconds: float) -> str:
    if pd.isna(seconds):
        return "-"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work", type=Path, default=Path("artifacts"))


def run(args: argparse.Namespace) -> None:
    table = leaderboard(args.work)
    write_csv(Work(args.work).leaderboard(), table)
    print(format_leaderboard(table))
    log.info("%d OOF sets, best by high-vote KL: %s; written to %s", len(table), table["member"].iloc[0],
             Work(args.work).leaderboard())
