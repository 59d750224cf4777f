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

    @property
    def label(self) -> str:
        return f"{self.method} ({self.policy.label})"


def cross_fit(members: MemberSet, policy: RowPolicy, fit: Fitter, seed: int = 0) -> np.ndarray:
    """OOF predictions: for each fold, fit on the other folds' policy rows and predict the fold."""
    weights = policy.row_weights(members.n_votes)
    oof = np.empty_like(members.targets)
    for k in members.folds:
        held = members.fold == k
        model = fit(members.probs, members.targets, np.where(held, 0.0, weights), seed + int(k))
        oof[held] = model.predict(members.probs[:, held])
    return oof


def final_fit(members: MemberSet, policy: RowPolicy, fit: Fitter, seed: int = 0) -> tuple[Fitted, np.ndarray | None]:
    """The fit on every policy row, for the test set (and the reported weights)."""
    model = fit(members.probs, members.targets, policy.row_weights(members.n_votes), seed)
    test = None if members.test_probs is None else model.predict(members.test_probs)
    return model, test
