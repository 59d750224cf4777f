"""DDP on the CPU: `torchrun --nproc_per_node=2 -m oof run` with the gloo backend trains a fold across
two processes, is killed after its first epoch checkpoint, resumes, merges the OOF files, and ends
close to a one-process run with the same global batch.

Tolerance: |KL(DDP) - KL(one process)| < 0.05 on a validation KL of about 1.2. Not bitwise: each rank
steps on batch/2 rows, so BatchNorm normalises with per-rank statistics, and each rank augments and
drops out with its own generator; the global batches hold the same rows and the initial weights are the same.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from core.cli import main as cli
from core.metric import score
from core.schema import TARGET_COLUMNS, VOTE_COLUMNS
from oof.distributed import Dist

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ["n_folds=2", "epochs=2", "stage2_epochs=0", "batch_size=8"]
TOLERANCE = 0.05


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(data: Path, work: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={free_port()}", "-m", "oof", "run", "--model", "wave1d_cpu", "--data", str(data),
           "--work", str(work), "--device", "cpu", *extra, *SETTINGS]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def fold_kl(work: Path, name: str) -> float:
    oof = pd.read_parquet(work / "oof" / "shards" / f"{name}.fold0.parquet")
    return score(oof[list(TARGET_COLUMNS)].to_numpy(), oof[list(VOTE_COLUMNS)].to_numpy(),
                 oof["n_votes"].to_numpy())["kl_all"]


@pytest.mark.parametrize("n_rows, world", [(10, 2), (11, 2), (7, 3), (2, 4)])
def test_shard_gives_every_rank_as_many_rows_and_covers_the_epoch(n_rows, world):
    rows = pd.DataFrame({"label_id": range(100, 100 + n_rows)})
    shards = [Dist(rank, world).shard(rows)["label_id"].tolist() for rank in range(world)]
    assert len({len(s) for s in shards}) == 1  # same number of steps on every rank: no DDP hang
    assert set().union(*shards) == set(rows["label_id"])
    assert shards == [Dist(rank, world).shard(rows)["label_id"].tolist() for rank in range(world)]
    assert [r for step in zip(*shards, strict=True) for r in step][:n_rows] == rows["label_id"].tolist()


def test_ddp_two_processes_resume_merge_and_match_one_process(tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    assert cli(["synth", str(data), "--n-eegs", "24", "--seed", "0", "--n-test", "4"]) == 0
    killed = torchrun(data, work, "--folds", "0", "--stop-after-epoch", "0")
    run_dir = work / "models" / "wave1d_cpu" / "fold0"
    assert killed.returncode != 0 and "SimulatedKill" in killed.stderr, killed.stderr[-3000:]
    ckpt = torch.load(run_dir / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 0 and len(ckpt["rank_rng"]) == 2 and not (run_dir / "done.json").exists()

    resumed = torchrun(data, work)  # every fold: 0 resumes, 1 trains, then the merge
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {run_dir} at epoch 1" in resumed.stderr
    assert resumed.stderr.count("epoch 1 stage 1 train") == 2  # rank 0 alone logs: once per fold
    assert (work / "oof" / "wave1d_cpu.parquet").exists() and (work / "test" / "wave1d_cpu.parquet").exists()
    assert len(pd.read_parquet(work / "oof" / "wave1d_cpu.parquet")) == len(pd.read_parquet(work / "folds.parquet"))

    # one process, the same global batch, the same WORK (folds and cache); a variant name keeps its files apart
    assert cli(["oof", "--model", "wave1d_cpu", "--data", str(data), "--work", str(work), "--folds", "0",
                "--device", "cpu", *SETTINGS, "name=single"]) == 0
    ddp, single = fold_kl(work, "wave1d_cpu"), fold_kl(work, "single")
    print(f"fold 0 validation KL: DDP {ddp:.4f}, one process {single:.4f}, difference {abs(ddp - single):.4f}")
    assert abs(ddp - single) < TOLERANCE
