"""`python -m stacking report`: an HTML page whose every figure exists and is referenced."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.cli import main as cli

pytestmark = pytest.mark.slow
EXPECTED = {"kl.png", "confusion.png", "reliability.png", "weights.png", "kl_per_fold.png", "kl_per_class.png",
            "kl_voters.png", "learning_curves.png", "class_mix.png", "correlation_probs.png", "correlation_kl.png",
            "blend_bias.png", "optuna.png"}
SECTIONS = ("Learning curves", "KL per fold and per class", "KL by voter count", "Member correlation",
            "Blend bias and temperature", "Optuna history", "Test vs OOF class mix")


def test_report_writes_html_referencing_each_png(tiny_data, tiny_work, tmp_path):
    out = tmp_path / "report"
    assert cli(["report", "--work", str(tiny_work), "--data", str(tiny_data), "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    referenced = set(re.findall(r'src="([^"]+\.png)"', page))
    written = {p.name for p in out.glob("*.png")}
    assert EXPECTED <= written and referenced == written
    assert len([p for p in written if p.startswith("example_")]) == 6  # three examples: window + votes
    for name in written:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for title in SECTIONS:
        assert f"<h2>{title}" in page


def test_report_degrades_without_optuna_db_and_shards(tiny_data, tiny_work, tmp_path):
    """A WORK folder copied without its study and shards still reports, saying what is absent."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(tiny_work, work, ignore=shutil.ignore_patterns("optuna.db", "shards", "cache", "models", "bundle*"))
    out = tmp_path / "report"
    assert cli(["report", "--work", str(work), "--data", str(tiny_data), "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "optuna.db is absent" in page and "No member has per-fold training histories" in page
    assert not (out / "optuna.png").exists() and not (out / "learning_curves.png").exists()


def test_screenshot_script_skips_or_writes_a_png(tiny_data, tiny_work, tmp_path):
    """bench/report_screenshot.py: one line and exit 0 without chromium; with it, a PNG of the page."""
    import shutil
    import subprocess
    import sys

    out = tmp_path / "shot.png"
    result = subprocess.run([sys.executable, "-m", "bench.report_screenshot", "--work", str(tiny_work), "--data",
                             str(tiny_data), "--report", str(tmp_path / "report"), "--out", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    if shutil.which("chromium") is None:
        assert result.stdout.strip().startswith("skipped: chromium")
    else:
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
