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
    SPEC_STEP_S,
    SPEC_WINDOW_ROWS,
    SPEC_WINDOW_S,
    TEST_COLUMNS,
    VOTE_COLUMNS,
)
from features.labels import add_vote_targets
from features.value_checks import SCALP_CHANNELS, check_eeg, check_spectrogram

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
ID_COLUMNS = ("eeg_id", "spectrogram_id", "label_id", "patient_id")
TRAIN_REQUIRED = (
    "eeg_id", "eeg_label_offset_seconds", "spectrogram_id", "spectrogram_label_offset_seconds",
    "label_id", "patient_id", *VOTE_COLUMNS,
)


class QualityNote(NamedTuple):
    file: str
    kind: str  # "nan-gap", "nan-channel", "flat", "spec-nan" or a features.value_checks kind
    message: str
    values: int = 0  # how many values it concerns (set to NaN, or noted), where counted


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
        self._test_files_checked = False

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
        table = _require_whole(path, table, ID_COLUMNS)
        _require_whole(path, table, ("eeg_label_offset_seconds",), per_unit=EEG_RATE_HZ)
        _require_whole(path, table, ("spectrogram_label_offset_seconds",), per_unit=0)
        _refuse_duplicates(path, table, "label_id")
        _check_votes(path, table)
        for col in ("eeg_label_offset_seconds", "spectrogram_label_offset_seconds"):
            bad = table.loc[table[col] < 0, "label_id"]
            if len(bad):
                raise DataError(f"{path}: {len(bad)} rows have a negative {col} (label_id {_few(bad)}); "
                                f"offsets are seconds from the recording start: fix or drop those rows")
        self._check_files_exist("train", table)
        return add_vote_targets(table)

    def test_table(self, require_files: bool = True) -> pd.DataFrame:
        """test.csv validated. require_files=False (test-time inference) leaves a missing recording to
        the readers, so that the submission can degrade that one row instead of stopping."""
        if require_files and not self._test_files_checked:
            self._check_files_exist("test", self._test)
            self._test_files_checked = True
        return self._test

    @cached_property
    def _test(self) -> pd.DataFrame:
        path = self._require_file("test.csv")
        table = _read_csv(path)
        _require_columns(path, table.columns, TEST_COLUMNS)
        _require_numeric(path, table, TEST_COLUMNS)
        table = _require_whole(path, table, TEST_COLUMNS)
        _refuse_duplicates(path, table, "eeg_id")
        return table

    def submission_ids(self) -> tuple[np.ndarray, Path]:
        """Test eeg_ids in submission order (sample_submission.csv, else test.csv), and the file read."""
        for name in ("sample_submission.csv", "test.csv"):
            path = self.root / name
            if path.is_file():
                table = _read_csv(path)
                _require_columns(path, table.columns, ("eeg_id",))
                _require_numeric(path, table, ("eeg_id",))
                return _require_whole(path, table, ("eeg_id",))["eeg_id"].to_numpy(np.int64), path
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
        """The whole recording, (T, 20) float32 in EEG_COLUMNS order, NaN kept; values no amplifier
        records (corrupt pages, inf) are NaN and noted (features.value_checks)."""
        path = self.eeg_path(split, eeg_id)
        signal, findings = check_eeg(_read_parquet_columns(path, EEG_COLUMNS))
        self._note_findings(path, findings)
        return signal

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
        """(times (T,), values (T, 400) float32 in SPEC_COLUMNS order), NaN kept; impossible power
        (inf, negative, corrupt pages) is NaN and noted (features.value_checks)."""
        path = self.spectrogram_path(split, spectrogram_id)
        values = _read_parquet_columns(path, ("time", *SPEC_COLUMNS))
        times = values[:, 0].astype(np.float64)
        if not (np.isfinite(times).all() and (np.diff(times) > 0).all()):
            raise DataError(f"{path}: its time column is not finite and increasing (a corrupt file?); "
                            f"re-copy it from the Kaggle download")
        table, findings = check_spectrogram(np.ascontiguousarray(values[:, 1:]), SPEC_COLUMNS)
        self._note_findings(path, findings)
        return times, table

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
        self._note_spectrogram_nan(path, values, starts)
        return values, starts.astype(np.int64)

    def _note_spectrogram_nan(self, path: Path, values: np.ndarray, starts: np.ndarray) -> None:
        """NaN rows within the windows read (the views fill them), with the longest run."""
        nan_rows = np.isnan(values).any(axis=1) & window_coverage(len(values), starts)
        if nan_rows.any():
            longest = _longest_run(nan_rows) * SPEC_STEP_S
            self._warn_once(path, "spec-nan", f"NaN in {nan_rows.sum()} of the rows its windows cover "
                            f"(longest run {longest} s); the views fill them", int(nan_rows.sum()))

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

    def _warn_once(self, path: Path, kind: str, message: str, values: int = 0) -> None:
        if (str(path), kind) not in self._noted:
            self._noted.add((str(path), kind))
            self.quality_notes.append(QualityNote(str(path), kind, message, values))
            log.debug("%s: %s", path, message)

    def _note_findings(self, path: Path, findings) -> None:
        for finding in findings:
            self._warn_once(path, finding.kind, finding.message, finding.values)

    def pop_quality_notes(self) -> list[QualityNote]:
        """The notes gathered since the last call (for a worker to hand back to its parent)."""
        notes, self.quality_notes = self.quality_notes, []
        return notes


def _split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def window_coverage(n_rows: int, starts: np.ndarray) -> np.ndarray:
    """Bool mask of the n_rows table rows that some SPEC_WINDOW_ROWS window from `starts` covers."""
    coverage = np.zeros(n_rows + 1, dtype=np.int64)
    np.add.at(coverage, starts, 1)
    np.add.at(coverage, starts + SPEC_WINDOW_ROWS, -1)
    return np.cumsum(coverage[:-1]) > 0


def _longest_run(mask: np.ndarray) -> int:
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max(initial=0))


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


def _require_whole(path: Path, table: pd.DataFrame, columns: Sequence[str], per_unit: int = 1) -> pd.DataFrame:
    """`columns` finite and, unless per_unit is 0, whole multiples of 1/per_unit (ids: whole numbers;
    EEG offsets: whole samples). 100.5 would be read as recording 100 and make a phantom sample.
    Returns the table with whole-number columns as int64."""
    for col in columns:
        values = table[col].to_numpy(np.float64)
        good = np.isfinite(values) & (np.abs(values) < 2**53)
        if per_unit:
            scaled = np.where(good, values, 0) * per_unit
            good &= np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1, np.abs(scaled))
        if not good.all():
            first = int(np.flatnonzero(~good)[0])
            what = {0: "finite numbers", 1: "whole numbers"}.get(per_unit, f"multiples of 1/{per_unit} s")
            raise DataError(f"{path}: column {col} must hold {what}; line {first + 2} has "
                            f"{table[col].iloc[first]!r}; fix or drop that row")
        if per_unit == 1 and table[col].dtype != np.int64:
            table = table.assign(**{col: np.round(values).astype(np.int64)})
    return table


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
