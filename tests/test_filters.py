"""Band-pass response, zero phase, resampling, and the bipolar signal preparation."""

from __future__ import annotations

import numpy as np

from core.schema import EEG_COLUMNS, EEG_RATE_HZ
from features.filters import SignalConfig, bandpass, bipolar_signals, resample, window_runs

T = np.arange(20 * EEG_RATE_HZ) / EEG_RATE_HZ  # 20 s
CORE = slice(5 * EEG_RATE_HZ, 15 * EEG_RATE_HZ)  # away from the edges


def sine(hz: float) -> np.ndarray:
    return np.sin(2 * np.pi * hz * T).astype(np.float32)[:, None]  # (T, 1): time on axis -2


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x[CORE] ** 2)))


def test_5_hz_passes_and_40_hz_is_attenuated_by_more_than_20_db():
    assert 0.95 < rms(bandpass(sine(5))) / rms(sine(5)) < 1.05
    gain_db = 20 * np.log10(rms(bandpass(sine(40))) / rms(sine(40)))
    assert gain_db < -20


def test_drift_below_the_pass_band_is_removed():
    assert rms(bandpass(sine(0.05) * 100)) < 0.05 * rms(sine(0.05) * 100)


def test_band_pass_is_zero_phase():
    x = sine(5)
    lag = np.argmax(np.correlate(bandpass(x)[CORE, 0], x[CORE, 0], mode="full")) - (len(T[CORE]) - 1)
    assert lag == 0


def test_band_pass_is_configurable_and_vectorised():
    x = np.stack([sine(5), sine(12)])  # (2, T, 1)
    out = bandpass(x, 0.5, 8.0)
    assert out.shape == x.shape and out.dtype == np.float32
    assert rms(out[0]) > 0.9 * rms(x[0]) and rms(out[1]) < 0.3 * rms(x[1])


def test_resample_keeps_a_5_hz_sine():
    out = resample(sine(5), EEG_RATE_HZ, 50)
    assert out.shape == (len(T) // 4, 1)
    expected = np.sin(2 * np.pi * 5 * np.arange(len(out)) / 50)
    np.testing.assert_allclose(out[50:-50, 0], expected[50:-50], atol=0.02)


def test_bipolar_signals_fill_nan_clip_and_return_the_mask():
    rng = np.random.default_rng(0)
    eeg = rng.normal(0, 30, (2, 4000, len(EEG_COLUMNS))).astype(np.float32)
    eeg[0, 100:300, EEG_COLUMNS.index("O1")] = np.nan
    eeg[1, 2000, EEG_COLUMNS.index("Cz")] = 1e5  # an artifact on the midline: no double-banana pair
    eeg[1, 2000, EEG_COLUMNS.index("C3")] = 1e5
    x, mask = bipolar_signals(eeg, SignalConfig(bandpass_hz=None, clip_uv=500.0))
    assert x.shape == mask.shape == (2, 4000, 16)
    assert np.isfinite(x).all() and np.abs(x).max() <= 500.0
    assert mask[0, 100:300].any(axis=-1).all() and not mask[1].any()
    filtered, _ = bipolar_signals(eeg, SignalConfig(), rate_hz=50)
    assert filtered.shape == (2, 1000, 16) and np.isfinite(filtered).all()


def test_windows_decimated_together_equal_windows_decimated_alone():
    rng = np.random.default_rng(1)
    recording = rng.normal(0, 30, (EEG_RATE_HZ * 90, len(EEG_COLUMNS))).astype(np.float32)
    recording[3000:3300, 2] = np.nan
    starts = np.array([0, 400, 2000, 401 * 4, 8000, 40 * EEG_RATE_HZ, 38 * EEG_RATE_HZ + 2])  # odd phase, far run
    windows = np.stack([recording[s:s + 10_000] for s in starts])
    alone = bipolar_signals(windows, SignalConfig(), rate_hz=50)
    together = bipolar_signals(windows, SignalConfig(), rate_hz=50, starts=starts)
    np.testing.assert_allclose(together[0], alone[0], atol=1e-4)
    np.testing.assert_array_equal(together[1], alone[1])


def test_window_runs_split_on_gaps_and_phase():
    runs = window_runs(np.array([0, 8000, 30_000, 2, 10_400]), 10_000, 4)
    assert sorted(run.tolist() for run in runs) == [[0, 1, 4], [2], [3]]
