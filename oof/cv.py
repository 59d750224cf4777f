"""`python -m oof run --model NAME`: train a recipe over the shared folds; write the OOF contract files.

Every (recipe, fold) is an independent job (`--folds 0,1`) that writes its own shard; once every
fold's shard exists they merge into WORK/oof/NAME.parquet, WORK/test/NAME.parquet and NAME.json
(ARCHITECTURE.md "OOF contract"). A killed run resumes from its last epoch checkpoint.

Several GPUs: `torchrun --nproc_per_node=N -m oof run ...` trains each fold across N processes (DDP,
oof.distributed); `--gpus 0,1,2,3` trains the folds in parallel, one process per GPU (oof.parallel_folds).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from core.artifacts import code_version, read_provenance, remove_temporaries, write_json, write_parquet
from core.device import resolve_device
from core.errors import UserFacingError
from core.metric import class_prior_predictions, normalise_rows, score
from core.schema import TARGET_COLUMNS, VOTE_COLUMNS
from core.work import Work
from features.kaggle_data import KaggleFolder
from features.views import get_view
from models.build import build_model, input_transform, is_image_model, model_input_channels
from oof import distributed
from oof.augment import BatchAugmenter
from oof.datasets import ViewArrays, epoch_rows, loader
from oof.distributed import SINGLE, Dist
from oof.folds import create_or_load_folds
from oof.gbdt_member import BOOSTER_SUFFIX, fit_gbdt_fold, predict_booster
from oof.recipe import Recipe
from oof.recipes import get_recipe
from oof.train_loop import FoldData, fit_fold, predict, seed_everything

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="recipe name (`make models` lists them)")
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--work", type=Path, default=Path("artifacts"))
    parser.add_argument("--folds", default="", help="comma-separated folds to train (default: all)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (under torchrun: "
                                                             "each process's LOCAL_RANK GPU)")
    parser.add_argument("--gpus", default="", help="train folds in parallel, one process per entry: 0,1,2,3 "
                                                   "(GPU indices) or cpu,cpu")
    parser.add_argument("--stop-after-epoch", type=int, default=None, help=argparse.SUPPRESS)  # tests: a kill
    parser.add_argument("--no-merge", action="store_true", help=argparse.SUPPRESS)  # --gpus children: parent merges
    parser.add_argument("overrides", nargs="*", help="recipe settings, e.g. epochs=3 image_size=256")


def run(args: argparse.Namespace) -> None:
    if args.gpus:
        from oof.parallel_folds import run_parallel

        return run_parallel(args)
    recipe = get_recipe(args.model, args.overrides)
    command = make_command(args.model, args.overrides)
    asked = parse_folds(args.folds)
    dist, device = distributed.from_env(resolve_device(args.device))
    try:
        job = _rank0_first(dist, lambda: CVJob(recipe, args.data, args.work, device, command=command, dist=dist))
        folds = job.chosen_folds(asked)
        for fold in folds:
            job.run_fold(fold, args.stop_after_epoch)
        if dist.is_main and job.all_shards_exist() and not args.no_merge:
            print(job.merge())
        elif dist.is_main:
            log.info("folds done: %s; the OOF file is written once every fold's shard exists", folds)
    finally:
        distributed.close(dist)


def _rank0_first(dist: Dist, build):
    """Rank 0 builds first (it may write the folds file and view caches), then the others read them."""
    if not dist.is_main:
        dist.barrier()
    built = build()
    if dist.is_main:
        dist.barrier()
    return built


def parse_folds(text: str) -> list[int]:
    """`--folds 0,2` (`make oof FOLDS=0,2`), checked before any cache is built; empty: every fold."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not all(item.isdigit() for item in items):
        raise UserFacingError(f"--folds {text!r} (FOLDS=): list fold numbers, comma-separated (e.g. FOLDS=0,1), "
                              "or leave it empty for every fold")
    return [int(item) for item in items]


def view_definitions(names: tuple[str, ...]) -> dict[str, dict]:
    """What each view computes, as JSON keeps it (lists for tuples). A view's code can change under the
    same name, so a fold records the definitions it was trained on."""
    return {name: json.loads(json.dumps(get_view(name).to_dict())) for name in names}


def changed_views(stored: dict | None, current: dict[str, dict]) -> list[str]:
    """`view NAME.FIELD` for each field that differs from the stored definitions; none for a fold stored
    before they were recorded (nothing to compare) or for a view the recipe did not use then (a change of
    model.views, named already)."""
    if not stored:
        return []
    return [f"view {name}.{key}" for name, now in current.items() if name in stored
            for key in sorted(set(now) | set(stored[name])) if now.get(key) != stored[name].get(key)]


def make_command(model: str, overrides: list[str]) -> dict[str, str]:
    """The `make oof` variables that train this recipe again: recorded in NAME.json, quoted by error
    hints (a renamed variant is not a registry name; it needs its MODEL and ARGS)."""
    return {"MODEL": model, "ARGS": " ".join(overrides)}


class CVJob:
    def __init__(self, recipe: Recipe, data: Path, work: Path, device: torch.device,
                 command: dict[str, str] | None = None, dist: Dist = SINGLE):
        self.recipe, self.data, self.work, self.device = recipe, Path(data), Work(work), device
        self.dist = dist
        self.command = command or make_command(recipe.name, [])
        self.name = recipe.name
        folds = create_or_load_folds(data, work, n_folds=recipe.data.n_folds)
        self.fold_ids = sorted(folds["fold"].unique().tolist())
        if len(self.fold_ids) != recipe.data.n_folds:
            # The shared folds file wins (every model must use the same split); record what was used.
            log.warning("%s has %d folds, not the recipe's n_folds=%d; using the file's (delete it and "
                        "`make folds` to re-split)", self.work.folds(), len(self.fold_ids), recipe.data.n_folds)
            recipe = replace(recipe, data=replace(recipe.data, n_folds=len(self.fold_ids)))
            self.recipe = recipe
        folder = KaggleFolder(data)
        train = folder.train_table()
        fold_of_eeg = folds.drop_duplicates("eeg_id").set_index("eeg_id")["fold"]
        self.label_rows = train.assign(fold=train["eeg_id"].map(fold_of_eeg)).dropna(subset=["fold"])
        self.samples = folds.merge(train[["label_id", *TARGET_COLUMNS, "n_votes"]], on="label_id")
        self.test = folder.test_table()
        self.views = view_definitions(recipe.model.views)  # what this job's folds record and are checked on
        self.train_views = ViewArrays(recipe, data, work, "train")
        self.test_views = ViewArrays(recipe, data, work, "test")

    def shards(self, fold: int) -> tuple[Path, Path]:
        """(OOF shard, test shard) of one fold."""
        return self.work.oof_shard(self.name, fold), self.work.test_shard(self.name, fold)

    def chosen_folds(self, asked: list[int]) -> list[int]:
        """The folds `--folds` asked for (all when none), each one of the folds file's."""
        unknown = [k for k in asked if k not in self.fold_ids]
        if unknown:
            raise UserFacingError(f"fold {unknown[0]} does not exist; folds are {self.fold_ids} ({self.work.folds()})")
        return asked or list(self.fold_ids)

    def all_shards_exist(self) -> bool:
        return all(p.exists() for k in self.fold_ids for p in self.shards(k))

    # ---- one fold -----------------------------------------------------------------------
    def run_fold(self, fold: int, stop_after_epoch: int | None = None) -> None:
        self.chosen_folds([fold])
        if self._shard_is_current(fold):
            log.info("%s fold %d: shard exists, skipped", self.name, fold)
            return
        self._clear_killed_writes(fold)
        self._claim_run_dir(fold)
        started = time.time()
        valid = self.samples[self.samples["fold"] == fold].reset_index(drop=True)
        if self.recipe.is_gbdt and self.dist.active:
            raise UserFacingError(f"{self.name} is a LightGBM member: train it without torchrun")
        result, test_probs = self._fit_gbdt(fold, valid) if self.recipe.is_gbdt \
            else self._fit_neural(fold, valid, stop_after_epoch)
        if self.dist.is_main:
            self._write_shards(fold, valid, result.valid_probs, test_probs, result, time.time() - started)
        self.dist.barrier()  # the next fold's shard check sees this one's files

    def _fit_gbdt(self, fold: int, valid: pd.DataFrame):
        train = self.samples[self.samples["fold"] != fold].reset_index(drop=True)
        cfg = replace(self.recipe.gbdt, seed=self.recipe.gbdt.seed + fold)  # as neural folds differ in init
        path = self.work.checkpoint(self.name, fold, BOOSTER_SUFFIX)
        booster, result = fit_gbdt_fold(self.recipe, cfg, self.train_views, train, valid, path)
        return result, predict_booster(self.recipe, booster, self.test_views, self.test["eeg_id"].to_numpy())

    def _fit_neural(self, fold: int, valid: pd.DataFrame, stop_after_epoch: int | None = None):
        """(FitResult, test probabilities); (None, None) on DDP ranks other than 0."""
        train_rows = self.label_rows[self.label_rows["fold"] != fold]
        cfg = replace(self.recipe.train, seed=self.recipe.train.seed + fold)  # folds differ in init and augmentation
        bs, dist = cfg.batch_size, self.dist
        rank_bs = dist.batch_size(bs)  # under DDP: batch_size / N rows per rank, the global batch unchanged
        fast = _loader_speed(self.device, cfg.num_workers)
        if self.recipe.data.max_train_recordings:
            keep = train_rows["eeg_id"].drop_duplicates().iloc[: self.recipe.data.max_train_recordings]
            train_rows = train_rows[train_rows["eeg_id"].isin(keep)]

        def make_train_loader(epoch: int, stage: int):
            data_cfg = self.recipe.data
            rows = dist.shard(epoch_rows(train_rows, epoch, stage, data_cfg.high_vote_min, cfg.seed,
                                         data_cfg.windows_per_recording))
            return loader(self.train_views, rows, "label_id", rank_bs, self.recipe.data.vote_weighting,
                          cfg.num_workers, fast["pin_memory"], prefetch_factor=fast["prefetch_factor"])

        # reused every epoch: persistent workers save their start-up (a new train loader is made per epoch)
        valid_loader = loader(self.train_views, valid, "label_id", bs, num_workers=cfg.num_workers, **fast)
        swap = self.train_views.swap_index if self.recipe.data.tta_swap else None
        augmenter = BatchAugmenter(self.recipe.augment, self.train_views.swap_index, is_image_model(self.recipe.model))
        data = FoldData(make_train_loader, valid_loader, augmenter, input_transform(self.recipe.model), swap)
        seed_everything(cfg.seed)  # the initial weights too, whatever ran before in this process
        model = self.new_model()
        # fit_fold leaves the best (EMA when on) weights in `model`, and predicts validation from them
        result = fit_fold(model, data, cfg, self.work.run_dir(self.name, fold), self.device, stop_after_epoch, dist)
        if result is None:  # not rank 0: validation and test prediction are rank 0's
            return None, None
        test_frame = self.test.assign(n_votes=0, **{c: 0.0 for c in TARGET_COLUMNS})
        test_loader = loader(self.test_views, test_frame, "eeg_id", bs, num_workers=cfg.num_workers,
                             pin_memory=fast["pin_memory"], prefetch_factor=fast["prefetch_factor"])
        return result, predict(model, test_loader, self.device, to_input=data.to_input, swap_index=swap,
                               amp=cfg.amp)

    def new_model(self) -> torch.nn.Module:
        in_chans = model_input_channels(self.recipe.model, self.train_views.gather(np.arange(1)))
        return build_model(self.recipe.model, in_chans)

    def _provenance(self) -> dict:
        return {"recipe": self.recipe.to_dict(), "recipe_fingerprint": self.recipe.fingerprint(),
                "views": self.views, "data": str(self.data.resolve())}

    def _shard_is_current(self, fold: int) -> bool:
        paths = self.shards(fold)
        if not all(p.exists() for p in paths):
            return False
        self._refuse_other_settings(read_provenance(paths[0]), paths[0],
                                    f"delete {paths[0]}, {paths[1]} and {self.work.run_dir(self.name, fold)} "
                                    "to retrain that fold")
        return True

    def _clear_killed_writes(self, fold: int) -> None:
        """One job trains a fold (its rank 0 writes): a temporary in its folder is a killed run's, maybe the
        size of a checkpoint, and would make the folder look like a run without its recipe.json."""
        if self.dist.is_main:
            for path in remove_temporaries(self.work.run_dir(self.name, fold)):
                log.info("removed %s, left by a killed run", path)
        self.dist.barrier()

    def _claim_run_dir(self, fold: int) -> None:
        """A fold's run folder is resumed (last.pt) or reused (done.json, best.txt) only under the recipe it
        was started with, less the settings that cannot change the result: recipe.json records it."""
        run_dir, path = self.work.run_dir(self.name, fold), self.work.run_recipe(self.name, fold)
        fix = f"delete {run_dir} to train that fold from scratch"
        if path.is_file():
            return self._refuse_other_settings(json.loads(path.read_text()), run_dir, fix)
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise UserFacingError(f"{run_dir} holds a run without its {path.name} (made by an older version, or "
                                  f"copied without it): its settings cannot be checked; {fix}")
        self.dist.barrier()  # every rank has looked before rank 0 writes
        if self.dist.is_main:
            write_json(path, {**self._provenance(), "code_version": code_version()})

    def _refuse_other_settings(self, provenance: dict, where: Path, fix: str) -> None:
        """One line naming the settings `where` was made with that differ from this run's recipe."""
        if "recipe" in provenance:
            changed = self.recipe.changed_since(provenance["recipe"])
        else:  # a shard from before the recipe was recorded: its fingerprint alone
            changed = ["(recipe fingerprint)"] if provenance.get("recipe_fingerprint") != self.recipe.fingerprint() \
                else []
        changed += changed_views(provenance.get("views"), self.views)
        if changed:
            raise UserFacingError(f"{where} was made with other settings of {self.name} ({', '.join(changed)} "
                                  f"changed): restore those values to resume or reuse it, or {fix}")

    def _write_shards(self, fold, valid, valid_probs, test_probs, result, seconds) -> None:
        oof = valid[["eeg_id", "label_id", "fold"]].copy()
        oof[list(VOTE_COLUMNS)] = normalise_rows(valid_probs)
        oof[list(TARGET_COLUMNS)] = valid[list(TARGET_COLUMNS)].to_numpy()
        oof["n_votes"] = valid["n_votes"].to_numpy()
        test = self.test[["eeg_id"]].copy()
        test[list(VOTE_COLUMNS)] = normalise_rows(test_probs)
        fit = {"best_epoch": result.best_epoch, "seconds": seconds, "history": result.history}
        meta = {**self._provenance(), "fold": fold, "fit": fit}
        oof_shard, test_shard = self.shards(fold)
        write_parquet(test_shard, test, meta)
        write_parquet(oof_shard, oof, meta)  # written last: its presence means the fold is done
        s = score(oof[list(TARGET_COLUMNS)].to_numpy(), oof[list(VOTE_COLUMNS)].to_numpy(), oof["n_votes"].to_numpy())
        log.info("%s fold %d: KL all %.4f, high-vote %.4f (%d s)", self.name, fold, s["kl_all"], s["kl_high"], seconds)

    # ---- merge --------------------------------------------------------------------------
    def merge(self) -> str:
        shards = [pd.read_parquet(self.shards(k)[0]) for k in self.fold_ids]
        metas = [read_provenance(self.shards(k)[0]) for k in self.fold_ids]
        for k, meta in zip(self.fold_ids, metas, strict=True):
            self._refuse_other_settings(meta, self.shards(k)[0], f"delete {self.shards(k)[0]} to retrain that fold")
        oof = pd.concat(shards, ignore_index=True).sort_values(["eeg_id", "label_id"]).reset_index(drop=True)
        tests = [pd.read_parquet(self.shards(k)[1]).set_index("eeg_id") for k in self.fold_ids]
        test = sum(t[list(VOTE_COLUMNS)] for t in tests) / len(tests)
        test = test.reset_index()
        test[list(VOTE_COLUMNS)] = normalise_rows(test[list(VOTE_COLUMNS)].to_numpy())
        targets, preds = oof[list(TARGET_COLUMNS)].to_numpy(), oof[list(VOTE_COLUMNS)].to_numpy()
        per_fold = {int(k): score(targets[oof["fold"] == k], preds[oof["fold"] == k], oof["n_votes"][oof["fold"] == k])
                    for k in self.fold_ids}
        overall = score(targets, preds, oof["n_votes"].to_numpy())
        prior = score(targets, class_prior_predictions(targets, len(targets)), oof["n_votes"].to_numpy())
        report = {**self._provenance(), "make_oof": self.command, "code_version": code_version(),
                  "device": str(self.device),
                  "kl": overall, "kl_per_fold": per_fold, "class_prior_kl": prior,
                  "seconds_per_fold": {int(m["fold"]): training_seconds(m["fit"]) for m in metas},
                  "best_epoch_per_fold": {int(m["fold"]): m["fit"]["best_epoch"] for m in metas}}
        write_parquet(self.work.test(self.name), test, self._provenance())
        write_parquet(self.work.oof(self.name), oof, self._provenance())
        write_json(self.work.oof_json(self.name), report)
        return format_report(self.name, per_fold, overall, prior)


def _loader_speed(device: torch.device, num_workers: int) -> dict:
    """DataLoader options for CUDA: pinned host memory (async copies), workers kept and prefetching."""
    cuda, workers = device.type == "cuda", num_workers > 0
    return {"pin_memory": cuda, "persistent_workers": cuda and workers,
            "prefetch_factor": 4 if cuda and workers else None}


def format_report(name: str, per_fold: dict, overall: dict, prior: dict) -> str:
    lines = [f"{name}: KL by fold (all rows / >= {overall['min_votes']} voters)"]
    for k, s in per_fold.items():
        lines.append(f"  fold {k}: {s['kl_all']:.4f} / {s['kl_high']:.4f}  ({s['n_all']} samples)")
    lines.append(f"  overall: {overall['kl_all']:.4f} / {overall['kl_high']:.4f}")
    lines.append(f"  class prior: {prior['kl_all']:.4f} / {prior['kl_high']:.4f}")
    return "\n".join(lines)


def training_seconds(fit: dict) -> float:
    """A fold's training time: its epochs' seconds over every run that resumed it (a fold reused from
    done.json took seconds to reload, not the minutes it trained), else the process's wall time."""
    epochs = [row.get("seconds") for row in fit.get("history") or []]
    epochs = [float(x) for x in epochs if x is not None and x == x]
    return sum(epochs) if epochs else float(fit["seconds"])
