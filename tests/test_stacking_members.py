"""Loading OOF sets: aligned sets load; misaligned or malformed ones are refused with a one-line message."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import UserFacingError
from core.schema import TARGET_COLUMNS, VOTE_COLUMNS
from stacking.members import load_members, member_path
from synthetic.oof_sets import default_specs, write_synthetic_work


@pytest.fixture()
def work(tmp_path):
    write_synthetic_work(tmp_path, n_rows=400, specs=default_specs(3), n_test=20)
    return tmp_path


def _rewrite(path, change):
    frame = pd.read_parquet(path)
    frame = change(frame)
    frame.to_parquet(path, index=False)


def _refused(work, match, **kwargs):
    folds = pd.read_parquet(work / "folds.parquet")
    with pytest.raises(UserFacingError, match=match) as err:
        load_members(work, folds=folds, **kwargs)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_aligned_sets_load_in_one_row_order(work):
    members = load_members(work, folds=pd.read_parquet(work / "folds.parquet"))
    assert members.names == ["model_00", "model_01", "noise_02"]
    assert members.probs.shape == (3, 400, 6)
    assert members.test_probs.shape == (3, 20, 6)
    shuffled = pd.read_parquet(member_path(work, "model_01")).sample(frac=1.0, random_state=0)
    shuffled.to_parquet(member_path(work, "model_01"), index=False)
    again = load_members(work)
    np.testing.assert_allclose(again.probs, members.probs)
    assert load_members(work, ["model_01"]).names == ["model_01"]


def test_fold_mismatch_is_refused(work):
    _rewrite(member_path(work, "model_01"), lambda f: f.assign(fold=np.where(f.index < 5, (f.fold + 1) % 5, f.fold)))
    message = _refused(work, "model_01.parquet: fold of 5 samples differ")
    assert "models=" in message


def test_missing_samples_are_refused(work):
    _rewrite(member_path(work, "model_01"), lambda f: f.iloc[10:])
    _refused(work, "model_01.parquet: 10 samples are not shared")


def test_missing_fold_against_folds_file_is_refused(work):
    for name in ("model_00", "model_01", "noise_02"):
        _rewrite(member_path(work, name), lambda f: f[f.fold != 3])
    _refused(work, r"model_00.parquet: no predictions for \d+ samples of WORK/folds.parquet \(fold 3")


def test_different_targets_are_refused(work):
    _rewrite(member_path(work, "noise_02"),
             lambda f: f.assign(**{TARGET_COLUMNS[0]: np.roll(f[TARGET_COLUMNS[0]].to_numpy(), 1)}))
    _refused(work, "noise_02.parquet: targets or n_votes of")


def test_rows_not_summing_to_one_are_refused(work):
    _rewrite(member_path(work, "model_00"), lambda f: f.assign(**{VOTE_COLUMNS[0]: f[VOTE_COLUMNS[0]] + 0.5}))
    _refused(work, "model_00.parquet: 400 rows are not probabilities summing to 1.*not logits")


def test_missing_columns_duplicates_and_unknown_names_are_refused(work):
    _rewrite(member_path(work, "model_00"), lambda f: f.drop(columns=["n_votes"]))
    _refused(work, "model_00.parquet lacks columns n_votes")
    _refused(work, "nope.parquet is missing; available", names=["nope"])


def test_duplicated_keys_are_refused(work):
    _rewrite(member_path(work, "model_01"), lambda f: pd.concat([f, f.iloc[:2]]))
    _refused(work, "model_01.parquet: 2 duplicated keys")


def test_label_id_in_some_sets_only_is_refused(work):
    _rewrite(member_path(work, "model_01"), lambda f: f.drop(columns=["label_id"]))
    _refused(work, "model_01.parquet has no label_id.*stacking import")


def test_test_predictions_must_exist_for_all_or_none(work):
    member_path(work, "noise_02", "test").unlink()
    _refused(work, "noise_02.parquet is missing while model_00 has test predictions")
    for name in ("model_00", "model_01"):
        member_path(work, name, "test").unlink()
    assert load_members(work).test_probs is None


def test_empty_work_folder_is_refused(tmp_path):
    with pytest.raises(UserFacingError, match="holds no OOF sets"):
        load_members(tmp_path)
