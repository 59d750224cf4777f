"""Which labelled windows a training epoch draws: one or k per recording, or all; stage 2 high-vote only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from oof.datasets import epoch_rows


def label_rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    eeg = np.repeat(np.arange(10), np.arange(1, 11))  # recording i has i + 1 windows
    return pd.DataFrame({"eeg_id": eeg, "label_id": np.arange(len(eeg)), "n_votes": rng.integers(1, 20, len(eeg))})


def test_one_window_per_recording_by_default_and_redrawn_each_epoch():
    rows = label_rows()
    first, second = (epoch_rows(rows, e, 1, 10, seed=0) for e in (0, 1))
    assert sorted(first["eeg_id"]) == list(range(10))
    assert set(first["label_id"]) != set(second["label_id"])


def test_k_windows_per_recording_caps_each_recording_at_k():
    picked = epoch_rows(label_rows(), 0, 1, 10, seed=0, per_recording=3)
    counts = picked.groupby("eeg_id").size()
    assert counts.to_dict() == {i: min(i + 1, 3) for i in range(10)}
    assert picked["label_id"].is_unique


def test_zero_takes_every_window_shuffled_and_stage_2_only_high_votes():
    rows = label_rows()
    everything = epoch_rows(rows, 0, 1, 10, seed=0, per_recording=0)
    assert sorted(everything["label_id"]) == list(rows["label_id"])
    assert list(everything["label_id"]) != list(rows["label_id"])  # shuffled
    high = epoch_rows(rows, 0, 2, 10, seed=0, per_recording=0)
    assert set(high["label_id"]) == set(rows.loc[rows["n_votes"] >= 10, "label_id"])
