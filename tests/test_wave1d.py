"""1D waveform backbone: shapes, options, and that it can learn a toy batch."""

from __future__ import annotations

import pytest
import torch

from core.errors import UserFacingError
from models.heads import Classifier, ClassifierHead
from models.wave1d import create_wave1d


@pytest.mark.parametrize("in_chans", [16, 18])
@pytest.mark.parametrize("length", [400, 2003])
def test_tiny_shapes(in_chans, length):
    model = create_wave1d("wave1d_tiny", in_chans).eval()
    with torch.no_grad():
        out = model(torch.randn(1, in_chans, length))
    assert out.shape == (1, model.out_features)
    assert torch.isfinite(out).all()


def test_full_size_shapes():
    model = create_wave1d("wave1d", 16).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 16, 2 * model.min_length + 7))
    assert out.shape == (1, 512) and model.out_features == 512


def test_overrides_replace_variant_fields():
    model = create_wave1d("wave1d_tiny", 4, gru_hidden=8, dropout=0.2)
    assert model.out_features == 32
    assert model.dropout.p == 0.2


def test_unknown_name_is_a_user_error():
    with pytest.raises(UserFacingError, match="wave9"):
        create_wave1d("wave9", 16)


def test_autocast_bf16_runs_finite():
    model = create_wave1d("wave1d_tiny", 16).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(2, 16, 320))
    assert torch.isfinite(out.float()).all()


def test_training_reduces_loss_on_toy_batch():
    torch.manual_seed(0)
    backbone = create_wave1d("wave1d_tiny", 16)
    model = Classifier(backbone, ClassifierHead.for_backbone(backbone))
    x = torch.randn(8, 16, 320) * 50  # µV-scale input
    target = torch.softmax(torch.randn(8, 6) * 2, dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = torch.nn.KLDivLoss(reduction="batchmean")
    losses = []
    for _ in range(25):
        loss = loss_fn(torch.log_softmax(model(x), dim=1), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
