"""One command-line grammar: `--help` at every level, key=value settings and config files for every
stage, usage errors in one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import COMMANDS, main
from core.errors import UserFacingError
from oof.recipes import get_recipe
from stacking.config import stack_config

ROOT = Path(__file__).resolve().parent.parent


def test_top_level_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(c.name in out for c in COMMANDS)


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_command_has_a_working_help(command, capsys):
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage:" in out and f"hms-stack {command}" in out


@pytest.mark.parametrize("stage", ["features", "oof", "stacking", "submission", "synthetic"])
def test_each_stage_lists_its_commands(stage):
    result = subprocess.run([sys.executable, "-m", stage, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    assert all(c.stage_name in result.stdout for c in COMMANDS if c.stage == stage)


def test_flags_where_settings_belong_end_in_one_line(capsys):
    assert main(["stack", "--work", "nowhere", "--trials", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "key=value" in err and "--trials" in err


def test_stack_settings_bare_keys_reach_every_section():
    cfg = stack_config(Path("w"), Path("d"), "trials=20 seed=3 blend.space=log min_votes=auto methods=blend,lgbm")
    assert (cfg.blend.trials, cfg.lgbm.trials, cfg.selection.seed, cfg.lgbm.seed) == (20, 20, 3, 3)
    assert cfg.blend.space == "log" and cfg.min_votes == "auto" and cfg.methods == ("blend", "lgbm")
    with pytest.raises(UserFacingError, match="did you mean blend.space"):
        stack_config(Path("w"), Path("d"), "blend.spac=log")


def test_config_files_then_overrides(tmp_path):
    (tmp_path / "r.yaml").write_text("epochs: 3\ntrain:\n  lr: 0.0002\nmodel:\n  views: [eeg_spec, kaggle_spec]\n")
    recipe = get_recipe("mit_b0_spec", [f"config={tmp_path / 'r.yaml'}", "epochs=5"])
    assert (recipe.train.epochs, recipe.train.lr, recipe.model.views) == (5, 2e-4, ("eeg_spec", "kaggle_spec"))
    (tmp_path / "s.json").write_text('{"trials": 7, "lgbm": {"tune_rows": 500}}')
    cfg = stack_config(tmp_path, tmp_path, [f"config={tmp_path / 's.json'}"])
    assert (cfg.blend.trials, cfg.lgbm.trials, cfg.lgbm.tune_rows) == (7, 7, 500)


@pytest.mark.parametrize("text, message", [("epochs: [", "does not parse"), ("- 1\n- 2\n", "mapping")])
def test_bad_config_file_is_one_line(tmp_path, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(UserFacingError, match=message):
        get_recipe("wave1d_cpu", [f"config={tmp_path / 'bad.yaml'}"])
    with pytest.raises(UserFacingError, match="not found"):
        get_recipe("wave1d_cpu", ["config=/nonexistent.yaml"])


def test_a_bare_key_goes_to_the_section_the_model_uses():
    neural, gbdt = get_recipe("wave1d_cpu", "seed=4"), get_recipe("lgbm_bands", "seed=4")
    assert (neural.train.seed, neural.gbdt.seed) == (4, 0)
    assert (gbdt.gbdt.seed, gbdt.train.seed) == (4, 0)
    assert neural.fingerprint() != get_recipe("wave1d_cpu").fingerprint()
    assert get_recipe("wave1d_cpu", "gbdt.num_leaves=7").fingerprint() == get_recipe("wave1d_cpu").fingerprint()


def test_make_help_lists_every_target():
    makefile = (ROOT / "Makefile").read_text()
    targets = {m.group(1) for m in re.finditer(r"^([a-z][a-z-]*):(?!=)", makefile, flags=re.M)}
    result = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.strip().startswith("make ")}
    assert targets - {"$(VENV)/.installed"} <= listed


@pytest.mark.parametrize("args", ["epochs=0", "amp=fp8", "select_on=best"])
def test_a_config_check_is_one_line(args):
    with pytest.raises(UserFacingError, match=f"setting {args}"):
        get_recipe("wave1d_cpu", args)
