"""Submission writer and validator: normalised, ordered like the sample submission, one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import UserFacingError
from core.schema import SUBMISSION_COLUMNS, VOTE_COLUMNS
from features.submission_file import validate_submission, write_submission

IDS = [30, 10, 20]


@pytest.fixture()
def data(tmp_path):
    pd.DataFrame({"eeg_id": IDS, **{c: 1 / 6 for c in VOTE_COLUMNS}}).to_csv(
        tmp_path / "sample_submission.csv", index=False)
    return tmp_path


def predictions(ids=(10, 20, 30), scale=1.0):
    probs = np.random.default_rng(0).dirichlet(np.ones(6), size=len(ids)) * scale
    return pd.DataFrame({"eeg_id": list(ids), **dict(zip(VOTE_COLUMNS, probs.T, strict=True))})


def test_write_normalises_orders_and_validates(data, tmp_path):
    out = write_submission(predictions(scale=3.0), data, tmp_path / "sub" / "submission.csv")
    written = pd.read_csv(tmp_path / "sub" / "submission.csv")
    assert list(written.columns) == list(SUBMISSION_COLUMNS)
    assert written["eeg_id"].tolist() == IDS
    np.testing.assert_allclose(written[list(VOTE_COLUMNS)].sum(axis=1), 1.0, atol=1e-12)
    validate_submission(tmp_path / "sub" / "submission.csv", data)
    assert len(out) == 3


def test_test_csv_is_the_fallback_for_ids(tmp_path):
    pd.DataFrame({"spectrogram_id": [1, 2, 3], "eeg_id": [10, 20, 30], "patient_id": 1}).to_csv(
        tmp_path / "test.csv", index=False)
    write_submission(predictions(), tmp_path, tmp_path / "s.csv")
    validate_submission(tmp_path / "s.csv", tmp_path)


@pytest.mark.parametrize("change,match", [
    (lambda f: f.iloc[:2], r"eeg_ids do not match the test set \(1 missing, 0 unknown"),
    (lambda f: f.assign(eeg_id=[10, 20, 99]), r"1 missing, 1 unknown, e.g. missing 30"),
    (lambda f: pd.concat([f, f.iloc[:1]]), "eeg_id 10 appears more than once"),
    (lambda f: f.assign(seizure_vote=f.seizure_vote + 0.1), "rows do not sum to 1 .*does not renormalise"),
    (lambda f: f.assign(seizure_vote=-0.1), r"outside \[0, 1\]"),
    (lambda f: f.drop(columns=["other_vote"]), "columns must be eeg_id, seizure_vote"),
    (lambda f: f[["eeg_id", *reversed(VOTE_COLUMNS)]], "in that order"),
    (lambda f: f.assign(lpd_vote=np.nan), "numbers with no empty cells"),
])
def test_validation_errors(data, tmp_path, change, match):
    frame = change(predictions())
    with pytest.raises(UserFacingError, match=match) as err:
        validate_submission(frame, data)
    assert "\n" not in str(err.value)
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(UserFacingError, match="bad.csv"):
        validate_submission(tmp_path / "bad.csv", data)


def test_writer_refuses_wrong_ids_and_empty_rows(data, tmp_path):
    with pytest.raises(UserFacingError, match="1 unknown"):
        write_submission(predictions(ids=(10, 20, 30, 40)), data, tmp_path / "s.csv")
    empty = predictions().assign(**{c: 0.0 for c in VOTE_COLUMNS})
    with pytest.raises(UserFacingError, match="no positive probability"):
        write_submission(empty, data, tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def test_missing_data_folder_files_are_refused(tmp_path):
    with pytest.raises(UserFacingError, match="neither sample_submission.csv nor test.csv"):
        validate_submission(predictions(), tmp_path)
