"""``spamops render``: manifests for a version, from the chart (the one source of truth)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from spamops.cli.common import add_command, add_group, print_json, registry, settings
from spamops.errors import BadInputError, ExitCode


def cmd_render_isvc(args: argparse.Namespace) -> int:
    from spamops.deploy.render import render_isvc
    from spamops.deploy.rollout import card_or_production

    reg = registry(args)
    card = card_or_production(reg, args.version)
    production = reg.production()
    stable = reg.card(production.version) if production and production.version != card.version else None
    if args.canary is not None and args.mode == "standard" and stable is None and production is not None:
        raise BadInputError(
            f"--canary {args.canary}: {card.version} is production, the stable predictor of a standard-mode "
            "canary; name another VERSION as the canary"
        )
    shadow = reg.card(args.shadow) if args.shadow else None
    doc = render_isvc(
        card,
        mode=args.mode,
        canary=args.canary,
        stable=stable,
        shadow=shadow,
        chart=Path(args.chart) if args.chart else None,
        namespace=args.namespace or settings(args).rollout.namespace,
    )
    if args.json:
        print_json(doc)  # kubectl apply -f - reads JSON too
    else:
        print(yaml.safe_dump(doc, sort_keys=False), end="")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    render = add_group(sub, "render", help="manifests for a version, rendered from the Helm chart")
    p = add_command(
        render,
        "isvc",
        parents=[parents["common"], parents["json"]],
        help="the InferenceService serving a version, as YAML (or -o json) on stdout",
        example=[
            "spamops render isvc spam_model_20260101T000000Z --canary 10 --mode standard",
            "spamops render isvc --shadow spam_model_20260101T000000Z",
        ],
    )
    p.add_argument("version", nargs="?", help="version (default: current production)")
    p.add_argument("--canary", type=int, metavar="N", help="as a canary with N%% of traffic (stable = production)")
    p.add_argument(
        "--shadow",
        metavar="VERSION",
        help="also score every answered instance with VERSION off the response path (SHADOW_STORAGE_URI); "
        "only the rendered version answers",
    )
    p.add_argument("--mode", choices=("serverless", "standard"), default="serverless", help="KServe deployment mode")
    p.add_argument("--namespace", metavar="NS", help="namespace (default: rollout.namespace)")
    p.add_argument(
        "--chart",
        metavar="DIR",
        help="chart directory (default: the chart installed with spamops, or the checkout's helm/spamops)",
    )
    p.set_defaults(func=cmd_render_isvc)
