"""Per-pair views (raw bipolar image, per-pair STFT and mel) against scipy/numpy references, the
hemisphere swap, the fixed dB scale, a sinusoid in one pair, window sharing, and CUDA against CPU."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import signal as sps

from core.schema import EEG_COLUMNS, EEG_RATE_HZ
from features.montage import bipolar_montage, bipolar_names, fill_missing, swap_hemispheres, swap_referential
from features.views import compute_view, get_view

T = 10_000
FS = EEG_RATE_HZ
SPEC_VIEWS = ["pair_stft", "pair_stft_tiny", "pair_mel", "pair_mel_tiny"]
RAW_VIEWS = ["raw_image", "raw_image_tiny"]
SHAPES = {"raw_image": (16, 10, 1000), "raw_image_tiny": (16, 5, 500), "pair_stft": (32, 51, 198),
          "pair_stft_tiny": (32, 32, 64), "pair_mel": (32, 64, 309), "pair_mel_tiny": (32, 32, 64)}
DB3 = 20 * np.log10(3) / 40  # x3 amplitude in image units ((dB + 40) / 40)


def referential(n: int = 2, seed: int = 0, sd: float = 30.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, sd, (n, T, len(EEG_COLUMNS))).astype(np.float32)


def sinusoids(n: int = 1, seed: int = 1) -> np.ndarray:
    """Referential EEG of a few sinusoids per electrode below 20 Hz over a 1 µV noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(T) / FS
    freqs, phases = rng.uniform(1, 18, (n, 1, 20, 3)), rng.uniform(0, 2 * np.pi, (n, 1, 20, 3))
    waves = (40 * np.sin(2 * np.pi * freqs * t[None, :, None, None] + phases)).sum(axis=-1)
    return (waves + rng.normal(0, 1, waves.shape)).astype(np.float32)


def band_limited(n: int = 1, seed: int = 2, below_hz: float = 24.0) -> np.ndarray:
    """Random referential EEG with no content above `below_hz` (so [::4] of it is an exact 50 Hz signal)."""
    rng = np.random.default_rng(seed)
    spectrum = rng.normal(size=(n, T // 2 + 1, 20)) + 1j * rng.normal(size=(n, T // 2 + 1, 20))
    spectrum[:, np.fft.rfftfreq(T, 1 / FS) > below_hz] = 0
    x = np.fft.irfft(spectrum, n=T, axis=1)
    return (x * 30 / x.std()).astype(np.float32)


def with_gap_and_artifact(eeg: np.ndarray) -> np.ndarray:
    """NaN in C3 for 3 s (filled with 0 before any filter) and a 5000 µV artifact in Fp1 (clipped at 1024)."""
    eeg = eeg.copy()
    eeg[0, 4000:4600, EEG_COLUMNS.index("C3")] = np.nan
    eeg[0, 6000:6040, EEG_COLUMNS.index("Fp1")] = 5000.0
    return eeg


def pairs_of(eeg: np.ndarray) -> np.ndarray:
    """(n, T, 20) -> (n, 16, T) float64 bipolar pairs, NaN as 0, clipped at 1024 µV, in numpy."""
    x, _ = fill_missing(bipolar_montage(eeg.astype(np.float64)))
    return np.clip(x, -1024, 1024).transpose(0, 2, 1)


# ---- registry and swap ------------------------------------------------------------------------
@pytest.mark.parametrize("name", RAW_VIEWS + SPEC_VIEWS)
def test_views_are_registered_with_their_shapes_and_pair_channels(name):
    view = get_view(name)
    assert view.output_shape() == SHAPES[name]
    names = view.channel_names()
    assert len(names) == SHAPES[name][0]
    expected = bipolar_names() if name in RAW_VIEWS else tuple(f"{p}@{s}" for s in ("50s", "10s")
                                                                for p in bipolar_names())
    assert names == expected
    swap = np.asarray(view.swap_index)
    assert (swap[swap] == np.arange(len(swap))).all() and names[swap[0]] == names[0].replace("Fp1-F7", "Fp2-F8")


@pytest.mark.parametrize("name", RAW_VIEWS + SPEC_VIEWS)
def test_swapped_eeg_gives_the_view_with_its_channels_permuted(name):
    view = get_view(name)
    eeg = referential(1, seed=4)
    eeg[0, 3000:3500, EEG_COLUMNS.index("T3")] = np.nan
    mirrored = compute_view(name, eeg_windows=swap_referential(eeg))
    np.testing.assert_allclose(mirrored, swap_hemispheres(compute_view(name, eeg_windows=eeg), view.swap_index, 1),
                               atol=1e-5)


def test_read_only_windows_are_computed_without_a_warning():
    eeg = referential(1, seed=10)
    expected = compute_view("pair_stft_tiny", eeg_windows=eeg)
    eeg.flags.writeable = False  # as a memory-mapped cache file gives them
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(compute_view("pair_stft_tiny", eeg_windows=eeg), expected)


# ---- raw image ---------------------------------------------------------------------------------
def scipy_raw(eeg: np.ndarray, down: int) -> np.ndarray:
    """(n, 16, T // down) sosfiltfilt band-pass of the pairs, every `down`-th sample, / 32 µV."""
    sos = sps.butter(4, (0.5, 20.0), btype="bandpass", fs=FS, output="sos")
    return sps.sosfiltfilt(sos, pairs_of(eeg), axis=-1)[..., ::down] / 32.0


@pytest.mark.parametrize(("name", "down", "make"), [("raw_image", 1, referential), ("raw_image", 1, sinusoids),
                                                     ("raw_image_tiny", 4, band_limited)])
def test_raw_image_is_the_sosfiltfilt_band_pass_inside_the_window(name, down, make):
    eeg = with_gap_and_artifact(make()) if make is referential else make()
    out = compute_view(name, eeg_windows=eeg)
    flat = out.reshape(*out.shape[:2], -1)
    expected = scipy_raw(eeg, down)
    scale = np.abs(expected).max()
    # Measured: 9e-4 of the peak at 5 s from the ends, 5e-5 at 10 s; in the first and last 2 s up to 4%
    # (90% at the very first sample): the two filters make up different signal past the window's ends.
    for margin_s, tolerance in ((5, 2e-3), (10, 2e-4)):
        inner = slice(margin_s * FS // down, (T - margin_s * FS) // down)
        np.testing.assert_allclose(flat[..., inner], expected[..., inner], atol=tolerance * scale)


def test_raw_image_folds_each_pair_into_rows_and_keeps_a_sinusoid_in_its_own_pair():
    view = get_view("raw_image")
    t = torch.arange(T) / FS
    bipolar = torch.zeros(1, 16, T)
    bipolar[0, 5] = 64 * torch.sin(2 * torch.pi * 7.0 * t)
    out = view.from_bipolar(bipolar)[0].numpy()
    assert np.abs(np.delete(out, 5, axis=0)).max() == 0
    np.testing.assert_allclose(out[5, 3, :], out[5].reshape(-1)[3000:4000])  # row r holds samples r*1000..
    middle = out[5].reshape(-1)[1000:-1000]
    assert abs(middle.max() - 2.0) < 0.01  # 64 µV / 32 µV, 7 Hz in the pass band


def test_raw_image_is_linear_in_amplitude_without_saturating():
    eeg = referential(1, seed=5)
    out = compute_view("raw_image_tiny", eeg_windows=eeg)
    louder = compute_view("raw_image_tiny", eeg_windows=3 * eeg)
    np.testing.assert_allclose(louder, 3 * out, rtol=1e-4, atol=1e-5)
    assert 0.3 < out.std() < 3 and np.abs(louder).max() > 3 * np.abs(out).max() * 0.999


# ---- per-pair spectrograms ---------------------------------------------------------------------
PARAMS = {  # what each view should compute, from the solutions' settings (not read back from the view)
    "pair_stft": dict(n_fft=512, win=128, width=198, hops=(50, 10), rows=np.arange(1, 52) * FS / 512, kind="stft"),
    "pair_stft_tiny": dict(n_fft=256, win=64, width=64, hops=(156, 31), rows=np.linspace(0.5, 20, 32), kind="stft"),
    "pair_mel": dict(n_fft=512, win=128, width=309, hops=(32, 6), rows=np.linspace(0.53, 30, 66), kind="mel"),
    "pair_mel_tiny": dict(n_fft=256, win=64, width=64, hops=(156, 31), rows=np.linspace(0.53, 30, 34), kind="mel"),
}


def scipy_psd(x: np.ndarray, p: dict, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(bins,), (bins, width) one-sided PSD (µV²/Hz) of each detrended Hann frame, centred in the window."""
    start = (T - hop * (p["width"] - 1) - p["win"]) // 2
    segment = x[start: start + hop * (p["width"] - 1) + p["win"]]
    freqs, _, z = sps.stft(segment, fs=FS, window="hann", nperseg=p["win"], noverlap=p["win"] - hop,
                           nfft=p["n_fft"], detrend="constant", boundary=None, padded=False, scaling="psd")
    assert z.shape[1] == p["width"]
    return freqs, 2 * np.abs(z) ** 2


def row_density(freqs: np.ndarray, psd: np.ndarray, p: dict) -> np.ndarray:
    """(height, width): linear rows interpolate the PSD; mel rows are the triangle-weighted mean density
    (the Slaney mel scale is linear below 1 kHz, so the band edges are evenly spaced in Hz)."""
    if p["kind"] == "stft":
        return np.stack([np.interp(p["rows"], freqs, frame) for frame in psd.T], axis=1)
    lo, centre, hi = p["rows"][:-2, None], p["rows"][1:-1, None], p["rows"][2:, None]
    weights = np.maximum(0, np.minimum((freqs - lo) / (centre - lo), (hi - freqs) / (hi - centre)))
    return weights @ psd / weights.sum(axis=1, keepdims=True)


def reference_pair_images(eeg: np.ndarray, name: str) -> np.ndarray:
    """(n, 32, height, width): dB re 1 µV²/Hz, 40 dB subtracted, floored at -80, then (dB + 40) / 40."""
    p = PARAMS[name]
    out = [[row_density(*scipy_psd(pair, p, hop), p) for hop in p["hops"] for pair in window]
           for window in pairs_of(eeg)]
    db = np.maximum(10 * np.log10(np.maximum(np.asarray(out), 1e-30)) - 40.0, -80.0)
    return (db + 40.0) / 40.0


@pytest.mark.parametrize("name", SPEC_VIEWS)
@pytest.mark.parametrize("make", [referential, sinusoids])
def test_pair_spectrograms_match_scipy_stft(name, make):
    eeg = with_gap_and_artifact(make(1)) if make is referential else make(1)
    np.testing.assert_allclose(compute_view(name, eeg_windows=eeg), reference_pair_images(eeg, name), atol=2e-4)


@pytest.mark.parametrize("name", SPEC_VIEWS)
def test_three_times_the_amplitude_adds_9_5_db_on_the_fixed_scale(name):
    eeg = referential(1, seed=6)
    out = compute_view(name, eeg_windows=eeg)
    louder = compute_view(name, eeg_windows=3 * eeg)
    above_floor = out > -1 + 0.25  # 10 dB above the -80 dB floor: not clamped in either
    assert above_floor.mean() > 0.99
    np.testing.assert_allclose((louder - out)[above_floor], DB3, atol=1e-4)


def expected_row(name: str, hz: float) -> int:
    rows = PARAMS[name]["rows"]
    return int(np.argmin(np.abs((rows[1:-1] if PARAMS[name]["kind"] == "mel" else rows) - hz)))


@pytest.mark.parametrize("name", SPEC_VIEWS)
def test_a_sinusoid_in_one_pair_peaks_at_its_row_in_that_pairs_channels_only(name):
    view = get_view(name)
    hz, pair = 18 * FS / 512, 6  # 7.03 Hz: an FFT bin of n_fft 512, in pair T4-T6
    t = torch.arange(T, dtype=torch.float64) / FS
    bipolar = torch.from_numpy(np.random.default_rng(7).normal(0, 1, (1, 16, T))).float()
    bipolar[0, pair] += (50 * torch.sin(2 * torch.pi * hz * t)).float()
    out = view.from_bipolar(bipolar)[0].numpy()
    profile = out.mean(axis=-1)  # (32, height)
    tolerance = 0 if name == "pair_stft" else 1  # rows on the bins; elsewhere the peak may share two rows
    for channel in (pair, 16 + pair):
        assert abs(int(profile[channel].argmax()) - expected_row(name, hz)) <= tolerance
    others = np.delete(out, [pair, 16 + pair], axis=0)
    assert out[[pair, 16 + pair]].max(axis=(1, 2)).min() > others.max() + 30 / 40  # 30 dB above any other pair


def test_windows_of_one_recording_share_frames_with_the_same_result():
    recording = referential(1, seed=8)[0]
    recording = np.concatenate([recording, recording[:2000]])
    offsets = np.array([0.0, 2.0, 10.0, 3.0])
    windows = np.stack([recording[int(o * FS):int(o * FS) + T] for o in offsets])
    np.testing.assert_allclose(compute_view("pair_mel_tiny", eeg_windows=windows, offsets_s=offsets),
                               compute_view("pair_mel_tiny", eeg_windows=windows), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", RAW_VIEWS + SPEC_VIEWS)
def test_cuda_gives_the_cpu_result(name):
    view = get_view(name)
    eeg = torch.from_numpy(referential(2, seed=9))
    eeg[0, 3000:3400, 5] = float("nan")
    with torch.inference_mode():
        cpu = view.transform(eeg)
        cuda = view.transform(eeg.cuda())
    assert cuda.device.type == "cuda" and cuda.dtype == torch.float32
    np.testing.assert_allclose(cuda.cpu().numpy(), cpu.numpy(), atol=1e-4)
