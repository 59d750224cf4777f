"""The one dispatcher behind `python -m features|oof|stacking COMMAND`: bad input ends in one line, exit 2."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from features.errors import UserFacingError


def dispatch(prog: str, commands: dict[str, tuple[str, str]], argv: list[str] | None = None,
             default: str | None = None) -> int:
    """Run the command named by argv[0] (or `default`): its module gives add_arguments(parser) and run(args).

    Only the chosen command's module is imported: the others may pull in heavy dependencies (torch).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in commands:
        name, rest = argv[0], argv[1:]
    elif default is not None:
        name, rest = default, argv
    else:
        print(f"usage: {prog} {{{','.join(commands)}}} ...", file=sys.stderr)
        for command, (_, help_text) in commands.items():
            print(f"  {command:<10} {help_text}", file=sys.stderr)
        return 2
    module_name, help_text = commands[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=prog if name == default else f"{prog} {name}", description=help_text)
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run_main(lambda: module.run(args))


def run_main(main: Callable[[], object]) -> int:
    """Run `main`; a UserFacingError ends it in one line on stderr and exit code 2 (also for the benches)."""
    try:
        main()
    except UserFacingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
