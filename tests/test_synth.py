"""The synthetic generator writes the exact Kaggle layout, deterministically, with learnable structure."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import signal as sps
from scipy.stats import mannwhitneyu

from core.cli import main as cli
from core.errors import DataError
from core.schema import (
    CONSENSUS_NAMES,
    EEG_COLUMNS,
    HIGH_VOTE_MIN,
    SPEC_COLUMNS,
    SUBMISSION_COLUMNS,
    TARGET_COLUMNS,
    TEST_COLUMNS,
    TRAIN_COLUMNS,
    VOTE_COLUMNS,
)
from features.kaggle_data import KaggleFolder
from features.labels import add_vote_targets
from synthetic import eeg as synth

# Written out here rather than imported, so that the spectrogram check is independent of synth.py.
CHAINS = {
    "LL": ("Fp1", "F7", "T3", "T5", "O1"),
    "RL": ("Fp2", "F8", "T4", "T6", "O2"),
    "LP": ("Fp1", "F3", "C3", "P3", "O1"),
    "RP": ("Fp2", "F4", "C4", "P4", "O2"),
}
LATERAL, GENERAL = ("lpd", "lrda"), ("gpd", "grda")
CLASS_OF_TRUTH = [c.removeprefix("true_").removesuffix("_vote") for c in synth.TRUTH_COLUMNS]


@pytest.fixture(scope="session")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "data"
    synth.write_synthetic(root, n_eegs=60, seed=0, n_test=4, n_jobs=2)
    return root


@pytest.fixture(scope="session")
def train(folder):
    return pd.read_csv(folder / "train.csv")


def entropy(probs: np.ndarray) -> np.ndarray:
    safe = np.where(probs > 0, probs, 1.0)
    return -(probs * np.log(safe)).sum(axis=1)


def bipolar(eeg: pd.DataFrame, chain: str) -> np.ndarray:
    names = CHAINS[chain]
    values = [eeg[name].to_numpy(np.float64) for name in names]
    return np.stack([values[i] - values[i + 1] for i in range(len(names) - 1)])


# ---- layout ---------------------------------------------------------------------------------


def test_tables_have_the_kaggle_columns(folder, train):
    assert tuple(train.columns) == TRAIN_COLUMNS
    assert tuple(pd.read_csv(folder / "test.csv").columns) == TEST_COLUMNS
    submission = pd.read_csv(folder / "sample_submission.csv")
    assert tuple(submission.columns) == SUBMISSION_COLUMNS
    assert np.allclose(submission[list(VOTE_COLUMNS)], 1 / 6)
    assert set(train["eeg_id"]).isdisjoint(train["spectrogram_id"])
    assert train["label_id"].is_unique
    consensus = np.array(CONSENSUS_NAMES)[train[list(VOTE_COLUMNS)].to_numpy().argmax(axis=1)]
    assert (train["expert_consensus"].to_numpy() == consensus).all()


def test_parquet_files_have_the_kaggle_schema(folder, train):
    test = pd.read_csv(folder / "test.csv")
    for split, table in (("train", train.drop_duplicates("eeg_id").head(8)), ("test", test)):
        for eeg_id, spec_id in zip(table["eeg_id"], table["spectrogram_id"], strict=True):
            eeg = pq.read_table(folder / f"{split}_eegs" / f"{eeg_id}.parquet")
            assert tuple(eeg.column_names) == EEG_COLUMNS
            assert all(field.type == pa.float32() for field in eeg.schema)
            spec = pq.read_table(folder / f"{split}_spectrograms" / f"{spec_id}.parquet")
            assert tuple(spec.column_names) == ("time", *SPEC_COLUMNS)
            assert pa.types.is_integer(spec.schema.field("time").type)
            assert all(field.type == pa.float32() for field in list(spec.schema)[1:])
            times = spec.column("time").to_numpy()
            assert times[0] == 1 and (np.diff(times) == 2).all()
            if split == "test":
                assert eeg.num_rows == 10_000 and spec.num_rows == 300
            else:
                assert eeg.num_rows > 10_000 and eeg.num_rows % 200 == 0


def test_truth_files_cover_every_row(folder, train):
    truth = pd.read_parquet(folder / "truth" / "train_truth.parquet")
    assert list(truth["label_id"]) == list(train["label_id"])
    assert np.allclose(truth[list(synth.TRUTH_COLUMNS)].sum(axis=1), 1)
    test_truth = pd.read_parquet(folder / "truth" / "test_truth.parquet")
    assert list(test_truth["eeg_id"]) == list(pd.read_csv(folder / "test.csv")["eeg_id"])


def test_the_data_layer_reads_every_window(folder, train):
    data = KaggleFolder(folder)
    table = data.train_table()
    for eeg_id, rows in list(table.groupby("eeg_id"))[:20]:
        eeg = data.eeg_windows("train", eeg_id, rows["eeg_label_offset_seconds"].tolist())
        spec = data.spectrogram_windows("train", rows["spectrogram_id"].iloc[0],
                                        rows["spectrogram_label_offset_seconds"].tolist())
        assert eeg.shape == (len(rows), 10_000, 20) and spec.shape == (len(rows), 300, 400)
    for _, row in data.test_table().iterrows():
        assert data.spectrogram_windows("test", row["spectrogram_id"], [0]).shape == (1, 300, 400)


# ---- offsets ---------------------------------------------------------------------------------


def test_label_windows_lie_inside_their_files(folder, train):
    for eeg_id, rows in train.groupby("eeg_id"):
        n_eeg = pq.read_metadata(folder / "train_eegs" / f"{eeg_id}.parquet").num_rows
        times = pq.read_table(folder / "train_spectrograms" / f"{rows['spectrogram_id'].iloc[0]}.parquet",
                              columns=["time"]).column("time").to_numpy()
        eeg_offsets = rows["eeg_label_offset_seconds"].to_numpy()
        spec_offsets = rows["spectrogram_label_offset_seconds"].to_numpy()
        assert (eeg_offsets % 2 == 0).all() and (eeg_offsets >= 0).all()
        assert ((eeg_offsets + 50) * 200 <= n_eeg).all()
        for offset in spec_offsets:
            assert ((times >= offset) & (times < offset + 600)).sum() == 300
        # The 10 s label centre sits at the centre of the 600 s spectrogram window.
        eeg_start = spec_offsets + 300 - (eeg_offsets + 25)
        assert len(set(eeg_start)) == 1 and eeg_start[0] >= 0


def test_spectrogram_matches_a_recomputation_from_the_eeg(folder, train):
    """Same chain power from the EEG slice, where the spectrogram frames lie inside the EEG."""
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1024) / 1024)
    checked = 0
    for _, row in train.drop_duplicates("eeg_id").head(6).iterrows():
        eeg = pd.read_parquet(folder / "train_eegs" / f"{row['eeg_id']}.parquet")
        spec = pd.read_parquet(folder / "train_spectrograms" / f"{row['spectrogram_id']}.parquet")
        eeg_start = row["spectrogram_label_offset_seconds"] + 300 - (row["eeg_label_offset_seconds"] + 25)
        centres = ((spec["time"] - eeg_start) * 200).astype(int)
        inside = spec[(centres >= 512) & (centres + 512 <= len(eeg))]
        for _, frame in inside.iloc[::4].iterrows():
            centre = int((frame["time"] - eeg_start) * 200)
            expected = []
            for chain in CHAINS:
                pairs = bipolar(eeg.iloc[centre - 512:centre + 512], chain)
                power = np.abs(np.fft.rfft(pairs * window, axis=1)) ** 2 * 2 / (200 * (window**2).sum())
                expected.append(power[:, 3:103].mean(axis=0))
            expected = np.concatenate(expected)
            actual = frame[list(SPEC_COLUMNS)].to_numpy(np.float64)
            if np.isnan(expected).any():
                continue
            assert np.allclose(actual, expected, rtol=1e-3, atol=1e-4 * expected.max())
            checked += 1
    assert checked >= 20


# ---- votes -----------------------------------------------------------------------------------


def test_votes_are_counts_of_the_recordings_voters(train):
    table = add_vote_targets(train)
    assert (table["n_votes"] >= 1).all() and (table["n_votes"] <= 28).all()
    # Voter regime is per recording: every row of a recording falls in one voter band.
    band = pd.cut(table["n_votes"], [0, 2, 5, 9, 28])
    assert (band.groupby(table["eeg_id"], observed=True).nunique() == 1).all()
    # Rows of one segment share their votes: at most two vote vectors per recording.
    assert (train.groupby("eeg_id")[list(VOTE_COLUMNS)].nunique().max(axis=1) <= 2).all()


def test_voter_counts_are_bimodal(train):
    n_votes = train[list(VOTE_COLUMNS)].sum(axis=1)
    assert (n_votes <= 5).mean() > 0.4
    assert (n_votes >= HIGH_VOTE_MIN).mean() > 0.15
    assert n_votes.between(6, 9).mean() < 0.1


def test_low_vote_rows_are_sharper_than_high_vote_rows(folder, train):
    table = add_vote_targets(train)
    target_entropy = entropy(table[list(TARGET_COLUMNS)].to_numpy())
    truth = pd.read_parquet(folder / "truth" / "train_truth.parquet")
    true_entropy = entropy(truth[list(synth.TRUTH_COLUMNS)].to_numpy())
    low, high = table["n_votes"] <= 5, table["n_votes"] >= HIGH_VOTE_MIN
    assert target_entropy[low].mean() + 0.2 < target_entropy[high].mean()
    assert true_entropy[low].mean() + 0.2 < true_entropy[high].mean()


def test_summary_floor_is_well_below_the_class_prior(folder):
    summary = json.loads((folder / "truth" / "summary.json").read_text())
    assert summary["generator"] == synth.GENERATOR and summary["version"] == synth.GENERATOR_VERSION
    kl = summary["kl"]
    assert 0 < kl["floor_all"] < 0.5 * kl["prior_all"]
    assert 0 < kl["floor_high"] < 0.5 * kl["prior_high"]


# ---- signal ----------------------------------------------------------------------------------


def test_delta_asymmetry_separates_lateralised_from_generalised(folder, train):
    """|log(left / right delta power)| over the bipolar chains: large for LPD/LRDA, small for GPD/GRDA."""
    truth = pd.read_parquet(folder / "truth" / "train_truth.parquet")
    main = pd.Series(np.array(CLASS_OF_TRUTH)[truth[list(synth.TRUTH_COLUMNS)].to_numpy().argmax(axis=1)],
                     index=truth["eeg_id"])
    per_eeg = main.groupby(level=0).agg(lambda m: m.iloc[0] if m.nunique() == 1 else None).dropna()
    per_eeg = per_eeg[per_eeg.isin(LATERAL + GENERAL)]
    asymmetry = []
    for eeg_id in per_eeg.index:
        eeg = pd.read_parquet(folder / "train_eegs" / f"{eeg_id}.parquet").fillna(0.0)
        power = {}
        for chain in CHAINS:
            freqs, psd = sps.welch(bipolar(eeg, chain), fs=200, nperseg=400)
            power[chain] = psd[:, (freqs >= 0.5) & (freqs < 4)].sum()
        asymmetry.append(abs(np.log((power["LL"] + power["LP"]) / (power["RL"] + power["RP"]))))
    lateral = per_eeg.isin(LATERAL).to_numpy()
    asymmetry = np.array(asymmetry)
    assert lateral.sum() >= 5 and (~lateral).sum() >= 5
    auc = mannwhitneyu(asymmetry[lateral], asymmetry[~lateral]).statistic / (lateral.sum() * (~lateral).sum())
    assert auc > 0.8


def labelled_span(rows: pd.DataFrame) -> tuple[float, float]:
    """Spectrogram seconds from the first labelled 10 s to the end of the last one of a recording."""
    first = rows.iloc[0]
    eeg_start = first["spectrogram_label_offset_seconds"] + 300 - (first["eeg_label_offset_seconds"] + 25)
    return (eeg_start + rows["eeg_label_offset_seconds"].min() + 20,
            eeg_start + rows["eeg_label_offset_seconds"].max() + 30)


def read_spectrogram(folder, spectrogram_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(times, power (frames, 4 chains, 100 bins)) of a train spectrogram."""
    spec = pd.read_parquet(folder / "train_spectrograms" / f"{spectrogram_id}.parquet")
    times = spec.pop("time").to_numpy()
    return times, spec.to_numpy(np.float64).reshape(len(spec), 4, 100)


def test_a_seizure_fills_its_span_and_is_absent_far_from_it(folder, train):
    """A seizure lasts seconds to minutes: the Kaggle spectrogram's power far (> 160 s) from the labelled
    span is clearly lower than inside it, instead of the pattern repeating over the whole 600 s."""
    truth = pd.read_parquet(folder / "truth" / "train_truth.parquet")
    table = train.merge(truth[["label_id", "true_seizure_vote"]], on="label_id")
    ratios = []
    for _, rows in table.groupby("eeg_id"):
        if rows["true_seizure_vote"].min() < 0.5:
            continue
        lo, hi = labelled_span(rows)
        times, power = read_spectrogram(folder, rows["spectrogram_id"].iloc[0])
        total = np.log(np.nansum(power, axis=(1, 2)) + 1e-9)
        far = (times < lo - 160) | (times > hi + 160)
        if far.sum() >= 10:
            ratios.append(np.nanmedian(total[(times >= lo) & (times <= hi)]) - np.nanmedian(total[far]))
    assert len(ratios) >= 4
    assert np.median(ratios) > np.log(2) and np.mean(np.array(ratios) > np.log(1.25)) >= 0.8


def steady_line_prominence(power: np.ndarray) -> float:
    """Largest time-averaged excess (log) of one frequency bin over its neighbours, present at the
    same bin (±1) in all four chains: a narrow spectral line that never goes away."""
    logp = np.log(power + 1e-9)
    prominence = np.full((4, 100), -np.inf)
    for b in range(8, 94):
        neighbours = np.r_[b - 6:b - 2, b + 3:b + 7]
        prominence[:, b] = np.nanmean(logp[:, :, b] - logp[:, :, neighbours].mean(axis=-1), axis=0)
    either = np.maximum(prominence[:, :-1], prominence[:, 1:])
    return float(np.nan_to_num(either.min(axis=0), nan=-np.inf).max())


def test_no_steady_spectral_line_on_every_chain(folder, train):
    """A background rhythm is in some recordings, at its own frequency, waxing and waning: few
    recordings show a steady narrow line at one frequency on all four chains."""
    lines = [steady_line_prominence(read_spectrogram(folder, spec_id)[1])
             for spec_id in train["spectrogram_id"].drop_duplicates()]
    assert np.mean(np.array(lines) > 0.5) < 0.25


def test_amplitude_varies_widely_between_recordings(folder, train):
    """The recording gain is log-normal: the absolute level alone does not identify a class."""
    levels = []
    for eeg_id in train["eeg_id"].drop_duplicates():
        eeg = pd.read_parquet(folder / "train_eegs" / f"{eeg_id}.parquet").to_numpy(np.float64)[:, :19]
        levels.append(np.nanmedian(np.nanmedian(np.abs(eeg - np.nanmedian(eeg, axis=0)), axis=0)))
    low, high = np.quantile(levels, [0.1, 0.9])
    assert high / low > 3


# ---- determinism and the output folder --------------------------------------------------------


def test_same_seed_same_output_whatever_the_worker_count(tmp_path):
    synth.write_synthetic(tmp_path / "a", n_eegs=6, seed=5, n_test=2, n_jobs=1)
    synth.write_synthetic(tmp_path / "b", n_eegs=6, seed=5, n_test=2, n_jobs=2)
    synth.write_synthetic(tmp_path / "c", n_eegs=6, seed=6, n_test=2, n_jobs=1)
    a, b, c = (pd.read_csv(tmp_path / name / "train.csv") for name in "abc")
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    for split, name in (("train", f"{a['eeg_id'].iloc[0]}.parquet"),
                        ("test", f"{pd.read_csv(tmp_path / 'a' / 'test.csv')['eeg_id'].iloc[0]}.parquet")):
        eeg_a = pd.read_parquet(tmp_path / "a" / f"{split}_eegs" / name).to_numpy()
        eeg_b = pd.read_parquet(tmp_path / "b" / f"{split}_eegs" / name).to_numpy()
        assert eeg_a.tobytes() == eeg_b.tobytes()


def test_cli_overwrites_its_own_output_but_refuses_other_folders(tmp_path, capsys):
    out = tmp_path / "synthetic"
    args = ["synth", str(out), "--n-eegs", "2", "--n-test", "1", "--seed", "1", "--jobs", "1"]
    assert cli(args) == 0
    assert cli(args) == 0  # a previous synthetic output is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]  # nothing left beside it
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError) as err:
        synth.write_synthetic(foreign, n_eegs=2, n_test=1, n_jobs=1)
    message = str(err.value)
    assert "\n" not in message and str(foreign) in message
    assert (foreign / "notes.txt").read_text() == "keep me"
    capsys.readouterr()
    assert cli(["synth", str(foreign), "--n-eegs", "2"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_crash_leaves_no_folder_behind(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(synth, "render_recording", crash)
    with pytest.raises(RuntimeError):
        synth.write_synthetic(tmp_path / "data", n_eegs=2, n_test=1, n_jobs=1)
    assert list(tmp_path.iterdir()) == []


def test_gain_scales_the_same_recordings(tmp_path):
    """--gain 3: every EEG value x3 and spectrogram power x9, the same rows, votes and truth."""
    plain = synth.write_synthetic(tmp_path / "x1", n_eegs=2, seed=5, n_test=1, n_jobs=1)
    scaled = synth.write_synthetic(tmp_path / "x3", n_eegs=2, seed=5, n_test=1, n_jobs=1, gain=3.0)
    assert plain["kl"] == scaled["kl"] and scaled["gain"] == 3.0
    a, b = (pd.read_csv(tmp_path / d / "train.csv") for d in ("x1", "x3"))
    pd.testing.assert_frame_equal(a, b)
    eeg_id, spec_id = int(a["eeg_id"].iloc[0]), int(a["spectrogram_id"].iloc[0])
    x1, x3 = (pd.read_parquet(tmp_path / d / "train_eegs" / f"{eeg_id}.parquet").to_numpy() for d in ("x1", "x3"))
    np.testing.assert_allclose(x3, 3 * x1, rtol=1e-6, equal_nan=True)
    s1, s3 = (pd.read_parquet(tmp_path / d / "train_spectrograms" / f"{spec_id}.parquet") for d in ("x1", "x3"))
    np.testing.assert_allclose(s3.iloc[:, 1:].to_numpy(), 9 * s1.iloc[:, 1:].to_numpy(), rtol=1e-4, equal_nan=True)
