"""`hms-stack clean --work W` (`make clean`): delete a WORK folder, only one that hms-stack created.

A data folder, a home folder or anything else given as WORK= by mistake lacks the marker that
core.work.create_work leaves in the folders it makes, and is refused in one line.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from core.errors import UserFacingError
from core.work import MARKER, made_by_hms_stack

CREATES_WORK = False  # the CLI makes WORK for the other commands; this one must not


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work", type=Path, required=True, help="the WORK folder to delete")


def run(args: argparse.Namespace) -> None:
    work = args.work
    if not work.exists() and not work.is_symlink():
        print(f"{work} does not exist: nothing to delete")
        return
    if work.is_symlink() or not work.is_dir():
        raise UserFacingError(f"{work} is not a folder (a link or a file): not deleted; remove it yourself if "
                              "you mean to")
    if not made_by_hms_stack(work):
        raise UserFacingError(f"{work} has no {MARKER} marker, so hms-stack did not create it (or a version "
                              "before markers did): not deleted; check WORK= (is it a data folder?) and delete it "
                              "yourself if you mean to")
    shutil.rmtree(work)
    print(f"deleted {work}")
