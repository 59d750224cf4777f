"""Learning-rate schedule: linear warm-up, then cosine decay, stepped once per optimizer step."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(total_steps: int, warmup_frac: float, final_factor: float = 0.0) -> Callable[[int], float]:
    """Multiplier of the base lr at optimizer step `step` (0-based) out of `total_steps`.

    Rises linearly to 1 over the first `warmup_frac` of the steps (the first step already moves at
    1/warmup, never at 0), then follows half a cosine down to `final_factor` at `total_steps`.
    """
    warmup = max(1, round(total_steps * warmup_frac)) if warmup_frac > 0 else 0
    decay_steps = max(1, total_steps - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / decay_steps)
        return final_factor + (1.0 - final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def warmup_cosine_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_frac: float, final_factor: float = 0.0
) -> LambdaLR:
    return LambdaLR(optimizer, warmup_cosine(total_steps, warmup_frac, final_factor))
