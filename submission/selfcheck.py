"""The bundle's self-check: a few train rows' cached view arrays and what each fold model (and the saved
stacker) predicted for them when the bundle was built; `infer.py --self-check` predicts them again.

    bundle/work/selfcheck/NAME.npz   view__<view> arrays (n rows), expected (folds, n, 6), folds, label_id
    bundle/work/selfcheck/stack.npz  expected (n, 6): the saved stacker on the members' fold means

Both sides run on the CPU in float32 (no bf16 autocast), so only library and BLAS differences remain:
ATOL bounds the largest absolute probability difference. A checkpoint that changed by more than
rounding moves some probability by far more; the manifest's SHA-256s catch any change at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.errors import UserFacingError
from core.work import Work
from oof.datasets import ViewArrays
from oof.recipe import recipe_from_dict
from stacking.saved_stacker import load_stacker
from submission.infer import Member, MemoryViews, load_member, member_folds, predict_member

log = logging.getLogger(__name__)

ROWS = 8
ATOL = 1e-3  # max |Δp|: CPU float32 on both sides; library versions move probabilities ~1e-6
CPU = torch.device("cpu")


def selfcheck_dir(work: Path | str) -> Path:
    return Work(work).root / "selfcheck"


def write_selfcheck(work: Path, dest: Path, names: list[str], data: Path | None = None) -> list[Path]:
    """Store ROWS train rows per member (from the source WORK's view cache) and the predictions of the
    checkpoints already copied to `dest`; returns the files written."""
    paths, means = [], {}
    for name in names:
        arrays, label_ids = _member_rows(work, name, data)
        member = load_member(dest, name, CPU)
        expected = _per_fold(member, arrays)
        path = selfcheck_dir(dest) / f"{name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, expected=expected, folds=np.array(member_folds(dest, name)[1]), label_id=label_ids,
                 **{f"view__{v}": a for v, a in arrays.items()})
        paths.append(path)
        means[name] = expected.mean(axis=0)
    np.savez(selfcheck_dir(dest) / "stack.npz", expected=load_stacker(dest).apply(means))
    return [*paths, selfcheck_dir(dest) / "stack.npz"]


def _member_rows(work: Path, name: str, data: Path | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({view: (n, ...) arrays as the model reads them from the cache}, label_ids): rows spread over the folds."""
    report, _ = member_folds(work, name)
    recipe = recipe_from_dict(report["recipe"])
    views = ViewArrays(recipe, Path(data or report["data"]), work, "train")
    oof = pd.read_parquet(Work(work).oof(name), columns=["label_id", "fold"])
    picked = oof.sort_values("label_id").groupby("fold").head(-(-ROWS // oof["fold"].nunique()))["label_id"]
    rows = np.sort(views.row_of.reindex(picked.to_numpy()[:ROWS]).to_numpy().astype(np.int64))
    arrays = {v: np.asarray(a[rows]) for v, a in zip(recipe.model.views, views.arrays, strict=True)}
    return arrays, views.index["label_id"].to_numpy()[rows]


def _per_fold(member: Member, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """(folds, n, 6): each fold model alone, so one changed fold is named."""
    n = len(next(iter(arrays.values())))
    keys = np.arange(n, dtype=np.int64)
    views = MemoryViews(member.recipe.model.views, arrays, keys)
    table = pd.DataFrame({"eeg_id": keys})
    return np.stack([predict_member(Member(member.name, member.recipe, [m]), views, table, CPU)
                     for m in member.models])


def run_selfcheck(work: Path | str) -> str:
    """Re-predict the stored rows; a one-line UserFacingError names the first member/fold off by more than ATOL."""
    work = Path(work)
    stacker = load_stacker(work)
    worst, means, models = 0.0, {}, 0
    for name in stacker.members:
        stored = _load(selfcheck_dir(work) / f"{name}.npz")
        arrays = {k.removeprefix("view__"): stored[k] for k in stored.files if k.startswith("view__")}
        got = _per_fold(_load_member(work, name), arrays)
        for k, fold in enumerate(stored["folds"]):
            worst = max(worst, _compare(got[k], stored["expected"][k], f"member {name} fold {int(fold)}"))
        means[name], models = got.mean(axis=0), models + len(got)
    stack = _load(selfcheck_dir(work) / "stack.npz")
    worst = max(worst, _compare(stacker.apply(means), stack["expected"], f"the saved stacker ({stacker.method})"))
    rows = len(stack["expected"])
    return (f"self-check passed: {len(stacker.members)} members, {models} fold models and the stacker on {rows} "
            f"stored train rows, max |Δp| {worst:.1e} <= {ATOL:g}")


def _load_member(work: Path, name: str) -> Member:
    try:
        return load_member(work, name, CPU)
    except UserFacingError:
        raise
    except Exception as err:  # a corrupted checkpoint fails deep inside torch, in many lines
        raise UserFacingError(f"self-check failed: member {name}'s checkpoints do not load "
                              f"({type(err).__name__}); re-upload or rebuild the bundle") from None


def _load(path: Path):
    if not path.is_file():
        raise UserFacingError(f"{path} is missing: this bundle holds no self-check rows; rebuild it with "
                              f"`make bundle` where the train data (or its view cache) is present")
    return np.load(path, allow_pickle=False)


def _compare(got: np.ndarray, expected: np.ndarray, what: str) -> float:
    diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
    if not diff <= ATOL:  # NaN fails too
        raise UserFacingError(f"self-check failed: {what} predicts the stored rows {diff:.2g} off (max |Δp|, "
                              f"tolerance {ATOL:g}): its checkpoint or this image's libraries differ from the "
                              f"bundle's build")
    return diff
