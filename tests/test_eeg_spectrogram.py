"""EEG spectrogram images against a scipy reference, frame sharing, devices, and the hemisphere swap."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import signal as sps

from core.schema import EEG_RATE_HZ, EEG_WINDOW_SAMPLES
from features.eeg_spectrogram import (
    SpectrogramConfig,
    chain_images,
    dft_basis,
    eeg_spectrogram,
    frame_starts,
    frequency_matrix,
    mel_filterbank,
)
from features.montage import bipolar_swap_index, swap_hemispheres

FULL = SpectrogramConfig(seconds=50.0)
ZOOM = SpectrogramConfig(seconds=10.0)


def bipolar(n: int = 2, seed: int = 0, samples: int = EEG_WINDOW_SAMPLES) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / EEG_RATE_HZ
    x = rng.normal(0, 20, (n, 16, samples)) + 40 * np.sin(2 * np.pi * 3 * t) * (np.arange(16) < 4)[:, None]
    return x.astype(np.float32)


def scipy_power(x: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    """(width, bins) |STFT|^2 of one signal over the same frames, from scipy.signal.stft."""
    starts = frame_starts(len(x), cfg)
    hop = int(starts[1] - starts[0])
    segment = x[starts[0]: starts[-1] + cfg.win_length].astype(np.float64)
    detrend = False if cfg.detrend == "none" else cfg.detrend
    _, _, z = sps.stft(segment, fs=EEG_RATE_HZ, window="hann", nperseg=cfg.win_length,
                       noverlap=cfg.win_length - hop, nfft=cfg.n_fft, detrend=detrend,
                       boundary=None, padded=False, scaling="spectrum")
    window_sum = sps.get_window("hann", cfg.win_length).sum()
    return (np.abs(z) * window_sum).T ** 2  # scaling="spectrum" divides by the window's sum


def reference_images(x: np.ndarray, cfg: SpectrogramConfig) -> np.ndarray:
    """(4, height, width) chain images computed pair by pair with scipy and numpy."""
    mel = mel_filterbank(EEG_RATE_HZ, cfg.n_fft, cfg.height, cfg.fmin_hz, cfg.fmax_hz)
    if cfg.reference == "fixed":  # mean one-sided PSD of each mel band's bins, as scipy.signal.welch would scale it
        window = sps.get_window("hann", cfg.win_length)
        mel = mel / mel.sum(axis=1, keepdims=True) * 2 / (EEG_RATE_HZ * (window**2).sum())
    db = np.stack([10 * np.log10(np.maximum(mel @ scipy_power(pair, cfg).T, 1e-10)) for pair in x])
    reference = cfg.fixed_ref_db if cfg.reference == "fixed" else db.max()
    db = np.maximum(db - reference, -cfg.top_db)
    return (db.reshape(4, 4, *db.shape[1:]).mean(axis=1) + cfg.db_offset) / cfg.db_scale


def test_frames_are_centred_inside_the_window():
    starts = frame_starts(EEG_WINDOW_SAMPLES, FULL)
    assert len(starts) == FULL.width and starts[0] >= 0
    assert starts[-1] + FULL.win_length <= EEG_WINDOW_SAMPLES
    assert starts[0] == EEG_WINDOW_SAMPLES - (starts[-1] + FULL.win_length)
    zoom = frame_starts(EEG_WINDOW_SAMPLES, ZOOM)
    centre = (zoom[0] + zoom[-1] + ZOOM.win_length) / 2
    assert centre == EEG_WINDOW_SAMPLES / 2 and zoom[-1] - zoom[0] < 2 * EEG_RATE_HZ * 10 / 1.9


@pytest.mark.parametrize("detrend", ["none", "constant", "linear"])
def test_dft_basis_power_matches_scipy_stft(detrend):
    cfg = replace(FULL, detrend=detrend)
    x = bipolar(1)[0, 0] + 30.0  # an offset, so the detrend matters
    starts = frame_starts(len(x), cfg)
    frames = np.stack([x[s:s + cfg.win_length] for s in starts])
    spectrum = frames.astype(np.float64) @ dft_basis(cfg).astype(np.float64)
    bins = spectrum.shape[1] // 2
    power = spectrum[:, :bins] ** 2 + spectrum[:, bins:] ** 2
    expected = scipy_power(x, cfg)[:, :bins]
    np.testing.assert_allclose(power, expected, rtol=1e-3, atol=1e-3 * expected.max())


CONFIGS = [FULL, ZOOM, replace(FULL, detrend="none", n_fft=1024), replace(FULL, reference="window")]


@pytest.mark.parametrize("cfg", CONFIGS, ids=["50s", "10s", "1024", "window"])
def test_chain_images_match_a_scipy_reference(cfg):
    x = bipolar(2)
    images = chain_images(torch.from_numpy(x), cfg).numpy()
    assert images.shape == (2, 4, cfg.height, cfg.width)
    for b in range(2):
        np.testing.assert_allclose(images[b], reference_images(x[b], cfg), atol=2e-3)


def test_per_pair_reference_and_stft_rows():
    x = torch.from_numpy(bipolar(1))
    pair = chain_images(x, replace(FULL, reference="pair"))
    assert torch.allclose(pair.amax(dim=(-2, -1)), torch.ones(1, 4) * (FULL.db_offset / FULL.db_scale), atol=0.2)
    stft = chain_images(x, replace(FULL, kind="stft"))
    assert stft.shape == pair.shape and torch.isfinite(stft).all()


def test_fixed_reference_keeps_absolute_level_on_one_scale_for_every_config():
    x = bipolar(1)
    quiet, loud = (chain_images(torch.from_numpy(x * k), FULL) for k in (1.0, 10.0))
    # 10x the amplitude is +20 dB everywhere (above the floor); a relative reference would show no change.
    assert torch.allclose((loud - quiet) * FULL.db_scale, torch.full_like(quiet, 20.0), atol=1e-3)
    window = [chain_images(torch.from_numpy(x * k), replace(FULL, reference="window")) for k in (1.0, 10.0)]
    assert torch.allclose(window[0], window[1], atol=1e-4)
    # White noise of variance s^2 has a flat one-sided PSD of 2 s^2 / fs, whatever the window, n_fft or
    # row kind. The four pairs of a chain are equal so that the chain's mean of dB is their dB, and the
    # power (not the dB, whose mean is biased low) is averaged over frames and rows.
    noise = np.random.default_rng(1).normal(0, 20, (1, 4, EEG_WINDOW_SAMPLES)).repeat(4, axis=1).astype(np.float32)
    expected_db = 10 * np.log10(2 * 20.0**2 / EEG_RATE_HZ)
    for cfg in (FULL, replace(FULL, kind="stft"), replace(FULL, n_fft=256, win_length=64, width=50, height=32)):
        db = chain_images(torch.from_numpy(noise), cfg)[..., 2:-2, :] * cfg.db_scale - cfg.db_offset + cfg.fixed_ref_db
        assert abs(10 * torch.log10((10 ** (db / 10)).mean()).item() - expected_db) < 0.5, cfg


def test_mel_filterbank_is_slaney_normalised_triangles():
    bank = mel_filterbank(EEG_RATE_HZ, 1024, 32, 0.0, 20.0)
    assert bank.shape == (32, 513) and (bank >= 0).all()
    bin_hz = EEG_RATE_HZ / 1024
    inner = bank[2:-2].sum(axis=1) * bin_hz  # area of each triangle: 1 with Slaney normalisation
    np.testing.assert_allclose(inner, 1.0, rtol=0.05)
    peaks = bank.argmax(axis=1) * bin_hz
    np.testing.assert_allclose(np.diff(peaks), 20.0 / 33, atol=bin_hz)  # linear below 1 kHz


def test_a_tone_lands_in_the_row_of_its_frequency():
    cfg = replace(FULL, height=40)
    t = np.arange(EEG_WINDOW_SAMPLES) / EEG_RATE_HZ
    x = np.tile(np.sin(2 * np.pi * 7.0 * t).astype(np.float32), (1, 16, 1))
    image = chain_images(torch.from_numpy(x), cfg)[0, 0].mean(dim=-1)
    rows_hz = np.linspace(cfg.fmin_hz, cfg.fmax_hz, cfg.height + 2)[1:-1]
    assert abs(rows_hz[int(image.argmax())] - 7.0) < 0.6
    assert frequency_matrix(cfg).shape[1] < cfg.n_fft // 2 + 1  # bins above fmax are not computed


def test_windows_sharing_frames_give_the_same_images():
    long = bipolar(1, samples=EEG_WINDOW_SAMPLES + 6 * EEG_RATE_HZ)[0]
    offsets = np.array([0, 2, 4, 6, 3]) * EEG_RATE_HZ  # 2 s apart share frames; 3 s does not
    windows = torch.from_numpy(np.stack([long[:, o:o + EEG_WINDOW_SAMPLES] for o in offsets]))
    alone = eeg_spectrogram(windows, (FULL, ZOOM))
    shared = eeg_spectrogram(windows, (FULL, ZOOM), offsets=offsets)
    assert shared.shape == (5, 8, FULL.height, FULL.width)
    assert torch.allclose(alone, shared, atol=1e-5)


def test_hemisphere_swap_commutes_with_the_spectrogram():
    x = torch.from_numpy(bipolar(2))
    swapped_input = eeg_spectrogram(swap_hemispheres(x, bipolar_swap_index(), axis=1), (FULL, ZOOM))
    chain_swap = (1, 0, 3, 2, 5, 4, 7, 6)
    assert torch.allclose(swapped_input, swap_hemispheres(eeg_spectrogram(x, (FULL, ZOOM)), chain_swap, axis=1))


def test_float32_inside_autocast():
    x = torch.from_numpy(bipolar(1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = eeg_spectrogram(x.bfloat16(), (FULL,))
    assert out.dtype == torch.float32
    assert torch.allclose(out, eeg_spectrogram(x.bfloat16().float(), (FULL,)), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    x = torch.from_numpy(bipolar(2))
    cpu = eeg_spectrogram(x, (FULL, ZOOM))
    gpu = eeg_spectrogram(x.cuda(), (FULL, ZOOM))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=2e-3, rtol=0)
