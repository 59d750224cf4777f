"""1D network for raw bipolar EEG waveforms: forward(x (B, C, T)) → features (B, out_features).

Every channel goes through the same (shared-weight) WaveNet-style extractor: gated, dilated
residual convolutions with pooling between stages. The per-channel feature sequences are then
laid side by side, so the bidirectional GRU sees all channels at each time step (fixed positions
keep the channel identity that the shared extractor ignores), and its outputs are pooled over time.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from models.backbones import own_variant, refuse_pretrained, register_backbone
from models.config import ModelConfig


@dataclass(frozen=True)
class Wave1dVariant:
    widths: tuple[int, ...]  # extractor channels per stage
    pools: tuple[int, ...]  # time downsampling after each stage (max-pool)
    dilations: tuple[int, ...] = (1, 2, 4, 8)  # gated layers of every stage
    kernel: int = 3
    gru_hidden: int = 128
    gru_layers: int = 2
    dropout: float = 0.1


WAVE1D_VARIANTS: dict[str, Wave1dVariant] = {
    # 200 Hz input: 50 s (T=10,000) → 125 GRU steps; 10 s (T=2,000) → 25.
    "wave1d": Wave1dVariant(widths=(32, 64, 64), pools=(5, 4, 4)),
    "wave1d_tiny": Wave1dVariant(widths=(8, 16), pools=(4, 4), dilations=(1, 2), gru_hidden=16, gru_layers=1,
                                 dropout=0.0),
}


class GatedResidual(nn.Module):
    """WaveNet unit: tanh(filter) * sigmoid(gate) on a dilated conv, 1x1 conv back, residual add."""

    def __init__(self, width: int, kernel: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(width, 2 * width, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.out = nn.Conv1d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        filt, gate = self.conv(x).chunk(2, dim=1)
        return x + self.out(torch.tanh(filt) * torch.sigmoid(gate))


class WaveStage(nn.Module):
    def __init__(self, in_width: int, width: int, variant: Wave1dVariant, pool: int):
        super().__init__()
        # BatchNorm after the entry conv absorbs the µV scale of raw inputs and keeps the gates
        # out of saturation.
        self.entry = nn.Sequential(
            nn.Conv1d(in_width, width, variant.kernel, padding=variant.kernel // 2, bias=False),
            nn.BatchNorm1d(width),
        )
        self.layers = nn.Sequential(*(GatedResidual(width, variant.kernel, d) for d in variant.dilations))
        self.pool = nn.MaxPool1d(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.layers(self.entry(x)))


class Wave1dNet(nn.Module):
    def __init__(self, variant: Wave1dVariant, in_chans: int):
        super().__init__()
        widths = (1, *variant.widths)
        self.extractor = nn.Sequential(
            *(WaveStage(a, b, variant, p) for a, b, p in zip(widths[:-1], widths[1:], variant.pools, strict=True))
        )
        self.dropout = nn.Dropout(variant.dropout)
        self.gru = nn.GRU(
            in_chans * variant.widths[-1],
            variant.gru_hidden,
            num_layers=variant.gru_layers,
            batch_first=True,
            bidirectional=True,
            dropout=variant.dropout if variant.gru_layers > 1 else 0.0,
        )
        self.in_chans = in_chans
        self.min_length = math.prod(variant.pools)  # shorter inputs pool away to nothing
        self.out_features = 4 * variant.gru_hidden  # mean and max over time of both directions

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        feats = self.extractor(x.reshape(b * c, 1, t))  # shared weights: channels become batch
        steps = feats.shape[-1]
        seq = feats.reshape(b, c * feats.shape[1], steps).transpose(1, 2)  # (B, T', C*F)
        # The GRU runs in float32 even under autocast: its state accumulates over ~100+ steps, which
        # bf16 rounds badly, and it is a small part of the compute.
        with torch.autocast(device_type=x.device.type, enabled=False):
            out, _ = self.gru(self.dropout(seq).float())
        return torch.cat([out.mean(dim=1), out.amax(dim=1)], dim=1)


def create_wave1d(name: str, in_chans: int, **overrides) -> Wave1dNet:
    """Build the 1D waveform net `name`; keyword overrides replace fields of its Wave1dVariant."""
    variant = own_variant(name, WAVE1D_VARIANTS, "1D waveform nets")
    return Wave1dNet(dataclasses.replace(variant, **overrides), in_chans)


@register_backbone("wave1d", kind="1d", names=WAVE1D_VARIANTS)
def build_wave1d(name: str, in_chans: int, cfg: ModelConfig) -> Wave1dNet:
    refuse_pretrained(name, cfg, "1D waveform nets")
    return create_wave1d(name, in_chans)
