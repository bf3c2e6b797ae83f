"""``spamops config`` and ``spamops data``: settings and datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from spamops.config import defaults_markdown, defaults_yaml
from spamops.errors import ExitCode


def cmd_config_defaults(args: argparse.Namespace) -> int:
    print(defaults_markdown() if args.markdown else defaults_yaml(), end="")
    return ExitCode.OK


def cmd_fetch_uci(args: argparse.Namespace) -> int:
    from spamops.training import uci

    archive = uci.download(args.url)
    rows = uci.convert(archive, args.sha256, args.url)
    uci.write_csv(rows, Path(args.out))
    spam = sum(1 for label, _ in rows if label == "spam")
    print(f"wrote {args.out}: {len(rows)} messages ({spam} spam)")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    from spamops.training import uci

    config = sub.add_parser("config", help="configuration").add_subparsers(dest="config_command", required=True)
    p = config.add_parser("defaults", help="print every default setting as YAML")
    p.add_argument("--markdown", action="store_true", help="as the README's settings table")
    p.set_defaults(func=cmd_config_defaults)

    data = sub.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    p = data.add_parser("fetch-uci", help="download the UCI SMS Spam Collection as label,message CSV")
    p.add_argument("--out", default="data/sms_spam_collection.csv", help="output CSV (default: %(default)s)")
    p.add_argument("--url", default=uci.UCI_URL, help="archive URL, file:// allowed (default: UCI)")
    p.add_argument("--sha256", default=uci.UCI_SHA256, help="expected sha256 of the archive")
    p.set_defaults(func=cmd_fetch_uci)
