"""With targets shuffled against the members, no stacker may beat the class prior: nothing leaks
through the folds (the prior here is the in-sample mean of the scored rows, the best constant)."""

from __future__ import annotations

import numpy as np
import pytest

from core.metric import class_prior_predictions, kl_divergence
from stacking.blend import BlendConfig, fit_blend
from stacking.crossfit import cross_fit
from stacking.lgbm import LgbmConfig, LgbmSearch
from stacking.policy import RowPolicy
from stacking.selection import SelectionConfig, select_ensemble
from synthetic.oof_sets import synthetic_member_set

TOLERANCE = 0.003


@pytest.fixture(scope="module")
def shuffled():
    members, _ = synthetic_member_set(n_rows=2000, seed=21)
    order = np.random.default_rng(0).permutation(len(members.fold))
    members.targets = members.targets[order]
    members.n_votes = members.n_votes[order]
    high = members.n_votes >= 10
    prior = class_prior_predictions(members.targets[high], int(high.sum()))
    return members, high, kl_divergence(members.targets[high], prior)


def test_blend_does_not_beat_the_prior(shuffled):
    m, high, prior_kl = shuffled
    oof = cross_fit(m, RowPolicy(10), lambda p, t, w, seed: fit_blend(p, t, w, BlendConfig(trials=10, seed=seed)))
    assert kl_divergence(m.targets[high], oof[high]) > prior_kl - TOLERANCE


def test_selection_does_not_beat_the_prior(shuffled):
    m, high, prior_kl = shuffled
    oof = cross_fit(m, RowPolicy(10), lambda p, t, w, seed: select_ensemble(p, t, w, SelectionConfig(steps=20)))
    assert kl_divergence(m.targets[high], oof[high]) > prior_kl - TOLERANCE


def test_lgbm_does_not_beat_the_prior(shuffled, tmp_path):
    m, high, prior_kl = shuffled
    search = LgbmSearch(m, [RowPolicy(10)], LgbmConfig(trials=3, threads=1), 10, f"sqlite:///{tmp_path / 'o.db'}")
    search.tune()
    best = int(np.argmin([s.mean() for s in search.inner_scores()]))
    assert min(s.mean() for s in search.inner_scores()) > prior_kl - TOLERANCE  # trial scores are honest too
    run = search.finalise(best)
    assert kl_divergence(m.targets[high], run.oof[high]) > prior_kl - TOLERANCE
