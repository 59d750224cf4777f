"""Per-pair spectral 1D net for bipolar waveforms: forward(x (B, C, T)) → features (B, out_features).

The first `n_pairs` input channels are the bipolar pairs of the 50 s window (the sample rate follows
from T); further channels (the wave view's NaN mask) are side information, averaged per frame and
given to every pair.

1. A fixed front end: the log power spectrogram of each pair (Hann frames of `frame_s`, hop `hop_s`,
   the bins in `fmin_hz`-`fmax_hz`). It is what band-power features start from, so the net spends its
   few hundred training recordings on the patterns, not on learning a filter bank.
2. BatchNorm over the frequency bins: it learns the dB reference of whatever amplitude scale the data
   has, so 3x louder EEG (a constant in log power) changes nothing after training.
3. A 1D CNN over frames with the bins as channels, its weights shared by the 16 pairs (each pair is
   one more sample), pooled per pair over the window and over its centre (`centre_s`: the 10 s the
   experts voted on, pooled on its own so the 40 s around it, where a pattern may have faded, do not
   outvote it).
4. Each pair's pooled features, projected to `pair_width`, concatenated in pair order, and mixed by
   a hidden layer: which pairs and which side are involved (lateralised against generalised) is a
   question about all pairs at once.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from core.errors import UserFacingError
from core.schema import EEG_RATE_HZ, EEG_WINDOW_SAMPLES
from models.backbones import own_variant, refuse_pretrained, register_backbone
from models.config import ModelConfig

WINDOW_S = EEG_WINDOW_SAMPLES / EEG_RATE_HZ
EPS_POWER = 1e-6  # (view units)^2: keeps log finite on flat (NaN-filled) pairs


@dataclass(frozen=True)
class Specnet1dVariant:
    widths: tuple[int, ...]      # channels of each conv stage
    pools: tuple[int, ...]       # max-pool over frames after each stage
    kernel: int = 5
    pair_width: int = 32         # each pair's pooled features are projected to this
    mix_width: int = 256         # the hidden layer over all pairs
    n_pairs: int = 16
    frame_s: float = 2.0         # 0.5 Hz bins
    hop_s: float = 0.5
    fmin_hz: float = 0.5
    fmax_hz: float = 20.0
    centre_s: float = 10.0
    dropout: float = 0.1         # inside the pair mixer


SPECNET1D_VARIANTS: dict[str, Specnet1dVariant] = {
    "specnet1d": Specnet1dVariant(widths=(64, 96, 128, 160), pools=(1, 2, 2, 1), pair_width=64, mix_width=512),
    "specnet1d_tiny": Specnet1dVariant(widths=(32, 48, 64), pools=(2, 2, 1), hop_s=1.0),
}


def window_and_centre_pool(maps: torch.Tensor, centre_frac: float) -> torch.Tensor:
    """(N, W, S) -> (N, 4W): mean and max over all S steps, then over the centre `centre_frac` of them."""
    steps = maps.shape[-1]
    half = max(1, round(steps * centre_frac / 2))
    centre = maps[:, :, max(0, steps // 2 - half): steps // 2 + half]
    return torch.cat([maps.mean(2), maps.amax(2), centre.mean(2), centre.amax(2)], dim=1)


class ResidualStage(nn.Module):
    """conv-BN-SiLU, then a residual conv-BN-SiLU pair, then max-pool over frames."""

    def __init__(self, in_width: int, width: int, kernel: int, pool: int):
        super().__init__()
        pad = kernel // 2
        self.entry = nn.Sequential(nn.Conv1d(in_width, width, kernel, padding=pad, bias=False),
                                   nn.BatchNorm1d(width), nn.SiLU())
        self.body = nn.Sequential(nn.Conv1d(width, width, kernel, padding=2 * pad, dilation=2, bias=False),
                                  nn.BatchNorm1d(width), nn.SiLU(),
                                  nn.Conv1d(width, width, kernel, padding=pad, bias=False), nn.BatchNorm1d(width))
        self.act = nn.SiLU()
        self.pool = nn.MaxPool1d(pool) if pool > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.entry(x)
        return self.pool(self.act(x + self.body(x)))


class Specnet1d(nn.Module):
    def __init__(self, variant: Specnet1dVariant, in_chans: int):
        super().__init__()
        if in_chans < variant.n_pairs:
            raise UserFacingError(f"specnet1d needs the {variant.n_pairs} bipolar pairs as its first channels; "
                                  f"its view gives {in_chans} (use a wave view)")
        if len(variant.widths) != len(variant.pools):
            raise UserFacingError("specnet1d variant: widths and pools need one entry per stage")
        self.v = variant
        self.n_extra = in_chans - variant.n_pairs
        self.n_bins = self._bins(EEG_RATE_HZ).numel()  # the same count at any rate: bins are 1 / frame_s apart
        self.norm = nn.BatchNorm1d(self.n_bins)
        widths = (self.n_bins + self.n_extra, *variant.widths)
        self.stages = nn.Sequential(*(ResidualStage(a, b, variant.kernel, p)
                                      for a, b, p in zip(widths[:-1], widths[1:], variant.pools, strict=True)))
        self.pair_proj = nn.Sequential(nn.Linear(4 * widths[-1], variant.pair_width), nn.SiLU())
        self.mix = nn.Sequential(nn.Dropout(variant.dropout),
                                 nn.Linear(variant.n_pairs * variant.pair_width, variant.mix_width), nn.SiLU())
        self.in_chans = in_chans
        self.out_features = variant.mix_width
        self.min_length = int(math.ceil(WINDOW_S))  # 1 Hz: below that a frame has no 0.5 Hz bin

    def _bins(self, rate_hz: float) -> torch.Tensor:
        n_fft = int(round(self.v.frame_s * rate_hz))
        freqs = torch.fft.rfftfreq(n_fft, d=1.0 / rate_hz)
        return torch.nonzero((freqs >= self.v.fmin_hz - 1e-9) & (freqs <= self.v.fmax_hz + 1e-9)).flatten()

    def log_spectrogram(self, pairs: torch.Tensor) -> torch.Tensor:
        """(B, P, T) -> (B, P, bins, frames) log power, in float32 (also under autocast)."""
        b, p, t = pairs.shape
        rate = t / WINDOW_S
        n_fft, hop = int(round(self.v.frame_s * rate)), max(1, int(round(self.v.hop_s * rate)))
        bins = self._bins(rate)
        if bins.numel() != self.n_bins:
            raise UserFacingError(f"specnet1d: a {rate:g} Hz view has no bins up to {self.v.fmax_hz:g} Hz; "
                                  f"use a view of at least {2 * self.v.fmax_hz:g} Hz (wave: 50 Hz)")
        with torch.autocast(pairs.device.type, enabled=False):
            x = pairs.float().reshape(b * p, t)
            window = torch.hann_window(n_fft, device=x.device)
            spec = torch.stft(x - x.mean(dim=1, keepdim=True), n_fft, hop, window=window, center=True,
                              return_complex=True)
            power = spec.index_select(1, bins.to(x.device)).abs().square()
            return torch.log(power + EPS_POWER).reshape(b, p, self.n_bins, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, p = x.shape[0], self.v.n_pairs
        spec = self.log_spectrogram(x[:, :p])  # (B, P, F, S)
        frames = spec.shape[-1]
        feats = self.norm(spec.reshape(b * p, self.n_bins, frames))
        if self.n_extra:
            extra = nn.functional.interpolate(x[:, p:].float(), size=frames, mode="linear", align_corners=False)
            feats = torch.cat([feats, extra.repeat_interleave(p, dim=0).to(feats.dtype)], dim=1)
        pooled = window_and_centre_pool(self.stages(feats), self.v.centre_s / WINDOW_S)
        per_pair = self.pair_proj(pooled).reshape(b, p * self.v.pair_width)
        return self.mix(per_pair)


def create_specnet1d(name: str, in_chans: int, **overrides) -> Specnet1d:
    """Build the per-pair spectral net `name`; keyword overrides replace fields of its Specnet1dVariant."""
    variant = own_variant(name, SPECNET1D_VARIANTS, "per-pair spectral nets")
    return Specnet1d(dataclasses.replace(variant, **overrides), in_chans)


@register_backbone("specnet1d", kind="1d", names=SPECNET1D_VARIANTS)
def build_specnet1d(name: str, in_chans: int, cfg: ModelConfig) -> Specnet1d:
    refuse_pretrained(name, cfg, "per-pair spectral nets")
    return create_specnet1d(name, in_chans)
