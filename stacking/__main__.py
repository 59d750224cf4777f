"""`python -m stacking [options]` stacks the OOF sets; `python -m stacking import NAME FILE` brings one in."""

from __future__ import annotations

import sys

from features.cli import dispatch

# command -> (module providing add_arguments(parser) and run(args), description)
COMMANDS = {
    "stack": ("stacking.run", "fit blend, ensemble selection and LightGBM stackers on the OOF sets; pick one "
                              "by honest CV on high-vote rows; write WORK/stack/ and WORK/submission.csv"),
    "import": ("stacking.importer", "turn an OOF (and test) file from elsewhere into an OOF set"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch("python -m stacking", COMMANDS, argv, default="stack")


if __name__ == "__main__":
    sys.exit(main())
