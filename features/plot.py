"""`python -m features plot --eeg-id ID`: one labelled window as the models see it, in one PNG.

Left: the 16 bipolar traces (band-passed 0.5-20 Hz), the labelled centre 10 s shaded. Middle: the
`eeg_spec` chain images (50 s). Right: the `kaggle_spec` chain images (600 s), each column with
its colour bar (the view's values, as the models see them). Title: ids, offset and votes. Written
to --out, by default WORK/plots/eeg_<ID>_<LABEL>.png.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from core.artifacts import atomic_path
from core.errors import UserFacingError
from core.schema import CHAINS, EEG_RATE_HZ, EEG_WINDOW_S, SPEC_FREQUENCIES_HZ, SPEC_WINDOW_S, VOTE_COLUMNS
from core.work import Work
from features.filters import SignalConfig, bipolar_signals
from features.kaggle_data import KaggleFolder
from features.montage import CHAIN_PAIRS, bipolar_names
from features.views import compute_view, get_view

log = logging.getLogger(__name__)

TRACE_SIGNAL = SignalConfig(bandpass_hz=(0.5, 20.0))
LEFT_PAIRS = {f"{a}-{b}" for chain in ("LL", "LP") for a, b in CHAIN_PAIRS[chain]}
# Saved 1440 px wide and shown at about 1200 (the report): matplotlib's 10 pt default reads as 7 pt there.
FONTS = {"font.size": 13, "axes.titlesize": 14, "figure.titlesize": 16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--eeg-id", type=int, required=True, help="a train or test eeg_id")
    parser.add_argument("--label-id", type=int, help="which label row of the recording (default: its first)")
    parser.add_argument("--data", type=Path, default=Path("data"), help="Kaggle-layout data folder")
    parser.add_argument("--work", type=Path, default=Path("artifacts"), help="work folder (default PNG folder: "
                                                                             "WORK/plots)")
    parser.add_argument("--out", type=Path, help="PNG path (default WORK/plots/eeg_<ID>_<LABEL>.png)")


def run(args: argparse.Namespace) -> None:
    folder = KaggleFolder(args.data)
    split, row = find_row(folder, args.eeg_id, args.label_id)
    out = args.out or Work(args.work).plots_dir() / f"eeg_{args.eeg_id}_{row.get('label_id', 'test')}.png"
    plot_window(folder, split, row, out)
    print(f"wrote {out}")


def find_row(folder: KaggleFolder, eeg_id: int, label_id: int | None) -> tuple[str, pd.Series]:
    """(split, label row) of `eeg_id`: a train row (the first, or `label_id`), else its test row."""
    train = folder.train_table()
    rows = train[train["eeg_id"] == eeg_id]
    if label_id is not None:
        rows = rows[rows["label_id"] == label_id]
    if len(rows):
        return "train", rows.iloc[0]
    test = folder.test_table()
    rows = test[test["eeg_id"] == eeg_id]
    if len(rows) and label_id is None:  # a test recording is its window: offsets 0
        return "test", pd.concat([rows.iloc[0], pd.Series({"eeg_label_offset_seconds": 0.0,
                                                           "spectrogram_label_offset_seconds": 0.0})])
    what = f"eeg_id {eeg_id}" + (f" with label_id {label_id}" if label_id is not None else "")
    raise UserFacingError(f"{folder.root}: no train or test row has {what}; pick one from train.csv or test.csv")


def plot_window(folder: KaggleFolder, split: str, row: pd.Series, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eeg = folder.eeg_windows(split, int(row["eeg_id"]), [row["eeg_label_offset_seconds"]])
    spec = folder.spectrogram_windows(split, int(row["spectrogram_id"]), [row["spectrogram_label_offset_seconds"]])
    for note in folder.pop_quality_notes():  # one recording: its notes as they are
        log.warning("%s: %s", note.file, note.message)
    with plt.rc_context(FONTS):
        fig = _window_figure(plt, eeg, spec, split, row)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def _window_figure(plt, eeg: np.ndarray, spec: np.ndarray, split: str, row: pd.Series):
    fig = plt.figure(figsize=(18, 10), layout="constrained")
    grid = fig.add_gridspec(len(CHAINS), 3, width_ratios=(2.2, 1, 1))
    _traces(fig.add_subplot(grid[:, 0]), eeg)
    _chain_images(fig, grid, 1, compute_view("eeg_spec", eeg_windows=eeg)[0], "EEG mel spectrogram, 50 s",
                  (0, EEG_WINDOW_S), get_view("eeg_spec").resolutions[0].fmax_hz, "log power (view scale)")
    _chain_images(fig, grid, 2, compute_view("kaggle_spec", spec_windows=spec)[0], "Kaggle spectrogram, 600 s",
                  (0, SPEC_WINDOW_S), SPEC_FREQUENCIES_HZ[-1], "log power (standardised)")
    fig.suptitle(_title(split, row))
    return fig


def _traces(ax, eeg: np.ndarray) -> None:
    x, missing = bipolar_signals(eeg, TRACE_SIGNAL)
    x = np.where(missing, np.nan, x)[0]
    spacing = 4 * float(np.nanmedian(np.nanstd(x, axis=0))) or 1.0
    t = np.arange(len(x)) / EEG_RATE_HZ
    names = bipolar_names()
    for i in range(len(names)):
        ax.plot(t, x[:, i] - i * spacing, lw=0.4, color="C0" if names[i] in LEFT_PAIRS else "C3")
    ax.axvspan(EEG_WINDOW_S / 2 - 5, EEG_WINDOW_S / 2 + 5, color="0.9", zorder=0)
    ax.set_yticks(-spacing * np.arange(len(names)), names)
    ax.set_xlim(0, EEG_WINDOW_S)
    ax.set_xlabel("s")
    ax.set_title(f"bipolar montage, 0.5-20 Hz (spacing {spacing:.0f} µV; left blue, right red)")


def _chain_images(fig, grid, column: int, images: np.ndarray, title: str, seconds: tuple[float, float],
                  fmax_hz: float, unit: str) -> None:
    axes, low, high = [], float(np.nanmin(images)), float(np.nanmax(images))
    for i, chain in enumerate(CHAINS):
        ax = fig.add_subplot(grid[i, column])
        # one colour scale per column: the chains compare by colour, and one bar explains them all
        image = ax.imshow(images[i], origin="lower", aspect="auto", cmap="magma", extent=(*seconds, 0, fmax_hz),
                          vmin=low, vmax=high)
        ax.set_ylabel(f"{chain}  Hz")
        if i == 0:
            ax.set_title(title)
        if i == len(CHAINS) - 1:
            ax.set_xlabel("s")
        axes.append(ax)
    fig.colorbar(image, ax=axes, label=unit, shrink=0.8)


def _title(split: str, row: pd.Series) -> str:
    head = f"{split} eeg_id {int(row['eeg_id'])}, offset {row['eeg_label_offset_seconds']:g} s"
    if split == "test":
        return head + " (test: no votes)"
    votes = ", ".join(f"{c.removesuffix('_vote')} {int(row[c])}" for c in VOTE_COLUMNS)
    return f"{head}, label_id {int(row['label_id'])}, {row.get('expert_consensus', '')}: {votes}"
