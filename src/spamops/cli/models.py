"""``spamops models``, ``promote``, ``rollback`` and ``gate``: the registry seen from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from spamops.cli.common import add_command, add_group, print_json, registry, settings
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
    if args.json:
        print_json({"version": args.version, "dest": str(dest), "verified": True})
    else:
        print(f"pulled {args.version} into {dest} (sha256 verified)")
    return ExitCode.OK


def cmd_promote(args: argparse.Namespace) -> int:
    record = registry(args).promote(args.version, force=args.force, reason=args.reason)
    if args.json:
        print_json({"production": args.version, "changed": record is not None, "record": record})
    else:
        print(f"{args.version} is already production" if record is None else f"production is now {args.version}")
    return ExitCode.OK


def cmd_rollback(args: argparse.Namespace) -> int:
    record = registry(args).rollback()
    if args.json:
        print_json({"production": record["version"], "previous": record["previous_version"], "record": record})
    else:
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
    common, as_json, wide = parents["common"], parents["json"], parents["wide"]
    models = add_group(sub, "models", help="inspect stored versions")
    p = add_command(
        models,
        "list",
        parents=[common, wide],
        help="every version with its gate verdict",
        example=["spamops models list", "spamops models list --store s3://spamops/models -o json"],
    )
    p.set_defaults(func=cmd_models_list)
    p = add_command(
        models,
        "show",
        parents=[common, as_json],
        help="one version's model card and gate table",
        example="spamops models show spam_model_20251119_063257 -o json",
    )
    p.add_argument("version", help="version id, as 'spamops models list' prints it")
    p.set_defaults(func=cmd_models_show)
    p = add_command(
        models,
        "pull",
        parents=[common, as_json],
        help="download a version, verifying every file's sha256 against its card",
        example="spamops models pull spam_model_20251119_063257 ./model",
    )
    p.add_argument("version", help="version id to download")
    p.add_argument("dest", metavar="DIR", help="local directory to download into")
    p.set_defaults(func=cmd_models_pull)

    p = add_command(
        sub,
        "promote",
        parents=[common, as_json],
        help="make a gated version production",
        example=[
            "spamops promote spam_model_20251119_063257",
            "spamops promote spam_model_20251119_063257 --force --reason 'hotfix, gate data stale'",
        ],
    )
    p.add_argument("version", help="version id to make production")
    p.add_argument("--force", action="store_true", help="promote even though its gate refused it")
    p.add_argument("--reason", help="why --force is justified (recorded in the history)")
    p.set_defaults(func=cmd_promote)

    p = add_command(
        sub,
        "rollback",
        parents=[common, as_json],
        help="move production back to the version it replaced",
        example="spamops rollback --store s3://spamops/models",
    )
    p.set_defaults(func=cmd_rollback)

    p = add_command(
        sub,
        "gate",
        parents=[common, as_json],
        help="re-run a version's gate against current production",
        example="spamops gate spam_model_20251119_063257 -o json",
    )
    p.add_argument("version", help="version id to re-gate")
    p.set_defaults(func=cmd_gate)
