"""Fault bench: replays what a careless user, a full disk or a kill -9 does to the pipeline, on a tiny
synthetic folder, and says whether each run ended as it should and equals an uninterrupted one.

    python -m bench.faults [--root DIR] [--data DIR] [--seed 0] [--kills 3] [--cases kill,full,...] [--keep]

First an uninterrupted reference: `prepare` (eeg_spec_tiny, kaggle_spec_tiny), `oof` of wave1d_cpu and
lgbm_bands (3 folds, a few epochs / rounds) and `stack` (a short LightGBM study), each timed. Then
every case in a fresh WORK next to it (cases, as `--cases` names them):

- kill:     kill -9 (of the command's process group, as a job scheduler or the OOM killer of a
            container does) at seeded random points after each command's first log line (for `stack`,
            once its Optuna study began), then the same command again;
- full:     WORK on a tmpfs (prepare: too small for the cache, or filled by another job once the build
            began; oof: the cache in place and no room, or room for a checkpoint or two), then room is
            given (a bigger tmpfs, the filler deleted) and it reruns;
- readonly: WORK on a read-only tmpfs (or chmod a-w when not root) for prepare, oof and stack;
- corrupt:  random bytes in an EEG parquet's data page (plain and compressed pages), an EEG replaced
            after a cache build (against a fresh build on the replaced data), a changed recipe and a
            truncated last.pt on resume;
- clean:    `make clean WORK=<a data folder>`.

It prints one row per case: what ran, its result (exit code and the error line, or "ok"), whether its
files equal the reference's (OOF / test probabilities, cache arrays and indexes, stacker.json and the
files it names, submission.csv), and whether the case went as it should. Exit code 1 if one did not.
tmpfs cases need root (`mount`); elsewhere they say "not permitted".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from synthetic.damage import corrupt_data_page, write_uncompressed

ROOT = Path(__file__).resolve().parent.parent
CASES = ("kill", "full", "readonly", "corrupt", "clean")
TIMEOUT_S = 900  # one command; the slowest here takes ~30 s on 2 busy cores
KILL_SPAN = (0.05, 0.95)  # kill points, as fractions of Step.kill_window

WAVE = ("wave1d_cpu", "n_folds=3", "epochs=2", "stage2_epochs=1", "batch_size=16")
LGBM = ("lgbm_bands", "n_folds=3", "n_estimators=50", "min_votes=1")
PREPARE_VIEWS = ("eeg_spec_tiny", "kaggle_spec_tiny")
STACK = ("trials=5", "lgbm.trials=20")
CHANGED = ("dropout=0.5", "swap_p=0.0")
REPORT_CHOICES = ("stackers", "configurations", "final")  # of stack/report.json
LOG_LINE = re.compile(r"^\S+Z \w+ [\w.]+: (.*)$")
TEMPORARY = re.compile(r"^\..*(\.tmp|\.tmp-.*)$")  # core.artifacts.atomic_path, features.cache builds


# ---- the commands ------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One pipeline command: its hms-stack arguments, the log lines between which kills land, the files
    (globs under WORK) that must equal the reference's, and what of the reference WORK it starts from."""

    name: str
    args: Callable[[Path, Path], list[str]]
    marker: str
    compared: tuple[str, ...]
    seeded: tuple[str, ...] = ()
    until: str | None = None  # kills land before this line (default: before the end)

    @property
    def watch(self) -> tuple[str, ...]:
        return (self.marker, self.until) if self.until else (self.marker,)

    def kill_window(self, reference: Outcome) -> float:
        """Seconds from the marker to `until` (or the end) in the reference run: where kills land."""
        return reference.marks.get(self.until, reference.seconds) - reference.marks[self.marker]


def _oof(recipe: tuple[str, ...]) -> Callable[[Path, Path], list[str]]:
    return lambda data, work: ["oof", "--model", recipe[0], "--data", str(data), "--work", str(work), *recipe[1:]]


def _cache_files(*views: str) -> tuple[str, ...]:
    return tuple(f"cache/{view}-*/{name}" for view in views for name in ("*.npy", "*_index.parquet"))


STEPS = {
    "prepare": Step("prepare", lambda d, w: ["prepare", "--view", *PREPARE_VIEWS, "--data", str(d), "--work", str(w)],
                    r" INFO ", _cache_files(*PREPARE_VIEWS)),
    "oof wave1d_cpu": Step("oof wave1d_cpu", _oof(WAVE), r" INFO ",
                           ("oof/wave1d_cpu.parquet", "test/wave1d_cpu.parquet", *_cache_files("wave_tiny"))),
    "oof lgbm_bands": Step("oof lgbm_bands", _oof(LGBM), r" INFO ",
                           ("oof/lgbm_bands.parquet", "test/lgbm_bands.parquet",
                            *_cache_files("bands_eeg", "bands_kspec"))),
    "stack": Step("stack", lambda d, w: ["stack", "--data", str(d), "--work", str(w), *STACK], r"lgbm: study",
                  ("stack/stacker.json", "stack/oof.parquet", "stack/test.parquet", "stack/*.txt", "submission.csv",
                   "stack/report.json", "stack/optuna.db"),
                  seeded=("folds.parquet", "oof", "test"), until=r"lgbm: fitted"),
}


@dataclass
class Outcome:
    """How one command ended: exit code (negative: the signal that killed it), stderr, seconds, when the
    lines watched for came."""

    rc: int
    stderr: str
    seconds: float
    marks: dict[str, float] = field(default_factory=dict)  # pattern -> seconds of its first line

    @property
    def last_line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    @property
    def one_line_error(self) -> bool:
        """Exit 2 and one error line, the last (progress bars may write before it), no traceback."""
        lines = self.stderr.splitlines()
        flagged = [line for line in lines if "error" in line.lower() or "Traceback" in line]
        return self.rc == 2 and self.last_line.startswith("error: ") and len(flagged) == 1

    def result(self) -> str:
        if self.rc < 0:
            return f"killed by signal {-self.rc} at {self.seconds:.1f} s"
        if self.rc == 0:
            return "ok"
        traceback = " [with a traceback]" if "Traceback" in self.stderr else ""
        return f"exit {self.rc}{traceback}: {self.last_line}"

    def last_message(self) -> str:
        """The last log message: where a killed run was."""
        messages = [m.group(1) for m in map(LOG_LINE.match, self.stderr.splitlines()) if m]
        return messages[-1] if messages else "before its first log line"


@dataclass
class Row:
    case: str
    result: str
    identical: str
    passed: bool | None  # None: skipped


def run_hms(args: list[str], log: Path, watch: tuple[str, ...] = (), after: float = 0.0,
            action: Callable[[subprocess.Popen], None] | None = None) -> Outcome:
    """`hms-stack ARGS` with stderr in `log`, noting when a line first matches each pattern of `watch`;
    `action(process)` once, `after` seconds after the first pattern's match (never if the run ends first)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(log, "w") as err, open(log.with_suffix(".out"), "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "core.cli", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=err, start_new_session=True)
        started, marks, acted = time.monotonic(), {}, False
        while proc.poll() is None:
            now = time.monotonic() - started
            text = log.read_text(errors="replace") if len(marks) < len(watch) else ""
            marks.update({p: now for p in watch if p not in marks and re.search(p, text)})
            if action and not acted and watch and watch[0] in marks and now >= marks[watch[0]] + after:
                acted = True
                action(proc)
            if now > TIMEOUT_S:
                kill_group(proc)
            time.sleep(0.02)
    return Outcome(proc.returncode, log.read_text(errors="replace"), time.monotonic() - started, marks)


def kill_group(proc: subprocess.Popen) -> None:
    """kill -9 of the command and any worker it started (its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# ---- comparing with the reference --------------------------------------------------------

def differences(work: Path, reference: Path, patterns: tuple[str, ...]) -> list[str]:
    """The files matching `patterns` in the reference that `work` lacks or holds with other content."""
    expected = sorted({p.relative_to(reference) for pattern in patterns for p in reference.glob(pattern)})
    if not expected:
        return [f"the reference has no {', '.join(patterns)}"]
    return [str(name) for name in expected if not (work / name).is_file() or not _same(work / name, reference / name)]


def _same(a: Path, b: Path) -> bool:
    if a.name == "report.json":  # what was fitted and chosen, not the timings, paths and code version
        return _choices(a) == _choices(b)
    if a.suffix == ".db":  # the finished trials: a killed run's RUNNING trial is failed on resume, as it should be
        return finished_trials(a) == finished_trials(b)
    if a.suffix == ".npy":
        x, y = np.load(a, mmap_mode="r"), np.load(b, mmap_mode="r")
        return x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)
    if a.suffix == ".parquet":  # the values: the metadata holds the code version and timings
        return pd.read_parquet(a).equals(pd.read_parquet(b))
    if a.suffix == ".json":
        return json.loads(a.read_text()) == json.loads(b.read_text())
    return a.read_bytes() == b.read_bytes()


def _choices(report: Path) -> dict:
    choices = {key: json.loads(report.read_text())[key] for key in REPORT_CHOICES}
    choices.get("stackers", {}).get("lgbm", {}).pop("storage", None)  # the study's path: WORK differs per case
    return choices


def finished_trials(db: Path) -> dict[str, list[tuple]]:
    return {name: [t for t in trials if t[0] in ("COMPLETE", "PRUNED")] for name, trials in study_trials(db).items()}


def study_trials(db: Path) -> dict[str, list[tuple]]:
    """Every Optuna study in `db`: its trials' states, parameters and values, in order."""
    import optuna

    storage = f"sqlite:///{db}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return {s.study_name: [(t.state.name, t.params, t.value) for t in
                           optuna.load_study(study_name=s.study_name, storage=storage).trials]
            for s in optuna.get_all_study_summaries(storage)}


def describe_study(db: Path) -> str:
    """e.g. '21 trials (20 COMPLETE, 1 RUNNING)'."""
    states = [state for trials in study_trials(db).values() for state, *_ in trials]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    return f"{len(states)} trials ({counts})"


def identical(work: Path, reference: Path, patterns: tuple[str, ...]) -> str:
    diff = differences(work, reference, patterns)
    return "yes" if not diff else f"no: {', '.join(diff[:3])}" + (f" (+{len(diff) - 3})" if len(diff) > 3 else "")


def half_written(work: Path) -> list[str]:
    """Temporaries left behind, and result files that do not parse: what a failed write must not leave."""
    bad = []
    for path in sorted(work.rglob("*")):
        if TEMPORARY.match(path.name):
            bad.append(str(path.relative_to(work)))
        elif path.is_file() and not _parses(path):
            bad.append(f"{path.relative_to(work)} (unreadable)")
    return bad


def _parses(path: Path) -> bool:
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".parquet":
            pd.read_parquet(path)
        elif path.suffix == ".npy":
            np.load(path, mmap_mode="r")
        elif path.suffix == ".pt":
            import torch

            torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 - any failure to read is what we look for
        return False
    return True


# ---- disks -------------------------------------------------------------------------------

def mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` at `path`; None, or why not."""
    path.mkdir(parents=True, exist_ok=True)
    return _mount(["-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])


def remount(path: Path, options: str) -> str | None:
    return _mount(["-o", f"remount,{options}", str(path)])


def _mount(args: list[str]) -> str | None:
    try:
        done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return str(err)
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exited {done.returncode}")


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def fill_disk(folder: Path, leave: int) -> Path:
    """A file that leaves `leave` bytes free on `folder`'s disk: what another job's output does."""
    filler = folder / "filler.bin"
    usage = shutil.disk_usage(folder)
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(0, usage.free - leave))
    return filler


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """As root: remount the tmpfs at `folder` read-only; otherwise take write permission off every folder."""
    if remount(folder, "ro") is None:
        yield
        return
    if os.geteuid() == 0:
        raise PermissionError("not permitted: a root user writes through chmod and remount failed")
    modes = {p: p.stat().st_mode for p in (folder, *folder.rglob("*")) if p.is_dir()}
    for p in modes:
        p.chmod(0o555)
    try:
        yield
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def copy_seed(reference: Path, work: Path, names: tuple[str, ...]) -> None:
    """Copy what a case starts from out of the reference WORK (mtimes kept: the caches stay current)."""
    work.mkdir(parents=True, exist_ok=True)
    for name in names:
        for source in reference.glob(name):
            target = work / source.relative_to(reference)
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)


# ---- the bench ---------------------------------------------------------------------------

@dataclass
class FaultBench:
    root: Path
    data: Path
    seed: int = 0
    timings: dict[str, Outcome] = field(default_factory=dict)
    mounts: list[Path] = field(default_factory=list)

    @property
    def reference(self) -> Path:
        return self.root / "reference"

    def case_dir(self, name: str) -> Path:
        folder = self.root / "cases" / re.sub(r"[^\w.-]+", "-", name).strip("-")
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def run(self, step: Step, work: Path, log: Path, **action) -> Outcome:
        return run_hms(step.args(self.data, work), log, action.pop("watch", step.watch), **action)

    def make_reference(self, steps: tuple[str, ...] = tuple(STEPS)) -> None:
        """The uninterrupted runs every case is compared with, timed (kill points are drawn in them)."""
        shutil.rmtree(self.reference, ignore_errors=True)
        for name in steps:
            outcome = self.run(STEPS[name], self.reference, self.root / "logs" / f"reference-{name}.log")
            if outcome.rc != 0 or len(outcome.marks) < len(STEPS[name].watch):
                raise SystemExit(f"the reference `{name}` failed ({outcome.result()}); see {self.root / 'logs'}")
            self.timings[name] = outcome

    def tmpfs(self, path: Path, size: str) -> str | None:
        problem = mount_tmpfs(path, size)
        if problem is None:
            self.mounts.append(path)
        return problem

    def unmount_all(self) -> None:
        while self.mounts:
            unmount(self.mounts.pop())

    # ---- kill -9 -----------------------------------------------------------------------
    def kill_fractions(self, name: str, n: int) -> list[float]:
        rng = random.Random(f"{self.seed}-{name}")
        return sorted(rng.uniform(*KILL_SPAN) for _ in range(n))

    def kill(self, name: str, fraction: float) -> Row:
        step, reference = STEPS[name], self.timings[name]
        folder = self.case_dir(f"kill-{name}-{fraction:.2f}")
        work = folder / "work"
        copy_seed(self.reference, work, step.seeded)
        after = fraction * step.kill_window(reference)
        killed = self.run(step, work, folder / "killed.log", after=after, action=kill_group)
        at = killed.last_message().replace(str(work), "WORK").split(";")[0][:60]
        where = (f"killed at {killed.seconds:.1f} s ({at})" if killed.rc == -signal.SIGKILL
                 else f"ended before the kill: {killed.result()}")
        rerun = self.run(step, work, folder / "rerun.log")
        left = [p for p in half_written(work) if TEMPORARY.match(Path(p).name)]
        result = rerun.result() + (f"; left behind: {', '.join(left)}" if left else "")
        same = identical(work, self.reference, step.compared)
        running = False
        if (work / "stack" / "optuna.db").is_file():
            running = "RUNNING" in (study := describe_study(work / "stack" / "optuna.db"))
            result += f"; study: {study}, uninterrupted {describe_study(self.reference / 'stack' / 'optuna.db')}"
        ok = rerun.rc == 0 and same == "yes" and not left and not running  # no trial left RUNNING forever
        return Row(f"kill -9 {name}, {where}", result, same, ok)

    # ---- full disk ---------------------------------------------------------------------
    def full_disk_prepare_check(self) -> Row:
        """A disk too small for the cache: the free-space check refuses; a bigger disk, then the rerun."""
        step, folder = STEPS["prepare"], self.case_dir("full-prepare-check")
        disk, case = folder / "disk", "full disk (tmpfs 1 MB): prepare, then remount 256 MB and rerun"
        if (problem := self.tmpfs(disk, "1m")) is not None:
            return Row(case, f"not permitted: {problem}", "-", None)
        return self._full_then_room(step, disk / "work", folder, case, lambda: remount(disk, "size=256m"))

    def full_disk_prepare_midway(self) -> Row:
        """Another job fills the disk once the build has begun (its free-space check passed)."""
        step, folder = STEPS["prepare"], self.case_dir("full-prepare-midway")
        disk, case = folder / "disk", "disk filled by another job mid-build: prepare, free, rerun"
        if (problem := self.tmpfs(disk, "256m")) is not None:
            return Row(case, f"not permitted: {problem}", "-", None)
        filler = disk / "filler.bin"
        fill = {"watch": (rf"{PREPARE_VIEWS[0]} train:\s+0%",), "action": lambda _: fill_disk(disk, 0)}
        return self._full_then_room(step, disk / "work", folder, case, filler.unlink, fill)

    def full_disk_oof(self, leave: int) -> Row:
        """The cache in place and `leave` bytes free: the log file, the recipe or the checkpoints fill it."""
        step, folder = STEPS["oof wave1d_cpu"], self.case_dir(f"full-oof-{leave}")
        disk = folder / "disk"
        case = f"full disk ({leave // 1000} kB free, the cache in place): oof wave1d_cpu, free, rerun"
        if (problem := self.tmpfs(disk, "256m")) is not None:
            return Row(case, f"not permitted: {problem}", "-", None)
        copy_seed(self.reference, disk / "work", ("folds.parquet", "cache/wave_tiny-*"))
        filler = fill_disk(disk, leave=leave)
        return self._full_then_room(step, disk / "work", folder, case, filler.unlink)

    def _full_then_room(self, step: Step, work: Path, folder: Path, case: str, give_room: Callable,
                        fill: dict | None = None) -> Row:
        full = self.run(step, work, folder / "full.log", **(fill or {}))
        left = half_written(work) if work.exists() else []
        give_room()
        rerun = self.run(step, work, folder / "rerun.log")
        result = full.result() + (f"; half-written: {', '.join(left)}" if left else "") + f"; rerun {rerun.result()}"
        same = identical(work, self.reference, step.compared)
        return Row(case, result, same, full.one_line_error and not left and rerun.rc == 0 and same == "yes")

    # ---- read-only WORK ----------------------------------------------------------------
    def read_only_work(self, name: str, seeded: tuple[str, ...]) -> Row:
        step, folder = STEPS[name], self.case_dir(f"readonly-{name}")
        disk, case = folder / "disk", f"read-only WORK: {name}"
        if (problem := self.tmpfs(disk, "256m")) is not None and os.geteuid() == 0:
            return Row(case, f"not permitted: {problem}", "-", None)
        copy_seed(self.reference, disk, seeded)
        try:
            with read_only(disk):
                outcome = self.run(step, disk, folder / "readonly.log")
        except PermissionError as err:
            return Row(case, str(err), "-", None)
        passed = outcome.one_line_error and str(disk) in outcome.last_line
        return Row(case, outcome.result(), "-", passed)

    # ---- corrupt and replaced files ------------------------------------------------------
    def copy_data(self, folder: Path) -> Path:
        shutil.copytree(self.data, folder / "data")
        return folder / "data"

    def largest_train_eeg(self, data: Path) -> Path:
        return max((data / "train_eegs").glob("*.parquet"), key=lambda p: p.stat().st_size)

    def corrupt_page(self, plain: bool) -> Row:
        """Random bytes in a data page: a note in the quality summary, the other recordings' rows unchanged."""
        kind = "plain" if plain else "compressed"
        folder = self.case_dir(f"corrupt-{kind}")
        data = self.copy_data(folder)
        path = self.largest_train_eeg(data)
        if plain:
            write_uncompressed(path)
        corrupt_data_page(path, "C3", seed=self.seed)
        work = folder / "work"
        outcome = run_hms(["prepare", "--view", "wave_tiny", "--data", str(data), "--work", str(work)],
                          folder / "prepare.log")
        noted = re.findall(r"\d+ files? with values that cannot be measurements \([^)]*\)", outcome.stderr)
        others = self._rows_equal_but(work, int(path.stem)) if outcome.rc == 0 else "-"
        case = f"random bytes in a {kind} data page of {path.relative_to(data)}: prepare wave_tiny"
        result = outcome.result() + (f"; the quality summary notes {noted[0]}" if noted else "; no note")
        named = outcome.one_line_error and path.name in outcome.last_line  # unreadable: one line naming it
        return Row(case, result, f"other recordings' rows: {others}",
                   (outcome.rc == 0 and bool(noted) and others == "yes") or named)

    def _rows_equal_but(self, work: Path, eeg_id: int) -> str:
        [ours] = work.glob("cache/wave_tiny-*")
        [theirs] = self.reference.glob(f"cache/{ours.name}")
        index = pd.read_parquet(ours / "train_index.parquet")
        if not index.equals(pd.read_parquet(theirs / "train_index.parquet")):
            return "no: the index differs"
        kept = (index["eeg_id"] != eeg_id).to_numpy()
        a, b = np.load(ours / "train.npy", mmap_mode="r"), np.load(theirs / "train.npy", mmap_mode="r")
        return "yes" if np.array_equal(a[kept], b[kept], equal_nan=True) else "no"

    def replaced_recording(self) -> Row:
        """An EEG replaced after the cache was built: its rows are recomputed, as a fresh build computes them."""
        folder = self.case_dir("replaced-eeg")
        data = self.copy_data(folder)
        work = folder / "work"
        copy_seed(self.reference, work, ("cache/wave_tiny-*",))
        path = self.largest_train_eeg(data)
        frame = pd.read_parquet(path)
        (frame * 0.5).to_parquet(path, index=False)  # another recording of the same length
        args = ["prepare", "--view", "wave_tiny", "--data", str(data)]
        outcome = run_hms([*args, "--work", str(work)], folder / "prepare.log")
        fresh = run_hms([*args, "--work", str(folder / "fresh")], folder / "fresh.log")
        said = re.search(r"recomputing the \d+ rows of \d+ recording\(s\)", outcome.stderr)
        same = identical(work, folder / "fresh", _cache_files("wave_tiny"))
        changed = differences(work, self.reference, ("cache/wave_tiny-*/train.npy",))
        result = outcome.result() + (f"; {said.group(0)}" if said else "; no recomputation logged")
        case = f"{path.relative_to(data)} replaced after the cache build: prepare wave_tiny vs a fresh build"
        return Row(case, result, f"{same} (vs the fresh build)",
                   outcome.rc == 0 and fresh.rc == 0 and bool(said) and same == "yes" and bool(changed))

    def resume_checks(self) -> list[Row]:
        """A fold stopped after epoch 0, then: another recipe, a truncated last.pt, last.pt deleted."""
        step, folder = STEPS["oof wave1d_cpu"], self.case_dir("resume")
        work = folder / "work"
        copy_seed(self.reference, work, ("folds.parquet", "cache/wave_tiny-*"))
        stop = run_hms([*step.args(self.data, work), "--folds", "0", "--stop-after-epoch", "0"],
                       folder / "stopped.log")
        last = work / "models" / "wave1d_cpu" / "fold0" / "last.pt"
        if not last.is_file():
            return [Row("resume: fold 0 stopped after epoch 0", stop.result(), "-", False)]
        changed = run_hms([*step.args(self.data, work), *CHANGED], folder / "changed.log")
        rows = [Row(f"changed recipe on resume ({' '.join(CHANGED)})", changed.result(), "-",
                    changed.one_line_error and "model.dropout" in changed.last_line)]
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
        cut = self.run(step, work, folder / "truncated.log")
        rows.append(Row("truncated last.pt on resume", cut.result(), "-",
                        cut.one_line_error and str(last) in cut.last_line))
        last.unlink()
        rerun = self.run(step, work, folder / "rerun.log")
        same = identical(work, self.reference, step.compared)
        rows.append(Row("... last.pt deleted as the line says, rerun", rerun.result(), same,
                        rerun.rc == 0 and same == "yes"))
        return rows

    # ---- make clean --------------------------------------------------------------------
    def make_clean_refused(self) -> Row:
        folder = self.case_dir("clean")
        data = self.copy_data(folder)
        before = sorted(p.relative_to(data) for p in data.rglob("*"))
        venv = Path(sys.prefix)
        # -o: the venv counts as installed (a checkout newer than it must not reinstall it here)
        done = subprocess.run(["make", "-s", "-o", f"{venv}/.installed", f"VENV={venv}", f"PY={sys.executable}",
                               "clean", f"WORK={data}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        kept = data.is_dir() and sorted(p.relative_to(data) for p in data.rglob("*")) == before
        ours = [line for line in done.stderr.splitlines() if line.startswith("error: ")]  # then make's own line
        result = (f"exit {done.returncode}: {ours[0] if ours else done.stderr.strip()[-200:]}"
                  + ("; the folder is intact" if kept else "; the folder was touched"))
        passed = done.returncode != 0 and len(ours) == 1 and "Traceback" not in done.stderr and kept
        return Row("make clean WORK=<a data folder>", result, "-", passed)

    def cases(self, chosen: tuple[str, ...], kills: int) -> Iterator[Row]:
        if "kill" in chosen:
            for name in STEPS:
                for fraction in self.kill_fractions(name, kills):
                    yield self.kill(name, fraction)
        if "full" in chosen:
            yield from (self.full_disk_prepare_check(), self.full_disk_prepare_midway())
            yield from (self.full_disk_oof(leave) for leave in (0, 300_000))  # at once; at the checkpoints
        if "readonly" in chosen:
            yield self.read_only_work("prepare", ())
            yield self.read_only_work("oof wave1d_cpu", ("folds.parquet", "cache"))
            yield self.read_only_work("stack", STEPS["stack"].seeded)
        if "corrupt" in chosen:
            yield from (self.corrupt_page(plain=True), self.corrupt_page(plain=False), self.replaced_recording())
            yield from self.resume_checks()
        if "clean" in chosen:
            yield self.make_clean_refused()


# ---- the command line ----------------------------------------------------------------------

def print_table(rows: list[Row], root: Path) -> None:
    """A markdown table."""
    marks = {True: "yes", False: "NO", None: "skipped"}
    print("| case | result | identical to uninterrupted | as it should |\n|---|---|---|---|")
    for r in rows:
        cells = (r.case, r.result, r.identical, marks[r.passed])
        print("| " + " | ".join(short(c, root).replace("|", "/") for c in cells) + " |")


def short(text: str, root: Path) -> str:
    """Paths under the bench's folder as <root>/..."""
    return text.replace(f"{root}/", "<root>/")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, help="folder for the data, reference and cases (default: a "
                                                   "temporary one, deleted at the end unless --keep)")
    parser.add_argument("--data", type=Path, help="a data folder to use (default: `hms-stack synth` of 40 EEGs)")
    parser.add_argument("--seed", type=int, default=0, help="kill points and random bytes")
    parser.add_argument("--kills", type=int, default=3, help="kill points per command")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--keep", action="store_true", help="keep --root's temporary folder (logs, WORKs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = tuple(c.strip() for c in args.cases.split(",") if c.strip())
    if unknown := set(chosen) - set(CASES):
        raise SystemExit(f"--cases: unknown {', '.join(sorted(unknown))}; choose from {', '.join(CASES)}")
    root = args.root or Path(tempfile.mkdtemp(prefix="hms-faults-"))
    started = time.monotonic()
    bench = FaultBench(root.resolve(), (args.data or root / "data").resolve(), args.seed)
    try:
        if args.data is None and not (bench.data / "train.csv").is_file():
            synth = run_hms(["synth", str(bench.data), "--n-eegs", "40", "--seed", str(args.seed), "--n-test", "4"],
                            root / "logs" / "synth.log")
            if synth.rc != 0:
                raise SystemExit(f"synth failed: {synth.result()}")
        bench.make_reference()
        rows = []
        for row in bench.cases(chosen, args.kills):
            rows.append(row)
            line = f"[{time.monotonic() - started:4.0f} s] {row.case}: {row.result} / {row.identical}"
            print(short(line, bench.root), flush=True)
    finally:
        bench.unmount_all()
        if args.root is None and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\n{len(rows)} cases in {time.monotonic() - started:.0f} s on {bench.data}")
    print_table(rows, bench.root)
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
