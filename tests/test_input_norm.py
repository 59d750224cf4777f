"""input_norm=batch: a 2D model's input level and gain are learned from the data, so a recording set 3x
louder (a dB image shifted by 20*log10(3), a raw image scaled by 3) trains on the same normalised input."""

from __future__ import annotations

import pytest
import torch

from core.errors import UserFacingError
from models.build import build_model
from models.config import ModelConfig


def _mit(input_norm: str) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(backbone="mit_b0", image_size=32, drop_path_rate=0.0, dropout=0.0, input_norm=input_norm)
    return build_model(cfg, in_chans=2).train()


def test_a_shifted_or_scaled_batch_gives_the_same_logits():
    x = torch.randn(6, 2, 32, 32)
    model = _mit("batch")
    ref = model(x)
    torch.testing.assert_close(model(x + 0.24), ref, atol=1e-4, rtol=1e-4)  # x3 amplitude, dB / 40
    torch.testing.assert_close(model(3.0 * x), ref, atol=1e-4, rtol=1e-4)  # x3 amplitude, raw image
    plain = _mit("none")
    assert (plain(x + 0.24) - plain(x)).abs().max() > 1e-2  # without it the model sees another input


def test_the_norm_is_in_the_state_dict_only_when_asked_for():
    assert any(k.startswith("input_norm.") for k in _mit("batch").state_dict())
    assert not any(k.startswith("input_norm.") for k in _mit("none").state_dict())


def test_bad_settings_say_what_to_do():
    with pytest.raises(ValueError, match="input_norm must be one of"):
        ModelConfig(input_norm="layer")
    with pytest.raises(UserFacingError, match="for 2D backbones"):
        build_model(ModelConfig(backbone="wave1d_tiny", views=("wave",), input_norm="batch"), in_chans=17)
