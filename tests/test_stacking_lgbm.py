"""LightGBM stacker: soft-target expansion, honest CV quality, persistent Optuna study that resumes."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from core.metric import kl_divergence
from stacking.lgbm import LgbmConfig, LgbmSearch, expand_soft_targets
from stacking.meta_features import feature_names, meta_features
from stacking.policy import RowPolicy, candidate_policies
from synthetic.oof_sets import synthetic_member_set

FAST = LgbmConfig(trials=3, tune_rows=1200, threads=1, max_rounds=300)


@pytest.fixture(scope="module")
def member_set():
    return synthetic_member_set(n_rows=2000, seed=11)[0]


def test_soft_target_expansion_keeps_the_cross_entropy():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    targets = np.array([[1, 0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0, 0], [0.2, 0, 0, 0, 0.8, 0]])
    data, label, weight = expand_soft_targets(x, targets, np.array([1.0, 2.0, 0.0]))
    assert label.tolist() == [0, 0, 1]  # the zero-weight row and zero-target classes are dropped
    np.testing.assert_allclose(weight, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(data, x[[0, 1, 1]])


def test_meta_features_shape_and_names(member_set):
    raw = np.array([0, 2])
    x = meta_features(member_set.probs, raw)
    assert x.shape == (len(member_set.fold), len(feature_names(member_set.names, raw)))
    assert np.isfinite(x).all()


def test_lgbm_beats_the_mean_on_high_vote_rows(member_set, tmp_path):
    m = member_set
    search = LgbmSearch(m, [RowPolicy(10)], FAST, 10, f"sqlite:///{tmp_path / 'optuna.db'}")
    search.tune()
    run = search.finalise(int(np.argmin([s.mean() for s in search.inner_scores()])))
    high = m.n_votes >= 10
    assert not np.isnan(run.oof).any()
    np.testing.assert_allclose(run.oof.sum(axis=1), 1.0, atol=1e-9)
    assert kl_divergence(m.targets[high], run.oof[high]) < kl_divergence(m.targets[high], m.probs.mean(0)[high])
    assert run.details["params"] and len(run.details["best_iterations"]) == len(m.folds)


def test_study_resumes_and_adds_trials(member_set, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    policies = candidate_policies("auto")
    first = LgbmSearch(member_set, policies, FAST, 10, storage)
    first.tune()
    second = LgbmSearch(member_set, policies, FAST, 10, storage)
    second.tune()
    assert second.study_name == first.study_name
    study = optuna.load_study(study_name=first.study_name, storage=storage)
    assert len(study.trials) == 2 * FAST.trials
    assert len(second.trials) >= len(first.trials)
    assert study.user_attrs["members"] == member_set.names
    other = LgbmSearch(member_set.subset(member_set.names[:3]), policies, FAST, 10, storage)
    assert other.study_name != first.study_name  # other members: another study, not a polluted one
