"""Features for the LightGBM stacker: members' probabilities plus cheap summaries across members.

Only what is known at test time goes in (no voter counts). Trees are blind to monotone transforms
of one feature, so the summaries are chosen to add information a split cannot build from one
column: spread, extremes, entropy and disagreement across members.
"""

from __future__ import annotations

import numpy as np

from core.metric import kl_per_row
from core.schema import CLASSES

FEATURE_VERSION = 1
FLOOR = 1e-6


def meta_features(probs: np.ndarray, raw_members: np.ndarray) -> np.ndarray:
    """(M, N, 6) probabilities → (N, F) float32: the `raw_members`' probabilities, then summaries."""
    n_rows = probs.shape[1]
    log_p = np.log(np.clip(probs, FLOOR, 1.0))
    mean = probs.mean(axis=0)
    mean_c = np.clip(mean, FLOOR, 1 - FLOOR)
    member_entropy = -(probs * log_p).sum(axis=2)  # (M, N)
    mean_entropy = -(mean_c * np.log(mean_c)).sum(axis=1)
    top = np.sort(mean, axis=1)
    agreement = (probs.argmax(axis=2) == mean.argmax(axis=1)).mean(axis=0)
    columns = [
        probs[raw_members].transpose(1, 0, 2).reshape(n_rows, -1),
        np.log(mean_c) - np.log1p(-mean_c),          # log-odds of the mean
        log_p.mean(axis=0),                           # geometric mean (log)
        probs.std(axis=0), probs.min(axis=0), probs.max(axis=0),
        mean_entropy[:, None],
        member_entropy.mean(axis=0)[:, None],
        (mean_entropy - member_entropy.mean(axis=0))[:, None],  # disagreement (generalised JS)
        agreement[:, None],
        (top[:, -1] - top[:, -2])[:, None],          # margin of the mean
    ]
    return np.hstack(columns).astype(np.float32)


def feature_names(member_names: list[str], raw_members: np.ndarray) -> list[str]:
    names = [f"{member_names[m]}:{c}" for m in raw_members for c in CLASSES]
    for stat in ("logodds_mean", "log_gmean", "std", "min", "max"):
        names += [f"{stat}:{c}" for c in CLASSES]
    return names + ["entropy_mean", "entropy_members", "disagreement", "agreement", "margin"]


def rank_members(probs: np.ndarray, targets: np.ndarray, rows: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the `keep` members with the lowest KL on `rows` (fit rows only: no peeking)."""
    if probs.shape[0] <= keep:
        return np.arange(probs.shape[0])
    kl = np.array([kl_per_row(targets[rows], member[rows]).mean() for member in probs])
    return np.sort(np.argsort(kl, kind="stable")[:keep])
