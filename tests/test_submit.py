"""`python -m stacking submit`: test-time inference from checkpoints + the saved stacker reproduces
the test predictions of `make oof` + `make stack`, and missing pieces end in one clear line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cli import main as cli
from core.errors import UserFacingError
from core.schema import VOTE_COLUMNS

pytestmark = pytest.mark.slow
NAMES = ["wave1d_cpu", "mit_b0_kspec_cpu", "lgbm_bands"]  # the members of the conftest tiny_work run


@pytest.fixture(scope="module")
def member_test_probs(tiny_data, tiny_work):
    from submission.infer import predict_test

    return predict_test(tiny_data, tiny_work, NAMES)


def _test_frame(path: Path, ids: np.ndarray) -> np.ndarray:
    return pd.read_parquet(path).set_index("eeg_id").loc[ids, list(VOTE_COLUMNS)].to_numpy(np.float64)


def test_member_inference_equals_the_oof_runs_test_predictions(member_test_probs, tiny_work):
    ids, probs = member_test_probs
    for name in NAMES:
        np.testing.assert_allclose(probs[name], _test_frame(tiny_work / "test" / f"{name}.parquet", ids),
                                   rtol=0, atol=1e-9)


def test_submit_writes_the_submission_of_make_stack(tiny_data, tiny_work, tmp_path):
    from features.submission_file import validate_submission

    out = tmp_path / "submission.csv"
    assert cli(["submit", "--data", str(tiny_data), "--work", str(tiny_work), "--out", str(out)]) == 0
    validate_submission(out, tiny_data)
    ours, stacked = pd.read_csv(out), pd.read_csv(tiny_work / "submission.csv")
    assert ours["eeg_id"].tolist() == stacked["eeg_id"].tolist()
    np.testing.assert_allclose(ours[list(VOTE_COLUMNS)], stacked[list(VOTE_COLUMNS)], rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", ["blend", "selection", "lgbm"])
def test_saved_stacker_reproduces_its_test_predictions(method, member_test_probs, tiny_data, tiny_work,
                                                       tmp_path):
    from stacking.saved_stacker import load_stacker

    work = tmp_path / "work"
    for part in ("oof", "test"):
        shutil.copytree(tiny_work / part, work / part, ignore=shutil.ignore_patterns("shards"))
    shutil.copy2(tiny_work / "folds.parquet", work / "folds.parquet")
    args = ["stack", "--data", str(tiny_data), "--work", str(work), f"methods={method}", "trials=3", "submission=false"]
    assert cli(args) == 0
    ids, probs = member_test_probs
    stacker = load_stacker(work)
    assert stacker.method == method
    np.testing.assert_allclose(stacker.apply(probs), _test_frame(work / "stack" / "test.parquet", ids),
                               rtol=0, atol=1e-9)


def _broken_copy(tiny_work: Path, tmp_path: Path) -> Path:
    work = tmp_path / "work"
    for part in ("oof", "models", "stack"):
        shutil.copytree(tiny_work / part, work / part)
    return work


@pytest.mark.parametrize("remove, named, fix", [
    ("models/mit_b0_kspec_cpu/fold1/best.pt", "fold1/best.pt", "make oof MODEL=mit_b0_kspec_cpu FOLDS=1"),
    ("oof/wave1d_cpu.json", "oof/wave1d_cpu.json", "make oof MODEL=wave1d_cpu"),
    ("stack/stacker.json", "stack/stacker.json", "make stack"),
])
def test_missing_piece_is_one_line_naming_file_and_fix(remove, named, fix, tiny_data, tiny_work, tmp_path,
                                                       capsys):
    work = _broken_copy(tiny_work, tmp_path)
    (work / remove).unlink()
    assert cli(["submit", "--data", str(tiny_data), "--work", str(work)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and fix in err, err
    assert not (work / "submission.csv").exists()


def test_missing_member_predictions_are_refused(member_test_probs, tiny_work):
    from stacking.saved_stacker import load_stacker

    _, probs = member_test_probs
    with pytest.raises(UserFacingError, match="wave1d_cpu"):
        load_stacker(tiny_work).apply({k: v for k, v in probs.items() if k != "wave1d_cpu"})


def test_hints_quote_the_recorded_make_oof_line_of_a_variant():
    from submission.infer import retrain_command

    variant = {"make_oof": {"MODEL": "wave1d_cpu", "ARGS": "name=wave1d_cpu_s1 seed=1"}}
    expected = 'make oof MODEL=wave1d_cpu FOLDS=2 ARGS="name=wave1d_cpu_s1 seed=1"'
    assert retrain_command(variant, "wave1d_cpu_s1", 2) == expected
    assert retrain_command({}, "wave1d_cpu") == "make oof MODEL=wave1d_cpu"  # a JSON from before the field


def test_odd_test_recordings_degrade_their_rows_not_the_submission(tiny_data, tiny_work, tmp_path, caplog):
    """45 s, all-NaN, missing spectrogram: every eeg_id still gets a row, each odd one warned once."""
    import json

    from features.submission_file import validate_submission
    from tests.kaggle_layout import degraded_test_copy

    data = tmp_path / "data"
    data.mkdir()
    ids = degraded_test_copy(tiny_data, data)
    out = tmp_path / "submission.csv"
    assert cli(["submit", "--data", str(data), "--work", str(tiny_work), "--out", str(out)]) == 0
    validate_submission(out, data)
    ours = pd.read_csv(out).set_index("eeg_id").loc[ids, list(VOTE_COLUMNS)].to_numpy()
    whole = pd.read_csv(tiny_work / "submission.csv").set_index("eeg_id").loc[ids, list(VOTE_COLUMNS)].to_numpy()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    degraded = [w for w in warnings if w.startswith("test eeg_id")]
    assert [int(w.split()[2]) for w in degraded] == ids[:3], warnings
    assert "45.0 s long" in degraded[0] and "wave1d_cpu" in degraded[0] and "mit_b0_kspec_cpu" not in degraded[0]
    assert "every channel is NaN" in degraded[1] and "no member" not in degraded[1]
    assert "is missing" in degraded[2] and "mit_b0_kspec_cpu" in degraded[2] and "wave1d_cpu" not in degraded[2]
    assert any(w.startswith("3 degraded test recordings predicted by") for w in warnings)
    # the intact rows as before, up to the float rounding of a smaller batch
    np.testing.assert_allclose(ours[3:], whole[3:], rtol=0, atol=1e-6)
    prior = np.array(json.loads((tiny_work / "stack" / "stacker.json").read_text())["class_prior"])
    np.testing.assert_allclose(ours[1], prior / prior.sum(), rtol=0, atol=1e-9)  # no member could see it
    assert not np.allclose(ours[0], whole[0]) and not np.allclose(ours[2], whole[2])
