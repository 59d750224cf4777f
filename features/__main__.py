"""`python -m features COMMAND`: synth, summary, prepare, plot."""

from __future__ import annotations

import sys

from features.cli import dispatch

COMMANDS = {
    "synth": ("features.synth", "write a synthetic competition folder"),
    "summary": ("features.summary", "print rows, recordings, patients, classes, voters of a data folder"),
    "prepare": ("features.cache", "compute and cache a view for every label row and test eeg"),
    "plot": ("features.plot", "write a PNG of one labelled window"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch("python -m features", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
