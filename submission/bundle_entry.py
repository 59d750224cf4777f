"""Kaggle inference entry point: copied into the bundle as infer.py (and, as cells, infer.ipynb).

Installs the bundled hms-stack wheel with pip --no-index --no-deps (the internet is off on Kaggle;
torch, lightgbm, pandas, ... are preinstalled there), then writes the submission from the test
files, the bundled fold checkpoints and the saved stacker. Only the standard library is imported
before the wheel is installed. Off Kaggle, make the third-party packages importable first (e.g.
PYTHONPATH=<a venv's site-packages>).

    python infer.py [--data /kaggle/input/hms-harmful-brain-activity-classification]
                    [--bundle <this folder>] [--out submission.csv] [--device auto] [--amp auto]
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path

KAGGLE_DATA = Path("/kaggle/input/hms-harmful-brain-activity-classification")
KAGGLE_INPUT = Path("/kaggle/input")
BUNDLE_MARK = Path("work") / "stack" / "stacker.json"  # a folder holding this is a bundle
# hms-stack's top-level names: generic, so checked
PACKAGES = ("core", "features", "models", "oof", "stacking", "submission")


def default_bundle() -> Path | None:
    """This script's folder, or (in a notebook, which has no __file__) the first bundle under /kaggle/input."""
    here = globals().get("__file__")
    if here and (Path(here).resolve().parent / BUNDLE_MARK).is_file():
        return Path(here).resolve().parent
    # A dataset made from bundle.zip holds work/ at its top; one made from the folder, one level down.
    marks = sorted(KAGGLE_INPUT.glob(f"*/{BUNDLE_MARK}")) + sorted(KAGGLE_INPUT.glob(f"*/*/{BUNDLE_MARK}"))
    return marks[0].parents[2] if marks else None


def install_wheel(bundle: Path) -> None:
    wheels = sorted((bundle / "wheels").glob("hms_stack-*.whl"))
    if not wheels:
        raise SystemExit(f"error: {bundle / 'wheels'} holds no hms_stack wheel; rebuild the bundle with `make bundle`")
    # pip without PYTHONPATH: a checkout's install there would look like this package already installed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
                    "--force-reinstall", "--disable-pip-version-check", str(wheels[-1])], check=True, env=env)
    importlib.invalidate_caches()  # the package appeared after this interpreter started


def check_own_packages(import_module=importlib.import_module) -> None:
    """Stop in one line when another importable package (a folder on sys.path, some other install)
    owns one of hms-stack's top-level names: it would fail later, deep inside an import."""
    for name in PACKAGES:
        try:
            module = import_module(name)
        except ImportError as err:
            raise SystemExit(f"error: hms-stack's package {name!r} does not import ({err}); "
                             f"reinstall the bundle's wheel") from None
        if not getattr(module, "HMS_STACK", False):
            where = getattr(module, "__file__", None) or list(getattr(module, "__path__", []))
            raise SystemExit(f"error: the {name!r} imported from {where} is not hms-stack's; run from another "
                             f"folder or remove it from sys.path / PYTHONPATH")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="write submission.csv from the hms-stack bundle, offline")
    parser.add_argument("--data", type=Path, default=KAGGLE_DATA, help="Kaggle data folder (test files)")
    parser.add_argument("--bundle", type=Path, default=None, help="bundle folder (default: this script's folder)")
    parser.add_argument("--out", type=Path, default=Path("submission.csv"), help="submission path")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "off"),
                        help="autocast: auto = bf16 on GPUs with native bf16, fp16 on T4/P100, off on CPU")
    parser.add_argument("--no-install", action="store_true", help="use the hms-stack already installed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bundle = args.bundle or default_bundle()
    if bundle is None or not (bundle / BUNDLE_MARK).is_file():
        print(f"error: no bundle at {bundle}: pass --bundle <folder holding work/stack/stacker.json>",
              file=sys.stderr)
        return 2
    if not args.no_install:
        install_wheel(bundle)
    check_own_packages()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from core.errors import UserFacingError
    from submission.submit import build_submission

    logging.getLogger(__name__).info("hms-stack from %s", Path(importlib.import_module("stacking").__file__).parent)
    try:
        submission = build_submission(args.data, bundle / "work", args.out, args.device, amp=args.amp)
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(submission)} test recordings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
