"""`make clean` / `hms-stack clean --work W` deletes only a folder hms-stack created (its marker)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from core.cli import main as cli
from core.work import MARKER, create_work, made_by_hms_stack

ROOT = Path(__file__).resolve().parent.parent


def test_a_folder_without_the_marker_is_refused(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("eeg_id\n1\n")
    assert cli(["clean", "--work", str(data)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{data} has no {MARKER} marker" in err and "not deleted" in err
    assert (data / "train.csv").exists()
    link = tmp_path / "link"
    link.symlink_to(data)
    (data / MARKER).write_text("")
    assert cli(["clean", "--work", str(link)]) == 2  # a link: neither it nor what it points to
    assert "is not a folder" in capsys.readouterr().err and (data / "train.csv").exists()


def test_a_work_made_by_a_command_is_marked_and_cleaned(tiny_data, tmp_path, capsys):
    work = tmp_path / "runs" / "work"
    assert cli(["folds", "--data", str(tiny_data), "--work", str(work)]) == 0
    assert made_by_hms_stack(work) and made_by_hms_stack(work.parent)  # both were created for it
    assert not made_by_hms_stack(tiny_data)
    assert cli(["clean", "--work", str(work.parent)]) == 0
    assert not work.parent.exists() and tmp_path.exists()
    assert cli(["clean", "--work", str(work)]) == 0 and "nothing to delete" in capsys.readouterr().out


def test_an_existing_folder_is_not_marked(tiny_data, tmp_path):
    work = tmp_path / "mine"
    work.mkdir()
    assert create_work(work) == []
    assert cli(["folds", "--data", str(tiny_data), "--work", str(work)]) == 0
    assert not made_by_hms_stack(work)


def test_a_command_that_fails_leaves_no_folder_behind(tmp_path, capsys):
    typo = tmp_path / "typo" / "work"
    assert cli(["stack", "--data", str(tmp_path), "--work", str(typo)]) == 2
    assert "holds no OOF sets" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_make_clean_goes_through_the_check():
    dry = subprocess.run(["make", "-s", "-n", "clean", "WORK=/some/data"], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0
    assert "core.cli clean --work /some/data" in dry.stdout and "rm -rf /some/data" not in dry.stdout
