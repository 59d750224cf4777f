"""Spectrogram-source views cached as table rows, cut into windows and turned into images at batch time.

A label row's Kaggle-spectrogram view is a 600 s (300-row) window of its spectrogram file, and the
windows of one file overlap almost entirely (label rows are 2 s apart). Caching each row's
(4, 100, 300) image costs 240 kB per row: 25.6 GB for the real train set. Here each file's table rows
that at least one window covers are stored once (float16, 400 columns, 800 B per 2 s), and
`WindowTable[rows]` cuts the windows and computes the view with the same `compute_view` the test-time
path uses. The per-window normalisation is cheap next to a training step.

Layout in a cache folder: `{split}_tables.npy` (R, 400) float16 and a `table_row` column in
`{split}_index.parquet`: where each row's window starts in the tables.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from core.schema import SPEC_COLUMNS, SPEC_STEP_S, SPEC_WINDOW_ROWS
from features.kaggle_data import KaggleFolder, window_coverage
from features.mapped import MappedArray, create_npy
from features.views import View, compute_view

FLOAT16_MAX = float(np.finfo(np.float16).max)


def stores_tables(view: View) -> bool:
    return bool(getattr(view, "cache_tables", False))  # only spectrogram views have the field


def tables_path(folder: Path, split: str) -> Path:
    return folder / f"{split}_tables.npy"


def to_float16(values: np.ndarray) -> np.ndarray:
    # Power above float16's range only matters up to the view's clip (e^8), so clip instead of inf.
    return np.clip(values, None, FLOAT16_MAX).astype(np.float16)


def as_stored(windows: np.ndarray) -> np.ndarray:
    """Windows as `WindowTable` reads them back (float16 storage), for test-time views that match training."""
    return to_float16(windows).astype(np.float32)


def covered_rows(n_rows: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bool mask of the table rows some window covers, each window's start among the covered rows)."""
    covered = window_coverage(n_rows, starts)
    position = np.cumsum(covered) - 1  # covered rows keep their order, so a window stays contiguous
    return covered, position[starts]


def estimated_table_bytes(index: pd.DataFrame) -> int:
    """About the size of a split's table file, from its label offsets alone (rows every SPEC_STEP_S s):
    per recording, the rows that the union of its windows covers."""
    rows = 0
    for _, offsets in index.groupby("spectrogram_id", sort=False)["spectrogram_label_offset_seconds"]:
        starts = np.sort(np.floor(offsets.to_numpy() / SPEC_STEP_S).astype(np.int64))
        rows += int(np.minimum(np.diff(starts), SPEC_WINDOW_ROWS).sum()) + SPEC_WINDOW_ROWS
    return rows * len(SPEC_COLUMNS) * np.dtype(np.float16).itemsize


def write_task_part(folder: KaggleFolder, split: str, task, out: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Covered rows of every recording of `task` into the float16 file `out`; (cache rows, window
    starts within `out`) per recording."""
    parts, rows_out, starts_out, size = [], [], [], 0
    for recording, offsets, rows in task:
        values, starts = folder.spectrogram_window_starts(split, recording, offsets)
        covered, local = covered_rows(len(values), starts)
        parts.append(to_float16(values[covered]))
        rows_out.append(rows)
        starts_out.append(local + size)
        size += int(covered.sum())
    part = np.concatenate(parts) if parts else np.empty((0, 0), np.float16)
    np.save(out, part)
    return rows_out, starts_out


def join_parts(parts: list[Path], out: Path) -> np.ndarray:
    """Concatenate the task files into `out` (deleting each once copied); each part's first row in `out`."""
    shapes = [np.load(p, mmap_mode="r").shape for p in parts]
    width = max((s[1] for s in shapes if s[0]), default=0)
    firsts = np.concatenate([[0], np.cumsum([s[0] for s in shapes])])
    create_npy(out, (int(firsts[-1]), width))  # allocated now: a full disk fails here, not with SIGBUS
    joined = np.load(out, mmap_mode="r+")
    for part, first, shape in zip(parts, firsts[:-1], shapes, strict=True):
        if shape[0]:
            joined[first:first + shape[0]] = np.load(part, mmap_mode="r")
        os.remove(part)
    joined.flush()
    del joined
    return firsts[:-1]  # one per part


class WindowTable:
    """Array-like (n, *view shape) float32 view of cached table rows: `table[rows]` computes those rows.
    `tables` is a MappedArray, so a DataLoader worker gets the file name, not the rows."""

    def __init__(self, view: View, tables: MappedArray | np.ndarray, table_row: np.ndarray):
        self.view, self.tables, self.table_row = view, tables, np.asarray(table_row, dtype=np.int64)
        self.shape = (len(self.table_row), *view.output_shape())
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        single = np.ndim(rows) == 0
        starts = self.table_row[np.atleast_1d(rows)]
        windows = self.tables[starts[:, None] + np.arange(SPEC_WINDOW_ROWS)].astype(np.float32)
        images = compute_view(self.view, spec_windows=windows)
        return images[0] if single else images


def load(view: View, folder: Path, split: str, index: pd.DataFrame) -> WindowTable:
    return WindowTable(view, MappedArray(tables_path(folder, split)), index["table_row"].to_numpy())
