"""Run records and progress (issue 17, items 1-2): history.csv per fold, consistent after a resume; the
TensorBoard tracker outside the fingerprints; the leaderboard of every OOF set; log files with
timestamps; progress lines where stderr is no terminal (logs, notebook subprocesses); Optuna progress."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from core.cli import main as cli
from core.errors import UserFacingError
from core.metric import score
from core.progress import PLAIN_INTERVAL_S, Throttle, progress_bar
from core.schema import TARGET_COLUMNS, VOTE_COLUMNS
from core.work import Work
from oof import tracking
from oof.leaderboard import leaderboard
from oof.recipes import get_recipe
from oof.tracking import HISTORY_COLUMNS, TIMING_COLUMNS
from oof.train_loop import SimulatedKill
from stacking.importer import import_oof
from stacking.tuning import TrialProgress
from synthetic.oof_sets import write_synthetic_work
from tests.conftest import MEMBERS
from tests.kaggle_layout import make_folder
from tests.test_stacking_import import export, folders  # noqa: F401  (folders: a fixture)
from tests.test_train_loop import AUGMENTER, config, fit

ROOT = Path(__file__).resolve().parent.parent
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARNING|ERROR) ", flags=re.M)


def read_history(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "history.csv")


def subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# --- history.csv -----------------------------------------------------------------------------------

def test_each_fold_writes_history_csv_one_row_per_epoch(tmp_path):
    _, result = fit(tmp_path, config(epochs=3, stage2_epochs=1))
    history = read_history(tmp_path)
    assert tuple(history.columns) == HISTORY_COLUMNS
    assert history["epoch"].tolist() == [0, 1, 2, 3] and history["stage"].tolist() == [1, 1, 1, 2]
    np.testing.assert_allclose(history["kl_all"], [r["kl_all"] for r in result.history], rtol=1e-12)
    np.testing.assert_allclose(history["train_loss"], [r["train_loss"] for r in result.history], rtol=1e-12)
    np.testing.assert_allclose(history["lr"], [r["lr"] for r in result.history], rtol=1e-12)
    assert (history["train_samples_per_s"] > 0).all()
    assert history["peak_gpu_gib"].isna().all()  # empty on the CPU


def test_history_csv_after_a_resume_equals_an_uninterrupted_runs(tmp_path):
    fit(tmp_path / "full", augmenter=AUGMENTER)
    with pytest.raises(SimulatedKill):
        fit(tmp_path / "resumed", augmenter=AUGMENTER, stop_after_epoch=1)
    assert len(read_history(tmp_path / "resumed")) == 2  # rewritten after every epoch, the kill included
    fit(tmp_path / "resumed", augmenter=AUGMENTER)
    full, resumed = (read_history(tmp_path / d).drop(columns=list(TIMING_COLUMNS)) for d in ("full", "resumed"))
    pd.testing.assert_frame_equal(full, resumed)


# --- the TensorBoard tracker -------------------------------------------------------------------------

def test_tracker_changes_neither_the_recipe_fingerprint_nor_the_resume(tmp_path, monkeypatch):
    assert get_recipe("wave1d_cpu", "tracker=tensorboard").fingerprint() == get_recipe("wave1d_cpu").fingerprint()
    scalars = []

    class FakeWriter:
        def add_scalar(self, tag, value, step):
            scalars.append((tag, step))

        def flush(self):
            pass

        def close(self):
            pass

    monkeypatch.setattr(tracking, "_tensorboard_writer", lambda log_dir: FakeWriter())
    with pytest.raises(SimulatedKill):
        fit(tmp_path, config(stage2_epochs=0), stop_after_epoch=0)
    fit(tmp_path, config(stage2_epochs=0, tracker="tensorboard"))  # resumes: the tracker is no setting of the run
    assert sorted({step for tag, step in scalars if tag == "kl/valid_all"}) == [1, 2]


def test_tensorboard_tracker_writes_an_event_file(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, result = fit(tmp_path, config(epochs=2, stage2_epochs=0, tracker="tensorboard"))
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    curves = EventAccumulator(str(tmp_path / "tensorboard"))
    curves.Reload()
    kl = curves.Scalars("kl/valid_all")
    assert [e.step for e in kl] == [0, 1]
    np.testing.assert_allclose([e.value for e in kl], [r["kl_all"] for r in result.history], rtol=1e-6)


def test_tensorboard_missing_is_one_line_naming_pip_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were not installed
    with pytest.raises(UserFacingError, match="pip install tensorboard") as err:
        fit(tmp_path, config(tracker="tensorboard"))
    assert "\n" not in str(err.value)
    with pytest.raises(UserFacingError, match="setting tracker=wandb"):
        get_recipe("wave1d_cpu", "tracker=wandb")


# --- the leaderboard and log files -------------------------------------------------------------------

def test_leaderboard_lists_every_oof_set_best_high_vote_kl_first(tmp_path):
    write_synthetic_work(tmp_path, n_rows=300, n_test=10, n_folds=3)
    table = leaderboard(tmp_path)
    assert sorted(table["member"]) == Work(tmp_path).member_names() and len(table) == 5
    assert table["kl_high"].is_monotonic_increasing and table["member"].iloc[-1] == "noise_04"
    oof = pd.read_parquet(Work(tmp_path).oof("model_00"))
    row = table.set_index("member").loc["model_00"]
    expected = score(oof[list(TARGET_COLUMNS)].to_numpy(), oof[list(VOTE_COLUMNS)].to_numpy(), oof["n_votes"])
    assert row["kl_all"] == pytest.approx(expected["kl_all"]) and row["kl_high"] == pytest.approx(expected["kl_high"])
    fold1 = oof[oof["fold"] == 1]
    fold1_kl = score(fold1[list(TARGET_COLUMNS)].to_numpy(), fold1[list(VOTE_COLUMNS)].to_numpy(), fold1["n_votes"])
    assert row["fold1_kl_high"] == pytest.approx(fold1_kl["kl_high"])
    assert set(table["kind"]) == {"other"} and table["code_version"].str.len().gt(0).all()


def test_leaderboard_marks_imported_sets(folders, tmp_path):  # noqa: F811  (the imported fixture)
    data, work, oof = folders  # one hand-written OOF set "ours" in WORK
    import_oof("outside", export(oof, tmp_path / "outside.csv"), work, data)
    table = leaderboard(work).set_index("member")
    assert table.loc["outside", "kind"] == "imported" and table.loc["ours", "kind"] == "other"


def test_leaderboard_command_prints_writes_the_csv_and_a_timestamped_log(tmp_path):
    write_synthetic_work(tmp_path, n_rows=200, n_test=10, n_folds=3)
    result = subprocess.run([sys.executable, "-m", "core.cli", "leaderboard", "--work", str(tmp_path)], cwd=ROOT,
                            env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in Work(tmp_path).member_names())
    assert pd.read_csv(Work(tmp_path).leaderboard())["member"].tolist()[-1] == "noise_04"
    logs = list(Work(tmp_path).logs_dir().glob("leaderboard-*Z-*.log"))
    assert len(logs) == 1 and TIMESTAMP.search(logs[0].read_text()) and TIMESTAMP.search(result.stderr)


def test_leaderboard_of_an_empty_work_is_one_line(tmp_path, capsys):
    assert cli(["leaderboard", "--work", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no OOF sets" in err and "make oof" in err


@pytest.mark.slow
def test_leaderboard_and_histories_of_the_tiny_run(tiny_work):
    table = leaderboard(tiny_work).set_index("member")
    assert sorted(table.index) == sorted(name for name, _ in MEMBERS)
    assert (table["kind"] == "trained").all() and (table["wall_s"] > 0).all()
    assert table.loc["wave1d_cpu", "recipe"] == "wave1d_cpu"
    for name, _ in MEMBERS:
        for fold in range(3):
            history = read_history(Work(tiny_work).run_dir(name, fold))
            assert len(history) == (1 if name == "lgbm_bands" else 3)  # FAST: 2 + 1 epochs; a booster: 1 row


# --- progress ----------------------------------------------------------------------------------------

@pytest.mark.slow
def test_test_inference_shows_progress_per_recording(tiny_data, tiny_work, capsys):
    from submission.infer import predict_test

    predict_test(tiny_data, tiny_work, ["lgbm_bands"], chunk=3)  # 4 recordings in chunks of 3: one bar over both
    err = capsys.readouterr().err
    assert re.search(r"^test recordings read: 100%.*4/4", err, flags=re.M), err
    assert "\r" not in err


def test_off_a_terminal_a_bar_writes_whole_lines_throttled(capsys):
    for _ in progress_bar(range(5000), desc="rows"):
        pass
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("rows:   0%") and "5000/5000" in lines[1]  # first and last


def test_a_training_run_without_a_terminal_shows_progress_lines(tmp_path):
    """As in a notebook's `!python ...` or a log file: stderr is a pipe."""
    script = ("import sys; from tests.test_train_loop import fit, config; "
              "fit(sys.argv[1], config(epochs=2, stage2_epochs=0))")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, env=subprocess_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    for epoch in (0, 1):
        assert re.search(rf"^epoch {epoch} stage 1: 100%.*5/5", result.stderr, flags=re.M), result.stderr


def test_a_cache_build_without_a_terminal_shows_progress_lines_and_logs_to_work(tmp_path):
    data = make_folder(tmp_path / "data")
    work = tmp_path / "work"
    result = subprocess.run([sys.executable, "-m", "core.cli", "prepare", "--view", "wave_tiny", "--data", str(data),
                             "--work", str(work), "--jobs", "1"], cwd=ROOT, env=subprocess_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr
    assert re.search(r"^wave_tiny train: 100%.*18/18", result.stderr, flags=re.M), result.stderr
    assert re.search(r"^wave_tiny test: 100%.*1/1", result.stderr, flags=re.M)
    log = next(Work(work).logs_dir().glob("prepare-*.log")).read_text()
    assert TIMESTAMP.search(log)


def test_throttle_allows_one_event_per_interval():
    now = [0.0]
    throttle = Throttle(PLAIN_INTERVAL_S, clock=lambda: now[0])
    seen = []
    for t in (0.0, 1.0, 4.9, 5.0, 6.0, 10.5):
        now[0] = t
        seen.append(throttle.ready())
    assert seen == [True, False, False, True, False, True]


def test_optuna_progress_logs_trial_count_and_best_value(caplog):
    now = [0.0]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    progress = TrialProgress("lgbm", 6, always=True, throttle=Throttle(5.0, clock=lambda: now[0]))

    def objective(trial):
        now[0] += 2.0  # two seconds a trial: lines at trial 1, trial 4 (6 s after it) and the last
        return trial.suggest_float("x", -1, 1) ** 2

    with caplog.at_level("INFO", logger="stacking.tuning"):
        study.optimize(objective, n_trials=6, callbacks=[progress])
    lines = [r.getMessage() for r in caplog.records if r.name == "stacking.tuning"]
    assert [line.split(",")[0] for line in lines] == ["lgbm: trial 1/6", "lgbm: trial 4/6", "lgbm: trial 6/6"]
    assert lines[-1].endswith(f"best value {study.best_value:.5f}")
    caplog.clear()
    with caplog.at_level("INFO", logger="stacking.tuning"):  # a cross-fit's short search: quiet
        study.optimize(lambda t: t.suggest_float("x", -1, 1), n_trials=3, callbacks=[TrialProgress("blend", 3)])
    assert not [r for r in caplog.records if r.name == "stacking.tuning"]
