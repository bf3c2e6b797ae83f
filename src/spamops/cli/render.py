"""``spamops render``: manifests for a version, from the chart (the one source of truth)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from spamops.cli.common import registry, settings
from spamops.errors import ExitCode


def cmd_render_isvc(args: argparse.Namespace) -> int:
    from spamops.deploy.render import CHART, render_isvc
    from spamops.deploy.rollout import card_or_production

    reg = registry(args)
    card = card_or_production(reg, args.version)
    production = reg.production()
    stable = reg.card(production["version"]) if production and production["version"] != card["version"] else None
    doc = render_isvc(
        card,
        mode=args.mode,
        canary=args.canary,
        stable=stable,
        chart=Path(args.chart) if args.chart else CHART,
        namespace=args.namespace or settings(args).rollout.namespace,
    )
    print(yaml.safe_dump(doc, sort_keys=False), end="")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    render = sub.add_parser("render", help="manifests for a version, rendered from the Helm chart").add_subparsers(
        dest="render_command", required=True
    )
    p = render.add_parser(
        "isvc",
        parents=[parents["common"]],
        help="the InferenceService serving a version",
        description="Example: spamops render isvc spam_model_20260101T000000Z --canary 10 --mode standard | kubectl apply --server-side -f -",
    )
    p.add_argument("version", nargs="?", help="version (default: current production)")
    p.add_argument("--canary", type=int, metavar="N", help="as a canary with N%% of traffic (stable = production)")
    p.add_argument("--mode", choices=("serverless", "standard"), default="serverless", help="KServe deployment mode")
    p.add_argument("--namespace", metavar="NS", help="namespace (default: rollout.namespace)")
    p.add_argument("--chart", metavar="DIR", help="chart directory (default: the repository's helm/spamops)")
    p.set_defaults(func=cmd_render_isvc)
