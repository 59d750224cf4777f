"""Named views (typed configs) and `compute_view`: windows in, model-ready arrays (n, C, ...) out.

A view is a frozen dataclass: its fields are everything that changes its output (the cache key
hashes them), `channel_names` says what each channel is, and `swap_index` is the channel
permutation that mirrors left and right (augmentation and TTA).

| name            | source      | output per row     | channels                                   |
|-----------------|-------------|--------------------|--------------------------------------------|
| eeg_spec        | eeg         | (8, 64, 124)       | LL RL LP RP @ 50 s, then @ centre 10 s      |
| eeg_spec_stft   | eeg         | (8, 64, 124)       | same, linear-frequency STFT rows            |
| eeg_spec_pairmax| eeg         | (8, 64, 124)       | same, dB re each pair's maximum (notebooks) |
| eeg_spec_tiny   | eeg         | (8, 32, 50)        | same, small                                 |
| kaggle_spec     | spectrogram | (4, 100, 300)      | LL RL LP RP, frequency x time (table cache) |
| kaggle_spec_tiny| spectrogram | (4, 25, 75)        | same, 4x4 average-pooled                    |
| wave            | eeg         | (17, 2500)         | 16 bipolar pairs at 50 Hz + NaN share       |
| wave_tiny       | eeg         | (17, 1000)         | same at 20 Hz, 0.5-8 Hz                     |
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from features.eeg_spectrogram import SpectrogramConfig, eeg_spectrogram, frame_starts
from features.errors import UserFacingError
from features.filters import SignalConfig, bipolar_signals
from features.images import waveform
from features.kaggle_spectrogram import FREQS_PER_CHAIN, KaggleSpecConfig, chain_layout, kaggle_spectrogram_view
from features.montage import bipolar_names, swap_index
from features.schema import CHAINS, EEG_RATE_HZ, EEG_WINDOW_SAMPLES, SPEC_WINDOW_ROWS


class _View:
    source: ClassVar[str]  # "eeg" or "spectrogram": which windows compute_view needs
    name: str

    def channel_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def swap_index(self) -> tuple[int, ...]:
        return swap_index(self.channel_names())

    def output_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def to_dict(self) -> dict:
        return {"type": type(self).__name__, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class EegSpecView(_View):
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


@dataclass(frozen=True)
class KaggleSpecView(_View):
    """The competition's 10-minute spectrogram, one image per chain."""

    source: ClassVar[str] = "spectrogram"
    name: str
    spec: KaggleSpecConfig = KaggleSpecConfig()
    nan_mask: bool = False  # extra channel: share of chains that were NaN at each (frequency, time)
    # Cache the spectrogram files' table rows and compute windows at batch time (features.spec_tables)
    # instead of one image per label row: 5x+ less disk for full-size images, whose windows overlap.
    cache_tables: bool = False

    def channel_names(self) -> tuple[str, ...]:
        return CHAINS + (("nan",) if self.nan_mask else ())

    def output_shape(self) -> tuple[int, ...]:
        k = self.spec.pool
        return (len(self.channel_names()), FREQS_PER_CHAIN // k, SPEC_WINDOW_ROWS // k)


@dataclass(frozen=True)
class WaveView(_View):
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


View = EegSpecView | KaggleSpecView | WaveView

_TINY_SPEC = dict(n_fft=256, win_length=64, width=50, height=32)  # hops 200 and 40: rows 1 s apart share frames
VIEWS: dict[str, View] = {v.name: v for v in (
    EegSpecView("eeg_spec"),
    EegSpecView("eeg_spec_stft", (SpectrogramConfig(seconds=50.0, kind="stft"),
                                  SpectrogramConfig(seconds=10.0, kind="stft"))),
    EegSpecView("eeg_spec_tiny", (SpectrogramConfig(seconds=50.0, **_TINY_SPEC),
                                  SpectrogramConfig(seconds=10.0, **_TINY_SPEC))),
    EegSpecView("eeg_spec_pairmax", (SpectrogramConfig(seconds=50.0, reference="pair"),
                                     SpectrogramConfig(seconds=10.0, reference="pair"))),
    KaggleSpecView("kaggle_spec", cache_tables=True),
    KaggleSpecView("kaggle_spec_tiny", KaggleSpecConfig(pool=4)),
    WaveView("wave"),
    WaveView("wave_tiny", SignalConfig(bandpass_hz=(0.5, 8.0)), rate_hz=20),
)}


def get_view(view: str | View) -> View:
    if not isinstance(view, str):
        return view
    if view not in VIEWS:
        raise UserFacingError(f"no view named {view!r}; choose one of {', '.join(VIEWS)}")
    return VIEWS[view]


def compute_view(view: str | View, eeg_windows: np.ndarray | None = None, spec_windows: np.ndarray | None = None,
                 offsets_s: Sequence[float] | None = None) -> np.ndarray:
    """Windows -> (n, *view.output_shape()) float32.

    eeg_windows (n, 10000, 20) or spec_windows (n, 300, 400), NaN kept, as the data layer gives
    them. `offsets_s`: the EEG windows come from one recording at these offsets; the work their
    overlaps share (spectrogram frames, decimation) is done once, with the same result.
    """
    view = get_view(view)
    windows = eeg_windows if view.source == "eeg" else spec_windows
    if windows is None:
        raise ValueError(f"view {view.name} needs {view.source} windows")
    if isinstance(view, KaggleSpecView):
        return _kaggle_spec(view, windows)
    starts = None if offsets_s is None else np.round(np.asarray(offsets_s) * EEG_RATE_HZ).astype(np.int64)
    if isinstance(view, WaveView):
        return waveform(windows, view.signal, view.rate_hz, view.scale_uv, view.nan_mask, starts)
    return _eeg_spec(view, windows, starts)


def _eeg_spec(view: EegSpecView, windows: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
    x, missing = bipolar_signals(windows, view.signal)
    with torch.inference_mode():
        images = eeg_spectrogram(torch.from_numpy(x).transpose(1, 2), view.resolutions, starts).numpy()
    if not view.nan_mask:
        return images
    masks = [_frame_missing(missing, r)[:, None, None, :].repeat(r.height, axis=2) for r in view.resolutions]
    return np.concatenate([images, *masks], axis=1)


def _frame_missing(missing: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    """(n, T, P) mask -> (n, width) share of missing samples in each frame."""
    share = np.concatenate([np.zeros((len(missing), 1)), missing.mean(axis=-1).cumsum(axis=-1)], axis=1)
    starts = frame_starts(missing.shape[1], cfg)
    return ((share[:, starts + cfg.win_length] - share[:, starts]) / cfg.win_length).astype(np.float32)


def _kaggle_spec(view: KaggleSpecView, windows: np.ndarray) -> np.ndarray:
    images = kaggle_spectrogram_view(windows, view.spec)
    if not view.nan_mask:
        return images
    share = np.isnan(chain_layout(np.asarray(windows))).mean(axis=1, keepdims=True, dtype=np.float32)
    k = view.spec.pool
    f, t = images.shape[-2:]
    share = share[..., : f * k, : t * k].reshape(len(share), 1, f, k, t, k).mean(axis=(3, 5))
    return np.concatenate([images, share], axis=1)
