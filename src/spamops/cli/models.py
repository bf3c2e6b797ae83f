"""``spamops models``, ``promote``, ``rollback`` and ``gate``: the registry seen from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from spamops.cli.common import add_command, add_group, print_json, registry, settings
from spamops.config import DEFAULT_GC_OLDER_THAN
from spamops.errors import BadInputError, ExitCode

TABLE_WIDTH = 120  # the default listing fits a 120-column terminal; -o wide shows everything


def _wide(args: argparse.Namespace) -> bool:
    return getattr(args, "output", None) == "wide"


def _as_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False)) or getattr(args, "output", None) == "json"


def _dump(record) -> dict:
    return record.model_dump(mode="json", by_alias=True)


def _one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _listing(reg) -> tuple[object, list[dict]]:
    """The pointer and one row per version with everything any output format shows."""
    production = reg.production()
    forced = {h.version: h.reason for h in reg.history() if h.forced} if production else {}
    rows = []
    for info in reg.versions():
        card = info.card
        if card is None:
            status = "invalid" if info.problem else "incomplete"
            rows.append({"version": info.version, "status": status, "reason": info.problem or ""})
            continue
        is_production = production is not None and info.version == production.version
        reasons = list(card.gate.reasons)
        if info.version in forced:
            reasons.insert(0, f"forced: {forced[info.version]}")
        rows.append(
            {
                "version": info.version,
                "status": "production" if is_production else ("passed" if card.gate.passed else "refused"),
                "created_at": card.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                "accuracy": round(card.metrics.accuracy, 4),
                "spam_f1": round(card.metrics.spam_f1, 4),
                "rows": card.data.rows,
                "fingerprint": card.data.fingerprint,
                "sha256": card.sha256,
                "storage_uri": card.storage_uri,
                "reason": "; ".join(reasons),
                "forced": info.version in forced,
            }
        )
    return production, rows


def cmd_models_list(args: argparse.Namespace) -> int:
    reg = registry(args)
    reg.store.check_exists()
    production, rows = _listing(reg)
    if _as_json(args):
        print_json({"production": _dump(production) if production else None, "versions": rows})
    elif not rows:
        print(f"no versions of {reg.model_name!r} in {reg.store.uri()}")
    elif _wide(args):
        keys = ("version", "status", "created_at", "accuracy", "spam_f1", "rows", "sha256", "fingerprint", "reason")
        print(tabulate([[r.get(k, "") for k in keys] for r in rows], headers=keys, tablefmt="simple"))
    else:
        print(_narrow_table(rows))
    return ExitCode.OK


def _narrow_table(rows: list[dict]) -> str:
    """version, status, created, accuracy, spam F1 and a one-line reason, cut to ``TABLE_WIDTH``."""
    headers = ("version", "status", "created", "accuracy", "spam_f1", "reason")
    cells = [
        [r["version"], r["status"], r.get("created_at", "")[:16], _num(r.get("accuracy")), _num(r.get("spam_f1"))]
        for r in rows
    ]
    fixed = tabulate(cells, headers=headers[:-1], tablefmt="simple", disable_numparse=True)
    room = TABLE_WIDTH - max(len(line) for line in fixed.splitlines()) - 2  # two spaces between columns
    for row, r in zip(cells, rows, strict=True):
        row.append(_one_line(r["reason"], max(room, 10)))
    return tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def cmd_models_show(args: argparse.Namespace) -> int:
    from spamops.training.gate import table

    card = registry(args).card(args.version)
    if _as_json(args):
        print_json(_dump(card))
        return ExitCode.OK
    print(f"{card.version}  {card.storage_uri}\ncreated {card.created_at:%Y-%m-%d %H:%M:%S}Z, sha256 {card.sha256}")
    print(f"data: {card.data.rows} rows, {card.data.fingerprint}")
    print(f"snapshots: train {card.datasets.train.sha256} ({card.datasets.train.rows} rows)")
    print(f"           test  {card.datasets.test.sha256} ({card.datasets.test.rows} rows)")
    print(f"params: {card.params}\n")
    print(table(card.gate))
    return ExitCode.OK


def cmd_models_pull(args: argparse.Namespace) -> int:
    dest = registry(args).pull(args.version, Path(args.dest), overwrite=args.overwrite)
    if args.json:
        print_json({"version": args.version, "dest": str(dest), "verified": True})
    else:
        print(f"pulled {args.version} into {dest} (sha256 verified)")
    return ExitCode.OK


def cmd_models_history(args: argparse.Namespace) -> int:
    reg = registry(args)
    reg.store.check_exists()
    moves = reg.history()
    if _as_json(args):
        print_json([_dump(m) for m in moves])
    elif not moves:
        print(f"no production history for {reg.model_name!r} in {reg.store.uri()}")
    else:
        rows = [
            (
                f"{m.promoted_at:%Y-%m-%d %H:%M:%S}",
                m.action + (" (forced)" if m.forced else ""),
                m.version,
                m.previous_version or "-",
                m.reason or "",
            )
            for m in moves
        ]
        print(tabulate(rows, headers=("when (UTC)", "action", "version", "previous", "reason"), tablefmt="simple"))
    return ExitCode.OK


def cmd_models_gc(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from spamops.monitoring.monitor import parse_duration
    from spamops.registry.gc import collect_garbage

    try:
        older_than = timedelta(seconds=parse_duration(args.older_than, allow_zero=True))
    except ValueError as exc:
        raise BadInputError(f"--older-than: {exc}") from None
    reg = registry(args)
    reg.store.check_exists()
    found = collect_garbage(reg, older_than, dry_run=args.dry_run)
    if _as_json(args):
        print_json(found.to_json())
        return ExitCode.OK
    verb = "would remove" if args.dry_run else "removed"
    for g in found.removed:
        what = f"{g.kind} {g.version}" if g.version else g.kind
        print(
            f"{verb} {what}: {g.uri} ({len(g.keys)} object(s), {_size(g.size)}, last written {g.modified:%Y-%m-%d %H:%M}Z)"
        )
    for k in found.kept:
        print(f"kept incomplete version {k.version}: {k.reason}")
    summary = f"{verb} {found.objects} object(s), {_size(found.size)}, from {found.store_uri}"
    print(summary + (" (dry run: nothing was changed)" if args.dry_run else ""))
    return ExitCode.OK


def _size(n: int) -> str:
    """Bytes for people: ``13 B``, ``18.3 kB``, ``8.1 MB``."""
    if n < 1000:
        return f"{n} B"
    value = n / 1000
    for unit in ("kB", "MB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def cmd_models_schema(args: argparse.Namespace) -> int:
    from spamops.records import card_json_schema_text

    print(card_json_schema_text(), end="")
    return ExitCode.OK


def cmd_promote(args: argparse.Namespace) -> int:
    record = registry(args).promote(args.version, force=args.force, reason=args.reason)
    if args.json:
        print_json(
            {
                "production": args.version,
                "changed": record is not None,
                "record": None if record is None else _dump(record),
            }
        )
    else:
        print(f"{args.version} is already production" if record is None else f"production is now {args.version}")
    return ExitCode.OK


def cmd_rollback(args: argparse.Namespace) -> int:
    record = registry(args).rollback()
    if args.json:
        print_json({"production": record.version, "previous": record.previous_version, "record": _dump(record)})
    else:
        print(f"production rolled back to {record.version} (was {record.previous_version})")
    return ExitCode.OK


def cmd_gate(args: argparse.Namespace) -> int:
    from spamops.training.gate import table
    from spamops.training.regate import regate

    decision = regate(registry(args), args.version, settings(args).gate)
    if _as_json(args):
        print_json(_dump(decision))
    else:
        print(table(decision))
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
    p.add_argument("--overwrite", action="store_true", help="write into DIR even if it is not empty")
    p.set_defaults(func=cmd_models_pull)
    p = add_command(
        models,
        "history",
        parents=[common, as_json],
        help="every production pointer move, oldest first",
        example="spamops models history -o json",
    )
    p.set_defaults(func=cmd_models_history)
    p = add_command(
        models,
        "gc",
        parents=[common, as_json],
        help="remove incomplete versions and temporary objects interrupted runs left behind",
        example=[
            "spamops models gc --dry-run",
            "spamops models gc --older-than 1d --store s3://spamops/models -o json",
        ],
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed; change nothing")
    p.add_argument(
        "--older-than",
        default=DEFAULT_GC_OLDER_THAN,
        metavar="DURATION",
        help="touch nothing written more recently (s, m, h or d; default: %(default)s)",
    )
    p.set_defaults(func=cmd_models_gc)
    p = add_command(
        models,
        "schema",
        parents=[as_json],
        help="print the JSON Schema of model-card.json (JSON in every output format)",
        example="spamops models schema -o json",
    )
    p.set_defaults(func=cmd_models_schema)

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
