"""`python -m oof COMMAND`: folds, run (train a recipe over the folds), models (list recipes)."""

from __future__ import annotations

import sys

from features.cli import dispatch

COMMANDS = {
    "folds": ("oof.folds_cli", "make (or check) the shared folds file of a data folder"),
    "run": ("oof.cv", "train a named recipe over the folds; write OOF, test predictions, checkpoints"),
    "models": ("models.registry", "list the named recipes"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch("python -m oof", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
