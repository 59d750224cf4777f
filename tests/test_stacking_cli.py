"""`python -m stacking` end to end on a small synthetic work folder: tables, outputs, choice, resume."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.artifacts import read_provenance
from core.cli import main as cli
from core.schema import TARGET_COLUMNS, VOTE_COLUMNS
from features.submission_file import validate_submission
from stacking.saved_stacker import load_stacker
from synthetic.oof_sets import write_synthetic_work

N_TEST = 30


def main(argv: list[str]) -> int:
    return cli(["stack", *argv])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    work, data = root / "work", root / "data"
    write_synthetic_work(work, n_rows=1500, n_test=N_TEST, seed=4)
    data.mkdir()
    ids = pd.read_parquet(work / "test" / "model_00.parquet")["eeg_id"]
    pd.DataFrame({"eeg_id": ids[::-1], **{c: 1 / 6 for c in VOTE_COLUMNS}}).to_csv(
        data / "sample_submission.csv", index=False)
    return work, data


def _stack(folders, *extra):
    work, data = folders
    return main(["--work", str(work), "--data", str(data), "trials=3", "tune_rows=600",
                 "threads=1", "selection.steps=20", *extra])


def test_stack_writes_outputs_and_names_the_final_method(folders, capsys):
    work, data = folders
    assert _stack(folders, "min_votes=auto") == 0
    out = capsys.readouterr().out
    assert "model_00" in out and "class prior" in out and "final: " in out and "nested estimate" in out
    report = json.loads((work / "stack" / "report.json").read_text())
    assert set(report["stackers"]) == {"blend", "selection", "logit", "mlp", "lgbm"}
    final = report["final"]
    assert final["method"] in report["stackers"] and final["method"] in out.split("final: ")[1]
    assert np.isfinite(final["nested_kl_high"]) and len(final["nested_per_fold"]) == 5
    assert report["stackers"]["blend"]["weights"]["noise_04"] < 0.02
    assert report["stackers"]["selection"]["counts"]
    assert report["stackers"]["lgbm"]["params"]["learning_rate"] > 0
    for entry in (*report["member_kl"].values(), *report["baselines"].values(), *report["stackers"].values()):
        assert {"kl_all", "kl_high"} <= set(entry)
    assert report["code_version"] and report["config"]["min_votes"] == "auto"
    best_single = min(s["kl_high"] for s in report["member_kl"].values())
    assert final["kl_high"] < min(best_single, report["baselines"]["mean"]["kl_high"])
    oof = pd.read_parquet(work / "stack" / "oof.parquet")
    assert {"eeg_id", "label_id", "fold", "n_votes", *VOTE_COLUMNS, *TARGET_COLUMNS} <= set(oof.columns)
    assert read_provenance(work / "stack" / "oof.parquet")["method"] == final["method"]
    assert len(pd.read_parquet(work / "stack" / "test.parquet")) == N_TEST
    validate_submission(work / "submission.csv", data)
    test_probs = {name: pd.read_parquet(work / "test" / f"{name}.parquet").sort_values("eeg_id")[
        list(VOTE_COLUMNS)].to_numpy() for name in report["members"]}
    stacked = pd.read_parquet(work / "stack" / "test.parquet")[list(VOTE_COLUMNS)].to_numpy()
    np.testing.assert_allclose(load_stacker(work).apply(test_probs), stacked, rtol=0, atol=1e-9)


def test_second_run_reuses_the_lgbm_study_and_its_choice(folders, capsys):
    work, _ = folders
    first = json.loads((work / "stack" / "report.json").read_text())["stackers"]["lgbm"]
    assert _stack(folders, "methods=lgbm", "min_votes=auto") == 0
    again = json.loads((work / "stack" / "report.json").read_text())["stackers"]["lgbm"]
    assert again["n_trials"] == 3 and again["study"] == first["study"]  # the same 3 trials, not 3 more
    assert (again["params"], again["cv_kl_high"]) == (first["params"], first["cv_kl_high"])
    assert (work / "stack" / "optuna.db").exists()


def test_misaligned_member_is_refused_in_one_line(folders, capsys, tmp_path):
    work, data = folders
    bad = tmp_path / "work"
    write_synthetic_work(bad, n_rows=300, n_test=5)
    frame = pd.read_parquet(bad / "oof" / "model_01.parquet")
    frame.assign(fold=(frame.fold + 1) % 5).to_parquet(bad / "oof" / "model_01.parquet", index=False)
    assert main(["--work", str(bad), "submission=false"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "model_01.parquet" in err and "models=" in err
