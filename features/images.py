"""Model inputs from view arrays: images for 2D backbones (torch, batch time) and the 1D waveform view.

Cached image views keep chains on the channel axis (C = 4 chains x resolutions or views, in
groups of four), so the hemisphere swap stays a channel permutation until here; `assemble_image`
then tiles them (one chain per row, one group per column) or stacks them as channels.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from core.schema import CHAINS, EEG_RATE_HZ
from features.filters import SignalConfig, bipolar_signals, resample


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, *size), bilinear."""
    size = _pair(size)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def tile_channels(x: torch.Tensor, size: int | tuple[int, int], rows: int = len(CHAINS)) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, *size): channel c at row c % rows, column c // rows; missing tiles are 0."""
    batch, channels = x.shape[:2]
    cols = math.ceil(channels / rows)
    height, width = _pair(size)
    tiles = resize(x, (height // rows, width // cols))
    if cols * rows > channels:
        tiles = torch.cat([tiles, tiles.new_zeros(batch, cols * rows - channels, *tiles.shape[-2:])], dim=1)
    th, tw = tiles.shape[-2:]
    grid = tiles.reshape(batch, cols, rows, th, tw).permute(0, 2, 3, 1, 4).reshape(batch, 1, rows * th, cols * tw)
    return resize(grid, (height, width))  # only when size is not a multiple of the grid


def stack_rows(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, 1, *size): channel c's H rows become image rows c * H .. (c + 1) * H - 1 (the raw
    EEG image: each pair's signal folded into H rows, pairs top to bottom), then resized."""
    return resize(x.flatten(1, 2).unsqueeze(1), size)


def assemble_image(x: torch.Tensor, layout: str = "tile", size: int | tuple[int, int] = 512) -> torch.Tensor:
    """Batch of image views (B, C, H, W) -> backbone input: "tile" (B, 1, *size), "stack" (B, C, *size) or
    "rows" (B, 1, *size). `size`: side of a square, or (height, width)."""
    if layout == "tile":
        return tile_channels(x, size)
    if layout == "stack":
        return resize(x, size)
    if layout == "rows":
        return stack_rows(x, size)
    raise ValueError(f"image layout must be 'tile', 'stack' or 'rows', got {layout!r}")


def waveform(eeg: np.ndarray, signal: SignalConfig, rate_hz: float, scale_uv: float,
             nan_mask: bool = True, starts: np.ndarray | None = None) -> np.ndarray:
    """(n, T, 20) referential windows -> (n, P [+1 mask], T * rate_hz / 200) float32 for 1D models.

    Bipolar pairs, clipped, decimated and band-passed, divided by `scale_uv` (so typical EEG is
    order 1); the optional last channel is the share of pairs that were NaN at each sample.
    `starts`: the windows' first samples in one recording (overlaps are then decimated once).
    """
    x, missing = bipolar_signals(eeg, signal, rate_hz, starts)
    channels = [x.transpose(0, 2, 1) / np.float32(scale_uv)]
    if nan_mask and missing.any():
        share = missing.mean(axis=-1, dtype=np.float32)[:, :, None]
        channels.append(np.clip(resample(share, EEG_RATE_HZ, rate_hz, axis=-2), 0.0, 1.0).transpose(0, 2, 1))
    elif nan_mask:
        channels.append(np.zeros((x.shape[0], 1, x.shape[1]), dtype=np.float32))
    return np.concatenate(channels, axis=1)
