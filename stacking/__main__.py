"""`python -m stacking [options]` stacks the OOF sets; `python -m stacking import NAME FILE` brings one in;
`submit`, `bundle` and `report` work from a WORK folder after stacking."""

from __future__ import annotations

import sys

from features.cli import dispatch

# command -> (module providing add_arguments(parser) and run(args), description)
COMMANDS = {
    "stack": ("stacking.run", "fit blend, ensemble selection and LightGBM stackers on the OOF sets; pick one "
                              "by honest CV on high-vote rows; write WORK/stack/ and WORK/submission.csv"),
    "import": ("stacking.importer", "turn an OOF (and test) file from elsewhere into an OOF set"),
    "submit": ("stacking.submit", "the submission from test files, fold checkpoints and the saved stacker"),
    "bundle": ("stacking.bundle", "the Kaggle bundle: checkpoints, recipes, saved stacker, code, infer script"),
    "report": ("stacking.report_page", "an HTML report of members, stackers and example recordings"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch("python -m stacking", COMMANDS, argv, default="stack")


if __name__ == "__main__":
    sys.exit(main())
