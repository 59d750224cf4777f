"""Is this GPU ready for the real run? In a few minutes on one GPU: training samples/s and peak memory of
mit_b1_spec and a timm recipe (effb0_kspec_eegspec) at full size in bf16, fp16 and fp32, inference
recordings/s, and what they mean for the real data: 5 folds x the recipe's epochs on 17,089 recordings
(one window per recording per epoch) and 10,000 test recordings.

    python -m bench.gpu_check [--models mit_b1_spec,effb0_kspec_eegspec] [--steps 20] [--device auto]
    python -m bench.gpu_check --tiny      # CPU presets at 64 px, batch 2, 1 step: the check runs (tests)

Inputs are random tensors of the recipe's view shapes (as bench.train_speed), so no data folder is needed.
Projections use the precision `amp=auto` picks on this device and count training plus one validation
pass per epoch; they leave out view computation and data loading (bench.features, bench.inference), and
count stage 2 on every recording (it trains on high-vote ones only): an upper bound on the GPU time.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from bench.train_speed import random_batches
from core.device import amp_dtype, resolve_device
from models.build import build_model, input_transform, model_input_channels
from oof.recipe import Recipe
from oof.recipes import get_recipe
from oof.train_loop import predict, train_pass

MODES = {"bf16": "bf16", "fp16": "fp16", "fp32": "off"}  # name -> TrainConfig.amp
AUTO_NAME = {torch.bfloat16: "bf16", torch.float16: "fp16", None: "fp32"}
TRAIN_RECORDINGS, TEST_RECORDINGS, FOLDS = 17_089, 10_000, 5


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mit_b1_spec,effb0_kspec_eegspec")
    parser.add_argument("--args", default="", help="overrides for every recipe, e.g. 'batch_size=16'")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per precision")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tiny", action="store_true", help="CPU presets (*_cpu) at 64 px, batch 2, 1 step")
    args = parser.parse_args(argv)
    if args.tiny:
        args.models = ",".join(f"{m}_cpu" if not m.endswith("_cpu") else m for m in args.models.split(","))
        args.models = args.models.replace("mit_b1_spec_cpu", "mit_b0_spec_cpu")  # the MiT CPU preset is b0
        args.args = f"image_size=64 batch_size=2 {args.args}"
        args.steps = 1
    return args


def train_rate(recipe: Recipe, amp: str, steps: int, device: torch.device) -> dict:
    """Samples/s of `steps` loop steps (fit_fold's: precision, scaler, channels_last, AdamW) after a short
    warm-up, and the peak GPU memory."""
    cfg = replace(recipe.train, amp=amp)
    to_input = input_transform(recipe.model)
    batches = random_batches(recipe, steps)
    model = build_model(recipe.model, model_input_channels(recipe.model, batches[0]["x"][:1]))
    train_pass(model, batches[: max(1, steps // 4)], cfg, device, to_input)  # kernels, allocator, cudnn choice
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    _, seen = train_pass(model, batches, cfg, device, to_input)  # ends in .item(): synchronised
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"samples_per_s": seen / (time.perf_counter() - started), "peak_gib": peak}


def inference_rate(recipe: Recipe, device: torch.device, steps: int) -> float:
    """Recordings/s of one plain pass (no TTA) with the `amp=auto` precision, after a warm-up pass."""
    batches = random_batches(recipe, max(1, steps // 2), seed=1)
    model = build_model(recipe.model, model_input_channels(recipe.model, batches[0]["x"][:1])).to(device).eval()
    to_input = input_transform(recipe.model)
    predict(model, batches[:1], device, to_input)
    started = time.perf_counter()
    predict(model, batches, device, to_input)  # ends in .cpu(): synchronised
    return sum(len(b["x"]) for b in batches) / (time.perf_counter() - started)


def projection(recipe: Recipe, train_rate: float, infer_rate: float) -> tuple[float, float]:
    """(hours for 5 folds of training + per-epoch validation, minutes for the test set with every fold)."""
    epochs = recipe.train.epochs + recipe.train.stage2_epochs
    train_rows, valid_rows = TRAIN_RECORDINGS * (FOLDS - 1) / FOLDS, TRAIN_RECORDINGS / FOLDS
    fold_s = epochs * (train_rows / train_rate + valid_rows / infer_rate)
    passes = 2 if recipe.data.tta_swap else 1  # the swap TTA doubles the passes
    return FOLDS * fold_s / 3600, TEST_RECORDINGS * FOLDS * passes / infer_rate / 60


def check_model(name: str, overrides: str, steps: int, device: torch.device) -> None:
    recipe = get_recipe(name, overrides)
    auto = AUTO_NAME[amp_dtype("auto", device)]
    rates = {}
    for mode, amp in MODES.items():
        try:
            r = train_rate(recipe, amp, steps, device)
        except RuntimeError as err:  # e.g. bf16 kernels missing on an old GPU
            print(f"{name:<22} {mode:<5} failed: {str(err).splitlines()[0][:80]}", flush=True)
            continue
        rates[mode] = r["samples_per_s"]
        peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"
        mark = " (auto)" if mode == auto else ""
        print(f"{name:<22} {mode:<5} {recipe.train.batch_size:>5} {r['samples_per_s']:>10.1f} {peak:>9}{mark}",
              flush=True)
    if auto not in rates:
        print(f"{name}: no projection, the auto precision ({auto}) failed")
        return
    infer = inference_rate(replace(recipe, train=replace(recipe.train, amp="auto")), device, steps)
    hours, test_min = projection(recipe, rates[auto], infer)
    epochs = f"{recipe.train.epochs}+{recipe.train.stage2_epochs}"
    print(f"{name}: inference {infer:.1f} recordings/s ({auto}); projected {FOLDS} folds x {epochs} epochs on "
          f"{TRAIN_RECORDINGS} recordings: {hours:.2f} h; {TEST_RECORDINGS} test recordings x {FOLDS} folds: "
          f"{test_min:.1f} min", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = resolve_device(args.device)
    started = time.perf_counter()
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {what}; amp=auto here: {AUTO_NAME[amp_dtype('auto', device)]}; {args.steps} timed steps per mode")
    print(f"{'recipe':<22} {'mode':<5} {'batch':>5} {'samples/s':>10} {'peak GiB':>9}")
    for name in args.models.split(","):
        check_model(name, args.args, args.steps, device)
    print(f"gpu check done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    from core.cli import run_main

    raise SystemExit(run_main(main))
