"""The Kaggle submission file: normalised, checked against the competition's test ids, written atomically.

Kaggle's metric does not renormalise (ARCHITECTURE.md "Metric"), so rows that do not sum to 1 would be
scored as they are; the writer normalises and the validator refuses anything else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import atomic_path
from core.errors import UserFacingError
from core.schema import SUBMISSION_COLUMNS, VOTE_COLUMNS
from features.kaggle_data import KaggleFolder

SUM_TOLERANCE = 1e-6


def expected_ids(data: Path | str) -> tuple[np.ndarray, Path]:
    """Test eeg_ids in submission order: sample_submission.csv, else test.csv."""
    return KaggleFolder(data).submission_ids()


def write_submission(frame: pd.DataFrame, data: Path | str, path: Path | str) -> pd.DataFrame:
    """Normalise `frame` (eeg_id + six *_vote columns), order it like the sample submission, validate, write."""
    path = Path(path)
    missing = [c for c in SUBMISSION_COLUMNS if c not in frame.columns]
    if missing:
        raise UserFacingError(f"submission for {path} lacks columns {', '.join(missing)}")
    values = frame[list(VOTE_COLUMNS)].to_numpy(np.float64)
    values = np.clip(np.nan_to_num(values, nan=0.0), 0.0, None)
    sums = values.sum(axis=1, keepdims=True)
    if (sums <= 0).any():
        raise UserFacingError(f"submission for {path}: {int((sums <= 0).sum())} rows have no positive "
                              f"probability; the stacker produced empty rows")
    out = pd.DataFrame(values / sums, columns=list(VOTE_COLUMNS))
    out.insert(0, "eeg_id", frame["eeg_id"].to_numpy(np.int64))
    ids, _ = expected_ids(data)
    _check_ids(out, ids, f"submission for {path}")
    out = out.set_index("eeg_id").loc[ids].reset_index()
    validate_submission(out, data)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)
    return out


def validate_submission(submission: pd.DataFrame | Path | str, data: Path | str) -> None:
    """Raise UserFacingError (one line) unless `submission` is a valid Kaggle submission for `data`."""
    if isinstance(submission, pd.DataFrame):
        frame, where = submission, "submission"
    else:
        where = str(submission)
        try:
            frame = pd.read_csv(submission)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise UserFacingError(f"{where} is not a readable CSV ({type(err).__name__}); write it with "
                                  f"`make stack` or `make submission`") from None
    if list(frame.columns) != list(SUBMISSION_COLUMNS):
        raise UserFacingError(f"{where}: columns must be {', '.join(SUBMISSION_COLUMNS)} in that order, "
                              f"got {', '.join(map(str, frame.columns))}")
    ids, _ = expected_ids(data)
    _check_ids(frame, ids, where)
    values = frame[list(VOTE_COLUMNS)]
    if not all(pd.api.types.is_numeric_dtype(values[c]) for c in VOTE_COLUMNS) or values.isna().any(axis=None):
        raise UserFacingError(f"{where}: probabilities must be numbers with no empty cells")
    values = values.to_numpy(np.float64)
    if ((values < 0) | (values > 1)).any():
        raise UserFacingError(f"{where}: {int(((values < 0) | (values > 1)).any(axis=1).sum())} rows have "
                              f"probabilities outside [0, 1]; write it with write_submission")
    off = np.abs(values.sum(axis=1) - 1) > SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise UserFacingError(f"{where}: {int(off.sum())} rows do not sum to 1 (eeg_id "
                              f"{int(frame['eeg_id'].iloc[row])} sums to {values[row].sum():.6f}); Kaggle does "
                              f"not renormalise: write it with write_submission")


def _check_ids(frame: pd.DataFrame, ids: np.ndarray, where: str) -> None:
    got = frame["eeg_id"]
    if not pd.api.types.is_integer_dtype(got):
        raise UserFacingError(f"{where}: eeg_id must be whole numbers")
    dup = got[got.duplicated()]
    if len(dup):
        raise UserFacingError(f"{where}: eeg_id {int(dup.iloc[0])} appears more than once "
                              f"({len(dup)} repeats); one row per test recording")
    missing = np.setdiff1d(ids, got.to_numpy())
    extra = np.setdiff1d(got.to_numpy(), ids)
    if len(missing) or len(extra):
        example = f"e.g. missing {int(missing[0])}" if len(missing) else f"e.g. unknown {int(extra[0])}"
        raise UserFacingError(f"{where}: eeg_ids do not match the test set ({len(missing)} missing, "
                              f"{len(extra)} unknown, {example}); predict every row of test.csv and nothing else")
