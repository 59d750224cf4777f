"""Test-time inference from the fold checkpoints alone: no train.csv, no view cache.

Every member is rebuilt from the recipe stored in WORK/oof/NAME.json and its fold checkpoints
WORK/models/NAME/fold*/best.pt. Test recordings are read in chunks, each file once; each view is
computed once and shared by every member that uses it. Views are rounded to float16,
as the cache stores them, so the models see exactly the inputs they saw during `make oof` and the
predictions equal the test predictions written there.

A test recording that cannot be read (its EEG all NaN or shorter than 50 s, its spectrogram missing,
...) does not stop the submission: the members whose views need that file leave it out (a NaN row),
one warning line names the recording and why, and the saved stacker predicts it from the members that
could (stacking.saved_stacker). The readers' errors stay errors for training data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.errors import UserFacingError
from core.metric import normalise_rows
from core.progress import progress_bar
from core.schema import TARGET_COLUMNS
from core.work import Work
from features import quality_notes
from features.cache import as_cached
from features.kaggle_data import KaggleFolder
from features.views import get_view, zeros_batch
from models.build import build_model, input_transform, model_input_channels
from oof.datasets import ViewArrays, loader
from oof.gbdt import load_gbdt
from oof.gbdt_member import checkpoint_suffix, predict_booster
from oof.recipe import Recipe, recipe_from_dict
from oof.train_loop import predict
from stacking.members import imported_from, read_member_json

log = logging.getLogger(__name__)

CHUNK_RECORDINGS = 512  # recordings whose views are held at once: ~250 kB each per view in float16


@dataclass
class Member:
    """One stack member ready to predict: its recipe and one loaded model (or booster) per fold."""

    name: str
    recipe: Recipe
    models: list  # torch modules, or LightGBM boosters for a gbdt member

    def to_input(self):
        return input_transform(self.recipe.model)


def member_folds(work: Path, name: str) -> tuple[dict, list[int]]:
    """(NAME.json, its folds) or a one-line error saying how to get them."""
    path = Work(work).oof_json(name)
    if not path.is_file():
        raise UserFacingError(f"{path} is missing: stack member {name} has no resolved config; run "
                              f"`make oof MODEL={name}` in this WORK folder, or rebuild the bundle")
    report = read_member_json(path)
    if imported_from(report):
        raise UserFacingError(f"{path}: stack member {name} was imported (`stacking import`) and has no "
                              f"checkpoints to predict a new test set with; rerun `make stack` (it saves a stacker "
                              f"without imported members, given at least one trained here with `make oof`)")
    folds = report.get("kl_per_fold") if report else None
    if not isinstance(folds, dict) or "recipe" not in report or not all(str(k).isdigit() for k in folds):
        raise UserFacingError(f"{path} is not a NAME.json written by `make oof` (no recipe and folds); rerun "
                              f"`make oof MODEL={name}` in this WORK folder")
    return report, sorted(int(k) for k in folds)


def retrain_command(report: dict, name: str, fold: int | None = None) -> str:
    """The `make oof` line recorded in NAME.json (a renamed variant needs its ARGS), for one fold or all."""
    recorded = report.get("make_oof") or {"MODEL": name, "ARGS": ""}
    folds = "" if fold is None else f" FOLDS={fold}"
    args = f' ARGS="{recorded["ARGS"]}"' if recorded["ARGS"] else ""
    return f"make oof MODEL={recorded['MODEL']}{folds}{args}"


def load_member(work: Path, name: str, device: torch.device) -> Member:
    report, folds = member_folds(work, name)
    recipe = recipe_from_dict(report["recipe"])
    if recipe.fingerprint() != report.get("recipe_fingerprint", recipe.fingerprint()):
        raise UserFacingError(f"{Work(work).oof_json(name)}: its recipe does not rebuild to the "
                              f"one it was trained with; rerun `{retrain_command(report, name)}` with this code "
                              f"version")
    # The weights come from best.pt: a pretrained file named by the recipe is neither needed nor present here.
    recipe = replace(recipe, model=replace(recipe.model, pretrained=""))
    paths = [Work(work).checkpoint(name, fold, checkpoint_suffix(recipe)) for fold in folds]
    for fold, path in zip(folds, paths, strict=True):  # all checked before the (slow) model builds
        if not path.is_file():
            raise UserFacingError(f"{path} is missing: member {name} needs one checkpoint per fold {folds}; "
                                  f"run `{retrain_command(report, name, fold)}` or copy that folder into WORK/models")
    if recipe.is_gbdt:
        return Member(name, recipe, [load_gbdt(path) for path in paths])
    in_chans = model_input_channels(recipe.model, zeros_batch(recipe.model.views))
    models = []
    for path in paths:
        model = build_model(recipe.model, in_chans)
        model.load_state_dict(torch.load(path, map_location=device, weights_only=True))
        models.append(model.to(device).eval())
    return Member(name, recipe, models)


class MemoryViews(ViewArrays):
    """ViewArrays over views computed in memory for test rows (same gather, swap and batches)."""

    def __init__(self, names: Iterable[str], computed: dict[str, np.ndarray], eeg_ids: np.ndarray):
        names = list(names)
        self.arrays = [computed[n] for n in names]
        self.swap_parts = [np.asarray(get_view(n).swap_index) for n in names]
        self.index = pd.DataFrame({"eeg_id": eeg_ids})
        self.row_of = pd.Series(np.arange(len(eeg_ids)), index=eeg_ids)


@dataclass
class TestViews:
    """The views of some test rows. A row whose file could not be read for a view is zeros there and
    False in `seen[view]`; `problems` says why, per eeg_id."""

    arrays: dict[str, np.ndarray]
    seen: dict[str, np.ndarray]
    problems: dict[int, str]

    def rows_for(self, views: Iterable[str]) -> np.ndarray:
        """Rows every one of `views` was computed for: the rows a member using them can predict."""
        return np.logical_and.reduce([self.seen[v] for v in views])


def compute_test_views(folder: KaggleFolder, table: pd.DataFrame, names: Iterable[str], bar=None) -> TestViews:
    """Each view of each test row (offset 0), rounded as the cache rounds it; each file is read once for all
    views. A file that cannot be read leaves the views of its source unseen for that row. `bar` (a
    progress bar) advances by one per recording read."""
    views = [get_view(n) for n in names]
    rows: dict[str, list[np.ndarray | None]] = {v.name: [] for v in views}
    problems: dict[int, str] = {}
    for eeg_id, spec_id in zip(table["eeg_id"].astype(int), table["spectrogram_id"], strict=True):
        windows = {}
        if any(v.source == "eeg" for v in views):
            windows["eeg"] = _readable(problems, eeg_id, folder.eeg_windows, "test", eeg_id, [0.0])
        if any(v.source != "eeg" for v in views):
            windows["spectrogram"] = _readable(problems, eeg_id, folder.spectrogram_windows, "test", spec_id, [0.0])
        for view in views:
            own = windows["eeg" if view.source == "eeg" else "spectrogram"]
            rows[view.name].append(None if own is None else _readable(
                problems, eeg_id, as_cached, view, eeg_windows=windows.get("eeg"),
                spec_windows=windows.get("spectrogram"), offsets_s=[0.0]))
        if bar is not None:
            bar.update(1)
    seen = {name: np.array([r is not None for r in parts], dtype=bool) for name, parts in rows.items()}
    return TestViews({name: _stacked(parts) for name, parts in rows.items()}, seen, problems)


def _readable(problems: dict[int, str], eeg_id: int, read, *args, **kwargs):
    """read(*args, **kwargs), or None with the reason kept: the readers' one-line error, less its advice
    (which is for training rows: "drop that label row" is no option for a test recording)."""
    try:
        return read(*args, **kwargs)
    except UserFacingError as err:
        reason = str(err).split("; ")[0]
        if reason not in problems.get(eeg_id, ""):
            problems[eeg_id] = "; ".join(filter(None, [problems.get(eeg_id), reason]))
        return None


def _stacked(parts: list[np.ndarray | None]) -> np.ndarray:
    """(n, ...) rows, zeros where a row is missing (no member reads them: its `seen` is False)."""
    present = next((p for p in parts if p is not None), None)
    if present is None:
        return np.zeros((len(parts), 1), dtype=np.float16)
    return np.concatenate([p if p is not None else np.zeros_like(present) for p in parts])


def predict_member(member: Member, views: MemoryViews, table: pd.DataFrame, device: torch.device,
                   amp: str = "auto") -> np.ndarray:
    """(N, 6): per fold softmax (with swap TTA when the recipe says so), normalised, then the fold mean.
    `amp`: TrainConfig.amp's rules (auto: bf16 on GPUs that have it natively, fp16 on older ones)."""
    if member.recipe.is_gbdt:
        keys = table["eeg_id"].to_numpy()
        return sum(predict_booster(member.recipe, b, views, keys) for b in member.models) / len(member.models)
    frame = table.assign(n_votes=0, **{c: 0.0 for c in TARGET_COLUMNS})
    batches = loader(views, frame, "eeg_id", member.recipe.train.batch_size)
    swap = views.swap_index if member.recipe.data.tta_swap else None
    total = None
    for model in member.models:  # summed in fold order, as the CV merge does
        probs = normalise_rows(predict(model, batches, device, to_input=member.to_input(), swap_index=swap,
                                       amp=amp))
        total = probs if total is None else total + probs
    return total / len(member.models)


def predict_test(data: Path, work: Path, names: list[str], device: torch.device | str = "cpu",
                 chunk: int = CHUNK_RECORDINGS, amp: str = "auto") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(test eeg_ids in test.csv order, {member: (T, 6) probabilities}); a NaN row: that member could not
    see that recording (one warning line per such recording)."""
    device = torch.device(device)
    members = [load_member(work, name, device) for name in names]
    folder = KaggleFolder(data)
    table = folder.test_table(require_files=False).reset_index(drop=True)
    view_names = list(dict.fromkeys(v for m in members for v in m.recipe.model.views))
    log.info("%d members, %d fold models, views %s, %d test recordings", len(members),
             sum(len(m.models) for m in members), ", ".join(view_names), len(table))
    parts: dict[str, list[np.ndarray]] = {m.name: [] for m in members}
    bar = progress_bar(total=len(table), desc="test recordings read", unit="rec")  # between the per-chunk lines
    for start in range(0, len(table), chunk):
        rows = table.iloc[start:start + chunk]
        computed = compute_test_views(folder, rows, view_names, bar)
        ids = rows["eeg_id"].to_numpy(np.int64)
        for member in members:
            parts[member.name].append(_predict_seen(member, computed, rows, ids, device, amp))
        _warn_degraded(computed, members, ids)
        log.info("predicted %d / %d test recordings", start + len(rows), len(table))
    bar.close()
    quality_notes.report(folder.pop_quality_notes(), "test eegs")
    probs = {name: normalise_rows(np.concatenate(p)) for name, p in parts.items()}
    return table["eeg_id"].to_numpy(np.int64), probs


def _predict_seen(member: Member, computed: TestViews, rows: pd.DataFrame, ids: np.ndarray,
                  device: torch.device, amp: str) -> np.ndarray:
    """(n, 6): the member's predictions on the rows it can see, NaN on the others."""
    seen = computed.rows_for(member.recipe.model.views)
    out = np.full((len(ids), 6), np.nan)
    if seen.all():
        views = MemoryViews(member.recipe.model.views, computed.arrays, ids)
        return predict_member(member, views, rows, device, amp)
    if seen.any():
        arrays = {v: computed.arrays[v][seen] for v in member.recipe.model.views}
        views = MemoryViews(member.recipe.model.views, arrays, ids[seen])
        out[seen] = predict_member(member, views, rows.iloc[np.flatnonzero(seen)], device, amp)
    return out


def _warn_degraded(computed: TestViews, members: list[Member], ids: np.ndarray) -> None:
    for i, eeg_id in enumerate(ids):
        if int(eeg_id) in computed.problems:
            blind = [m.name for m in members if not computed.rows_for(m.recipe.model.views)[i]]
            log.warning("test eeg_id %d degraded: %s; left out of its blend: %s", eeg_id,
                        computed.problems[int(eeg_id)], ", ".join(blind) or "no member")
