"""Precise BatchNorm statistics: recomputed as plain averages over clean batches, dropout left out, the
momentum kept; in fit_fold, after each epoch, from the epoch's rows without augmentation."""

from __future__ import annotations

import torch
from torch import nn

from oof.precise_bn import recompute_batchnorm
from oof.train_loop import FoldData, TrainConfig, fit_fold


def _forward(model, x):
    return model(x)


def test_the_statistics_are_the_average_over_the_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Dropout(0.9), nn.BatchNorm2d(3, momentum=0.1))
    model[1].running_mean.fill_(7.0)  # stale: what augmented inputs left
    xs = [torch.randn(8, 3, 4, 5) * 2 + torch.tensor([1.0, -2.0, 0.5])[None, :, None, None] for _ in range(4)]
    used = recompute_batchnorm(model, [{"x": x} for x in xs], _forward, torch.device("cpu"), max_batches=3)
    assert used == 3
    seen = torch.cat(xs[:3])
    # no dropout in front: the plain per-channel mean of the inputs (dropout at 0.9 would scale or zero them)
    torch.testing.assert_close(model[1].running_mean, seen.mean(dim=(0, 2, 3)), atol=1e-5, rtol=1e-5)
    per_batch_var = torch.stack([x.var(dim=(0, 2, 3), unbiased=True) for x in xs[:3]]).mean(0)
    torch.testing.assert_close(model[1].running_var, per_batch_var, atol=1e-4, rtol=1e-4)
    assert model[1].momentum == 0.1 and model.training and model[0].training


def test_fit_fold_recomputes_them_from_clean_rows(tmp_path):
    """Training inputs shifted by +5 (an augmentation): the running mean follows the shift without precise
    BN and the clean inputs with it."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 2, 4, 4, generator=g)
    data = {"x": x, "target": torch.full((64, 6), 1 / 6), "weight": torch.ones(64), "n_votes": torch.full((64,), 12)}
    rows = [{k: v[i:i + 16] for k, v in data.items()} for i in range(0, 64, 16)]

    def shift(batch, gen):
        return {**batch, "x": batch["x"] + 5.0}

    means = {}
    for n in (0, 4):
        torch.manual_seed(0)
        model = nn.Sequential(nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(32, 6))
        cfg = TrainConfig(epochs=2, lr=1e-3, batch_size=16, num_workers=0, precise_bn_batches=n)
        fit_fold(model, FoldData(lambda e, s: rows, rows, shift), cfg, tmp_path / f"run{n}", "cpu")
        means[n] = model[0].running_mean
    clean = x.mean(dim=(0, 2, 3))
    assert (means[0] - clean).abs().min() > 1.0  # momentum 0.1 steps towards the shifted +5
    torch.testing.assert_close(means[4], clean, atol=1e-5, rtol=1e-5)
