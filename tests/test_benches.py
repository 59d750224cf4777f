"""Benchmarks measure what they claim: the feature bench's notebook-style reference computes the same
views as `compute_view` (else its speed ratio means nothing), the training-speed bench runs the
training loop's own step in both precision modes, and the fault bench's cases still run, kill and
compare (a difference from the reference is seen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.faults import STEPS, FaultBench, differences
from bench.features import reference_view
from bench.train_speed import MODES, measure
from features.kaggle_data import KaggleFolder
from features.views import compute_view, get_view
from oof.recipes import get_recipe
from tests.kaggle_layout import make_folder


@pytest.mark.parametrize("name", ["eeg_spec", "eeg_spec_pairmax", "wave"])
def test_reference_matches_compute_view(tmp_path, name):
    data = make_folder(tmp_path / "data", n_eegs=2)
    folder = KaggleFolder(data)
    rows = folder.train_table().head(2)
    view = get_view(name)
    windows = [folder.eeg_windows("train", r.eeg_id, [r.eeg_label_offset_seconds]) for r in rows.itertuples()]
    ours = np.concatenate([compute_view(view, eeg_windows=w) for w in windows])
    np.testing.assert_allclose(reference_view(view, data, rows).astype(np.float32), ours, atol=5e-3)


@pytest.mark.parametrize("mode", list(MODES))
def test_train_speed_runs_the_loop_step(mode):
    recipe = get_recipe("wave1d_cpu", "batch_size=4")
    result = measure(recipe, MODES[mode], steps=2, repeats=1, device=torch.device("cpu"))
    assert result["samples_per_s"] > 0 and result["peak_gib"] is None


def test_fault_bench_make_clean_case_refuses_a_data_folder(tmp_path):
    bench = FaultBench(tmp_path / "bench", make_folder(tmp_path / "data", n_eegs=1))
    row = bench.make_clean_refused()
    assert row.passed and row.result.startswith("exit 2: error: ") and "has no .hms-stack marker" in row.result
    assert "the folder is intact" in row.result


@pytest.mark.slow
def test_fault_bench_kills_prepare_and_compares_the_rerun_with_the_reference(tmp_path):
    bench = FaultBench(tmp_path / "bench", make_folder(tmp_path / "data", n_eegs=4))
    bench.make_reference(("prepare",))
    row = bench.kill("prepare", 0.0)  # at the first log line: before the build ends
    assert row.case.startswith("kill -9 prepare, killed at ") and (row.result, row.identical, row.passed) == (
        "ok", "yes", True)
    [work] = (bench.root / "cases").glob("kill-prepare*/work")
    [array] = work.glob("cache/eeg_spec_tiny-*/train.npy")
    values = np.load(array, mmap_mode="r+")
    values[0] += 1
    values.flush()
    assert differences(work, bench.reference, STEPS["prepare"].compared) == [str(array.relative_to(work))]
