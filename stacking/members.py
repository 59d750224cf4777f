"""Loading OOF sets (ARCHITECTURE.md "OOF contract") into aligned arrays, refusing sets that do not line up."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import UserFacingError
from core.schema import TARGET_COLUMNS, VOTE_COLUMNS
from core.work import Work, checked_name

log = logging.getLogger(__name__)

SUM_TOLERANCE = 1e-3  # written probabilities may be float32-rounded; logits or raw scores are far off
TARGET_TOLERANCE = 1e-6


@dataclass
class MemberSet:
    """Every member's OOF probabilities on the same samples, in the same row order."""

    names: list[str]
    keys: pd.DataFrame          # eeg_id (and label_id) per row
    fold: np.ndarray            # (N,) int
    n_votes: np.ndarray         # (N,)
    targets: np.ndarray         # (N, 6)
    probs: np.ndarray           # (M, N, 6)
    test_ids: np.ndarray | None = None     # (T,)
    test_probs: np.ndarray | None = None   # (M, T, 6)
    # Patient per row and per test row, when known (WORK/folds.parquet, DATA/test.csv): the
    # patient-level features need them; None turns those features off.
    groups: np.ndarray | None = None       # (N,)
    test_groups: np.ndarray | None = None  # (T,)

    @property
    def folds(self) -> np.ndarray:
        return np.unique(self.fold)

    @property
    def recordings(self) -> np.ndarray:
        """eeg_id per row: the unit the test set has one row of."""
        return self.keys["eeg_id"].to_numpy()

    def subset(self, names: list[str]) -> MemberSet:
        index = [self.names.index(n) for n in names]
        test = None if self.test_probs is None else self.test_probs[index]
        return MemberSet(list(names), self.keys, self.fold, self.n_votes, self.targets,
                         self.probs[index], self.test_ids, test, self.groups, self.test_groups)

    def fingerprint(self) -> str:
        """Content hash: a study or cache made for other predictions, rows or folds is not reused."""
        digest = hashlib.sha1()
        digest.update("|".join(self.names).encode())
        for array in (self.keys.to_numpy(), self.fold, self.n_votes, self.targets, self.probs):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:12]


def member_path(work: Path | str, name: str, split: str = "oof") -> Path:
    """WORK/oof/NAME.parquet (OOF predictions) or WORK/test/NAME.parquet (test predictions)."""
    return Work(work).oof(name) if split == "oof" else Work(work).test(name)


def available_members(work: Path | str) -> list[str]:
    return Work(work).member_names()


def imported_members(work: Path | str, names: list[str]) -> list[str]:
    """The members brought in by `stacking import` (their NAME.json says where from): they have no
    checkpoints, so nothing can predict a new test set with them."""
    return [name for name in names if imported_from(read_member_json(Work(work).oof_json(name)))]


def read_member_json(path: Path) -> dict | None:
    """WORK/oof/NAME.json as a dict, or None when it is missing or not a JSON object."""
    try:
        report = json.loads(path.read_text()) if path.is_file() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return report if isinstance(report, dict) else None


def imported_from(report: dict | None) -> str | None:
    """The outside file an imported member came from (`stacking import` records it), else None."""
    config = report.get("config") if report else None
    return config.get("imported_from") if isinstance(config, dict) else None


def load_members(work: Path | str, names: list[str] | None = None, folds: pd.DataFrame | None = None) -> MemberSet:
    """Read, validate and align the OOF (and test) sets of `names` (default: every set in WORK/oof/)."""
    work = Path(work)
    found = available_members(work)
    if not found:
        raise UserFacingError(f"{work / 'oof'} holds no OOF sets (*.parquet); run a model (`python -m oof run`) "
                              f"or bring one in with `python -m stacking import NAME FILE`")
    names = list(names or found)
    for name in names:
        checked_name(name, Work(work).oof_dir())  # it names files: WORK/oof/NAME.parquet, WORK/models/NAME/
        if name not in found:
            raise UserFacingError(f"{member_path(work, name)} is missing; available: {', '.join(found)}; "
                                  f"fix ARGS='models=...'")
    frames = {name: read_oof(member_path(work, name)) for name in names}
    key = _common_key(frames, work)
    reference_name = names[0]
    reference = frames[reference_name].sort_values(key, kind="stable").reset_index(drop=True)
    if folds is not None:
        check_against_folds(member_path(work, reference_name), reference, folds, key)
    probs = np.empty((len(names), len(reference), len(VOTE_COLUMNS)))
    for j, name in enumerate(names):
        aligned = _align(member_path(work, name), frames[name], reference, member_path(work, reference_name), key)
        probs[j] = aligned[list(VOTE_COLUMNS)].to_numpy(np.float64)
    test_ids, test_probs = _load_tests(work, names)
    return MemberSet(
        names=names, keys=reference[key].reset_index(drop=True),
        fold=reference["fold"].to_numpy(np.int64), n_votes=reference["n_votes"].to_numpy(np.int64),
        targets=reference[list(TARGET_COLUMNS)].to_numpy(np.float64), probs=probs,
        test_ids=test_ids, test_probs=test_probs,
    )


def read_oof(path: Path) -> pd.DataFrame:
    """One OOF file, checked against the contract; probabilities renormalised within rounding."""
    frame = pd.read_parquet(path)
    required = ["eeg_id", "fold", *VOTE_COLUMNS, *TARGET_COLUMNS, "n_votes"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise UserFacingError(f"{path} lacks columns {', '.join(missing)}; an OOF set needs eeg_id (label_id), "
                              f"fold, the six *_vote probabilities, six target_* columns and n_votes "
                              f"(import outside files with `python -m stacking import`)")
    frame[list(VOTE_COLUMNS)] = check_probabilities(path, frame, VOTE_COLUMNS)
    if frame[list(TARGET_COLUMNS)].isna().any(axis=None) or frame["n_votes"].isna().any():
        raise UserFacingError(f"{path}: empty target_* or n_votes cells; rewrite it from the samples table")
    return frame


def check_probabilities(path: Path, frame: pd.DataFrame, columns) -> np.ndarray:
    """The rows of `columns` as probabilities; refuse NaN, negatives and rows that do not sum to 1."""
    values = frame[list(columns)].to_numpy(np.float64)
    where = _example_key(frame)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise UserFacingError(f"{path}: {bad.sum()} rows have empty or infinite predictions "
                              f"(e.g. {where(bad)}); rerun the model or leave it out with ARGS='models=a,b'")
    negative = (values < 0).any(axis=1)
    sums = values.sum(axis=1)
    off = negative | (np.abs(sums - 1) > SUM_TOLERANCE)
    if off.any():
        first = int(np.flatnonzero(off)[0])
        raise UserFacingError(f"{path}: {off.sum()} rows are not probabilities summing to 1 (e.g. {where(off)} "
                              f"sums to {sums[first]:.4f}); write softmax outputs, not logits or scores")
    return values / sums[:, None]


def _example_key(frame: pd.DataFrame):
    cols = [c for c in ("eeg_id", "label_id") if c in frame.columns]

    def describe(mask: np.ndarray) -> str:
        row = frame.iloc[int(np.flatnonzero(mask)[0])]
        return " ".join(f"{c} {int(row[c])}" for c in cols)

    return describe


def _common_key(frames: dict[str, pd.DataFrame], work: Path) -> list[str]:
    """(eeg_id, label_id) when every set has label_id; eeg_id alone when none has it."""
    with_label = [n for n, f in frames.items() if "label_id" in f.columns]
    if len(with_label) not in (0, len(frames)):
        lacking = next(n for n in frames if n not in with_label)
        raise UserFacingError(f"{member_path(work, lacking)} has no label_id while {with_label[0]} has; map it onto "
                              f"the samples with `python -m stacking import {lacking} FILE`")
    key = ["eeg_id", "label_id"] if with_label else ["eeg_id"]
    for name, frame in frames.items():
        dup = frame.duplicated(key)
        if dup.any():
            raise UserFacingError(f"{member_path(work, name)}: {dup.sum()} duplicated keys ({', '.join(key)}), "
                                  f"e.g. {_example_key(frame)(dup.to_numpy())}; write one row per sample")
    return key


def _align(path: Path, frame: pd.DataFrame, reference: pd.DataFrame, reference_path: Path,
           key: list[str]) -> pd.DataFrame:
    """`frame` in the reference's row order; refuse different samples, folds or targets."""
    merged = reference[[*key, "fold", "n_votes", *TARGET_COLUMNS]].merge(
        frame, on=key, how="outer", suffixes=("_ref", ""), indicator=True)
    only = merged["_merge"] != "both"
    if only.any():
        raise UserFacingError(
            f"{path}: {only.sum()} samples are not shared with {reference_path.name} "
            f"(e.g. {_example_key(merged)(only.to_numpy())}); members must be OOF over the same samples "
            f"(WORK/folds.parquet): rerun it there or leave it out with ARGS='models=a,b'")
    # A left merge keeps the reference's row order.
    merged = reference[[*key, "fold", "n_votes", *TARGET_COLUMNS]].merge(frame, on=key, how="left",
                                                                         suffixes=("_ref", ""))
    _refuse_differences(path, reference_path, merged, "fold", merged["fold"] != merged["fold_ref"],
                        "it was run on other folds: rerun it on WORK/folds.parquet")
    targets = merged[list(TARGET_COLUMNS)].to_numpy(np.float64)
    ref_targets = merged[[f"{c}_ref" for c in TARGET_COLUMNS]].to_numpy(np.float64)
    differs = (np.abs(targets - ref_targets) > TARGET_TOLERANCE).any(axis=1) | (
        merged["n_votes"] != merged["n_votes_ref"]).to_numpy()
    _refuse_differences(path, reference_path, merged, "targets or n_votes", differs,
                        "it was made from another train.csv: rerun it on this data folder")
    return merged


def _refuse_differences(path: Path, reference_path: Path, merged: pd.DataFrame, what: str, mask, fix: str):
    mask = np.asarray(mask)
    if mask.any():
        raise UserFacingError(f"{path}: {what} of {mask.sum()} samples differ from {reference_path.name} "
                              f"(e.g. {_example_key(merged)(mask)}); {fix}, or leave it out with ARGS='models=a,b'")


def check_against_folds(path: Path, frame: pd.DataFrame, folds: pd.DataFrame, key: list[str]) -> None:
    """Every sample of the folds file is present, in its fold; nothing else is."""
    folds_name = "WORK/folds.parquet"
    if key == ["eeg_id"]:  # outside sets keyed by recording: folds are patient-grouped, so one per eeg
        folds = folds.drop_duplicates("eeg_id")
    merged = folds[[*key, "fold"]].merge(frame[[*key, "fold"]], on=key, how="outer",
                                         suffixes=("_shared", ""), indicator=True)
    extra = merged["_merge"] == "right_only"
    if extra.any():
        raise UserFacingError(f"{path}: {extra.sum()} samples are not in {folds_name} "
                              f"(e.g. {_example_key(merged)(extra.to_numpy())}); it was made for another "
                              f"data folder or sampling: rerun it, or leave it out with ARGS='models=a,b'")
    missing = merged["_merge"] == "left_only"
    if missing.any():
        per_fold = merged.loc[missing, "fold_shared"].value_counts().sort_index()
        detail = ", ".join(f"fold {int(k)}: {v}" for k, v in per_fold.items())
        raise UserFacingError(f"{path}: no predictions for {missing.sum()} samples of {folds_name} ({detail}); "
                              f"run the missing folds, or leave it out with ARGS='models=a,b'")
    moved = merged["fold"] != merged["fold_shared"]
    if moved.any():
        raise UserFacingError(f"{path}: fold of {moved.sum()} samples differs from {folds_name} "
                              f"(e.g. {_example_key(merged)(moved.to_numpy())}); rerun it on the shared "
                              f"folds, or leave it out with ARGS='models=a,b'")


def _load_tests(work: Path, names: list[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Test predictions of every member in one eeg_id order, or (None, None) when no member has any."""
    paths = {n: member_path(work, n, "test") for n in names}
    present = [n for n, p in paths.items() if p.exists()]
    if not present:
        log.warning("no member has test predictions under %s; stacking the OOF sets only", Work(work).test_dir())
        return None, None
    if len(present) < len(names):
        lacking = next(n for n in names if n not in present)
        raise UserFacingError(f"{paths[lacking]} is missing while {present[0]} has test predictions; "
                              f"predict the test set with that model, or leave it out with ARGS='models=a,b'")
    ids, probs = None, []
    for name in names:
        frame = pd.read_parquet(paths[name])
        missing = [c for c in ("eeg_id", *VOTE_COLUMNS) if c not in frame.columns]
        if missing:
            raise UserFacingError(f"{paths[name]} lacks columns {', '.join(missing)}; test predictions are "
                                  f"eeg_id plus the six *_vote probabilities")
        if frame["eeg_id"].duplicated().any():
            raise UserFacingError(f"{paths[name]}: eeg_id repeated; write one row per test recording")
        frame = frame.sort_values("eeg_id").reset_index(drop=True)
        if ids is None:
            ids = frame["eeg_id"].to_numpy(np.int64)
        elif not np.array_equal(ids, frame["eeg_id"].to_numpy(np.int64)):
            raise UserFacingError(f"{paths[name]}: test eeg_ids differ from {paths[names[0]].name}; predict "
                                  f"the same test.csv with every member, or leave it out with ARGS='models=a,b'")
        probs.append(check_probabilities(paths[name], frame, VOTE_COLUMNS))
    return ids, np.stack(probs)
