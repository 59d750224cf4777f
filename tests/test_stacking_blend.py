"""Weighted blend: gradient, quality against members and the mean, noise members, honest OOF."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from core.metric import kl_divergence
from stacking.blend import BlendConfig, BlendObjective, fit_blend
from stacking.crossfit import cross_fit
from stacking.policy import RowPolicy
from synthetic.oof_sets import synthetic_member_set


@pytest.fixture(scope="module")
def member_set():
    return synthetic_member_set(n_rows=2500, seed=3)[0]


def _blend_fitter(config: BlendConfig):
    return lambda p, t, w, seed: fit_blend(p, t, w, BlendConfig(**{**config.__dict__, "seed": seed}))


@pytest.mark.parametrize("space", ["prob", "log"])
@pytest.mark.parametrize("bias,temperature", [(True, True), (False, False), (True, False)])
def test_gradient_matches_finite_differences(member_set, space, bias, temperature):
    weights = np.random.default_rng(0).random(len(member_set.fold))
    objective = BlendObjective(member_set.probs[:, :300], member_set.targets[:300], weights[:300],
                               BlendConfig(space=space, bias=bias, temperature=temperature))
    theta = np.random.default_rng(1).normal(0, 0.5, objective.pack(np.ones(5) / 5, np.zeros(6), 1.0).shape)
    analytic = objective.value_and_grad(theta)[1]
    numeric = approx_fprime(theta, objective.value, 1e-6)
    np.testing.assert_allclose(analytic, numeric, atol=1e-5)


@pytest.mark.parametrize("space", ["prob", "log"])
def test_honest_blend_beats_best_member_and_mean_on_high_vote_rows(member_set, space):
    m = member_set
    high = m.n_votes >= 10
    oof = cross_fit(m, RowPolicy(10), _blend_fitter(BlendConfig(space=space, trials=15)))
    blend_kl = kl_divergence(m.targets[high], oof[high])
    best_member = min(kl_divergence(m.targets[high], p[high]) for p in m.probs)
    mean_kl = kl_divergence(m.targets[high], m.probs.mean(axis=0)[high])
    assert blend_kl < best_member - 0.01
    assert blend_kl < mean_kl - 0.01


def test_pure_noise_member_gets_about_zero_weight(member_set):
    m = member_set
    assert m.names[-1].startswith("noise")
    fit = fit_blend(m.probs, m.targets, (m.n_votes >= 10).astype(float), BlendConfig(trials=10))
    assert fit.weights[-1] < 0.01
    assert fit.weights.sum() == pytest.approx(1.0)
    assert (fit.weights >= 0).all()


def test_blend_predictions_are_distributions(member_set):
    m = member_set
    fit = fit_blend(m.probs, m.targets, np.ones(len(m.fold)), BlendConfig(space="log", trials=5))
    pred = fit.predict(m.probs)
    assert pred.shape == m.targets.shape
    np.testing.assert_allclose(pred.sum(axis=1), 1.0)
    assert set(fit.describe(m.names)["weights"]) == set(m.names)
