"""One patient-grouped, stratified K-fold split per data folder, shared by every model (ARCHITECTURE.md "Folds")."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from core.artifacts import read_provenance, write_parquet
from core.errors import DataError
from core.schema import TARGET_COLUMNS
from core.work import Work
from features.kaggle_data import KaggleFolder, data_fingerprint
from features.labels import samples

log = logging.getLogger(__name__)

FOLD_COLUMNS = ("eeg_id", "label_id", "patient_id", "fold")


def make_folds(sample_table: pd.DataFrame, n_folds: int = 5, seed: int = 42) -> pd.DataFrame:
    """Assign each sample a fold: no patient in two folds, majority classes balanced across folds."""
    n_patients = sample_table["patient_id"].nunique()
    if n_patients < n_folds:
        raise DataError(f"only {n_patients} patients for {n_folds} folds; use fewer folds (--n-folds)")
    strata = _strata(sample_table, n_folds)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    fold = np.full(len(sample_table), -1, dtype=np.int64)
    for k, (_, valid) in enumerate(splitter.split(sample_table, strata, groups=sample_table["patient_id"])):
        fold[valid] = k
    out = sample_table[["eeg_id", "label_id", "patient_id"]].copy()
    out["fold"] = fold
    return out.reset_index(drop=True)


def _strata(sample_table: pd.DataFrame, n_folds: int) -> np.ndarray:
    """Majority class per sample; classes too rare to stratify are merged into the commonest."""
    strata = sample_table[list(TARGET_COLUMNS)].to_numpy().argmax(axis=1)
    counts = np.bincount(strata, minlength=len(TARGET_COLUMNS))
    rare = counts < n_folds
    strata[rare[strata]] = counts.argmax()
    return strata


def create_or_load_folds(data: Path | str, work: Path | str, n_folds: int = 5, seed: int = 42) -> pd.DataFrame:
    """The folds of `work`, made on first use; refused when they were made for another data folder."""
    path = Work(work).folds()
    fingerprint = data_fingerprint(data)
    if path.exists():
        made_for = read_provenance(path).get("data_fingerprint")
        if made_for != fingerprint:
            raise DataError(
                f"{path} was made for another data folder (train.csv differs); use a separate WORK= per "
                f"data folder, or delete it to re-split (OOF files made with the old folds become invalid)"
            )
        return read_folds(work)
    folds = make_folds(samples(KaggleFolder(data).train_table()), n_folds=n_folds, seed=seed)
    write_parquet(path, folds, {"data_fingerprint": fingerprint, "data": str(Path(data).resolve()),
                                "n_folds": n_folds, "seed": seed})
    log.info("wrote %s: %d samples, %d patients, %d folds", path, len(folds), folds["patient_id"].nunique(), n_folds)
    return folds


def read_folds(work: Path | str) -> pd.DataFrame:
    path = Work(work).folds()
    if not path.exists():
        raise DataError(f"{path} is missing; run `make folds DATA=... WORK=...` first")
    folds = pd.read_parquet(path)
    missing = [c for c in FOLD_COLUMNS if c not in folds.columns]
    if missing:
        raise DataError(f"{path} lacks columns {', '.join(missing)}; delete it and run `make folds` again")
    return folds
