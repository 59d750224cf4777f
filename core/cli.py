"""The command line: `hms-stack COMMAND` (and `python -m features|oof|stacking|submission|synthetic
COMMAND` for one stage's commands). argparse subcommands with a working --help at every level;
bad input ends in one line and exit code 2.

The command table names each command's module by string: only the chosen command's module is
imported (the others may pull in torch), and this ground-floor module imports none of them.
A command module gives `add_arguments(parser)` and `run(args)`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from core.errors import UserFacingError, disk_failure
from core.work import Work, create_work, remove_if_unused


class Command(NamedTuple):
    name: str       # as `hms-stack NAME`
    module: str
    help: str
    stage: str      # the package whose `python -m` lists it
    stage_name: str  # its name there


COMMANDS = (
    Command("synth", "synthetic.eeg", "write a synthetic competition folder (Kaggle layout + truth/)",
            "synthetic", "eeg"),
    Command("summary", "features.summary", "rows, recordings, patients, classes, voters, prior KL of a data folder",
            "features", "summary"),
    Command("prepare", "features.cache", "compute and cache views for every label row and test eeg",
            "features", "prepare"),
    Command("plot", "features.plot", "write a PNG of one labelled window", "features", "plot"),
    Command("folds", "oof.folds_cli", "make (or check) the shared folds file of a data folder", "oof", "folds"),
    Command("models", "oof.recipes", "list the named recipes and backbones", "oof", "models"),
    Command("leaderboard", "oof.leaderboard", "one table of every OOF set in WORK (KL all / high-vote / per fold, "
                                              "recipe, wall time, code version); writes WORK/leaderboard.csv",
            "oof", "leaderboard"),
    Command("oof", "oof.cv", "train a named recipe over the folds; write OOF, test predictions, checkpoints",
            "oof", "run"),
    Command("stack", "stacking.run", "fit the stackers on the OOF sets, choose one by honest CV on high-vote "
                                     "rows; write WORK/stack/ and WORK/submission.csv", "stacking", "stack"),
    Command("import", "stacking.importer", "turn an OOF (and test) file from elsewhere into an OOF set",
            "stacking", "import"),
    Command("submit", "submission.submit", "the submission from test files, fold checkpoints and the saved stacker",
            "submission", "submit"),
    Command("bundle", "submission.bundle", "the offline Kaggle bundle: checkpoints, recipes, stacker, code, infer.py",
            "submission", "bundle"),
    Command("report", "submission.report_page", "an HTML report of members, stackers and example recordings",
            "submission", "report"),
    Command("clean", "core.clean", "delete a WORK folder, only one that hms-stack created (its .hms-stack marker)",
            "core", "clean"),
)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line, with the grammar's hint (settings are key=value, not --flags)."""

    def error(self, message: str):
        hint = ""
        if "unrecognized arguments" in message and "--" in message:
            hint = "; settings are key=value (e.g. trials=20 epochs=3), see"
        self.exit(2, f"{self.prog}: error: {message}{hint or '; see'} `{self.prog} --help`\n")


def main(argv: list[str] | None = None, stage: str | None = None, default: str | None = None) -> int:
    """`hms-stack ...` (stage None) or `python -m STAGE ...` (only that stage's commands)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    table = {(c.stage_name if stage else c.name): c for c in COMMANDS if stage in (None, c.stage)}
    prog = f"python -m {stage}" if stage else "hms-stack"
    if default and (not argv or argv[0] not in table) and argv[:1] not in (["-h"], ["--help"]):
        argv = [default, *argv]
    parser = OneLineParser(prog=prog, description=__doc__.splitlines()[0] if not stage else f"{stage} commands")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = table.get(argv[0]) if argv else None
    module = importlib.import_module(chosen.module) if chosen else None
    for name, command in table.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        if command is chosen:
            module.add_arguments(sub)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2, already printed in one line)
        return int(stop.code or 0)
    stderr = logging.StreamHandler()
    stderr.setFormatter(_UtcFormatter(LOG_FORMAT, LOG_DATES))
    logging.basicConfig(level=logging.INFO, handlers=[stderr])
    work = getattr(args, "work", None) if getattr(module, "CREATES_WORK", True) else None
    log_file = _work_log(chosen.name, work)
    try:
        return run_main(lambda: _run_in_work(lambda: module.run(args), work), log_file)
    finally:
        if log_file is not None:  # main() also runs in-process (tests): leave no handler behind
            logging.getLogger().removeHandler(log_file)
            log_file.close()


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_DATES = "%Y-%m-%dT%H:%M:%SZ"


class _UtcFormatter(logging.Formatter):
    converter = time.gmtime  # the Z of LOG_DATES; the log file names are UTC too


class _WorkLogHandler(logging.FileHandler):
    """WORK/logs/<command>-<UTC time>-<pid>.log, opened at the first record: a command that stops before
    logging anything (a mistyped --work) leaves no folder behind.

    The file is a copy of stderr: a disk that refuses it (full, read-only once open) ends the copy with
    one warning, not a traceback per record; the command's own writes then say what failed."""

    def __init__(self, path: Path):
        super().__init__(path, delay=True, encoding="utf-8")
        self.setLevel(logging.INFO)
        self.setFormatter(_UtcFormatter(LOG_FORMAT, LOG_DATES))
        self._refused = False
        self._last_record = False

    def _open(self):
        Path(self.baseFilename).parent.mkdir(parents=True, exist_ok=True)
        return super()._open()

    def emit(self, record: logging.LogRecord) -> None:
        if not self._refused:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        err = sys.exc_info()[1]
        if not isinstance(err, OSError) or disk_failure(err) is None:
            super().handleError(record)
            return
        self._refused = True
        if not self._last_record:  # after the error line the error line stays last
            print(f"warning: {self.baseFilename}: {err.strerror}; this log file stops here (the rest is on "
                  "stderr only)", file=sys.stderr)
        self._drop_stream()

    def close(self) -> None:
        if self._refused:
            self._drop_stream()
        try:
            super().close()
        except OSError as err:  # its last lines did not reach a full disk: they are on stderr
            if disk_failure(err) is None:
                raise

    def _drop_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()

    def record_error(self, message: str) -> None:
        """The one-line error of a run that logged before, so that its log ends with why it stopped."""
        if self.stream is not None:
            self._last_record = True
            self.handle(logging.makeLogRecord({"name": "core.cli", "levelno": logging.ERROR,
                                               "levelname": "ERROR", "msg": message}))


def _work_log(command: str, work: Path | None) -> _WorkLogHandler | None:
    """A command with a WORK folder also logs to a file there."""
    if work is None:
        return None
    handler = _WorkLogHandler(Work(work).log_file(command, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), os.getpid()))
    logging.getLogger().addHandler(handler)
    return handler


def _run_in_work(run: Callable[[], object], work) -> None:
    """Run a command given `--work`: a WORK it creates gets the marker `hms-stack clean` looks for, and
    is removed again when the command left nothing in it (a typo's folder does not stay behind)."""
    created = create_work(work) if work is not None else []
    try:
        run()
    finally:
        remove_if_unused(created)


def run_main(main_fn: Callable[[], object], log_file: _WorkLogHandler | None = None) -> int:
    """Run `main_fn`; a UserFacingError, or a disk that refused a file (full, read-only), ends it in one
    line on stderr and exit code 2 (also for the benches). Other errors keep their traceback."""
    try:
        main_fn()
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        if log_file is not None:
            log_file.record_error(f"error: {err}")
        return 2
    except OSError as err:
        message = disk_failure(err)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        if log_file is not None:
            log_file.record_error(f"error: {message}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
