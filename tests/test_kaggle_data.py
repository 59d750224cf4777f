"""The data layer reads the Kaggle layout and refuses bad input with one-line messages."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.errors import DataError
from core.schema import EEG_COLUMNS, SPEC_COLUMNS, TARGET_COLUMNS
from features import value_checks
from features.kaggle_data import KaggleFolder
from synthetic.damage import corrupt_data_page, write_uncompressed
from tests.kaggle_layout import make_folder, write_eeg


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "data")


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_train_table_has_probabilities_and_voters(folder):
    train = KaggleFolder(folder).train_table()
    probs = train[list(TARGET_COLUMNS)].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert set(train["n_votes"]) == {3, 12}


def test_windows_are_read_at_their_offsets(folder):
    data = KaggleFolder(folder)
    whole = data.read_eeg("train", 100)
    windows = data.eeg_windows("train", 100, [0, 4, 10])
    assert windows.shape == (3, 10_000, len(EEG_COLUMNS)) and windows.dtype == np.float32
    np.testing.assert_array_equal(windows[2], whole[2000:12000])
    spec = data.spectrogram_windows("train", 500, [20, 30])
    assert spec.shape == (2, 300, len(SPEC_COLUMNS))
    times, values = data.read_spectrogram("train", 500)
    np.testing.assert_array_equal(spec[1], values[(times >= 30) & (times < 630)])


def test_missing_folder_and_file(tmp_path, folder):
    with pytest.raises(DataError) as err:
        KaggleFolder(tmp_path / "nowhere")
    assert "make synth" in one_line(err)
    (folder / "train.csv").unlink()
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).train_table()
    assert "train.csv is missing" in one_line(err)


def test_missing_recording_file(folder):
    (folder / "train_eegs" / "103.parquet").unlink()
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).train_table()
    assert "103.parquet" in one_line(err) and "missing" in str(err.value)


def test_wrong_columns_in_csv_and_parquet(folder):
    train = pd.read_csv(folder / "train.csv").drop(columns=["lpd_vote"])
    train.to_csv(folder / "train.csv", index=False)
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).train_table()
    assert "lacks columns lpd_vote" in one_line(err)
    pd.DataFrame({"Fp1": [1.0]}).to_parquet(folder / "train_eegs" / "101.parquet")
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).read_eeg("train", 101)
    assert "101.parquet lacks columns F3" in one_line(err)


def test_short_recording(folder):
    write_eeg(folder / "train_eegs" / "100.parquet", 55, np.random.default_rng(1))
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).eeg_windows("train", 100, [10])
    assert "shorter than label offset 10" in one_line(err)


def test_offset_out_of_range(folder):
    train = pd.read_csv(folder / "train.csv")
    train.loc[0, "eeg_label_offset_seconds"] = -2
    train.to_csv(folder / "train.csv", index=False)
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).train_table()
    assert "negative eeg_label_offset_seconds" in one_line(err)
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).spectrogram_windows("train", 500, [400])
    assert "not the 600 s window from 400" in one_line(err)


def test_all_zero_votes(folder):
    train = pd.read_csv(folder / "train.csv")
    train.loc[2, [c for c in train.columns if c.endswith("_vote")]] = 0
    train.to_csv(folder / "train.csv", index=False)
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).train_table()
    assert "no votes at all (label_id 1002)" in one_line(err)


def test_duplicate_ids(folder):
    train = pd.read_csv(folder / "train.csv")
    train.loc[1, "label_id"] = train.loc[0, "label_id"]
    train.to_csv(folder / "train.csv", index=False)
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).train_table()
    assert "label_id is duplicated (1000)" in one_line(err)
    test = pd.read_csv(folder / "test.csv")
    pd.concat([test, test]).to_csv(folder / "test.csv", index=False)
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).test_table()
    assert "eeg_id is duplicated (900)" in one_line(err)


def test_nan_only_window_is_an_error_and_nan_channel_a_note(folder):
    path = folder / "train_eegs" / "100.parquet"
    frame = pd.read_parquet(path)
    frame.loc[:, "C3"] = np.nan
    frame.to_parquet(path, index=False)
    data = KaggleFolder(folder)
    data.eeg_windows("train", 100, [0])
    [note] = data.pop_quality_notes()
    assert note.file == str(path) and note.kind == "nan-channel" and "C3 are all NaN" in note.message
    frame.loc[:, list(EEG_COLUMNS[:-1])] = np.nan
    frame.to_parquet(path, index=False)
    with pytest.raises(DataError) as err:
        KaggleFolder(folder).eeg_windows("train", 100, [0])
    assert "every channel is NaN" in one_line(err)


def test_nan_gaps_and_flat_channels_are_noted_once_per_file_and_not_logged_one_by_one(folder, caplog):
    path = folder / "train_eegs" / "102.parquet"
    frame = pd.read_parquet(path)
    frame.loc[100:300, :] = np.nan
    frame.loc[:, "O2"] = 0.0
    frame.to_parquet(path, index=False)
    data = KaggleFolder(folder)
    with caplog.at_level(logging.WARNING):
        data.eeg_windows("train", 102, [0, 4])
        data.eeg_windows("train", 102, [0])
    assert caplog.text == ""  # the job that read the files reports them, once (features.quality_notes)
    notes = data.pop_quality_notes()
    assert [n.kind for n in notes] == ["nan-gap", "flat"] and "flat channels O2" in notes[1].message
    assert data.pop_quality_notes() == []


def test_spectrogram_time_dtype_does_not_matter(folder):
    path = folder / "train_spectrograms" / "501.parquet"
    frame = pd.read_parquet(path)
    frame["time"] = frame["time"].astype(np.int16)
    frame.to_parquet(path, index=False)
    assert KaggleFolder(folder).spectrogram_windows("train", 501, [20]).shape == (1, 300, 400)


def test_corrupt_eeg_data_pages_become_nan_and_are_noted_with_counts(folder):
    path = folder / "train_eegs" / "100.parquet"
    write_uncompressed(path)
    corrupt_data_page(path, "C3")
    raw = pq.read_table(path, columns=["C3"]).column(0).to_numpy()
    assert np.nanmax(np.abs(raw)) > 1e30  # what the reader is given
    data = KaggleFolder(folder)
    windows = data.eeg_windows("train", 100, [0, 4])
    assert np.nanmax(np.abs(windows)) < 1e4  # the garbage run is NaN, to be filled and masked
    notes = {n.kind: n for n in data.pop_quality_notes()}
    note = notes["implausible"]
    assert note.file == str(path) and "C3 (" in note.message and note.values >= 4000
    assert "nan-gap" in notes  # and the views fill it like any gap


def test_spectrogram_inf_negative_and_huge_values_are_nan_and_noted(folder):
    path = folder / "train_spectrograms" / "501.parquet"
    frame = pd.read_parquet(path)
    frame.iloc[5, 3], frame.iloc[6, 7], frame.iloc[9, 9] = np.inf, -3.0, 3e38
    frame.to_parquet(path, index=False)
    data = KaggleFolder(folder)
    times, values = data.read_spectrogram("train", 501)
    assert not np.isinf(values).any() and np.nanmax(values) < 1e10 and np.nanmin(values) >= 0
    [note] = data.pop_quality_notes()
    assert note.kind == "implausible" and note.values >= 3 and "up to 3.0e+38" in note.message


def test_spectrogram_scale_error_and_long_nan_runs_are_noted(folder):
    path = folder / "train_spectrograms" / "502.parquet"
    frame = pd.read_parquet(path)
    frame.iloc[:, 1:] *= 1e6  # a unit error: every view would saturate
    frame.iloc[20:60, 1:50] = np.nan
    frame.to_parquet(path, index=False)
    data = KaggleFolder(folder)
    data.spectrogram_windows("train", 502, [20, 30])
    notes = {n.kind: n for n in data.pop_quality_notes()}
    assert set(notes) == {"large-scale", "spec-nan"}
    assert "longest run 80 s" in notes["spec-nan"].message and notes["spec-nan"].values == 40


def test_eeg_channel_far_beyond_scalp_range_is_noted_and_kept(folder):
    path = folder / "train_eegs" / "101.parquet"
    frame = pd.read_parquet(path)
    frame["O1"] *= 100  # a loose electrode or a gain error: ~3 mV, within what an amplifier records
    frame.to_parquet(path, index=False)
    data = KaggleFolder(folder)
    window = data.eeg_windows("train", 101, [0])
    assert np.abs(window[..., EEG_COLUMNS.index("O1")]).max() > 1e4 and np.isfinite(window).all()
    [note] = data.pop_quality_notes()
    assert note.kind == "large-channel" and "O1 5" in note.message


def test_loud_synthetic_recordings_pass_the_value_checks_clean(tiny_data):
    # `synth --gain 3` multiplies every EEG amplitude by 3 and so spectrogram power by 9: no finding.
    data = KaggleFolder(tiny_data)
    for path in sorted((tiny_data / "train_eegs").glob("*.parquet")):
        signal = pd.read_parquet(path, columns=list(EEG_COLUMNS)).to_numpy(np.float32)
        assert value_checks.check_eeg(signal * 3)[1] == [], path
    for path in sorted((tiny_data / "train_spectrograms").glob("*.parquet")):
        values = pd.read_parquet(path, columns=list(SPEC_COLUMNS)).to_numpy(np.float32)
        assert value_checks.check_spectrogram(values * 9, SPEC_COLUMNS)[1] == [], path
    assert data.read_eeg("test", data.test_table()["eeg_id"][0]).shape[1] == len(EEG_COLUMNS)


@pytest.mark.parametrize(("csv", "column", "value", "line"), [
    ("train.csv", "eeg_id", 100.5, 5), ("train.csv", "spectrogram_id", 1e30, 3), ("train.csv", "label_id", 1000.25, 2),
    ("train.csv", "eeg_label_offset_seconds", np.inf, 4), ("train.csv", "eeg_label_offset_seconds", 2.0025, 4),
    ("test.csv", "eeg_id", 900.5, 2), ("test.csv", "patient_id", -0.5, 2)])
def test_ids_must_be_whole_numbers_and_offsets_whole_samples(folder, csv, column, value, line):
    table = pd.read_csv(folder / csv)
    table[column] = table[column].astype(np.float64)
    table.loc[line - 2, column] = value
    table.to_csv(folder / csv, index=False)
    data = KaggleFolder(folder)
    with pytest.raises(DataError) as err:
        data.train_table() if csv == "train.csv" else data.test_table()
    message = one_line(err)
    assert str(folder / csv) in message and f"column {column}" in message and f"line {line}" in message


def test_offsets_on_the_sample_grid_and_whole_valued_float_ids_are_accepted(folder):
    train = pd.read_csv(folder / "train.csv")
    train["eeg_id"] = train["eeg_id"].astype(np.float64)  # 100.0: a CSV written from a float column
    train.loc[1, "eeg_label_offset_seconds"] = 4.005  # one 200 Hz sample later
    train.to_csv(folder / "train.csv", index=False)
    table = KaggleFolder(folder).train_table()
    assert table["eeg_id"].dtype == np.int64 and table["eeg_id"].nunique() == 6
