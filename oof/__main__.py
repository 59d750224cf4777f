"""`python -m oof COMMAND`: folds, run (train a recipe over the folds), models (list recipes)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from features.errors import UserFacingError

COMMANDS = {
    "folds": ("oof.folds_cli", "make (or check) the shared folds file of a data folder"),
    "run": ("oof.cv", "train a named recipe over the folds; write OOF, test predictions, checkpoints"),
    "models": ("models.registry", "list the named recipes"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        names = ", ".join(COMMANDS)
        print(f"usage: python -m oof {{{names}}} ...", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    parser = argparse.ArgumentParser(prog=f"python -m oof {argv[0]}", description=COMMANDS[argv[0]][1])
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        module.run(args)
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
