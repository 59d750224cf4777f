"""Progress bars that show where people look.

`tqdm.auto` draws a widget in Jupyter and Kaggle notebooks and a live bar on a terminal. Anywhere
else (a log file, a pipe, `!python infer.py` in a notebook cell, a Kaggle batch run) stderr is not a
TTY: plain tqdm would either hide itself (`disable=None`) or fill the log with carriage returns, so
the bar writes whole lines instead, at most one every PLAIN_INTERVAL_S seconds (plus its first and
last). `Throttle` gives the same rhythm to progress that is logged rather than drawn.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

PLAIN_INTERVAL_S = 5.0  # off a TTY: a line every few seconds keeps a log readable and still alive
PLAIN_WIDTH = 100


def progress_bar(iterable: Iterable | None = None, *, desc: str, disable: bool = False, **options: Any) -> tqdm:
    """A tqdm bar over `iterable` (or `total=`), shown in notebooks, on terminals and in logs alike."""
    if disable or _draws_live():
        return tqdm(iterable, desc=desc, disable=disable, dynamic_ncols=True, **options)
    options["leave"] = True  # a log keeps each bar's last line: what the run did, with its rate
    return tqdm(iterable, desc=desc, file=_LineStream(), mininterval=PLAIN_INTERVAL_S, ascii=True,
                ncols=PLAIN_WIDTH, **options)


def _draws_live() -> bool:
    return _in_notebook() or bool(getattr(sys.stderr, "isatty", lambda: False)())


def _in_notebook() -> bool:
    """tqdm.auto chose its notebook widget (an IPython kernel with ipywidgets)."""
    return any(cls.__module__ == "tqdm.notebook" for cls in tqdm.__mro__)


class _LineStream:
    """A file for tqdm that turns each redraw ('\\r' + status) into one line of the current sys.stderr
    (looked up at each write: pytest and notebooks swap it)."""

    encoding = "utf-8"

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:  # tqdm also writes '' and the clearing blanks: no empty lines
            sys.stderr.write(line + "\n")

    def flush(self) -> None:
        sys.stderr.flush()


class Throttle:
    """`ready()` is True at most once every `interval` seconds (the first call included)."""

    def __init__(self, interval: float = PLAIN_INTERVAL_S, clock=time.monotonic):
        self.interval, self.clock = interval, clock
        self.last: float | None = None

    def ready(self) -> bool:
        now = self.clock()
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        return True
