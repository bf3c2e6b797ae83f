"""The ``spamops`` command line.  Exit codes are in :class:`spamops.errors.ExitCode`.

One module per command group (``train``, ``models``, ``rollout``, ``render``, ``monitor``,
``trigger``, ``config``); each registers its subcommands on the parser built here, with the
flags and helpers they share from ``common``.  Help texts
are plain text (no markup: users read them in a terminal) and every command's help ends with an
example.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence

from spamops import __version__
from spamops.cli import config, models, monitor, render, rollout, train, trigger
from spamops.cli.common import parent_parsers
from spamops.config import RenamedSettingWarning
from spamops.errors import ExitCode, SpamopsError
from spamops.interrupts import Interrupted, stop_on_signals

DEBUG_ENV = "SPAMOPS_DEBUG"
COMMAND_GROUPS = (train, models, rollout, render, monitor, trigger, config)
DESCRIPTION = "Retrain, gate, version and serve the SMS spam classifier."
EPILOG = """\
Every command takes -o json (or --json) for one JSON document on stdout; progress goes to stderr.
Without a command (or a group without its subcommand) spamops prints that help and exits 0.

exit codes: 0 ok, 1 retryable or unexpected, 2 bad input or config, 3 gate refused,
130/143 stopped by SIGINT/SIGTERM before the production pointer moved

example:
  spamops train --data data/sms.csv -o json
"""


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree; README's command table is checked against it."""
    parser = argparse.ArgumentParser(
        prog="spamops",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"spamops {__version__}", help="print the version")
    parser.set_defaults(func=None, help_parser=parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    parents = parent_parsers()
    for group in COMMAND_GROUPS:
        group.register(sub, parents)
    return parser


def commands(parser: argparse.ArgumentParser | None = None) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every runnable command as ("models list", its parser): what the README table and the tests walk."""
    yield from _leaves(parser or build_parser(), "")


def _leaves(parser: argparse.ArgumentParser, prefix: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs or parser.get_default("func") is not None:  # `spamops monitor` runs itself and has subcommands
        yield prefix, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _leaves(child, f"{prefix} {name}".strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.func is None:  # bare `spamops` or `spamops models`: the help of that level
        args.help_parser.print_help()
        return int(ExitCode.OK)
    try:
        with stop_on_signals(), warnings.catch_warnings():
            _warn_users(RenamedSettingWarning)
            code = int(args.func(args))
            sys.stdout.flush()  # here, not at exit: a reader that went away is handled below
        return code
    except SpamopsError as exc:
        print(f"spamops: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except (Interrupted, KeyboardInterrupt) as exc:
        stop = exc if isinstance(exc, Interrupted) else Interrupted(signal.SIGINT)
        print(f"spamops: interrupted by {stop.name}; the production pointer did not move", file=sys.stderr)
        return int(stop.exit_code)
    except BrokenPipeError:
        if not _stdout_closed():
            return _unexpected(BrokenPipeError("broken pipe"))
        # The reader of stdout went away (`spamops models show V | head -2`): what it wanted it has,
        # so that is no error.  Python's documented recipe: point stdout at /dev/null so that the
        # interpreter's own flush at exit does not fail on the rest of the buffer.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return int(ExitCode.OK)
    except Exception as exc:  # noqa: BLE001 - one line for users; SPAMOPS_DEBUG=1 shows the traceback
        if os.environ.get(DEBUG_ENV):
            raise
        return _unexpected(exc)


def _unexpected(exc: BaseException) -> int:
    print(
        f"spamops: unexpected error: {type(exc).__name__}: {exc} (set {DEBUG_ENV}=1 for a traceback)",
        file=sys.stderr,
    )
    return int(ExitCode.FAILURE)


def _stdout_closed() -> bool:
    """Whether stdout is a pipe or socket whose reader has gone (POLLERR on its write end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no real file descriptor (captured, closed)
        return False


def _warn_users(*categories: type[Warning]) -> None:
    """Show these warnings (a DeprecationWarning is hidden by default) as one ``spamops: warning:`` line each."""
    shown = warnings.showwarning
    for category in categories:
        warnings.simplefilter("always", category)

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, categories):
            print(f"spamops: warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show


if __name__ == "__main__":
    sys.exit(main())
