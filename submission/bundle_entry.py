"""Kaggle inference entry point: copied into the bundle as infer.py (and, as cells, infer.ipynb).

Installs the bundled hms-stack wheel with pip --no-index --no-deps (the internet is off on Kaggle;
torch, lightgbm, pandas, ... are preinstalled there), then writes the submission from the test
files, the bundled fold checkpoints and the saved stacker. Only the standard library is imported
before the wheel is installed. Off Kaggle, make the third-party packages importable first (e.g.
PYTHONPATH=<a venv's site-packages>).

    python infer.py [--data /kaggle/input/hms-harmful-brain-activity-classification]
                    [--bundle <this folder>] [--out submission.csv] [--device auto]
                    [--self-check] [--ignore-versions] [--amp auto]

Before anything is installed, the library versions the bundle was built with (manifest.json) are
printed beside this image's: a different major version stops the run in one line, a different
minor one warns. --self-check then verifies the files' checksums and re-predicts the few train
rows stored in work/selfcheck/ before the submission is written.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ENTRY_SCRIPT = Path(__file__).resolve() if "__file__" in globals() else None  # tests run it as infer.py
KAGGLE_DATA = Path("/kaggle/input/hms-harmful-brain-activity-classification")
KAGGLE_INPUT = Path("/kaggle/input")
BUNDLE_MARK = Path("work") / "stack" / "stacker.json"  # a folder holding this is a bundle
# hms-stack's top-level names: generic, so checked
PACKAGES = ("core", "features", "models", "oof", "stacking", "submission")
# The distributions whose behaviour the checkpoints and the saved stacker depend on (and Python).
VERSIONED = ("torch", "timm", "lightgbm", "numpy", "pandas", "scipy", "optuna")
# A Kaggle Model is mounted as /kaggle/input/<model>/<framework>/<variation>/<version>/: deeper than
# a dataset. Search that deep (and one more level for a bundle folder inside it), not the whole tree.
SEARCH_DEPTH = 6


def default_bundle(root: Path = KAGGLE_INPUT) -> Path | None:
    """This script's folder, or (in a notebook, which has no __file__) the first bundle under /kaggle/input."""
    here = globals().get("__file__")
    if here and (Path(here).resolve().parent / BUNDLE_MARK).is_file():
        return Path(here).resolve().parent
    return find_bundle(root)


def find_bundle(root: Path, depth: int = SEARCH_DEPTH) -> Path | None:
    """The shallowest folder under `root` (at most `depth` levels down) holding work/stack/stacker.json;
    breadth first and sorted, so the answer does not depend on the listing order."""
    level = [root]
    for _ in range(depth + 1):
        for folder in level:
            if (folder / BUNDLE_MARK).is_file():
                return folder
        level = sorted(child for folder in level for child in _subfolders(folder))
    return None


def _subfolders(folder: Path) -> list[Path]:
    try:  # the competition data holds folders of thousands of files: scandir lists them without a stat each
        with os.scandir(folder) as entries:
            return [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:  # unreadable or vanished: not a bundle
        return []


def running_versions() -> dict[str, str | None]:
    """Python's and each VERSIONED distribution's version here (None: not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _major_minor(version: str) -> tuple[int, ...]:
    """(major, minor) of '2.1.2+cu121', '1.26.4', '3.10.13'."""
    return tuple(int(p) for p in re.findall(r"\d+", version)[:2])


def compare_versions(built: dict, running: dict) -> tuple[list[str], list[str], list[str]]:
    """(table lines, errors, warnings). Python's minor version only warns: the code supports 3.10+."""
    lines, errors, warnings = [f"  {'':<10} {'bundle built with':<20} {'running here':<20}"], [], []
    for name, was in built.items():
        now = running.get(name)
        lines.append(f"  {name:<10} {was or '-':<20} {now or '-':<20}")
        if was is None:  # not installed where the bundle was built: nothing to compare
            continue
        if now is None:
            errors.append(f"{name} is not installed here (bundle built with {was})")
        elif _major_minor(was)[:1] != _major_minor(now)[:1] and name != "python":
            errors.append(f"{name} {now} here, bundle built with {was}")
        elif _major_minor(was) != _major_minor(now):
            warnings.append(f"{name} {now} here, bundle built with {was}")
    return lines, errors, warnings


def check_versions(bundle: Path, ignore: bool = False, running: dict | None = None) -> None:
    """Print the versions side by side; stop in one line on a different major version (unless `ignore`)."""
    manifest_path = bundle / "manifest.json"
    built = json.loads(manifest_path.read_text()).get("versions") if manifest_path.is_file() else None
    if not built:
        print(f"note: {manifest_path} records no library versions (an older bundle): not checked", file=sys.stderr)
        return
    lines, errors, warnings = compare_versions(built, running or running_versions())
    print("library versions:\n" + "\n".join(lines), file=sys.stderr)
    for warning in warnings:
        print(f"warning: minor version differs: {warning}", file=sys.stderr)
    if errors and not ignore:
        raise SystemExit(f"error: incompatible image: {'; '.join(errors)}; pick a Kaggle image with these "
                         f"major versions or rebuild the bundle there (--ignore-versions runs anyway)")


def verify_checksums(bundle: Path) -> None:
    """Every file the manifest has a SHA-256 for must still have it: a changed checkpoint stops here."""
    recorded = json.loads((bundle / "manifest.json").read_text()).get("sha256", {})
    if not recorded:
        raise SystemExit(f"error: {bundle / 'manifest.json'} records no checksums; rebuild the bundle with "
                         f"`make bundle` to use --self-check")
    for relative, digest in sorted(recorded.items()):
        path = bundle / relative
        if Path(relative).is_absolute() or ".." in Path(relative).parts:  # the manifest may come from anyone
            raise SystemExit(f"error: self-check: {bundle / 'manifest.json'} names {relative!r}, outside the "
                             f"bundle; rebuild the bundle with `make bundle`")
        if not path.is_file():
            raise SystemExit(f"error: self-check: {path} is missing; re-upload the bundle")
        if file_sha256(path) != digest:
            raise SystemExit(f"error: self-check: {path} has changed since the bundle was built (SHA-256 "
                             f"differs); re-upload the bundle or rebuild it with `make bundle`")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install_wheel(bundle: Path) -> None:
    wheels = sorted((bundle / "wheels").glob("hms_stack-*.whl"))
    if not wheels:
        raise SystemExit(f"error: {bundle / 'wheels'} holds no hms_stack wheel; rebuild the bundle with `make bundle`")
    # pip without PYTHONPATH: a checkout's install there would look like this package already installed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
                    "--force-reinstall", "--disable-pip-version-check", str(wheels[-1])], check=True, env=env)
    importlib.invalidate_caches()  # the package appeared after this interpreter started


def check_own_packages(find_spec=importlib.util.find_spec) -> None:
    """Stop in one line when another package (a folder on sys.path, some other install) owns one of
    hms-stack's top-level names: it would fail later, deep inside an import. Checked without importing
    it (where its __init__.py is, then whether that file carries the marker line), so none of a foreign
    package's code runs."""
    for name in PACKAGES:
        try:
            spec = find_spec(name)
        except (ImportError, ValueError) as err:
            raise SystemExit(f"error: hms-stack's package {name!r} cannot be found ({err}); "
                             f"reinstall the bundle's wheel") from None
        if spec is None:
            raise SystemExit(f"error: hms-stack's package {name!r} is not installed; reinstall the bundle's wheel")
        origin = spec.origin if spec.has_location else None
        if not origin or not _has_marker(Path(origin)):
            where = origin or list(spec.submodule_search_locations or [])
            raise SystemExit(f"error: the {name!r} found at {where} is not hms-stack's; run from another "
                             f"folder or remove it from sys.path / PYTHONPATH")


def _has_marker(init: Path) -> bool:
    """Whether `init` (a package's __init__.py) is one of ours: it has the line `HMS_STACK = True`."""
    try:
        return any(line.startswith("HMS_STACK = True") for line in init.read_text(errors="replace").splitlines())
    except OSError:
        return False


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="write submission.csv from the hms-stack bundle, offline")
    parser.add_argument("--data", type=Path, default=KAGGLE_DATA, help="Kaggle data folder (test files)")
    parser.add_argument("--bundle", type=Path, default=None, help="bundle folder (default: this script's folder)")
    parser.add_argument("--out", type=Path, default=Path("submission.csv"), help="submission path")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "off"),
                        help="autocast: auto = bf16 on GPUs with native bf16, fp16 on T4/P100, off on CPU")
    parser.add_argument("--no-install", action="store_true", help="use the hms-stack already installed")
    parser.add_argument("--self-check", action="store_true",
                        help="verify checksums and re-predict the bundled train rows before writing the submission")
    parser.add_argument("--ignore-versions", action="store_true",
                        help="run even when a library's major version differs from the bundle's")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bundle = args.bundle or default_bundle()
    if bundle is None or not (bundle / BUNDLE_MARK).is_file():
        print(f"error: no bundle at {bundle}: pass --bundle <folder holding work/stack/stacker.json>",
              file=sys.stderr)
        return 2
    check_versions(bundle, args.ignore_versions)
    if args.self_check:
        verify_checksums(bundle)
    if not args.no_install:
        install_wheel(bundle)
    check_own_packages()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from core.errors import UserFacingError
    from submission.submit import build_submission

    logging.getLogger(__name__).info("hms-stack from %s", Path(importlib.import_module("stacking").__file__).parent)
    try:
        if args.self_check:
            from submission.selfcheck import run_selfcheck

            print(run_selfcheck(bundle / "work"), file=sys.stderr)
        submission = build_submission(args.data, bundle / "work", args.out, args.device, amp=args.amp)
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(submission)} test recordings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
