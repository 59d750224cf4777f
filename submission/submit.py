"""`python -m stacking submit`: the leaderboard submission from test files and saved models alone.

Reads only test.csv, test_eegs/, test_spectrograms/ (and sample_submission.csv for the row order),
the members' fold checkpoints and resolved recipes, and the saved stacker: no train.csv, no OOF
set, no view cache. Works the same on a WORK folder and on the Kaggle bundle (`make bundle`). Every
test eeg_id gets a row: a recording some member cannot read is predicted by the others (one warning
line each; submission.infer, stacking.saved_stacker).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.device import AMP_CHOICES, resolve_device
from core.schema import VOTE_COLUMNS
from core.work import Work
from features.kaggle_data import KaggleFolder
from features.submission_file import write_submission
from stacking.saved_stacker import load_stacker
from submission.infer import CHUNK_RECORDINGS, predict_test

log = logging.getLogger(__name__)


def build_submission(data: Path | str, work: Path | str, out: Path | str, device: str = "auto",
                     chunk: int = CHUNK_RECORDINGS, amp: str = "auto") -> pd.DataFrame:
    """Predict the test set with every stack member, apply the saved stacker, write and validate `out`.
    `amp`: auto (bf16 where the GPU has it natively, fp16 on T4/P100, fp32 on CPU), bf16, fp16, off."""
    stacker = load_stacker(work)
    ids, member_probs = predict_test(Path(data), Path(work), stacker.members, resolve_device(device), chunk, amp)
    # the patient-feature stackers need each test row's patient (test.csv, in the order predict_test used)
    patients = KaggleFolder(data).test_table(require_files=False).set_index("eeg_id").loc[ids, "patient_id"].to_numpy()
    frame = pd.DataFrame(stacker.apply(member_probs, ids, patients), columns=list(VOTE_COLUMNS))
    frame.insert(0, "eeg_id", ids.astype(np.int64))
    return write_submission(frame, data, out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=Path("data"), help="Kaggle data folder (its test files)")
    parser.add_argument("--work", type=Path, default=Path("artifacts"),
                        help="work folder (or bundle) with models/, oof/NAME.json and stack/stacker.json")
    parser.add_argument("--out", type=Path, help="submission path (default WORK/submission.csv)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    parser.add_argument("--amp", default="auto", choices=AMP_CHOICES,
                        help="autocast: auto (bf16 where native, fp16 on older GPUs, off on CPU), bf16, fp16, off")
    parser.add_argument("--chunk", type=int, default=CHUNK_RECORDINGS, help="test recordings held in memory at once")


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    out = args.out or Work(args.work).submission()
    submission = build_submission(args.data, args.work, out, args.device, args.chunk, args.amp)
    seconds = time.perf_counter() - started
    print(f"wrote {out}: {len(submission)} test recordings in {seconds:.1f} s")
