"""`python -m features COMMAND`: synth, summary, prepare, plot."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from features.errors import UserFacingError

# command -> module providing add_arguments(parser) and run(args)
COMMANDS = {
    "synth": ("features.synth", "write a synthetic competition folder"),
    "summary": ("features.summary", "print rows, recordings, patients, classes, voters of a data folder"),
    "prepare": ("features.cache", "compute and cache a view for every label row and test eeg"),
    "plot": ("features.plot", "write a PNG of one labelled window"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m features")
    parser.add_argument("command", choices=sorted(COMMANDS))
    if not argv or argv[0] not in COMMANDS:
        parser.print_help()
        parser.parse_args(argv[:1])
        return 2
    # Import only the chosen command's module: the others may pull in heavy deps (torch).
    module = importlib.import_module(COMMANDS[argv[0]][0])
    sub = argparse.ArgumentParser(prog=f"python -m features {argv[0]}", description=COMMANDS[argv[0]][1])
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        module.run(args)
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
