"""`python -m features plot` writes a PNG of one labelled window."""

from __future__ import annotations

import pytest

from core.cli import main as cli
from core.errors import UserFacingError
from features.kaggle_data import KaggleFolder
from features.plot import find_row
from tests.kaggle_layout import make_folder


def test_plot_writes_a_png(tmp_path, capsys):
    data = make_folder(tmp_path / "data", n_eegs=1)
    out = tmp_path / "train.png"
    assert cli(["plot", "--eeg-id", "100", "--data", str(data), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.strip() == f"wrote {out}"


def test_rows_are_found_in_train_then_test_and_unknown_ids_are_user_errors(tmp_path):
    folder = KaggleFolder(make_folder(tmp_path / "data", n_eegs=1))
    assert find_row(folder, 100, 1001)[1]["label_id"] == 1001
    split, row = find_row(folder, 900, None)
    assert split == "test" and row["eeg_label_offset_seconds"] == 0 and row["spectrogram_id"] == 950
    with pytest.raises(UserFacingError, match="no train or test row"):
        find_row(folder, 12345, None)


def test_plot_writes_under_work_plots_by_default(tmp_path, capsys):
    data = make_folder(tmp_path / "data", n_eegs=1)
    assert cli(["plot", "--eeg-id", "100", "--data", str(data), "--work", str(tmp_path / "work")]) == 0
    written = tmp_path / "work" / "plots" / "eeg_100_1000.png"
    assert capsys.readouterr().out.strip() == f"wrote {written}" and written.is_file()
