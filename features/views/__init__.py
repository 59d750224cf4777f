"""Named views: windows in, model-ready arrays (n, C, ...) out. One module per family of views.

| name            | source      | output per row     | channels                                   |
|-----------------|-------------|--------------------|--------------------------------------------|
| eeg_spec        | eeg         | (8, 64, 124)       | LL RL LP RP @ 50 s, then @ centre 10 s      |
| eeg_spec_stft   | eeg         | (8, 64, 124)       | same, linear-frequency STFT rows            |
| eeg_spec_pairmax| eeg         | (8, 64, 124)       | same, dB re each pair's maximum (notebooks) |
| eeg_spec_tiny   | eeg         | (8, 32, 50)        | same, small                                 |
| kaggle_spec     | spectrogram | (4, 100, 300)      | LL RL LP RP, frequency x time (table cache) |
| kaggle_spec_tiny| spectrogram | (4, 25, 75)        | same, 4x4 average-pooled                    |
| kaggle_spec_2min_tiny | spectrogram | (4, 50, 30) | same, centre 2 minutes, 2x2 average-pooled |
| wave            | eeg         | (17, 2500)         | 16 bipolar pairs at 50 Hz + NaN share       |
| wave_tiny       | eeg         | (17, 1000)         | same at 20 Hz, 0.5-8 Hz                     |
| raw_image       | eeg         | (16, 10, 1000)     | 16 bipolar pairs, 200 Hz, 10 rows per pair  |
| raw_image_tiny  | eeg         | (16, 5, 500)       | same at 50 Hz, 5 rows per pair              |
| pair_stft       | eeg         | (32, 51, 198)      | 16 pairs @ 50 s, then @ centre 10 s; STFT   |
| pair_stft_tiny  | eeg         | (32, 32, 64)       | same, small                                 |
| pair_mel        | eeg         | (32, 64, 309)      | same, 64 mel bands 0.53-30 Hz               |
| pair_mel_tiny   | eeg         | (32, 32, 64)       | same, small                                 |
| bands_eeg       | eeg         | (1359,)            | band powers, shape measures (views/bands.py)|
| bands_kspec     | spectrogram | (222,)             | Kaggle spectrogram band summaries           |
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.schema import EEG_RATE_HZ
from features.views import bands, eeg_spec, kaggle_spec, pairs, wave  # noqa: F401  (each registers its views)
from features.views.base import VIEWS, ViewBase, get_view, register_view
from features.views.eeg_spec import EegSpecView
from features.views.kaggle_spec import KaggleSpecView
from features.views.pairs import PairSpecView, RawImageView
from features.views.wave import WaveView

View = ViewBase

__all__ = ["VIEWS", "View", "ViewBase", "EegSpecView", "KaggleSpecView", "PairSpecView", "RawImageView", "WaveView",
           "compute_view", "get_view", "register_view", "zeros_batch"]


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
    starts = None if offsets_s is None else np.round(np.asarray(offsets_s) * EEG_RATE_HZ).astype(np.int64)
    return view.compute(windows, starts)


def zeros_batch(names: Sequence[str]) -> torch.Tensor:
    """A (1, C, ...) batch of zeros shaped like the named views concatenated on channels (as a loader
    gives them): enough to find the input width of a model without any data."""
    views = [get_view(n) for n in names]
    return torch.zeros(1, sum(v.output_shape()[0] for v in views), *views[0].output_shape()[1:])
