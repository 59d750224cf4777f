"""Training speed of named recipes at their own sizes: samples/s and peak GPU memory, with the loop's
mixed precision (bf16 autocast + channels_last on CUDA) against plain fp32 measured in the same run.

    python -m bench.train_speed [--models mit_b1_spec,wave1d] [--steps 20] [--repeats 3] [--device auto]
                                [--args "batch_size=32 image_size=512"]

Each step is `oof.train_loop.train_pass`: the input transform (tiling spectrogram views into the
image), forward, KL loss, backward, clipping, AdamW. Inputs are random tensors of the recipe's view
shapes, so no data folder is needed; the input pipeline is measured by bench.features. Figures are
medians over --repeats timed passes of --steps steps, after one untimed warm-up pass.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from core.device import resolve_device
from features.views import get_view
from models.build import build_model, input_transform, model_input_channels
from oof.recipe import Recipe
from oof.recipes import get_recipe
from oof.train_loop import train_pass

MODES = {"fp32": dict(amp="off", channels_last="off"), "bf16 + channels_last": dict(amp="bf16", channels_last="on")}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mit_b1_spec,mit_b0_kspec,wave1d")
    parser.add_argument("--args", default="", help="overrides for every recipe, e.g. 'batch_size=16'")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    return parser.parse_args()


def random_batches(recipe: Recipe, steps: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """`steps` batches shaped like the recipe's views (extra views resized to the first, as ViewArrays does)."""
    shapes = [get_view(v).output_shape() for v in recipe.model.views]
    shape = (sum(s[0] for s in shapes), *shapes[0][1:])
    gen = torch.Generator().manual_seed(seed)
    bs = recipe.train.batch_size
    return [{"x": torch.randn(bs, *shape, generator=gen),
             "target": torch.softmax(torch.randn(bs, 6, generator=gen), dim=1),
             "n_votes": torch.full((bs,), 10)} for _ in range(steps)]


def measure(recipe: Recipe, mode: dict, steps: int, repeats: int, device: torch.device) -> dict:
    cfg = replace(recipe.train, **mode)
    to_input = input_transform(recipe.model)
    batches = random_batches(recipe, steps)
    model = build_model(recipe.model, model_input_channels(recipe.model, batches[0]["x"][:1]))
    train_pass(model, batches[: max(2, steps // 4)], cfg, device, to_input)  # warm-up: kernels, allocator
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        _, seen = train_pass(model, batches, cfg, device, to_input)  # ends in .item(): synchronised
        rates.append(seen / (time.perf_counter() - started))
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"samples_per_s": statistics.median(rates), "peak_gib": peak}


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; {args.steps} steps x {args.repeats} timed passes per mode, medians")
    print(f"{'recipe':<16} {'input':<26} {'batch':>5} {'mode':<22} {'samples/s':>10} {'peak GiB':>9} {'speed-up':>9}")
    for model_name in args.models.split(","):
        recipe = get_recipe(model_name, args.args)
        views = "+".join(recipe.model.views)
        size = f"{views}@{recipe.model.image_size}" if input_transform(recipe.model) else views
        reference = None
        for mode_name, mode in MODES.items():
            r = measure(recipe, mode, args.steps, args.repeats, device)
            reference = reference or r["samples_per_s"]
            peak = "-" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"
            print(f"{model_name:<16} {size:<26} {recipe.train.batch_size:>5} {mode_name:<22} "
                  f"{r['samples_per_s']:>10.1f} {peak:>9} {r['samples_per_s'] / reference:>8.2f}x", flush=True)


if __name__ == "__main__":
    from core.cli import run_main

    raise SystemExit(run_main(main))
