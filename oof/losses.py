"""The training loss: Kaggle's KL divergence (oof/metric.py) as a differentiable torch function."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """KL(target || softmax(logits)) per row, then the mean (or the weight-normalised mean) over rows.

    Equals core.metric.kl_divergence on softmax(logits) whenever no probability falls below the
    metric's 1e-15 clip; we do not clip here because clipping would zero the gradient exactly where
    the model is most wrong. Half-precision logits are upcast so the loss is computed in fp32.
    """
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    log_p = F.log_softmax(logits, dim=1)
    target = target.to(log_p.dtype)
    # xlogy(0, 0) = 0: classes nobody voted for contribute nothing, as in the metric
    rows = (torch.special.xlogy(target, target) - target * log_p).sum(dim=1)
    if weight is None:
        return rows.mean()
    weight = weight.to(rows.dtype)
    return (rows * weight).sum() / weight.sum()
