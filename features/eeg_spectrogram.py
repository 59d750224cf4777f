"""EEG spectrogram images in torch: STFT or mel log-power per chain, batched, on the input's device.

One image per chain is the mean over the chain's 4 bipolar pairs of each pair's dB image (as the
public notebooks do: log first, so one loud pair does not drown the other three); `per_pair` keeps
the 16 pair images instead (features.views.pairs). An image covers
a centred segment of the window (the whole 50 s, or the labelled centre 10 s) with `width` frames
laid out symmetrically inside the window, so a frame never reaches past the window's edges and a
window cut from a long recording gives the same image as a 50 s test recording. Frequency rows run
from fmin (row 0) to fmax.

The STFT is a matrix product: only the bins below fmax are computed, with the window and the
per-frame detrend folded into one (win_length, 2 * bins) real DFT basis. Windows of one recording
at several offsets share frames where their grids line up (offsets 2 s apart with the default
hops); each shared frame is transformed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from core.schema import CHAINS, EEG_RATE_HZ
from features.montage import PAIRS_PER_CHAIN

# Scalp EEG between 0.5 and 20 Hz sits around -10..+25 dB re 1 µV²/Hz (median ~4 dB on the synthetic
# set, which is built in µV to match real recordings), so with the default offset and scale the
# "fixed" image is dB / 40: about -0.2..0.6, floor -1 at -40 dB.
FIXED_REF_DB = 40.0


@dataclass(frozen=True)
class SpectrogramConfig:
    seconds: float = 50.0  # centred segment shown
    kind: str = "mel"  # "mel" (Slaney mel bands, as librosa) or "stft" (linear frequency rows)
    n_fft: int = 512  # 0.39 Hz bins: 4x finer than the 1.6 Hz resolution of a 128-sample window
    win_length: int = 128  # 0.64 s Hann window, as the public notebooks
    width: int = 124  # time frames; 50 s / 124 -> hop 80 = 0.4 s, so rows 2 s apart share frames
    height: int = 64  # mel bands or frequency rows between fmin and fmax
    fmin_hz: float = 0.0
    fmax_hz: float = 20.0
    detrend: str = "constant"  # per-frame: "none" (librosa), "constant" (scipy's default), "linear"
    # What 0 dB is. "fixed": `fixed_ref_db` of power spectral density (dB re 1 µV²/Hz, each row the
    # mean density of its bins), so the image keeps absolute power: a loud pattern stays loud
    # whatever else the window holds, and every config shares one scale. "window": the maximum over
    # all pairs of the window; "pair": each pair's own maximum (librosa.power_to_db(ref=np.max), as
    # the public notebooks). The relative references throw the signal level away, and with it most
    # of what tells a pattern from background: on the synthetic set a linear probe on "window"
    # images scores KL 0.99 against 0.91 with "fixed", and MiT-b0 0.65 against 1.51 (bench notes).
    reference: str = "fixed"
    fixed_ref_db: float = FIXED_REF_DB
    top_db: float = 80.0  # floor below the reference
    db_offset: float = 40.0  # image = (dB + offset) / scale, the notebooks' (x + 40) / 40
    db_scale: float = 40.0
    rate_hz: int = EEG_RATE_HZ

    @property
    def segment(self) -> int:
        return int(round(self.seconds * self.rate_hz))

    @property
    def label(self) -> str:
        return f"{self.seconds:g}s"


def frame_starts(n_samples: int, cfg: SpectrogramConfig) -> np.ndarray:
    """(width,) first sample of each frame: `width` frames spread over the centred segment, inside the window."""
    hop = min(cfg.segment // cfg.width, (n_samples - cfg.win_length) // max(cfg.width - 1, 1))
    if hop < 1 or cfg.segment > n_samples:
        raise ValueError(f"a {n_samples}-sample window cannot hold the {cfg.label} segment in {cfg.width} "
                         f"frames of {cfg.win_length}")
    span = hop * (cfg.width - 1) + cfg.win_length
    return (n_samples - span) // 2 + hop * np.arange(cfg.width)


# ---- frequency maps and DFT basis (numpy, cached per config) -----------------------------
def _hz_to_mel(hz):
    """Slaney mel scale (librosa's default, htk=False): linear below 1 kHz, log above."""
    hz = np.asarray(hz, dtype=np.float64)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, hz / (200.0 / 3))


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * 200.0 / 3)


def mel_filterbank(rate_hz: float, n_fft: int, n_mels: int, fmin_hz: float, fmax_hz: float) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters with Slaney area normalisation (librosa.filters.mel)."""
    fft_hz = np.fft.rfftfreq(n_fft, d=1.0 / rate_hz)
    mel_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin_hz), _hz_to_mel(fmax_hz), n_mels + 2))
    ramps = mel_hz[:, None] - fft_hz[None, :]
    widths = np.diff(mel_hz)
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (mel_hz[2:] - mel_hz[:-2]))[:, None]


def linear_rows(rate_hz: float, n_fft: int, height: int, fmin_hz: float, fmax_hz: float) -> np.ndarray:
    """(height, n_fft // 2 + 1) linear interpolation of the FFT bins at `height` evenly spaced frequencies."""
    fft_hz = np.fft.rfftfreq(n_fft, d=1.0 / rate_hz)
    position = np.interp(np.linspace(fmin_hz, fmax_hz, height), fft_hz, np.arange(len(fft_hz)))
    below = np.minimum(np.floor(position).astype(int), len(fft_hz) - 2)
    frac = position - below
    weights = np.zeros((height, len(fft_hz)))
    weights[np.arange(height), below] = 1.0 - frac
    weights[np.arange(height), below + 1] += frac
    return weights


@lru_cache(maxsize=32)
def frequency_matrix(cfg: SpectrogramConfig) -> np.ndarray:
    """(height, bins) float32 map from power per FFT bin to image rows, trimmed to the bins it uses."""
    if cfg.kind not in ("mel", "stft"):
        raise ValueError(f"spectrogram kind must be 'mel' or 'stft', got {cfg.kind!r}")
    build = mel_filterbank if cfg.kind == "mel" else linear_rows
    weights = build(cfg.rate_hz, cfg.n_fft, cfg.height, cfg.fmin_hz, cfg.fmax_hz)
    used = np.flatnonzero(weights.any(axis=0))
    return weights[:, : used[-1] + 1].astype(np.float32)  # bins above fmax are never computed


def hann(n: int) -> np.ndarray:
    """Periodic Hann window, as scipy's 'hann' (the STFT frames and the density scale share it)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


@lru_cache(maxsize=32)
def density_offset_db(cfg: SpectrogramConfig) -> np.ndarray:
    """(height,) dB to add to `frame_db` rows to get the mean one-sided power spectral density of each
    row's bins (µV²/Hz for µV input), whatever the window length, n_fft or row kind."""
    density = 2.0 / (cfg.rate_hz * (hann(cfg.win_length) ** 2).sum())
    return (10 * np.log10(density / frequency_matrix(cfg).sum(axis=1))).astype(np.float32)


def _detrend_matrix(n: int, kind: str) -> np.ndarray:
    """(n, n) projection removing each frame's mean ("constant") or least-squares line ("linear")."""
    degree = {"none": -1, "constant": 0, "linear": 1}[kind]
    if degree < 0:
        return np.eye(n)
    q, _ = np.linalg.qr(np.vander(np.arange(n, dtype=np.float64), degree + 1))
    return np.eye(n) - q @ q.T


@lru_cache(maxsize=32)
def dft_basis(cfg: SpectrogramConfig) -> np.ndarray:
    """(win_length, 2 * bins) float32: frame @ basis = [Re, Im] of rfft(hann * detrend(frame), n_fft)."""
    bins = frequency_matrix(cfg).shape[1]
    n = np.arange(cfg.win_length)
    window = hann(cfg.win_length)
    angle = 2 * np.pi * np.outer(n, np.arange(bins)) / cfg.n_fft
    fourier = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1) * window[:, None]
    return (_detrend_matrix(cfg.win_length, cfg.detrend) @ fourier).astype(np.float32)


# ---- torch ------------------------------------------------------------------------------
def _on(array: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(array, device=like.device)


def frame_db(frames: torch.Tensor, cfg: SpectrogramConfig) -> torch.Tensor:
    """(..., win_length) frames -> (..., height) log power (dB) in each image row (mel band or frequency)."""
    basis = _on(dft_basis(cfg), frames)
    spectrum = frames @ basis
    bins = basis.shape[1] // 2
    power = spectrum[..., :bins].square() + spectrum[..., bins:].square()
    return (power @ _on(frequency_matrix(cfg), frames).T).clamp_min_(1e-10).log10_().mul_(10.0)


def db_to_image(db: torch.Tensor, cfg: SpectrogramConfig, per_pair: bool = False) -> torch.Tensor:
    """(B, width, P >= 16, height) pair dB -> (B, 4, height, width) chain images, or with `per_pair`
    (B, 16, height, width) pair images (the chain mean left out; the per-pair views)."""
    if cfg.reference not in ("window", "pair", "fixed"):
        raise ValueError(f"spectrogram reference must be 'window', 'pair' or 'fixed', got {cfg.reference!r}")
    db = db[:, :, : len(CHAINS) * PAIRS_PER_CHAIN]
    if cfg.reference == "fixed":
        db = db + _on(density_offset_db(cfg), db)
        peak = torch.tensor(cfg.fixed_ref_db, device=db.device)
    else:
        peak = db.amax(dim=(1, 2, 3) if cfg.reference == "window" else (1, 3), keepdim=True)
    db = (db - peak).clamp_(min=-cfg.top_db)
    image = db if per_pair else db.unflatten(2, (len(CHAINS), PAIRS_PER_CHAIN)).mean(dim=3)  # (B, width, 4, height)
    return image.add_(cfg.db_offset).div_(cfg.db_scale).permute(0, 2, 3, 1).contiguous()


def chain_images(bipolar: torch.Tensor, cfg: SpectrogramConfig, offsets: np.ndarray | None = None,
                 per_pair: bool = False) -> torch.Tensor:
    """(B, P >= 16, T) bipolar windows -> (B, 4, height, width) images, chains in CHAINS order
    (with `per_pair`: (B, 16, height, width), one image per bipolar pair).

    `offsets` (B,) are the windows' first samples in one shared recording: frames at the same
    recording sample are then transformed once.
    """
    starts = frame_starts(bipolar.shape[-1], cfg)
    samples = bipolar.float().unfold(-1, cfg.win_length, 1)  # (B, P, T - win + 1, win), a view
    if offsets is None:
        frames = samples[:, :, _on(starts, bipolar)].transpose(1, 2)  # (B, width, P, win)
        return db_to_image(frame_db(frames, cfg), cfg, per_pair)
    at = np.asarray(offsets, dtype=np.int64)[:, None] + starts[None, :]  # recording sample of each frame
    _, first, inverse = np.unique(at.ravel(), return_index=True, return_inverse=True)
    window, frame = np.divmod(first, cfg.width)
    frames = samples[_on(window, bipolar), :, _on(starts[frame], bipolar)]  # (unique frames, P, win)
    return db_to_image(frame_db(frames, cfg)[_on(inverse.reshape(at.shape), bipolar)], cfg, per_pair)


def eeg_spectrogram(bipolar: torch.Tensor, resolutions: tuple[SpectrogramConfig, ...],
                    offsets: np.ndarray | None = None, per_pair: bool = False) -> torch.Tensor:
    """(B, P, T) -> (B, 4 * len(resolutions), height, width): each resolution's 4 chain images in turn
    (with `per_pair`: its 16 pair images, (B, 16 * len(resolutions), height, width)).

    Always float32, also inside a bf16 autocast region (power spans 8 decades before the log).
    """
    with torch.autocast(bipolar.device.type, enabled=False):
        return torch.cat([chain_images(bipolar, cfg, offsets, per_pair) for cfg in resolutions], dim=1)
