"""The Kaggle spectrogram view: layout per chain, log clipping, NaN fill, pooling, and the table swap."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.schema import SPEC_COLUMNS
from features.kaggle_spectrogram import (
    TABLE_SWAP_INDEX,
    KaggleSpecConfig,
    chain_layout,
    kaggle_spectrogram_view,
    swap_spectrogram_table,
)
from features.montage import swap_hemispheres
from features.views import get_view


def windows(n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(2.0, 5.0, (n, 300, 400)).astype(np.float32)


def test_chain_layout_puts_each_chain_column_block_on_its_own_channel():
    x = windows(1)
    layout = chain_layout(x)
    assert layout.shape == (1, 4, 100, 300)
    rp_1992 = SPEC_COLUMNS.index("RP_19.92")
    np.testing.assert_array_equal(layout[0, 3, 99], x[0, :, rp_1992])
    np.testing.assert_array_equal(layout[0, 1, 0], x[0, :, SPEC_COLUMNS.index("RL_0.59")])


def test_view_is_standardised_per_window_and_fills_nan():
    x = windows()
    x[0, 100:200] = np.nan  # a long NaN run, as in real files
    x[1, :, :5] = 1e9  # beyond exp(8): clipped before the log
    out = kaggle_spectrogram_view(x, KaggleSpecConfig())
    assert out.shape == (2, 4, 100, 300) and np.isfinite(out).all()
    assert (out[0, :, :, 100:200] == 0).all()
    assert abs(out[1].mean()) < 1e-3 and abs(out[1].std() - 1) < 1e-3
    per_chain = kaggle_spectrogram_view(x, KaggleSpecConfig(normalise="chain"))
    np.testing.assert_allclose(per_chain[1].mean(axis=(1, 2)), 0, atol=1e-3)


def test_one_sided_power_stays_one_sided_with_window_normalisation():
    x = windows(1)
    x[0, :, :100] *= 20  # LL louder
    out = kaggle_spectrogram_view(x, KaggleSpecConfig())
    assert out[0, 0].mean() > out[0, 1].mean() + 1


def test_pooling_shape():
    assert kaggle_spectrogram_view(windows(1), KaggleSpecConfig(pool=4)).shape == (1, 4, 25, 75)


def test_table_swap_mirrors_columns_and_commutes_with_the_view():
    assert SPEC_COLUMNS[TABLE_SWAP_INDEX[SPEC_COLUMNS.index("LL_0.59")]] == "RL_0.59"
    assert SPEC_COLUMNS[TABLE_SWAP_INDEX[SPEC_COLUMNS.index("RP_4.1")]] == "LP_4.1"
    x = windows()
    np.testing.assert_array_equal(swap_spectrogram_table(swap_spectrogram_table(x)), x)
    cfg = KaggleSpecConfig()
    np.testing.assert_allclose(kaggle_spectrogram_view(swap_spectrogram_table(x), cfg),
                               swap_hemispheres(kaggle_spectrogram_view(x, cfg), (1, 0, 3, 2), axis=1), atol=1e-5)


def test_centre_rows_keep_the_labelled_centre_of_the_window():
    """centre_rows=60 is the view of rows 120-179 (the centre 2 minutes) alone, normalised on them."""
    x = windows()
    x[:, 147:153] *= 50  # the labelled 10 s, loud: a whole-window 4x4 pool would dilute it
    cfg = KaggleSpecConfig(pool=2, centre_rows=60)
    out = kaggle_spectrogram_view(x, cfg)
    assert out.shape == (2, 4, 50, 30)
    np.testing.assert_allclose(out, kaggle_spectrogram_view(x[:, 120:180], KaggleSpecConfig(pool=2)), atol=1e-6)
    assert out[:, :, :, 13:16].mean() > out.mean() + 1
    assert get_view("kaggle_spec_2min_tiny").output_shape() == (4, 50, 30)


def test_centre_rows_crop_the_nan_mask_alike():
    x = windows(1)
    x[0, 120:124, :100] = np.nan  # LL NaN in the crop's first 8 s only
    view = replace(get_view("kaggle_spec_2min_tiny"), nan_mask=True)
    share = view.compute(x)[0, -1]
    assert share.shape == (50, 30)
    np.testing.assert_allclose(share[:, :2], 0.25)
    assert (share[:, 2:] == 0).all()
