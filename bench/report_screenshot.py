"""Build the HTML report and photograph it in headless Chromium, to look at the page as a reader does.

    .venv/bin/python -m bench.report_screenshot --work WORK --data DATA [--out WORK/report/screenshot.png]

Writes one tall PNG of the page and, beside it, SHOT_1.png, SHOT_2.png, ... tiles of --tile pixels
(an image viewer shrinks the tall one until nothing is legible). Without Chromium (Debian: `apt-get
install chromium`) it prints one line and exits 0, so a test or make target can run it anywhere.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("artifacts"), help="work folder after `make stack`")
    parser.add_argument("--data", type=Path, default=Path("data"), help="Kaggle data folder (example recordings)")
    parser.add_argument("--report", type=Path, help="report folder (default WORK/report)")
    parser.add_argument("--out", type=Path, help="screenshot path (default REPORT/screenshot.png)")
    parser.add_argument("--no-build", action="store_true", help="photograph the existing index.html")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=16000, help="window height: the whole page should fit")
    parser.add_argument("--tile", type=int, default=3000, help="height of each tile (0: no tiles)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        print("skipped: chromium is not installed (Debian: apt-get install chromium)")
        return 0
    report = args.report or args.work / "report"
    if not args.no_build:
        from core.cli import main as cli

        if cli(["report", "--work", str(args.work), "--data", str(args.data), "--out", str(report)]):
            return 2
    out = args.out or report / "screenshot.png"
    shoot(browser, (report / "index.html").resolve(), out.resolve(), args.width, args.height)
    tiles = write_tiles(out, args.tile) if args.tile else []
    print(f"wrote {out}" + (f" and {len(tiles)} tiles {tiles[0].name} ..." if tiles else ""))
    return 0


def shoot(browser: str, page: Path, out: Path, width: int, height: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:  # no state from (or for) another run
        command = [browser, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
                   f"--window-size={width},{height}", page.as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode or not out.is_file():
        raise SystemExit(f"error: {browser} wrote no screenshot (exit {result.returncode}): "
                         f"{(result.stderr.strip().splitlines() or ['no message'])[-1]}")


def write_tiles(shot: Path, tile: int) -> list[Path]:
    """Crops of `tile` pixels, top to bottom, stopping where the page has ended (blank rows)."""
    import numpy as np
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    rows = np.asarray(image).min(axis=(1, 2)) < 250  # a row with anything darker than the white page
    bottom = int(np.flatnonzero(rows)[-1]) + 20 if rows.any() else image.height
    paths = []
    for i, top in enumerate(range(0, bottom, tile), start=1):
        path = shot.with_name(f"{shot.stem}_{i}.png")
        image.crop((0, top, image.width, min(top + tile, bottom))).save(path)
        paths.append(path)
    return paths


if __name__ == "__main__":
    sys.exit(main())
