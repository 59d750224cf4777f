"""Image assembly for 2D backbones and the waveform view for 1D models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.schema import EEG_COLUMNS
from features.filters import SignalConfig
from features.images import assemble_image, tile_channels, waveform


def constant_channels(channels: int, h: int = 8, w: int = 10) -> torch.Tensor:
    return torch.arange(channels, dtype=torch.float32).view(1, channels, 1, 1).expand(2, channels, h, w)


def test_tile_puts_chains_on_rows_and_groups_on_columns():
    image = tile_channels(constant_channels(8), 64)
    assert image.shape == (2, 1, 64, 64)
    tiles = image[0, 0].reshape(4, 16, 2, 32)[:, 8, :, 16]  # the centre pixel of each tile
    assert tiles.tolist() == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_tile_pads_a_partial_column_with_zeros_and_resizes_odd_sizes():
    image = tile_channels(constant_channels(5), (60, 50))
    assert image.shape == (2, 1, 60, 50)
    assert image[0, 0, -2, -2] == 0 and image[0, 0, 2, -2] == 4


def test_assemble_stack_and_refuses_unknown_layouts():
    x = constant_channels(12)
    assert assemble_image(x, "stack", 32).shape == (2, 12, 32, 32)
    assert assemble_image(x, "tile", 96).shape == (2, 1, 96, 96)
    with pytest.raises(ValueError, match="layout"):
        assemble_image(x, "mosaic", 32)


def test_waveform_is_bipolar_decimated_scaled_with_a_mask_channel():
    rng = np.random.default_rng(0)
    eeg = rng.normal(0, 32, (2, 10_000, len(EEG_COLUMNS))).astype(np.float32)
    eeg[1, 4000:6000, EEG_COLUMNS.index("T3")] = np.nan
    out = waveform(eeg, SignalConfig(), rate_hz=50, scale_uv=32.0)
    assert out.shape == (2, 17, 2500) and out.dtype == np.float32 and np.isfinite(out).all()
    assert 0.3 < out[0, :16].std() < 3  # order 1 after scaling
    mask = out[:, 16]
    assert mask[0].max() == 0 and abs(mask[1, 1100:1400].mean() - 2 / 16) < 0.01
    assert waveform(eeg, SignalConfig(), rate_hz=50, scale_uv=32.0, nan_mask=False).shape == (2, 16, 2500)


def test_rows_stack_each_channels_rows_top_to_bottom_and_resize_to_height_width():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).view(1, 2, 3, 4).expand(2, 2, 3, 4)  # value = (c*3 + r)*4 + col
    image = assemble_image(x, "rows", (6, 4))
    assert image.shape == (2, 1, 6, 4)
    assert image[0, 0, :, 0].tolist() == [0, 4, 8, 12, 16, 20]  # channel 0 rows 0..2, then channel 1 rows 0..2
    assert assemble_image(x, "rows", (12, 8)).shape == (2, 1, 12, 8)
    assert assemble_image(x, "rows", 16).shape == (2, 1, 16, 16)
