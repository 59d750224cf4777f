"""Batch-level augmentations on torch tensors, applied on the device the batch lives on.

Every random number comes from one torch.Generator passed in (normally a CPU generator owned by the
training loop and checkpointed with it), so a resumed run draws the same augmentations and the
numbers do not depend on whether the batch is on CPU or CUDA. Only B-sized draws happen on the
generator's device; the tensor work happens on the batch's device.

Shapes: images are (B, C, F, T) (frequency on the second-to-last axis, time on the last), waveforms
(B, C, T). The channel axis is always 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def _uniform(n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=gen.device).to(device)


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape (B,) values to broadcast over the other axes of x."""
    return values.view(-1, *([1] * (x.dim() - 1)))


def hemisphere_swap(x: torch.Tensor, swap_index: Sequence[int], p: float, gen: torch.Generator) -> torch.Tensor:
    """Permute the channel axis by `swap_index` (left <-> right) for a random share `p` of the batch.

    The label does not change: a lateralised pattern (LPD, LRDA) stays the same class on the other side.
    """
    chosen = _uniform(x.shape[0], gen, x.device) < p
    swapped = x[:, torch.as_tensor(swap_index, device=x.device)]
    return torch.where(_per_sample(chosen, x), swapped, x)


def time_shift(x: torch.Tensor, max_frac: float, gen: torch.Generator) -> torch.Tensor:
    """Roll each sample along the last axis by a uniform shift in [-max_frac*T, +max_frac*T]."""
    batch, length = x.shape[0], x.shape[-1]
    max_shift = int(max_frac * length)
    if max_shift == 0:
        return x
    shifts = torch.randint(-max_shift, max_shift + 1, (batch,), generator=gen, device=gen.device).to(x.device)
    # torch.roll semantics, one gather for the whole batch: out[t] = x[(t - shift) mod T]
    index = (torch.arange(length, device=x.device) - shifts[:, None]) % length
    index = index.view(batch, *([1] * (x.dim() - 2)), length).expand_as(x)
    return x.gather(-1, index)


def _band_mask(batch: int, length: int, max_frac: float, p: float, gen: torch.Generator) -> torch.Tensor:
    """(B, length) bool: one contiguous band of width U{0..max_frac*length} per chosen sample."""
    max_width = int(max_frac * length)
    u_apply, u_width, u_start = torch.rand(3, batch, generator=gen, device=gen.device)
    width = (u_width * (max_width + 1)).long().clamp(max=max_width) * (u_apply < p)
    start = (u_start * (length - width + 1)).long()
    pos = torch.arange(length, device=gen.device)
    return (pos >= start[:, None]) & (pos < (start + width)[:, None])


def time_mask(x: torch.Tensor, max_frac: float, gen: torch.Generator, p: float = 1.0) -> torch.Tensor:
    """SpecAugment time mask: zero one band of the last axis (all channels, all frequencies) per sample."""
    mask = _band_mask(x.shape[0], x.shape[-1], max_frac, p, gen).to(x.device)
    return x.masked_fill(mask.view(x.shape[0], *([1] * (x.dim() - 2)), x.shape[-1]), 0.0)


def freq_mask(x: torch.Tensor, max_frac: float, gen: torch.Generator, p: float = 1.0) -> torch.Tensor:
    """SpecAugment frequency mask on (B, C, F, T): zero one band of the F axis (all times) per sample."""
    batch, n_freq = x.shape[0], x.shape[-2]
    mask = _band_mask(batch, n_freq, max_frac, p, gen).to(x.device)
    return x.masked_fill(mask.view(batch, 1, n_freq, 1), 0.0)


def mixup(
    x: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, alpha: float, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Mix each sample with a random partner: lam ~ Beta(alpha, alpha) per sample, applied to the
    input, the soft target (which therefore still sums to 1) and the sample weight."""
    batch = x.shape[0]
    partner = torch.randperm(batch, generator=gen, device=gen.device).to(x.device)
    # torch's Beta sampler takes no generator; seed numpy's from ours so the draw stays reproducible
    seed = int(torch.randint(2**62, (1,), generator=gen, device=gen.device))
    lam = torch.as_tensor(np.random.default_rng(seed).beta(alpha, alpha, size=batch), device=x.device)

    def mix(v: torch.Tensor) -> torch.Tensor:
        lam_v = _per_sample(lam.to(v.dtype), v)
        return lam_v * v + (1 - lam_v) * v[partner]

    return mix(x), mix(target), None if weight is None else mix(weight)


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and sizes; a probability of 0 (or a fraction of 0) turns that step off."""

    swap_p: float = 0.5
    time_shift_frac: float = 0.0
    time_mask_p: float = 0.0
    time_mask_frac: float = 0.1
    freq_mask_p: float = 0.0
    freq_mask_frac: float = 0.1
    mixup_p: float = 0.0
    mixup_alpha: float = 0.4


class BatchAugmenter:
    """Apply, in order: hemisphere swap, time shift, time mask, frequency mask (images only), mixup.

    `swap_index` is the channel permutation that mirrors left and right for this view (None: no swap).
    Called as `augmenter(batch, gen)` on a batch dict; returns a new dict (x, target, weight replaced).
    """

    def __init__(self, cfg: AugmentConfig, swap_index: Sequence[int] | None, is_image: bool):
        self.cfg = cfg
        self.swap_index = None if swap_index is None else list(swap_index)
        self.is_image = is_image

    def __call__(self, batch: dict, gen: torch.Generator) -> dict:
        cfg, x = self.cfg, batch["x"]
        if self.swap_index is not None and cfg.swap_p > 0:
            x = hemisphere_swap(x, self.swap_index, cfg.swap_p, gen)
        if cfg.time_shift_frac > 0:
            x = time_shift(x, cfg.time_shift_frac, gen)
        if cfg.time_mask_p > 0:
            x = time_mask(x, cfg.time_mask_frac, gen, cfg.time_mask_p)
        if self.is_image and cfg.freq_mask_p > 0:
            x = freq_mask(x, cfg.freq_mask_frac, gen, cfg.freq_mask_p)
        out = {**batch, "x": x}
        if cfg.mixup_p > 0 and float(torch.rand(1, generator=gen, device=gen.device)) < cfg.mixup_p:
            mixed = mixup(x, batch["target"], batch.get("weight"), cfg.mixup_alpha, gen)
            out["x"], out["target"], out["weight"] = mixed
        return out
