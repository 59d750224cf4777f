"""Votes → probabilities, voter counts, and evaluation samples (label rows grouped per recording)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.schema import HIGH_VOTE_MIN, TARGET_COLUMNS, VOTE_COLUMNS


def add_vote_targets(table: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with `n_votes` and the six `target_*` probability columns."""
    votes = table[list(VOTE_COLUMNS)].to_numpy(dtype=np.float64)
    n_votes = votes.sum(axis=1)
    out = table.copy()
    out["n_votes"] = n_votes.astype(np.int64)
    probs = votes / np.where(n_votes > 0, n_votes, 1.0)[:, None]
    for i, col in enumerate(TARGET_COLUMNS):
        out[col] = probs[:, i]
    return out


def is_high_vote(table: pd.DataFrame, min_votes: int = HIGH_VOTE_MIN) -> pd.Series:
    return table["n_votes"] >= min_votes


def samples(train: pd.DataFrame) -> pd.DataFrame:
    """One evaluation sample per (eeg_id, identical vote counts): the group's middle label row.

    Label rows of one annotation share their votes and differ only by a 2 s shift, so scoring
    every row would weight long annotations by their length; grouping keeps one sample per
    annotation. `n_rows` keeps the group size; the representative is the row with the median
    offset, whose 10 s centre lies inside the annotated span.
    """
    table = train if "n_votes" in train.columns else add_vote_targets(train)
    table = table.sort_values(["eeg_id", "eeg_label_offset_seconds", "label_id"], kind="stable")
    keys = ["eeg_id", *VOTE_COLUMNS]
    group = table.groupby(keys, sort=False, observed=True)
    position = group.cumcount()
    size = group["label_id"].transform("size")
    middle = table[position == (size - 1) // 2].copy()
    middle["n_rows"] = size[middle.index].to_numpy()
    return middle.sort_values(["eeg_id", "eeg_label_offset_seconds"], kind="stable").reset_index(drop=True)


def recordings(train: pd.DataFrame) -> pd.DataFrame:
    """Per-eeg aggregation: patient, number of label rows and samples, mean target, max voters."""
    table = train if "n_votes" in train.columns else add_vote_targets(train)
    agg = {"patient_id": ("patient_id", "first"), "n_label_rows": ("label_id", "size"),
           "max_votes": ("n_votes", "max")}
    agg.update({col: (col, "mean") for col in TARGET_COLUMNS})
    out = table.groupby("eeg_id", sort=True).agg(**agg).reset_index()
    out["n_samples"] = samples(table).groupby("eeg_id").size().reindex(out["eeg_id"]).to_numpy()
    return out
