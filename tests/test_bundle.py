"""`python -m stacking bundle`: the Kaggle bundle installs into a fresh venv and writes, offline and
outside the checkout, the same submission as `make stack`."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.cli import main as cli
from core.schema import VOTE_COLUMNS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bundle(tiny_work) -> Path:
    assert cli(["bundle", "--work", str(tiny_work)]) == 0
    return tiny_work / "bundle"


def test_bundle_holds_wheel_checkpoints_configs_stacker_and_entry_points(bundle, tiny_work):
    assert len(list((bundle / "wheels").glob("hms_stack-*-py3-none-any.whl"))) == 1
    for name, checkpoint in (("wave1d_cpu", "best.pt"), ("mit_b0_kspec_cpu", "best.pt"), ("lgbm_bands", "best.txt")):
        assert (bundle / "work" / "oof" / f"{name}.json").is_file()
        assert sorted(p.parent.name for p in (bundle / "work" / "models" / name).glob(f"fold*/{checkpoint}")) == \
            ["fold0", "fold1", "fold2"]
    assert (bundle / "work" / "stack" / "stacker.json").is_file()
    assert not (bundle / "work" / "models" / "wave1d_cpu" / "fold0" / "last.pt").exists()  # weights only
    with zipfile.ZipFile(tiny_work / "bundle.zip") as archive:
        assert {"infer.py", "infer.ipynb", "work/stack/stacker.json"} <= set(archive.namelist())


def test_notebook_is_nbformat_4_with_the_entry_code(bundle):
    notebook = json.loads((bundle / "infer.ipynb").read_text())
    assert notebook["nbformat"] == 4 and notebook["metadata"]["kernelspec"]["name"] == "python3"
    code = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code"]
    for cell in notebook["cells"]:
        assert {"cell_type", "id", "metadata", "source"} <= set(cell)
    compile("\n".join(code), "infer.ipynb", "exec")
    assert "def install_wheel" in code[0] and "main([" in code[-1] and '__name__ == "__main__"' not in code[0]


def test_bundle_runs_offline_in_a_fresh_venv_outside_the_checkout(bundle, tiny_data, tiny_work, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Kaggle preinstalls torch, lightgbm, pandas, ...: here the project venv's packages stand in for them.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"], "PIP_NO_INDEX": "1"}
    result = subprocess.run([str(venv / "bin" / "python"), str(bundle / "infer.py"), "--data", str(tiny_data),
                             "--out", "submission.csv", "--device", "cpu", "--self-check"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"hms-stack from {venv}" in result.stderr  # the wheel, not the checkout
    assert "library versions:" in result.stderr and "self-check passed" in result.stderr
    ours, stacked = pd.read_csv(elsewhere / "submission.csv"), pd.read_csv(tiny_work / "submission.csv")
    assert ours["eeg_id"].tolist() == stacked["eeg_id"].tolist()
    np.testing.assert_allclose(ours[list(VOTE_COLUMNS)], stacked[list(VOTE_COLUMNS)], rtol=0, atol=1e-9)


def test_entry_point_refuses_a_foreign_package_with_one_of_our_names(tmp_path):
    from importlib.machinery import ModuleSpec

    from submission import bundle_entry

    bundle_entry.check_own_packages()  # this checkout: every name is ours
    init = tmp_path / "models" / "__init__.py"
    init.parent.mkdir()
    init.write_text("X = 1\n")
    foreign = ModuleSpec("models", None, origin=str(init), is_package=True)
    foreign.has_location = True
    with pytest.raises(SystemExit, match=f"'models' found at {init} is not hms-stack"):
        bundle_entry.check_own_packages(lambda name: foreign if name == "models" else importlib.util.find_spec(name))


def test_the_package_check_runs_none_of_a_foreign_packages_code(tmp_path):
    from submission.bundle_entry import ENTRY_SCRIPT, running_versions

    shadow = tmp_path / "shadow"
    (shadow / "models").mkdir(parents=True)
    ran = tmp_path / "foreign-code-ran"
    (shadow / "models" / "__init__.py").write_text(f"open({str(ran)!r}, 'w').close()\n")
    fake = _fake_bundle(tmp_path / "bundle", running_versions())
    env = {**os.environ, "PYTHONPATH": f"{shadow}{os.pathsep}{Path(__file__).resolve().parents[1]}"}
    result = subprocess.run([sys.executable, str(ENTRY_SCRIPT), "--bundle", str(fake), "--no-install"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1 and f"'models' found at {shadow / 'models' / '__init__.py'}" in result.stderr
    assert "Traceback" not in result.stderr and not ran.exists()


def test_the_bundles_entry_point_degrades_odd_test_recordings(bundle, tiny_data, tiny_work, tmp_path, capsys):
    from submission import bundle_entry
    from tests.kaggle_layout import degraded_test_copy

    data = tmp_path / "data"
    data.mkdir()
    ids = degraded_test_copy(tiny_data, data)
    out = tmp_path / "submission.csv"
    assert bundle_entry.main(["--bundle", str(bundle), "--data", str(data), "--out", str(out), "--device", "cpu",
                              "--no-install"]) == 0
    ours = pd.read_csv(out).set_index("eeg_id")
    assert sorted(ours.index) == sorted(ids)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-9)
    whole = pd.read_csv(tiny_work / "submission.csv").set_index("eeg_id")
    np.testing.assert_allclose(ours.loc[ids[3:]], whole.loc[ids[3:]], rtol=0, atol=1e-6)


def test_manifest_records_versions_and_checksums(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert {"python", "torch", "timm", "lightgbm", "numpy", "pandas", "scipy", "optuna"} <= set(manifest["versions"])
    assert "work/models/wave1d_cpu/fold0/best.pt" in manifest["sha256"]
    assert "work/selfcheck/stack.npz" in manifest["sha256"]


def test_self_check_passes_then_fails_on_a_tampered_checkpoint(bundle, tmp_path):
    import torch

    from core.errors import UserFacingError
    from submission import bundle_entry
    from submission.selfcheck import run_selfcheck

    assert run_selfcheck(bundle / "work").startswith("self-check passed: 3 members, 9 fold models")
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    bundle_entry.verify_checksums(copy)
    checkpoint = copy / "work" / "models" / "wave1d_cpu" / "fold1" / "best.pt"
    state = torch.load(checkpoint, weights_only=True)
    torch.save({k: v + 0.5 if v.is_floating_point() else v for k, v in state.items()}, checkpoint)
    with pytest.raises(SystemExit, match=r"best.pt has changed since the bundle was built"):
        bundle_entry.verify_checksums(copy)
    # past the checksums (say, a manifest rewritten with it): the re-prediction names the fold
    with pytest.raises(UserFacingError, match=r"^self-check failed: member wave1d_cpu fold 1 predicts") as err:
        run_selfcheck(copy / "work")
    assert "\n" not in str(err.value)


def _fake_bundle(folder: Path, versions: dict) -> Path:
    (folder / "work" / "stack").mkdir(parents=True)
    (folder / "work" / "stack" / "stacker.json").write_text("{}")
    (folder / "manifest.json").write_text(json.dumps({"versions": versions}))
    return folder


def test_entry_point_refuses_a_bundle_built_with_another_major_version(tmp_path):
    from submission.bundle_entry import ENTRY_SCRIPT, running_versions

    here = running_versions()
    fake = _fake_bundle(tmp_path / "bundle", {**here, "torch": "1.13.1", "numpy": "0.1.0"})
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run([sys.executable, str(ENTRY_SCRIPT), "--bundle", str(fake), "--no-install"],
                            capture_output=True, text=True, timeout=60, env=env)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert result.returncode == 1 and len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: incompatible image: torch {here['torch']} here, bundle built with 1.13.1")
    assert "numpy" in errors[0] and "Traceback" not in result.stderr
    assert "torch      1.13.1" in result.stderr  # the side-by-side table came first


def test_minor_version_differences_warn_and_missing_packages_stop():
    from submission.bundle_entry import compare_versions

    built = {"python": "3.11.7", "torch": "2.3.0+cu121", "optuna": "3.6.1", "timm": None}
    _, errors, warnings = compare_versions(built, {"python": "3.10.13", "torch": "2.1.2", "timm": "1.0"})
    assert errors == ["optuna is not installed here (bundle built with 3.6.1)"]
    assert warnings == ["python 3.10.13 here, bundle built with 3.11.7",
                        "torch 2.1.2 here, bundle built with 2.3.0+cu121"]


def test_bundle_is_found_where_a_kaggle_model_is_mounted(tmp_path):
    from submission.bundle_entry import find_bundle

    model = tmp_path / "hms-stack" / "pytorch" / "default" / "3" / "bundle"
    _fake_bundle(model, {})
    (tmp_path / "hms-harmful-brain-activity-classification" / "train_eegs").mkdir(parents=True)
    assert find_bundle(tmp_path) == model
    assert find_bundle(tmp_path, depth=4) is None  # the depth limit holds
    assert find_bundle(tmp_path / "nowhere") is None
