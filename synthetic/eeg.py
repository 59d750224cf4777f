"""Synthetic competition data: the exact Kaggle layout plus `truth/`, deterministic per seed.

`hms-stack synth OUT --n-eegs N --seed S [--n-test M]` (`make synth`)

Every recording is cut from one long simulated signal (patient background, EKG, artifacts and a
mixture of class patterns whose amplitudes follow the segment's signal-level distribution `q`).
The EEG file is a slice of it; the spectrogram file covers the whole signal, so the label centre
sits in the middle of the 600 s spectrogram window. Spectrogram rows: for each chain (LL, RL, LP,
RP) the mean over its four bipolar pairs of a Hann-windowed 1024-point power spectral density
(µV²/Hz, one-sided: 2|X|² / (fs Σw²)), frame centred on the row's `time`, bins k = 3…102.

Votes follow the structure of the real data: a per-recording voter regime (1–2, 3–5, 6–9 or
10–28 voters). High-vote rows vote from `q` itself; low-vote rows vote from a sharpened `q` and
their main classes come from a different mix, so a model fitted on all rows is miscalibrated on
high-vote rows, as on the real data. `truth/` holds the distribution the votes were drawn from.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.fft
from joblib import Parallel, delayed

from core.artifacts import write_json, write_parquet
from core.errors import DataError, UserFacingError
from core.metric import class_prior_predictions, kl_divergence
from core.schema import (
    CHAINS,
    CLASSES,
    CONSENSUS_NAMES,
    EEG_COLUMNS,
    EEG_RATE_HZ,
    EEG_WINDOW_S,
    HIGH_VOTE_MIN,
    SPEC_BINS,
    SPEC_COLUMNS,
    SPEC_NFFT,
    SPEC_STEP_S,
    SPEC_WINDOW_S,
    SUBMISSION_COLUMNS,
    TARGET_COLUMNS,
    TEST_COLUMNS,
    TRAIN_COLUMNS,
    VOTE_COLUMNS,
)
from core.work import create_work
from features.eeg_spectrogram import hann
from features.labels import add_vote_targets, samples
from features.montage import CHAIN_PAIRS
from features.summary import voter_table

log = logging.getLogger(__name__)


def hann_f32(n: int) -> np.ndarray:
    return hann(n).astype(np.float32)

GENERATOR = "synthetic.eeg"
GENERATOR_VERSION = 2
FORMER_NAMES = ("features.synth",)  # folders written before the generator moved here are ours too
MAX_RECORDINGS = 100_000  # five-digit patient ids run out beyond
TRUTH_COLUMNS = tuple(f"true_{c}" for c in VOTE_COLUMNS)

FS = EEG_RATE_HZ
SCALP = EEG_COLUMNS[:-1]
_INDEX = {name: i for i, name in enumerate(SCALP)}
# Margin simulated beyond the spectrogram's span so that the first and last frames are complete.
_PAD_S = 3
# Seconds of spectrogram before the EEG's first label window and after its last one.
_SPEC_HALF_S = (SPEC_WINDOW_S - EEG_WINDOW_S) // 2
# A 10 s label centre is kept this far from a segment boundary so that its votes are unambiguous.
_BOUNDARY_MARGIN_S = 8
_CROSSFADE_S = 2.0

# Approximate 10-20 positions: x from left (-1) to right (+1), y from occipital (-1) to frontal (+1).
_POSITIONS = {
    "Fp1": (-0.31, 0.95), "F3": (-0.45, 0.55), "C3": (-0.55, 0.0), "P3": (-0.45, -0.55),
    "F7": (-0.81, 0.59), "T3": (-1.0, 0.0), "T5": (-0.81, -0.59), "O1": (-0.31, -0.95),
    "Fz": (0.0, 0.6), "Cz": (0.0, 0.0), "Pz": (0.0, -0.6),
    "Fp2": (0.31, 0.95), "F4": (0.45, 0.55), "C4": (0.55, 0.0), "P4": (0.45, -0.55),
    "F8": (0.81, 0.59), "T4": (1.0, 0.0), "T6": (0.81, -0.59), "O2": (0.31, -0.95),
}
XY = np.array([_POSITIONS[name] for name in SCALP])
LEFT = tuple(n for n in SCALP if _POSITIONS[n][0] < 0)
RIGHT = tuple(n for n in SCALP if _POSITIONS[n][0] > 0)


@dataclass(frozen=True)
class VoterRegime:
    """How a group of recordings is voted on. Row shares, mean target entropies and largest classes
    reproduce the lead's measurements on real data (1-2 voters: 26% of rows, entropy 0.07, other
    54%; 3-5: 44%, 0.25, seizure 40%; 6-9: 1%, 0.58, other 31%; >= 10: 30%, 0.65, other 46%);
    `main_weight` and `sharpen` were tuned to hit those entropies."""

    name: str
    row_share: float
    voters: tuple[int, ...]
    voter_weights: tuple[float, ...]
    class_mix: tuple[float, ...]  # main-class probabilities, in CLASSES order
    main_weight: float  # Dirichlet base weight of the main class in q
    sharpen: float  # the vote distribution is q ** sharpen, renormalised


def _high_voter_weights() -> tuple[float, ...]:
    counts = np.arange(10, 29)
    weights = (counts - 9.0) * np.exp(-(counts - 10) / 3.0)  # peaks at 12-13, tail to 28
    return tuple(weights / weights.sum())


REGIMES = (
    VoterRegime("1-2", 0.26, (1, 2), (0.55, 0.45), (0.05, 0.05, 0.04, 0.03, 0.03, 0.80), 0.55, 3.0),
    VoterRegime("3-5", 0.44, (3, 4, 5), (0.6, 0.2, 0.2), (0.50, 0.13, 0.11, 0.06, 0.08, 0.12), 0.55, 3.0),
    VoterRegime("6-9", 0.01, (6, 7, 8, 9), (0.25,) * 4, (0.17, 0.17, 0.17, 0.11, 0.13, 0.25), 0.66, 1.0),
    VoterRegime("10-28", 0.29, tuple(range(10, 29)), _high_voter_weights(),
                (0.09, 0.11, 0.11, 0.07, 0.09, 0.53), 0.7, 1.0),
)
HIGH_REGIME = REGIMES[-1]
_Q_CONCENTRATION = 5.0
# Which classes experts confuse with each main class (rows: main class, CLASSES order).
_CONFUSION = np.array([
    [0, 3, 2, 1, 1, 3],
    [3, 0, 3, 2, 0.5, 2],
    [2, 3, 0, 0.5, 2, 2],
    [1, 2, 0.5, 0, 3, 3],
    [1, 0.5, 2, 3, 0, 3],
    [2, 2, 2, 2, 2, 0],
], dtype=np.float64)
_CONFUSION /= _CONFUSION.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Segment:
    """A stretch of one recording with one signal-level distribution and one set of votes."""

    start_s: float  # long-signal seconds; the first segment starts at -inf, the last ends at +inf
    q: tuple[float, ...]
    p: tuple[float, ...]
    votes: tuple[int, ...]


@dataclass(frozen=True)
class RecordingPlan:
    """Everything the main process decides about one recording; the worker only draws the signal."""

    split: str
    index: int
    eeg_id: int
    spectrogram_id: int
    patient_id: int
    eeg_seconds: int
    eeg_start_s: int  # where the EEG file starts in the spectrogram's time
    total_seconds: int  # the spectrogram's span
    segments: tuple[Segment, ...]
    side: int  # hemisphere of lateralised patterns: 0 left, 1 right
    gain: float
    label_offsets: tuple[int, ...] = ()
    label_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Patient:
    """Tendencies shared by a patient's recordings."""

    patient_id: int
    class_tilt: np.ndarray
    side: int
    gain: float


# ---- public API ---------------------------------------------------------------------------


def write_synthetic(out: Path | str, n_eegs: int = 600, seed: int = 0, n_test: int | None = None,
                    n_jobs: int = 2, gain: float = 1.0) -> dict:
    """Write a complete synthetic competition folder at `out`; return the truth summary.

    `gain` multiplies every EEG amplitude (and so the spectrogram power by gain²), nothing else: the same
    recordings and votes at another amplitude scale, to check that a model learns patterns, not levels.

    The folder appears only when complete (written beside it, then renamed). An existing folder
    is replaced only if it is empty or a previous synthetic output.
    """
    out = Path(out)
    n_test = default_n_test(n_eegs) if n_test is None else n_test
    if not (1 <= n_eegs and 1 <= n_test and n_eegs + n_test <= MAX_RECORDINGS):
        raise UserFacingError(f"--n-eegs ({n_eegs}) and --n-test ({n_test}) must be at least 1 and "
                              f"at most {MAX_RECORDINGS} together")
    _refuse_foreign_folder(out)
    started = time.perf_counter()
    train_plans, test_plans = plan_recordings(n_eegs, n_test, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        summary = _write_folder(partial, train_plans, test_plans, seed, n_jobs, gain)
        _replace_folder(partial, out)
    finally:
        if partial.exists():
            shutil.rmtree(partial)
    log.info("wrote %s in %.1f s", out, time.perf_counter() - started)
    return summary


def default_n_test(n_eegs: int) -> int:
    return max(5, n_eegs // 10)


def plan_recordings(n_eegs: int, n_test: int, seed: int) -> tuple[list[RecordingPlan], list[RecordingPlan]]:
    """Patients, ids, segments, votes and label rows of every train and test recording."""
    rng = np.random.default_rng([seed, 2024])
    n_total = n_eegs + n_test
    ids = _unique_ints(rng, 2 * n_total, 1_000_000, 2**32 - 1)
    groups = _patient_groups(rng, n_eegs, 0)
    groups += _patient_groups(rng, n_test, groups[-1] + 1)  # test patients are new patients
    patient_ids = _unique_ints(rng, groups[-1] + 1, 10_000, 100_000)  # five digits, as in the real data
    patients = [_draw_patient(rng, int(pid)) for pid in patient_ids]
    train = [_plan_train(rng, i, int(ids[i]), int(ids[n_total + i]), patients[groups[i]]) for i in range(n_eegs)]
    test = [_plan_test(rng, j, int(ids[n_eegs + j]), int(ids[n_total + n_eegs + j]), patients[groups[n_eegs + j]])
            for j in range(n_test)]
    label_ids = iter(_unique_ints(rng, sum(len(p.label_offsets) for p in train), 1_000_000, 2**32 - 1).tolist())
    train = [replace(p, label_ids=tuple(next(label_ids) for _ in p.label_offsets)) for p in train]
    return train, test


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="folder to write (created; a previous synthetic output is replaced)")
    parser.add_argument("--n-eegs", type=int, default=600, help="train recordings (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-test", type=int, default=None, help="test recordings (default max(5, n_eegs/10))")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (output does not depend on it)")
    parser.add_argument("--gain", type=float, default=1.0,
                        help="multiply every EEG amplitude (a scaled copy of the same folder: --gain 3)")


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    create_work(args.out.parent)  # folders made above OUT are hms-stack's: `make demo` writes under WORK, cleaned
    summary = write_synthetic(args.out, n_eegs=args.n_eegs, seed=args.seed, n_test=args.n_test, n_jobs=args.jobs,
                              gain=args.gain)
    kl = {key: "n/a" if value is None else f"{value:.3f}" for key, value in summary["kl"].items()}
    print(f"wrote {args.out}: {summary['n_train_eegs']} train EEGs ({summary['n_label_rows']} label rows), "
          f"{summary['n_test_eegs']} test EEGs in {time.perf_counter() - started:.1f} s; "
          f"KL floor {kl['floor_all']} (high-vote {kl['floor_high']}), "
          f"class prior {kl['prior_all']} (high-vote {kl['prior_high']})")


# ---- the output folder ----------------------------------------------------------------------


def is_synthetic_folder(path: Path | str) -> bool:
    summary = Path(path) / "truth" / "summary.json"
    try:
        return json.loads(summary.read_text()).get("generator") in (GENERATOR, *FORMER_NAMES)
    except (OSError, ValueError, AttributeError):
        return False


def _refuse_foreign_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file, not a folder: pass a new folder name to `hms-stack synth`")
    if out.is_dir() and any(out.iterdir()) and not is_synthetic_folder(out):
        raise DataError(f"{out} is not empty and is not a synthetic data folder (no truth/summary.json "
                        f"from {GENERATOR}): pass a new or empty folder, or delete this one yourself")


def _replace_folder(partial: Path, out: Path) -> None:
    """Rename the finished folder into place; a previous output is moved aside first, then deleted."""
    if not out.exists():
        os.replace(partial, out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, trash / out.name)
    os.replace(partial, out)
    shutil.rmtree(trash)


def _write_folder(root: Path, train_plans: list[RecordingPlan], test_plans: list[RecordingPlan],
                  seed: int, n_jobs: int, gain: float = 1.0) -> dict:
    for sub in ("train_eegs", "train_spectrograms", "test_eegs", "test_spectrograms", "truth"):
        (root / sub).mkdir()
    train, train_truth = _train_tables(train_plans)
    test, test_truth = _test_tables(test_plans)
    train.to_csv(root / "train.csv", index=False)
    test.to_csv(root / "test.csv", index=False)
    submission = pd.DataFrame({"eeg_id": test["eeg_id"], **{c: 1 / 6 for c in VOTE_COLUMNS}})
    submission[list(SUBMISSION_COLUMNS)].to_csv(root / "sample_submission.csv", index=False)
    provenance = {"generator": GENERATOR, "seed": seed, "gain": gain}
    write_parquet(root / "truth" / "train_truth.parquet", train_truth, provenance)
    write_parquet(root / "truth" / "test_truth.parquet", test_truth, provenance)
    t0 = time.perf_counter()
    plans = train_plans + test_plans
    Parallel(n_jobs=min(n_jobs, len(plans)))(delayed(render_recording)(plan, seed, root, gain) for plan in plans)
    log.info("rendered %d recordings in %.1f s with %d workers", len(plans), time.perf_counter() - t0, n_jobs)
    summary = {**truth_summary(train, train_truth, seed, len(test_plans)), "gain": gain}
    write_json(root / "truth" / "summary.json", summary)  # last: its presence marks a complete folder
    return summary


def truth_summary(train: pd.DataFrame, train_truth: pd.DataFrame, seed: int, n_test: int) -> dict:
    """KL of the oracle (true distributions) and of the class prior, on the evaluation samples."""
    evaluation = samples(train).merge(train_truth[["label_id", *TRUTH_COLUMNS]], on="label_id", how="left")
    targets = evaluation[list(TARGET_COLUMNS)].to_numpy()
    truth = evaluation[list(TRUTH_COLUMNS)].to_numpy()
    high = evaluation["n_votes"].to_numpy() >= HIGH_VOTE_MIN
    prior = class_prior_predictions(targets, len(targets))
    prior_high = class_prior_predictions(targets[high], int(high.sum())) if high.any() else targets[high]
    kl = {
        "floor_all": kl_divergence(targets, truth),
        "floor_high": _kl_or_none(targets[high], truth[high]),
        "prior_all": kl_divergence(targets, prior),
        "prior_high": _kl_or_none(targets[high], prior[high]),
        "prior_high_own": _kl_or_none(targets[high], prior_high),
    }
    return {
        "generator": GENERATOR, "version": GENERATOR_VERSION, "seed": seed,
        "n_train_eegs": int(train["eeg_id"].nunique()), "n_patients": int(train["patient_id"].nunique()),
        "n_label_rows": len(train), "n_samples": len(evaluation), "n_high_vote_samples": int(high.sum()),
        "n_test_eegs": n_test, "high_vote_min": HIGH_VOTE_MIN, "kl": kl,
        "kl_note": "on features.labels.samples; floor: predictor = the true vote distribution; prior: "
                   "the mean target of all samples; prior_high_own: the mean target of the high-vote "
                   "samples, scored on them",
        # label rows per voter band (the regimes' shares), as `hms-stack summary` tabulates samples
        "voter_bands": voter_table(add_vote_targets(train)).to_dict(orient="records"),
    }


def _kl_or_none(targets: np.ndarray, preds: np.ndarray) -> float | None:
    return kl_divergence(targets, preds) if len(targets) else None  # tiny folders may have no high-vote row


# ---- planning: patients, segments, votes --------------------------------------------------


def _unique_ints(rng: np.random.Generator, n: int, low: int, high: int) -> np.ndarray:
    return low + rng.choice(high - low, size=n, replace=False)


def _patient_groups(rng: np.random.Generator, n_recordings: int, first: int) -> list[int]:
    """Patient number of every recording, counting from `first`: patients have 1-4 recordings."""
    groups: list[int] = []
    patient = first
    while len(groups) < n_recordings:
        groups.extend([patient] * int(rng.choice([1, 2, 3, 4], p=[0.4, 0.3, 0.2, 0.1])))
        patient += 1
    return groups[:n_recordings]


def _draw_patient(rng: np.random.Generator, patient_id: int) -> Patient:
    # Patient tendencies: some classes more likely, a preferred hemisphere, a scalp/amplifier gain.
    return Patient(patient_id, np.exp(rng.normal(0, 0.5, len(CLASSES))), int(rng.integers(2)),
                   float(np.exp(rng.normal(0, 0.45))))


def _draw_segment(rng: np.random.Generator, regime: VoterRegime, patient: Patient, start_s: float) -> Segment:
    mix = np.asarray(regime.class_mix) * patient.class_tilt
    main = int(rng.choice(len(CLASSES), p=mix / mix.sum()))
    base = regime.main_weight * np.eye(len(CLASSES))[main] + (1 - regime.main_weight) * _CONFUSION[main]
    q = rng.dirichlet(_Q_CONCENTRATION * base)
    q = np.maximum(q, 1e-6)
    q /= q.sum()
    p = q**regime.sharpen
    p /= p.sum()
    n_voters = int(rng.choice(regime.voters, p=regime.voter_weights))
    votes = rng.multinomial(n_voters, p)
    return Segment(start_s, tuple(q.tolist()), tuple(p.tolist()), tuple(int(v) for v in votes))


def _plan_train(rng: np.random.Generator, index: int, eeg_id: int, spec_id: int, patient: Patient) -> RecordingPlan:
    regime = REGIMES[int(rng.choice(len(REGIMES), p=[r.row_share for r in REGIMES]))]
    eeg_seconds = 2 * int(rng.integers(28, 46))  # 56-90 s: several label windows per recording
    extra = 2 * int(rng.integers(0, 51))  # spectrogram seconds before the first label window
    tail = 2 * int(rng.integers(0, 11))
    eeg_start = extra + _SPEC_HALF_S
    boundaries = []  # EEG seconds where a second segment starts
    if eeg_seconds >= 70 and rng.random() < 0.4:
        boundaries = [float(rng.uniform(EEG_WINDOW_S / 2 + 10, eeg_seconds - EEG_WINDOW_S / 2 - 10))]
    centres = _label_centres(rng, eeg_seconds, boundaries)
    segments = tuple(_draw_segment(rng, regime, patient, eeg_start + b) for b in [-np.inf, *boundaries])
    return RecordingPlan(
        "train", index, eeg_id, spec_id, patient.patient_id, eeg_seconds, eeg_start,
        eeg_start + eeg_seconds + _SPEC_HALF_S + tail, segments, _side(rng, patient),
        _gain(rng, patient), tuple(int(c - EEG_WINDOW_S / 2) for c in centres),
    )


def _label_centres(rng: np.random.Generator, eeg_seconds: int, boundaries: list[float]) -> np.ndarray:
    """EEG seconds of the label centres: 2 s steps, about 3 in 4 kept, none near a segment boundary,
    at least one in every segment."""
    centres = np.arange(EEG_WINDOW_S / 2, eeg_seconds - EEG_WINDOW_S / 2 + 1, 2)
    clear = np.ones(len(centres), dtype=bool)
    for boundary in boundaries:
        clear &= np.abs(centres - boundary) >= _BOUNDARY_MARGIN_S
    keep = clear & (rng.random(len(centres)) < 0.75)
    segment_of = np.searchsorted(boundaries, centres)
    for segment in range(len(boundaries) + 1):
        if not keep[segment_of == segment].any():
            keep[np.flatnonzero(clear & (segment_of == segment))[0]] = True
    return centres[keep]


def _plan_test(rng: np.random.Generator, index: int, eeg_id: int, spec_id: int, patient: Patient) -> RecordingPlan:
    # The hidden test set is mostly high-vote: test rows are drawn like the high-vote train rows.
    segment = _draw_segment(rng, HIGH_REGIME, patient, -np.inf)
    return RecordingPlan("test", index, eeg_id, spec_id, patient.patient_id, EEG_WINDOW_S, _SPEC_HALF_S,
                         SPEC_WINDOW_S, (segment,), _side(rng, patient), _gain(rng, patient), (0,))


def _side(rng: np.random.Generator, patient: Patient) -> int:
    return patient.side if rng.random() < 0.8 else 1 - patient.side


def _gain(rng: np.random.Generator, patient: Patient) -> float:
    # The recording's overall gain (patient scalp and amplifier): log-normal, about 0.3x to 3x, so
    # that the absolute level alone identifies nothing.
    return float(patient.gain * np.exp(rng.normal(0, 0.3)))


def _segment_at(plan: RecordingPlan, time_s: float) -> Segment:
    return [s for s in plan.segments if s.start_s <= time_s][-1]


def _train_tables(plans: list[RecordingPlan]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, truth = [], []
    for plan in plans:
        extra = plan.eeg_start_s - _SPEC_HALF_S
        for sub, (offset, label_id) in enumerate(zip(plan.label_offsets, plan.label_ids, strict=True)):
            segment = _segment_at(plan, plan.eeg_start_s + offset + EEG_WINDOW_S / 2)
            rows.append((plan.eeg_id, sub, float(offset), plan.spectrogram_id, sub, float(offset + extra),
                         label_id, plan.patient_id, CONSENSUS_NAMES[int(np.argmax(segment.votes))],
                         *segment.votes))
            truth.append((label_id, plan.eeg_id, *segment.p))
    return (pd.DataFrame(rows, columns=list(TRAIN_COLUMNS)),
            pd.DataFrame(truth, columns=["label_id", "eeg_id", *TRUTH_COLUMNS]))


def _test_tables(plans: list[RecordingPlan]) -> tuple[pd.DataFrame, pd.DataFrame]:
    test = pd.DataFrame([(p.spectrogram_id, p.eeg_id, p.patient_id) for p in plans], columns=list(TEST_COLUMNS))
    truth = pd.DataFrame([(p.eeg_id, *p.segments[0].p) for p in plans], columns=["eeg_id", *TRUTH_COLUMNS])
    return test, truth


# ---- rendering: one long signal per recording ---------------------------------------------


def render_recording(plan: RecordingPlan, seed: int, root: Path, gain: float = 1.0) -> None:
    """Simulate `plan`'s signal and write its EEG slice and its spectrogram (the worker's job).

    Seeded from (seed, split, index) alone, so the output does not depend on the worker count.
    """
    _keep_freed_memory()
    rng = np.random.default_rng([seed, 0 if plan.split == "train" else 1, plan.index])
    signal = simulate_signal(plan, rng)
    if gain != 1.0:
        signal *= np.float32(gain)
    start = (_PAD_S + plan.eeg_start_s) * FS
    eeg = signal[:, start:start + plan.eeg_seconds * FS]
    times = np.arange(1, plan.total_seconds, SPEC_STEP_S)
    power = chain_spectrogram(signal[:-1], (times + _PAD_S) * FS)
    _write_columns(root / f"{plan.split}_eegs" / f"{plan.eeg_id}.parquet", EEG_COLUMNS, list(eeg))
    _write_columns(root / f"{plan.split}_spectrograms" / f"{plan.spectrogram_id}.parquet",
                   ("time", *SPEC_COLUMNS), [times.astype(np.int64), *np.ascontiguousarray(power.T)])


@functools.cache
def _keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    Every recording allocates and frees ~100 MB of arrays; by default glibc unmaps them each time and
    the page faults of the next recording cost ~15% of the run. No-op where libc is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, 512 << 20)  # M_TRIM_THRESHOLD: keep up to 512 MB free at the heap top
        libc.mallopt(-3, 256 << 20)  # M_MMAP_THRESHOLD: arrays up to 256 MB come from the heap
    except (OSError, AttributeError):
        pass


def _write_columns(path: Path, names: tuple[str, ...], columns: list[np.ndarray]) -> None:
    # Plain arrow columns (no pandas index, no metadata), as in the Kaggle files.
    pq.write_table(pa.Table.from_arrays([pa.array(c) for c in columns], names=list(names)), path,
                   use_dictionary=False)  # noise has no repeated values: dictionaries only cost time


def chain_spectrogram(scalp: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(frames, 400) float32 chain power in SPEC_COLUMNS order, one frame centred on each sample index.

    `scalp` is (19, T) in EEG_COLUMNS order; every frame must lie inside it.
    """
    window = hann_f32(SPEC_NFFT)
    density = np.float32(2.0 / (FS * float((window**2).sum())))  # one-sided power spectral density
    out = np.empty((len(centres), len(CHAINS), len(SPEC_BINS)), dtype=np.float32)
    for c, chain in enumerate(CHAINS):  # chain by chain: the frames stay small
        pairs = CHAIN_PAIRS[chain]
        bipolar = scalp[[_INDEX[a] for a, _ in pairs]] - scalp[[_INDEX[b] for _, b in pairs]]
        frames = np.lib.stride_tricks.sliding_window_view(bipolar, SPEC_NFFT, axis=1)[:, centres - SPEC_NFFT // 2]
        frames *= window
        spectra = scipy.fft.rfft(frames, axis=-1, overwrite_x=True)[..., SPEC_BINS[0]:SPEC_BINS[-1] + 1]
        out[:, c] = (spectra.real**2 + spectra.imag**2).mean(axis=0) * density
    return out.reshape(len(centres), -1)


def simulate_signal(plan: RecordingPlan, rng: np.random.Generator) -> np.ndarray:
    """(20, T) float32 µV in EEG_COLUMNS order; sample 0 is _PAD_S seconds before spectrogram time 0.

    The scalp signal is simulated at a common scale, then multiplied by the recording's gain
    (patient and amplifier, log-normal), so that the absolute level says nothing about the class.
    """
    n = (plan.total_seconds + 2 * _PAD_S) * FS
    t = np.arange(n) / FS - _PAD_S
    noise = _pink_noise(rng, _SHARED_SOURCES + len(SCALP), n, slope=rng.uniform(0.6, 1.7),
                        floor_hz=rng.uniform(0.15, 0.6))
    ekg = _ekg(rng, t)
    sources = [*_background_sources(rng, t, noise[:_SHARED_SOURCES]), *_class_sources(rng, plan, t),
               (_ekg_leak_field(rng)[:, None], ekg[None])]
    signal = np.empty((len(EEG_COLUMNS), n), dtype=np.float32)
    _mix(sources, out=signal[:-1])
    signal[:-1] += np.float32(rng.uniform(4, 10)) * noise[_SHARED_SOURCES:]  # local, uncorrelated noise
    _add_artifacts(rng, signal[:-1])
    signal[:-1] *= np.float32(plan.gain)
    signal[-1] = ekg
    _add_line_noise(rng, signal[:-1], t)
    _add_dropouts(rng, plan, signal)
    return signal


def _mix(sources: list[tuple[np.ndarray, np.ndarray]], out: np.ndarray) -> None:
    """Sum of (19, K) fields times (K, T) source series into `out`, in one pass.

    einsum rather than a BLAS matmul: OpenBLAS threads oversubscribe the 2 cores the workers share.
    """
    fields = np.concatenate([f for f, _ in sources], axis=1).astype(np.float32)
    series = np.concatenate([s for _, s in sources], axis=0).astype(np.float32, copy=False)
    np.einsum("ck,kt->ct", fields, series, out=out)


Source = tuple[np.ndarray, np.ndarray]  # (19, K) field, (K, T) series


# -- background -------------------------------------------------------------------------------

_SHARED_SOURCES = 5


def _background_sources(rng: np.random.Generator, t: np.ndarray, shared: np.ndarray) -> list[Source]:
    """The recording's own background: pink noise (its 1/f slope drawn by the caller) through broad
    fields, and in some recordings a waxing and waning posterior dominant rhythm at its own frequency,
    sleep-like spindles and vertex transients, diffuse polymorphic slowing, slow drifts."""
    level = rng.uniform(13, 20)
    fields = [level * _bump(rng.uniform(-1, 1, 2), rng.uniform(0.6, 1.0)) for _ in range(len(shared))]
    out = [(np.stack(fields, axis=1), shared)]
    if rng.random() < 0.4:
        out.append(_dominant_rhythm(rng, t))
    if rng.random() < 0.25:
        out.extend(_sleep_transients(rng, t))
    if rng.random() < 0.2:
        field = _general_field(rng) if rng.random() < 0.7 else _lateral_field(rng, int(rng.integers(2)))
        out.append((rng.uniform(10, 30) * field[:, None], _polymorphic_delta(rng, t)[None]))
    if rng.random() < 0.5:  # sweat or electrode drift: slow, below the spectrogram's lowest bin
        knots = np.arange(t[0], t[-1] + 10, rng.uniform(4, 10))
        drift = np.interp(t, knots, rng.standard_normal(len(knots))).astype(np.float32)
        out.append((rng.uniform(5, 40) * _bump(rng.uniform(-1, 1, 2), 0.5)[:, None], drift[None]))
    return out


def _dominant_rhythm(rng: np.random.Generator, t: np.ndarray) -> Source:
    """Posterior rhythm at a recording-specific 6-11 Hz, in bursts that wax and wane, slightly asymmetric."""
    freq = rng.uniform(6, 11) * (0.95 + 0.1 * _slow(rng, t, 8.0, 0.0))
    envelope = _slow(rng, t, rng.uniform(0.6, 2.0), 0.0) ** 2
    envelope *= _bursts(rng, t, rng.uniform(3, 30), rng.uniform(5, 60), ramp_s=1.5)
    wave = np.sin(_phase(freq, rng.uniform(0, 2 * np.pi))) * envelope.astype(np.float32)
    asymmetry = rng.uniform(0.7, 1.0)
    field = _bump((-0.3, -0.9), 0.45) * asymmetry + _bump((0.3, -0.9), 0.45) * (1.7 - asymmetry)
    return rng.uniform(8, 40) * (field / field.max())[:, None], wave[None]


def _sleep_transients(rng: np.random.Generator, t: np.ndarray) -> list[Source]:
    """Spindles (11-15 Hz, 0.5-1.5 s) and vertex-like sharp transients at random, non-periodic times."""
    n = len(t)
    seconds = rng.uniform(0.5, 1.5)
    tk = np.arange(int(seconds * FS)) / FS
    spindle = np.sin(2 * np.pi * rng.uniform(11, 15) * tk) * hann_f32(len(tk))
    count = rng.poisson(rng.uniform(2, 8) * n / FS / 60)
    spindles = _place(n, rng.integers(0, n, count), spindle, rng.uniform(0.5, 1.0, count))
    vertex = _gauss(0.6, ((0.3, 0.1, 0.03), (-1.0, 0.2, rng.uniform(0.03, 0.06)), (0.4, 0.35, 0.08)))
    count = rng.poisson(rng.uniform(1, 6) * n / FS / 60)
    vertices = _place(n, rng.integers(0, n, count), vertex, rng.uniform(0.5, 1.0, count))
    return [(rng.uniform(10, 30) * _bump((0, 0), 0.45)[:, None], spindles[None]),
            (rng.uniform(40, 120) * _bump((0, 0.1), 0.4)[:, None], vertices[None])]


def _polymorphic_delta(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Irregular 0.5-3 Hz activity (no stable rhythm), waxing and waning: diffuse slowing."""
    n_fft = scipy.fft.next_fast_len(len(t), real=True)
    freqs = np.fft.rfftfreq(n_fft, 1 / FS)
    shape = ((freqs > 0.5) & (freqs < 3.0)).astype(np.float32)
    coeffs = (rng.standard_normal(len(freqs)) + 1j * rng.standard_normal(len(freqs))) * shape
    series = scipy.fft.irfft(coeffs, n_fft)[:len(t)]
    series /= series.std() + 1e-12
    return (series * _slow(rng, t, 3.0, 0.3)).astype(np.float32)


def _add_field(scalp: np.ndarray, field: np.ndarray, series: np.ndarray) -> None:
    """Add `series` seen through `field`, only on the electrodes the field reaches."""
    reached = np.flatnonzero(np.abs(field) > 1e-3 * np.abs(field).max())
    scalp[reached] += field[reached, None].astype(np.float32) * series.astype(np.float32, copy=False)


def _pink_noise(rng: np.random.Generator, n_series: int, n: int, slope: float = 1.0,
                floor_hz: float = 0.5) -> np.ndarray:
    """(n_series, n) float32 unit-variance noise with 1/f**slope power between `floor_hz` and ~70 Hz."""
    n_fft = scipy.fft.next_fast_len(n, real=True)
    freqs = np.fft.rfftfreq(n_fft, 1 / FS)
    # 1/f power, flat below floor_hz (no huge drifts) and rolled off above 70 Hz like an amplifier filter.
    shape = np.maximum(freqs, floor_hz) ** (-slope / 2) / (1 + (freqs / 70) ** 4)
    shape[0] = 0
    # Unit variance: each coefficient adds 2/n_fft * Re(c) with E[Re(c)^2] = 1/12 per shape^2.
    shape = (shape / np.sqrt((shape**2).sum() / (3 * n_fft**2))).astype(np.float32)
    # Uniform rather than Gaussian coefficients: 7x cheaper to draw, and the sum over thousands of
    # frequencies makes the series Gaussian anyway.
    coeffs = rng.random((n_series, len(freqs), 2), dtype=np.float32)
    coeffs -= 0.5
    coeffs = coeffs.view(np.complex64)[..., 0]
    coeffs *= shape
    return scipy.fft.irfft(coeffs, n_fft, axis=-1, overwrite_x=True)[:, :n]


def _bump(centre, width: float) -> np.ndarray:
    """(19,) Gaussian spatial field around a scalp position."""
    d2 = ((XY - np.asarray(centre)) ** 2).sum(axis=1)
    return np.exp(-d2 / (2 * width**2))


def _slow(rng: np.random.Generator, t: np.ndarray, knot_s: float, floor: float) -> np.ndarray:
    """A slowly varying envelope in [floor, 1]: random values every `knot_s` seconds, interpolated."""
    knots = np.arange(t[0], t[-1] + knot_s, knot_s)
    return np.interp(t, knots, rng.uniform(floor, 1.0, len(knots)))


def _bursts(rng: np.random.Generator, t: np.ndarray, mean_on_s: float, mean_off_s: float,
            ramp_s: float) -> np.ndarray:
    """(T,) float64 on/off envelope in [0, 1]: exponential on and off durations, linear ramps between."""
    on = rng.random() < mean_on_s / (mean_on_s + mean_off_s)
    start = t[0] - rng.uniform(0, mean_on_s + mean_off_s)
    knots, values = [], []
    while start < t[-1]:
        hold = rng.exponential(mean_on_s if on else mean_off_s)
        knots += [start, start + hold]
        values += [float(on), float(on)]
        start += hold + ramp_s
        on = not on
    return np.interp(t, knots, values)


# -- class patterns ----------------------------------------------------------------------------

# Pattern amplitudes (µV at the field's peak, before the recording gain) relative to the background.
_AMPLITUDE = {"seizure": 140, "lpd": 250, "gpd": 220, "lrda": 110, "grda": 110, "other": 1}


def _class_sources(rng: np.random.Generator, plan: RecordingPlan, t: np.ndarray) -> list[Source]:
    """Every class pattern, its amplitude following the segment's q, present over a varied extent
    around the labelled span (onset and offset ramps) and faded or absent elsewhere. `other` brings
    hard negatives: sporadic sharp transients, irregular slowing, rhythmic artifacts."""
    weights = _class_weights(plan, t)
    lo = plan.eeg_start_s + min(plan.label_offsets) + (EEG_WINDOW_S - 10) / 2  # first labelled 10 s
    hi = plan.eeg_start_s + max(plan.label_offsets) + (EEG_WINDOW_S + 10) / 2  # end of the last
    makers = (_seizure, _lpd, _gpd, _lrda, _grda, _other)
    out = []
    for k, (name, make) in enumerate(zip(CLASSES, makers, strict=True)):
        if weights[k].max() < 0.01 or (name == "other" and rng.random() < 0.5):  # invisible, or plain
            continue
        fields, series, envelope = make(rng, t, plan.side, lo, hi)
        scale = np.float32(_AMPLITUDE[name] * np.exp(rng.normal(0, 0.15)))
        series *= weights[k] * envelope.astype(np.float32) * scale
        out.append((fields, series))
    return out


def _class_weights(plan: RecordingPlan, t: np.ndarray) -> np.ndarray:
    """(6, T) float32: q over time, crossfaded at segment boundaries."""
    q = np.array([s.q for s in plan.segments], dtype=np.float32)
    weights = np.repeat(q[0][:, None], len(t), axis=1)
    for k in range(1, len(q)):
        step = np.clip((t - plan.segments[k].start_s) / _CROSSFADE_S + 0.5, 0, 1).astype(np.float32)
        weights += (q[k] - q[k - 1])[:, None] * step
    return weights


def _extent(rng: np.random.Generator, t: np.ndarray, on: float, off: float, residual: float) -> np.ndarray:
    """(T,) envelope: 1 over [on, off] with waxing and waning, ramps of 2-10 s outside it, and elsewhere
    nothing or (with probability `residual`) a faint intermittent remnant."""
    ramp_in, ramp_out = rng.uniform(2, 10, 2)
    envelope = np.clip(np.minimum((t - on) / ramp_in + 1, (off - t) / ramp_out + 1), 0, 1)
    envelope *= _slow(rng, t, rng.uniform(2, 6), 0.65)
    if rng.random() < residual:
        envelope = np.maximum(envelope, rng.uniform(0.05, 0.35) * _bursts(rng, t, 10, 30, 3.0))
    return envelope


def _around(rng: np.random.Generator, lo: float, hi: float, mean_s: float) -> tuple[float, float]:
    """A pattern's span: the labelled span [lo, hi] and an exponential extent either side."""
    before, after = rng.exponential(mean_s, 2)
    return lo - before, hi + after


def _lateral_field(rng: np.random.Generator, side: int) -> np.ndarray:
    """A focal field on one hemisphere around an electrode, its width (how many electrodes it covers)
    and its spill over the midline drawn per pattern."""
    names = RIGHT if side else LEFT
    focus = XY[_INDEX[names[int(rng.integers(len(names)))]]]
    x = XY[:, 0] * (1 if side else -1)
    spill = rng.uniform(0.0, 0.15)
    hemisphere = np.where(x > 0, 1.0, np.where(x == 0, 0.2 + 2 * spill, spill))
    field = _bump(focus, rng.uniform(0.25, 0.7)) * hemisphere
    return field / field.max()


def _general_field(rng: np.random.Generator) -> np.ndarray:
    """A field on both hemispheres, mirror-symmetric, varying front to back so bipolar pairs see it."""
    spread, front = rng.uniform(0.3, 0.7), rng.uniform(-0.4, 0.9)
    width = rng.uniform(0.4, 0.75)
    field = _bump((-spread, front), width) + _bump((spread, front), width)
    field *= np.exp(0.1 * rng.standard_normal() * np.sign(XY[:, 0]))  # slight natural asymmetry
    return field / field.max()


def _seizure(rng: np.random.Generator, t: np.ndarray, side: int, lo: float, hi: float):
    """One seizure of 20-150 s around the labelled span that evolves once: its frequency slows (or
    speeds up) from a varied onset frequency, its amplitude grows and its waveform sharpens; a focal
    onset may spread to both hemispheres."""
    duration = max(hi - lo + rng.uniform(4, 30), rng.uniform(20, 150))
    onset = lo - rng.uniform(0, duration - (hi - lo))
    progress = np.clip((t - onset) / duration, 0, 1)
    if rng.random() < 0.6:
        start_hz = rng.uniform(4, 12)
        end_hz = max(1.5, start_hz * rng.uniform(0.3, 0.7))
    else:
        start_hz, end_hz = rng.uniform(2, 5), rng.uniform(5, 10)
    freq = start_hz + (end_hz - start_hz) * progress ** rng.uniform(0.6, 1.5)
    phase = _phase(freq, rng.uniform(0, 2 * np.pi))
    sharp = (rng.uniform(0, 0.5) + rng.uniform(0, 0.8) * progress).astype(np.float32)
    wave = np.sin(phase) + np.float32(rng.uniform(0.1, 0.4)) * np.sin(2 * phase + np.float32(rng.uniform(0, 6)))
    wave += sharp * (np.exp(np.float32(4) * (np.cos(phase) - 1)) - np.float32(0.25))  # spike-and-wave
    wave *= (0.6 + 0.4 * progress).astype(np.float32)
    envelope = _extent(rng, t, onset, onset + duration, residual=0.0)
    focal = _lateral_field(rng, side) if rng.random() < 0.6 else _general_field(rng)
    if rng.random() < 0.4:  # spreads from its focus to both hemispheres as it evolves
        spread = (rng.uniform(0.3, 1.0) * progress).astype(np.float32)
        fields = np.stack([focal, _general_field(rng)], axis=1)
        return fields, np.stack([wave * (1 - spread), wave * spread]), envelope
    return focal[:, None], wave[None], envelope


def _lpd(rng: np.random.Generator, t: np.ndarray, side: int, lo: float, hi: float):
    """Periodic sharp discharges (0.5-2.5 Hz) on one hemisphere, their shape drawn per recording."""
    wave = _discharges(rng, len(t), rng.uniform(0.5, 2.5), _discharge_kernel(rng, triphasic=False))
    return _lateral_field(rng, side)[:, None], wave[None], _extent(rng, t, *_around(rng, lo, hi, 25), 0.5)


def _gpd(rng: np.random.Generator, t: np.ndarray, side: int, lo: float, hi: float):
    """Periodic (often triphasic) discharges (0.5-3 Hz) on both hemispheres."""
    kernel = _discharge_kernel(rng, triphasic=rng.random() < 0.6)
    wave = _discharges(rng, len(t), rng.uniform(0.5, 3.0), kernel)
    return _general_field(rng)[:, None], wave[None], _extent(rng, t, *_around(rng, lo, hi, 25), 0.5)


def _lrda(rng: np.random.Generator, t: np.ndarray, side: int, lo: float, hi: float):
    """Rhythmic 1-3 Hz delta on one hemisphere."""
    return (_lateral_field(rng, side)[:, None], _rhythm(rng, t, 1.0, 3.0)[None],
            _extent(rng, t, *_around(rng, lo, hi, 20), 0.5))


def _grda(rng: np.random.Generator, t: np.ndarray, side: int, lo: float, hi: float):
    """Rhythmic 1-3 Hz delta on both hemispheres."""
    return (_general_field(rng)[:, None], _rhythm(rng, t, 1.0, 3.0)[None],
            _extent(rng, t, *_around(rng, lo, hi, 20), 0.5))


def _other(rng: np.random.Generator, t: np.ndarray, side: int, lo: float, hi: float):
    """Hard negatives that experts call `other`: sporadic (not periodic) sharp transients, irregular
    (not rhythmic) slowing, or a rhythmic artifact (glossokinetic / chewing-like)."""
    n = len(t)
    kind = rng.choice(3, p=(0.4, 0.35, 0.25))
    field = _lateral_field(rng, side) if rng.random() < 0.5 else _general_field(rng)
    if kind == 0:
        count = rng.poisson(rng.uniform(0.05, 0.3) * n / FS)
        wave = _place(n, rng.integers(0, n, count), _discharge_kernel(rng, rng.random() < 0.3),
                      rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 1.0, count)) * np.float32(rng.uniform(50, 120))
    elif kind == 1:
        wave = _polymorphic_delta(rng, t) * np.float32(rng.uniform(25, 60))
    else:  # frontal rhythmic artifact, 1-4 Hz, in bursts of a few seconds
        field = np.exp(-((1 - XY[:, 1]) ** 2) / (2 * 0.35**2))
        freq = rng.uniform(1, 4) * (0.85 + 0.3 * _slow(rng, t, 2.0, 0.0))
        wave = np.sin(_phase(freq)) * _bursts(rng, t, 4, 8, 0.5).astype(np.float32) * np.float32(rng.uniform(30, 70))
    return field[:, None], wave[None].astype(np.float32), _extent(rng, t, *_around(rng, lo, hi, 30), 0.6)


def _rhythm(rng: np.random.Generator, t: np.ndarray, low: float, high: float) -> np.ndarray:
    """A sharpened sinusoid whose frequency drifts ±10% and whose harmonics (waveform) vary per recording."""
    freq = rng.uniform(low, high) * (0.9 + 0.2 * _slow(rng, t, 5.0, 0.0))
    phase = _phase(freq, rng.uniform(0, 2 * np.pi))
    wave = np.sin(phase) + np.float32(rng.uniform(0, 0.45)) * np.sin(2 * phase + np.float32(rng.uniform(0, 6.3)))
    return wave.astype(np.float32)


def _phase(freq_hz: np.ndarray, start: float = 0.0) -> np.ndarray:
    """Instantaneous phase of a frequency track: summed in float64, returned as float32 for a fast sin."""
    return (start + 2 * np.pi / FS * np.cumsum(freq_hz)).astype(np.float32)


def _discharge_kernel(rng: np.random.Generator, triphasic: bool) -> np.ndarray:
    """A discharge waveform drawn per recording: spike width, after-going slow wave, optional phases."""
    spike = rng.uniform(0.015, 0.045)
    slow = (rng.uniform(0.2, 0.8), rng.uniform(0.15, 0.28), rng.uniform(0.04, 0.12))
    parts = ((-1.0, 0.08, spike), slow)
    if triphasic:
        parts = ((rng.uniform(0.2, 0.5), 0.04, rng.uniform(0.015, 0.03)), (-1.0, 0.11, spike * 1.3),
                 (rng.uniform(0.4, 0.8), rng.uniform(0.22, 0.3), rng.uniform(0.05, 0.1)))
    return _gauss(0.55, parts)


def _discharges(rng: np.random.Generator, n: int, rate_hz: float, kernel: np.ndarray) -> np.ndarray:
    starts = _periodic_starts(rng, n, rate_hz, jitter=rng.uniform(0.03, 0.2))
    amplitudes = rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.0, len(starts))
    return _place(n, starts, kernel, amplitudes)


def _periodic_starts(rng: np.random.Generator, n: int, rate_hz: float, jitter: float) -> np.ndarray:
    mean = FS / rate_hz
    count = int(n / mean * 1.3) + 3
    intervals = mean * np.clip(1 + jitter * rng.standard_normal(count), 0.5, 1.5)
    starts = (np.cumsum(intervals) - rng.uniform(0, 2 * mean)).astype(np.int64)
    return starts[starts < n]


def _place(n: int, starts: np.ndarray, kernel: np.ndarray, amplitudes: np.ndarray) -> np.ndarray:
    """(n,) float32: `kernel` scaled by each amplitude, added at each start (may overlap the edges)."""
    index = starts[:, None] + np.arange(len(kernel))
    weights = amplitudes[:, None] * kernel
    inside = (index >= 0) & (index < n)
    return np.bincount(index[inside], weights[inside], minlength=n).astype(np.float32)


def _gauss(seconds: float, parts: tuple[tuple[float, float, float], ...]) -> np.ndarray:
    """A waveform made of Gaussian bumps (amplitude, centre s, width s), sampled at FS."""
    t = np.arange(int(seconds * FS)) / FS
    return sum(a * np.exp(-0.5 * ((t - c) / w) ** 2) for a, c, w in parts)


_HEARTBEAT = _gauss(0.7, ((0.1, 0.1, 0.025), (-0.1, 0.2, 0.008), (1.0, 0.22, 0.01), (-0.25, 0.24, 0.01),
                          (0.3, 0.45, 0.05)))
_BLINK = _gauss(0.5, ((1.0, 0.25, 0.07),))


# -- EKG, artifacts, dropouts --------------------------------------------------------------------


def _ekg(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """QRS-like beats at 60-100 bpm with a little heart-rate variability, plus baseline noise."""
    starts = _periodic_starts(rng, len(t), rng.uniform(60, 100) / 60, jitter=0.03)
    amplitudes = rng.uniform(300, 900) * (1 + 0.05 * rng.standard_normal(len(starts)))
    ekg = _place(len(t), starts, _HEARTBEAT, amplitudes)
    ekg += rng.normal(0, 5, len(t)).astype(np.float32)
    return ekg


def _ekg_leak_field(rng: np.random.Generator) -> np.ndarray:
    # EKG artifact is strongest on the left temporal/posterior electrodes, as usual in real recordings.
    return rng.uniform(0.005, 0.02) * (0.3 + _bump((-0.8, -0.5), 0.6)).astype(np.float32)


def _add_artifacts(rng: np.random.Generator, scalp: np.ndarray) -> None:
    """Artifacts drawn independently of the class (each in some recordings)."""
    if rng.random() < 0.7:
        _add_blinks(rng, scalp)
    if rng.random() < 0.4:
        _add_eye_movements(rng, scalp)
    if rng.random() < 0.5:
        _add_muscle(rng, scalp)
    if rng.random() < 0.2:
        _add_chewing(rng, scalp)
    if rng.random() < 0.5:
        _add_pops(rng, scalp)


def _add_eye_movements(rng: np.random.Generator, scalp: np.ndarray) -> None:
    """Lateral eye movements: slow steps of opposite polarity on F7 and F8, lasting 0.5-2 s."""
    n = scalp.shape[1]
    count = rng.poisson(rng.uniform(0.02, 0.15) * n / FS)
    kernel = hann_f32(int(rng.uniform(0.5, 2.0) * FS))
    series = _place(n, rng.integers(0, n, count), kernel, rng.uniform(30, 120, count) * rng.choice([-1.0, 1.0], count))
    field = _bump((-0.8, 0.7), 0.3) - _bump((0.8, 0.7), 0.3)
    _add_field(scalp, field, series)


def _add_chewing(rng: np.random.Generator, scalp: np.ndarray) -> None:
    """Chewing: runs of muscle bursts repeating at 1-2 Hz for several seconds on temporal electrodes."""
    n = scalp.shape[1]
    idx = [_INDEX[name] for name in ("F7", "T3", "T5", "F8", "T4", "T6")]
    for _ in range(rng.poisson(2 * n / FS / 60) + 1):
        length = int(rng.uniform(3, 12) * FS)
        start = int(rng.integers(0, n - length))
        beat = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(1, 2) * np.arange(length) / FS)
        burst = np.diff(rng.standard_normal((len(idx), length + 1)), axis=1) * (beat**4 * hann_f32(length))
        scalp[idx, start:start + length] += (rng.uniform(20, 80) * burst).astype(np.float32)


def _add_line_noise(rng: np.random.Generator, scalp: np.ndarray, t: np.ndarray) -> None:
    """Mains interference (50 or 60 Hz) of a few µV, different on every electrode, in some recordings."""
    if rng.random() < 0.3:
        hum = np.sin(_phase(np.full(len(t), rng.choice([50.0, 60.0])), rng.uniform(0, 2 * np.pi)))
        scalp += np.outer(rng.uniform(0, 1, len(SCALP)) * rng.uniform(2, 20), hum).astype(np.float32)


def _add_blinks(rng: np.random.Generator, scalp: np.ndarray) -> None:
    """Eye blinks: large slow positive waves on Fp1/Fp2, fading towards the back."""
    n = scalp.shape[1]
    count = rng.poisson(rng.uniform(0.05, 0.3) * n / FS)
    series = _place(n, rng.integers(0, n, count), _BLINK, rng.uniform(80, 250, count))
    _add_field(scalp, np.exp(-((1 - XY[:, 1]) ** 2) / (2 * 0.25**2)), series)


def _add_muscle(rng: np.random.Generator, scalp: np.ndarray) -> None:
    """Muscle bursts: high-frequency noise for 0.5-3 s on temporal and frontal electrodes."""
    n = scalp.shape[1]
    sides = (("Fp1", "F7", "T3", "T5"), ("Fp2", "F8", "T4", "T6"))
    for _ in range(rng.poisson(1.5 * n / FS / 60)):
        length = int(rng.uniform(0.5, 3.0) * FS)
        start = int(rng.integers(0, n - length))
        names = sides[0] + sides[1] if rng.random() < 0.3 else sides[int(rng.integers(2))]
        idx = [_INDEX[name] for name in names]
        burst = np.diff(rng.standard_normal((len(idx), length + 1)), axis=1) * hann_f32(length)
        scalp[idx, start:start + length] += (rng.uniform(15, 60) / np.sqrt(2) * burst).astype(np.float32)


def _add_pops(rng: np.random.Generator, scalp: np.ndarray) -> None:
    """Electrode pops: huge (300-1500 µV) fast transients decaying over 0.05-0.4 s on one electrode."""
    n = scalp.shape[1]
    for _ in range(int(rng.integers(1, 6))):
        tau = rng.uniform(0.05, 0.4)
        t = np.arange(int(5 * tau * FS)) / FS
        shape = (1 - np.exp(-t / 0.004)) * np.exp(-t / tau)
        start = int(rng.integers(0, n - len(t)))
        amplitude = rng.choice([-1.0, 1.0]) * rng.uniform(300, 1500)
        scalp[int(rng.integers(len(SCALP))), start:start + len(t)] += (amplitude * shape).astype(np.float32)


def _add_dropouts(rng: np.random.Generator, plan: RecordingPlan, signal: np.ndarray) -> None:
    """NaN gaps (rows of NaN across channels) and flat channels in a few percent of recordings."""
    eeg_lo = (_PAD_S + plan.eeg_start_s) * FS
    eeg_hi = eeg_lo + plan.eeg_seconds * FS
    if rng.random() < 0.04:  # a short gap inside the EEG
        length = int(rng.uniform(0.5, 4.0) * FS)
        start = int(rng.integers(eeg_lo, eeg_hi - length))
        signal[:, start:start + length] = np.nan
    if rng.random() < 0.05 and eeg_lo > 30 * FS:  # a long gap before the EEG: NaN runs in the spectrogram
        length = int(rng.uniform(20, min(100, eeg_lo / FS - 5)) * FS)
        start = int(rng.integers(0, eeg_lo - length))
        signal[:, start:start + length] = np.nan
    if rng.random() < 0.03:
        flat = rng.choice(len(SCALP), size=int(rng.integers(1, 3)), replace=False)
        signal[flat] = 0.0
    if rng.random() < 0.06:  # a channel or two flat for a while (electrode off), anywhere
        length = int(rng.uniform(5, 60) * FS)
        start = int(rng.integers(0, signal.shape[1] - length))
        flat = rng.choice(len(SCALP), size=int(rng.integers(1, 3)), replace=False)
        signal[flat, start:start + length] = 0.0
