"""Shared fixtures. `tiny_data`/`tiny_work`: a session-wide tiny end-to-end run (synthetic data -> three
members -> stack) for the submission, bundle and report tests: the files `make oof` + `make stack` write."""

from __future__ import annotations

from pathlib import Path

import pytest

FAST = ["n_folds=3", "epochs=2", "stage2_epochs=1", "batch_size=16"]
# The kspec member reads the full kaggle_spec view: the table-row cache (features.spec_tables) end to end.
# The LightGBM member (features, boosters as best.txt) goes through the same driver, stack, submission and bundle.
MEMBERS = (("wave1d_cpu", []), ("mit_b0_kspec_cpu", ["image_size=64", "views=kaggle_spec", "windows_per_recording=1"]),
           ("lgbm_bands", ["n_estimators=150", "min_votes=1"]))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    from core.cli import main as cli

    out = tmp_path_factory.mktemp("tiny") / "data"
    assert cli(["synth", str(out), "--n-eegs", "48", "--seed", "3", "--n-test", "4"]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_work(tiny_data, tmp_path_factory) -> Path:
    """WORK after `make oof` of both members and `make stack`: checkpoints, OOF/test sets, saved stacker."""
    from core.cli import main as cli

    work = tmp_path_factory.mktemp("tiny") / "work"
    for model, extra in MEMBERS:
        assert cli(["oof", "--model", model, "--data", str(tiny_data), "--work", str(work), *FAST, *extra]) == 0
    assert cli(["stack", "--data", str(tiny_data), "--work", str(work), "trials=5"]) == 0
    return work
