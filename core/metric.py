"""Kaggle's KL-divergence metric (ARCHITECTURE.md "Metric") and high-vote scoring."""

from __future__ import annotations

import numpy as np

from core.schema import HIGH_VOTE_MIN

EPS = 1e-15


def kl_per_row(targets: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """Sum over classes of t * log(t / p); p clipped to [1e-15, 1-1e-15], terms with t == 0 are 0."""
    t = np.asarray(targets, dtype=np.float64)
    p = np.clip(np.asarray(preds, dtype=np.float64), EPS, 1 - EPS)
    if t.shape != p.shape:
        raise ValueError(f"targets {t.shape} and predictions {p.shape} differ in shape")
    safe_t = np.where(t > 0, t, 1.0)
    terms = np.where(t > 0, t * np.log(safe_t / p), 0.0)
    return terms.sum(axis=1)


def kl_divergence(targets: np.ndarray, preds: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean KL over rows (Kaggle's score), optionally weighted."""
    rows = kl_per_row(targets, preds)
    if weights is None:
        return float(rows.mean())
    w = np.asarray(weights, dtype=np.float64)
    return float((rows * w).sum() / w.sum())


def high_vote_mask(n_votes: np.ndarray, min_votes: int = HIGH_VOTE_MIN) -> np.ndarray:
    return np.asarray(n_votes) >= min_votes


def score(targets: np.ndarray, preds: np.ndarray, n_votes: np.ndarray, min_votes: int = HIGH_VOTE_MIN) -> dict:
    """KL on all rows and on rows with at least `min_votes` voters (NaN when there are none)."""
    high = high_vote_mask(n_votes, min_votes)
    return {
        "kl_all": kl_divergence(targets, preds),
        "kl_high": kl_divergence(targets[high], preds[high]) if high.any() else float("nan"),
        "n_all": int(len(targets)),
        "n_high": int(high.sum()),
        "min_votes": int(min_votes),
    }


def class_prior_predictions(targets: np.ndarray, n_rows: int) -> np.ndarray:
    """The constant predictor: the mean target distribution, repeated."""
    prior = np.asarray(targets, dtype=np.float64).mean(axis=0)
    return np.tile(prior / prior.sum(), (n_rows, 1))


def normalise_rows(probs: np.ndarray) -> np.ndarray:
    """Clip negatives and rescale each row to sum to 1, as every written prediction must (no renormalising metric)."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), 0, None)
    return probs / probs.sum(axis=1, keepdims=True)
