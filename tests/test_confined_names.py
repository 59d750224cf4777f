"""Names read from files (stacker.json, the bundle's manifest) are checked as strictly as the CLI's
NAME, so a hostile or corrupt file cannot make `stacking submit` read, or `stacking bundle` write,
outside WORK."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.cli import main as cli
from core.errors import UserFacingError
from core.work import Work, checked_name
from stacking.config import stack_config
from stacking.run import run_stack
from stacking.saved_stacker import load_stacker, side_files
from synthetic.oof_sets import write_synthetic_work

HOSTILE = ["../../../../q/x", "..", ".hidden", "a/b", "/etc/passwd", "x\n", "", None, 3]


@pytest.mark.parametrize("name", HOSTILE)
def test_the_shared_validator_refuses_anything_but_one_plain_name(name):
    with pytest.raises(UserFacingError, match=r"^stacker.json: name .* must be letters, digits") as err:
        checked_name(name, "stacker.json")
    assert "\n" not in str(err.value).replace(repr(name), "")
    if isinstance(name, str):
        with pytest.raises(UserFacingError):
            Work("w").model_dir(name)


@pytest.mark.parametrize("name", ["mit_b1_spec", "wave1d_cpu_s1", "a.b-c", "lgbm_fold0.txt"])
def test_plain_names_pass(name):
    assert checked_name(name) == name and Work("w").oof(name) == Path("w/oof") / f"{name}.parquet"


@pytest.fixture(scope="module")
def stacked(tmp_path_factory) -> Path:
    """A WORK folder (three levels down) after `make stack` with the LightGBM stacker: side files too."""
    work = tmp_path_factory.mktemp("confined") / "a" / "b" / "work"
    write_synthetic_work(work, n_rows=300, n_test=5, n_folds=3)
    run_stack(stack_config(work, work, ["methods=lgbm", "trials=2", "submission=false"]))
    return work


def _tampered(stacked: Path, tmp_path: Path, change) -> Path:
    work = tmp_path / "x" / "y" / "work"
    (work / "stack").mkdir(parents=True)
    for path in (stacked / "stack").glob("*"):
        if path.is_file() and path.suffix != ".db":
            (work / "stack" / path.name).write_bytes(path.read_bytes())
    saved = json.loads((work / "stack" / "stacker.json").read_text())
    change(saved)
    (work / "stack" / "stacker.json").write_text(json.dumps(saved))
    return work


@pytest.mark.parametrize("change, read", [
    (lambda s: s.update(members=["../../../../q/x"]), load_stacker),
    (lambda s: s["lgbm_folds"][0].update(file="../../../q/booster.txt"), load_stacker),
    (lambda s: s.update(members="model_00"), load_stacker),
    (lambda s: s.update(files=["../../outside.txt"]), side_files),  # what the bundle copies, the next save removes
])
def test_a_hostile_stacker_json_is_refused_naming_it(stacked, tmp_path, change, read):
    work = _tampered(stacked, tmp_path, change)
    with pytest.raises(UserFacingError, match=r"stacker.json: ") as err:
        read(work)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("command", ["submit", "bundle"])
def test_submit_and_bundle_stop_in_one_line_before_touching_anything_outside(stacked, tmp_path, capsys, command):
    outside = tmp_path / "q"
    (outside / "x").mkdir(parents=True)  # where the hostile name points: WORK/oof/../../../../q/x
    (outside / "x.json").write_text(json.dumps({"recipe": {}, "kl_per_fold": {"0": 0.5}}))
    work = _tampered(stacked, tmp_path, lambda s: s.update(members=["../../../../q/x"]))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    args = ["--work", str(work)] + (["--data", str(tmp_path)] if command == "submit" else [])
    assert cli([command, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "stacker.json: name '../../../../q/x'" in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_new_stack_replaces_a_corrupt_stacker_json(stacked, tmp_path):
    work = _tampered(stacked, tmp_path, lambda s: s.update(files=["../../../victim.txt"]))
    victim = work.parent.parent.parent / "victim.txt"
    victim.write_text("keep me")
    for part in ("oof", "test"):
        (work / part).mkdir()
        for path in (stacked / part).glob("*.*"):
            (work / part / path.name).write_bytes(path.read_bytes())
    (work / "folds.parquet").write_bytes((stacked / "folds.parquet").read_bytes())
    run_stack(stack_config(work, work, ["methods=blend", "trials=2", "submission=false"]))
    assert victim.read_text() == "keep me" and load_stacker(work).method == "blend"


def test_the_bundle_manifest_cannot_name_a_file_outside_the_bundle(tmp_path):
    from submission.bundle_entry import verify_checksums

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (tmp_path / "secret").write_text("x")
    (bundle / "manifest.json").write_text(json.dumps({"sha256": {"../secret": "0" * 64}}))
    with pytest.raises(SystemExit, match=r"names '../secret', outside the bundle"):
        verify_checksums(bundle)
