"""``spamops rollout``: canary traffic on the KServe InferenceService (the deploy side)."""

from __future__ import annotations

import argparse

from spamops.cli.common import add_command, add_group, print_json, registry, settings
from spamops.errors import BadInputError, ExitCode


def _target(args: argparse.Namespace):
    from spamops.deploy.kserve import Target

    rollout = settings(args).rollout
    return Target(
        name=args.isvc or rollout.inference_service,
        namespace=args.namespace or rollout.namespace,
        kubeconfig=args.kubeconfig,
        context=args.context,
    )


def _print_rollout(state, as_json: bool) -> None:
    if as_json:
        print_json(state.to_json())
        return
    percent = "none (one revision has all traffic)" if state.canary_percent is None else f"{state.canary_percent}%"
    print(f"storage uri: {state.storage_uri}")
    print(f"canary:      {percent}")
    for entry in state.traffic:
        print(f"  {entry.get('percent', 0):>3}% {entry.get('tag', '')} {entry.get('revisionName', '')}")


def cmd_rollout_canary(args: argparse.Namespace) -> int:
    from spamops.deploy import kserve

    reg = registry(args)
    if args.version:
        uri = reg.card(args.version).storage_uri
    else:
        production = reg.production()
        if production is None:
            raise BadInputError(f"{reg.store.uri(reg.model_name)}: nothing in production to roll out")
        uri = production.storage_uri
    percent = args.percent if args.percent is not None else settings(args).rollout.canary_percent
    _print_rollout(kserve.canary(_target(args), uri, percent), args.json)
    return ExitCode.OK


def cmd_rollout_step(args: argparse.Namespace) -> int:
    from spamops.deploy import kserve

    step = {"status": kserve.status, "promote": kserve.promote, "rollback": kserve.rollback}[args.rollout_command]
    _print_rollout(step(_target(args)), args.json)
    return ExitCode.OK


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    common, as_json = parents["common"], parents["json"]
    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument("--isvc", metavar="NAME", help="InferenceService (default: rollout.inference_service)")
    cluster.add_argument("--namespace", metavar="NS", help="its namespace (default: rollout.namespace)")
    cluster.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: in-cluster, $KUBECONFIG)")
    cluster.add_argument("--context", metavar="NAME", help="kubeconfig context")
    rollout = add_group(sub, "rollout", help="canary traffic on the KServe InferenceService")
    p = add_command(
        rollout,
        "canary",
        parents=[common, cluster, as_json],
        help="route a share of traffic to a version",
        example=["spamops rollout canary --percent 10", "spamops rollout canary spam_model_20251119_063257 -o json"],
    )
    p.add_argument("version", nargs="?", help="version to roll out (default: current production)")
    p.add_argument("--percent", type=int, help="traffic share for it (default: rollout.canary_percent)")
    p.set_defaults(func=cmd_rollout_canary)
    for name, text in (
        ("status", "the requested split and what KServe reports"),
        ("promote", "give the canary all traffic"),
        ("rollback", "send all traffic back to the previous revision"),
    ):
        add_command(
            rollout,
            name,
            parents=[common, cluster, as_json],
            help=text,
            example=f"spamops rollout {name} --namespace spamops",
        ).set_defaults(func=cmd_rollout_step)
