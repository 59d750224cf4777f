"""Recoverable data problems of a whole job (NaN gaps, flat channels, values set to NaN by
features.value_checks) as one log line and one CSV.

The real train set has thousands of recordings with some NaN or a flat channel; a warning per file
buries everything else in the log. The data layer collects `QualityNote`s instead, and the job that
read the files (a cache build, test-time inference) reports them here, once.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from core.artifacts import atomic_path
from features.kaggle_data import QualityNote

log = logging.getLogger(__name__)

_WHAT = {"nan-gap": "NaN gaps (filled and masked)", "nan-channel": "all-NaN channels in some windows (zero-filled)",
         "flat": "flat channels",
         "implausible": "values that cannot be measurements ({n} set to NaN, filled and masked)",
         "large-channel": "channels far beyond scalp EEG's range (kept, clipped by the views)",
         "large-scale": "spectrogram power far above real files (kept, saturates the views)",
         "spec-nan": "spectrogram NaN rows ({n} rows, filled by the views)"}  # {n}: the files' values added up


def summary_line(notes: Iterable[QualityNote], where: str) -> str:
    """e.g. 'wave train: 31 files with NaN gaps (filled and masked), 1 file with values that cannot be
    measurements (5012 set to NaN, filled and masked)'."""
    notes = list(notes)
    counts = Counter(note.kind for note in notes)
    parts = []
    for kind, n in counts.most_common():
        total = sum(note.values for note in notes if note.kind == kind)
        parts.append(f"{n} {'file' if n == 1 else 'files'} with {_WHAT.get(kind, kind).format(n=total)}")
    return f"{where}: " + ", ".join(parts)


def report(notes: list[QualityNote], where: str, listed_in: Path | None = None) -> None:
    """Log one warning line for `notes` (nothing when empty), naming the CSV that lists them."""
    if notes:
        log.warning("%s%s", summary_line(notes, where), f"; each file in {listed_in}" if listed_in else "")


def write_csv(notes: list[QualityNote], path: Path) -> None:
    """One row per note: file, kind, message, values (how many values it concerns, 0 where not counted)."""
    frame = pd.DataFrame(notes, columns=list(QualityNote._fields)).sort_values(["kind", "file"])
    with atomic_path(path) as temp:
        frame.to_csv(temp, index=False)
