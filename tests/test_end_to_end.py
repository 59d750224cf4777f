"""One tiny end-to-end run: synthetic data -> OOF runs of two presets -> stack -> submission.csv."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from core.schema import TARGET_COLUMNS, VOTE_COLUMNS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def data(tiny_data) -> Path:
    return tiny_data


@pytest.fixture
def work(tiny_work) -> Path:
    """`make oof` of wave1d_cpu and mit_b0_kspec_cpu, then `make stack` (tests/conftest.py)."""
    return tiny_work


def test_oof_files_meet_the_contract(work, data):
    folds = pd.read_parquet(work / "folds.parquet")
    test_ids = set(pd.read_csv(data / "test.csv")["eeg_id"])
    for model in ("wave1d_cpu", "mit_b0_kspec_cpu"):
        oof = pd.read_parquet(work / "oof" / f"{model}.parquet")
        assert {"eeg_id", "label_id", "fold", "n_votes", *VOTE_COLUMNS, *TARGET_COLUMNS} <= set(oof.columns)
        merged = oof.merge(folds, on=["eeg_id", "label_id"], suffixes=("", "_file"), validate="one_to_one")
        assert len(merged) == len(folds) and (merged["fold"] == merged["fold_file"]).all()
        np.testing.assert_allclose(oof[list(VOTE_COLUMNS)].sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(oof[list(TARGET_COLUMNS)].sum(axis=1), 1.0, atol=1e-6)
        test = pd.read_parquet(work / "test" / f"{model}.parquet")
        assert set(test["eeg_id"]) == test_ids
        np.testing.assert_allclose(test[list(VOTE_COLUMNS)].sum(axis=1), 1.0, atol=1e-6)
        report = (work / "oof" / f"{model}.json").read_text()
        assert '"code_version"' in report and '"kl_per_fold"' in report
        assert json.loads(report)["make_oof"]["MODEL"] == model  # the command that trains it again
        assert list((work / "models" / model / "fold0").glob("best.pt"))


def test_stack_writes_a_valid_submission(work, data):
    from features.submission_file import validate_submission

    submission = pd.read_csv(work / "submission.csv")
    validate_submission(submission, data)
    assert len(submission) == 4


def test_killed_run_resumes_from_its_checkpoint(data, tmp_path):
    work = tmp_path / "work"
    args = ["--model", "wave1d_cpu", "--data", str(data), "--work", str(work), "--folds", "0",
            "n_folds=3", "epochs=12", "stage2_epochs=0", "batch_size=8"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first_log = (tmp_path / "first_run.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "oof", "run", *args], cwd=ROOT, env=env,
                            stdout=first_log, stderr=first_log)
    run_dir = work / "models" / "wave1d_cpu" / "fold0"
    deadline = time.time() + 900  # generous: the cache build and first epoch crawl on a loaded 2-core machine
    while not (run_dir / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first_log.close()
    log_tail = (tmp_path / "first_run.log").read_text()[-2000:]
    assert (run_dir / "last.pt").exists() and not (run_dir / "done.json").exists(), log_tail
    killed_at = torch.load(run_dir / "last.pt", weights_only=True)["epoch"]
    result = subprocess.run([sys.executable, "-m", "oof", "run", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming {run_dir} at epoch {killed_at + 1}" in result.stderr
    assert (run_dir / "done.json").exists()
    assert (work / "oof" / "shards" / "wave1d_cpu.fold0.parquet").exists()
