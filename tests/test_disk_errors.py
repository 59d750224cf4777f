"""A disk that refuses a file (full, read-only, no permission) ends a command in one line naming the
folder and the fix, never a traceback; other OSErrors keep theirs (they are bugs)."""

from __future__ import annotations

import errno
import io
import logging
import os
from pathlib import Path

import pandas as pd
import pytest

from core import artifacts
from core import cli as cli_module
from core.artifacts import write_json, write_parquet
from core.cli import main as cli
from core.cli import run_main
from core.errors import UserFacingError, disk_failure
from core.schema import VOTE_COLUMNS
from oof import train_loop
from synthetic.oof_sets import write_synthetic_work
from tests.test_train_loop import config, fit


def one_line(capsys) -> str:
    """The error line: the last of stderr (progress bars may come before it) and the only one saying error."""
    lines = capsys.readouterr().err.splitlines()
    assert lines and lines[-1].startswith("error: "), lines
    assert sum("error" in line.lower() or "Traceback" in line for line in lines) == 1, lines
    return lines[-1] + "\n"


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*.tmp")]


class FullDisk(io.FileIO):
    """A file on a disk that fills after `room` bytes: later writes raise ENOSPC, as write(2) does."""

    room = 2000

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def test_a_checkpoint_save_on_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    # the real torch.save into a file that fills up: its zip writer's own error handling included
    monkeypatch.setattr(train_loop, "open", lambda path, mode: FullDisk(path, mode), raising=False)
    assert run_main(lambda: fit(tmp_path / "fold0", config(epochs=1, stage2_epochs=0))) == 2
    err = one_line(capsys)
    assert f"{tmp_path / 'fold0'}/" in err and "No space left on device" in err and "free space in" in err
    assert no_temporary_files(tmp_path)


def test_a_parquet_write_on_a_full_disk_names_the_file_meant(tmp_path, monkeypatch, capsys):
    def full(table, where):
        Path(where).write_bytes(b"PAR1")  # a partial file, as a full disk leaves it
        raise OSError(errno.ENOSPC, "No space left on device")  # a write's error names no file

    monkeypatch.setattr(artifacts.pq, "write_table", full)
    target = tmp_path / "oof" / "x.parquet"
    assert run_main(lambda: write_parquet(target, pd.DataFrame({"a": [1]}))) == 2
    assert f"{target}: No space left on device; free space in {target.parent}" in one_line(capsys)
    assert not target.exists() and no_temporary_files(tmp_path)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EDQUOT])
def test_disk_failures_name_the_folder(code):
    message = disk_failure(OSError(code, os.strerror(code), "/w/stack/report.json"))
    assert message.startswith(f"/w/stack/report.json: {os.strerror(code)}; ") and "/w/stack " in message
    assert disk_failure(OSError(errno.EINVAL, "Invalid argument", "/w/x")) is None


def test_another_os_error_keeps_its_traceback():
    def bug():
        raise OSError(errno.EINVAL, "Invalid argument", "/w/x")

    with pytest.raises(OSError):
        run_main(bug)


def test_an_unrelated_os_error_in_an_atomic_write_keeps_its_file(tmp_path):
    with pytest.raises(PermissionError) as err, artifacts.atomic_path(tmp_path / "a.json"):
        raise PermissionError(errno.EACCES, "Permission denied", "/elsewhere/input.csv")
    assert err.value.filename == "/elsewhere/input.csv"


@pytest.fixture
def stack_work(tmp_path) -> tuple[Path, Path]:
    work, data = tmp_path / "work", tmp_path / "data"
    write_synthetic_work(work, n_rows=200, n_test=10, seed=0, n_folds=3)
    data.mkdir()  # what `stack` reads of the data folder: the submission's ids
    ids = pd.read_parquet(work / "test" / "model_00.parquet")["eeg_id"]
    pd.DataFrame({"eeg_id": ids, **{c: 1 / 6 for c in VOTE_COLUMNS}}).to_csv(data / "sample_submission.csv",
                                                                            index=False)
    return work, data


def _commands(work: Path, data: Path, tiny_data: Path) -> dict[str, list[str]]:
    return {"folds": ["folds", "--data", str(tiny_data), "--work", str(work / "new")],
            "prepare": ["prepare", "--view", "wave_tiny", "--data", str(tiny_data), "--work", str(work)],
            "oof": ["oof", "--model", "wave1d_cpu", "--data", str(tiny_data), "--work", str(work / "new")],
            "stack": ["stack", "--data", str(data), "--work", str(work), "trials=2"]}


@pytest.mark.slow
@pytest.mark.parametrize("command", ["folds", "prepare", "oof", "stack"])
def test_a_read_only_work_is_one_line(stack_work, tiny_data, monkeypatch, capsys, command):
    """As root chmod does not bite: the folder refuses through mkdir, as a read-only mount does."""
    work, data = stack_work
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if Path(self).is_relative_to(work):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert cli(_commands(work, data, tiny_data)[command]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "Read-only file system; make " in err and str(work) in err


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod")
@pytest.mark.parametrize("command", ["folds", "prepare", "oof", "stack"])
def test_a_chmod_read_only_work_is_one_line(stack_work, tiny_data, capsys, command):
    work, data = stack_work
    modes = {p: p.stat().st_mode for p in (work, *work.rglob("*")) if p.is_dir()}
    for folder in modes:
        folder.chmod(0o555)
    try:
        assert cli(_commands(work, data, tiny_data)[command]) == 2
    finally:
        for folder, mode in modes.items():
            folder.chmod(mode)
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and "Permission denied; make " in err and str(work) in err


def test_write_json_refused_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(artifacts.os, "replace", lambda a, b: (_ for _ in ()).throw(
        OSError(errno.EROFS, "Read-only file system", str(a), None, str(b))))
    assert run_main(lambda: write_json(tmp_path / "x.json", {"a": 1})) == 2
    assert f"{tmp_path / 'x.json'}: Read-only file system" in one_line(capsys)
    assert list(tmp_path.iterdir()) == []


class FullLogFile(io.StringIO):
    """A log file on a disk that fills after `room` flushes: its lines stay buffered, and flushing or
    closing them fails."""

    room = 0

    def flush(self):
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= 1

    def close(self):
        self.flush()


@pytest.mark.parametrize("room", [0, 2])  # full from the start; full at the error line (no warning after it)
def test_a_log_file_on_a_full_disk_stops_with_a_warning_not_tracebacks(tmp_path, monkeypatch, capsys, room):
    handler = cli_module._WorkLogHandler(tmp_path / "logs" / "x.log")
    monkeypatch.setattr(FullLogFile, "room", room)
    monkeypatch.setattr(handler, "_open", FullLogFile)
    logging.getLogger().addHandler(handler)

    def command():
        logging.getLogger("t").warning("one")  # the log file refuses it: stderr has it still
        logging.getLogger("t").warning("two")
        raise UserFacingError("bad input")

    try:
        assert run_main(command, handler) == 2
    finally:
        logging.getLogger().removeHandler(handler)
    handler.close()  # as main() does: the unflushed lines are lost, quietly
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1] == "error: bad input" and not [line for line in lines if "Traceback" in line or "---" in line]
    warnings = [line for line in lines if line.startswith("warning: ")]
    assert len(warnings) == (room == 0)
    for warning in warnings:
        assert f"{tmp_path / 'logs' / 'x.log'}: No space left on device" in warning and "error" not in warning
