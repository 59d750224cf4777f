"""GeM pooling in the classification head: p=1 is the average, a large p approaches the max."""

from __future__ import annotations

import torch

from models.heads import POOLS, ClassifierHead, GeM


def test_p1_is_average_and_large_p_approaches_max():
    torch.manual_seed(0)
    x = torch.rand(2, 5, 4, 6) + 0.1
    torch.testing.assert_close(GeM(p=1.0)(x), x.mean(dim=(2, 3)))
    peak = x.amax(dim=(2, 3))
    big = GeM(p=100.0)(x)
    # max * N^(-1/p) <= GeM <= max over N = 24 values, and the gap shrinks as p grows
    assert (big <= peak + 1e-5).all() and (big >= peak * 24 ** (-1 / 100) - 1e-5).all()
    assert ((peak - big) < (peak - GeM(p=10.0)(x))).all()
    p3 = GeM()(x)
    assert (p3 > x.mean(dim=(2, 3))).all() and (p3 < big).all()


def test_p_starts_at_3_learns_and_negatives_are_clamped():
    gem = GeM()
    assert gem.p.item() == 3.0
    x = torch.randn(3, 4, 5, 5)
    out = gem(x)
    assert torch.isfinite(out).all() and (out > 0).all()
    out.sum().backward()
    assert gem.p.grad is not None and gem.p.grad.abs() > 0


def test_head_gem_pools_the_last_stage():
    assert "gem" in POOLS and "last_avg" in POOLS and "all_avgmax" in POOLS
    maps = [torch.rand(2, 8, 16, 16), torch.rand(2, 32, 4, 4)]
    head = ClassifierHead([8, 32], pool="gem")
    assert head.in_features == 32 and head(maps).shape == (2, 6)
    torch.testing.assert_close(head.pool_maps(maps), head.gem(maps[-1]))
    assert "gem.p" in head.state_dict()
    assert "gem.p" not in ClassifierHead([8, 32], pool="last_avg").state_dict()
    x = torch.rand(2, 32, 4, 4, dtype=torch.bfloat16)
    assert head.gem(x).dtype == torch.bfloat16
