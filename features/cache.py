"""Cached views: `python -m features prepare --view NAME` and `load_cached_view` for the training code.

Layout: WORK/cache/<view>-<key>/{train.npy, train_index.parquet, test.npy, test_index.parquet,
manifest.json}; .npy files are float16, opened as memory maps. Views with `cache_tables` store
`{split}_tables.npy` (spectrogram table rows) instead of `{split}.npy`: features.spec_tables.

The key hashes the view config only. What each split was computed from is in the manifest: the
identity (size, mtime, sampled and whole-content hashes; features.inputs) of its CSV and of every
recording its rows read, named relative to the data folder, so a copied project keeps its caches.
Every use checks them: a changed recording of a row cache has its rows recomputed in place, any
other change rebuilds that split alone, and the log names the file. A split is built in a temporary
folder and moved in; its manifest entry is removed first and written last, so a folder killed on
the way is never trusted for that split. The disk space a build needs is checked and allocated first.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
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
from core.errors import UserFacingError
from core.progress import progress_bar
from core.work import Work
from features import inputs, quality_notes, spec_tables
from features.kaggle_data import KaggleFolder, QualityNote
from features.mapped import MappedArray, create_npy
from features.views import VIEWS, View, compute_view, get_view

log = logging.getLogger(__name__)

CACHE_FORMAT = 3  # bump when the computation of a view changes without its config changing
SPLITS = ("train", "test")
MANIFEST = "manifest.json"
ROWS_PER_TASK = 48  # whole recordings per task, about this many rows: small enough for a live progress bar
# Real recordings carry up to ~750 label rows: their windows (800 kB each) are read in slices of this
# many rows, so a worker holds ~100 MB of windows, not 600.
MAX_ROWS_PER_READ = 128
# Below this many rows a split is computed in-process: starting workers (imports) costs seconds.
PARALLEL_MIN_ROWS = 1000
WORKER_RAM_GB = 1.5  # what one build worker may hold on real data (default_jobs)
MAX_DEFAULT_JOBS = 4


def cache_key(view: View) -> str:
    """The view's config and the cache format. The data is not in the key: each split's manifest entry
    records the identity of every input file (features.inputs), checked on every use."""
    stamp = {"format": CACHE_FORMAT, "view": view.to_dict()}
    return hashlib.sha1(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:12]


def cache_dir(view: str | View, work: Path | str) -> Path:
    view = get_view(view)
    return Work(work).cache_dir(view.name, cache_key(view))


def is_current(path: Path, key: str) -> bool:
    """True only for a finished build of this view and key whose arrays have the recorded shapes
    (whether its inputs changed since is `prepare_view`'s check)."""
    manifest = _read_manifest(path, key)
    return manifest is not None and all(_split_problem(path, manifest, split) is None for split in SPLITS)


def prepare_view(view: str | View, data: Path | str, work: Path | str, jobs: int = 1,
                 progress: bool = True) -> Path:
    """Compute `view` for every train label row and test eeg where the cache is missing or stale; its folder.

    Per split: current inputs -> nothing read but 12 kB of each input file; changed recordings of a
    row cache -> their rows recomputed in place; anything else (a changed CSV, a table cache, a split
    never finished) -> that split rebuilt. The log says why.
    """
    view, data = get_view(view), Path(data)
    KaggleFolder(data)  # a missing data folder stops here, in one line
    key = cache_key(view)
    final = Work(work).cache_dir(view.name, key)
    manifest = _read_manifest(final, key)
    if manifest is None and final.exists():
        log.warning("%s is incomplete or stale (no valid manifest); rebuilding it", final)
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if manifest is None:
        _mention_other_folders(final)
    _remove_dead_builds(final.parent)
    manifest = manifest or {"view": view.name, "key": key, "format": CACHE_FORMAT, "config": view.to_dict(),
                            "dtype": "float16"}
    manifest.update(data=str(data.resolve()), code_version=code_version())  # the last data folder: provenance only
    for split in SPLITS:
        _update_split(view, data, final, manifest, split, jobs, progress)
    return final


def _update_split(view: View, data: Path, final: Path, manifest: dict, split: str, jobs: int,
                  progress: bool) -> None:
    reason = _split_problem(final, manifest, split)
    if reason is None:
        comparison = inputs.compare(data, inputs.from_record(manifest[split]["inputs"]))
        if comparison.moved:  # e.g. a copied data folder: same content, new mtimes; record them
            manifest[split]["inputs"].update(inputs.to_record(comparison.moved))
            _write_manifest(final, manifest)
            log.info("%s %s: %d input files have new mtimes but the same content; kept",
                     view.name, split, len(comparison.moved))
        if not comparison.changed:
            log.info("%s %s is up to date", final, split)
            return
        reason = _changed_text(data, comparison.changed)
        if f"{split}.csv" not in comparison.changed and not spec_tables.stores_tables(view):
            _recompute_recordings(view, data, final, manifest, split, comparison.changed, jobs, reason)
            return
    log.info("%s %s: %s; building the split in %s (%d process(es))", view.name, split, reason, final, jobs)
    _build_split(view, data, final, manifest, split, jobs, progress)


def _mention_other_folders(final: Path) -> None:
    """Folders of the same view with another key (another config, or an older cache format) take disk
    space that nothing deletes: say so once, when a new folder is started."""
    view_name = final.name.rpartition("-")[0]
    others = sorted(p.name for p in final.parent.glob(f"{view_name}-*") if p.is_dir() and p != final)
    if others:
        log.info("other %s caches in %s (another config or an older format): %s; delete them if unused",
                 view_name, final.parent, ", ".join(others))


def _split_problem(final: Path, manifest: dict | None, split: str) -> str | None:
    """Why the split's files cannot be used as they are (None: they are what the manifest records)."""
    entry = (manifest or {}).get(split)
    if not entry or "inputs" not in entry:
        return "not built yet"
    try:
        tables = "tables" in entry
        array = np.load(spec_tables.tables_path(final, split) if tables else final / f"{split}.npy", mmap_mode="r")
        if list(array.shape) != entry["tables" if tables else "shape"]:
            return "its arrays do not match the manifest"
        if not (final / f"{split}_index.parquet").is_file():
            return "its index is missing"
    except (OSError, ValueError):
        return "its files are unreadable"
    return None


def _changed_text(data: Path, changed: list[str]) -> str:
    """e.g. 'train_eegs/123.parquet changed (and 4 more)'."""
    first = changed[0]
    state = "changed" if (data / first).is_file() else "is gone"
    return f"{first} {state}" + (f" (and {len(changed) - 1} more)" if len(changed) > 1 else "")


def _build_split(view: View, data: Path, final: Path, manifest: dict, split: str, jobs: int,
                 progress: bool) -> None:
    """Compute the split in a temporary folder, then move its files into `final` and record it."""
    started = time.time()
    folder = KaggleFolder(data)
    index = split_index(folder, split)
    # Identities taken before the files are read: a file replaced meanwhile is seen as changed next time.
    ids = inputs.identities(data, _input_names(view, folder, split, index), content=True)
    needed, what = _bytes_needed(view, index), f"the {view.name} {split} cache"
    _require_space(final.parent, needed, what)
    temp = final.parent / f".{final.name}.{split}.tmp-{socket.gethostname()}-{os.getpid()}"
    temp.mkdir()
    try:
        with _full_disk_in_one_line(final.parent, needed, what):  # another writer may fill the disk meanwhile
            entry, notes = _compute_into(temp, view, data, split, jobs, progress, manifest["key"])
        entry.update(inputs=inputs.to_record(ids), seconds=round(time.time() - started, 1))
        _install(temp, final, manifest, split, entry)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    quality_notes.report(notes, f"{view.name} {split}", final / _quality_csv(split))


def _compute_into(temp: Path, view: View, data: Path, split: str, jobs: int, progress: bool,
                  key: str) -> tuple[dict, list[QualityNote]]:
    """The split's arrays, index and quality CSV written into `temp`; (its manifest entry, the notes)."""
    if spec_tables.stores_tables(view):
        index, notes = compute_split_tables(view, data, split, temp, jobs, progress)
        tables = np.load(spec_tables.tables_path(temp, split), mmap_mode="r").shape
        entry = {"shape": [len(index), *view.output_shape()], "tables": list(tables)}
    else:
        index, notes = compute_split(view, data, split, temp / f"{split}.npy", jobs, progress)
        entry = {"shape": [len(index), *view.output_shape()]}
    write_parquet(temp / f"{split}_index.parquet", index, {"view": view.name, "key": key})
    if notes:
        quality_notes.write_csv(notes, temp / _quality_csv(split))
    return entry, notes


def _install(temp: Path, final: Path, manifest: dict, split: str, entry: dict) -> None:
    """Move a built split into `final`: its manifest entry goes first, and comes back last, so a folder
    killed in between is never trusted for that split."""
    final.mkdir(exist_ok=True)
    manifest.pop(split, None)
    _write_manifest(final, manifest)
    (final / _quality_csv(split)).unlink(missing_ok=True)
    for path in temp.iterdir():
        os.replace(path, final / path.name)
    manifest[split] = entry
    _write_manifest(final, manifest)


def _recompute_recordings(view: View, data: Path, final: Path, manifest: dict, split: str, changed: list[str],
                          jobs: int, reason: str) -> None:
    """Rewrite, in place, the rows of the recordings whose files changed (the CSV did not: rows stay put)."""
    entry = manifest[split]
    index = pd.read_parquet(final / f"{split}_index.parquet")
    recordings = {int(Path(name).stem) for name in changed}
    rows = np.flatnonzero(index[_SOURCE_COLUMNS[view.source][0]].isin(recordings).to_numpy())
    log.info("%s %s: %s; recomputing the %d rows of %d recording(s)", view.name, split, reason, len(rows),
             len(recordings))
    ids = inputs.identities(data, changed, content=True)
    entry["inputs"].update({name: None for name in changed})  # untrusted until their rows are rewritten
    _write_manifest(final, manifest)
    notes = _compute_rows(view, data, split, final / f"{split}.npy", index, rows, jobs)
    _replace_notes(final / _quality_csv(split), changed, notes)
    entry["inputs"].update(inputs.to_record(ids))
    _write_manifest(final, manifest)
    quality_notes.report(notes, f"{view.name} {split} (recomputed rows)", final / _quality_csv(split))


def _compute_rows(view: View, data: Path, split: str, out: Path, index: pd.DataFrame, rows: np.ndarray,
                  jobs: int) -> list[QualityNote]:
    """Write the view of `rows` of `index` into the existing .npy `out`; the quality notes met."""
    part = index.iloc[rows].reset_index(drop=True)
    tasks = [[(recording, offsets, rows[local]) for recording, offsets, local in task] for task in _tasks(view, part)]
    notes = []
    with _one_torch_thread():
        for _, task_notes in _task_results(_run_task, [(view, data, split, out, t) for t in tasks], jobs, len(rows)):
            notes.extend(task_notes)
    with open(out, "rb+") as written:
        os.fsync(written.fileno())
    return notes


def _replace_notes(path: Path, changed: list[str], notes: list[QualityNote]) -> None:
    """The split's quality CSV with the notes of the `changed` files replaced by `notes`."""
    names = {Path(name).parts[-2:] for name in changed}
    kept = [QualityNote(*row) for row in pd.read_csv(path).itertuples(index=False)] if path.is_file() else []
    kept = [note for note in kept if Path(note.file).parts[-2:] not in names] + notes
    if kept:
        quality_notes.write_csv(kept, path)
    else:
        path.unlink(missing_ok=True)


def _input_names(view: View, folder: KaggleFolder, split: str, index: pd.DataFrame) -> list[str]:
    """The files the split's rows are computed from, relative to the data folder: the CSV and each recording."""
    path_of = folder.eeg_path if view.source == "eeg" else folder.spectrogram_path
    recordings = index[_SOURCE_COLUMNS[view.source][0]].unique()
    return [f"{split}.csv", *(path_of(split, r).relative_to(folder.root).as_posix() for r in recordings)]


def _bytes_needed(view: View, index: pd.DataFrame) -> int:
    if spec_tables.stores_tables(view):  # the task files and the joined table exist together for a while
        return 2 * spec_tables.estimated_table_bytes(index)
    return len(index) * int(np.prod(view.output_shape())) * np.dtype(np.float16).itemsize


def _require_space(folder: Path, needed: int, what: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise UserFacingError(f"{folder}: {what} needs {needed} bytes ({needed / 2**30:.2f} GiB) but {free} bytes "
                              f"({free / 2**30:.2f} GiB) are free; free some space or use a WORK= on a larger disk")


@contextlib.contextmanager
def _full_disk_in_one_line(folder: Path, needed: int, what: str):
    try:
        yield
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise UserFacingError(f"{folder}: the disk filled up while writing {what} ({needed} bytes needed, "
                              f"{shutil.disk_usage(folder).free} free now); free some space or use a WORK= "
                              f"on a larger disk") from None


def _read_manifest(path: Path, key: str) -> dict | None:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("key") != key or manifest.get("format") != CACHE_FORMAT:
        return None
    return manifest


def _write_manifest(final: Path, manifest: dict) -> None:
    write_json(final / MANIFEST, manifest)


def _quality_csv(split: str) -> str:
    return f"{split}_quality.csv"


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
    create_npy(out, (len(index), *view.output_shape()))  # allocated now: a full disk fails here, not with SIGBUS
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


def default_jobs() -> int:
    """Worker processes for a cache build when none is asked for: min(cores, available RAM / WORKER_RAM_GB,
    MAX_DEFAULT_JOBS), at least 1. Each worker holds torch, one task's windows and its results (~1 GB on
    real data), so all cores of a big machine with little RAM would swap or be killed."""
    ram = _available_ram_gb()
    by_ram = int(ram // WORKER_RAM_GB) if ram is not None else MAX_DEFAULT_JOBS
    return max(1, min(available_cores(), by_ram, MAX_DEFAULT_JOBS))


def _available_ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20  # kB -> GB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


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

    Prepares the cache first if it is missing or stale, with `jobs` processes (default: default_jobs()).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    view = get_view(view)
    path = prepare_view(view, data, work, jobs=jobs or default_jobs())
    index = pd.read_parquet(path / f"{split}_index.parquet")
    if spec_tables.stores_tables(view):
        return spec_tables.load(view, path, split, index), index
    return MappedArray(path / f"{split}.npy"), index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", nargs="+", required=True, choices=sorted(VIEWS), metavar="NAME",
                        help=f"one or more of: {', '.join(VIEWS)}")
    parser.add_argument("--data", type=Path, default=Path("data"), help="Kaggle-layout data folder")
    parser.add_argument("--work", type=Path, default=Path("artifacts"), help="work folder (cache goes in WORK/cache)")
    jobs = default_jobs()
    parser.add_argument("--jobs", type=int, default=jobs,
                        help=f"worker processes, ~1 GB of RAM each on real data (default: min(cores, available "
                             f"RAM GB / {WORKER_RAM_GB}, {MAX_DEFAULT_JOBS}) = {jobs} here)")


def run(args: argparse.Namespace) -> None:
    for name in args.view:
        started = time.time()
        path = prepare_view(name, args.data, args.work, jobs=args.jobs)
        manifest = json.loads((path / MANIFEST).read_text())
        size_gb = sum(f.stat().st_size for f in path.iterdir()) / 1e9
        print(f"{name}: train {tuple(manifest['train']['shape'])}, test {tuple(manifest['test']['shape'])}, "
              f"{size_gb:.2f} GB in {path} ({time.time() - started:.1f} s)")
