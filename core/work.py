"""The WORK folder's layout: every file a stage reads or writes gets its path here (ARCHITECTURE.md).

    work = Work("artifacts")
    work.oof("mit_b1_spec")          -> artifacts/oof/mit_b1_spec.parquet
    work.checkpoint("mit_b1_spec", 0) -> artifacts/models/mit_b1_spec/fold0/best.pt

`LAYOUT` names each path pattern and the method that builds it; the README's outputs table is
checked against it (tests/test_work_layout.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from core.errors import UserFacingError

# pattern (as the README writes it) -> Work method; NAME = OOF set, K = fold
LAYOUT = {
    "folds.parquet": "folds",
    "cache/<view>-<hash>/": "cache_dir",
    "models/NAME/foldK/": "run_dir",
    "oof/NAME.parquet": "oof",
    "oof/NAME.json": "oof_json",
    "test/NAME.parquet": "test",
    "oof/shards/NAME.foldK.parquet": "oof_shard",
    "test/shards/NAME.foldK.parquet": "test_shard",
    "stack/": "stack_dir",
    "submission.csv": "submission",
    "bundle/": "bundle_dir",
    "bundle.zip": "bundle_zip",
    "report/": "report_dir",
    "plots/": "plots_dir",
    "leaderboard.csv": "leaderboard",
    "logs/": "logs_dir",
}

STACKER_FILE = "stacker.json"
# A name that becomes one file or folder name under WORK: no separators, no leading dot (so no "..").
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def checked_name(name: object, source: object = "NAME") -> str:
    """`name` if it can only name an entry of its folder, else a one-line error naming `source`: the
    CLI's NAME, or the file a name was read from (stacker.json, NAME.json), which may come from anyone."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):  # fullmatch: "$" would let "x\n" in
        raise UserFacingError(f"{source}: name {name!r} must be letters, digits, '_', '-' or '.', not starting "
                              f"with '.' (it becomes a file name under WORK); rename it or rerun the stage "
                              f"that wrote it")
    return name


class Work:
    """Paths under one WORK folder. Nothing here touches the disk except `member_names`; creating WORK
    itself (with its marker) is `create_work`'s, which the CLI calls for every command given `--work`."""

    def __init__(self, root: Path | str | Work):
        self.root = root.root if isinstance(root, Work) else Path(root)

    def __repr__(self) -> str:
        return f"Work({str(self.root)!r})"

    def __fspath__(self) -> str:
        return os.fspath(self.root)

    # ---- folds and caches -------------------------------------------------------------
    def folds(self) -> Path:
        return self.root / "folds.parquet"

    def cache_root(self) -> Path:
        return self.root / "cache"

    def cache_dir(self, view: str, key: str) -> Path:
        return self.cache_root() / f"{view}-{key}"

    # ---- model runs (the OOF contract) ------------------------------------------------
    def oof_dir(self) -> Path:
        return self.root / "oof"

    def test_dir(self) -> Path:
        return self.root / "test"

    def oof(self, name: str) -> Path:
        return self.oof_dir() / f"{checked_name(name)}.parquet"

    def oof_json(self, name: str) -> Path:
        return self.oof_dir() / f"{checked_name(name)}.json"

    def test(self, name: str) -> Path:
        return self.test_dir() / f"{checked_name(name)}.parquet"

    def oof_shard(self, name: str, fold: int) -> Path:
        return self.oof_dir() / "shards" / f"{checked_name(name)}.fold{int(fold)}.parquet"

    def test_shard(self, name: str, fold: int) -> Path:
        return self.test_dir() / "shards" / f"{checked_name(name)}.fold{int(fold)}.parquet"

    def model_dir(self, name: str) -> Path:
        return self.root / "models" / checked_name(name)

    def run_dir(self, name: str, fold: int) -> Path:
        return self.model_dir(name) / f"fold{int(fold)}"

    def fold_log(self, name: str, fold: int) -> Path:
        """The log of one fold's process when the folds train in parallel (`make oof GPUS=0,1`)."""
        return self.model_dir(name) / f"fold{int(fold)}.log"

    def run_recipe(self, name: str, fold: int) -> Path:
        """The recipe a fold's run folder was started with: a resume or a reuse must match it."""
        return self.run_dir(name, fold) / "recipe.json"

    def checkpoint(self, name: str, fold: int, suffix: str = ".pt") -> Path:
        """The fold's model for test-time inference: best.pt (a plain torch state_dict) or, for a
        LightGBM member, best.txt (the booster's text)."""
        return self.run_dir(name, fold) / f"best{suffix}"

    def member_names(self) -> list[str]:
        return sorted(p.stem for p in self.oof_dir().glob("*.parquet"))

    # ---- stacking and what comes after ------------------------------------------------
    def stack_dir(self) -> Path:
        return self.root / "stack"

    def stack_oof(self) -> Path:
        return self.stack_dir() / "oof.parquet"

    def stack_test(self) -> Path:
        return self.stack_dir() / "test.parquet"

    def stack_report(self) -> Path:
        return self.stack_dir() / "report.json"

    def stacker(self) -> Path:
        return self.stack_dir() / STACKER_FILE

    def stack_file(self, name: str, source: object = STACKER_FILE) -> Path:
        """A file the saved stacker names (its boosters, its MLP weights), kept inside WORK/stack/."""
        return self.stack_dir() / checked_name(name, source)

    def optuna_db(self) -> Path:
        return self.stack_dir() / "optuna.db"

    def submission(self) -> Path:
        return self.root / "submission.csv"

    def bundle_dir(self) -> Path:
        return self.root / "bundle"

    def bundle_zip(self) -> Path:
        return self.root / "bundle.zip"

    def report_dir(self) -> Path:
        return self.root / "report"

    def plots_dir(self) -> Path:
        return self.root / "plots"

    # ---- records of the runs ----------------------------------------------------------
    def leaderboard(self) -> Path:
        return self.root / "leaderboard.csv"

    def logs_dir(self) -> Path:
        return self.root / "logs"

    def log_file(self, command: str, utc_stamp: str, pid: int) -> Path:
        """One command's log; the pid keeps apart processes started in the same second (`GPUS=` folds)."""
        return self.logs_dir() / f"{command}-{utc_stamp}-{pid}.log"

# In every folder hms-stack created for a WORK: `hms-stack clean` (`make clean`) deletes only such folders.
MARKER = ".hms-stack"


def create_work(root: Path | str) -> list[Path]:
    """Create WORK and its missing parents, a marker in each; the folders created, deepest first ([]: it existed)."""
    root = Path(root)
    missing = []
    for folder in (root, *root.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        (folder / MARKER).write_text("made by hms-stack: `hms-stack clean --work` may delete this folder\n")
    return missing


def remove_if_unused(created: list[Path]) -> None:
    """Remove folders `create_work` made that hold nothing but the marker (a command that failed early)."""
    for folder in created:
        if [p.name for p in folder.iterdir()] != [MARKER]:
            return
        (folder / MARKER).unlink()
        folder.rmdir()


def made_by_hms_stack(root: Path | str) -> bool:
    return (Path(root) / MARKER).is_file()
