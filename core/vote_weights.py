"""How much a row counts by its voter count: one vocabulary for the training loss and the stackers.

A vote share from n voters has variance ∝ 1/n, so n is the inverse-variance weight; it is capped
(the 2nd place solution weighted its loss by votes/20, capped at 1) so that the few 20+ voter rows
do not dominate.
"""

from __future__ import annotations

import numpy as np

from core.errors import UserFacingError

VOTE_WEIGHTINGS = ("none", "sqrt", "linear")
VOTE_CAP = 20


def vote_weights(n_votes: np.ndarray, scheme: str) -> np.ndarray:
    """none: 1; linear: min(n, 20) / 20; sqrt: its square root."""
    share = np.minimum(np.asarray(n_votes, dtype=np.float64), VOTE_CAP) / VOTE_CAP
    if scheme == "none":
        return np.ones_like(share)
    if scheme == "sqrt":
        return np.sqrt(share)
    if scheme == "linear":
        return share
    raise UserFacingError(f"vote_weighting={scheme!r} is not one of {', '.join(VOTE_WEIGHTINGS)}")
