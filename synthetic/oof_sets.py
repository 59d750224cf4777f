"""Synthetic OOF sets with known structure, for the stacking tests and benchmark.

Each sample has a true class distribution `p`. High-vote samples (10–28 voters) get targets drawn
from `p`; low-vote samples (1–5 voters) get near one-hot targets from a *different* class mix, as on
the real data, where a stacker fitted on every row learns the wrong calibration for the high-vote
rows that dominate the hidden test set. Members are tempered, biased, noisy views of `p`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import write_json, write_parquet
from core.schema import TARGET_COLUMNS, VOTE_COLUMNS
from core.work import Work
from stacking.members import MemberSet

N_CLASSES = len(VOTE_COLUMNS)
LOW_VOTE_MIX = np.array([0.35, 0.05, 0.05, 0.05, 0.05, 0.45])


@dataclass(frozen=True)
class MemberSpec:
    """How one synthetic member distorts the truth: logits = log p / temperature + bias + noise·ε."""

    name: str
    noise: float = 0.5
    temperature: float = 1.0
    bias: tuple[float, ...] = (0.0,) * N_CLASSES
    pure_noise: bool = False


def default_specs(n_members: int) -> list[MemberSpec]:
    """A spread of member qualities; the last member is pure noise when there are three or more."""
    rng = np.random.default_rng(1234)
    specs = []
    for i in range(n_members):
        if n_members >= 3 and i == n_members - 1:
            specs.append(MemberSpec(f"noise_{i:02d}", pure_noise=True))
            continue
        specs.append(MemberSpec(
            f"model_{i:02d}",
            noise=float(0.4 + 0.15 * (i % 7)),
            temperature=float(rng.uniform(0.7, 1.5)),
            bias=tuple(float(b) for b in rng.normal(0.0, 0.3, N_CLASSES)),
        ))
    return specs


def synthetic_samples(n_rows: int, seed: int = 0, n_folds: int = 5, low_vote_share: float = 0.5) -> pd.DataFrame:
    """Keys, folds (grouped by patient), n_votes, targets, and the hidden truth `p_*`."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(N_CLASSES, 0.6), size=n_rows)
    low = rng.random(n_rows) < low_vote_share
    n_votes = np.where(low, rng.integers(1, 6, n_rows), rng.integers(10, 29, n_rows))
    votes = np.empty((n_rows, N_CLASSES))
    for i in range(n_rows):
        if low[i]:
            cls = rng.choice(N_CLASSES, p=LOW_VOTE_MIX)
            mix = 0.9 * np.eye(N_CLASSES)[cls] + 0.1 * truth[i]
        else:
            mix = truth[i]
        votes[i] = rng.multinomial(n_votes[i], mix)
    eeg_id = 1000 + np.arange(n_rows) // 2  # two samples per recording
    patient = eeg_id // 3
    patient_fold = rng.permutation(np.unique(patient))
    fold_of = {p: i % n_folds for i, p in enumerate(patient_fold)}
    frame = pd.DataFrame({"eeg_id": eeg_id, "label_id": 10_000 + np.arange(n_rows),
                          "patient_id": patient, "fold": [fold_of[p] for p in patient],
                          "n_votes": n_votes.astype(np.int64)})
    for i, col in enumerate(TARGET_COLUMNS):
        frame[col] = votes[:, i] / n_votes
    for i in range(N_CLASSES):
        frame[f"p_{i}"] = truth[:, i]
    return frame


def member_predictions(truth: np.ndarray, spec: MemberSpec, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if spec.pure_noise:
        return rng.dirichlet(np.ones(N_CLASSES), size=len(truth))
    logits = np.log(np.clip(truth, 1e-6, None)) / spec.temperature + np.asarray(spec.bias)
    logits = logits + spec.noise * rng.standard_normal(truth.shape)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


def synthetic_member_set(n_rows: int = 2000, specs: list[MemberSpec] | None = None, seed: int = 0,
                         n_folds: int = 5, low_vote_share: float = 0.5) -> tuple[MemberSet, pd.DataFrame]:
    """An in-memory MemberSet (no test set) and its sample table with the hidden truth."""
    specs = specs or default_specs(5)
    table = synthetic_samples(n_rows, seed=seed, n_folds=n_folds, low_vote_share=low_vote_share)
    truth = table[[f"p_{i}" for i in range(N_CLASSES)]].to_numpy()
    probs = np.stack([member_predictions(truth, spec, seed=seed * 1000 + j) for j, spec in enumerate(specs)])
    members = MemberSet(
        names=[s.name for s in specs], keys=table[["eeg_id", "label_id"]], fold=table["fold"].to_numpy(),
        n_votes=table["n_votes"].to_numpy(), targets=table[list(TARGET_COLUMNS)].to_numpy(), probs=probs)
    return members, table


def write_synthetic_work(work: Path | str, n_rows: int = 2000, specs: list[MemberSpec] | None = None,
                         seed: int = 0, n_test: int = 200, n_folds: int = 5,
                         low_vote_share: float = 0.5) -> pd.DataFrame:
    """Write `WORK/folds.parquet`, `WORK/oof/NAME.parquet|json` and `WORK/test/NAME.parquet`.

    Returns the sample table (with the hidden truth) so that tests can compare against it.
    """
    work = Path(work)
    specs = specs or default_specs(5)
    table = synthetic_samples(n_rows, seed=seed, n_folds=n_folds, low_vote_share=low_vote_share)
    truth = table[[f"p_{i}" for i in range(N_CLASSES)]].to_numpy()
    test_truth = np.random.default_rng(seed + 1).dirichlet(np.full(N_CLASSES, 0.6), size=n_test)
    test_ids = 900_000 + np.arange(n_test)
    write_parquet(Work(work).folds(), table[["eeg_id", "label_id", "patient_id", "fold"]])
    for j, spec in enumerate(specs):
        oof = table[["eeg_id", "label_id", "fold"]].copy()
        preds = member_predictions(truth, spec, seed=seed * 1000 + j)
        oof[list(VOTE_COLUMNS)] = preds
        oof[list(TARGET_COLUMNS)] = table[list(TARGET_COLUMNS)].to_numpy()
        oof["n_votes"] = table["n_votes"].to_numpy()
        write_parquet(Work(work).oof(spec.name), oof)
        write_json(Work(work).oof_json(spec.name), {"config": {"synthetic": spec.__dict__}})
        test = pd.DataFrame({"eeg_id": test_ids})
        test[list(VOTE_COLUMNS)] = member_predictions(test_truth, spec, seed=seed * 1000 + j + 500)
        write_parquet(Work(work).test(spec.name), test)
    return table


# ---- recordings with several samples, and a test set with its own class mix ----------------------
SAMPLES_BY_CLASS = (6, 1, 1, 2, 1, 1)  # recordings of some classes have many labelled samples, as on Kaggle


@dataclass
class ShiftedSet:
    """OOF rows (several samples per recording) and a test set of one row per recording, label-shifted
    by `test_shift`; `test_truth` is each test row's true vote distribution, for scoring."""

    members: MemberSet
    table: pd.DataFrame
    test_truth: np.ndarray
    test_shift: np.ndarray


def label_shifted_test(n_test: int, shift: np.ndarray, rng: np.random.Generator,
                       alpha: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """(what the members see, true vote distribution) of test recordings under exact label shift of
    the vote label by class weights `shift`: P_test(x, y) ∝ P(x, y) · shift_y. Drawn as recordings
    picked with probability ∝ Σ_c p_c shift_c whose voters then follow p ∘ shift (normalised);
    the members see the unshifted p, since p(x | y) does not change. shift = 1 is no shift."""
    pool = rng.dirichlet(np.full(N_CLASSES, alpha), size=4 * n_test)
    weight = pool @ shift
    picked = rng.choice(len(pool), size=n_test, replace=False, p=weight / weight.sum())
    seen = pool[picked]
    truth = seen * shift
    return seen, truth / truth.sum(axis=1, keepdims=True)


def shifted_member_set(n_recordings: int = 2000, specs: list[MemberSpec] | None = None, seed: int = 0,
                       test_shift: tuple[float, ...] | None = None, n_test: int = 2000, n_folds: int = 5,
                       samples_by_class: tuple[int, ...] = SAMPLES_BY_CLASS, low_vote_share: float = 0.3,
                       recordings_per_patient: int = 3) -> ShiftedSet:
    """Recordings with a class-dependent number of samples (so OOF rows over-count some classes),
    members' test predictions on one row per recording, label-shifted by `test_shift` (default:
    none), patient ids for both splits."""
    specs = specs or default_specs(5)
    rng = np.random.default_rng(seed)
    rec_truth = rng.dirichlet(np.full(N_CLASSES, 0.6), size=n_recordings)
    per_rec = np.asarray(samples_by_class)[rec_truth.argmax(axis=1)]
    rec_of_row = np.repeat(np.arange(n_recordings), per_rec)
    truth = rec_truth[rec_of_row]
    n_rows = len(rec_of_row)
    low = rng.random(n_rows) < low_vote_share
    n_votes = np.where(low, rng.integers(1, 6, n_rows), rng.integers(10, 29, n_rows))
    mix = np.where(low[:, None], 0.9 * np.eye(N_CLASSES)[rng.choice(N_CLASSES, n_rows, p=LOW_VOTE_MIX)]
                   + 0.1 * truth, truth)
    votes = np.stack([rng.multinomial(n, m) for n, m in zip(n_votes, mix, strict=True)])
    patient = rec_of_row // recordings_per_patient
    fold_of_patient = rng.permutation(patient.max() + 1) % n_folds
    table = pd.DataFrame({"eeg_id": 1000 + rec_of_row, "label_id": 10_000 + np.arange(n_rows),
                          "patient_id": patient, "fold": fold_of_patient[patient], "n_votes": n_votes})
    for i, col in enumerate(TARGET_COLUMNS):
        table[col] = votes[:, i] / n_votes
    shift = np.ones(N_CLASSES) if test_shift is None else np.asarray(test_shift, dtype=np.float64)
    seen, test_truth = label_shifted_test(n_test, shift, np.random.default_rng(seed + 7))
    probs = np.stack([member_predictions(truth, s, seed * 1000 + j) for j, s in enumerate(specs)])
    test_probs = np.stack([member_predictions(seen, s, seed * 1000 + j + 500) for j, s in enumerate(specs)])
    members = MemberSet(
        names=[s.name for s in specs], keys=table[["eeg_id", "label_id"]], fold=table["fold"].to_numpy(),
        n_votes=table["n_votes"].to_numpy(), targets=table[list(TARGET_COLUMNS)].to_numpy(), probs=probs,
        test_ids=900_000 + np.arange(n_test), test_probs=test_probs, groups=patient,
        test_groups=1_000_000 + np.arange(n_test) // recordings_per_patient)
    return ShiftedSet(members, table, test_truth, shift)
