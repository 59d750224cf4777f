"""Train one fold: one readable loop with AMP, EMA, two stages and checkpoint/resume as small branches.

The same code runs on CPU (plain fp32) and CUDA (bf16 autocast where the GPU has it natively, fp16
with a GradScaler on older ones; channels_last), in one process or under torchrun (DDP, oof.distributed:
each rank trains on its share of the epoch, rank 0 alone validates and writes). Everything that
decides the result (weights, optimizer, schedule, grad scaler, EMA, RNG states, history) is written to
`run_dir/last.pt` after every epoch, so a killed run resumed from it ends with the same weights as
an uninterrupted one (bitwise on CPU). Files in `run_dir`:
  last.pt    full training state, loadable with torch.load(weights_only=True)
  best.pt    plain state_dict of the best epoch (EMA weights when EMA is on)
  done.json  the FitResult once the fold finished; a rerun returns it without training
  history.csv one row per epoch so far (oof.tracking), rewritten after each; tensorboard/ with tracker=tensorboard
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.artifacts import atomic_path, code_version, write_json
from core.device import AMP_CHOICES, amp_dtype
from core.errors import DENIED, UserFacingError
from core.metric import score
from core.progress import progress_bar
from oof.distributed import SINGLE, Dist
from oof.ema import ModelEma
from oof.losses import kl_loss
from oof.lr_schedule import warmup_cosine_scheduler
from oof.precise_bn import recompute_batchnorm
from oof.tracking import TRACKERS, TRACKING_FIELDS, EpochTracker

log = logging.getLogger(__name__)

Batch = dict[str, Any]
Transform = Callable[[torch.Tensor], torch.Tensor]
# TrainConfig fields that cannot change the result: the loaders draw nothing at random (the rows of an
# epoch are drawn before them), the log interval only paces the progress bar, a tracker only copies curves
RESULT_NEUTRAL = ("num_workers", "log_every", *TRACKING_FIELDS)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    stage2_epochs: int = 0  # 0 = single stage; stage 2 trains on high-vote rows only
    stage2_lr_scale: float = 0.3
    stage2_from_top_k: int = 0  # k > 0: stage 2 starts from the mean of the k best stage-1 weights (2nd place)
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_frac: float = 0.1
    batch_size: int = 32
    grad_clip: float = 1.0  # 0 = off
    ema_decay: float = 0.0  # 0 = off
    # which epoch's weights predict: "high": best by high-vote KL on the validation fold (when it has such
    # rows), "all": best by KL on all its rows, "last": the final epoch (an OOF score not chosen on itself)
    select_on: str = "high"
    # > 0: after each epoch, BatchNorm statistics recomputed over this many clean training batches (precise_bn)
    precise_bn_batches: int = 0
    amp: str = "auto"  # "auto": bf16 where the GPU has it natively, else fp16 + GradScaler; off on CPU; or forced
    channels_last: str = "auto"  # "auto": on CUDA for 4D inputs; "on"; "off"
    compile: bool = False  # torch.compile the training module (CUDA speed; the first steps compile)
    seed: int = 0
    num_workers: int = 4
    log_every: int = 20  # steps between progress-bar updates (each one syncs the GPU)
    tracker: str = "none"  # "tensorboard": the curves also go to run_dir/tensorboard/ (history.csv always)

    def __post_init__(self):
        for name, allowed in (("select_on", ("high", "all", "last")), ("amp", AMP_CHOICES),
                              ("channels_last", ("auto", "on", "off")), ("tracker", TRACKERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"TrainConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name, least in (("epochs", 1), ("stage2_epochs", 0), ("batch_size", 1), ("num_workers", 0),
                            ("log_every", 1), ("precise_bn_batches", 0)):
            if getattr(self, name) < least:
                raise ValueError(f"TrainConfig.{name} must be at least {least}")


@dataclass
class FitResult:
    best_epoch: int
    best_kl_all: float
    best_kl_high: float
    valid_probs: np.ndarray  # (N, 6), from the best weights, in valid_loader order
    history: list[dict]


class SimulatedKill(RuntimeError):
    """Raised by fit_fold(stop_after_epoch=k) right after epoch k's checkpoint, as if the job had died."""


@dataclass
class FoldData:
    """What one fold trains and validates on. `make_train_loader(epoch, stage)` must return something
    with len() (a DataLoader, a list): it sizes the LR schedule. `swap_index`: hemisphere-swap TTA for
    the final validation prediction (None: off)."""

    make_train_loader: Callable[[int, int], Iterable[Batch]]
    valid_loader: Iterable[Batch]
    augmenter: Callable[[Batch, torch.Generator], Batch] | None = None
    to_input: Transform | None = None
    swap_index: Sequence[int] | None = None


@dataclass
class _Step:
    """What an optimisation step needs besides the batch; optimizer and scheduler are renewed per stage."""

    net: nn.Module  # the module that trains: the model, or its DDP / compiled wrapper (same parameters)
    forward: Callable
    scaler: torch.amp.GradScaler  # enabled for fp16 only (bf16 and fp32 keep fp32's exponent range)
    ema: ModelEma | None = None
    optimizer: Any = None
    scheduler: Any = None


@dataclass
class _State:
    start: int
    history: list[dict]
    best: dict  # {"epoch", "score"} of the best epoch; "top": [[score, epoch], ...] for stage2_from_top_k
    ckpt: dict | None  # the last.pt being resumed, or None


def _top_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / f"stage1_epoch{epoch}.pt"


def _keep_top_k(state: _State, eval_model: nn.Module, row: dict, cfg: TrainConfig, run_dir: Path) -> None:
    """Keep the weights of the k best stage-1 epochs on disk (so that a resumed run has them too)."""
    top = [*state.best.get("top", []), [_selection_kl(row, cfg.select_on), row["epoch"]]]
    top.sort(key=lambda t: (t[0], t[1]))
    if [_selection_kl(row, cfg.select_on), row["epoch"]] in top[: cfg.stage2_from_top_k]:
        _save(eval_model.state_dict(), _top_path(run_dir, row["epoch"]))
    for _, epoch in top[cfg.stage2_from_top_k:]:
        _top_path(run_dir, epoch).unlink(missing_ok=True)
    state.best = {**state.best, "top": top[: cfg.stage2_from_top_k]}


@torch.no_grad()
def _load_top_k_mean(model: nn.Module, ema: ModelEma | None, state: _State, run_dir: Path,
                     device: torch.device) -> None:
    """Stage 2 starts from the mean of the k best stage-1 weights (integer buffers from the best one)."""
    epochs = [int(epoch) for _, epoch in state.best.get("top", [])]
    if not epochs:
        return
    fix = f"delete {run_dir} to train that fold again"
    states = [_load_state(_top_path(run_dir, e), fix, device) for e in epochs]
    mean = {k: (torch.stack([s[k] for s in states]).mean(0) if v.dtype.is_floating_point else v)
            for k, v in states[0].items()}
    model.load_state_dict(mean)
    if ema is not None:
        ema.module.load_state_dict(mean)
    log.info("stage 2 starts from the mean of stage-1 epochs %s", epochs)


def fit_fold(model: nn.Module, data: FoldData, cfg: TrainConfig, run_dir: Path | str, device: torch.device | str,
             stop_after_epoch: int | None = None, dist: Dist = SINGLE) -> FitResult | None:
    """Train `model` on one fold, resuming from run_dir/last.pt if present. On return the model holds the
    best weights (the EMA weights when EMA is on) and the result has their validation predictions.
    Under DDP (`dist` of several ranks, each with its share of the train batches) rank 0 alone
    validates, writes the files and returns the result; the other ranks return None."""
    run_dir, device = Path(run_dir), torch.device(device)
    model.to(device)
    forward = _place_model(model, cfg, device, data.to_input)
    if (run_dir / "done.json").exists():
        return _finished_result(model, run_dir, cfg, device) if dist.is_main else None
    ema = ModelEma(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    aug_gen = torch.Generator()  # CPU: same augmentation draws on any device, and checkpointable
    state = _start_or_resume(model, ema, aug_gen, run_dir, cfg, dist)
    step = _Step(_training_net(model, cfg, device, dist), forward, _grad_scaler(cfg, device), ema)
    if state.ckpt is not None and state.ckpt.get("scaler"):  # empty: fp32/bf16, or a run from before fp16
        step.scaler.load_state_dict(state.ckpt["scaler"])
    tracker = EpochTracker(run_dir, cfg.tracker, active=dist.is_main)
    for epoch in range(state.start, cfg.epochs + cfg.stage2_epochs):
        stage = 1 if epoch < cfg.epochs else 2
        loader = data.make_train_loader(epoch, stage)
        if epoch == cfg.epochs and cfg.stage2_from_top_k > 0:  # stage 2 begins (a resume never starts later in it)
            _load_top_k_mean(model, ema, state, run_dir, device)
        if step.optimizer is None or epoch == cfg.epochs:  # a stage begins: fresh AdamW, schedule from warm-up
            step.optimizer, step.scheduler = _optimizer_for_stage(model, cfg, stage, len(loader), device)
            if state.ckpt is not None and epoch == state.start and state.ckpt["stage"] == stage:  # mid-stage
                step.optimizer.load_state_dict(state.ckpt["optimizer"])
                step.scheduler.load_state_dict(state.ckpt["scheduler"])
        row = _train_and_validate(model, loader, data, step, cfg, device, aug_gen, epoch, stage, dist.is_main)
        state.history.append(row)
        rngs = dist.gather(_rng_state(aug_gen))  # every rank's RNGs, so that a resume continues each rank's draws
        if dist.is_main:
            _record_epoch(model, step, state, row, cfg, run_dir, rngs)
            tracker.record(state.history)
        state.best = dist.share(state.best)  # rank 0's choice; also a barrier: its files are written
        if stop_after_epoch == epoch:
            raise SimulatedKill(f"stopped after epoch {epoch} (stop_after_epoch)")
    tracker.close()
    result = _finish(model, data, forward, cfg, run_dir, device, state.best["epoch"], state.history) \
        if dist.is_main else None
    dist.barrier()  # the other ranks wait until done.json is written
    return result


def _record_epoch(model, step: _Step, state: _State, row: dict, cfg: TrainConfig, run_dir: Path,
                  rngs: list[dict]) -> None:
    """Best-epoch bookkeeping, best.pt and last.pt, the log line (rank 0 only)."""
    epoch, stage = row["epoch"], row["stage"]
    eval_model = step.ema.module if step.ema is not None else model
    if stage == 1 and cfg.stage2_from_top_k > 0:
        _keep_top_k(state, eval_model, row, cfg, run_dir)
    if _selection_kl(row, cfg.select_on) < state.best["score"]:
        state.best = {**state.best, "epoch": epoch, "score": _selection_kl(row, cfg.select_on)}
        _save(eval_model.state_dict(), run_dir / "best.pt")
    _save({"config": asdict(cfg), "code_version": code_version(), "epoch": epoch, "stage": stage,
           "model": model.state_dict(), "optimizer": step.optimizer.state_dict(),
           "scheduler": step.scheduler.state_dict(), "scaler": step.scaler.state_dict(),
           "ema": None if step.ema is None else step.ema.state_dict(), "history": state.history,
           "best": state.best, "rng": rngs[0], "rank_rng": rngs if len(rngs) > 1 else []}, run_dir / "last.pt")
    _log_epoch(row, state.best["epoch"] == epoch)


def _training_net(model: nn.Module, cfg: TrainConfig, device: torch.device, dist: Dist) -> nn.Module:
    """The module the steps call: DDP-wrapped under torchrun, compiled when asked (DDP first, as torch
    recommends). Checkpoints, EMA and validation use `model` itself: same parameters, plain state_dict keys."""
    net = dist.wrap(model, device)
    return torch.compile(net) if cfg.compile else net


def _grad_scaler(cfg: TrainConfig, device: torch.device) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(device.type, enabled=amp_dtype(cfg.amp, device) == torch.float16)


def _start_or_resume(model: nn.Module, ema: ModelEma | None, aug_gen: torch.Generator, run_dir: Path,
                     cfg: TrainConfig, dist: Dist = SINGLE) -> _State:
    ckpt = _load_checkpoint(run_dir, cfg)
    if ckpt is None:
        seed_everything(cfg.seed + dist.rank)  # ranks draw different dropout and augmentation (rank 0: as alone)
        aug_gen.manual_seed(cfg.seed + dist.rank)
        return _State(0, [], {"epoch": -1, "score": math.inf}, None)
    model.load_state_dict(ckpt["model"])
    if ema is not None:
        ema.load_state_dict(ckpt["ema"])
    ranks = ckpt.get("rank_rng") or []
    _set_rng_state(ranks[dist.rank] if len(ranks) == dist.world else ckpt["rng"], aug_gen)
    log.info("resuming %s at epoch %d", run_dir, ckpt["epoch"] + 1)
    return _State(ckpt["epoch"] + 1, ckpt["history"], ckpt["best"], ckpt)


def _train_and_validate(model, loader, data: FoldData, step: _Step, cfg: TrainConfig, device: torch.device,
                        aug_gen, epoch: int, stage: int, validate: bool = True) -> dict:
    """One epoch of training, then the validation KL of the weights that would be kept: a history row
    (KL NaN where `validate` is off: the DDP ranks other than 0)."""
    started = time.perf_counter()
    bar = progress_bar(loader, desc=f"epoch {epoch} stage {stage}", leave=False, disable=not validate)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_loss, seen = _train_epoch(model, bar, step, cfg, device, data.augmenter, aug_gen)
    train_seconds = time.perf_counter() - started  # the loss's .item() has synchronised the device
    eval_model = step.ema.module if step.ema is not None else model
    if cfg.precise_bn_batches > 0:  # the epoch's rows again, un-augmented (the loader draws nothing at random)
        recompute_batchnorm(eval_model, data.make_train_loader(epoch, stage), step.forward, device,
                            cfg.precise_bn_batches)
    kl = score(*_infer(eval_model, data.valid_loader, device, step.forward, swap_index=None)) if validate \
        else {"kl_all": math.nan, "kl_high": math.nan}
    return {"epoch": epoch, "stage": stage, "train_loss": train_loss, "kl_all": kl["kl_all"],
            "kl_high": kl["kl_high"], "lr": step.optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - started, "train_samples_per_s": seen / max(train_seconds, 1e-9),
            "peak_gpu_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def _log_epoch(row: dict, is_best: bool) -> None:
    log.info("epoch %d stage %d train %.4f valid kl %.4f high %.4f lr %.2e %.1fs (train %.0f samples/s%s)%s",
             row["epoch"], row["stage"], row["train_loss"], row["kl_all"], row["kl_high"], row["lr"], row["seconds"],
             row["train_samples_per_s"],
             "" if row["peak_gpu_gib"] is None else f", peak GPU memory {row['peak_gpu_gib']:.1f} GiB",
             " *" if is_best else "")


def predict(
    model: nn.Module,
    loader: Iterable[Batch],
    device: torch.device | str,
    to_input: Transform | None = None,
    swap_index: Sequence[int] | None = None,
    amp: str = "auto",
) -> np.ndarray:
    """Softmax probabilities (N, 6) in loader order; with `swap_index`, the mean of the plain and the
    hemisphere-swapped pass (test-time augmentation). Precision by TrainConfig.amp's rules (`amp`),
    channels_last on CUDA."""
    device = torch.device(device)
    dtype, channels_last = _precision(TrainConfig(amp=amp), device)
    _log_precision_once(device, dtype, "inference")
    return _infer(model, loader, device, _forward_fn(device, dtype, channels_last, to_input), swap_index)[1]


def train_pass(model: nn.Module, batches: Sequence[Batch], cfg: TrainConfig, device: torch.device | str,
               to_input: Transform | None = None) -> tuple[float, int]:
    """One stage-1 training pass over `batches` exactly as `fit_fold` steps (precision, grad scaler, memory
    format, compile, AdamW, schedule, clipping), without augmentation, EMA or checkpoints: for benchmarks."""
    device = torch.device(device)
    model.to(device)
    step = _Step(_training_net(model, cfg, device, SINGLE), _place_model(model, cfg, device, to_input),
                 _grad_scaler(cfg, device))
    step.optimizer, step.scheduler = _optimizer_for_stage(model, cfg, 1, len(batches), device)
    return _train_epoch(model, batches, step, cfg, device, None, None)


def _train_epoch(model, bar, step: _Step, cfg, device, augmenter, aug_gen) -> tuple[float, int]:
    """One pass over `bar`: (mean training loss, samples seen)."""
    model.train()
    step.net.train()
    loss_sum = torch.zeros((), device=device)  # summed on device: no GPU sync per step
    seen = 0
    for i, batch in enumerate(bar):
        batch = _to_device(batch, device)
        if augmenter is not None:
            batch = augmenter(batch, aug_gen)
        loss = kl_loss(step.forward(step.net, batch["x"]), batch["target"], batch.get("weight"))
        step.optimizer.zero_grad(set_to_none=True)
        step.scaler.scale(loss).backward()  # scaler disabled (fp32, bf16): plain backward and step
        if cfg.grad_clip > 0:
            step.scaler.unscale_(step.optimizer)  # clip the true gradients, not the fp16-scaled ones
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        step.scaler.step(step.optimizer)  # skipped when fp16 gradients overflowed
        step.scaler.update()
        step.scheduler.step()
        if step.ema is not None:
            step.ema.update(model)
        loss_sum += loss.detach() * len(batch["x"])
        seen += len(batch["x"])
        if (i + 1) % cfg.log_every == 0 and hasattr(bar, "set_postfix"):  # train_pass passes a plain list
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", refresh=False)  # drawn at its pace
    return loss_sum.item() / max(seen, 1), seen


@torch.no_grad()
def _infer(model, loader, device, forward, swap_index) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """(targets, probs, n_votes) over the loader; targets and n_votes are None when batches lack them."""
    model.eval()
    probs, targets, votes = [], [], []
    for batch in loader:
        x = batch["x"].to(device, non_blocking=True)
        p = forward(model, x).softmax(dim=1)
        if swap_index is not None:
            p = (p + forward(model, x[:, torch.as_tensor(swap_index, device=device)]).softmax(dim=1)) / 2
        probs.append(p)
        if "target" in batch:
            targets.append(torch.as_tensor(batch["target"]).cpu())
            votes.append(torch.as_tensor(batch["n_votes"]).cpu())
    probs_np = torch.cat(probs).double().cpu().numpy()
    if not targets:
        return None, probs_np, None
    return torch.cat(targets).double().numpy(), probs_np, torch.cat(votes).numpy()


def _forward_fn(device: torch.device, dtype: torch.dtype | None, channels_last: bool, to_input: Transform | None):
    """model(x) -> fp32 logits, with the on-device input transform, memory format and autocast (dtype None: off)."""

    def forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if to_input is not None:
            x = to_input(x)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            return model(x).float()

    return forward


def _place_model(model: nn.Module, cfg: TrainConfig, device: torch.device, to_input: Transform | None):
    """Memory format for `cfg` on `device` (the model is already there); the matching forward function."""
    dtype, channels_last = _precision(cfg, device)
    log.info("precision on %s: %s%s, channels_last %s%s", device, _dtype_name(dtype),
             " with a GradScaler" if dtype == torch.float16 else "", "on" if channels_last else "off",
             ", torch.compile" if cfg.compile else "")
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return _forward_fn(device, dtype, channels_last, to_input)


def _precision(cfg: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, channels_last) for `cfg` on `device`."""
    on_cuda = device.type == "cuda"
    return amp_dtype(cfg.amp, device), cfg.channels_last == "on" or (cfg.channels_last == "auto" and on_cuda)


def _dtype_name(dtype: torch.dtype | None) -> str:
    return {torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast", None: "fp32"}[dtype]


_LOGGED_PRECISION: set = set()


def _log_precision_once(device: torch.device, dtype: torch.dtype | None, what: str) -> None:
    """predict() runs once per fold model and test chunk: its precision is logged once per process."""
    if (device, dtype, what) not in _LOGGED_PRECISION:
        _LOGGED_PRECISION.add((device, dtype, what))
        log.info("%s precision on %s: %s", what, device, _dtype_name(dtype))


def _optimizer_for_stage(model, cfg: TrainConfig, stage: int, steps_per_epoch: int, device: torch.device):
    """AdamW with no weight decay on biases and norm weights (every tensor under 2 dims), and a
    warm-up + cosine schedule over the stage; stage 2 starts over at lr * stage2_lr_scale."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    lr = cfg.lr if stage == 1 else cfg.lr * cfg.stage2_lr_scale
    optimizer = torch.optim.AdamW(groups, lr=lr, fused=device.type == "cuda")
    epochs = cfg.epochs if stage == 1 else cfg.stage2_epochs
    return optimizer, warmup_cosine_scheduler(optimizer, steps_per_epoch * epochs, cfg.warmup_frac)


def _selection_kl(row: dict, select_on: str) -> float:
    """The score an epoch is ranked by, lower is better; under "last" each epoch beats the ones before it
    (and stage 2's top-k start is the mean of the last k stage-1 epochs, as in weight averaging)."""
    if select_on == "last":
        return -float(row["epoch"])
    if select_on == "high" and not math.isnan(row["kl_high"]):
        return row["kl_high"]
    return row["kl_all"]


def _finish(model, data: FoldData, forward, cfg, run_dir, device, best_epoch, history) -> FitResult:
    """Load the best weights and predict the validation rows once, from exactly those weights (with the
    swap TTA the OOF file uses); done.json records the result so that a rerun returns it as it is."""
    if best_epoch < 0:
        raise UserFacingError(f"{run_dir}: no epoch reached a finite validation KL (training diverged); "
                              "lower the learning rate and delete the folder to retrain")
    _load_best(model, run_dir, device)
    targets, probs, n_votes = _infer(model, data.valid_loader, device, forward, swap_index=data.swap_index)
    kl = score(targets, probs, n_votes)
    result = FitResult(best_epoch, kl["kl_all"], kl["kl_high"], probs, history)
    write_json(run_dir / "done.json", {"config": asdict(cfg), "code_version": code_version(),
                                       **asdict(result), "valid_probs": probs.tolist()})
    return result


def _finished_result(model, run_dir: Path, cfg: TrainConfig, device: torch.device) -> FitResult:
    done = json.loads((run_dir / "done.json").read_text())
    _check_config(done["config"], cfg, run_dir)
    _load_best(model, run_dir, device)
    return FitResult(done["best_epoch"], done["best_kl_all"], done["best_kl_high"],
                     np.asarray(done["valid_probs"], dtype=np.float64), done["history"])


def _load_best(model: nn.Module, run_dir: Path, device: torch.device) -> None:
    fix = f"delete {run_dir} to train that fold again"
    model.load_state_dict(_load_state(run_dir / "best.pt", fix, device))


def _load_checkpoint(run_dir: Path, cfg: TrainConfig) -> dict | None:
    path = run_dir / "last.pt"
    if not path.exists():
        return None
    ckpt = _load_state(path, "delete it to train that fold from its start")  # RNG states stay on the CPU
    _check_config(ckpt["config"], cfg, run_dir)
    return ckpt


def _load_state(path: Path, fix: str, device: torch.device | str = "cpu") -> Any:
    """torch.load(weights_only=True), or one line naming a file cut short or not a checkpoint at all."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:  # what a cut file raises varies
        if isinstance(err, OSError) and err.errno in DENIED:  # unreadable, not damaged: the CLI says so
            raise
        raise UserFacingError(f"{path} is not a readable checkpoint (cut short or damaged: "
                              f"{type(err).__name__}); {fix}") from None


def _check_config(stored: dict, cfg: TrainConfig, run_dir: Path) -> None:
    current, defaults = asdict(cfg), asdict(TrainConfig())
    stored = {**defaults, **stored}  # a field added since that run was stored had its default then
    changed = sorted(k for k in stored.keys() | current.keys()
                     if k not in RESULT_NEUTRAL and stored.get(k) != current.get(k))
    if changed:
        raise UserFacingError(
            f"{run_dir} holds a run trained with a different config ({', '.join(changed)} changed): "
            f"restore those values to resume it, or delete {run_dir} to train from scratch"
        )


def _save(obj: Any, path: Path) -> None:
    # Through a Python file, so that a full disk raises OSError (ENOSPC), which the CLI turns into one line
    # naming the folder: torch's zip writer reports it as an opaque RuntimeError ("unexpected pos ...").
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        try:
            torch.save(obj, handle)
        except RuntimeError as err:
            if isinstance(err.__context__, OSError):  # closing the zip failed after the file's write had
                raise err.__context__ from None
            raise


def _to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # CPU and every CUDA device


def _rng_state(aug_gen: torch.Generator) -> dict:
    """Every RNG the loop or a train loader may draw from, as tensors / lists (weights_only-loadable)."""
    _, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": keys.tolist(), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "augment": aug_gen.get_state(),
    }


def _set_rng_state(state: dict, aug_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", np.array(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    aug_gen.set_state(state["augment"])
