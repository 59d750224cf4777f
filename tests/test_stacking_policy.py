"""Fit-row policies: high-vote fitting wins on high-vote rows; `auto` finds that by honest CV."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import UserFacingError
from core.metric import kl_divergence
from stacking.blend import BlendConfig, fit_blend
from stacking.crossfit import cross_fit
from stacking.honest import PolicySearch, Scorer, Variant, choose
from stacking.policy import RowPolicy, candidate_policies
from stacking.selection import SelectionConfig, select_ensemble
from synthetic.oof_sets import synthetic_member_set


@pytest.fixture(scope="module")
def member_set():
    return synthetic_member_set(n_rows=3000, seed=2)[0]


def blend_fitter(p, t, w, seed):
    return fit_blend(p, t, w, BlendConfig(trials=10, seed=seed))


def test_row_weights():
    n_votes = np.array([1, 3, 10, 20])
    np.testing.assert_allclose(RowPolicy(10).row_weights(n_votes), [0, 0, 1, 1])
    np.testing.assert_allclose(RowPolicy(1, "linear").row_weights(n_votes), np.array([1, 3, 10, 20]) / 8.5)
    assert RowPolicy(6, "linear").label == "min_votes=6,linear"
    recordings = np.array([7, 7, 8, 9])
    np.testing.assert_allclose(RowPolicy(1, balanced=True).row_weights(n_votes, recordings),
                               np.array([0.5, 0.5, 1, 1]) * 4 / 3)
    np.testing.assert_allclose(RowPolicy(1).row_weights(n_votes, recordings), 1.0)  # unbalanced: ignored


def test_candidate_policies():
    assert [p.min_votes for p in candidate_policies("auto")] == [10, 6, 1]
    assert candidate_policies("7") == [RowPolicy(7)]
    with pytest.raises(UserFacingError, match="min_votes="):
        candidate_policies("many")
    with pytest.raises(UserFacingError, match="vote_weighting="):
        candidate_policies(10, "square")


def test_fitting_on_high_vote_rows_beats_all_rows_on_held_out_high_vote_rows(member_set):
    m = member_set
    high = m.n_votes >= 10
    on_high = cross_fit(m, RowPolicy(10), blend_fitter)
    on_all = cross_fit(m, RowPolicy(1), blend_fitter)
    assert kl_divergence(m.targets[high], on_high[high]) < kl_divergence(m.targets[high], on_all[high]) - 0.02


def test_auto_policy_chooses_high_vote_rows_with_a_nested_estimate(member_set):
    m = member_set
    high = m.n_votes >= 10
    policies = candidate_policies("auto")
    searches = [PolicySearch("blend", m, policies, [Variant("bias+temperature", blend_fitter)]),
                PolicySearch("selection", m, policies, [Variant(
                    "", lambda p, t, w, seed: select_ensemble(p, t, w, SelectionConfig(steps=20)))])]
    choice = choose(searches, Scorer.of(m, high), "best")
    assert choice.run.policy.min_votes >= 6  # the synthetic low-vote rows have 1-5 voters
    assert choice.run.method == "blend"
    assert len(choice.per_fold) == len(m.folds)
    assert all(f["chosen"].startswith("blend:bias+temperature (min_votes=") for f in choice.per_fold)
    assert np.isfinite(choice.nested_kl_high) and np.isfinite(choice.cv_kl_high)
    assert set(choice.per_method) == {"blend", "selection"}
    assert choice.runs["blend"].details["weights"]  # the selected configuration was refitted on all rows
