"""`hms-stack oof --model NAME --gpus 0,1,2,3` (`make oof GPUS=0,1,2,3`): the folds in parallel, one
process per GPU at a time.

The parent prepares what every fold shares (the folds file, the view caches) once, then runs one
`oof --folds K` child per fold, at most one per listed GPU at a time (CUDA_VISIBLE_DEVICES=i, so each
child sees one GPU), each logging to WORK/models/NAME/foldK.log. A failed fold stops new launches;
the running ones finish (their checkpoints resume later) and the command fails naming that log.
Once every shard exists the parent merges, as a last `--folds` run would. `cpu` entries train on
the CPU (`GPUS=cpu,cpu`: two CPU processes, for tests). The children share the machine's cores: each
gets cores / slots intra-op threads (OMP_NUM_THREADS and MKL_NUM_THREADS, unless already set), since
torch's default of one thread per core in every child oversubscribes them, and its spinning threads then
run several times slower than one process alone.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from core.errors import UserFacingError
from core.work import Work
from features.cache import available_cores
from oof.cv import CVJob, make_command, parse_folds
from oof.recipes import get_recipe

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.5


def parse_gpus(text: str) -> list[str]:
    slots = [s.strip() for s in text.split(",") if s.strip()]
    if not slots or not all(s == "cpu" or s.isdigit() for s in slots):
        raise UserFacingError(f"--gpus {text!r}: list GPU indices or cpu, comma-separated (e.g. 0,1,2,3 or cpu,cpu)")
    return slots


def run_parallel(args: argparse.Namespace) -> None:
    slots, asked = parse_gpus(args.gpus), parse_folds(args.folds)
    recipe = get_recipe(args.model, args.overrides)
    device = torch.device("cpu" if all(s == "cpu" for s in slots) else "cuda")  # recorded in NAME.json
    job = CVJob(recipe, args.data, args.work, device, command=make_command(args.model, args.overrides))
    folds = job.chosen_folds(asked)
    todo = [k for k in folds if not job._shard_is_current(k)]  # also refuses shards of other settings
    log.info("%s: folds %s on %s, logs in %s", job.name, todo, ",".join(slots), job.work.model_dir(job.name))
    threads = child_threads(len(slots))
    failed = _run_all(todo, slots, lambda fold, slot: _child(args, fold, slot, threads), job.work, job.name)
    if failed:
        fold, code = failed[0]
        path = job.work.fold_log(job.name, fold)
        others = f"; also failed: folds {[k for k, _ in failed[1:]]}" if failed[1:] else ""
        raise UserFacingError(f"{job.name} fold {fold} failed (exit {code}): see {path} ({_last_line(path)}){others}; "
                              f"fix it and rerun (finished folds are kept, killed ones resume)")
    if job.all_shards_exist():
        print(job.merge())
    else:
        log.info("folds done: %s; the OOF file is written once every fold's shard exists", folds)


def _run_all(folds: list[int], slots: list[str], child, work: Work, name: str) -> list[tuple[int, int]]:
    """Run child(fold, slot) processes, one per slot at a time: [(fold, exit code)] of those that failed."""
    pending, running, failed = list(folds), {}, []
    while running or (pending and not failed):
        for i, slot in enumerate(slots):
            if i not in running and pending and not failed:
                fold = pending.pop(0)
                running[i] = (fold, *_launch(child(fold, slot), work.fold_log(name, fold)))
        time.sleep(POLL_S)
        for i, (fold, proc, handle) in list(running.items()):
            if proc.poll() is None:
                continue
            handle.close()
            del running[i]
            if proc.returncode:
                failed.append((fold, proc.returncode))
            else:
                log.info("%s fold %d done (%s)", name, fold, work.fold_log(name, fold))
    return failed


def child_threads(n_slots: int) -> dict[str, str]:
    """The thread settings every child gets: the user's, where set; else an equal share of the cores."""
    share = str(max(1, available_cores() // n_slots))
    return {name: os.environ.get(name, share) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def _child(args: argparse.Namespace, fold: int, slot: str, threads: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The `oof --folds K` command line and environment of one fold on one slot."""
    cmd = [sys.executable, "-m", "core.cli", "oof", "--model", args.model, "--data", str(args.data),
           "--work", str(args.work), "--folds", str(fold), "--device", "cpu" if slot == "cpu" else "cuda",
           "--no-merge", *args.overrides]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)  # this checkout first
    env = {**os.environ, **threads, "PYTHONPATH": path, "CUDA_VISIBLE_DEVICES": "" if slot == "cpu" else slot}
    return cmd, env


def _launch(command: tuple[list[str], dict[str, str]], log_path: Path):
    cmd, env = command
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handle = log_path.open("w")
    settings = " ".join(f"{k}={env[k]}" for k in ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS"))
    handle.write(f"$ {settings} {' '.join(cmd)}\n")
    handle.flush()
    return subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT), handle


def _last_line(path: Path) -> str:
    """The log's last exception or `error:` line (a traceback ends in its exception), else its last line."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"([\w.]+(Error|Exception|Kill)\b|error:)", line)]
    return (errors or lines or ["empty log"])[-1][:200]
