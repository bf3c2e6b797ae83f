"""``spamops models``, ``promote``, ``rollback`` and ``gate``: the registry seen from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from spamops.cli.common import print_json, registry, settings
from spamops.errors import ExitCode
from spamops.training.gate import GateDecision


def cmd_models_list(args: argparse.Namespace) -> int:
    reg = registry(args)
    production = reg.production()
    current = production["version"] if production else None
    rows = []
    for info in reg.versions():
        if info.card is None:
            rows.append({"version": info.version, "status": "incomplete"})
            continue
        m = info.card["metrics"]
        rows.append(
            {
                "version": info.version,
                "status": "production"
                if info.version == current
                else ("passed" if info.card["gate"]["passed"] else "refused"),
                "accuracy": round(m["accuracy"], 4),
                "spam_f1": round(m["spam_f1"], 4),
                "rows": info.card["data"]["rows"],
                "reasons": "; ".join(info.card["gate"]["reasons"]),
            }
        )
    if args.json:
        print_json({"production": production, "versions": rows})
    elif not rows:
        print(f"no versions of {reg.model_name!r} in {reg.store.uri()}")
    else:
        print(tabulate(rows, headers="keys", tablefmt="github"))
    return ExitCode.OK


def cmd_models_show(args: argparse.Namespace) -> int:
    card = registry(args).card(args.version)
    if args.json:
        print_json(card)
    else:
        print(f"{card['version']}  {card['storage_uri']}\ncreated {card['created_at']}, sha256 {card['sha256']}")
        print(f"data: {card['data']['rows']} rows, {card['data']['fingerprint']}")
        print(f"params: {card['params']}\n")
        print(GateDecision.from_json(card["gate"]).table())
    return ExitCode.OK


def cmd_models_pull(args: argparse.Namespace) -> int:
    dest = registry(args).pull(args.version, Path(args.dest))
    print(f"pulled {args.version} into {dest} (sha256 verified)")
    return ExitCode.OK


def cmd_promote(args: argparse.Namespace) -> int:
    record = registry(args).promote(args.version, force=args.force, reason=args.reason)
    print(f"{args.version} is already production" if record is None else f"production is now {args.version}")
    return ExitCode.OK


def cmd_rollback(args: argparse.Namespace) -> int:
    record = registry(args).rollback()
    print(f"production rolled back to {record['version']} (was {record['previous_version']})")
    return ExitCode.OK


def cmd_gate(args: argparse.Namespace) -> int:
    from spamops.training.regate import regate

    decision = regate(registry(args), args.version, settings(args).gate)
    if args.json:
        print_json(decision.to_json())
    else:
        print(decision.table())
    return ExitCode.OK if decision.passed else ExitCode.GATE_REFUSED


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    common, as_json = parents["common"], parents["json"]
    models = sub.add_parser("models", help="inspect stored versions").add_subparsers(
        dest="models_command", required=True
    )
    p = models.add_parser("list", parents=[common, as_json], help="every version with its gate verdict")
    p.set_defaults(func=cmd_models_list)
    p = models.add_parser("show", parents=[common, as_json], help="one version's model card")
    p.add_argument("version")
    p.set_defaults(func=cmd_models_show)
    p = models.add_parser("pull", parents=[common], help="download a version, verifying checksums")
    p.add_argument("version")
    p.add_argument("dest", metavar="DIR")
    p.set_defaults(func=cmd_models_pull)

    p = sub.add_parser("promote", parents=[common], help="make a gated version production")
    p.add_argument("version")
    p.add_argument("--force", action="store_true", help="promote even though its gate refused it")
    p.add_argument("--reason", help="why --force is justified (recorded in the history)")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser("rollback", parents=[common], help="move production back to the previous version")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("gate", parents=[common, as_json], help="re-run a version's gate against current production")
    p.add_argument("version")
    p.set_defaults(func=cmd_gate)
