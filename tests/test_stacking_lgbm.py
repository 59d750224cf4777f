"""LightGBM stacker: soft-target expansion, honest CV quality, persistent Optuna study that resumes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import optuna
import pytest

from core.metric import kl_divergence
from stacking.lgbm import LgbmConfig, LgbmSearch, TooFewRows, expand_soft_targets
from stacking.meta_features import feature_names, meta_features
from stacking.policy import RowPolicy, candidate_policies
from synthetic.oof_sets import synthetic_member_set

FAST = LgbmConfig(trials=3, tune_rows=1200, threads=1, max_rounds=300)
QUICK = LgbmConfig(trials=3, threads=1, max_rounds=40)


@pytest.fixture(scope="module")
def member_set():
    return synthetic_member_set(n_rows=2000, seed=11)[0]


@pytest.fixture(scope="module")
def small_set():
    """For the study tests: what matters is which trials run, not how good they are."""
    return synthetic_member_set(n_rows=500, seed=11, n_folds=3)[0]


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


def _trials(study: optuna.Study) -> list[tuple]:
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [(t.state, t.params, t.value) for t in study.get_trials(states=finished)]


def test_study_reruns_reproduce_and_extend_an_uninterrupted_run(small_set, tmp_path):
    policies = candidate_policies("auto")
    whole = LgbmSearch(small_set, policies, QUICK, 10, f"sqlite:///{tmp_path / 'whole.db'}")
    whole.tune()
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = LgbmSearch(small_set, policies, replace(QUICK, trials=2), 10, storage)
    first.tune()  # trials=2, then trials=3: the third trial is the uninterrupted run's third
    second = LgbmSearch(small_set, policies, QUICK, 10, storage)
    second.tune()
    again = LgbmSearch(small_set, policies, QUICK, 10, storage)
    again.tune()  # a rerun with the same inputs adds nothing
    study = optuna.load_study(study_name=first.study_name, storage=storage)
    assert second.study_name == first.study_name and len(study.trials) == QUICK.trials
    assert _trials(study) == _trials(optuna.load_study(study_name=whole.study_name,
                                                       storage=f"sqlite:///{tmp_path / 'whole.db'}"))
    assert [t.params for t in again.trials] == [t.params for t in whole.trials]
    assert study.user_attrs["members"] == small_set.names
    other = LgbmSearch(small_set.subset(small_set.names[:3]), policies, QUICK, 10, storage)
    assert other.study_name != first.study_name  # other members: another study, not a polluted one


def test_a_killed_run_resumes_to_the_uninterrupted_result(small_set, tmp_path):
    policies = [RowPolicy(10)]
    whole = LgbmSearch(small_set, policies, QUICK, 10, f"sqlite:///{tmp_path / 'whole.db'}")
    whole.tune()
    storage = f"sqlite:///{tmp_path / 'killed.db'}"
    LgbmSearch(small_set, policies, replace(QUICK, trials=1), 10, storage).tune()
    killed = LgbmSearch(small_set, policies, QUICK, 10, storage)
    study = optuna.load_study(study_name=killed.study_name, storage=storage)
    stale = study.ask()  # what kill -9 mid-trial leaves: a RUNNING trial with a reported fold
    stale.suggest_float("learning_rate", 0.05, 0.3, log=True)
    stale.report(0.9, 0)
    killed.tune()
    study = optuna.load_study(study_name=killed.study_name, storage=storage)
    assert study.trials[1].state == optuna.trial.TrialState.FAIL  # no longer RUNNING forever
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert [t.params for t in killed.trials] == [t.params for t in whole.trials]
    assert [t.value for t in killed.trials] == [t.value for t in whole.trials]
    best = lambda s: int(np.argmin([f.mean() for f in s.inner_scores()]))  # noqa: E731
    np.testing.assert_array_equal(killed.finalise(best(killed)).oof, whole.finalise(best(whole)).oof)


@pytest.mark.parametrize("n_rows, n_folds", [(30, 2), (8, 3)])
def test_a_tiny_folder_is_refused_in_one_line_not_by_lightgbm(n_rows, n_folds, tmp_path):
    members = synthetic_member_set(n_rows=n_rows, seed=1, n_folds=n_folds)[0]
    with pytest.raises(TooFewRows, match=r"^lgbm stacker: .* cannot fit: .*methods=blend") as err:
        LgbmSearch(members, [RowPolicy(10)], FAST, 10, f"sqlite:///{tmp_path / 'optuna.db'}").tune()
    assert "\n" not in str(err.value)


def test_make_stack_leaves_an_unfittable_lgbm_out_and_stacks_the_rest(tmp_path, caplog):
    from stacking.config import stack_config
    from stacking.run import run_stack
    from synthetic.oof_sets import write_synthetic_work

    write_synthetic_work(tmp_path, n_rows=40, n_test=5, n_folds=2)
    config = stack_config(tmp_path, tmp_path / "no-data", ["methods=blend,lgbm", "trials=2", "submission=false"])
    report = run_stack(config)
    assert report["final"]["method"] == "blend"
    assert any("lgbm left out: lgbm stacker:" in r.getMessage() for r in caplog.records)
