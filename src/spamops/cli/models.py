"""``spamops models``, ``promote``, ``rollback`` and ``gate``: the registry seen from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from spamops.cli.common import print_json, registry, settings
from spamops.errors import ExitCode

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
    from spamops.training.gate import GateDecision

    card = registry(args).card(args.version)
    if _as_json(args):
        print_json(_dump(card))
        return ExitCode.OK
    print(f"{card.version}  {card.storage_uri}\ncreated {card.created_at:%Y-%m-%d %H:%M:%S}Z, sha256 {card.sha256}")
    print(f"data: {card.data.rows} rows, {card.data.fingerprint}")
    print(f"snapshots: train {card.datasets.train.sha256} ({card.datasets.train.rows} rows)")
    print(f"           test  {card.datasets.test.sha256} ({card.datasets.test.rows} rows)")
    print(f"params: {card.params}\n")
    print(GateDecision.from_record(card.gate).table())
    return ExitCode.OK


def cmd_models_pull(args: argparse.Namespace) -> int:
    dest = registry(args).pull(args.version, Path(args.dest), overwrite=args.overwrite)
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


def cmd_models_schema(args: argparse.Namespace) -> int:
    from spamops.records import card_json_schema_text

    print(card_json_schema_text(), end="")
    return ExitCode.OK


def cmd_promote(args: argparse.Namespace) -> int:
    record = registry(args).promote(args.version, force=args.force, reason=args.reason)
    print(f"{args.version} is already production" if record is None else f"production is now {args.version}")
    return ExitCode.OK


def cmd_rollback(args: argparse.Namespace) -> int:
    record = registry(args).rollback()
    print(f"production rolled back to {record.version} (was {record.previous_version})")
    return ExitCode.OK


def cmd_gate(args: argparse.Namespace) -> int:
    from spamops.training.regate import regate

    decision = regate(registry(args), args.version, settings(args).gate)
    if _as_json(args):
        print_json(decision.to_json())
    else:
        print(decision.table())
    return ExitCode.OK if decision.passed else ExitCode.GATE_REFUSED


def _add_output(p: argparse.ArgumentParser) -> None:
    """``-o table|wide|json`` where the shared parent parser does not provide it yet."""
    if "-o" not in p._option_string_actions:
        p.add_argument(
            "-o", "--output", choices=("table", "wide", "json"), default="table", help="output format (default table)"
        )


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    common, as_json = parents["common"], parents["json"]
    models = sub.add_parser("models", help="inspect stored versions").add_subparsers(
        dest="models_command", required=True
    )
    p = models.add_parser("list", parents=[common, as_json], help="every version with its gate verdict")
    _add_output(p)
    p.set_defaults(func=cmd_models_list)
    p = models.add_parser("show", parents=[common, as_json], help="one version's model card")
    p.add_argument("version")
    p.set_defaults(func=cmd_models_show)
    p = models.add_parser("pull", parents=[common], help="download a version, verifying checksums")
    p.add_argument("version")
    p.add_argument("dest", metavar="DIR")
    p.add_argument("--overwrite", action="store_true", help="write into DIR even if it is not empty")
    p.set_defaults(func=cmd_models_pull)
    p = models.add_parser("history", parents=[common, as_json], help="every production pointer move, oldest first")
    p.set_defaults(func=cmd_models_history)
    p = models.add_parser("schema", help="print the JSON Schema of model-card.json")
    p.set_defaults(func=cmd_models_schema)

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
