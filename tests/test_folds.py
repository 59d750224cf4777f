"""Folds are patient-grouped, stable, and tied to their data folder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from core.schema import TARGET_COLUMNS
from oof.folds import create_or_load_folds, make_folds
from tests.kaggle_layout import make_folder


def random_samples(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    targets = rng.dirichlet(np.full(6, 0.5), size=n)
    frame = pd.DataFrame(targets, columns=list(TARGET_COLUMNS))
    frame["eeg_id"] = rng.integers(0, 150, size=n)
    frame["patient_id"] = frame["eeg_id"] // 3
    frame["label_id"] = np.arange(n)
    return frame


def test_no_patient_in_two_folds_and_all_folds_used():
    folds = make_folds(random_samples(), n_folds=5)
    assert (folds.groupby("patient_id")["fold"].nunique() == 1).all()
    assert sorted(folds["fold"].unique()) == [0, 1, 2, 3, 4]


def test_folds_are_deterministic_per_seed():
    a = make_folds(random_samples(), seed=1)["fold"].to_numpy()
    b = make_folds(random_samples(), seed=1)["fold"].to_numpy()
    c = make_folds(random_samples(), seed=2)["fold"].to_numpy()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_folds_file_is_reused_and_refused_for_other_data(tmp_path):
    data = make_folder(tmp_path / "data")
    first = create_or_load_folds(data, tmp_path / "work", n_folds=3)
    again = create_or_load_folds(data, tmp_path / "work", n_folds=3)
    pd.testing.assert_frame_equal(first, again)
    other = make_folder(tmp_path / "other", seed=5)
    with pytest.raises(DataError, match="made for another data folder"):
        create_or_load_folds(other, tmp_path / "work")


def test_cv_job_uses_the_folds_file_and_records_its_fold_count(tmp_path, caplog):
    from oof.cv import CVJob
    from oof.recipes import get_recipe

    data = make_folder(tmp_path / "data")
    create_or_load_folds(data, tmp_path / "work", n_folds=3)
    with caplog.at_level("WARNING"):
        job = CVJob(get_recipe("wave1d_cpu"), data, tmp_path / "work", device="cpu")
    assert job.fold_ids == [0, 1, 2] and job.recipe.data.n_folds == 3
    assert "has 3 folds, not the recipe's n_folds=5" in caplog.text


def test_a_fold_trains_the_same_whatever_ran_before_in_the_process(tmp_path):
    import torch

    from oof.cv import CVJob
    from oof.recipes import get_recipe

    data = make_folder(tmp_path / "data")
    recipe = get_recipe("wave1d_cpu", "n_folds=2 epochs=1 stage2_epochs=0 batch_size=4")
    shards = []
    for run, draws in enumerate((0, 7)):  # the global RNG at a different point: another history
        torch.rand(draws)
        work = tmp_path / f"work{run}"
        create_or_load_folds(data, work, n_folds=2)
        CVJob(recipe, data, work, device=torch.device("cpu")).run_fold(0)
        shards.append(pd.read_parquet(work / "oof" / "shards" / "wave1d_cpu.fold0.parquet"))
    pd.testing.assert_frame_equal(shards[0], shards[1])


def test_a_renamed_variant_writes_its_own_files(tmp_path):
    import torch

    from oof.cv import CVJob
    from oof.recipes import get_recipe

    data = make_folder(tmp_path / "data")
    work = tmp_path / "work"
    create_or_load_folds(data, work, n_folds=2)
    recipe = get_recipe("wave1d_cpu", "name=wave1d_cpu_s1 seed=1 n_folds=2 epochs=1 stage2_epochs=0 batch_size=4")
    CVJob(recipe, data, work, device=torch.device("cpu")).run_fold(1)
    assert (work / "oof" / "shards" / "wave1d_cpu_s1.fold1.parquet").exists()
    assert (work / "models" / "wave1d_cpu_s1" / "fold1" / "best.pt").exists()
    assert not (work / "models" / "wave1d_cpu").exists()
