"""Throughput of `prepare` (parquet files -> cached float16 view) against a notebook-style reference.

    .venv/bin/python -m bench.features [--data DIR | --n-eegs 150] [--runs 3] [--jobs 2]

(As a module from the repository root: run as a script, its own name would hide the features package.)

For the eeg_spec and wave views: windows/s of `prepare_view` (train label rows + test eegs, one
read per recording, joblib workers), and of a reference that does what the public starter
notebooks do -- one label row at a time, the parquet file read for each row, one bipolar pair at
a time through a librosa-style STFT -> mel -> dB (or filter -> resample) with numpy/scipy,
averaged per chain -- computing the same view, so the ratio measures the implementation, not
a change of settings (the bench checks both give the same arrays). Prints the median of
`--runs` runs, the ratio, and the time projected for the real train set.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal as sps

from core.cli import main as cli
from core.schema import CHAINS, EEG_RATE_HZ, EEG_WINDOW_SAMPLES
from features.cache import PARALLEL_MIN_ROWS, _tasks, prepare_view, split_index
from features.eeg_spectrogram import frame_starts, mel_filterbank
from features.filters import antialias_taps
from features.kaggle_data import KaggleFolder
from features.montage import CHAIN_PAIRS
from features.views import EegSpecView, WaveView, get_view

log = logging.getLogger("bench.features")

REAL_TRAIN_ROWS = 106_800
REAL_TRAIN_RECORDINGS = 17_089
VIEWS = ("eeg_spec", "wave")


# ---- the reference: one row, one pair at a time --------------------------------------------
def reference_view(view, data: Path, rows: pd.DataFrame) -> np.ndarray:
    out = np.empty((len(rows), *view.output_shape()), dtype=np.float16)
    for i, row in enumerate(rows.itertuples()):
        eeg = pd.read_parquet(data / "train_eegs" / f"{row.eeg_id}.parquet")  # per row, as the notebooks
        start = int(round(row.eeg_label_offset_seconds * EEG_RATE_HZ))
        window = eeg.iloc[start:start + EEG_WINDOW_SAMPLES]
        out[i] = (_reference_spec if isinstance(view, EegSpecView) else _reference_wave)(view, window)
    return out


def _pair(window: pd.DataFrame, a: str, b: str, clip_uv: float) -> tuple[np.ndarray, np.ndarray]:
    x = (window[a] - window[b]).to_numpy(np.float64)
    return np.clip(np.nan_to_num(x, nan=0.0), -clip_uv, clip_uv), np.isnan(x)


def _reference_spec(view: EegSpecView, window: pd.DataFrame) -> np.ndarray:
    images = []
    for cfg in view.resolutions:
        mel = mel_filterbank(EEG_RATE_HZ, cfg.n_fft, cfg.height, cfg.fmin_hz, cfg.fmax_hz)
        if cfg.reference == "fixed":  # mean one-sided PSD of each band's bins (µV²/Hz)
            hann = sps.get_window("hann", cfg.win_length)
            mel = mel / mel.sum(axis=1, keepdims=True) * 2 / (EEG_RATE_HZ * (hann**2).sum())
        db = np.stack([_librosa_style_db(_pair(window, a, b, view.signal.clip_uv)[0], cfg, mel)
                       for chain in CHAINS for a, b in CHAIN_PAIRS[chain]])
        reference = {"fixed": cfg.fixed_ref_db, "window": db.max(), "pair": db.max(axis=(1, 2), keepdims=True)}
        db = np.maximum(db - reference[cfg.reference], -cfg.top_db)
        images.append((db.reshape(4, 4, *db.shape[1:]).mean(axis=1) + cfg.db_offset) / cfg.db_scale)
    return np.concatenate(images)


def _librosa_style_db(x: np.ndarray, cfg, mel: np.ndarray) -> np.ndarray:
    """All STFT bins of one pair, then the mel projection and dB, as librosa.feature.melspectrogram."""
    starts = frame_starts(len(x), cfg)
    hop = int(starts[1] - starts[0])
    _, _, z = sps.stft(x[starts[0]: starts[-1] + cfg.win_length], window="hann", nperseg=cfg.win_length,
                       noverlap=cfg.win_length - hop, nfft=cfg.n_fft, detrend=cfg.detrend, boundary=None,
                       padded=False, scaling="spectrum")
    power = (np.abs(z) * sps.get_window("hann", cfg.win_length).sum()) ** 2
    return 10 * np.log10(np.maximum(mel @ power, 1e-10))


def _reference_wave(view: WaveView, window: pd.DataFrame) -> np.ndarray:
    down = EEG_RATE_HZ // view.rate_hz
    taps = antialias_taps(1, down)
    sos = sps.butter(view.signal.filter_order, view.signal.bandpass_hz, btype="bandpass", fs=view.rate_hz,
                     output="sos")
    channels, missing = [], []
    for a, b in (pair for chain in CHAINS for pair in CHAIN_PAIRS[chain]):
        x, gap = _pair(window, a, b, view.signal.clip_uv)
        channels.append(sps.sosfiltfilt(sos, sps.resample_poly(x, 1, down, window=taps)) / view.scale_uv)
        missing.append(gap)
    share = np.clip(sps.resample_poly(np.mean(missing, axis=0), 1, down, window=taps), 0, 1)
    return np.stack([*channels, share])


# ---- measuring -----------------------------------------------------------------------------
def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of fn(): the CPU figure survives a busy machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def median_rates(n_rows: int, timings: list[tuple[float, float]]) -> tuple[float, float]:
    """(rows per wall second, rows per CPU second), medians over runs."""
    return n_rows / statistics.median(t[0] for t in timings), n_rows / statistics.median(t[1] for t in timings)


def ours_rates(name: str, data: Path, scratch: Path, jobs: int, runs: int, n_rows: int) -> tuple[float, float]:
    prepare_view(name, data, scratch / "warmup", jobs=jobs, progress=False)  # worker start-up, imports
    timings = []
    for run in range(runs):
        work = scratch / f"run{run}"
        timings.append(timed(lambda work=work: prepare_view(name, data, work, jobs=jobs, progress=False)))
        shutil.rmtree(work)
    shutil.rmtree(scratch / "warmup")
    return median_rates(n_rows, timings)


def reference_rates(view, data: Path, rows: pd.DataFrame, runs: int) -> tuple[tuple[float, float], np.ndarray]:
    result = {}
    timings = [timed(lambda: result.update(out=reference_view(view, data, rows))) for _ in range(runs)]
    return median_rates(len(rows), timings), result["out"]


def data_layer_ms(view, folder: KaggleFolder, runs: int) -> float:
    """CPU ms per row spent in the data layer's window reads alone (a part of ours' time)."""
    index = split_index(folder, "train")
    tasks = _tasks(view, index)

    def read_all() -> None:
        for task in tasks:
            for recording, offsets, _ in task:
                folder.eeg_windows("train", recording, offsets)

    return 1000 * statistics.median(timed(read_all)[1] for _ in range(runs)) / len(index)


def bench_view(name: str, data: Path, scratch: Path, args) -> dict:
    view = get_view(name)
    folder = KaggleFolder(data)
    n_rows = len(folder.train_table()) + len(folder.test_table())
    rows = folder.train_table().head(args.reference_rows)
    (ref, ref_cpu), ref_out = reference_rates(view, data, rows, args.runs)
    check = prepare_view(name, data, scratch / "check", jobs=1, progress=False)
    max_diff = float(np.abs(np.load(check / "train.npy")[: len(rows)].astype(np.float32) - ref_out).max())
    one, one_cpu = ours_rates(name, data, scratch / "one", 1, args.runs, n_rows)
    many, _ = ours_rates(name, data, scratch / "many", args.jobs, args.runs, n_rows)  # CPU is in the workers
    return {"view": name, "shape": view.output_shape(), "ref": ref, "one": one, "many": many,
            "ratio": many / ref, "real_min": REAL_TRAIN_ROWS / many / 60, "ref_cpu": ref_cpu, "one_cpu": one_cpu,
            "ratio_cpu": one_cpu / ref_cpu, "real_min_cpu": REAL_TRAIN_ROWS / (args.jobs * one_cpu) / 60,
            "max_diff": max_diff, "data_ms": data_layer_ms(view, folder, args.runs)}


def print_table(results: list[dict], data: Path, jobs: int, runs: int, load: str) -> None:
    train = KaggleFolder(data).train_table()
    print(f"\ndata {data}: {len(train)} label rows, {train['eeg_id'].nunique()} recordings "
          f"({len(train) / train['eeg_id'].nunique():.1f} rows per recording; real train "
          f"{REAL_TRAIN_ROWS / REAL_TRAIN_RECORDINGS:.1f}); {os.cpu_count()} cores, load average {load}")
    print(f"windows/s, median of {runs} runs; real train = {REAL_TRAIN_ROWS:,} label rows")
    print(f"{'':<27}{'wall clock':^48} | {'CPU time (1 process)':^36}")
    print(f"{'view':<10} {'shape':<15} {'reference':>10} {'ours 1 proc':>12} {f'ours {jobs} proc':>12} "
          f"{'ratio':>6} {'real train':>10} | {'reference':>10} {'ours':>8} {'ratio':>6} "
          f"{f'real train, {jobs} cores':>20} {'data layer':>10} | {'max |diff|':>10}")
    for r in results:
        print(f"{r['view']:<10} {str(r['shape']):<15} {r['ref']:>10.1f} {r['one']:>12.1f} {r['many']:>12.1f} "
              f"{r['ratio']:>5.1f}x {r['real_min']:>6.1f} min | {r['ref_cpu']:>10.1f} {r['one_cpu']:>8.1f} "
              f"{r['ratio_cpu']:>5.1f}x {r['real_min_cpu']:>16.1f} min {r['data_ms']:>5.1f} ms/row | "
              f"{r['max_diff']:>10.4f}")
    print(f"wall ratio: ours with {jobs} processes / the reference (1 process). CPU columns: rows per CPU second of "
          f"one process, immune to other load; their real-train time assumes {jobs} busy cores. data layer: CPU "
          f"ms per row inside KaggleFolder.eeg_windows, part of ours. max |diff|: ours (float16) vs the reference.")
    if len(train) < PARALLEL_MIN_ROWS:
        print(f"note: under {PARALLEL_MIN_ROWS} rows prepare runs in-process whatever --jobs says")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="a Kaggle-layout folder (default: a synthetic one)")
    parser.add_argument("--n-eegs", type=int, default=150, help="recordings of the synthetic folder")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--reference-rows", type=int, default=40, help="label rows timed for the reference")
    parser.add_argument("--views", nargs="+", default=list(VIEWS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
        scratch = Path(tmp)
        data = args.data
        if data is None:
            data = scratch / "synth"
            cli(["synth", str(data), "--n-eegs", str(args.n_eegs), "--seed", "0"])
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
        results = [bench_view(name, data, scratch / name, args) for name in args.views]
        load += " -> " + " ".join(f"{x:.1f}" for x in os.getloadavg())
        print_table(results, data, args.jobs, args.runs, load)


if __name__ == "__main__":
    from core.cli import run_main

    raise SystemExit(run_main(main))
