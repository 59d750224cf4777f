"""The flat feature views for the GBDT member (features/views/bands.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.schema import EEG_COLUMNS, EEG_RATE_HZ, EEG_WINDOW_SAMPLES, SPEC_WINDOW_ROWS
from features.kaggle_spectrogram import swap_spectrogram_table
from features.montage import mirror_name, swap_referential
from features.views import VIEWS, compute_view, get_view

EEG = get_view("bands_eeg")
KSPEC = get_view("bands_kspec")
LEFT_ELECTRODES = ("F7", "T5", "F3", "P3")  # every left bipolar pair (LL and LP) has one of them
T = np.arange(EEG_WINDOW_SAMPLES) / EEG_RATE_HZ


def _names(view) -> dict[str, int]:
    return {name: i for i, name in enumerate(view.channel_names())}


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(0).normal(0, 20, (2, EEG_WINDOW_SAMPLES, 20)).astype(np.float32)


def _with_left(eeg: np.ndarray, signal: np.ndarray) -> np.ndarray:
    out = eeg.copy()
    for electrode in LEFT_ELECTRODES:
        out[:, :, EEG_COLUMNS.index(electrode)] += signal.astype(np.float32)
    return out


def test_registered_with_shapes_and_mirrored_names(noise):
    assert {"bands_eeg", "bands_kspec"} <= set(VIEWS)
    for view in (EEG, KSPEC):
        names = view.channel_names()
        assert len(set(names)) == len(names) == view.output_shape()[0]
        assert sorted(view.swap_index) == list(range(len(names)))
    ix = _names(EEG)
    assert mirror_name("Fp1-F7_logp-theta_50s") == "Fp2-F8_logp-theta_50s"
    assert EEG.swap_index[ix["LL_logp-theta_10s"]] == ix["RL_logp-theta_10s"]
    assert EEG.swap_index[ix["asym-temporal_logp-dlo_50s"]] == ix["asym-temporal_logp-dlo_50s"]
    out = compute_view("bands_eeg", eeg_windows=noise)
    assert out.shape == (2, *EEG.output_shape()) and out.dtype == np.float32
    spec = np.random.default_rng(1).gamma(1.0, 5.0, (3, SPEC_WINDOW_ROWS, 400)).astype(np.float32)
    assert compute_view("bands_kspec", spec_windows=spec).shape == (3, *KSPEC.output_shape())


def test_left_theta_raises_left_features_only(noise):
    ix = _names(EEG)
    base = EEG.compute(noise, None)
    theta = EEG.compute(_with_left(noise, 40 * np.sin(2 * np.pi * 6 * T)), None)
    for span in ("50s", "10s"):
        for chain in ("LL", "LP", "Fp1-F7", "P3-O1"):
            name = f"{chain}_logp-theta_{span}"
            assert theta[:, ix[name]].min() > base[:, ix[name]].max() + 2
            assert (theta[:, ix[f"{chain}_rel-theta_{span}"]] > 0.6).all()
            assert (theta[:, ix[f"{chain}_peakf_{span}"]] == 6.0).all()
        for chain in ("RL", "RP", "Fp2-F8", "P4-O2", "Fz-Cz"):
            np.testing.assert_allclose(theta[:, ix[f"{chain}_logp-theta_{span}"]],
                                       base[:, ix[f"{chain}_logp-theta_{span}"]], atol=1e-4)
        assert (theta[:, ix[f"asym-hemi_logp-theta_{span}"]] > 2).all()
        assert (base[:, ix[f"asym-hemi_logp-theta_{span}"]] < 0.5).all()


def test_rhythmic_delta_and_periodic_spikes(noise):
    ix = _names(EEG)
    base = EEG.compute(noise, None)
    delta = EEG.compute(_with_left(noise, 40 * np.sin(2 * np.pi * 2 * T)), None)
    spikes = np.zeros(EEG_WINDOW_SAMPLES)
    for start in range(0, EEG_WINDOW_SAMPLES - 10, EEG_RATE_HZ):  # a 50 ms sharp wave every second
        spikes[start:start + 10] += 150 * np.bartlett(10)
    periodic = EEG.compute(_with_left(noise, spikes), None)
    for span in ("50s", "10s"):
        assert (delta[:, ix[f"LL_acf_{span}"]] > 0.9).all() and (base[:, ix[f"LL_acf_{span}"]] < 0.4).all()
        assert (delta[:, ix[f"LL_rhythm_{span}"]] > 0.6).all() and (base[:, ix[f"LL_rhythm_{span}"]] < 0.2).all()
        assert (periodic[:, ix[f"LL_period_{span}"]] > 0.7).all() and (base[:, ix[f"LL_period_{span}"]] < 0.3).all()
        np.testing.assert_allclose(periodic[:, ix[f"LL_periodlag_{span}"]], 1.0, atol=0.05)
        assert (periodic[:, ix[f"LL_logkurt_{span}"]] > base[:, ix[f"LL_logkurt_{span}"]] + 1).all()
        assert (periodic[:, ix[f"RL_period_{span}"]] < 0.3).all()


def _expected_eeg_shift(name: str, gain: float) -> float:
    """How a feature moves when the EEG is multiplied by `gain` (no clipping): log powers by
    2 log gain, log line length by log gain, differences of logs and scale-free features not at all."""
    group, feature, span = name.split("_")[0], name.split("_")[-2], name.split("_")[-1]
    if span == "10v50" or group.startswith("asym") or group in ("focal", "front-back"):
        return 0.0
    if feature.startswith("logp-"):
        return 2 * math.log(gain)
    return math.log(gain) if feature == "logll" else 0.0


def test_amplitude_scale_moves_only_log_powers(noise):
    eeg = _with_left(noise, 40 * np.sin(2 * np.pi * 2 * T))
    assert np.abs(3 * eeg).max() < 1024 / 1.5  # no clipping in either copy
    base, tripled = EEG.compute(eeg, None), EEG.compute(3 * eeg, None)
    shift = np.array([_expected_eeg_shift(n, 3.0) for n in EEG.channel_names()])
    assert (shift == 2 * math.log(3)).sum() > 300 and (shift == 0).sum() > 600
    np.testing.assert_allclose(tripled - base, np.broadcast_to(shift, base.shape), atol=2e-3)


def test_swapped_eeg_gives_permuted_features(noise):
    eeg = _with_left(noise, 40 * np.sin(2 * np.pi * 6 * T))
    eeg[1, 3000:5000, EEG_COLUMNS.index("C3")] = np.nan
    features = EEG.compute(eeg, None)
    swapped = EEG.compute(swap_referential(eeg), None)
    np.testing.assert_allclose(swapped, features[:, list(EEG.swap_index)], atol=1e-4)
    assert not np.allclose(swapped, features, atol=1e-2)  # the test would notice a broken swap


def test_nan_windows_give_finite_features(noise):
    eeg = noise.copy()
    eeg[0, :, EEG_COLUMNS.index("O1")] = np.nan  # a dead electrode
    eeg[0, 4000:6000] = np.nan  # the whole centre 10 s missing
    eeg[1] = np.nan  # nothing at all
    features = EEG.compute(eeg, None)
    assert np.isfinite(features).all()
    ix = _names(EEG)
    assert features[1, ix["nan_share_50s"]] == 1.0 and features[0, ix["nan_share_10s"]] == 1.0
    artifact = noise[:1].copy()
    artifact[0, 100:300, 0] = 1e5  # clipped at 1024 µV, not ruling the window
    assert np.isfinite(EEG.compute(artifact, None)).all()


def _spectrogram(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(1.0, 5.0, (n, SPEC_WINDOW_ROWS, 400)).astype(np.float32)


def test_kspec_finite_on_nan_heavy_windows():
    spec = _spectrogram(4)
    spec[0, :200] = np.nan  # long NaN run covering the centre
    spec[1, :, :100] = np.nan  # one chain (LL) all NaN
    spec[2, 140:160] = np.nan  # only the centre missing: falls back to the 2 min span
    spec[3] = np.nan
    features = KSPEC.compute(spec, None)
    assert np.isfinite(features).all()
    ix = _names(KSPEC)
    assert features[2, ix["LL_logp-tot_10s"]] == pytest.approx(features[2, ix["LL_logp-tot_2min"]])
    np.testing.assert_allclose(features[1, ix["LL_logp-tot_10min"]],  # the other chains' mean
                               np.log(np.exp(features[1, [ix[f"{c}_logp-tot_10min"] for c in ("RL", "LP", "RP")]])
                                      .mean()), rtol=1e-5)


def test_kspec_swap_scale_and_centre():
    spec = _spectrogram(2)
    spec[:, 147:153, :100] *= 20  # a burst in LL at the label centre
    features = KSPEC.compute(spec, None)
    ix = _names(KSPEC)
    assert (features[:, ix["LL_logp-tot_10v10min"]] > 2).all()
    assert (np.abs(features[:, ix["RL_logp-tot_10v10min"]]) < 0.5).all()
    np.testing.assert_allclose(KSPEC.compute(swap_spectrogram_table(spec), None),
                               features[:, list(KSPEC.swap_index)], atol=1e-5)
    scaled = KSPEC.compute(3 * spec, None)
    shift = np.array([math.log(3) if "_logp-" in n and n.split("_")[-1] in ("10s", "2min", "10min")
                      and not n.startswith("asym") else 0.0 for n in KSPEC.channel_names()])
    np.testing.assert_allclose(scaled - features, np.broadcast_to(shift, features.shape), atol=1e-4)
