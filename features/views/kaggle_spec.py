"""The competition's 10-minute spectrogram as one image per chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from core.schema import CHAINS, SPEC_WINDOW_ROWS
from features.kaggle_spectrogram import (
    FREQS_PER_CHAIN,
    KaggleSpecConfig,
    centre_rows,
    chain_layout,
    kaggle_spectrogram_view,
)
from features.views.base import ViewBase, register_view


@dataclass(frozen=True)
class KaggleSpecView(ViewBase):
    """The competition's 10-minute spectrogram, one image per chain."""

    source: ClassVar[str] = "spectrogram"
    name: str
    spec: KaggleSpecConfig = KaggleSpecConfig()
    nan_mask: bool = False  # extra channel: share of chains that were NaN at each (frequency, time)
    # Cache the spectrogram files' table rows and compute windows at batch time (features.spec_tables)
    # instead of one image per label row: 5x+ less disk for full-size images, whose windows overlap.
    cache_tables: bool = False

    def channel_names(self) -> tuple[str, ...]:
        return CHAINS + (("nan",) if self.nan_mask else ())

    def output_shape(self) -> tuple[int, ...]:
        k = self.spec.pool
        return (len(self.channel_names()), FREQS_PER_CHAIN // k, (self.spec.centre_rows or SPEC_WINDOW_ROWS) // k)

    def compute(self, windows: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
        images = kaggle_spectrogram_view(windows, self.spec)
        if not self.nan_mask:
            return images
        layout = centre_rows(chain_layout(np.asarray(windows)), self.spec.centre_rows)
        share = np.isnan(layout).mean(axis=1, keepdims=True, dtype=np.float32)
        k = self.spec.pool
        f, t = images.shape[-2:]
        share = share[..., : f * k, : t * k].reshape(len(share), 1, f, k, t, k).mean(axis=(3, 5))
        return np.concatenate([images, share], axis=1)


register_view(
    KaggleSpecView("kaggle_spec", cache_tables=True),
    KaggleSpecView("kaggle_spec_tiny", KaggleSpecConfig(pool=4)),
    KaggleSpecView("kaggle_spec_2min_tiny", KaggleSpecConfig(pool=2, centre_rows=60)),
)
