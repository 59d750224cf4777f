"""A fold is resumed or reused only under the recipe it was trained with (less the settings that cannot
change the result); bad fold lists, batch sizes and damaged checkpoints end in one line."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch

from core.cli import main as cli
from core.errors import UserFacingError
from core.work import Work
from features.views import VIEWS
from models.build import build_model
from models.config import ModelConfig
from oof.cv import changed_views, parse_folds, view_definitions
from oof.recipe import RESULT_NEUTRAL
from oof.recipes import get_recipe
from oof.train_loop import SimulatedKill
from tests.test_train_loop import config, fit

FAST = ["n_folds=2", "epochs=2", "stage2_epochs=0", "batch_size=8"]
CHANGED = ["swap_p=0.0", "dropout=0.5", "vote_weighting=linear"]  # augmentation, model, data: not training


def oof(data, work, *extra, model="wave1d_cpu"):
    return cli(["oof", "--model", model, "--data", str(data), "--work", str(work), "--folds", "0", *FAST, *extra])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ")
    return err


# --- the recipe comparison -----------------------------------------------------------------------

def test_changed_since_names_every_section_and_skips_the_neutral_fields():
    stored = get_recipe("wave1d_cpu").to_dict()
    assert get_recipe("wave1d_cpu", CHANGED).changed_since(stored) == [
        "augment.swap_p", "data.vote_weighting", "model.dropout"]
    assert get_recipe("wave1d_cpu", "num_workers=0 log_every=1 tracker=tensorboard").changed_since(stored) == []
    assert RESULT_NEUTRAL == {"train.num_workers", "train.log_every", "train.tracker"}  # as ARCHITECTURE.md documents
    assert get_recipe("wave1d_cpu", "gbdt.num_leaves=7").changed_since(stored) == []  # a section it does not use
    lgbm = get_recipe("lgbm_bands").to_dict()
    assert get_recipe("lgbm_bands", "num_leaves=7 lr=0.5").changed_since(lgbm) == ["gbdt.num_leaves"]


def test_a_field_added_since_a_run_was_stored_had_its_default():
    stored = get_recipe("wave1d_cpu").to_dict()
    del stored["augment"]["mixup_alpha"], stored["model"]["head_pool"]
    assert get_recipe("wave1d_cpu").changed_since(stored) == []
    assert get_recipe("wave1d_cpu", "mixup_alpha=0.9").changed_since(stored) == ["augment.mixup_alpha"]


def test_changed_views_names_the_fields_and_trusts_folds_stored_without_them(monkeypatch):
    stored = view_definitions(("wave", "bands_kspec"))
    assert changed_views(stored, view_definitions(("wave", "bands_kspec"))) == []
    assert isinstance(stored["wave"]["signal"]["bandpass_hz"], list)  # as JSON gives it back
    monkeypatch.setitem(VIEWS, "wave", dataclasses.replace(VIEWS["wave"], scale_uv=64.0, rate_hz=40))
    now = view_definitions(("wave", "bands_kspec"))
    assert changed_views(stored, now) == ["view wave.rate_hz", "view wave.scale_uv"]
    assert changed_views(None, now) == []  # a fold from before views were recorded


# --- kill, then resume with other settings ----------------------------------------------------------

@pytest.mark.slow
def test_a_killed_fold_resumes_only_under_its_recipe(tiny_data, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="oof.train_loop")
    work = Work(tmp_path / "work")
    with pytest.raises(SimulatedKill):
        oof(tiny_data, work.root, "--stop-after-epoch", "0")
    run_dir = work.run_dir("wave1d_cpu", 0)
    assert oof(tiny_data, work.root, *CHANGED) == 2
    err = one_line_error(capsys)
    assert str(run_dir) in err and "augment.swap_p, data.vote_weighting, model.dropout" in err and "delete" in err
    assert not work.oof_shard("wave1d_cpu", 0).exists()
    assert oof(tiny_data, work.root, "num_workers=0", "log_every=1") == 0  # neutral: it resumes
    assert f"resuming {run_dir} at epoch 1" in caplog.text
    assert work.oof_shard("wave1d_cpu", 0).exists()


@pytest.mark.slow
def test_a_finished_fold_is_not_reused_under_another_recipe(tiny_data, tmp_path, capsys):
    work = Work(tmp_path / "work")
    assert oof(tiny_data, work.root, "epochs=1") == 0
    shard = work.oof_shard("wave1d_cpu", 0)
    assert oof(tiny_data, work.root, "epochs=1", "dropout=0.5") == 2  # the shard
    err = one_line_error(capsys)
    assert str(shard) in err and "(model.dropout changed)" in err
    assert oof(tiny_data, work.root, "epochs=1", "num_workers=0") == 0  # neutral: the shard is reused
    shard.unlink()
    assert oof(tiny_data, work.root, "epochs=1", "dropout=0.5") == 2  # done.json, without its shard
    assert str(work.run_dir("wave1d_cpu", 0)) in one_line_error(capsys)
    work.run_recipe("wave1d_cpu", 0).unlink()  # a run folder from before recipes were recorded
    assert oof(tiny_data, work.root, "epochs=1") == 2
    assert "recipe.json" in one_line_error(capsys)


@pytest.mark.slow
def test_a_finished_fold_is_not_reused_after_its_view_changed(tiny_data, tmp_path, capsys, monkeypatch):
    """A view's code can change under the same name: the fold trained on the old one is not reused."""
    work = Work(tmp_path / "work")
    assert oof(tiny_data, work.root, "epochs=1") == 0
    monkeypatch.setitem(VIEWS, "wave_tiny", dataclasses.replace(VIEWS["wave_tiny"], scale_uv=64.0))
    assert oof(tiny_data, work.root, "epochs=1") == 2
    err = one_line_error(capsys)
    assert str(work.oof_shard("wave1d_cpu", 0)) in err and "(view wave_tiny.scale_uv changed)" in err


@pytest.mark.slow
def test_a_reused_fold_keeps_its_training_seconds(tiny_data, tmp_path):
    """The OOF record's seconds_per_fold are the fold's training time, also when a rerun only reloads its
    weights (killed after them, before the shards): not the second the reload took."""
    work = Work(tmp_path / "work")
    for model, extra in (("wave1d_cpu", ["epochs=1"]), ("lgbm_bands", ["n_estimators=20", "min_votes=1"])):
        argv = ["oof", "--model", model, "--data", str(tiny_data), "--work", str(work.root), *FAST, *extra]
        assert cli(argv) == 0
        first = json.loads(work.oof_json(model).read_text())["seconds_per_fold"]
        work.oof_shard(model, 0).unlink()
        assert cli(argv) == 0
        again = json.loads(work.oof_json(model).read_text())["seconds_per_fold"]
        assert again == pytest.approx(first) and first["0"] > 0


@pytest.mark.slow
def test_a_finished_booster_is_not_reused_under_another_recipe(tiny_data, tmp_path, capsys):
    work = Work(tmp_path / "work")
    gbdt = ["n_estimators=20", "min_votes=1"]
    assert oof(tiny_data, work.root, *gbdt, model="lgbm_bands") == 0
    work.oof_shard("lgbm_bands", 0).unlink()  # killed after the booster, before its shards
    assert oof(tiny_data, work.root, *gbdt, "num_leaves=7", model="lgbm_bands") == 2
    assert "(gbdt.num_leaves changed)" in one_line_error(capsys)
    recorded = json.loads(work.run_recipe("lgbm_bands", 0).read_text())["recipe"]
    assert recorded["gbdt"]["num_leaves"] == get_recipe("lgbm_bands").gbdt.num_leaves


@pytest.mark.slow
def test_writes_killed_in_a_fold_folder_leave_no_temporaries_behind(tiny_data, tmp_path):
    """kill -9 runs no cleanup: a fold folder keeps the temporary of the file being written (recipe.json
    first, then checkpoints the size of the model). The next run of that fold removes them."""
    work = Work(tmp_path / "work")
    run_dir = work.run_dir("wave1d_cpu", 0)
    run_dir.mkdir(parents=True)
    left = [run_dir / ".recipe.json.4242.0badcafe.tmp", run_dir / ".last.pt.4242.0badcafe.tmp"]
    for path in left:
        path.write_bytes(b"cut sh")
    assert oof(tiny_data, work.root, "epochs=1") == 0  # not "holds a run without its recipe.json"
    assert not any(path.exists() for path in left) and work.run_recipe("wave1d_cpu", 0).is_file()


# --- one line for bad input -------------------------------------------------------------------------

def test_folds_list_is_checked():
    assert parse_folds("") == [] and parse_folds("0, 2") == [0, 2]
    for bad in ("a", "0,x", "-1", "1.5"):
        with pytest.raises(UserFacingError, match="FOLDS=0,1"):
            parse_folds(bad)


@pytest.mark.slow
def test_bad_folds_are_one_line(tiny_data, tmp_path, capsys):
    args = ["oof", "--model", "wave1d_cpu", "--data", str(tiny_data), "--work", str(tmp_path / "w"), *FAST]
    assert cli([*args, "--folds", "a"]) == 2
    assert "--folds 'a'" in one_line_error(capsys)
    assert not (tmp_path / "w").exists()  # refused before any cache build, and no folder left behind
    assert cli([*args, "--folds", "7"]) == 2
    assert "fold 7 does not exist" in one_line_error(capsys)


@pytest.mark.parametrize("setting", ["batch_size=0", "log_every=0", "num_workers=-1", "stage2_epochs=-1"])
def test_a_training_setting_below_its_least_is_one_line(setting):
    with pytest.raises(UserFacingError, match=f"setting {setting}: .* must be at least"):
        get_recipe("wave1d_cpu", setting)


@pytest.mark.parametrize("cut", [0.5, 0.0])
def test_a_truncated_last_pt_names_the_file(tmp_path, cut):
    with pytest.raises(SimulatedKill):
        fit(tmp_path, stop_after_epoch=0)
    last = tmp_path / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(UserFacingError) as err:
        fit(tmp_path, config())
    message = str(err.value)
    assert str(last) in message and "delete it" in message and "\n" not in message


def test_a_damaged_best_pt_names_the_file(tmp_path):
    fit(tmp_path, config(epochs=1, stage2_epochs=0))
    (tmp_path / "best.pt").write_bytes(b"garbage")
    with pytest.raises(UserFacingError, match="best.pt is not a readable checkpoint"):
        fit(tmp_path, config(epochs=1, stage2_epochs=0))  # done.json: the finished fold reloads best.pt


def test_pretrained_is_refused_for_the_waveform_nets():
    recipe = get_recipe("wave1d_cpu", "pretrained=/weights/x.pth")
    with pytest.raises(UserFacingError, match="pretrained=/weights/x.pth is not supported"):
        build_model(recipe.model, 16)
    assert isinstance(build_model(ModelConfig(backbone=recipe.model.backbone, views=recipe.model.views), 16),
                      torch.nn.Module)
