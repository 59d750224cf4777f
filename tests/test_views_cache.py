"""Views (shapes, NaN, hemisphere swap) and the cache (idempotence, invalidation, no half-written trust)."""

from __future__ import annotations

import argparse
import errno
import json
import os
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from joblib import parallel_config

from core.errors import DataError, UserFacingError
from core.schema import EEG_COLUMNS
from features import cache, inputs, spec_tables
from features.cache import cache_dir, load_cached_view, prepare_view
from features.kaggle_data import KaggleFolder
from features.kaggle_spectrogram import swap_spectrogram_table
from features.mapped import MappedArray, create_npy
from features.montage import swap_hemispheres, swap_referential
from features.views import VIEWS, compute_view, get_view
from synthetic.damage import corrupt_data_page, write_uncompressed
from tests.kaggle_layout import make_folder, write_eeg, write_spectrogram

EEG_VIEWS = [name for name, v in VIEWS.items() if v.source == "eeg"]


def eeg_windows(n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 30, (n, 10_000, len(EEG_COLUMNS))).astype(np.float32)


def spec_windows(n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(2.0, 5.0, (n, 300, 400)).astype(np.float32)


def compute(name: str, eeg: np.ndarray, spec: np.ndarray) -> np.ndarray:
    return compute_view(name, eeg_windows=eeg, spec_windows=spec)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_folder(tmp_path_factory.mktemp("data"), n_eegs=3)


@pytest.mark.parametrize("name", list(VIEWS))
def test_every_view_has_its_declared_shape_and_no_nan(name):
    eeg, spec = eeg_windows(), spec_windows()
    eeg[0, 3000:3400, 5] = np.nan
    spec[1, 10:50] = np.nan
    out = compute(name, eeg, spec)
    assert out.shape == (2, *get_view(name).output_shape())
    assert out.dtype == np.float32 and np.isfinite(out).all()


@pytest.mark.parametrize("name", ["eeg_spec_tiny", "wave_tiny", "kaggle_spec_tiny", "eeg_spec"])
def test_swap_index_mirrors_the_view(name):
    view = get_view(name)
    eeg, spec = eeg_windows(), spec_windows()
    mirrored = compute(name, swap_referential(eeg), swap_spectrogram_table(spec))
    np.testing.assert_allclose(mirrored, swap_hemispheres(compute(name, eeg, spec), view.swap_index, axis=1),
                               atol=1e-4)
    assert tuple(np.asarray(view.swap_index)[list(view.swap_index)]) == tuple(range(len(view.swap_index)))


@pytest.mark.parametrize("name", ["wave_tiny", "eeg_spec_tiny", "wave"])
def test_windows_of_one_recording_give_the_same_rows_with_offsets(name):
    recording = eeg_windows(1, seed=3)[0]
    recording = np.concatenate([recording, recording[:2000] * 0.5])  # 60 s
    offsets = np.array([0.0, 2.0, 10.0, 3.0])
    windows = np.stack([recording[int(o * 200):int(o * 200) + 10_000] for o in offsets])
    np.testing.assert_allclose(compute_view(name, eeg_windows=windows, offsets_s=offsets),
                               compute_view(name, eeg_windows=windows), atol=1e-4)


def test_wave_mask_channel_shows_the_gap_and_spec_masks_are_optional():
    eeg = eeg_windows()
    eeg[1, 2000:4000, EEG_COLUMNS.index("O1")] = np.nan
    wave = compute_view("wave", eeg_windows=eeg)
    assert wave[0, -1].max() == 0 and wave[1, -1, 550:950].min() > 0.1
    masked = replace(get_view("eeg_spec_tiny"), nan_mask=True)
    out = compute_view(masked, eeg_windows=eeg)
    assert out.shape == (2, 10, 32, 50) and masked.channel_names()[-2:] == ("nan@50s", "nan@10s")
    assert out[0, 8:].max() == 0 and out[1, 8].max() > 0


def test_unknown_view_is_a_user_error():
    with pytest.raises(UserFacingError, match="eeg_spec"):
        get_view("eeg_specs")


def test_prepare_writes_train_and_test_rows_matching_compute_view(data, tmp_path):
    path = prepare_view("eeg_spec_tiny", data, tmp_path, progress=False)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["config"]["name"] == "eeg_spec_tiny" and manifest["code_version"]
    train, index = load_cached_view("eeg_spec_tiny", data, tmp_path, "train", jobs=1)
    table = KaggleFolder(data).train_table()
    assert isinstance(train, MappedArray) and train.dtype == np.float16 and train.shape == (9, 8, 32, 50)
    assert index["label_id"].tolist() == table["label_id"].tolist()
    row = table.iloc[4]
    windows = KaggleFolder(data).eeg_windows("train", row["eeg_id"], [row["eeg_label_offset_seconds"]])
    np.testing.assert_allclose(train[4], compute_view("eeg_spec_tiny", eeg_windows=windows)[0], atol=2e-3)
    test, test_index = load_cached_view("eeg_spec_tiny", data, tmp_path, "test", jobs=1)
    assert test.shape == (1, 8, 32, 50) and test_index["eeg_id"].tolist() == [900]


def test_second_prepare_is_a_no_op(data, tmp_path):
    path = prepare_view("kaggle_spec_tiny", data, tmp_path, progress=False)
    stamps = {p.name: p.stat().st_mtime_ns for p in path.iterdir()}
    assert prepare_view("kaggle_spec_tiny", data, tmp_path, progress=False) == path
    assert {p.name: p.stat().st_mtime_ns for p in path.iterdir()} == stamps
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary folder left


def test_config_change_gives_a_new_cache(data, tmp_path):
    view = get_view("wave_tiny")
    first = prepare_view(view, data, tmp_path, progress=False)
    other = prepare_view(replace(view, scale_uv=64.0), data, tmp_path, progress=False)
    assert other != first and other.name.startswith("wave_tiny-")
    np.testing.assert_allclose(np.load(other / "train.npy")[:, :16], np.load(first / "train.npy")[:, :16] / 2,
                               atol=1e-3)
    assert cache_dir(view, tmp_path) == first


def stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_a_replaced_recording_recomputes_its_rows_only_and_the_log_says_why(tmp_path, caplog):
    data = make_folder(tmp_path / "data", n_eegs=3)
    path = prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    before, test_files = np.load(path / "train.npy"), stamps(path)
    write_eeg(data / "train_eegs" / "101.parquet", 60, np.random.default_rng(7))  # as the errors advise: re-copy
    with caplog.at_level("INFO", logger="features.cache"):
        assert prepare_view("wave_tiny", data, tmp_path / "work", progress=False) == path
    assert "wave_tiny train: train_eegs/101.parquet changed; recomputing the 3 rows of 1 recording(s)" in caplog.text
    after = np.load(path / "train.npy")
    table = KaggleFolder(data).train_table()
    mine = (table["eeg_id"] == 101).to_numpy()
    np.testing.assert_array_equal(after[~mine], before[~mine])
    assert not np.allclose(after[mine], before[mine])
    windows = KaggleFolder(data).eeg_windows("train", 101, table.loc[mine, "eeg_label_offset_seconds"])
    np.testing.assert_allclose(after[mine], compute_view("wave_tiny", eeg_windows=windows), atol=2e-3)
    assert {k: v for k, v in stamps(path).items() if k.startswith("test")} == \
        {k: v for k, v in test_files.items() if k.startswith("test")}
    caplog.clear()
    with caplog.at_level("INFO", logger="features.cache"):
        prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    assert "recomputing" not in caplog.text and "up to date" in caplog.text


def test_a_changed_csv_rebuilds_its_split_and_keeps_the_other(tmp_path, caplog):
    data = make_folder(tmp_path / "data", n_eegs=3)
    path = prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    test_files = {k: v for k, v in stamps(path).items() if k.startswith("test")}
    train = pd.read_csv(data / "train.csv")
    train.drop(index=[4]).to_csv(data / "train.csv", index=False)  # "drop that label row"
    with caplog.at_level("INFO", logger="features.cache"):
        prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    assert "wave_tiny train: train.csv changed; building the split in" in caplog.text
    assert np.load(path / "train.npy").shape[0] == 8
    assert pd.read_parquet(path / "train_index.parquet")["label_id"].tolist() == train["label_id"].drop(4).tolist()
    assert {k: v for k, v in stamps(path).items() if k.startswith("test")} == test_files


def test_a_table_cache_rebuilds_the_split_of_a_changed_spectrogram(tmp_path, caplog):
    data = make_folder(tmp_path / "data", n_eegs=2)
    view = get_view("kaggle_spec")
    prepare_view(view, data, tmp_path / "work", progress=False)
    write_spectrogram(data / "test_spectrograms" / "950.parquet", 600, np.random.default_rng(5))
    with caplog.at_level("INFO", logger="features.cache"):
        array, index = load_cached_view(view, data, tmp_path / "work", "test", jobs=1)
    assert "kaggle_spec test: test_spectrograms/950.parquet changed; building the split in" in caplog.text
    expected = compute_view(view, spec_windows=KaggleFolder(data).spectrogram_windows("test", 950, [0.0]))
    np.testing.assert_allclose(array[np.arange(1)], expected, atol=5e-3)


def test_a_copied_project_keeps_its_caches_and_reads_no_whole_file_to_check_them(tmp_path, monkeypatch, caplog):
    data = make_folder(tmp_path / "a" / "data", n_eegs=2)
    path = prepare_view("wave_tiny", data, tmp_path / "a" / "work", progress=False)
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # mtimes kept (cp -a, rsync -a)
    shutil.copytree(tmp_path / "a", tmp_path / "c", copy_function=shutil.copyfile)  # new mtimes (cp -r)
    copied_b = stamps(tmp_path / "b" / path.relative_to(tmp_path / "a"))

    def whole_file_read(*args):
        raise AssertionError("a current cache was checked by reading whole files")

    with monkeypatch.context() as patch:
        patch.setattr(inputs, "_content_hash", whole_file_read)
        b = prepare_view("wave_tiny", tmp_path / "b" / "data", tmp_path / "b" / "work", progress=False)
    assert stamps(b) == copied_b and b.name == path.name
    c = tmp_path / "c" / path.relative_to(tmp_path / "a")
    copied_c = {k: v for k, v in stamps(c).items() if k != "manifest.json"}
    with caplog.at_level("INFO", logger="features.cache"):
        prepare_view("wave_tiny", tmp_path / "c" / "data", tmp_path / "c" / "work", progress=False)
    assert "have new mtimes but the same content; kept" in caplog.text and "building" not in caplog.text
    assert {k: v for k, v in stamps(c).items() if k != "manifest.json"} == copied_c
    with monkeypatch.context() as patch:  # the new mtimes are recorded: the next check is quick again
        patch.setattr(inputs, "_content_hash", whole_file_read)
        prepare_view("wave_tiny", tmp_path / "c" / "data", tmp_path / "c" / "work", progress=False)


def test_an_edit_between_the_sampled_blocks_is_caught_by_the_content_hash(tmp_path):
    data = make_folder(tmp_path / "data", n_eegs=2)
    path = prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    eeg = data / "train_eegs" / "100.parquet"
    pd.read_parquet(eeg).to_parquet(eeg, index=False, compression=None, use_dictionary=False)
    prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    before = np.load(path / "train.npy")
    size = eeg.stat().st_size
    with open(eeg, "r+b") as f:  # a quarter in: neither the first, middle nor last sampled block
        f.seek(size // 4)
        f.write(np.zeros(200, np.float32).tobytes())
    assert inputs.identity(eeg).sample == json.loads((path / "manifest.json").read_text())[
        "train"]["inputs"]["train_eegs/100.parquet"][2]
    prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    assert not np.array_equal(np.load(path / "train.npy")[:3], before[:3])


def test_an_interrupted_row_update_is_redone(tmp_path, monkeypatch):
    data = make_folder(tmp_path / "data", n_eegs=2)
    path = prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    write_eeg(data / "train_eegs" / "100.parquet", 60, np.random.default_rng(9))

    def killed(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(cache, "_run_task", killed)
        with pytest.raises(KeyboardInterrupt):
            prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    windows = KaggleFolder(data).eeg_windows("train", 100, [0, 4, 10])
    np.testing.assert_allclose(np.load(path / "train.npy")[:3], compute_view("wave_tiny", eeg_windows=windows),
                               atol=2e-3)


def test_a_build_without_the_disk_space_stops_in_one_line(data, tmp_path, monkeypatch):
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(UserFacingError) as err:
        prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    message = str(err.value)
    needed = 9 * int(np.prod(get_view("wave_tiny").output_shape())) * 2
    assert "\n" not in message and str(tmp_path / "work" / "cache") in message
    assert f"needs {needed} bytes" in message and "but 1000 bytes" in message
    assert list((tmp_path / "work" / "cache").iterdir()) == []


def test_a_disk_that_fills_during_a_build_is_one_line_and_leaves_nothing(data, tmp_path, monkeypatch):
    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spec_tables, "write_task_part", full)  # another writer took the space meanwhile
    with pytest.raises(UserFacingError) as err:
        prepare_view("kaggle_spec", data, tmp_path / "work", progress=False)
    assert str(err.value).startswith(f"{tmp_path / 'work' / 'cache'}: the disk filled up while writing the "
                                     f"kaggle_spec train cache") and "\n" not in str(err.value)
    assert list((tmp_path / "work" / "cache").iterdir()) == []


def test_new_arrays_are_allocated_up_front_and_a_full_disk_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "a.npy"
    create_npy(path, (64, 1024))
    stat = path.stat()
    assert stat.st_blocks * 512 >= stat.st_size  # not sparse: no SIGBUS when rows are written later

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(UserFacingError, match=f"{tmp_path}: no space for b.npy"):
        create_npy(tmp_path / "b.npy", (64, 1024))
    assert not (tmp_path / "b.npy").exists()


def test_default_jobs_are_bounded_by_cores_ram_and_four(monkeypatch):
    monkeypatch.setattr(cache, "available_cores", lambda: 16)
    for ram, jobs in ((64.0, 4), (4.0, 2), (1.0, 1), (None, 4)):
        monkeypatch.setattr(cache, "_available_ram_gb", lambda ram=ram: ram)
        assert cache.default_jobs() == jobs
    monkeypatch.setattr(cache, "available_cores", lambda: 2)
    assert cache.default_jobs() == 2
    parser = argparse.ArgumentParser()
    cache.add_arguments(parser)
    assert parser.get_default("jobs") == 2 and "available RAM" in parser.format_help()


def test_folder_without_valid_manifest_is_rebuilt(data, tmp_path):
    path = prepare_view("kaggle_spec_tiny", data, tmp_path, progress=False)
    (path / "manifest.json").unlink()  # as if a build died before its last step
    np.save(path / "train.npy", np.zeros((2, 2), np.float16))
    assert prepare_view("kaggle_spec_tiny", data, tmp_path, progress=False) == path
    assert np.load(path / "train.npy").shape == (9, 4, 25, 75)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["train"]["shape"][0] = 10  # a manifest that does not describe its arrays
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert not cache.is_current(path, manifest["key"])


def test_failed_build_leaves_nothing_and_dead_temp_folders_are_removed(data, tmp_path, monkeypatch):
    final = cache_dir("wave_tiny", tmp_path)
    stale = final.parent / f".{final.name}.tmp-{cache.socket.gethostname()}-999999999"
    (stale / "junk").mkdir(parents=True)

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-build")

    monkeypatch.setattr(cache, "compute_view", crash)
    with pytest.raises(RuntimeError, match="killed"):
        prepare_view("wave_tiny", data, tmp_path, progress=False)
    assert not final.exists() and list(final.parent.iterdir()) == []


def test_data_errors_pass_through(tmp_path):
    data = make_folder(tmp_path / "data", n_eegs=2)
    write_eeg(data / "train_eegs" / "101.parquet", 30, np.random.default_rng(0))  # shorter than its rows
    with pytest.raises(DataError, match="101.parquet"):
        prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    assert not any((tmp_path / "work" / "cache").iterdir())
    with pytest.raises(DataError, match="does not exist"):
        prepare_view("wave_tiny", tmp_path / "missing", tmp_path / "work", progress=False)


def test_prepare_reports_nan_gaps_and_flat_channels_in_one_line_and_a_csv(tmp_path, caplog):
    data = make_folder(tmp_path / "data", n_eegs=3)
    for eeg_id, column in ((100, "O2"), (101, "Fp1")):
        path = data / "train_eegs" / f"{eeg_id}.parquet"
        frame = pd.read_parquet(path)
        frame.loc[:, column] = 0.0
        frame.loc[50:90, "Cz"] = np.nan
        frame.to_parquet(path, index=False)
    with caplog.at_level("WARNING"):
        path = prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    assert [r.getMessage() for r in caplog.records] == [
        f"wave_tiny train: 2 files with NaN gaps (filled and masked), 2 files with flat channels; "
        f"each file in {path / 'train_quality.csv'}"]
    listed = pd.read_csv(path / "train_quality.csv")
    assert sorted(listed["kind"]) == ["flat", "flat", "nan-gap", "nan-gap"]
    assert set(listed["file"].map(lambda f: Path(f).name)) == {"100.parquet", "101.parquet"}
    assert not (path / "test_quality.csv").exists()


def test_prepare_reports_corrupt_pages_with_their_counts_in_the_summary_and_csv(tmp_path, caplog):
    data = make_folder(tmp_path / "data", n_eegs=2)
    path = data / "train_eegs" / "101.parquet"
    write_uncompressed(path)
    corrupt_data_page(path, "Fz")
    with caplog.at_level("WARNING"):
        folder = prepare_view("wave_tiny", data, tmp_path / "work", progress=False)
    [line] = [r.getMessage() for r in caplog.records]
    listed = pd.read_csv(folder / "train_quality.csv").set_index("kind")
    count = int(listed.loc["implausible", "values"])
    assert count >= 4000 and Path(listed.loc["implausible", "file"]).name == "101.parquet"
    assert line.startswith("wave_tiny train: ") and "values that cannot be measurements" in line
    assert f"1 file with values that cannot be measurements ({count} set to NaN, filled and masked)" in line
    assert np.isfinite(np.load(folder / "train.npy")).all() and np.abs(np.load(folder / "train.npy")).max() < 100


def test_parallel_prepare_matches_serial(data, tmp_path, monkeypatch):
    # Threads stand in for joblib's worker processes (whose start-up costs seconds); what processes
    # add is pickling the task arguments, checked here directly. The bench runs real processes.
    view = get_view("wave_tiny")
    task = cache._tasks(view, cache.split_index(KaggleFolder(data), "train"))[0]
    assert pickle.loads(pickle.dumps((view, data, task)))[0] == view
    serial = prepare_view(view, data, tmp_path / "serial", jobs=1, progress=False)
    monkeypatch.setattr(cache, "PARALLEL_MIN_ROWS", 0)
    with parallel_config(backend="threading"):
        parallel = prepare_view(view, data, tmp_path / "parallel", jobs=2, progress=False)
    for split in ("train", "test"):
        np.testing.assert_array_equal(np.load(serial / f"{split}.npy"), np.load(parallel / f"{split}.npy"))
        pd.testing.assert_frame_equal(pd.read_parquet(serial / f"{split}_index.parquet"),
                                      pd.read_parquet(parallel / f"{split}_index.parquet"))


def test_tasks_group_rows_by_recording_and_bound_each_read():
    index = pd.DataFrame({"eeg_id": [7] * 300 + [8] * 5, "eeg_label_offset_seconds": np.arange(305.0)})
    tasks = cache._tasks(get_view("wave"), index)
    reads = [(recording, rows) for task in tasks for recording, _, rows in task]
    assert max(len(rows) for _, rows in reads) <= cache.MAX_ROWS_PER_READ
    assert sorted(np.concatenate([rows for _, rows in reads]).tolist()) == list(range(305))
    assert {recording for recording, rows in reads if 300 in rows} == {8}


def test_covered_rows_store_overlapping_windows_once():
    covered, starts = spec_tables.covered_rows(1000, np.array([0, 2, 500]))
    assert covered.sum() == 302 + 300 and covered[:302].all() and not covered[302:500].any()
    assert starts.tolist() == [0, 2, 302]  # positions among the covered rows: windows stay contiguous


def test_kaggle_spec_is_cached_as_table_rows_and_gives_the_view_of_each_row(tmp_path):
    data = make_folder(tmp_path / "data", n_eegs=3)
    path = data / "train_spectrograms" / "501.parquet"
    frame = pd.read_parquet(path)
    frame.iloc[12:40, 1:101] = np.nan  # a NaN run in one chain, as real files have
    frame.iloc[3, 5] = 1e7  # beyond float16's range: stored clipped, the view clips at e^8 anyway
    frame.to_parquet(path, index=False)
    view = get_view("kaggle_spec")
    folder = prepare_view(view, data, tmp_path / "work", progress=False)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert not (folder / "train.npy").exists() and manifest["train"]["shape"] == [9, 4, 100, 300]
    assert manifest["train"]["tables"] == [3 * 305, 400]  # 3 files x 305 rows, not 9 windows x 300
    index = cache.split_index(KaggleFolder(data), "train")
    assert spec_tables.estimated_table_bytes(index) == 3 * 305 * 400 * 2  # the free-space check's estimate
    table = KaggleFolder(data)
    for split, key in (("train", "spectrogram_label_offset_seconds"), ("test", None)):
        array, index = load_cached_view(view, data, tmp_path / "work", split, jobs=1)
        assert isinstance(array, spec_tables.WindowTable) and array.shape == (len(index), 4, 100, 300)
        rows = np.arange(len(index))
        offsets = index[key] if key else np.zeros(len(index))
        expected = np.concatenate([compute_view(view, spec_windows=table.spectrogram_windows(
            split, index["spectrogram_id"][r], [offsets[r]])) for r in rows])
        got = array[rows]
        assert got.dtype == np.float32 and np.isfinite(got).all()
        np.testing.assert_allclose(got, expected, atol=5e-3)
        np.testing.assert_array_equal(array[len(index) - 1], got[-1])


def test_parallel_table_build_matches_serial(data, tmp_path, monkeypatch):
    view = get_view("kaggle_spec")
    serial = prepare_view(view, data, tmp_path / "serial", jobs=1, progress=False)
    monkeypatch.setattr(cache, "PARALLEL_MIN_ROWS", 0)
    with parallel_config(backend="threading"):
        parallel = prepare_view(view, data, tmp_path / "parallel", jobs=2, progress=False)
    for split in ("train", "test"):
        np.testing.assert_array_equal(np.load(spec_tables.tables_path(serial, split)),
                                      np.load(spec_tables.tables_path(parallel, split)))
        pd.testing.assert_frame_equal(pd.read_parquet(serial / f"{split}_index.parquet"),
                                      pd.read_parquet(parallel / f"{split}_index.parquet"))
    assert not list(parallel.glob(".*part*"))  # the task files are joined and removed


def test_cached_views_pickle_as_file_names_for_dataloader_workers(data, tmp_path):
    # Spawned (not forked) DataLoader workers get the dataset pickled: a memory map must not travel as data.
    for name in ("eeg_spec_tiny", "kaggle_spec"):
        array, _ = load_cached_view(name, data, tmp_path, "train", jobs=1)
        payload = pickle.dumps(array)
        assert len(payload) < 4096, (name, len(payload))
        copy = pickle.loads(payload)
        rows = np.array([0, 4, 8])
        np.testing.assert_array_equal(copy[rows], array[rows])
