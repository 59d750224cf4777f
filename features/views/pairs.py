"""Per-pair views of the top solutions: the raw bipolar EEG image (2nd place) and one spectrogram per
bipolar pair (2nd place STFT, 3rd place mel).

Each view's math is a torch function of the referential windows, (n, T, 20) -> (n, C, H, W), on the
input's device, so it can also run on the GPU at batch time; `compute` wraps it for the cache. The
channels are the 16 bipolar pairs (per resolution), so the hemisphere swap stays a channel permutation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy import signal as sps

from core.schema import EEG_RATE_HZ, EEG_WINDOW_SAMPLES
from features.eeg_spectrogram import SpectrogramConfig, eeg_spectrogram
from features.filters import bandpass_sos
from features.montage import _pair_indices, bipolar_names
from features.views.base import ViewBase, register_view

# Reflected at both ends before the FFT filter: the zero-phase 0.5-20 Hz kernel has decayed to 4e-5 of
# its peak 5 s out, so the circular FFT never joins the window's end to its start.
PAD_S = 5.0


def bipolar_tensor(eeg: torch.Tensor, clip_uv: float | None) -> torch.Tensor:
    """(n, T, 20) referential -> (n, 16, T) float32 bipolar pairs (as `bipolar_montage`), NaN as 0 (as
    `fill_missing`), clipped to +-clip_uv before any filter, so 10^4 µV artifacts do not ring through it."""
    first, second = (torch.as_tensor(i, device=eeg.device) for i in _pair_indices(False))
    channels = eeg.float().transpose(1, 2).contiguous()  # time-major gathers cost twice as much on CPU
    x = (channels.index_select(1, first) - channels.index_select(1, second)).nan_to_num_(nan=0.0)
    return x if clip_uv is None else x.clamp_(-clip_uv, clip_uv)


@lru_cache(maxsize=16)
def bandpass_gain(n: int, n_out: int, band: tuple[float, float], order: int, rate_hz: float) -> np.ndarray:
    """(n_out // 2 + 1,) float32: |H(f)|^2 of the Butterworth band-pass on the first rfft bins of an
    n-sample signal, times n_out / n so that irfft at n_out samples keeps the amplitude."""
    freqs = np.fft.rfftfreq(n, d=1.0 / rate_hz)[: n_out // 2 + 1]
    _, response = sps.sosfreqz(bandpass_sos(*band, rate_hz, order), worN=freqs, fs=rate_hz)
    return (np.abs(response) ** 2 * (n_out / n)).astype(np.float32)


def zero_phase_bandpass(x: torch.Tensor, band: tuple[float, float], order: int, rate_hz: float,
                        down: int = 1) -> torch.Tensor:
    """(n, P, T) -> (n, P, T // down): what `sosfiltfilt` applies, as one FFT product, then decimated.

    Forward-backward filtering multiplies the spectrum by |H|^2 (zero phase); torch has no batched IIR,
    but multiplying the rfft by |H|^2 is a few batched FFTs on any device. Inside the window it equals
    sosfiltfilt to float precision; only the first and last few seconds differ, where scipy's odd
    extension and initial conditions and our even reflection make up different signal past the ends.
    Decimation keeps only the bins below the output Nyquist (an ideal anti-aliasing filter: where it
    cuts, 25 Hz for 50 Hz output, the band-pass has already taken 9 dB off).
    """
    pad = int(PAD_S * rate_hz) // down * down
    padded = F.pad(x, (pad, pad), mode="reflect")
    n = padded.shape[-1]
    if n % down:
        raise ValueError(f"{x.shape[-1]} samples cannot be decimated by {down}")
    gain = torch.as_tensor(bandpass_gain(n, n // down, band, order, rate_hz), device=x.device)
    spectrum = torch.fft.rfft(padded, dim=-1)[..., : len(gain)] * gain
    return torch.fft.irfft(spectrum, n=n // down, dim=-1)[..., pad // down: (n - pad) // down]


class _TorchView(ViewBase):
    """An EEG view whose math is torch: `transform` of referential windows is `from_bipolar` of their
    16 pairs (which tests can feed a signal in one pair: no referential signal reaches only one, as
    each chain shares its ends with the next); `compute` runs it on CPU tensors."""

    source: ClassVar[str] = "eeg"
    clip_uv: float | None

    def from_bipolar(self, bipolar: torch.Tensor, starts: np.ndarray | None = None) -> torch.Tensor:
        """(n, 16, T) bipolar pairs, NaN-free, clipped -> (n, *output_shape())."""
        raise NotImplementedError

    def transform(self, eeg: torch.Tensor, starts: np.ndarray | None = None) -> torch.Tensor:
        """(n, T, 20) referential windows with NaN -> (n, *output_shape()) float32, on eeg's device."""
        return self.from_bipolar(bipolar_tensor(eeg, self.clip_uv), starts)

    def compute(self, windows: np.ndarray, starts: np.ndarray | None) -> np.ndarray:
        with torch.inference_mode():
            # A read-only array (a memory-mapped file) is copied: torch.from_numpy warns on those.
            eeg = torch.from_numpy(np.require(windows, dtype=np.float32, requirements="W"))
            return self.transform(eeg, starts).numpy()


@dataclass(frozen=True)
class RawImageView(_TorchView):
    """The 16 bipolar pairs as an image (2nd place): band-passed, each pair folded into `rows_per_pair`
    rows of consecutive samples; `assemble_image(..., "rows")` stacks the pairs top to bottom.

    Scaled by a fixed `scale_uv` and never squashed or clipped after the filter: the amplitude tells
    patterns apart, and 3x louder EEG (up to the 1024 µV artifact clip) comes out 3x larger.
    """

    name: str
    rate_hz: int = EEG_RATE_HZ
    rows_per_pair: int = 10
    bandpass_hz: tuple[float, float] = (0.5, 20.0)
    filter_order: int = 4
    clip_uv: float | None = 1024.0
    scale_uv: float = 32.0  # bipolar EEG in 0.5-20 Hz is tens of µV: order-1 pixels

    def channel_names(self) -> tuple[str, ...]:
        return bipolar_names()

    def output_shape(self) -> tuple[int, ...]:
        samples = EEG_WINDOW_SAMPLES * self.rate_hz // EEG_RATE_HZ
        if EEG_RATE_HZ % self.rate_hz or samples % self.rows_per_pair:
            raise ValueError(f"view {self.name}: {self.rate_hz} Hz must divide 200 Hz and its {samples} samples "
                             f"must fold into {self.rows_per_pair} rows")
        return (len(self.channel_names()), self.rows_per_pair, samples // self.rows_per_pair)

    def from_bipolar(self, bipolar: torch.Tensor, starts: np.ndarray | None = None) -> torch.Tensor:
        """`starts` is not needed: each window is filtered on its own (an FFT costs less than sharing)."""
        shape = self.output_shape()
        with torch.autocast(bipolar.device.type, enabled=False):  # float32 FFTs, also inside a bf16 region
            x = zero_phase_bandpass(bipolar.float(), self.bandpass_hz, self.filter_order, EEG_RATE_HZ,
                                    EEG_RATE_HZ // self.rate_hz)
            return (x / self.scale_uv).reshape(len(x), *shape)


@dataclass(frozen=True)
class PairSpecView(_TorchView):
    """One log-power spectrogram per bipolar pair and resolution: 16 pairs @50 s, then 16 @10 s, ...

    `features.eeg_spectrogram` with `per_pair`: the same frames, DFT basis and fixed dB reference
    (absolute power spectral density) as the chain views, without the mean over each chain's pairs.
    """

    name: str
    resolutions: tuple[SpectrogramConfig, ...]
    clip_uv: float | None = 1024.0

    def channel_names(self) -> tuple[str, ...]:
        return tuple(f"{pair}@{r.label}" for r in self.resolutions for pair in bipolar_names())

    def output_shape(self) -> tuple[int, ...]:
        sizes = {(r.height, r.width) for r in self.resolutions}
        if len(sizes) != 1:
            raise ValueError(f"view {self.name}: every resolution needs the same height and width, got {sizes}")
        return (len(self.channel_names()), *sizes.pop())

    def from_bipolar(self, bipolar: torch.Tensor, starts: np.ndarray | None = None) -> torch.Tensor:
        """`starts`: the windows' first samples in one recording; shared frames are transformed once."""
        return eeg_spectrogram(bipolar, self.resolutions, starts, per_pair=True)


def _pair_stft(seconds: float, **size) -> SpectrogramConfig:
    return SpectrogramConfig(seconds=seconds, kind="stft", **size)


def _pair_mel(seconds: float, **size) -> SpectrogramConfig:
    return SpectrogramConfig(seconds=seconds, kind="mel", fmin_hz=0.53, fmax_hz=30.0, **size)


# 2nd place STFT: n_fft 512, window 128; 198 frames give hop 50 over 50 s and hop 10 over the centre 10 s.
# Rows are the FFT bins 1..51 themselves (0.39 Hz apart, 0.39-19.9 Hz): the DC row is detrended away.
_BIN_HZ = EEG_RATE_HZ / 512
_STFT = dict(n_fft=512, win_length=128, width=198, height=51, fmin_hz=_BIN_HZ, fmax_hz=51 * _BIN_HZ)
# 3rd place mel: 64 bands 0.53-30 Hz, n_fft 512, window 128; 309 frames give hop 32 over 50 s (hop 6 at 10 s).
_MEL = dict(n_fft=512, win_length=128, width=309, height=64)
_TINY = dict(n_fft=256, win_length=64, width=64, height=32)  # hops 156 and 31
register_view(
    RawImageView("raw_image"),
    RawImageView("raw_image_tiny", rate_hz=50, rows_per_pair=5),
    PairSpecView("pair_stft", (_pair_stft(50.0, **_STFT), _pair_stft(10.0, **_STFT))),
    PairSpecView("pair_stft_tiny", (_pair_stft(50.0, fmin_hz=0.5, **_TINY), _pair_stft(10.0, fmin_hz=0.5, **_TINY))),
    PairSpecView("pair_mel", (_pair_mel(50.0, **_MEL), _pair_mel(10.0, **_MEL))),
    PairSpecView("pair_mel_tiny", (_pair_mel(50.0, **_TINY), _pair_mel(10.0, **_TINY))),
)
