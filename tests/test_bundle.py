"""`python -m stacking bundle`: the Kaggle bundle installs into a fresh venv and writes, offline and
outside the checkout, the same submission as `make stack`."""

from __future__ import annotations

import importlib
import json
import os
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
                             "--out", "submission.csv", "--device", "cpu"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"hms-stack from {venv}" in result.stderr  # the wheel, not the checkout
    ours, stacked = pd.read_csv(elsewhere / "submission.csv"), pd.read_csv(tiny_work / "submission.csv")
    assert ours["eeg_id"].tolist() == stacked["eeg_id"].tolist()
    np.testing.assert_allclose(ours[list(VOTE_COLUMNS)], stacked[list(VOTE_COLUMNS)], rtol=0, atol=1e-9)


def test_entry_point_refuses_a_foreign_package_with_one_of_our_names():
    import types

    from submission import bundle_entry

    bundle_entry.check_own_packages()  # this checkout: every name is ours
    foreign = types.ModuleType("models")
    foreign.__file__ = "/kaggle/working/models/__init__.py"
    with pytest.raises(SystemExit, match="'models' imported from /kaggle/working/models/__init__.py is not hms-stack"):
        bundle_entry.check_own_packages(lambda name: foreign if name == "models" else importlib.import_module(name))
