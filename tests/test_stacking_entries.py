"""The new stacker entries (logit-linear, MLP, MLP with patient features) and the EM prior correction:
every configuration saves (stacker.json + side files) and loads back to the same test predictions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from core.metric import kl_divergence
from core.schema import VOTE_COLUMNS
from stacking.config import StackConfig
from stacking.honest import Scorer
from stacking.mlp import MlpConfig
from stacking.patient_features import patient_channels
from stacking.policy import RowPolicy
from stacking.prior_shift import correct
from stacking.saved_stacker import from_run, load_stacker, save_stacker
from stacking.stackers import STACKERS, StackContext
from synthetic.oof_sets import shifted_member_set


@pytest.fixture(scope="module")
def data():
    return shifted_member_set(1200, seed=3, n_test=300)


def _context(data, tmp_path, method):
    config = StackConfig(work=tmp_path, methods=(method,), mlp=MlpConfig(epochs=8, patient_features=True))
    m = data.members
    high = m.n_votes >= 10
    return StackContext(config, m, [RowPolicy(10, balanced=True)], high, Scorer.of(m, high))


@pytest.mark.parametrize("method,variants", [("logit", {""}), ("mlp", {"", "patient"})])
def test_every_configuration_reloads_to_its_test_predictions(data, tmp_path, method, variants):
    m = data.members
    search = STACKERS[method].fit(_context(data, tmp_path, method))
    runs = search.configurations(None)
    assert {r.variant for r in runs} == variants
    high = m.n_votes >= 10
    for run in runs:
        run = search.finalise(run)
        assert kl_divergence(m.targets[high], run.oof[high]) < kl_divergence(m.targets[high], m.probs.mean(0)[high])
        save_stacker(tmp_path, from_run(run, m.names))
        loaded = load_stacker(tmp_path)
        np.testing.assert_allclose(loaded.predict(m.test_probs, m.test_ids, m.test_groups), run.test, rtol=0, atol=1e-9)
        test_probs = {name: m.test_probs[j] for j, name in enumerate(m.names)}
        np.testing.assert_allclose(loaded.apply(test_probs, m.test_ids, m.test_groups), run.test, rtol=0, atol=1e-9)


def test_mlp_is_deterministic_for_a_seed(data, tmp_path):
    a = STACKERS["mlp"].fit(_context(data, tmp_path, "mlp")).configurations(None)[0].oof
    b = STACKERS["mlp"].fit(_context(data, tmp_path, "mlp")).configurations(None)[0].oof
    np.testing.assert_array_equal(a, b)


def test_prior_correction_travels_with_the_saved_stacker(data, tmp_path):
    m = data.members
    search = STACKERS["logit"].fit(_context(data, tmp_path, "logit"))
    run = search.finalise(search.configurations(None)[0])
    prior = np.array([0.3, 0.1, 0.1, 0.2, 0.1, 0.2])
    save_stacker(tmp_path, from_run(run, m.names, prior, 2))
    np.testing.assert_allclose(load_stacker(tmp_path).predict(m.test_probs), correct(run.test, prior, 2), atol=1e-12)


def test_patient_channels_use_only_the_other_recordings():
    probs = np.array([[[1.0, 0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0, 0], [0, 0, 1.0, 0, 0, 0], [0, 0, 0, 1.0, 0, 0]]])
    recordings = np.array([10, 10, 11, 12])   # recording 10 has two rows
    groups = np.array([1, 1, 1, 2])           # patient 1: recordings 10 and 11; patient 2: 12 alone
    ch = patient_channels(probs, recordings, groups)
    np.testing.assert_allclose(ch[0, 0], [0, 0, 1, 0, 0, 0])        # row of rec 10 sees rec 11
    np.testing.assert_allclose(ch[0, 2], [0.5, 0.5, 0, 0, 0, 0])    # rec 11 sees rec 10's mean
    np.testing.assert_allclose(ch[4, :3], np.log(2))                 # one other recording
    np.testing.assert_allclose(ch[0, 3], probs[0, 3])                # alone: its own figures, count 0
    assert ch[4, 3].max() == 0 and ch[3, 3].max() == 0
    assert np.array_equal(patient_channels(probs, recordings, None)[4], np.zeros((4, 6)))


def test_without_patient_ids_the_patient_variant_is_off(data, tmp_path):
    ctx = _context(data, tmp_path, "mlp")
    ctx = replace(ctx, members=replace(data.members, groups=None))
    assert {r.variant for r in STACKERS["mlp"].fit(ctx).configurations(None)} == {""}


def _blend_stacker(weights=(0.5, 0.3, 0.2)):
    from stacking.blend import BlendFit
    from stacking.saved_stacker import SavedStacker

    fit = BlendFit(np.array(weights), np.zeros(6), 1.0, "prob", 0.0)
    return SavedStacker("blend", ["a", "b", "c"], model=fit, class_prior=[0.4, 0.2, 0.1, 0.1, 0.1, 0.1])


def test_a_recording_some_members_missed_is_blended_from_the_others():
    rng = np.random.default_rng(0)
    probs = {name: rng.dirichlet(np.ones(6), size=4) for name in "abc"}
    stacker = _blend_stacker()
    whole = stacker.apply(probs)
    probs["b"][1] = np.nan  # b could not see recording 1; nobody saw recording 3
    for name in "abc":
        probs[name][3] = np.nan
    out = stacker.apply(probs)
    np.testing.assert_array_equal(out[[0, 2]], whole[[0, 2]])
    expected = (0.5 * probs["a"][1] + 0.2 * probs["c"][1]) / 0.7
    np.testing.assert_allclose(out[1], expected / expected.sum(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(out[3], stacker.class_prior, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)


def test_a_stacker_that_cannot_leave_a_member_out_uses_the_mean_of_the_others():
    from stacking.saved_stacker import SavedStacker

    class Fixed:  # a non-linear stacker (mlp, lgbm): no weights to renormalise
        def predict(self, probs):
            return np.full(probs.shape[1:], 1 / 6)

    rng = np.random.default_rng(1)
    probs = {name: rng.dirichlet(np.ones(6), size=3) for name in "abc"}
    probs["a"][2] = np.nan
    out = SavedStacker("lgbm", ["a", "b", "c"], model=Fixed()).apply(probs)
    np.testing.assert_allclose(out[:2], 1 / 6)
    np.testing.assert_allclose(out[2], (probs["b"][2] + probs["c"][2]) / 2, rtol=0, atol=1e-12)


def test_the_class_prior_is_saved_with_the_stacker(tmp_path):
    from stacking.config import stack_config
    from stacking.run import run_stack
    from synthetic.oof_sets import write_synthetic_work

    table = write_synthetic_work(tmp_path, n_rows=300, n_test=5)
    run_stack(stack_config(tmp_path, tmp_path, ["methods=blend", "trials=2", "submission=false"]))
    prior = load_stacker(tmp_path).prior()
    targets = table.loc[table["n_votes"] >= 10, [f"target_{c}" for c in VOTE_COLUMNS]].to_numpy()
    assert prior.sum() == pytest.approx(1.0) and np.ptp(prior) > 0.05  # the scored rows' mix, not uniform
    np.testing.assert_allclose(prior, targets.mean(axis=0), atol=0.05)  # recording-weighted, so close only
