"""Signal conditioning of bipolar EEG: artifact clipping, zero-phase band-pass, polyphase resampling.

All functions are vectorised over leading axes; time is `axis` (-2 for the (..., T, channels)
layout the data layer and the montage use).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import signal as sps

from core.schema import EEG_RATE_HZ
from features.montage import bipolar_montage, bipolar_pairs, fill_missing


@dataclass(frozen=True)
class SignalConfig:
    """How referential EEG windows become bipolar signals (shared by the spectrogram and wave views)."""

    bandpass_hz: tuple[float, float] | None = (0.5, 20.0)  # None: no filter (spectrograms detrend per frame)
    filter_order: int = 4
    clip_uv: float | None = 1024.0  # artifacts reach 10^4 µV; clipping first stops them ringing through the filter
    central_chain: bool = False


@lru_cache(maxsize=32)
def bandpass_sos(low_hz: float, high_hz: float, rate_hz: float = EEG_RATE_HZ, order: int = 4) -> np.ndarray:
    return sps.butter(order, (low_hz, high_hz), btype="bandpass", fs=rate_hz, output="sos")


def bandpass(x: np.ndarray, low_hz: float = 0.5, high_hz: float = 20.0, rate_hz: float = EEG_RATE_HZ,
             order: int = 4, axis: int = -2) -> np.ndarray:
    """Zero-phase Butterworth band-pass (forward-backward, so events keep their timing)."""
    sos = bandpass_sos(float(low_hz), float(high_hz), float(rate_hz), int(order))
    return sps.sosfiltfilt(sos, x, axis=axis).astype(np.float32, copy=False)


def clip_artifacts(x: np.ndarray, limit_uv: float) -> np.ndarray:
    return np.clip(x, -limit_uv, limit_uv)


@lru_cache(maxsize=16)
def antialias_taps(up: int, down: int) -> np.ndarray:
    """Low-pass FIR at the output Nyquist, half as long as scipy's default (5 instead of 10 taps per side
    per rate step), which halves the cost. For 200 -> 50 Hz: -0.7 dB at 20 Hz, < -22 dB at 30 Hz,
    < -55 dB from 35 Hz: enough in front of a 20 Hz band-pass, and a plain x[::4] would fold 50/60 Hz
    mains into 0-10 Hz."""
    rate = max(up, down)
    return sps.firwin(10 * rate + 1, 1.0 / rate, window=("kaiser", 5.0)).astype(np.float32)


def resample(x: np.ndarray, rate_in_hz: float, rate_out_hz: float, axis: int = -2) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly) with `antialias_taps`."""
    ratio = Fraction(rate_out_hz / rate_in_hz).limit_denominator(1000)
    if ratio == 1:
        return x
    up, down = ratio.numerator, ratio.denominator
    return sps.resample_poly(np.asarray(x, dtype=np.float32), up, down, axis=axis,
                             window=antialias_taps(up, down)).astype(np.float32, copy=False)


def decimate_windows(span: np.ndarray, starts: np.ndarray, length: int, down: int) -> np.ndarray:
    """`resample(span[s:s + length], down)` for every s in `starts` (multiples of `down`), decimating
    the span once: overlapping windows of one recording share the work.

    Inside a window that equals a slice of the decimated span; only the `edge` outputs at each end
    see the window's own zero padding, so those are redone from the window's ends alone.
    """
    edge = -(-(len(antialias_taps(1, down)) // 2) // down)  # ceil(FIR half-length / down)
    piece = down * (2 * edge + 2)  # input samples whose decimation gives the `edge` end outputs exactly
    whole = resample(span, down, 1, axis=0)
    out = np.stack([whole[s // down:(s + length) // down] for s in starts])
    heads = np.stack([span[s:s + piece] for s in starts])
    tails = np.stack([span[s + length - piece:s + length] for s in starts])
    out[:, :edge] = resample(heads, down, 1, axis=1)[:, :edge]
    out[:, -edge:] = resample(tails, down, 1, axis=1)[:, -edge:]
    return out


def window_runs(starts: np.ndarray, length: int, down: int) -> list[np.ndarray]:
    """Indexes of windows in runs that overlap one another and share a decimation phase (start % down)."""
    runs = []
    for phase in np.unique(starts % down):
        members = np.flatnonzero(starts % down == phase)
        members = members[np.argsort(starts[members], kind="stable")]
        breaks = np.flatnonzero(np.diff(starts[members]) >= length) + 1  # starts sorted: a gap ends a run
        runs.extend(np.split(members, breaks))
    return runs


def _pointwise(eeg: np.ndarray, cfg: SignalConfig) -> tuple[np.ndarray, np.ndarray]:
    """Montage, NaN fill, clipping: each output sample depends on its own input sample only."""
    x, missing = fill_missing(bipolar_montage(np.asarray(eeg, dtype=np.float32), cfg.central_chain))
    return (clip_artifacts(x, cfg.clip_uv) if cfg.clip_uv is not None else x), missing


def _decimated_runs(eeg: np.ndarray, cfg: SignalConfig, starts: np.ndarray, down: int):
    """Windows of one recording rebuilt into spans of overlapping windows, prepared and decimated once per span."""
    n, length = eeg.shape[:2]
    pairs = len(bipolar_pairs(cfg.central_chain))
    x = np.empty((n, length // down, pairs), dtype=np.float32)
    missing = np.zeros((n, length, pairs), dtype=bool)
    for run in window_runs(starts, length, down):
        local = starts[run] - starts[run].min()
        span = np.empty((local.max() + length, eeg.shape[2]), dtype=np.float32)
        for i, s in zip(run, local, strict=True):
            span[s:s + length] = eeg[i]
        bipolar, gaps = _pointwise(span, cfg)
        x[run] = decimate_windows(bipolar, local, length, down)
        if gaps.any():
            missing[run] = np.stack([gaps[s:s + length] for s in local])
    return x, missing


def bipolar_signals(eeg: np.ndarray, cfg: SignalConfig, rate_hz: float = EEG_RATE_HZ,
                    starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n, T, 20) referential windows -> (bipolar (n, T', P) float32, missing mask (n, T, P) bool).

    NaN pairs become 0, then artifacts are clipped, then the signals are resampled to `rate_hz`
    (T' = T * rate_hz / 200) and band-passed: filtering after the polyphase decimation costs a
    quarter as much at 50 Hz, and both steps are linear, so the order does not change the result
    beyond the anti-aliasing filter's edge. `starts` (n,): the windows' first samples in one
    recording; overlapping windows are then montaged and decimated once (same result).
    """
    down = EEG_RATE_HZ / rate_hz
    if starts is not None and down > 1 and down.is_integer():
        x, missing = _decimated_runs(eeg, cfg, np.asarray(starts, dtype=np.int64), int(down))
    else:
        x, missing = _pointwise(eeg, cfg)
        x = resample(x, EEG_RATE_HZ, rate_hz, axis=-2)
    if cfg.bandpass_hz is not None:
        x = bandpass(x, *cfg.bandpass_hz, rate_hz=rate_hz, order=cfg.filter_order, axis=-2)
    return x, missing
