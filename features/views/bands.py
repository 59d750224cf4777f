"""Flat feature vectors for gradient-boosted trees: band powers and shape measures of the EEG, and
band summaries of the Kaggle spectrogram. Output (n, F) per row; `channel_names` are the F names.

Names are `channel_feature_span` joined by '_' (a separator `features.montage.mirror_name` splits
on, so "Fp1-F7_theta_50s" mirrors to "Fp2-F8_theta_50s" and "LL_delta_10s" to "RL_delta_10s") and
`swap_index` maps every feature to its mirror image. Left-right asymmetries are stored UNSIGNED
(|left - right|, names without a side, e.g. "asym-temporal_delta_50s"): they mirror to themselves,
and a class does not depend on the side, so the sign would only add a left/right split the swap
augmentation then has to undo. The sided information stays in the per-chain features.

EEG (`bands_eeg`): bipolar pairs (16 + Fz-Cz, Cz-Pz), NaN -> 0 (montage.fill_missing), clipped at
±1024 µV, Welch PSD (4 s Hann frames, 2 s hop, linear detrend per frame) over the 50 s window and
the centre 10 s (20-30 s), and the 0.5-20 Hz signal at 50 Hz (FFT band-pass) for time-domain
measures. Per pair and per chain (mean PSD of its 4 pairs; mean of its pairs' time measures):

| feature       | what                                                             | scale-free |
|---------------|------------------------------------------------------------------|------------|
| logp-BAND     | log power in 0.5-2, 2-4, 4-8, 8-13, 13-20, 0.5-20 (tot), 20-45 Hz | no         |
| rel-BAND      | band power / 0.5-20 Hz power (five bands)                        | yes        |
| sef90, peakf  | 90% spectral edge, peak frequency in 0.5-20 Hz                   | yes        |
| entropy       | normalised spectral entropy in 0.5-20 Hz                         | yes        |
| rhythm        | power of the 0.5-4 Hz peak (±1 bin) / 0.5-20 Hz power             | yes        |
| logll         | log mean |diff| (line length per sample) of the 0.5-20 Hz signal | no         |
| logkurt       | log kurtosis of the 0.5-20 Hz signal (spikes, sharp waves)       | yes        |
| acf           | peak autocorrelation of the 0.5-4 Hz signal at 0.25-2 s lags     | yes        |
| period        | peak autocorrelation of the smoothed 2-20 Hz power envelope at   | yes        |
|               | 0.33-2 s lags (periodic discharges, LPD/GPD), and `periodlag` (s)|            |
| logpsd        | std over the Welch frames of log 0.5-20 Hz power (burstiness)    | yes        |

spans: "50s", "10s" and "10v50" (10 s minus 50 s value, for logp-*, rhythm, acf, period). Side-free
summaries: "global" (mean of the 16 chain pairs), "focal" (max - median over pairs), "front-back"
(4 frontal pairs - 4 occipital pairs), "asym-temporal" |LL - RL|, "asym-para" |LP - RP|,
"asym-hemi" (|left - right| of the means of the two chains per side) for log powers and the shape
measures, "max" over the 18 pairs for the shape measures, and the window's NaN and clipped shares.

Kaggle spectrogram (`bands_kspec`): per chain, log mean power per band (0.59-2, 2-4, 4-8, 8-13,
13-20 Hz, total) over the centre ~10 s (rows 147-152: times 295-305 s of the 600 s window, row i
at offset + 1 + 2i s), the central 2 minutes (rows 120-179) and the whole window; relative powers;
centre-vs-window and 2 min-vs-window log ratios; std over time of log total power; unsigned
asymmetries; the window's NaN share. NaN-robust: nanmean, a span that is all NaN falls back to the
next wider span, a chain that is all NaN to the mean of the other chains, then to a constant.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import numpy as np
from scipy import fft as sp_fft

from core.schema import CHAINS, EEG_RATE_HZ, SPEC_FREQUENCIES_HZ, SPEC_WINDOW_ROWS
from features.kaggle_spectrogram import chain_layout
from features.montage import CHAIN_PAIRS, bipolar_montage, bipolar_names, fill_missing
from features.views.base import ViewBase, register_view

EEG_BANDS = (("dlo", 0.5, 2.0), ("dhi", 2.0, 4.0), ("theta", 4.0, 8.0), ("alpha", 8.0, 13.0),
             ("beta", 13.0, 20.0))
TOTAL = ("tot", 0.5, 20.0)
HIGH = ("high", 20.0, 45.0)
LOGP = tuple(f"logp-{b}" for b, *_ in (*EEG_BANDS, TOTAL, HIGH))
REL = tuple(f"rel-{b}" for b, *_ in EEG_BANDS)
SHAPE = ("rhythm", "acf", "period", "periodlag", "logkurt", "logll", "sef90", "peakf", "entropy", "logpsd")
PER_CHANNEL = LOGP + REL + SHAPE
DIFF_FEATURES = LOGP + ("rhythm", "acf", "period")  # also as "10v50": centre minus window
SUMMARY_FEATURES = LOGP + ("rhythm", "acf", "period", "logkurt", "logll")
EPS_POWER = 1e-10  # µV²/Hz: keeps log finite on flat (NaN-filled) channels, far below any EEG power


def _chain_slices() -> dict[str, list[int]]:
    names = bipolar_names(central=False)
    return {chain: [names.index(f"{a}-{b}") for a, b in CHAIN_PAIRS[chain]] for chain in CHAINS}


def _kurtosis(y: np.ndarray) -> np.ndarray:
    y = y - y.mean(axis=-1, keepdims=True)
    y2 = y * y
    m2 = y2.mean(axis=-1)
    m4 = (y2 * y2).mean(axis=-1)
    return np.where(m2 > 0, m4 / np.maximum(m2 * m2, 1e-30), 3.0)


def _acf_peak(y: np.ndarray, lo: int, hi: int, smooth_hz: float | None = None,
              rate: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (unbiased) autocorrelation of (..., N) signals: (max over lags lo..hi, its lag in s)."""
    n = y.shape[-1]
    y = y - y.mean(axis=-1, keepdims=True)
    spec = sp_fft.rfft(y, n=2 * n, axis=-1, workers=1)
    power = spec.real ** 2 + spec.imag ** 2
    if smooth_hz is not None:  # Gaussian low-pass of the signal = |H|^2 on its power spectrum
        f = np.fft.rfftfreq(2 * n, 1.0 / rate)
        power = power * np.exp(-((f / smooth_hz) ** 2)).astype(np.float32)
    acf = sp_fft.irfft(power, n=2 * n, axis=-1, workers=1)[..., : hi + 1]
    acf = acf / (n - np.arange(hi + 1)) * n
    zero = acf[..., :1]
    acf = np.where(zero > 0, acf / np.maximum(zero, 1e-30), 0.0)
    part = acf[..., lo: hi + 1]
    peak = part.max(axis=-1)
    # the shortest lag within 10% of the peak: a period, not one of its multiples
    lag = np.argmax(part >= peak[..., None] - 0.1 * np.abs(peak[..., None]), axis=-1)
    return peak, (lag + lo) / rate


class _FeatureVector(ViewBase):
    """A flat view: one row of named features per window; the names are its channels (so the swap
    index mirrors them, e.g. Fp1-F7_... <-> Fp2-F8_...); subclasses give the names as `_names`."""

    def channel_names(self) -> tuple[str, ...]:
        return self._names

    def output_shape(self) -> tuple[int, ...]:
        return (len(self._names),)


@dataclass(frozen=True)
class BandsEegView(_FeatureVector):
    """Band powers and shape measures of the bipolar EEG: one flat feature vector per window."""

    source: ClassVar[str] = "eeg"
    name: str
    clip_uv: float = 1024.0
    frame_s: float = 4.0
    hop_s: float = 2.0
    centre_s: tuple[float, float] = (20.0, 30.0)

    @cached_property
    def _pairs(self) -> tuple[str, ...]:
        return bipolar_names(central=True)

    @cached_property
    def _names(self) -> tuple[str, ...]:
        channels = self._pairs + CHAINS
        names = [f"{c}_{f}_{s}" for s in ("50s", "10s") for c in channels for f in PER_CHANNEL]
        names += [f"{c}_{f}_10v50" for c in channels for f in DIFF_FEATURES]
        for s in ("50s", "10s"):
            for f in SUMMARY_FEATURES:
                names += [f"{g}_{f}_{s}" for g in ("global", "focal", "front-back", "max", "asym-temporal",
                                                  "asym-para", "asym-hemi")]
        names += ["nan_share_50s", "nan_share_10s", "clip_share_50s"]
        return tuple(names)

    def compute(self, windows: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.concatenate([self._compute(np.asarray(w)) for w in np.array_split(
                windows, max(1, -(-len(windows) // 32)))]).astype(np.float32)

    # ---- the computation, vectorised over windows ----------------------------------------------
    def _compute(self, windows: np.ndarray) -> np.ndarray:
        n = len(windows)
        rate = EEG_RATE_HZ
        x, missing = fill_missing(bipolar_montage(windows.astype(np.float32, copy=False), central=True))
        clipped = np.abs(x) >= self.clip_uv
        x = np.clip(x, -self.clip_uv, self.clip_uv).transpose(0, 2, 1)  # (n, P, T)
        n_pairs, length = x.shape[1:]
        c0, c1 = (int(round(s * rate)) for s in self.centre_s)

        # One FFT of the whole window (ends joined first) gives a 100 Hz copy for the Welch PSD and the
        # 0.5-20 Hz signal and its parts at 50 Hz: ideal band-passes, decimation included.
        full = sp_fft.rfft(x - _endpoint_line(x), axis=-1, workers=1)

        def band_signal(lo: float, hi: float, rate_out: int) -> np.ndarray:
            m = length * rate_out // rate
            f = np.fft.rfftfreq(m, 1.0 / rate_out)
            keep = full[..., : m // 2 + 1] * ((f >= lo) & (f <= hi)).astype(np.float32)
            return sp_fft.irfft(keep, n=m, axis=-1, workers=1).astype(np.float32) * np.float32(m / length)

        # Welch frames at 100 Hz with a linear detrend each
        rate_w = 100
        x100 = band_signal(0.0, 50.0, rate_w)
        frame, hop = int(self.frame_s * rate_w), int(self.hop_s * rate_w)
        starts = np.arange(0, x100.shape[-1] - frame + 1, hop)
        frames = np.lib.stride_tricks.sliding_window_view(x100, frame, axis=-1)[..., starts, :]
        t = np.linspace(-1.0, 1.0, frame, dtype=np.float32)
        frames = frames - frames.mean(axis=-1, keepdims=True)
        frames = frames - (frames @ t / (t @ t))[..., None] * t
        window = np.hanning(frame + 2)[1:-1].astype(np.float32)
        spec = sp_fft.rfft(frames * window, axis=-1, workers=1)
        psd = (spec.real ** 2 + spec.imag ** 2) * np.float32(2.0 / (rate_w * (window ** 2).sum()))  # (n, P, frames, F)
        freqs = np.fft.rfftfreq(frame, 1.0 / rate_w)
        centre = (starts * rate >= c0 * rate_w) & ((starts + frame) * rate <= c1 * rate_w)

        down = 4
        n50 = length // down
        broad, delta, fast = (band_signal(lo, hi, rate // down) for lo, hi in ((0.5, 20.0), (0.5, 4.0), (2.0, 20.0)))
        m0, m1 = c0 // down, c1 // down

        chains = _chain_slices()
        spans = {}
        for span, frame_mask, (a, b) in (("50s", slice(None), (0, n50)), ("10s", centre, (m0, m1))):
            p = psd[:, :, frame_mask].mean(axis=2)  # (n, P, F)
            p = np.concatenate([p, np.stack([p[:, idx].mean(axis=1) for idx in chains.values()], axis=1)], axis=1)
            spectral = _spectral_features(p, freqs)
            total_frames = psd[:, :, frame_mask][..., (freqs >= TOTAL[1]) & (freqs < TOTAL[2])].sum(axis=-1)
            logpsd = np.log(total_frames * (freqs[1] - freqs[0]) + EPS_POWER).std(axis=-1)
            acf, _ = _acf_peak(delta[..., a:b], 12, 100)
            period, lag = _acf_peak(fast[..., a:b] ** 2, 17, 100, smooth_hz=4.0)
            seg = broad[..., a:b]
            logkurt = np.log(np.maximum(_kurtosis(seg), 1e-3))
            logll = np.log(np.abs(np.diff(seg, axis=-1)).mean(axis=-1) + 1e-6)
            shape = {"acf": acf, "period": period, "periodlag": lag, "logkurt": logkurt, "logll": logll,
                     "logpsd": logpsd}
            shape = {k: np.concatenate([v, np.stack([v[:, idx].mean(axis=1) for idx in chains.values()], axis=1)],
                                       axis=1) for k, v in shape.items()}
            values = {**spectral, **shape}
            spans[span] = values
        columns = []
        for span in ("50s", "10s"):
            columns.append(np.stack([spans[span][f] for f in PER_CHANNEL], axis=-1).reshape(n, -1))
        columns.append(np.stack([spans["10s"][f] - spans["50s"][f] for f in DIFF_FEATURES], axis=-1).reshape(n, -1))
        for span in ("50s", "10s"):
            columns.append(_summaries(spans[span], n_pairs, chains).reshape(n, -1))
        nan_share = missing.mean(axis=(1, 2)), missing[:, c0:c1].mean(axis=(1, 2))
        columns.append(np.stack([*nan_share, clipped.mean(axis=(1, 2))], axis=1))
        out = np.concatenate(columns, axis=1)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def _endpoint_line(x: np.ndarray, edge: int = 200) -> np.ndarray:
    """The line through the means of the first and last `edge` samples: removing it makes the window's
    ends meet, so the FFT band-pass does not ring on the wrap-around jump."""
    n = x.shape[-1]
    head = x[..., :edge].mean(axis=-1, keepdims=True)
    tail = x[..., -edge:].mean(axis=-1, keepdims=True)
    t = (np.arange(n, dtype=np.float32) - edge / 2) / (n - edge)
    return head + (tail - head) * t


def _spectral_features(p: np.ndarray, freqs: np.ndarray) -> dict[str, np.ndarray]:
    """(n, C, F) PSD -> band log powers, relative powers, edge, peak, entropy, rhythm per channel."""
    df = freqs[1] - freqs[0]
    out = {}
    powers = {}
    for name, lo, hi in (*EEG_BANDS, TOTAL, HIGH):
        powers[name] = p[..., (freqs >= lo) & (freqs < hi)].sum(axis=-1) * df
        out[f"logp-{name}"] = np.log(powers[name] + EPS_POWER)
    total = powers["tot"] + EPS_POWER
    for name, *_ in EEG_BANDS:
        out[f"rel-{name}"] = powers[name] / total
    in_band = (freqs >= TOTAL[1]) & (freqs < TOTAL[2])
    f_band = freqs[in_band]
    pb = p[..., in_band]
    share = pb / (pb.sum(axis=-1, keepdims=True) + EPS_POWER)
    cum = np.cumsum(share, axis=-1)
    out["sef90"] = f_band[np.minimum((cum < 0.9).sum(axis=-1), len(f_band) - 1)]
    out["peakf"] = f_band[pb.argmax(axis=-1)]
    out["entropy"] = -(share * np.log(share + 1e-12)).sum(axis=-1) / np.log(len(f_band))
    low = (f_band < 4.0)
    k = pb[..., low].argmax(axis=-1)
    padded = np.pad(pb[..., low], [(0, 0)] * (pb.ndim - 1) + [(1, 1)])
    peak = sum(np.take_along_axis(padded, (k + d)[..., None], axis=-1)[..., 0] for d in (0, 1, 2))
    out["rhythm"] = peak / (pb.sum(axis=-1) + EPS_POWER)
    return out


_FRONT = ("Fp1-F7", "Fp2-F8", "Fp1-F3", "Fp2-F4")
_BACK = ("T5-O1", "T6-O2", "P3-O1", "P4-O2")


def _summaries(values: dict[str, np.ndarray], n_pairs: int, chains: dict[str, list[int]]) -> np.ndarray:
    """Side-free summaries (n, len(SUMMARY_FEATURES), 7): global, focal, front-back, max, three asymmetries."""
    names = bipolar_names(central=True)
    front = [names.index(p) for p in _FRONT]
    back = [names.index(p) for p in _BACK]
    chain_at = {c: n_pairs + i for i, c in enumerate(CHAINS)}
    out = []
    for f in SUMMARY_FEATURES:
        v = values[f]
        pairs16 = v[:, :16]
        left = (v[:, chain_at["LL"]] + v[:, chain_at["LP"]]) / 2
        right = (v[:, chain_at["RL"]] + v[:, chain_at["RP"]]) / 2
        out.append(np.stack([
            pairs16.mean(axis=1),
            pairs16.max(axis=1) - np.median(pairs16, axis=1),
            v[:, front].mean(axis=1) - v[:, back].mean(axis=1),
            v[:, :n_pairs].max(axis=1),
            np.abs(v[:, chain_at["LL"]] - v[:, chain_at["RL"]]),
            np.abs(v[:, chain_at["LP"]] - v[:, chain_at["RP"]]),
            np.abs(left - right),
        ], axis=-1))
    return np.stack(out, axis=1)


# ---- the Kaggle spectrogram ----------------------------------------------------------------------
SPEC_BANDS = (("dlo", 0.0, 2.0), ("dhi", 2.0, 4.0), ("theta", 4.0, 8.0), ("alpha", 8.0, 13.0),
              ("beta", 13.0, 20.0), ("tot", 0.0, 20.0))
SPEC_SPANS = (("10s", 147, 153), ("2min", 120, 180), ("10min", 0, SPEC_WINDOW_ROWS))
SPEC_LOG_FLOOR = 1e-6


@dataclass(frozen=True)
class BandsKspecView(_FeatureVector):
    """Band summaries of the Kaggle spectrogram window per chain: one flat feature vector per window."""

    source: ClassVar[str] = "spectrogram"
    name: str

    @cached_property
    def _names(self) -> tuple[str, ...]:
        bands = [b for b, *_ in SPEC_BANDS]
        names = []
        for span, *_ in SPEC_SPANS:
            names += [f"{c}_logp-{b}_{span}" for c in CHAINS for b in bands]
            names += [f"{c}_rel-{b}_{span}" for c in CHAINS for b in bands[:-1]]
        for span in ("10v10min", "2v10min"):
            names += [f"{c}_logp-{b}_{span}" for c in CHAINS for b in bands]
        names += [f"{c}_logpsd_10min" for c in CHAINS]
        for span, *_ in SPEC_SPANS:
            names += [f"{g}_logp-{b}_{span}" for g in ("asym-temporal", "asym-para") for b in bands]
        names += ["nan_share_10min", "nan_share_10s"]
        return tuple(names)

    def compute(self, windows: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return self._compute(np.asarray(windows, dtype=np.float32)).astype(np.float32)

    def _compute(self, windows: np.ndarray) -> np.ndarray:
        x = np.maximum(chain_layout(windows), 0.0)  # (n, 4, 100, T), power
        freqs = np.asarray(SPEC_FREQUENCIES_HZ)
        n = len(x)
        logp = {}
        previous = None
        for span, a, b in reversed(SPEC_SPANS):  # widest first: a narrower span falls back to it
            band_means = np.stack([np.nanmean(x[:, :, (freqs >= lo) & (freqs < hi), a:b], axis=(2, 3))
                                   for _, lo, hi in SPEC_BANDS], axis=-1)  # (n, 4, bands)
            if previous is not None:
                band_means = np.where(np.isnan(band_means), previous, band_means)
            else:  # an all-NaN chain: the mean of the other chains, then a floor
                others = np.nanmean(band_means, axis=1, keepdims=True)
                band_means = np.where(np.isnan(band_means), others, band_means)
                band_means = np.where(np.isnan(band_means), SPEC_LOG_FLOOR, band_means)
            previous = band_means
            logp[span] = band_means
        columns = []
        for span, *_ in SPEC_SPANS:
            m = logp[span]
            columns.append(np.log(np.maximum(m, SPEC_LOG_FLOOR)).reshape(n, -1))
            # bands are means over their bins: weight by bin counts for a share of the 0-20 Hz power
            counts = np.array([((freqs >= lo) & (freqs < hi)).sum() for _, lo, hi in SPEC_BANDS])
            total = (m[..., -1] * counts[-1])[..., None]
            columns.append((m[..., :-1] * counts[:-1] / np.maximum(total, SPEC_LOG_FLOOR)).reshape(n, -1))
        log_span = {s: np.log(np.maximum(logp[s], SPEC_LOG_FLOOR)) for s in logp}
        columns.append((log_span["10s"] - log_span["10min"]).reshape(n, -1))
        columns.append((log_span["2min"] - log_span["10min"]).reshape(n, -1))
        total_t = np.nanmean(x[:, :, freqs < 20.0], axis=2)  # (n, 4, T)
        columns.append(np.nan_to_num(np.nanstd(np.log(np.maximum(total_t, SPEC_LOG_FLOOR)), axis=-1)))
        for span, *_ in SPEC_SPANS:
            ls = log_span[span]
            columns.append(np.abs(ls[:, 0] - ls[:, 1]))  # LL vs RL
            columns.append(np.abs(ls[:, 2] - ls[:, 3]))  # LP vs RP
        nan = np.isnan(windows)
        columns.append(np.stack([nan.mean(axis=(1, 2)), nan[:, 147:153].mean(axis=(1, 2))], axis=1))
        out = np.concatenate(columns, axis=1)
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


register_view(BandsEegView("bands_eeg"), BandsKspecView("bands_kspec"))
