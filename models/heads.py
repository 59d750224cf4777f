"""Classification heads: pooled backbone features → 6 logits (the six expert-vote classes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

NUM_CLASSES = 6
Pool = Literal["last_avg", "all_avgmax"]
POOLS: tuple[str, ...] = ("last_avg", "all_avgmax")


class ClassifierHead(nn.Module):
    """Pool, dropout, linear.

    Takes either a list of stage maps (B, C_i, H_i, W_i) from a 2D backbone, pooled by `pool`:
    `last_avg` (global average of the last stage) or `all_avgmax` (global average and max of every
    stage, concatenated: the coarse stages carry the fine time–frequency detail that harmful-activity
    patterns live in), or a feature vector (B, F) from a 1D backbone, used as it is.
    """

    def __init__(
        self,
        in_channels: Sequence[int] | int,
        pool: Pool = "last_avg",
        dropout: float = 0.0,
        num_classes: int = NUM_CLASSES,
    ):
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.pool = pool
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
        pooled = [torch.cat([m.mean(dim=(2, 3)), m.amax(dim=(2, 3))], dim=1) for m in maps]
        return torch.cat(pooled, dim=1)


def pooled_width(in_channels: Sequence[int] | int, pool: Pool) -> int:
    if isinstance(in_channels, int):
        return in_channels
    return in_channels[-1] if pool == "last_avg" else 2 * sum(in_channels)


class Classifier(nn.Module):
    """backbone → head; forward(x) returns logits (B, num_classes)."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
