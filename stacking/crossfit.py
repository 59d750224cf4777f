"""Honest out-of-fold fitting for stackers that fit on weighted rows and predict from member probabilities."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from stacking.members import MemberSet
from stacking.policy import RowPolicy


class Fitted(Protocol):
    def predict(self, probs: np.ndarray) -> np.ndarray: ...

    def describe(self, names: list[str]) -> dict: ...


class Fitter(Protocol):
    def __call__(self, probs: np.ndarray, targets: np.ndarray, row_weights: np.ndarray, seed: int) -> Fitted: ...


# How simple each configuration is, for the robust choice (stacking.honest): fewer fitted degrees of
# freedom, and fewer ways to fit the CV rows' class mix rather than the test set's, rank lower.
COMPLEXITY = {"blend:plain": 0, "blend:temperature": 1, "blend:bias": 2, "blend:bias+temperature": 3,
              "selection": 4, "logit": 5, "mlp": 6, "mlp:patient": 6.5, "lgbm": 7}
UNRANKED = 10


@dataclass
class StackerRun:
    """One stacker under one row policy: OOF predictions (each fold from a fit on the other folds),
    test predictions, and what the final fit learned."""

    method: str
    policy: RowPolicy
    oof: np.ndarray
    test: np.ndarray | None = None
    details: dict = field(default_factory=dict)
    # What predicts the test set (saved by stacking.saved_stacker): the final fit for blend and
    # selection; for LightGBM the fold models as (booster, raw member indices) pairs, in fold order.
    fitted: object = None
    variant: str = ""                  # e.g. blend's "bias+temperature"; "" when the method has one form
    row_kl: np.ndarray | None = field(default=None, repr=False)  # cached by stacking.honest.Scorer

    @property
    def key(self) -> str:
        return f"{self.method}:{self.variant}" if self.variant else self.method

    @property
    def complexity(self) -> float:
        return COMPLEXITY.get(self.key, UNRANKED)

    @property
    def label(self) -> str:
        return f"{self.key} ({self.policy.label})"


def cross_fit(members: MemberSet, policy: RowPolicy, fit: Fitter, seed: int = 0) -> np.ndarray:
    """OOF predictions: for each fold, fit on the other folds' policy rows and predict the fold."""
    weights = policy.row_weights(members.n_votes, members.recordings)
    oof = np.empty_like(members.targets)
    for k in members.folds:
        held = members.fold == k
        model = fit(members.probs, members.targets, np.where(held, 0.0, weights), seed + int(k))
        oof[held] = model.predict(members.probs[:, held])
    return oof


def final_fit(members: MemberSet, policy: RowPolicy, fit: Fitter, seed: int = 0) -> tuple[Fitted, np.ndarray | None]:
    """The fit on every policy row, for the test set (and the reported weights)."""
    model = fit(members.probs, members.targets, policy.row_weights(members.n_votes, members.recordings), seed)
    test = None if members.test_probs is None else model.predict(members.test_probs)
    return model, test
