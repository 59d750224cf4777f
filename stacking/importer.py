"""`python -m stacking import NAME OOF_FILE`: an OOF file from elsewhere (a public notebook, another repo)
turned into an OOF set of this project, so it can be stacked with ours.

Predictions are mapped onto our evaluation samples (one per recording and vote pattern): keyed by
label_id or (eeg_id, eeg_sub_id), the label rows of one sample are averaged; keyed by eeg_id alone,
the recording's prediction applies to each of its samples. Targets come from train.csv, folds from
WORK/folds.parquet, so the imported set lines up with every other member.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import code_version, write_json, write_parquet
from core.errors import UserFacingError
from core.metric import score
from core.schema import CLASSES, HIGH_VOTE_MIN, TARGET_COLUMNS, VOTE_COLUMNS
from core.work import Work, checked_name
from features.kaggle_data import KaggleFolder
from features.labels import samples
from features.submission_file import expected_ids
from oof.folds import read_folds
from stacking.members import check_probabilities, member_path

log = logging.getLogger(__name__)

# Names that say "prediction" win over bare class names, which may also be vote counts.
PREDICTION_PATTERNS = ("{c}_vote_prediction", "{c}_vote_pred", "{c}_prediction", "{c}_pred", "pred_{c}",
                       "prediction_{c}", "prob_{c}", "{c}_prob", "{c}_probability", "p_{c}")
PLAIN_PATTERNS = ("{c}_vote", "{c}")


def parse_mapping(text: str | None) -> dict[str, str]:
    """'colA=seizure,colB=lpd_vote' → {class: column}."""
    mapping: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (text or "").split(","))):
        column, sep, cls = item.partition("=")
        cls = cls.strip().lower().removesuffix("_vote")
        if not sep or not column.strip() or cls not in CLASSES:
            raise UserFacingError(f"--map item {item!r} must be COLUMN=CLASS with CLASS one of {', '.join(CLASSES)}")
        mapping[cls] = column.strip()
    return mapping


def prediction_columns(path: Path, columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """Class → column in the file: from --map, else recognised by the usual names (case-insensitive)."""
    lower = {c.lower(): c for c in columns}
    found = {}
    for cls in CLASSES:
        if cls in mapping:
            if mapping[cls] not in columns:
                raise UserFacingError(f"{path}: --map names column {mapping[cls]!r}, which is not in the file "
                                      f"(columns: {', '.join(columns[:12])})")
            found[cls] = mapping[cls]
            continue
        for patterns in (PREDICTION_PATTERNS, PLAIN_PATTERNS):
            hits = [lower[p.format(c=cls)] for p in patterns if p.format(c=cls) in lower]
            if len(hits) > 1:
                raise UserFacingError(f"{path}: columns {' and '.join(hits)} both look like {cls} predictions; "
                                      f"choose one with --map {hits[0]}={cls}")
            if hits:
                found[cls] = hits[0]
                break
        else:
            looked = ", ".join(p.format(c=cls) for p in (*PREDICTION_PATTERNS[:5], *PLAIN_PATTERNS))
            raise UserFacingError(f"{path}: no column for class {cls} (looked for {looked}, ...); rename it or "
                                  f"pass --map COLUMN={cls}")
    return found


def read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UserFacingError(f"{path} does not exist; pass the OOF file to import")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except Exception as err:  # pandas and pyarrow raise many types for an unreadable file
        raise UserFacingError(f"{path} is not a readable table ({type(err).__name__}); re-export it") from None
    raise UserFacingError(f"{path}: unknown file type {path.suffix!r}; export it as .csv or .parquet")


def _canonical(path: Path, raw: pd.DataFrame, mapping: dict[str, str], keys: tuple[str, ...]) -> pd.DataFrame:
    """Key columns (lower-cased names) plus the six *_vote columns, checked as probabilities."""
    lower = {c.lower(): c for c in raw.columns}
    columns = prediction_columns(path, list(raw.columns), mapping)
    frame = pd.DataFrame({k: raw[lower[k]].to_numpy() for k in keys if k in lower})
    for cls, vote in zip(CLASSES, VOTE_COLUMNS, strict=True):
        frame[vote] = pd.to_numeric(raw[columns[cls]], errors="coerce").to_numpy()
    for key in frame.columns.intersection(["eeg_id", "label_id", "eeg_sub_id"]):
        if not pd.api.types.is_numeric_dtype(frame[key]) or frame[key].isna().any():
            raise UserFacingError(f"{path}: column {key} must be whole numbers with no empty cells")
        frame[key] = frame[key].astype(np.int64)
    frame[list(VOTE_COLUMNS)] = check_probabilities(path, frame, VOTE_COLUMNS)
    return frame


def _refuse_duplicates(path: Path, frame: pd.DataFrame, key: list[str], hint: str) -> None:
    dup = frame.duplicated(key)
    if dup.any():
        first = frame.loc[dup, key].iloc[0]
        text = ", ".join(f"{k} {int(first[k])}" for k in key)
        raise UserFacingError(f"{path}: {int(dup.sum())} duplicated keys ({text}); {hint}")


def _refuse_unknown(path: Path, ids: pd.Series, known: pd.Series, what: str, fix: str) -> None:
    unknown = ~ids.isin(known)
    if unknown.any():
        raise UserFacingError(f"{path}: {int(unknown.sum())} {what} not in train.csv (e.g. "
                              f"{int(ids[unknown].iloc[0])}); {fix}")


def sample_predictions(path: Path, preds: pd.DataFrame, train: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Predictions per evaluation sample: columns label_id (the sample's) + six *_vote."""
    sample_of = train[["eeg_id", "label_id", *VOTE_COLUMNS]].merge(
        table[["eeg_id", "label_id", *VOTE_COLUMNS]].rename(columns={"label_id": "sample_label_id"}),
        on=["eeg_id", *VOTE_COLUMNS])[["eeg_id", "label_id", "sample_label_id"]]
    if "label_id" in preds.columns or "eeg_sub_id" in preds.columns:
        if "label_id" not in preds.columns:
            if "eeg_sub_id" not in train.columns:
                raise UserFacingError(f"{path} is keyed by eeg_sub_id, which train.csv lacks; key it by label_id")
            _refuse_duplicates(path, preds, ["eeg_id", "eeg_sub_id"], "write one row per label row")
            pairs = train[["eeg_id", "eeg_sub_id", "label_id"]]
            merged = preds.merge(pairs, on=["eeg_id", "eeg_sub_id"], how="left")
            if merged["label_id"].isna().any():
                row = merged[merged["label_id"].isna()].iloc[0]
                raise UserFacingError(f"{path}: {int(merged['label_id'].isna().sum())} (eeg_id, eeg_sub_id) pairs "
                                      f"not in train.csv (e.g. {int(row['eeg_id'])}, {int(row['eeg_sub_id'])}); "
                                      f"was it made for another train.csv?")
            preds = merged.drop(columns="eeg_sub_id").astype({"label_id": np.int64})
        _refuse_duplicates(path, preds, ["label_id"], "write one row per label row")
        _refuse_unknown(path, preds["label_id"], train["label_id"], "label_ids",
                        "was it made for another train.csv?")
        rows = preds.drop(columns="eeg_id").merge(sample_of, on="label_id")
        # Label rows of one sample share their votes and differ by a 2 s shift: average them.
        return rows.groupby("sample_label_id", as_index=False)[list(VOTE_COLUMNS)].mean().rename(
            columns={"sample_label_id": "label_id"})
    _refuse_duplicates(path, preds, ["eeg_id"],
                       "one row per recording, or add a label_id or eeg_sub_id column to key label rows")
    _refuse_unknown(path, preds["eeg_id"], train["eeg_id"], "eeg_ids", "was it made for another train.csv?")
    return table[["eeg_id", "label_id"]].merge(preds, on="eeg_id").drop(columns="eeg_id")


def build_oof(path: Path, preds: pd.DataFrame, train: pd.DataFrame, folds: pd.DataFrame) -> pd.DataFrame:
    """The OOF contract frame: keys, shared fold, predictions, targets and voters of every sample."""
    table = samples(train)
    per_sample = sample_predictions(path, preds, train, table)
    out = folds[["eeg_id", "label_id", "fold"]].merge(per_sample, on="label_id", how="left")
    missing = out[VOTE_COLUMNS[0]].isna()
    if missing.any():
        per_fold = out.loc[missing, "fold"].value_counts().sort_index()
        detail = ", ".join(f"fold {int(k)}: {n} of {int((out['fold'] == k).sum())}" for k, n in per_fold.items())
        raise UserFacingError(f"{path}: no predictions for {int(missing.sum())} samples of WORK/folds.parquet "
                              f"({detail}); export the OOF predictions of every fold")
    extra = ~per_sample["label_id"].isin(folds["label_id"])
    if extra.any():
        raise UserFacingError(f"{path}: {int(extra.sum())} samples are not in WORK/folds.parquet; the folds were "
                              f"made for another data folder: pass the matching --work")
    out = out.merge(table[["label_id", *TARGET_COLUMNS, "n_votes"]], on="label_id", how="left")
    return out.sort_values(["eeg_id", "label_id"]).reset_index(drop=True)


def warn_foreign_folds(path: Path, raw: pd.DataFrame, oof: pd.DataFrame, preds_key: str) -> None:
    """An outside fold split that cuts across ours lets stacker folds share training rows: say so."""
    lower = {c.lower(): c for c in raw.columns}
    if "fold" not in lower or preds_key not in oof.columns or preds_key not in lower:
        return
    theirs = pd.DataFrame({preds_key: raw[lower[preds_key]], "their_fold": raw[lower["fold"]]})
    pairs = oof[[preds_key, "fold"]].merge(theirs, on=preds_key).drop_duplicates(["fold", "their_fold"])
    if pairs["fold"].duplicated().any() or pairs["their_fold"].duplicated().any():
        log.warning("%s: its fold column does not match WORK/folds.parquet; its OOF predictions were made on "
                    "other folds, which can leak through stacking: prefer re-running it on the shared folds", path)


def import_test(path: Path, mapping: dict[str, str], data: Path) -> pd.DataFrame:
    raw = read_table(path)
    if "eeg_id" not in {c.lower() for c in raw.columns}:
        raise UserFacingError(f"{path} has no eeg_id column; test predictions are one row per test eeg_id")
    frame = _canonical(path, raw, mapping, ("eeg_id",))
    _refuse_duplicates(path, frame, ["eeg_id"], "write one row per test recording")
    ids, source = expected_ids(data)
    unknown = ~frame["eeg_id"].isin(ids)
    missing = ~pd.Series(ids).isin(frame["eeg_id"])
    if unknown.any() or missing.any():
        raise UserFacingError(f"{path}: eeg_ids do not match {source} ({int(unknown.sum())} unknown, "
                              f"{int(missing.sum())} missing); predict exactly the rows of test.csv")
    return frame.sort_values("eeg_id").reset_index(drop=True)


def import_oof(name: str, oof_file: Path, work: Path, data: Path, test_file: Path | None = None,
               mapping: str | None = None, force: bool = False) -> dict:
    """Write WORK/oof/NAME.parquet|json (and WORK/test/NAME.parquet); return the JSON summary."""
    checked_name(name, "import NAME")
    if member_path(work, name).exists() and not force:
        raise UserFacingError(f"{member_path(work, name)} exists; choose another NAME or pass --force to replace it")
    columns = parse_mapping(mapping)
    raw = read_table(oof_file)
    lower = {c.lower() for c in raw.columns}
    if "eeg_id" not in lower:
        raise UserFacingError(f"{oof_file} has no eeg_id column; OOF predictions must say which recording "
                              f"(and label_id or eeg_sub_id for label rows)")
    preds = _canonical(oof_file, raw, columns, ("eeg_id", "label_id", "eeg_sub_id"))
    train = KaggleFolder(data).train_table()
    oof = build_oof(oof_file, preds, train, read_folds(work))
    warn_foreign_folds(oof_file, raw, oof, "label_id" if "label_id" in lower else "eeg_id")
    test = import_test(test_file, columns, data) if test_file else None
    summary = _summary(name, oof_file, test_file, columns, oof)
    provenance = {"imported_from": str(oof_file), "mapping": columns}
    write_parquet(member_path(work, name), oof, provenance)
    if test is not None:
        write_parquet(member_path(work, name, "test"), test, provenance)
    write_json(Work(work).oof_json(name), summary)
    return summary


def _summary(name: str, oof_file: Path, test_file: Path | None, mapping: dict, oof: pd.DataFrame) -> dict:
    targets = oof[list(TARGET_COLUMNS)].to_numpy()
    preds = oof[list(VOTE_COLUMNS)].to_numpy()
    n_votes = oof["n_votes"].to_numpy()
    per_fold = {int(k): score(targets[oof["fold"] == k], preds[oof["fold"] == k], n_votes[oof["fold"] == k])
                for k in sorted(oof["fold"].unique())}
    return {"name": name, "config": {"imported_from": str(oof_file), "test": str(test_file) if test_file else None,
                                     "mapping": mapping},
            "code_version": code_version(), "kl": score(targets, preds, n_votes, HIGH_VOTE_MIN),
            "per_fold": per_fold}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="name of the new OOF set (WORK/oof/NAME.parquet)")
    parser.add_argument("oof_file", type=Path, help="CSV or parquet with eeg_id (label_id / eeg_sub_id) and "
                                                    "six class probabilities")
    parser.add_argument("--test", type=Path, help="CSV or parquet of test predictions (eeg_id + six columns)")
    parser.add_argument("--map", help="column=class pairs for unrecognised names, e.g. p0=seizure,p1=lpd")
    parser.add_argument("--work", type=Path, default=Path("artifacts"))
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--force", action="store_true", help="replace an existing OOF set of that name")


def run(args: argparse.Namespace) -> None:
    summary = import_oof(args.name, args.oof_file, args.work, args.data, args.test, args.map, args.force)
    kl = summary["kl"]
    print(f"imported {args.name}: {kl['n_all']} samples, KL all {kl['kl_all']:.4f}, "
          f"KL >={kl['min_votes']} {kl['kl_high']:.4f}")
