"""The feature-GBDT member's core (oof/gbdt.py) on a small synthetic problem."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.metric import class_prior_predictions, kl_divergence
from oof import gbdt
from oof.gbdt import GbdtConfig, fit_gbdt, load_gbdt, oof_gbdt, predict_gbdt, save_gbdt

FAST = GbdtConfig(num_leaves=7, learning_rate=0.2, n_estimators=60, min_child_samples=10,
                  early_stopping_rounds=10, threads=1)
# 4 features: a left/right pair (0, 1), a midline one (2) and noise (3); mirroring swaps 0 and 1.
SWAP = (1, 0, 2, 3)


def _problem(n: int = 600, seed: int = 0):
    """Votes from a softmax of the features: the class depends on |x0 - x1| and x2 (side-free)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    logits = np.stack([2 * np.abs(x[:, 0] - x[:, 1]), 2 * x[:, 2], -2 * x[:, 2], np.zeros(n), x[:, 0] * 0,
                       0.5 * np.ones(n)], axis=1)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    n_votes = rng.choice([1, 2, 3, 5, 12], size=n)
    votes = np.stack([rng.multinomial(k, q) for k, q in zip(n_votes, p, strict=True)])
    return x, votes / n_votes[:, None], n_votes, rng.integers(0, 60, size=n)


@pytest.fixture(scope="module")
def problem():
    return _problem()


def test_beats_the_class_prior_out_of_fold(problem):
    x, y, n_votes, groups = problem
    fold = groups % 4
    pred = oof_gbdt(x, y, n_votes, fold, FAST, SWAP, groups)
    assert np.isfinite(pred).all()
    np.testing.assert_allclose(pred.sum(axis=1), 1.0)
    high = n_votes >= 10
    prior = kl_divergence(y[high], class_prior_predictions(y[high], int(high.sum())))
    assert kl_divergence(y[high], pred[high]) < 0.75 * prior


def test_deterministic_for_a_seed_and_seed_matters(problem):
    x, y, n_votes, groups = problem
    a = predict_gbdt(fit_gbdt(x, y, n_votes, FAST, SWAP, groups), x, SWAP)
    b = predict_gbdt(fit_gbdt(x, y, n_votes, FAST, SWAP, groups), x, SWAP)
    c = predict_gbdt(fit_gbdt(x, y, n_votes, replace(FAST, seed=1), SWAP, groups), x, SWAP)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_save_load_round_trip(problem, tmp_path):
    x, y, n_votes, groups = problem
    model = fit_gbdt(x, y, n_votes, FAST, SWAP, groups)
    save_gbdt(model, tmp_path / "m" / "gbdt.txt")
    assert list((tmp_path / "m").iterdir()) == [tmp_path / "m" / "gbdt.txt"]  # no temporary left behind
    loaded = load_gbdt(tmp_path / "m" / "gbdt.txt")
    np.testing.assert_array_equal(predict_gbdt(loaded, x, SWAP), predict_gbdt(model, x, SWAP))
    assert loaded.current_iteration() == model.current_iteration() <= FAST.n_estimators


def test_validation_fold_never_used(problem):
    """Fold 0's targets and voter counts do not change fold 0's OOF predictions (nor any other fold's
    model but through fitting): early stopping looks at an inner split of the training folds only."""
    x, y, n_votes, groups = problem
    fold = groups % 4
    pred = oof_gbdt(x, y, n_votes, fold, FAST, SWAP, groups)
    held = fold == 0
    y2, n2 = y.copy(), n_votes.copy()
    y2[held] = np.eye(6)[np.random.default_rng(5).integers(0, 6, held.sum())]
    n2[held] = 20
    pred2 = oof_gbdt(x, y2, n2, fold, FAST, SWAP, groups)
    np.testing.assert_array_equal(pred[held], pred2[held])
    assert not np.array_equal(pred[~held], pred2[~held])  # the other folds did see the change


def test_inner_split_keeps_groups_together():
    groups = np.repeat(np.arange(30), 5)
    stop = gbdt.inner_split(len(groups), groups, GbdtConfig())
    assert 0 < stop.mean() < 0.5
    for g in range(30):
        assert len(set(stop[groups == g])) == 1


def test_min_votes_filter(problem, monkeypatch):
    x, y, n_votes, groups = problem
    weights = gbdt.row_weights(n_votes, GbdtConfig(min_votes=3))
    assert (weights[n_votes < 3] == 0).all() and (weights[n_votes >= 3] == 1).all()
    np.testing.assert_allclose(gbdt.row_weights(n_votes, GbdtConfig(min_votes=1), "sqrt"),
                               np.sqrt(np.minimum(n_votes, 20) / 20))
    seen = []
    real = gbdt._expanded

    def spy(x_, targets, weights_, swap_index):
        seen.append(weights_.copy())
        return real(x_, targets, weights_, swap_index)

    monkeypatch.setattr(gbdt, "_expanded", spy)
    fit_gbdt(x, y, n_votes, replace(FAST, min_votes=5), SWAP, groups)
    assert seen and all((w[n_votes < 5] == 0).all() for w in seen)
    assert (seen[-1][n_votes >= 5] > 0).all()  # the refit sees every eligible row
    # rows below min_votes do not matter at all: changing their targets leaves the model unchanged
    y2 = y.copy()
    y2[n_votes < 5] = np.eye(6)[0]
    monkeypatch.setattr(gbdt, "_expanded", real)
    a = predict_gbdt(fit_gbdt(x, y, n_votes, replace(FAST, min_votes=5), SWAP, groups), x)
    b = predict_gbdt(fit_gbdt(x, y2, n_votes, replace(FAST, min_votes=5), SWAP, groups), x)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="voters"):
        fit_gbdt(x, y, n_votes, replace(FAST, min_votes=100))


def test_swap_augmentation_and_tta_make_predictions_mirror_invariant(problem):
    x, y, n_votes, groups = problem
    mirrored = x[:, list(SWAP)]

    def asymmetry(model) -> float:
        return float(np.abs(predict_gbdt(model, x, tta=False) - predict_gbdt(model, mirrored, tta=False)).mean())

    model = fit_gbdt(x, y, n_votes, FAST, SWAP, groups)
    np.testing.assert_allclose(predict_gbdt(model, mirrored, SWAP), predict_gbdt(model, x, SWAP), atol=1e-12)
    assert asymmetry(model) > 0  # TTA is what makes it exact
    plain = fit_gbdt(x, y, n_votes, replace(FAST, swap_augment=False), SWAP, groups)
    assert asymmetry(model) < 0.7 * asymmetry(plain)  # augmentation teaches the mirror
