"""``spamops trigger serve`` (Alertmanager webhook) and ``spamops trigger data`` (new data): start a retrain Job."""

from __future__ import annotations

import argparse
import json
import sys

from spamops.cli.common import add_command, add_group, print_json, registry, settings
from spamops.errors import BadInputError, ExitCode


def _target(args: argparse.Namespace):
    from datetime import timedelta

    from spamops.deploy.retrain import RetrainTarget
    from spamops.monitoring.monitor import parse_duration

    try:
        cooldown = parse_duration(args.cooldown)
    except ValueError as exc:
        raise BadInputError(f"--cooldown: {exc}") from None
    return RetrainTarget(args.cronjob, args.namespace, timedelta(seconds=cooldown), args.kubeconfig)


def cmd_trigger_serve(args: argparse.Namespace) -> int:
    from spamops.deploy.retrain import trigger_retrain
    from spamops.monitoring.alert_receiver import make_server

    target = _target(args)

    def retrain(reason: str):
        result = trigger_retrain(target, reason, "alert")
        if args.json:  # one document per handled alert group, like `rollout auto -o json`
            print(json.dumps(result.to_json(), sort_keys=True), flush=True)
        else:
            print(
                f"trigger: {result.outcome}{' ' + result.job if result.job else ''}: {result.detail}", file=sys.stderr
            )
        return result

    server = make_server(args.bind, args.port, retrain)
    print(
        f"trigger: Alertmanager webhook on http://{args.bind}:{server.port}/alerts -> "
        f"cronjob {target.namespace}/{target.cronjob} (cooldown {args.cooldown})",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever()
    return ExitCode.OK


def cmd_trigger_data(args: argparse.Namespace) -> int:
    from spamops.deploy.retrain import trigger_retrain
    from spamops.monitoring.data_trigger import source_changes
    from spamops.triggers import TriggerResult

    cfg = settings(args)
    reg = registry(args)
    production = reg.production()
    changes = source_changes(cfg.data.sources, reg.card(production.version) if production else None)
    if changes:
        result = trigger_retrain(_target(args), "new data: " + "; ".join(changes), "data")
    else:
        result = TriggerResult("unchanged", None, "the sources are the ones the production model was trained on")
    if args.json:
        print_json({**result.to_json(), "changes": changes})
    else:
        print(f"{result.outcome}{' ' + result.job if result.job else ''}: {result.detail}")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument(
        "--cronjob", default="spamops-retrain", help="CronJob whose template runs (default: %(default)s)"
    )
    cluster.add_argument("--namespace", default="spamops", help="its namespace (default: %(default)s)")
    cluster.add_argument("--cooldown", default="6h", help="no new run this soon after the last (default: %(default)s)")
    cluster.add_argument("--kubeconfig", metavar="FILE", help="default: in-cluster service account, else $KUBECONFIG")
    trigger = add_group(sub, "trigger", help="start a retraining Job from alerts or new data")
    p = add_command(
        trigger,
        "serve",
        parents=[parents["json"], cluster],
        help="Alertmanager webhook receiver: a firing alert retrains (-o json: one line per decision)",
        example="spamops trigger serve --port 8080 --cronjob spamops-retrain --cooldown 6h",
    )
    p.add_argument("--port", type=int, default=8080, help="default: %(default)s")
    p.add_argument("--bind", default="0.0.0.0", help="default: %(default)s (in a pod)")  # noqa: S104
    p.set_defaults(func=cmd_trigger_serve)
    p = add_command(
        trigger,
        "data",
        parents=[parents["common"], parents["json"], cluster],
        help="retrain when the configured sources differ from the production model's",
        example="spamops trigger data --config retrain.yaml --cronjob spamops-retrain",
    )
    p.set_defaults(func=cmd_trigger_data)
