"""Reading the Kaggle competition folder: label tables, EEG and spectrogram windows, with clear errors."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from core.errors import DataError
from core.schema import (
    EEG_COLUMNS,
    EEG_RATE_HZ,
    EEG_WINDOW_S,
    EEG_WINDOW_SAMPLES,
    SPEC_COLUMNS,
    SPEC_WINDOW_ROWS,
    SPEC_WINDOW_S,
    TEST_COLUMNS,
    VOTE_COLUMNS,
)
from features.labels import add_vote_targets

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
TRAIN_REQUIRED = (
    "eeg_id", "eeg_label_offset_seconds", "spectrogram_id", "spectrogram_label_offset_seconds",
    "label_id", "patient_id", *VOTE_COLUMNS,
)
SCALP_CHANNELS = len(EEG_COLUMNS) - 1  # the last column is EKG


class QualityNote(NamedTuple):
    file: str
    kind: str  # "nan-gap", "nan-channel" or "flat"
    message: str


class KaggleFolder:
    """The unzipped competition folder (ARCHITECTURE.md "Data"); every problem raises a one-line DataError."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(
                f"data folder {self.root} does not exist: unzip the Kaggle competition data there, "
                f"pass DATA=<folder>, or run `make synth` for synthetic data"
            )
        # Recoverable problems (NaN gaps, flat channels), one per (file, kind): a job reports them
        # as one summary line and a CSV (features.quality_notes), not one log line per file.
        self.quality_notes: list[QualityNote] = []
        self._noted: set[tuple[str, str]] = set()

    # ---- label tables -------------------------------------------------------------------
    def train_table(self) -> pd.DataFrame:
        """train.csv validated, with `n_votes` and `target_*` probabilities."""
        return self._train

    @cached_property
    def _train(self) -> pd.DataFrame:
        path = self._require_file("train.csv")
        table = _read_csv(path)
        _require_columns(path, table.columns, TRAIN_REQUIRED)
        _require_numeric(path, table, TRAIN_REQUIRED)
        _refuse_duplicates(path, table, "label_id")
        _check_votes(path, table)
        for col in ("eeg_label_offset_seconds", "spectrogram_label_offset_seconds"):
            bad = table.loc[table[col] < 0, "label_id"]
            if len(bad):
                raise DataError(f"{path}: {len(bad)} rows have a negative {col} (label_id {_few(bad)}); "
                                f"offsets are seconds from the recording start: fix or drop those rows")
        self._check_files_exist("train", table)
        return add_vote_targets(table)

    def test_table(self) -> pd.DataFrame:
        return self._test

    @cached_property
    def _test(self) -> pd.DataFrame:
        path = self._require_file("test.csv")
        table = _read_csv(path)
        _require_columns(path, table.columns, TEST_COLUMNS)
        _require_numeric(path, table, TEST_COLUMNS)
        _refuse_duplicates(path, table, "eeg_id")
        self._check_files_exist("test", table)
        return table

    def submission_ids(self) -> tuple[np.ndarray, Path]:
        """Test eeg_ids in submission order (sample_submission.csv, else test.csv), and the file read."""
        for name in ("sample_submission.csv", "test.csv"):
            path = self.root / name
            if path.is_file():
                table = _read_csv(path)
                _require_columns(path, table.columns, ("eeg_id",))
                _require_numeric(path, table, ("eeg_id",))
                return table["eeg_id"].to_numpy(np.int64), path
        raise DataError(f"{self.root} has neither sample_submission.csv nor test.csv; pass the Kaggle data "
                        f"folder (DATA=...)")

    def has_submission_ids(self) -> bool:
        return any((self.root / name).is_file() for name in ("sample_submission.csv", "test.csv"))

    # ---- recordings ---------------------------------------------------------------------
    def eeg_path(self, split: str, eeg_id: int) -> Path:
        return self.root / f"{_split(split)}_eegs" / f"{int(eeg_id)}.parquet"

    def spectrogram_path(self, split: str, spectrogram_id: int) -> Path:
        return self.root / f"{_split(split)}_spectrograms" / f"{int(spectrogram_id)}.parquet"

    def read_eeg(self, split: str, eeg_id: int) -> np.ndarray:
        """The whole recording, (T, 20) float32 in EEG_COLUMNS order, NaN kept."""
        path = self.eeg_path(split, eeg_id)
        return _read_parquet_columns(path, EEG_COLUMNS)

    def eeg_windows(self, split: str, eeg_id: int, offsets_s: Sequence[float]) -> np.ndarray:
        """(n, 10000, 20) float32 windows [offset, offset + 50 s), one file read for all offsets."""
        path = self.eeg_path(split, eeg_id)
        signal = self.read_eeg(split, eeg_id)
        starts = np.round(np.asarray(offsets_s, dtype=np.float64) * EEG_RATE_HZ).astype(np.int64)
        for offset, start in zip(offsets_s, starts, strict=True):
            if start < 0 or start + EEG_WINDOW_SAMPLES > len(signal):
                raise DataError(
                    f"{path}: {len(signal) / EEG_RATE_HZ:.1f} s long, shorter than label offset "
                    f"{offset} s + {EEG_WINDOW_S} s; fix eeg_label_offset_seconds or drop that row"
                )
        self._check_eeg_quality(path, signal, starts, offsets_s)
        return np.stack([signal[s:s + EEG_WINDOW_SAMPLES] for s in starts])

    def read_spectrogram(self, split: str, spectrogram_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(times (T,), values (T, 400) float32 in SPEC_COLUMNS order), NaN kept."""
        path = self.spectrogram_path(split, spectrogram_id)
        values = _read_parquet_columns(path, ("time", *SPEC_COLUMNS))
        return values[:, 0].astype(np.float64), np.ascontiguousarray(values[:, 1:])

    def spectrogram_windows(self, split: str, spectrogram_id: int, offsets_s: Sequence[float]) -> np.ndarray:
        """(n, 300, 400) float32: rows with time in [offset, offset + 600 s), NaN kept."""
        values, starts = self.spectrogram_window_starts(split, spectrogram_id, offsets_s)
        return np.stack([values[s:s + SPEC_WINDOW_ROWS] for s in starts]).astype(np.float32, copy=False)

    def spectrogram_window_starts(self, split: str, spectrogram_id: int,
                                  offsets_s: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """(the file's values (T, 400), first row of each offset's 300-row window), every window checked."""
        path = self.spectrogram_path(split, spectrogram_id)
        times, values = self.read_spectrogram(split, spectrogram_id)
        starts = np.searchsorted(times, np.asarray(offsets_s, dtype=np.float64), side="left")
        for offset, start in zip(offsets_s, starts, strict=True):
            rows = values[start:start + SPEC_WINDOW_ROWS]
            if len(rows) < SPEC_WINDOW_ROWS or times[start] >= offset + 2:
                raise DataError(
                    f"{path}: covers {times[0]:.0f}–{times[-1]:.0f} s, not the {SPEC_WINDOW_S} s window "
                    f"from {offset} s; fix spectrogram_label_offset_seconds or drop that row"
                )
            if np.isnan(rows).all():
                raise DataError(f"{path}: the {SPEC_WINDOW_S} s window from {offset} s is all NaN; "
                                f"drop that label row")
        return values, starts.astype(np.int64)

    def _require_file(self, name: str) -> Path:
        path = self.root / name
        if not path.is_file():
            raise DataError(f"{path} is missing: the data folder must hold the Kaggle layout "
                            f"(train.csv, train_eegs/, train_spectrograms/, test.csv, test_eegs/, ...)")
        return path

    def _check_files_exist(self, split: str, table: pd.DataFrame) -> None:
        for kind, column, path_of in (("EEG", "eeg_id", self.eeg_path),
                                      ("spectrogram", "spectrogram_id", self.spectrogram_path)):
            ids = table[column].unique()
            missing = [i for i in ids if not path_of(split, i).is_file()]
            if missing:
                folder = path_of(split, missing[0]).parent
                raise DataError(f"{folder}: {len(missing)} of {len(ids)} {kind} files named in {split}.csv "
                                f"are missing (e.g. {int(missing[0])}.parquet); copy them or drop those rows")

    def _check_eeg_quality(self, path: Path, signal: np.ndarray, starts: np.ndarray, offsets_s) -> None:
        """NaN and flat-channel checks, done once per recording (windows overlap, so per-window work repeats)."""
        scalp = signal[:, :SCALP_CHANNELS]
        nan = np.isnan(scalp)
        if nan.any():
            cum = np.concatenate([np.zeros((1, SCALP_CHANNELS)), np.cumsum(nan, axis=0)])
            share = (cum[starts + EEG_WINDOW_SAMPLES] - cum[starts]) / EEG_WINDOW_SAMPLES  # (n, channels)
            for i, offset in enumerate(offsets_s):
                if (share[i] == 1).all():
                    raise DataError(f"{path}: every channel is NaN in the window from {offset} s; "
                                    f"drop that label row")
            all_nan = [EEG_COLUMNS[c] for c in np.flatnonzero((share == 1).any(axis=0))]
            if all_nan:
                self._warn_once(path, "nan-channel", f"channels {', '.join(all_nan)} are all NaN in some "
                                f"windows; they are zero-filled and masked")
            elif (share > 0).any():
                self._warn_once(path, "nan-gap", f"NaN gaps ({share.max():.0%} of a window at most); "
                                f"they are filled and masked")
        with warnings.catch_warnings():  # all-NaN channels were reported above
            warnings.simplefilter("ignore", RuntimeWarning)
            flat = np.nanmax(scalp, axis=0) == np.nanmin(scalp, axis=0) if nan.any() else np.ptp(scalp, axis=0) == 0
        flat_names = [EEG_COLUMNS[c] for c in np.flatnonzero(flat)]
        if flat_names:
            self._warn_once(path, "flat", f"flat channels {', '.join(flat_names)}")

    def _warn_once(self, path: Path, kind: str, message: str) -> None:
        if (str(path), kind) not in self._noted:
            self._noted.add((str(path), kind))
            self.quality_notes.append(QualityNote(str(path), kind, message))
            log.debug("%s: %s", path, message)

    def pop_quality_notes(self) -> list[QualityNote]:
        """The notes gathered since the last call (for a worker to hand back to its parent)."""
        notes, self.quality_notes = self.quality_notes, []
        return notes


def _split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def _few(values, n: int = 5) -> str:
    values = list(values)
    text = ", ".join(str(v) for v in values[:n])
    return text + (", ..." if len(values) > n else "")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not a readable CSV ({type(err).__name__}); re-copy it from the "
                        f"Kaggle download") from None


def _require_columns(path: Path, present, required: Sequence[str]) -> None:
    missing = [c for c in required if c not in set(present)]
    if missing:
        raise DataError(f"{path} lacks columns {', '.join(missing)}; expected the Kaggle layout "
                        f"({', '.join(required[:4])}, ...)")


def _require_numeric(path: Path, table: pd.DataFrame, columns: Sequence[str]) -> None:
    for col in columns:
        if not pd.api.types.is_numeric_dtype(table[col]) or table[col].isna().any():
            raise DataError(f"{path}: column {col} must be numeric with no empty cells; fix the file")


def _refuse_duplicates(path: Path, table: pd.DataFrame, column: str) -> None:
    dup = table.loc[table[column].duplicated(), column]
    if len(dup):
        raise DataError(f"{path}: {column} is duplicated ({_few(dup.unique())}); each {column} must "
                        f"appear once: drop the repeated rows")


def _check_votes(path: Path, table: pd.DataFrame) -> None:
    votes = table[list(VOTE_COLUMNS)]
    if (votes < 0).any(axis=None):
        raise DataError(f"{path}: negative vote counts; votes are numbers of experts, fix the file")
    zero = table.loc[votes.sum(axis=1) == 0, "label_id"]
    if len(zero):
        raise DataError(f"{path}: {len(zero)} rows have no votes at all (label_id {_few(zero)}); "
                        f"a target needs at least one vote: drop those rows")


def _read_parquet_columns(path: Path, columns: Sequence[str]) -> np.ndarray:
    """Read `columns` as (T, len(columns)) float32 whatever their stored dtype."""
    if not path.is_file():
        raise DataError(f"{path} is missing; copy it from the Kaggle download or drop its label rows")
    try:
        schema_names = set(pq.read_schema(path).names)
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise DataError(f"{path} is not a readable parquet file ({type(err).__name__}); re-copy it") from None
    missing = [c for c in columns if c not in schema_names]
    if missing:
        raise DataError(f"{path} lacks columns {_few(missing)}; expected the Kaggle layout "
                        f"({', '.join(columns[:3])}, ...)")
    table = pq.read_table(path, columns=list(columns))
    return np.stack([table.column(c).to_numpy(zero_copy_only=False) for c in columns], axis=1).astype(
        np.float32, copy=False)


def data_fingerprint(root: Path | str) -> str:
    """A content hash of train.csv: folds and caches made for one data folder are refused on another."""
    import hashlib

    path = Path(root) / "train.csv"
    if not path.is_file():
        raise DataError(f"{path} is missing: the data folder must hold the Kaggle layout")
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16]
