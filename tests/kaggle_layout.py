"""A minimal, valid Kaggle-layout folder written by hand, for data-layer tests that mutate it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.schema import EEG_COLUMNS, EEG_RATE_HZ, SPEC_COLUMNS, VOTE_COLUMNS


def write_eeg(path: Path, seconds: float, rng: np.random.Generator) -> np.ndarray:
    signal = rng.normal(0, 30, size=(int(seconds * EEG_RATE_HZ), len(EEG_COLUMNS))).astype(np.float32)
    pd.DataFrame(signal, columns=list(EEG_COLUMNS)).to_parquet(path, index=False)
    return signal


def write_spectrogram(path: Path, seconds: int, rng: np.random.Generator) -> None:
    times = np.arange(1, seconds, 2, dtype=np.int64)
    values = rng.gamma(2.0, 5.0, size=(len(times), len(SPEC_COLUMNS))).astype(np.float32)
    frame = pd.DataFrame(values, columns=list(SPEC_COLUMNS))
    frame.insert(0, "time", times)
    frame.to_parquet(path, index=False)


def make_folder(root: Path, n_eegs: int = 6, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for sub in ("train_eegs", "train_spectrograms", "test_eegs", "test_spectrograms"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows, label_id = [], 1000
    for i in range(n_eegs):
        eeg_id, spec_id, patient = 100 + i, 500 + i, 10 + i // 2
        write_eeg(root / "train_eegs" / f"{eeg_id}.parquet", 60, rng)
        write_spectrogram(root / "train_spectrograms" / f"{spec_id}.parquet", 700, rng)
        votes = rng.multinomial(3 if i % 2 else 12, np.full(6, 1 / 6))
        for sub, offset in enumerate((0, 4, 10)):
            rows.append({"eeg_id": eeg_id, "eeg_sub_id": sub, "eeg_label_offset_seconds": float(offset),
                         "spectrogram_id": spec_id, "spectrogram_sub_id": sub,
                         "spectrogram_label_offset_seconds": float(offset + 20), "label_id": label_id,
                         "patient_id": patient, "expert_consensus": "Other",
                         **dict(zip(VOTE_COLUMNS, votes.tolist(), strict=True))})
            label_id += 1
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    write_eeg(root / "test_eegs" / "900.parquet", 50, rng)
    write_spectrogram(root / "test_spectrograms" / "950.parquet", 600, rng)
    pd.DataFrame({"spectrogram_id": [950], "eeg_id": [900], "patient_id": [99]}).to_csv(root / "test.csv", index=False)
    sub = pd.DataFrame({"eeg_id": [900], **{c: [1 / 6] for c in VOTE_COLUMNS}})
    sub.to_csv(root / "sample_submission.csv", index=False)
    return root



def degraded_test_copy(data: Path, dest: Path) -> list[int]:
    """The test half of `data` copied to `dest` with three odd recordings, as the hidden test set may
    have: test eeg ids[0] is 45 s long, ids[1] all NaN and without its spectrogram, ids[2] without its
    spectrogram; ids[3:] are intact. Returns the test eeg_ids in test.csv order."""
    import shutil

    for name in ("test.csv", "sample_submission.csv"):
        shutil.copy2(data / name, dest / name)
    for folder in ("test_eegs", "test_spectrograms"):
        shutil.copytree(data / folder, dest / folder)
    test = pd.read_csv(dest / "test.csv")
    ids, specs = test["eeg_id"].tolist(), test["spectrogram_id"].tolist()
    short = dest / "test_eegs" / f"{ids[0]}.parquet"
    pd.read_parquet(short).iloc[:45 * EEG_RATE_HZ].to_parquet(short, index=False)
    blank = dest / "test_eegs" / f"{ids[1]}.parquet"
    frame = pd.read_parquet(blank)
    frame.iloc[:, :] = np.nan
    frame.to_parquet(blank, index=False)
    for i in (1, 2):
        (dest / "test_spectrograms" / f"{specs[i]}.parquet").unlink()
    return ids
