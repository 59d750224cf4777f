"""`oof --gpus cpu,cpu` (`make oof GPUS=cpu,cpu`): folds in parallel processes, one log per fold, a
failed fold fails the command naming its log, a rerun trains what is missing and merges."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from core.artifacts import write_json
from core.cli import main as cli
from core.errors import UserFacingError
from core.work import Work
from oof import parallel_folds
from oof.parallel_folds import child_threads, parse_gpus
from oof.recipes import get_recipe

pytestmark = pytest.mark.slow
SETTINGS = ["n_folds=2", "epochs=1", "stage2_epochs=0", "batch_size=8"]


def test_parse_gpus():
    assert parse_gpus("0,1,2,3") == ["0", "1", "2", "3"] and parse_gpus("cpu, cpu") == ["cpu", "cpu"]
    with pytest.raises(UserFacingError, match="cpu,cpu"):
        parse_gpus("0,gpu1")


def test_the_children_share_the_cores_unless_the_user_set_threads(monkeypatch):
    monkeypatch.setattr(parallel_folds, "available_cores", lambda: 16)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    assert child_threads(4) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}
    assert child_threads(32) == {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert child_threads(4) == {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "4"}
    args = argparse.Namespace(model="wave1d_cpu", data="d", work="w", overrides=[])
    cmd, env = parallel_folds._child(args, 1, "cpu", child_threads(4))
    assert env["OMP_NUM_THREADS"] == "3" and env["MKL_NUM_THREADS"] == "4" and env["CUDA_VISIBLE_DEVICES"] == ""


def test_folds_in_parallel_fail_with_the_log_then_resume_and_merge(tmp_path, capsys):
    data, work = tmp_path / "data", Work(tmp_path / "work")
    assert cli(["synth", str(data), "--n-eegs", "24", "--seed", "0", "--n-test", "4"]) == 0
    args = ["oof", "--model", "wave1d_cpu", "--data", str(data), "--work", str(work.root), "--gpus", "cpu,cpu",
            *SETTINGS]
    broken = work.run_dir("wave1d_cpu", 1) / "last.pt"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a checkpoint")  # fold 1's process dies loading it
    recipe = get_recipe("wave1d_cpu", SETTINGS)
    write_json(work.run_recipe("wave1d_cpu", 1), {"recipe": recipe.to_dict()})  # started with these settings
    capsys.readouterr()
    assert cli(args) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]  # above it: the parent's cache progress bars
    assert "fold 1 failed" in message and str(work.fold_log("wave1d_cpu", 1)) in message and "\n" not in message
    assert "is not a readable checkpoint" in message  # the log's error line, quoted
    assert work.oof_shard("wave1d_cpu", 0).exists() and not work.oof("wave1d_cpu").exists()
    assert "KL all" in work.fold_log("wave1d_cpu", 0).read_text()
    assert "OMP_NUM_THREADS=" in work.fold_log("wave1d_cpu", 0).read_text().splitlines()[0]

    broken.unlink()
    assert cli(args) == 0  # fold 0 is not launched again; fold 1 trains; the parent merges
    assert work.oof_shard("wave1d_cpu", 1).exists() and work.oof("wave1d_cpu").exists()
    assert len(pd.read_parquet(work.oof("wave1d_cpu"))) == len(pd.read_parquet(work.folds()))
    assert "overall" in capsys.readouterr().out
