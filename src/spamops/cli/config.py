"""``spamops config`` and ``spamops data``: settings and datasets."""

from __future__ import annotations

import argparse
from pathlib import Path

from spamops.cli.common import add_command, add_group, print_json
from spamops.config import RunConfig, defaults_markdown, defaults_yaml
from spamops.errors import ExitCode


def cmd_config_defaults(args: argparse.Namespace) -> int:
    if args.json:
        print_json(RunConfig().model_dump(mode="json"))
    else:
        print(defaults_markdown() if args.markdown else defaults_yaml(), end="")
    return ExitCode.OK


def cmd_fetch_uci(args: argparse.Namespace) -> int:
    from spamops.training import uci

    archive = uci.download(args.url)
    rows = uci.convert(archive, args.sha256, args.url)
    uci.write_csv(rows, Path(args.out))
    spam = sum(1 for label, _ in rows if label == "spam")
    if args.json:
        print_json({"out": str(args.out), "messages": len(rows), "spam": spam})
    else:
        print(f"wrote {args.out}: {len(rows)} messages ({spam} spam)")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    from spamops.training import uci

    config = add_group(sub, "config", help="configuration settings")
    p = add_command(
        config,
        "defaults",
        parents=[parents["json"]],
        help="print every default setting (YAML, or the README's table with --markdown)",
        example=["spamops config defaults", "spamops config defaults -o json"],
    )
    p.add_argument("--markdown", action="store_true", help="as the README's settings table")
    p.set_defaults(func=cmd_config_defaults)

    data = add_group(sub, "data", help="datasets")
    p = add_command(
        data,
        "fetch-uci",
        parents=[parents["json"]],
        help="download the UCI SMS Spam Collection, verify its sha256 and write it as label,message CSV",
        example="spamops data fetch-uci --out data/sms_spam_collection.csv",
    )
    p.add_argument("--out", default="data/sms_spam_collection.csv", help="output CSV (default: %(default)s)")
    p.add_argument("--url", default=uci.UCI_URL, help="archive URL, file:// allowed (default: UCI)")
    p.add_argument("--sha256", default=uci.UCI_SHA256, help="expected sha256 of the archive (default: UCI's)")
    p.set_defaults(func=cmd_fetch_uci)
