"""The ``spamops`` command line.  Exit codes are in :class:`spamops.errors.ExitCode`.

One module per command group (``train``, ``models``, ``rollout``, ``config``); each
registers its subcommands on the parser built here.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from spamops import __version__
from spamops.cli import config, models, render, rollout, train
from spamops.cli.common import parent_parsers
from spamops.errors import ExitCode, SpamopsError

DEBUG_ENV = "SPAMOPS_DEBUG"
COMMAND_GROUPS = (train, models, rollout, render, config)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; README's command table is checked against it."""
    parser = argparse.ArgumentParser(prog="spamops", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"spamops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    parents = parent_parsers()
    for group in COMMAND_GROUPS:
        group.register(sub, parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except SpamopsError as exc:
        print(f"spamops: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print("spamops: interrupted", file=sys.stderr)
        return int(ExitCode.FAILURE)
    except Exception as exc:  # noqa: BLE001 - one line for users; SPAMOPS_DEBUG=1 shows the traceback
        if os.environ.get(DEBUG_ENV):
            raise
        print(
            f"spamops: unexpected error: {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for a traceback)",
            file=sys.stderr,
        )
        return int(ExitCode.FAILURE)


if __name__ == "__main__":
    sys.exit(main())
