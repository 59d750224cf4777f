"""`python -m stacking bundle`: WORK/bundle/ and WORK/bundle.zip, a Kaggle dataset for offline inference.

    bundle/
      wheels/hms_stack-<version>-py3-none-any.whl   the project (pip wheel --no-deps)
      work/oof/NAME.json                            resolved recipes of the stack members
      work/models/NAME/fold*/best.pt                their fold checkpoints
      work/stack/stacker.json, lgbm_fold*.txt, report.json   the saved final stacker
      work/selfcheck/NAME.npz, stack.npz            a few train rows for `infer.py --self-check`
      infer.py, infer.ipynb                         entry points (stacking/bundle_entry.py)
      manifest.json                                 members, method, code version, the library and
                                                    Python versions it was built with, SHA-256 per file

The work/ folder has the WORK layout, so `python -m stacking submit --work bundle/work` reads it too.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from core.artifacts import code_version, write_json
from core.errors import UserFacingError
from core.work import Work
from oof.gbdt_member import checkpoint_suffix
from oof.recipe import recipe_from_dict
from stacking.saved_stacker import load_stacker, side_files
from submission.bundle_entry import file_sha256, running_versions
from submission.infer import member_folds, retrain_command
from submission.selfcheck import write_selfcheck

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
ENTRY = Path(__file__).with_name("bundle_entry.py")
MAIN_GUARD = 'if __name__ == "__main__":'
STORED = (".pt", ".whl")  # already compressed or incompressible: deflating them only costs time


def build_bundle(work: Path | str, out: Path | None = None, data: Path | None = None) -> Path:
    """Write the bundle folder (replacing an old one) and its zip beside it; return the folder. `data`:
    the train data behind the view cache (default: the folder each member was trained on)."""
    work = Path(work)
    out = Path(out) if out else Work(work).bundle_dir()
    stacker = load_stacker(work)  # refuses early when `make stack` has not saved one
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".bundle.", dir=out.parent))  # same file system: moved, not copied
    temp.chmod(0o755)  # mkdtemp's 0700 would survive the move
    try:
        copy_work_files(work, temp / "work", stacker.members)
        _selfcheck_rows(work, temp / "work", stacker.members, data)
        build_wheel(temp / "wheels")
        shutil.copy2(ENTRY, temp / "infer.py")
        (temp / "infer.ipynb").write_text(json.dumps(notebook(ENTRY.read_text()), indent=1) + "\n")
        write_json(temp / "manifest.json", manifest(temp, stacker))
        if out.exists():
            shutil.rmtree(out)
        shutil.move(temp, out)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    write_zip(out, out.with_suffix(".zip"))
    return out


def _selfcheck_rows(work: Path, dest: Path, members: list[str], data: Path | None) -> None:
    """The self-check rows need the train data behind the view cache: without it the bundle still works,
    only `infer.py --self-check` refuses it (in one line)."""
    try:
        write_selfcheck(work, dest, members, data)
    except (UserFacingError, OSError) as err:
        log.warning("bundle without self-check rows (%s); pass --data <train data folder> to add them", err)


def manifest(folder: Path, stacker) -> dict:
    """What infer.py checks before it predicts: the versions built with, and each bundled file's SHA-256."""
    files = sorted(p for p in [*(folder / "work").rglob("*"), *(folder / "wheels").glob("*.whl")] if p.is_file())
    return {"members": stacker.members, "method": stacker.method, "policy": stacker.policy,
            "code_version": code_version(), "versions": running_versions(),
            "sha256": {p.relative_to(folder).as_posix(): file_sha256(p) for p in files}}


def copy_work_files(work: Path, dest: Path, members: list[str]) -> None:
    work, dest = Work(work), Work(dest)
    for path in [work.stacker(), work.stack_report(), *side_files(work)]:
        if path.is_file():
            _copy(path, dest.stack_dir() / path.name)
    for name in members:
        report, folds = member_folds(work, name)
        suffix = checkpoint_suffix(recipe_from_dict(report["recipe"]))
        _copy(work.oof_json(name), dest.oof_json(name))
        for fold in folds:
            source = work.checkpoint(name, fold, suffix)
            if not source.is_file():
                raise UserFacingError(f"{source} is missing: the bundle needs every fold checkpoint of member "
                                      f"{name}; run `{retrain_command(report, name, fold)}` first")
            _copy(source, dest.checkpoint(name, fold, suffix))


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def build_wheel(dest: Path) -> Path:
    """pip wheel of a clean copy of the packages (no build/ or egg-info left in the checkout)."""
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.is_file():
        raise UserFacingError(f"{pyproject} is missing: `make bundle` builds the wheel from a checkout of hms-stack")
    import tomllib  # build time only: nothing on Kaggle (Python 3.10 there) imports it

    patterns = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    with tempfile.TemporaryDirectory(prefix="hms-wheel-") as tmp:
        source = Path(tmp) / "src"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, source / name)
        for package in {p.rstrip("*").rstrip(".") for p in patterns}:
            shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
        dest.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                                 "--no-build-isolation", "--disable-pip-version-check", "-q", "-w", str(dest)],
                                capture_output=True, text=True)
        if result.returncode:
            raise UserFacingError(f"pip wheel failed ({result.stderr.strip().splitlines()[-1:]}); "
                                  f"`make setup` installs setuptools in .venv")
    return next(dest.glob("hms_stack-*.whl"))


def notebook(script: str) -> dict:
    """nbformat 4 notebook: the entry script's functions in one cell, the Kaggle call in the next."""
    functions = script.split(MAIN_GUARD)[0].rstrip() + "\n"
    cells = [
        ("markdown", "# hms-stack: offline submission\nAttach this bundle (a Kaggle dataset) and the competition "
                     "data; the internet can stay off. The wheel is installed with `pip --no-index --no-deps`: "
                     "torch, lightgbm, pandas, ... are Kaggle's preinstalled ones."),
        ("code", functions),
        ("code", "# --bundle defaults to the shallowest folder under /kaggle/input (a dataset or a Model) holding\n"
                 "# work/stack/stacker.json; --self-check re-predicts the bundled train rows first (CPU, seconds)\n"
                 'exit_code = main(["--data", str(KAGGLE_DATA), "--out", "/kaggle/working/submission.csv",\n'
                 '                  "--self-check"])\n'
                 'assert exit_code == 0, "see the error above"'),
    ]
    return {"cells": [_cell(kind, text, i) for i, (kind, text) in enumerate(cells)],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _cell(kind: str, text: str, i: int) -> dict:
    lines = text.splitlines(keepends=True)
    cell = {"cell_type": kind, "id": f"cell-{i}", "metadata": {}, "source": lines}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def write_zip(folder: Path, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            method = zipfile.ZIP_STORED if file.suffix in STORED else zipfile.ZIP_DEFLATED
            archive.write(file, file.relative_to(folder), compress_type=method)
    tmp.replace(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work", type=Path, default=Path("artifacts"), help="work folder after `make stack`")
    parser.add_argument("--out", type=Path, help="bundle folder (default WORK/bundle; the zip goes beside it)")
    parser.add_argument("--data", type=Path, help="train data behind WORK/cache, for the self-check rows "
                                                  "(default: the folder each member was trained on)")


def run(args: argparse.Namespace) -> None:
    out = build_bundle(args.work, args.out, args.data)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
    print(f"wrote {out} ({size:.1f} MiB) and {out.with_suffix('.zip')}: upload it as a Kaggle dataset, "
          f"then run infer.py or infer.ipynb with the internet off")
