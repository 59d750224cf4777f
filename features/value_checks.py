"""Value checks of a recording as read: what cannot be a measurement becomes NaN, and each finding is counted.

Real files hold huge but genuine artifacts (10^4 µV); a corrupt data page holds float32 bit patterns
(up to 3.4e38, inf, NaN, and tiny values between them). The limits are physical, not fitted to any
data set, so a louder recording (or `synth --gain 3`) passes clean:

- EEG: a value beyond ±EEG_IMPLAUSIBLE_UV (or inf) is no voltage an EEG amplifier records. It and the
  run of samples around it (up to CORRUPT_GAP_S between such values: a corrupt page mixes them with
  tiny ones) become NaN, which the views fill and mask like any gap. A scalp channel that is more than
  EEG_LARGE_UV from its median in at least LARGE_SHARE of its samples is noted (the views clip
  bipolar pairs at ±1024 µV); its values are kept.
- Spectrogram (power): inf, a negative value or one above SPEC_IMPLAUSIBLE ((EEG_IMPLAUSIBLE_UV)²)
  becomes NaN with the same run rule (rows). A file whose median power is above SPEC_MEDIAN_LIMIT is
  noted: every view clips it to one value (a scale or unit error); its values are kept.

Each check returns `Finding`s; `features.kaggle_data` turns them into QualityNotes for the job's summary.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from core.schema import EEG_COLUMNS, EEG_RATE_HZ

EEG_IMPLAUSIBLE_UV = 1e5
EEG_LARGE_UV = 2000.0
LARGE_SHARE = 0.10
CORRUPT_GAP_S = 1.0
SPEC_CORRUPT_GAP_ROWS = 2
SPEC_IMPLAUSIBLE = EEG_IMPLAUSIBLE_UV ** 2
SPEC_MEDIAN_LIMIT = 1e5  # real files' median power is ~1-100; the views saturate at e^8 (~3000)
SCALP_CHANNELS = len(EEG_COLUMNS) - 1
MEDIAN_STRIDE = 16  # every 16th sample (12.5 Hz) gives as good a centre and share, 16x cheaper


class Finding(NamedTuple):
    kind: str  # "implausible" (set to NaN), "large-channel", "large-scale" (noted, kept)
    message: str
    values: int  # how many values it concerns


def check_eeg(signal: np.ndarray) -> tuple[np.ndarray, list[Finding]]:
    """(T, 20) referential µV -> (the signal with impossible values as NaN, findings)."""
    signal, findings = _blank_impossible(signal, np.abs(signal) > EEG_IMPLAUSIBLE_UV, EEG_COLUMNS,
                                         int(CORRUPT_GAP_S * EEG_RATE_HZ), f"beyond ±{EEG_IMPLAUSIBLE_UV:.0e} µV")
    large = _large_channels(signal[:, :SCALP_CHANNELS])
    if large:
        share = ", ".join(f"{EEG_COLUMNS[c]} {s:.0%}" for c, s, _ in large)
        findings.append(Finding("large-channel", f"channels more than ±{EEG_LARGE_UV:.0f} µV from their median "
                                f"in >= {LARGE_SHARE:.0%} of samples: {share}; kept (the views clip pairs)",
                                sum(n for *_, n in large)))
    return signal, findings


def check_spectrogram(values: np.ndarray, columns) -> tuple[np.ndarray, list[Finding]]:
    """(T, 400) power -> (the table with impossible values as NaN, findings)."""
    with np.errstate(invalid="ignore"):
        impossible = (values < 0) | (values > SPEC_IMPLAUSIBLE)
    values, findings = _blank_impossible(values, impossible, columns, SPEC_CORRUPT_GAP_ROWS,
                                         f"negative or above {SPEC_IMPLAUSIBLE:.0e}")
    finite = values[np.isfinite(values)]
    median = float(np.median(finite)) if finite.size else 0.0
    if median > SPEC_MEDIAN_LIMIT:
        findings.append(Finding("large-scale", f"median power {median:.1e}, above {SPEC_MEDIAN_LIMIT:.0e} (real "
                                f"files: ~1-100): every view saturates; a scale or unit error? kept", finite.size))
    return values, findings


def _blank_impossible(values: np.ndarray, beyond: np.ndarray, columns, max_gap: int,
                      what: str) -> tuple[np.ndarray, list[Finding]]:
    """Set the `beyond` values (inf among them) and the runs between them (gaps <= max_gap) to NaN."""
    bad = beyond  # inf is beyond every limit
    if not bad.any():
        return values, []
    finite_bad = np.abs(np.where(bad & np.isfinite(values), values, 0))
    peak = f"up to {float(finite_bad.max()):.1e}" + (", and inf" if np.isinf(values).any() else "")
    values = values.copy()
    blanked = []
    for c in np.flatnonzero(bad.any(axis=0)):
        before = np.isnan(values[:, c]).sum()
        for first, last in _runs(np.flatnonzero(bad[:, c]), max_gap):
            values[first:last + 1, c] = np.nan
        blanked.append((columns[c], int(np.isnan(values[:, c]).sum() - before)))
    n = sum(count for _, count in blanked)
    names = ", ".join(f"{name} ({count})" for name, count in blanked[:6]) + (", ..." if len(blanked) > 6 else "")
    return values, [Finding("implausible", f"values that cannot be measurements (inf or {what}; {peak}) "
                            f"in {names}: {n} set to NaN, filled and masked like a gap", n)]


def _runs(positions: np.ndarray, max_gap: int) -> list[tuple[int, int]]:
    """(first, last) of each group of sorted positions whose neighbours are at most max_gap apart."""
    breaks = np.flatnonzero(np.diff(positions) > max_gap)
    return list(zip(positions[np.r_[0, breaks + 1]], positions[np.r_[breaks, len(positions) - 1]], strict=True))


def _large_channels(scalp: np.ndarray) -> list[tuple[int, float, int]]:
    """(channel, share, about how many samples) of scalp channels often far from their own median,
    estimated on every MEDIAN_STRIDE-th sample (a note, not a fix: an hour of EEG costs ~10 ms)."""
    sample = scalp[::MEDIAN_STRIDE]
    missing = np.isnan(sample)
    with warnings.catch_warnings():  # all-NaN channels are the NaN checks' business
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmedian(sample, axis=0) if missing.any() else np.median(sample, axis=0)
    with np.errstate(invalid="ignore"):
        far = (np.abs(sample - centre) > EEG_LARGE_UV).sum(axis=0)
    share = far / np.maximum(len(sample) - missing.sum(axis=0), 1)
    return [(int(c), float(share[c]), int(round(share[c] * len(scalp)))) for c in np.flatnonzero(share >= LARGE_SHARE)]
