"""Bipolar waveforms for 1D models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from core.schema import EEG_RATE_HZ, EEG_WINDOW_SAMPLES
from features.filters import SignalConfig
from features.images import waveform
from features.montage import bipolar_names
from features.views.base import ViewBase, register_view


@dataclass(frozen=True)
class WaveView(ViewBase):
    """Bipolar waveforms for 1D models: clipped, decimated, band-passed, scaled."""

    source: ClassVar[str] = "eeg"
    name: str
    signal: SignalConfig = SignalConfig()
    rate_hz: int = 50
    scale_uv: float = 32.0
    nan_mask: bool = True

    def channel_names(self) -> tuple[str, ...]:
        return bipolar_names(self.signal.central_chain) + (("nan",) if self.nan_mask else ())

    def output_shape(self) -> tuple[int, ...]:
        return (len(self.channel_names()), EEG_WINDOW_SAMPLES * self.rate_hz // EEG_RATE_HZ)

    def compute(self, windows: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
        return waveform(windows, self.signal, self.rate_hz, self.scale_uv, self.nan_mask, starts)


register_view(
    WaveView("wave"),
    WaveView("wave_tiny", SignalConfig(bandpass_hz=(0.5, 8.0)), rate_hz=20),
)
