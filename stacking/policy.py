"""Which OOF rows a stacker fits on, and how much each counts.

The hidden test set is mostly rows with many voters; low-vote rows have near one-hot targets with
a different class mix, so fitting on them teaches a stacker the wrong calibration. A policy keeps
rows with at least `min_votes` voters and optionally weights them by their voter count (core.vote_weights).

The test set has one row per recording while the OOF rows count a recording once per labelled
sample (and recordings with many samples have their own class mix). A balanced policy makes each
recording weigh the same: a kept row's weight is divided by the kept rows of its eeg_id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import UserFacingError
from core.vote_weights import VOTE_WEIGHTINGS, vote_weights

WEIGHTINGS = VOTE_WEIGHTINGS
AUTO_THRESHOLDS = (10, 6, 1)  # highest first: on a tie, prefer the rows most like the test set


@dataclass(frozen=True)
class RowPolicy:
    min_votes: int = 10
    weighting: str = "none"
    balanced: bool = False  # each recording weighs the same (stack setting recording_weights)

    @property
    def label(self) -> str:
        return f"min_votes={self.min_votes}" + (f",{self.weighting}" if self.weighting != "none" else "")

    def row_weights(self, n_votes: np.ndarray, recordings: np.ndarray | None = None) -> np.ndarray:
        """Per-row fit weight, 0 for excluded rows, mean 1 over the kept ones; balanced over
        `recordings` (eeg_id per row) when the policy is balanced and they are given."""
        n_votes = np.asarray(n_votes, dtype=np.float64)
        keep = n_votes >= self.min_votes
        weights = np.where(keep, vote_weights(n_votes, self.weighting), 0.0)
        if self.balanced and recordings is not None:
            weights = weights * recording_weights(recordings, keep)
        total = weights.sum()
        return weights * (keep.sum() / total) if total > 0 else weights


def recording_weights(recordings: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """1 / (number of `rows` of the same recording) on `rows`, 0 elsewhere: each recording sums to 1."""
    _, codes = np.unique(np.asarray(recordings), return_inverse=True)
    rows = np.asarray(rows, dtype=bool)
    counts = np.bincount(codes[rows], minlength=codes.max() + 1 if len(codes) else 0)
    return np.where(rows, 1.0 / np.maximum(counts[codes], 1), 0.0)


def candidate_policies(min_votes: str | int, weighting: str = "none",
                       thresholds: tuple[int, ...] = AUTO_THRESHOLDS, balanced: bool = False) -> list[RowPolicy]:
    """The policies a stacker tries: one fixed policy, or one per threshold for `auto`."""
    if weighting not in WEIGHTINGS:
        raise UserFacingError(f"vote_weighting= must be one of {', '.join(WEIGHTINGS)}, not {weighting!r}")
    if str(min_votes) == "auto":
        return [RowPolicy(int(t), weighting, balanced) for t in sorted(set(thresholds), reverse=True)]
    try:
        value = int(min_votes)
    except ValueError:
        raise UserFacingError(f"min_votes= must be a number of voters or 'auto', not {min_votes!r}") from None
    return [RowPolicy(value, weighting, balanced)]


def require_rows(policy: RowPolicy, n_votes: np.ndarray, where: str) -> None:
    if not (np.asarray(n_votes) >= policy.min_votes).any():
        raise UserFacingError(f"{where}: no OOF rows with >= {policy.min_votes} voters to fit on; "
                              f"lower min_votes= or use min_votes=auto")
