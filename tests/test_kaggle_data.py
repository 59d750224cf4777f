"""The data layer reads the Kaggle layout and refuses bad input with one-line messages."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from core.schema import EEG_COLUMNS, SPEC_COLUMNS, TARGET_COLUMNS
from features.kaggle_data import KaggleFolder
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
