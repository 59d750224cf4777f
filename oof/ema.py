"""Exponential moving average of a model's weights and buffers, checkpointed with the run."""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma:
    """A frozen copy of `model` that trails it: ema = decay * ema + (1 - decay) * model after each step.

    Float buffers (BatchNorm running statistics) are averaged like the weights, integer ones
    (num_batches_tracked) copied. The effective decay starts low, (1 + n) / (10 + n) after n updates,
    so that short runs are not dominated by the random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        ema_floats, model_floats = [], []
        for ema_v, v in zip(self.module.state_dict().values(), model.state_dict().values(), strict=True):
            if ema_v.dtype.is_floating_point:
                ema_floats.append(ema_v)
                model_floats.append(v)
            else:
                ema_v.copy_(v)
        # one fused kernel per dtype/device group instead of one launch per tensor
        torch._foreach_lerp_(ema_floats, model_floats, 1.0 - decay)

    def state_dict(self) -> dict:
        return {"updates": self.updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.module.load_state_dict(state["module"])
