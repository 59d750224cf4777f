"""The 1D EfficientNet: shapes, size of the tiny variant, gradients, and that it can learn."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.errors import UserFacingError
from models.effnet1d import DropPath, MBConv1d, create_effnet1d
from models.heads import Classifier, ClassifierHead


@pytest.mark.parametrize("name", ["effnet1d", "effnet1d_tiny"])
def test_features_shape(name):
    net = create_effnet1d(name, in_chans=17).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 17, 640))
    assert out.shape == (2, net.out_features)
    assert torch.isfinite(out).all()


def test_tiny_is_small():
    net = create_effnet1d("effnet1d_tiny", in_chans=17)
    n = sum(p.numel() for p in net.parameters())
    assert 5_000 <= n <= 100_000, n
    assert sum(p.numel() for p in create_effnet1d("effnet1d", in_chans=17).parameters()) > 1_000_000


def test_shortest_input_and_odd_lengths():
    net = create_effnet1d("effnet1d_tiny", in_chans=16).eval()
    for t in (net.min_length, 999, 2000):
        assert net(torch.randn(1, 16, t)).shape == (1, net.out_features)


def test_gradient_reaches_the_stem():
    torch.manual_seed(0)
    net = create_effnet1d("effnet1d_tiny", in_chans=16)
    net(torch.randn(3, 16, 400)).pow(2).mean().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads)
    assert net.stem[0].weight.grad.abs().sum() > 0


def test_overfits_a_tiny_batch():
    torch.manual_seed(0)
    backbone = create_effnet1d("effnet1d_tiny", in_chans=16)
    model = Classifier(backbone, ClassifierHead.for_backbone(backbone))
    x, y = torch.randn(6, 16, 200), torch.arange(6)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses


def test_drop_path_drops_whole_samples_in_training_only():
    torch.manual_seed(0)
    drop = DropPath(0.5)
    x = torch.ones(1000, 4, 8)
    out = drop.train()(x)
    per_sample = out.flatten(1)
    assert set(per_sample.amin(1).tolist()) <= {0.0, 2.0} and (per_sample.amin(1) == per_sample.amax(1)).all()
    assert 0.4 < (per_sample[:, 0] == 0).float().mean() < 0.6
    assert torch.equal(drop.eval()(x), x)


def test_mbconv_residual_only_where_shapes_allow():
    assert MBConv1d(16, 16, 5, 1, 3, 0.25, 0.1).residual
    assert not MBConv1d(16, 24, 5, 1, 3, 0.25, 0.1).residual
    assert MBConv1d(16, 16, 5, 2, 3, 0.25, 0.1)(torch.randn(2, 16, 100)).shape == (2, 16, 50)


def test_unknown_variant():
    with pytest.raises(UserFacingError, match="effnet1d_tiny"):
        create_effnet1d("effnet1d_huge", in_chans=16)
