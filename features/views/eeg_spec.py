"""EEG spectrogram images: the four chains (LL, RL, LP, RP) at one or more time resolutions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from core.schema import CHAINS
from features.eeg_spectrogram import SpectrogramConfig, eeg_spectrogram, frame_starts
from features.filters import SignalConfig, bipolar_signals
from features.views.base import ViewBase, register_view


@dataclass(frozen=True)
class EegSpecView(ViewBase):
    """Chain spectrogram images of the EEG window at one or more time resolutions."""

    source: ClassVar[str] = "eeg"
    name: str
    resolutions: tuple[SpectrogramConfig, ...] = (SpectrogramConfig(seconds=50.0), SpectrogramConfig(seconds=10.0))
    # No band-pass: each frame is detrended instead (the filter would cost more than the spectrogram).
    signal: SignalConfig = SignalConfig(bandpass_hz=None)
    # Off by default: a filled gap already shows as the -top_db floor in every pair it touches.
    nan_mask: bool = False

    def channel_names(self) -> tuple[str, ...]:
        names = tuple(f"{chain}@{r.label}" for r in self.resolutions for chain in CHAINS)
        return names + (tuple(f"nan@{r.label}" for r in self.resolutions) if self.nan_mask else ())

    def output_shape(self) -> tuple[int, ...]:
        first = self.resolutions[0]
        if any((r.height, r.width) != (first.height, first.width) for r in self.resolutions):
            raise ValueError(f"view {self.name}: every resolution needs the same height and width")
        return (len(self.channel_names()), first.height, first.width)

    def compute(self, windows: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
        x, missing = bipolar_signals(windows, self.signal)
        with torch.inference_mode():
            images = eeg_spectrogram(torch.from_numpy(x).transpose(1, 2), self.resolutions, starts).numpy()
        if not self.nan_mask:
            return images
        masks = [_frame_missing(missing, r)[:, None, None, :].repeat(r.height, axis=2) for r in self.resolutions]
        return np.concatenate([images, *masks], axis=1)


def _frame_missing(missing: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    """(n, T, P) mask -> (n, width) share of missing samples in each frame."""
    share = np.concatenate([np.zeros((len(missing), 1)), missing.mean(axis=-1).cumsum(axis=-1)], axis=1)
    starts = frame_starts(missing.shape[1], cfg)
    return ((share[:, starts + cfg.win_length] - share[:, starts]) / cfg.win_length).astype(np.float32)


_TINY_SPEC = dict(n_fft=256, win_length=64, width=50, height=32)  # hops 200 and 40: rows 1 s apart share frames
register_view(
    EegSpecView("eeg_spec"),
    EegSpecView("eeg_spec_stft", (SpectrogramConfig(seconds=50.0, kind="stft"),
                                  SpectrogramConfig(seconds=10.0, kind="stft"))),
    EegSpecView("eeg_spec_tiny", (SpectrogramConfig(seconds=50.0, **_TINY_SPEC),
                                  SpectrogramConfig(seconds=10.0, **_TINY_SPEC))),
    EegSpecView("eeg_spec_pairmax", (SpectrogramConfig(seconds=50.0, reference="pair"),
                                     SpectrogramConfig(seconds=10.0, reference="pair"))),
)
