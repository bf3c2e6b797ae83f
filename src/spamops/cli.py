"""The ``spamops`` command line.  Exit codes are in :class:`spamops.errors.ExitCode`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from tabulate import tabulate

from spamops import __version__
from spamops.config import RunConfig, defaults_markdown, defaults_yaml, load_config
from spamops.errors import BadInputError, ExitCode, SpamopsError
from spamops.gate import GateDecision

DEBUG_ENV = "SPAMOPS_DEBUG"


def _settings(args: argparse.Namespace) -> RunConfig:
    """The config file with command-line overrides, validated like the file itself."""
    cfg = load_config(args.config)
    raw = cfg.model_dump(mode="json")
    flags = {}
    if getattr(args, "store", None):
        raw["store"], flags["store"] = args.store, "--store"
    if getattr(args, "model_name", None):
        raw["model_name"], flags["model_name"] = args.model_name, "--model-name"
    if getattr(args, "data", None):
        raw["data"]["sources"], flags["data"] = list(args.data), "--data"
    if getattr(args, "no_promote", False):
        raw["promote"] = False
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = flags.get(str(err["loc"][0]), ".".join(str(p) for p in err["loc"]))
        raise BadInputError(f"{flag}: {err['msg']}") from None


def _registry(args: argparse.Namespace):
    from spamops.registry import Registry
    from spamops.store import open_store

    cfg = _settings(args)
    return Registry(open_store(cfg.store), cfg.model_name)


def _print_json(obj: object) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


def cmd_train(args: argparse.Namespace) -> int:
    from spamops.pipeline import run_training

    outcome = run_training(_settings(args), progress=None if args.quiet else sys.stderr)
    if args.json:
        _print_json(
            {
                "version": outcome.version,
                "storage_uri": outcome.version_uri,
                "gate": outcome.decision.to_json(),
                "promoted": outcome.promoted,
                "rollout": outcome.rollout,
            }
        )
    else:
        print(outcome.decision.table())
        print(f"\nversion:  {outcome.version}\nstored:   {outcome.version_uri}")
        print(f"report:   {outcome.version_uri}report.md")
        if outcome.promoted:
            print(f"promoted: production is now {outcome.version}")
        elif outcome.decision.passed:
            print("promoted: no (promotion disabled)")
        else:
            print("promoted: no — production unchanged")
    return ExitCode.OK if outcome.decision.passed else ExitCode.GATE_REFUSED


def cmd_models_list(args: argparse.Namespace) -> int:
    registry = _registry(args)
    production = registry.production()
    current = production["version"] if production else None
    rows = []
    for info in registry.versions():
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
        _print_json({"production": production, "versions": rows})
    elif not rows:
        print(f"no versions of {registry.model_name!r} in {registry.store.uri()}")
    else:
        print(tabulate(rows, headers="keys", tablefmt="github"))
    return ExitCode.OK


def cmd_models_show(args: argparse.Namespace) -> int:
    card = _registry(args).card(args.version)
    if args.json:
        _print_json(card)
    else:
        print(f"{card['version']}  {card['storage_uri']}\ncreated {card['created_at']}, sha256 {card['sha256']}")
        print(f"data: {card['data']['rows']} rows, {card['data']['fingerprint']}")
        print(f"params: {card['params']}\n")
        print(GateDecision.from_json(card["gate"]).table())
    return ExitCode.OK


def cmd_models_pull(args: argparse.Namespace) -> int:
    dest = _registry(args).pull(args.version, Path(args.dest))
    print(f"pulled {args.version} into {dest} (sha256 verified)")
    return ExitCode.OK


def cmd_promote(args: argparse.Namespace) -> int:
    record = _registry(args).promote(args.version, force=args.force, reason=args.reason)
    print(f"{args.version} is already production" if record is None else f"production is now {args.version}")
    return ExitCode.OK


def cmd_rollback(args: argparse.Namespace) -> int:
    record = _registry(args).rollback()
    print(f"production rolled back to {record['version']} (was {record['previous_version']})")
    return ExitCode.OK


def cmd_gate(args: argparse.Namespace) -> int:
    from spamops.regate import regate

    decision = regate(_registry(args), args.version, _settings(args).gate)
    if args.json:
        _print_json(decision.to_json())
    else:
        print(decision.table())
    return ExitCode.OK if decision.passed else ExitCode.GATE_REFUSED


def _target(args: argparse.Namespace):
    from spamops.rollout import Target

    rollout = _settings(args).rollout
    return Target(
        name=args.isvc or rollout.inference_service,
        namespace=args.namespace or rollout.namespace,
        kubeconfig=args.kubeconfig,
        context=args.context,
    )


def _print_rollout(state, as_json: bool) -> None:
    if as_json:
        _print_json(state.to_json())
        return
    percent = "none (one revision has all traffic)" if state.canary_percent is None else f"{state.canary_percent}%"
    print(f"storage uri: {state.storage_uri}")
    print(f"canary:      {percent}")
    for entry in state.traffic:
        print(f"  {entry.get('percent', 0):>3}% {entry.get('tag', '')} {entry.get('revisionName', '')}")


def cmd_rollout_canary(args: argparse.Namespace) -> int:
    from spamops import rollout

    registry = _registry(args)
    if args.version:
        uri = registry.card(args.version)["storage_uri"]
    else:
        production = registry.production()
        if production is None:
            raise BadInputError(f"{registry.store.uri(registry.model_name)}: nothing in production to roll out")
        uri = production["storage_uri"]
    percent = args.percent if args.percent is not None else _settings(args).rollout.canary_percent
    _print_rollout(rollout.canary(_target(args), uri, percent), args.json)
    return ExitCode.OK


def cmd_rollout_step(args: argparse.Namespace) -> int:
    from spamops import rollout

    step = {"status": rollout.status, "promote": rollout.promote, "rollback": rollout.rollback}[args.rollout_command]
    _print_rollout(step(_target(args)), args.json)
    return ExitCode.OK


def cmd_config_defaults(args: argparse.Namespace) -> int:
    print(defaults_markdown() if args.markdown else defaults_yaml(), end="")
    return ExitCode.OK


def cmd_fetch_uci(args: argparse.Namespace) -> int:
    from spamops import uci

    archive = uci.download(args.url)
    rows = uci.convert(archive, args.sha256, args.url)
    uci.write_csv(rows, Path(args.out))
    spam = sum(1 for label, _ in rows if label == "spam")
    print(f"wrote {args.out}: {len(rows)} messages ({spam} spam)")
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    from spamops import uci

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="run configuration YAML (see 'spamops config defaults')")
    common.add_argument("--store", metavar="URI", help="artifact store: path, file:// or s3://bucket/prefix")
    common.add_argument("--model-name", metavar="NAME", help="model name (default: spam)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable output")

    parser = argparse.ArgumentParser(prog="spamops", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"spamops {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", parents=[common, as_json], help="ingest, retrain, evaluate, gate, store, promote")
    p.add_argument("--data", nargs="+", metavar="CSV", help="data sources, combined in order (overrides the config)")
    p.add_argument("--no-promote", action="store_true", help="store and gate, but leave production alone")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_train)

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

    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument("--isvc", metavar="NAME", help="InferenceService (default: rollout.inference_service)")
    cluster.add_argument("--namespace", metavar="NS", help="its namespace (default: rollout.namespace)")
    cluster.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: in-cluster, $KUBECONFIG)")
    cluster.add_argument("--context", metavar="NAME", help="kubeconfig context")
    rollout = sub.add_parser("rollout", help="canary traffic on the KServe InferenceService").add_subparsers(
        dest="rollout_command", required=True
    )
    p = rollout.add_parser("canary", parents=[common, cluster, as_json], help="route a share of traffic to a version")
    p.add_argument("version", nargs="?", help="version to roll out (default: current production)")
    p.add_argument("--percent", type=int, help="traffic share for it (default: rollout.canary_percent)")
    p.set_defaults(func=cmd_rollout_canary)
    for name, text in (
        ("status", "the requested split and what KServe reports"),
        ("promote", "give the canary all traffic"),
        ("rollback", "send all traffic back to the previous revision"),
    ):
        rollout.add_parser(name, parents=[common, cluster, as_json], help=text).set_defaults(func=cmd_rollout_step)

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
