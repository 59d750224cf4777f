"""`python -m oof COMMAND`: this stage's commands (`hms-stack --help` lists every stage's)."""

from __future__ import annotations

import sys

from core.cli import main

if __name__ == "__main__":
    sys.exit(main(stage="oof"))
