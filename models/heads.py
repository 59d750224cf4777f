"""Classification heads: pooled backbone features → 6 logits (the six expert-vote classes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from core.schema import N_CLASSES

Pool = Literal["last_avg", "all_avgmax", "gem"]
POOLS: tuple[str, ...] = ("last_avg", "all_avgmax", "gem")


class ClassifierHead(nn.Module):
    """Pool, dropout, linear.

    Takes either a list of stage maps (B, C_i, H_i, W_i) from a 2D backbone, pooled by `pool`:
    `last_avg` (global average of the last stage) or `all_avgmax` (global average and max of every
    stage, concatenated: the coarse stages carry the fine time–frequency detail that harmful-activity
    patterns live in) or `gem` (generalized mean of the last stage, with a learnable exponent), or a
    feature vector (B, F) from a 1D backbone, used as it is.
    """

    def __init__(
        self,
        in_channels: Sequence[int] | int,
        pool: Pool = "last_avg",
        dropout: float = 0.0,
        num_classes: int = N_CLASSES,
    ):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.pool = pool
        if pool == "gem":  # only then: the other pools' state dicts stay as they were
            self.gem = GeM()
        self.in_features = pooled_width(in_channels, pool)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.in_features, num_classes)

    @classmethod
    def for_backbone(cls, backbone: nn.Module, **kwargs) -> ClassifierHead:
        """A head sized for `backbone` (its `out_channels` list or its `out_features` int)."""
        width = getattr(backbone, "out_channels", None) or backbone.out_features
        return cls(width, **kwargs)

    def forward(self, features: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        x = features if isinstance(features, torch.Tensor) else self.pool_maps(features)
        return self.fc(self.dropout(x))

    def pool_maps(self, maps: Sequence[torch.Tensor]) -> torch.Tensor:
        if self.pool == "last_avg":
            return maps[-1].mean(dim=(2, 3))
        if self.pool == "gem":
            return self.gem(maps[-1])
        pooled = [torch.cat([m.mean(dim=(2, 3)), m.amax(dim=(2, 3))], dim=1) for m in maps]
        return torch.cat(pooled, dim=1)


def pooled_width(in_channels: Sequence[int] | int, pool: Pool) -> int:
    if isinstance(in_channels, int):
        return in_channels
    return in_channels[-1] if pool in ("last_avg", "gem") else 2 * sum(in_channels)


class GeM(nn.Module):
    """Generalized mean over H, W: (mean(clamp(x, eps) ** p)) ** (1 / p), p learnable.

    p = 1 is average pooling and p → ∞ approaches max pooling; p is clamped at 1 from below. Values
    below `eps` are clamped (a fractional power of a negative number is undefined), so it suits
    non-negative (post-activation) maps. It runs in float32: bf16 powers of small activations underflow.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.float().clamp(min=1.0)  # below 1 the mean stops being a pooling of the peaks
        pooled = x.float().clamp(min=self.eps).pow(p).mean(dim=(2, 3)).pow(1.0 / p)
        return pooled.to(x.dtype)


class Classifier(nn.Module):
    """[input norm →] backbone → head; forward(x) returns logits (B, num_classes).

    `input_norm`: a BatchNorm over the input channels, so that the level of a dB image or the gain of a raw
    EEG image is learned from the training data instead of fixed by the view's constants: a recording set
    3x louder than the one the constants were chosen on is then the same input (issue 13, item 7).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, input_norm: nn.Module | None = None):
        super().__init__()
        # Identity holds no tensors: the state dicts of models without a norm stay as they were
        self.input_norm = nn.Identity() if input_norm is None else input_norm
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(self.input_norm(x)))
