"""The Kaggle spectrogram view: 600 s windows of the 400-column table -> (4 chains, 100 freq, 300 time).

Power is log-compressed with clipping (log(clip(x, e^-4, e^8)), as the public notebooks) and
standardised per window over all four chains together, so a one-sided pattern (LPD, LRDA) stays
louder on its side; "chain" standardises each chain alone, as the notebooks do. NaN (long runs in
real files) becomes the window mean, i.e. 0 after standardisation.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from core.schema import CHAINS, SPEC_COLUMNS, SPEC_FREQUENCIES_HZ
from features.montage import swap_hemispheres, swap_index

FREQS_PER_CHAIN = len(SPEC_FREQUENCIES_HZ)
TABLE_SWAP_INDEX = swap_index(SPEC_COLUMNS)  # LL_* <-> RL_*, LP_* <-> RP_* on the 400 table columns


@dataclass(frozen=True)
class KaggleSpecConfig:
    log_min: float = -4.0
    log_max: float = 8.0
    normalise: str = "window"  # "window": one mean/std per window; "chain": per chain (notebooks)
    pool: int = 1  # average-pool frequency and time by this factor (tiny CPU variants)
    centre_rows: int = 0  # > 0: only the centre this many 2 s rows of the 600 s window (0: all 300)


def chain_layout(windows: np.ndarray) -> np.ndarray:
    """(n, T, 400) table rows in SPEC_COLUMNS order -> (n, 4, 100, T), frequency ascending on axis 2."""
    n, t, _ = windows.shape
    return windows.reshape(n, t, len(CHAINS), FREQS_PER_CHAIN).transpose(0, 2, 3, 1)


def kaggle_spectrogram_view(windows: np.ndarray, cfg: KaggleSpecConfig) -> np.ndarray:
    """(n, 300, 400) power windows, NaN kept -> (n, 4, 100 // pool, rows // pool) float32, no NaN, where
    rows is `centre_rows` or 300."""
    if cfg.normalise not in ("window", "chain"):
        raise ValueError(f"normalise must be 'window' or 'chain', got {cfg.normalise!r}")
    axes = (1, 2, 3) if cfg.normalise == "window" else (2, 3)
    x = centre_rows(chain_layout(np.asarray(windows, dtype=np.float32)), cfg.centre_rows)
    x = np.log(np.clip(x, math.exp(cfg.log_min), math.exp(cfg.log_max)))
    with warnings.catch_warnings():  # an all-NaN chain gives NaN statistics; it becomes 0 below
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(x, axis=axes, keepdims=True)
        std = np.nanstd(x, axis=axes, keepdims=True)
    x = np.nan_to_num((x - mean) / (std + np.float32(1e-6)), nan=0.0)
    return _average_pool(x, cfg.pool) if cfg.pool > 1 else x


def centre_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """(..., T) -> (..., rows): the centre rows of the window (all of them when rows is 0). The labelled
    10 s are 5 of the 300 rows; a small image of the whole window pools them away."""
    if not rows:
        return x
    first = (x.shape[-1] - rows) // 2
    return x[..., first: first + rows]


def _average_pool(x: np.ndarray, k: int) -> np.ndarray:
    n, c, f, t = x.shape
    x = x[:, :, : f // k * k, : t // k * k]
    return x.reshape(n, c, f // k, k, t // k, k).mean(axis=(3, 5))


def swap_spectrogram_table(values: np.ndarray) -> np.ndarray:
    """Mirror the raw table (..., 400) left <-> right: the LL_* columns take RL_*'s values and so on."""
    return swap_hemispheres(values, TABLE_SWAP_INDEX, axis=-1)
