"""Run records of one fold: `history.csv` (always) and, with `tracker=tensorboard`, TensorBoard curves.

Both come from the training loop's history list, the one `last.pt` keeps: history.csv is rewritten
whole after every epoch, so a resumed run's file equals an uninterrupted one's (timing columns
aside). TensorBoard is offline (event files under the run folder: `tensorboard --logdir WORK/models`);
its package is optional. Where the curves go cannot change the weights: TRACKING_FIELDS stay out of
the recipe fingerprint and the resume check.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from core.artifacts import write_csv
from core.errors import UserFacingError

TRACKERS = ("none", "tensorboard")
TRACKING_FIELDS = ("tracker",)  # TrainConfig fields that choose where records go, not what trains
HISTORY_FILE = "history.csv"
TENSORBOARD_DIR = "tensorboard"
# kl_all is the validation loss: the training loss is the same KL (vote-weighted when the recipe says so)
HISTORY_COLUMNS = ("epoch", "stage", "train_loss", "kl_all", "kl_high", "lr", "seconds", "train_samples_per_s",
                   "peak_gpu_gib")
TIMING_COLUMNS = ("seconds", "train_samples_per_s")  # differ between two runs of the same fold
_CURVES = {"train_loss": "loss/train", "kl_all": "kl/valid_all", "kl_high": "kl/valid_high_vote", "lr": "lr",
           "train_samples_per_s": "speed/train_samples_per_s", "peak_gpu_gib": "memory/peak_gpu_gib"}


def write_history(run_dir: Path | str, history: list[dict]) -> Path:
    """run_dir/history.csv: one row per epoch, the known columns first (empty where a row lacks one, e.g.
    a LightGBM fold's training loss or the peak GPU memory on a CPU), any others after."""
    frame = pd.DataFrame(history)
    extra = [c for c in frame.columns if c not in HISTORY_COLUMNS]
    path = Path(run_dir) / HISTORY_FILE
    write_csv(path, frame.reindex(columns=[*HISTORY_COLUMNS, *extra]))
    return path


class EpochTracker:
    """What the training loop records after each epoch (rank 0 only: `active`)."""

    def __init__(self, run_dir: Path | str, kind: str = "none", active: bool = True):
        self.run_dir, self.active = Path(run_dir), active
        self.writer = _tensorboard_writer(self.run_dir / TENSORBOARD_DIR) if active and kind == "tensorboard" \
            else None

    def record(self, history: list[dict]) -> None:
        if not self.active:
            return
        write_history(self.run_dir, history)
        if self.writer is not None:
            row = history[-1]
            for key, tag in _CURVES.items():
                value = row.get(key)
                if value is not None and not math.isnan(value):
                    self.writer.add_scalar(tag, value, row["epoch"])
            self.writer.flush()  # a killed run keeps its curves up to its last epoch

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _tensorboard_writer(log_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserFacingError("tracker=tensorboard needs the tensorboard package: `pip install tensorboard`, "
                              "or drop tracker=tensorboard") from None
    return SummaryWriter(log_dir=str(log_dir))
