"""`python -m stacking import`: round trip through outside column names, and each bad input refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.artifacts import write_parquet
from core.errors import UserFacingError
from core.schema import CLASSES, TARGET_COLUMNS, VOTE_COLUMNS
from features.kaggle_data import KaggleFolder
from features.labels import samples
from oof.folds import create_or_load_folds
from stacking.__main__ import main
from stacking.importer import import_oof
from stacking.members import load_members, member_path
from synthetic.oof_sets import synthetic_samples

N_TEST = 8


def write_data_folder(root):
    """train.csv with two label rows per sample (same votes, shifted offsets), test.csv, sample submission.

    The recordings themselves are empty files: the importer only reads the label tables."""
    table = synthetic_samples(300, seed=1)
    votes = np.rint(table[list(TARGET_COLUMNS)].to_numpy() * table["n_votes"].to_numpy()[:, None]).astype(int)
    rows = []
    for i, (eeg, label, patient) in enumerate(table[["eeg_id", "label_id", "patient_id"]].to_numpy()):
        for sub in range(2):
            rows.append({"eeg_id": eeg, "eeg_sub_id": 2 * (i % 2) + sub,
                         "eeg_label_offset_seconds": 100.0 * (i % 2) + 2 * sub, "spectrogram_id": eeg,
                         "spectrogram_sub_id": sub, "spectrogram_label_offset_seconds": 0.0,
                         "label_id": 2 * label + sub, "patient_id": patient,
                         "expert_consensus": "Other", **dict(zip(VOTE_COLUMNS, votes[i].tolist(), strict=True))})
    train = pd.DataFrame(rows)
    for sub in ("train_eegs", "train_spectrograms", "test_eegs", "test_spectrograms"):
        (root / sub).mkdir(parents=True)
    for eeg in train["eeg_id"].unique():
        (root / "train_eegs" / f"{eeg}.parquet").touch()
        (root / "train_spectrograms" / f"{eeg}.parquet").touch()
    train.to_csv(root / "train.csv", index=False)
    test_ids = 5000 + np.arange(N_TEST)
    pd.DataFrame({"spectrogram_id": test_ids, "eeg_id": test_ids, "patient_id": 1}).to_csv(root / "test.csv",
                                                                                           index=False)
    pd.DataFrame({"eeg_id": test_ids, **{c: 1 / 6 for c in VOTE_COLUMNS}}).to_csv(
        root / "sample_submission.csv", index=False)
    return root


@pytest.fixture()
def folders(tmp_path):
    data = write_data_folder(tmp_path / "data")
    work = tmp_path / "work"
    folds = create_or_load_folds(data, work)
    table = samples(KaggleFolder(data).train_table()).merge(folds[["label_id", "fold"]], on="label_id")
    rng = np.random.default_rng(0)
    logits = np.log(table[list(TARGET_COLUMNS)].to_numpy() + 0.1) + rng.normal(0, 0.7, (len(table), 6))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    oof = table[["eeg_id", "label_id", "fold"]].copy()
    oof[list(VOTE_COLUMNS)] = probs
    oof[list(TARGET_COLUMNS)] = table[list(TARGET_COLUMNS)].to_numpy()
    oof["n_votes"] = table["n_votes"].to_numpy()
    write_parquet(member_path(work, "ours"), oof)
    test = pd.DataFrame({"eeg_id": 5000 + np.arange(N_TEST), **{c: 1 / 6 for c in VOTE_COLUMNS}})
    write_parquet(member_path(work, "ours", "test"), test)
    return data, work, oof


OUTSIDE_NAMES = ["pred_seizure", "LPD_vote_prediction", "prob_gpd", "lrda", "Grda_Vote", "other_prob"]


def export(oof: pd.DataFrame, path, key=("eeg_id", "label_id"), names=OUTSIDE_NAMES):
    out = oof[list(key)].copy()
    out[names] = oof[list(VOTE_COLUMNS)].to_numpy()
    out.to_csv(path, index=False) if str(path).endswith(".csv") else out.to_parquet(path, index=False)
    return path


def test_round_trip_through_outside_names_gives_identical_kl(folders, tmp_path):
    data, work, oof = folders
    outside = export(oof, tmp_path / "outside.csv")
    test_file = tmp_path / "outside_test.csv"
    export(pd.read_parquet(member_path(work, "ours", "test")), test_file, key=("eeg_id",))
    summary = import_oof("theirs", outside, work, data, test_file=test_file)
    members = load_members(work, ["ours", "theirs"], folds=pd.read_parquet(work / "folds.parquet"))
    np.testing.assert_allclose(members.probs[0], members.probs[1], atol=1e-12)
    assert members.test_probs.shape == (2, N_TEST, 6)
    ours = pd.read_json(work / "oof" / "theirs.json", typ="series")
    assert ours["kl"]["kl_all"] == pytest.approx(summary["kl"]["kl_all"])
    from core.metric import kl_divergence
    assert summary["kl"]["kl_all"] == pytest.approx(kl_divergence(oof[list(TARGET_COLUMNS)].to_numpy(),
                                                                  oof[list(VOTE_COLUMNS)].to_numpy()), abs=1e-12)


def test_eeg_sub_id_keys_and_mapped_columns(folders, tmp_path):
    data, work, oof = folders
    train = KaggleFolder(data).train_table()
    # Every label row of a sample gets the sample's prediction; the importer averages them back.
    rows = train[["eeg_id", "eeg_sub_id", "label_id", *VOTE_COLUMNS]].merge(
        samples(train)[["eeg_id", "label_id", *VOTE_COLUMNS]].rename(columns={"label_id": "sample"}),
        on=["eeg_id", *VOTE_COLUMNS])
    rows = rows.merge(oof[["label_id", *VOTE_COLUMNS]].rename(columns={"label_id": "sample"}), on="sample",
                      suffixes=("_votes", ""))
    names = [f"col{i}" for i in range(6)]
    path = export(rows, tmp_path / "by_sub.parquet", key=("eeg_id", "eeg_sub_id"), names=names)
    mapping = ",".join(f"{n}={c}" for n, c in zip(names, CLASSES, strict=True))
    assert main(["import", "subs", str(path), "--work", str(work), "--data", str(data), "--map", mapping]) == 0
    ours, subs = (pd.read_parquet(member_path(work, n)).sort_values("label_id") for n in ("ours", "subs"))
    np.testing.assert_array_equal(ours["label_id"], subs["label_id"])
    np.testing.assert_allclose(ours[list(VOTE_COLUMNS)], subs[list(VOTE_COLUMNS)], atol=1e-12)


def test_eeg_id_keys_are_broadcast_to_the_recordings_samples(folders, tmp_path):
    data, work, oof = folders
    per_eeg = oof.groupby("eeg_id", as_index=False)[list(VOTE_COLUMNS)].mean()
    import_oof("per_eeg", export(per_eeg, tmp_path / "eeg.csv", key=("eeg_id",)), work, data)
    imported = pd.read_parquet(member_path(work, "per_eeg"))
    assert len(imported) == len(oof)
    assert imported.groupby("eeg_id")[VOTE_COLUMNS[0]].nunique().max() == 1


def _bad(frame_change, match, folders, tmp_path, name="bad", **kwargs):
    data, work, oof = folders
    frame = pd.read_csv(export(oof, tmp_path / "good.csv"))
    frame = frame_change(frame)
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(UserFacingError, match=match) as err:
        import_oof(name, path, work, data, **kwargs)
    assert "\n" not in str(err.value)
    assert name == "ours" or not member_path(work, name).exists()
    return str(err.value)


def test_unknown_ids_are_refused(folders, tmp_path):
    message = _bad(lambda f: f.assign(label_id=f.label_id.where(f.index > 0, 999_999_999)),
                   "bad.csv: 1 label_ids not in train.csv", folders, tmp_path)
    assert "another train.csv" in message


def test_duplicated_keys_are_refused(folders, tmp_path):
    _bad(lambda f: pd.concat([f, f.iloc[:3]]), r"bad.csv: 3 duplicated keys \(label_id", folders, tmp_path)


def test_rows_not_summing_to_one_are_refused(folders, tmp_path):
    _bad(lambda f: f.assign(prob_gpd=f.prob_gpd * 3), "bad.csv: .* rows are not probabilities summing to 1",
         folders, tmp_path)


def test_missing_class_is_refused(folders, tmp_path):
    _bad(lambda f: f.drop(columns=["lrda"]), "bad.csv: no column for class lrda.*--map COLUMN=lrda",
         folders, tmp_path)


def test_ambiguous_columns_are_refused(folders, tmp_path):
    _bad(lambda f: f.assign(seizure_prob=f.pred_seizure), "both look like seizure predictions", folders, tmp_path)


def test_rows_missing_from_a_fold_are_refused(folders, tmp_path):
    data, work, oof = folders
    in_fold_2 = set(oof.loc[oof.fold == 2, "label_id"])
    _bad(lambda f: f[~f.label_id.isin(in_fold_2)], r"no predictions for \d+ samples .*\(fold 2: \d+ of \d+\)",
         folders, tmp_path)


def test_bad_test_file_and_mapping_are_refused(folders, tmp_path):
    data, work, oof = folders
    test = pd.read_parquet(member_path(work, "ours", "test")).iloc[1:]
    test_file = export(test, tmp_path / "t.csv", key=("eeg_id",))
    _bad(lambda f: f, "t.csv: eeg_ids do not match .*sample_submission.csv .*1 missing", folders, tmp_path,
         test_file=test_file)
    _bad(lambda f: f, "--map item 'x=blob'", folders, tmp_path, mapping="x=blob")
    _bad(lambda f: f, "exists; choose another NAME or pass --force", folders, tmp_path, name="ours")


def test_cli_prints_one_line_errors(folders, tmp_path, capsys):
    data, work, _ = folders
    assert main(["import", "x", str(tmp_path / "none.csv"), "--work", str(work), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "none.csv does not exist" in err


def _with_imported_member(folders, tmp_path):
    """WORK with two members trained here (no checkpoints needed to stack) and one imported with --test."""
    data, work, oof = folders
    rng = np.random.default_rng(5)
    noisy = oof.copy()
    noisy[list(VOTE_COLUMNS)] = 0.7 * oof[list(VOTE_COLUMNS)].to_numpy() + 0.3 * rng.dirichlet(np.ones(6), len(oof))
    write_parquet(member_path(work, "ours2"), noisy)
    test = pd.read_parquet(member_path(work, "ours", "test"))
    write_parquet(member_path(work, "ours2", "test"), test)
    theirs = test.copy()
    theirs[list(VOTE_COLUMNS)] = rng.dirichlet(np.ones(6), size=N_TEST)
    test_file = export(theirs, tmp_path / "their_test.csv", key=("eeg_id",))
    import_oof("theirs", export(oof, tmp_path / "theirs.csv"), work, data, test_file=test_file)
    return data, work


def test_a_stack_with_an_imported_member_saves_a_stacker_without_it(folders, tmp_path, caplog):
    import json

    from stacking.config import stack_config
    from stacking.run import run_stack
    from stacking.saved_stacker import load_stacker

    data, work = _with_imported_member(folders, tmp_path)
    report = run_stack(stack_config(work, data, ["methods=blend", "blend.trials=2"]))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "theirs" in r.getMessage()]
    assert len(warnings) == 1 and "no checkpoints (theirs)" in warnings[0]
    assert "refit on the other 2 members" in warnings[0]
    assert report["members"] == ["ours", "ours2", "theirs"]  # chosen with it: the CV figures include it
    assert report["submission_stacker"]["members"] == ["ours", "ours2"]
    assert report["submission_stacker"]["excluded"] == ["theirs"]
    stacker = load_stacker(work)
    assert stacker.members == ["ours", "ours2"]
    # stack/test.parquet and submission.csv are what `make submission` will write: the saved stacker's
    test_probs = {n: pd.read_parquet(member_path(work, n, "test")).sort_values("eeg_id")[list(VOTE_COLUMNS)].to_numpy()
                  for n in stacker.members}
    stacked = pd.read_parquet(work / "stack" / "test.parquet")[list(VOTE_COLUMNS)].to_numpy()
    np.testing.assert_allclose(stacker.apply(test_probs), stacked, rtol=0, atol=1e-12)
    assert json.loads((work / "stack" / "report.json").read_text())["submission_stacker"]["excluded"] == ["theirs"]
    assert (work / "submission.csv").is_file()


@pytest.mark.parametrize("command", ["submit", "bundle"])
def test_submit_and_bundle_refuse_an_imported_member_in_one_line(folders, tmp_path, capsys, command):
    import json

    from core.cli import main as cli
    from stacking.config import stack_config
    from stacking.run import run_stack

    data, work = _with_imported_member(folders, tmp_path)
    run_stack(stack_config(work, data, ["methods=blend", "blend.trials=2", "models=theirs,ours"]))
    path = work / "stack" / "stacker.json"
    saved = json.loads(path.read_text())  # as written by a stack from before the refit: naming theirs
    path.write_text(json.dumps({**saved, "members": ["theirs", "ours"],
                                "blend": {**saved["blend"], "weights": [0.5, 0.5]}}))
    args = ["--work", str(work)] + (["--data", str(data)] if command == "submit" else [])
    assert cli([command, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "theirs.json: stack member theirs was imported" in err, err
    assert "rerun `make stack`" in err
