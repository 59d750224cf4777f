"""Cached views: `python -m features prepare --view NAME` and `load_cached_view` for the training code.

Layout: WORK/cache/<view>-<key>/{train.npy, train_index.parquet, test.npy, test_index.parquet,
manifest.json}; .npy files are float16, opened as memory maps. Views with `cache_tables` store
`{split}_tables.npy` (spectrogram table rows) instead of `{split}.npy`: features.spec_tables.
The key hashes the view config and the data folder (absolute path, size and mtime of train.csv
and test.csv), so a changed config or data folder gets a new folder and a current one is reused
without reading any recording. A cache is built in a temporary folder, its manifest written last,
then renamed into place: a folder without a valid manifest is never trusted.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from core.artifacts import code_version, write_json, write_parquet
from core.progress import progress_bar
from core.work import Work
from features import quality_notes, spec_tables
from features.kaggle_data import KaggleFolder, QualityNote
from features.mapped import MappedArray
from features.views import VIEWS, View, compute_view, get_view

log = logging.getLogger(__name__)

CACHE_FORMAT = 2  # bump when the computation of a view changes without its config changing
SPLITS = ("train", "test")
MANIFEST = "manifest.json"
ROWS_PER_TASK = 48  # whole recordings per task, about this many rows: small enough for a live progress bar
# Real recordings carry up to ~750 label rows: their windows (800 kB each) are read in slices of this
# many rows, so a worker holds ~100 MB of windows, not 600.
MAX_ROWS_PER_READ = 128
# Below this many rows a split is computed in-process: starting workers (imports) costs seconds.
PARALLEL_MIN_ROWS = 1000


def cache_key(view: View, data: Path | str) -> str:
    data = Path(data).resolve()
    stamp = {"format": CACHE_FORMAT, "view": view.to_dict(), "data": str(data),
             "files": {name: _size_mtime(data / name) for name in ("train.csv", "test.csv")}}
    return hashlib.sha1(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:12]


def _size_mtime(path: Path) -> list[int] | None:
    return [path.stat().st_size, path.stat().st_mtime_ns] if path.is_file() else None


def cache_dir(view: str | View, data: Path | str, work: Path | str) -> Path:
    view = get_view(view)
    return Work(work).cache_dir(view.name, cache_key(view, data))


def is_current(path: Path, key: str) -> bool:
    """True only for a finished build of this view and key whose arrays have the recorded shapes."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest.get("key") != key or manifest.get("format") != CACHE_FORMAT:
            return False
        for split in SPLITS:
            tables = "tables" in manifest[split]
            array = np.load(spec_tables.tables_path(path, split) if tables else path / f"{split}.npy", mmap_mode="r")
            expected = manifest[split]["tables" if tables else "shape"]
            if list(array.shape) != expected or not (path / f"{split}_index.parquet").is_file():
                return False
        return True
    except (OSError, ValueError, KeyError):
        return False


def prepare_view(view: str | View, data: Path | str, work: Path | str, jobs: int = 1,
                 progress: bool = True) -> Path:
    """Compute `view` for every train label row and test eeg unless a current cache exists; its folder."""
    view = get_view(view)
    key = cache_key(view, data)
    final = Work(work).cache_dir(view.name, key)
    if is_current(final, key):
        log.info("%s is up to date", final)
        return final
    if final.exists():
        log.warning("%s is incomplete or stale (no valid manifest); rebuilding it", final)
        shutil.rmtree(final)
    _remove_dead_builds(final.parent)
    temp = final.parent / f".{final.name}.tmp-{socket.gethostname()}-{os.getpid()}"
    log.info("building %s from %s with %d process(es)", final, data, jobs)
    try:
        notes = _build(view, Path(data), temp, key, jobs, progress)
        _publish(temp, final, key)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    for split, split_notes in notes.items():
        quality_notes.report(split_notes, f"{view.name} {split}", final / _quality_csv(split))
    return final


def _quality_csv(split: str) -> str:
    return f"{split}_quality.csv"


def _build(view: View, data: Path, out: Path, key: str, jobs: int, progress: bool) -> dict[str, list[QualityNote]]:
    """Build the cache in `out`; the data quality notes of each split (also written as CSVs there)."""
    started = time.time()
    out.mkdir(parents=True)
    shapes, notes = {}, {}
    for split in SPLITS:
        if spec_tables.stores_tables(view):
            index, notes[split] = compute_split_tables(view, data, split, out, jobs, progress)
            tables = np.load(spec_tables.tables_path(out, split), mmap_mode="r").shape
            shapes[split] = {"shape": [len(index), *view.output_shape()], "tables": list(tables)}
        else:
            index, notes[split] = compute_split(view, data, split, out / f"{split}.npy", jobs, progress)
            shapes[split] = {"shape": [len(index), *view.output_shape()]}
        write_parquet(out / f"{split}_index.parquet", index, {"view": view.name, "key": key})
        if notes[split]:
            quality_notes.write_csv(notes[split], out / _quality_csv(split))
    manifest = {"view": view.name, "key": key, "format": CACHE_FORMAT, "config": view.to_dict(),
                "data": str(data.resolve()), "dtype": "float16", **shapes,
                "code_version": code_version(), "seconds": round(time.time() - started, 1)}
    write_json(out / MANIFEST, manifest)  # last: its presence marks the build finished
    return notes


def _publish(temp: Path, final: Path, key: str) -> None:
    try:
        os.rename(temp, final)
    except OSError:
        if not is_current(final, key):  # not a concurrent build of the same cache: a real error
            raise
        log.info("%s was finished by another process meanwhile; keeping that one", final)


def _remove_dead_builds(cache_root: Path) -> None:
    """Delete temporary folders left by killed builds on this host (their process is gone)."""
    host = socket.gethostname()
    for path in cache_root.glob(".*.tmp-*"):
        owner, _, pid = path.name.rpartition(".tmp-")[2].rpartition("-")
        if owner == host and pid.isdigit() and not _alive(int(pid)):
            log.info("removing %s left by an interrupted build", path)
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---- computing one split ------------------------------------------------------------------
def compute_split(view: View, data: Path, split: str, out: Path, jobs: int = 1,
                  progress: bool = True) -> tuple[pd.DataFrame, list[QualityNote]]:
    """Write the view of every row of `split` into a new float16 .npy at `out`; return the row index
    and the NaN gaps and flat channels met on the way."""
    index = split_index(KaggleFolder(data), split)
    np.lib.format.open_memmap(out, mode="w+", dtype=np.float16, shape=(len(index), *view.output_shape())).flush()
    tasks = _tasks(view, index)
    notes = []
    bar = progress_bar(total=len(index), desc=f"{view.name} {split}", unit="row", disable=not progress)
    with bar, _one_torch_thread():
        results = _task_results(_run_task, [(view, data, split, out, task) for task in tasks], jobs, len(index))
        for done, task_notes in results:
            bar.update(done)
            notes.extend(task_notes)
    with open(out, "rb+") as written:  # workers leave their rows in the page cache; sync once, before the manifest
        os.fsync(written.fileno())
    return index, notes


def compute_split_tables(view: View, data: Path, split: str, out: Path, jobs: int = 1,
                         progress: bool = True) -> tuple[pd.DataFrame, list[QualityNote]]:
    """Write `{split}_tables.npy` into `out` (features.spec_tables); the row index with `table_row`."""
    index = split_index(KaggleFolder(data), split)
    tasks = _tasks(view, index, max_rows_per_read=len(index) + 1)  # a file is read once, all its rows together
    parts = [out / f".{split}-part{i}.npy" for i in range(len(tasks))]
    table_row = np.full(len(index), -1, dtype=np.int64)
    bar = progress_bar(total=len(index), desc=f"{view.name} {split}", unit="row", disable=not progress)
    with bar:
        calls = [(data, split, task, part) for task, part in zip(tasks, parts, strict=True)]
        results = _task_results(_run_table_task, calls, jobs, len(index), ordered=True)  # parts join in task order
        placed = []
        for rows, starts in results:
            placed.append((rows, starts))
            bar.update(sum(len(r) for r in rows))
    firsts = spec_tables.join_parts(parts, spec_tables.tables_path(out, split))
    for first, (rows, starts) in zip(firsts, placed, strict=True):
        for r, st in zip(rows, starts, strict=True):
            table_row[r] = first + st
    return index.assign(table_row=table_row), []


def _task_results(function, calls: list[tuple], jobs: int, n_rows: int, ordered: bool = False):
    """`function(*call)` for every call: in this process for small splits (starting workers costs
    seconds), else in `jobs` joblib workers; results as they finish unless `ordered`."""
    if jobs <= 1 or n_rows < PARALLEL_MIN_ROWS:
        return (function(*call) for call in calls)
    run = Parallel(n_jobs=jobs, return_as="generator" if ordered else "generator_unordered")
    return run(delayed(function)(*call) for call in calls)


def _run_table_task(data: Path, split: str, task: Task, part: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return spec_tables.write_task_part(KaggleFolder(data), split, task, part)


def split_index(folder: KaggleFolder, split: str) -> pd.DataFrame:
    """One row per cached row: train label rows in train.csv order, test eegs (offsets 0) in test.csv order."""
    if split == "train":
        table = folder.train_table()
        columns = ["label_id", "eeg_id", "eeg_label_offset_seconds", "spectrogram_id",
                   "spectrogram_label_offset_seconds"]
        return table[columns].reset_index(drop=True)
    table = folder.test_table()
    return table[["eeg_id", "spectrogram_id"]].reset_index(drop=True).assign(
        eeg_label_offset_seconds=0.0, spectrogram_label_offset_seconds=0.0)


_SOURCE_COLUMNS = {"eeg": ("eeg_id", "eeg_label_offset_seconds"),
                   "spectrogram": ("spectrogram_id", "spectrogram_label_offset_seconds")}
Task = list[tuple[int, np.ndarray, np.ndarray]]  # (recording id, offsets in s, cache rows) per recording


def _tasks(view: View, index: pd.DataFrame, max_rows_per_read: int = MAX_ROWS_PER_READ) -> list[Task]:
    """Rows grouped by recording (one read for all of its rows, up to `max_rows_per_read`), packed into tasks."""
    column, offset_column = _SOURCE_COLUMNS[view.source]
    offsets = index[offset_column]
    tasks, current, size = [], [], 0
    for recording, all_rows in index.groupby(column, sort=False).indices.items():
        for start in range(0, len(all_rows), max_rows_per_read):
            rows = all_rows[start:start + max_rows_per_read]
            current.append((int(recording), offsets.to_numpy()[rows], rows))
            size += len(rows)
            if size >= ROWS_PER_TASK:
                tasks.append(current)
                current, size = [], 0
    return tasks + ([current] if current else [])


def _run_task(view: View, data: Path, split: str, out: Path, task: Task) -> tuple[int, list[QualityNote]]:
    import torch

    if torch.get_num_threads() != 1:  # a worker process (the parent is at one already, see below)
        torch.set_num_threads(1)
    folder = KaggleFolder(data)
    array = np.load(out, mmap_mode="r+")
    for recording, offsets, rows in task:
        if view.source == "eeg":
            values = as_cached(view, eeg_windows=folder.eeg_windows(split, recording, offsets), offsets_s=offsets)
        else:
            values = as_cached(view, spec_windows=folder.spectrogram_windows(split, recording, offsets))
        array[rows] = values
    return sum(len(rows) for *_, rows in task), folder.pop_quality_notes()


@contextlib.contextmanager
def _one_torch_thread():
    """Parallelism comes from processes: torch's intra-op threads on these small products only
    contend with them (5x slower when the cores are busy), so use one; restore the caller's after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def as_cached(view: View, eeg_windows: np.ndarray | None = None, spec_windows: np.ndarray | None = None,
              offsets_s=None) -> np.ndarray:
    """`compute_view` rounded as a cached row reads back, so test-time inputs match training's: the
    float16 image, or for a table cache the view of its float16-stored table rows."""
    if spec_tables.stores_tables(view):
        return compute_view(view, spec_windows=spec_tables.as_stored(spec_windows))
    values = compute_view(view, eeg_windows=eeg_windows, spec_windows=spec_windows, offsets_s=offsets_s)
    return values.astype(np.float16)


def load_cached_view(view: str | View, data: Path | str, work: Path | str, split: str,
                     jobs: int | None = None) -> tuple[MappedArray | spec_tables.WindowTable, pd.DataFrame]:
    """(float16 (n, *shape) memory map or a WindowTable, index with label_id/eeg_id per row) of `split`;
    both pickle as file names (features.mapped), for DataLoader workers.

    Prepares the cache first if it is missing or stale, with `jobs` processes (default: all cores).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    view = get_view(view)
    path = prepare_view(view, data, work, jobs=jobs or available_cores())
    index = pd.read_parquet(path / f"{split}_index.parquet")
    if spec_tables.stores_tables(view):
        return spec_tables.load(view, path, split, index), index
    return MappedArray(path / f"{split}.npy"), index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", nargs="+", required=True, choices=sorted(VIEWS), metavar="NAME",
                        help=f"one or more of: {', '.join(VIEWS)}")
    parser.add_argument("--data", type=Path, default=Path("data"), help="Kaggle-layout data folder")
    parser.add_argument("--work", type=Path, default=Path("artifacts"), help="work folder (cache goes in WORK/cache)")
    parser.add_argument("--jobs", type=int, default=available_cores(), help="worker processes (default: all cores)")


def run(args: argparse.Namespace) -> None:
    for name in args.view:
        started = time.time()
        path = prepare_view(name, args.data, args.work, jobs=args.jobs)
        manifest = json.loads((path / MANIFEST).read_text())
        size_gb = sum(f.stat().st_size for f in path.iterdir()) / 1e9
        print(f"{name}: train {tuple(manifest['train']['shape'])}, test {tuple(manifest['test']['shape'])}, "
              f"{size_gb:.2f} GB in {path} ({time.time() - started:.1f} s)")
