"""Ensemble selection (Caruana): picks the good member among noisy copies; honest OOF improves on members."""

from __future__ import annotations

import numpy as np
import pytest

from core.metric import kl_divergence
from stacking.crossfit import cross_fit
from stacking.policy import RowPolicy
from stacking.selection import SelectionConfig, select_ensemble
from synthetic.oof_sets import MemberSpec, synthetic_member_set


def _good_and_noisy_copies(n_copies: int = 5, n_rows: int = 2000):
    """One good member, then copies of it with extra noise (the copies' noise is independent)."""
    members, _ = synthetic_member_set(n_rows, [MemberSpec("good", noise=0.2)], seed=5)
    rng = np.random.default_rng(9)
    good = members.probs[0]
    copies = []
    for i in range(n_copies):
        logits = np.log(good) + (0.6 + 0.2 * i) * rng.standard_normal(good.shape)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        copies.append(e / e.sum(axis=1, keepdims=True))
    members.probs = np.stack([good, *copies])
    members.names = ["good", *[f"copy_{i}" for i in range(n_copies)]]
    return members


@pytest.mark.parametrize("bags", [1, 10])
def test_selection_picks_mostly_the_good_member(bags):
    m = _good_and_noisy_copies()
    fit = select_ensemble(m.probs, m.targets, (m.n_votes >= 10).astype(float),
                          SelectionConfig(steps=30, bags=bags, bag_fraction=0.8, seed=1))
    assert fit.counts.sum() > 0
    assert fit.weights[0] >= 0.6
    assert fit.weights[0] == fit.weights.max()
    assert set(fit.describe(m.names)["counts"]) <= set(m.names)


def test_selection_oof_is_no_worse_than_the_best_member():
    m, _ = synthetic_member_set(2500, seed=4)
    high = m.n_votes >= 10
    fit = lambda p, t, w, seed: select_ensemble(p, t, w, SelectionConfig(steps=25, seed=seed))
    oof = cross_fit(m, RowPolicy(10), fit)
    np.testing.assert_allclose(oof.sum(axis=1), 1.0)
    best_member = min(kl_divergence(m.targets[high], p[high]) for p in m.probs)
    assert kl_divergence(m.targets[high], oof[high]) < best_member


def test_noise_member_is_never_selected():
    m, _ = synthetic_member_set(2000, seed=6)
    fit = select_ensemble(m.probs, m.targets, (m.n_votes >= 10).astype(float), SelectionConfig(steps=30))
    assert m.names[-1].startswith("noise") and fit.counts[-1] == 0
