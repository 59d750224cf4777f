"""`python -m stacking report`: an HTML page whose every figure exists and is referenced."""

from __future__ import annotations

import re

import pytest

from core.cli import main as cli

pytestmark = pytest.mark.slow
EXPECTED = {"kl.png", "confusion.png", "reliability.png", "weights.png"}


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
