"""Ensemble selection (Caruana et al., ICML 2004): greedy forward selection with replacement.

Each step adds the member whose inclusion most lowers the fit-row KL of the running average;
the ensemble is the best prefix. Adding a member several times is how it earns a larger weight.
Bagging repeats the selection on random subsets of the members and averages the bags' ensembles
(each bag counts once, however long its prefix), which keeps one lucky member from taking everything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.metric import EPS


@dataclass(frozen=True)
class SelectionConfig:
    steps: int = 50
    bags: int = 1
    bag_fraction: float = 0.5
    seed: int = 0


@dataclass
class SelectionFit:
    counts: np.ndarray     # times each member was added, over all bags
    weights: np.ndarray    # mean over bags of each bag's count share
    fit_kl: float = float("nan")

    def predict(self, probs: np.ndarray) -> np.ndarray:
        blended = np.tensordot(self.weights, probs, axes=1)
        return blended / blended.sum(axis=1, keepdims=True)

    def describe(self, names: list[str]) -> dict:
        chosen = [j for j, c in enumerate(self.counts) if c > 0]
        return {"counts": {names[j]: int(self.counts[j]) for j in chosen},
                "weights": {names[j]: round(float(self.weights[j]), 6) for j in chosen}, "fit_kl": self.fit_kl}


class _SparseTargets:
    """Only (row, class) cells with a positive target enter the KL: precompute them once."""

    def __init__(self, probs: np.ndarray, targets: np.ndarray, row_weights: np.ndarray):
        rows, cols = np.nonzero((targets > 0) & (row_weights[:, None] > 0))
        weight = row_weights[rows] / row_weights[row_weights > 0].sum()
        self.mass = weight * targets[rows, cols]
        self.entropy = float(self.mass @ np.log(targets[rows, cols]))
        self.cells = probs[:, rows, cols]  # (M, cells)

    def kl(self, summed: np.ndarray, count: int) -> np.ndarray:
        """KL of the average `summed / count`; `summed` may be (cells,) or (M, cells)."""
        return self.entropy - np.log(np.clip(summed / count, EPS, None)) @ self.mass


def select_ensemble(probs: np.ndarray, targets: np.ndarray, row_weights: np.ndarray,
                    config: SelectionConfig) -> SelectionFit:
    """Pooled member counts over `bags` greedy selections (all members when bags == 1)."""
    sparse = _SparseTargets(probs, targets, row_weights)
    n_members = probs.shape[0]
    rng = np.random.default_rng(config.seed)
    bags = max(config.bags, 1)
    counts = np.zeros(n_members, dtype=np.int64)
    weights = np.zeros(n_members)
    for _ in range(bags):
        pool = np.arange(n_members)
        if bags > 1:
            size = max(1, int(round(config.bag_fraction * n_members)))
            pool = np.sort(rng.choice(n_members, size=size, replace=False))
        bag_counts = _greedy(sparse.cells[pool], sparse, config.steps)
        counts[pool] += bag_counts
        weights[pool] += bag_counts / bag_counts.sum() / bags
    return SelectionFit(counts, weights, float(sparse.kl(weights @ sparse.cells, 1)))


def _greedy(cells: np.ndarray, sparse: _SparseTargets, steps: int) -> np.ndarray:
    """Counts of the best prefix of `steps` greedy additions with replacement."""
    summed = np.zeros(cells.shape[1])
    history, losses = [], []
    for step in range(1, steps + 1):
        candidate_kl = sparse.kl(summed[None, :] + cells, step)
        best = int(np.argmin(candidate_kl))
        summed += cells[best]
        history.append(best)
        losses.append(float(candidate_kl[best]))
    stop = int(np.argmin(losses)) + 1
    return np.bincount(history[:stop], minlength=cells.shape[0])
