"""Precise BatchNorm statistics (as pycls' and detectron2's PreciseBN): after an epoch the running mean and
variance of every BatchNorm layer are recomputed as plain averages over clean training batches.

The running averages that training leaves follow augmented, mixed-up inputs and weights that kept moving
during the epoch. A net trained from scratch for a few hundred steps then meets clean validation inputs with
statistics they never had: MixNet-S on the 16-pair mel view scored KL 1.53 / 1.22 on a validation fold with
its running statistics and 1.44 / 1.18 with recomputed ones (issue 13).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import torch
from torch import nn

Forward = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, batches: Iterable[dict], forward: Forward, device: torch.device,
                        max_batches: int) -> int:
    """Replace the running statistics by their average over the first `max_batches` of `batches` (un-augmented),
    everything but BatchNorm in eval mode (no dropout in the statistics); the number of batches used."""
    norms = batch_norms(model)
    if not norms or max_batches <= 0:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = model.training
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None: a cumulative average over the batches
        m.train()
    used = 0
    for batch in itertools.islice(batches, max_batches):
        forward(model, batch["x"].to(device, non_blocking=True))
        used += 1
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    model.train(was_training)
    return used
