"""``spamops rollout``: traffic on the KServe InferenceService (canary, analysis loop, blue/green).

One verb, one meaning: ``rollout promote``/``abort`` move *traffic*;
``spamops promote``/``rollback`` move the *registry pointer* (an abort moves it
back too, when the aborted version is production).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from spamops.cli.common import add_command, add_group, print_json, registry, settings
from spamops.errors import ExitCode


def _target(args: argparse.Namespace):
    from spamops.deploy.cluster import Target

    rollout = settings(args).rollout
    return Target(
        name=args.isvc or rollout.inference_service,
        namespace=args.namespace or rollout.namespace,
        kubeconfig=args.kubeconfig,
        context=args.context,
    )


def _as_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False))


def _rollouts(args: argparse.Namespace, *, stream: bool = False):
    from spamops.deploy.cluster import Cluster
    from spamops.deploy.rollout import Rollouts

    cfg = settings(args)
    rollout = cfg.rollout
    if getattr(args, "interval", None) is not None:
        rollout = rollout.model_copy(
            update={"analysis": rollout.analysis.model_copy(update={"interval": args.interval})}
        )
    as_json = _as_json(args)

    def emit(event: dict) -> None:
        if as_json and stream:
            print(json.dumps(event, sort_keys=True), flush=True)  # one event per line
        else:
            print(f"{event['event']}: {event['message']}", file=sys.stderr, flush=True)

    gitops = None
    directory = getattr(args, "gitops", None) or rollout.gitops_dir
    if directory:
        from spamops.deploy.gitops import GitOps

        gitops = GitOps(
            Path(directory), rollout.gitops_values_file, rollout.gitops_app, push=args.push or rollout.gitops_push
        )
    return Rollouts(Cluster(_target(args)), rollout, registry=registry(args), emit=emit, gitops=gitops)


STATUS_COLUMNS = ("NAME", "MODE", "READY", "STABLE", "STABLE%", "CANARY", "CANARY%", "ROUTED%", "STEP", "VERDICT")


def verdict_word(word: str | None) -> str | None:
    from spamops.deploy.analysis import verdict_word as today

    return today(word)


def status_row(name: str, split) -> list[str]:
    """One ``kubectl get``-like row; ROUTED% is what KServe (Serverless) or our HTTPRoute (Standard) reports."""
    canary = split.canary_percent
    state = split.state
    return [
        name,
        split.mode,
        "True" if split.ready else "False",
        split.stable_version or "-",
        "100" if canary is None else str(100 - canary),
        split.canary_version or "-",
        "-" if canary is None else str(canary),
        "-" if split.routed_canary_percent is None else str(split.routed_canary_percent),
        str(state.get("step", "-")) if split.canary_version else "-",
        verdict_word(state.get("verdict")) or "-",  # an earlier build's word, as this one says it
    ]


def _print_split(args: argparse.Namespace, rollouts, split) -> None:
    if _as_json(args):
        print_json({"inference_service": rollouts.cluster.target.name, **split.to_json()})
        return
    rows = [STATUS_COLUMNS, status_row(rollouts.cluster.target.name, split)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(STATUS_COLUMNS))]
    for row in rows:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def cmd_start(args: argparse.Namespace) -> int:
    from spamops.deploy.rollout import card_or_production

    rollouts = _rollouts(args)
    card = card_or_production(rollouts.registry, args.version)
    percent = args.percent if args.percent is not None else rollouts.settings.canary_percent
    _print_split(args, rollouts, rollouts.start(card, percent))
    return ExitCode.OK


def cmd_auto(args: argparse.Namespace) -> int:
    from spamops.deploy.rollout import card_or_production
    from spamops.prometheus import Prometheus

    rollouts = _rollouts(args, stream=True)
    card = card_or_production(rollouts.registry, args.version) if args.version else None
    prom = Prometheus(args.prometheus or rollouts.settings.prometheus_url)
    verdict = rollouts.auto(prom, card=card, once=args.once)
    if not _as_json(args):
        print(f"rollout: {verdict}")
    return ExitCode.FAILURE if verdict == "aborted" and not args.once else ExitCode.OK


def cmd_switch(args: argparse.Namespace) -> int:
    from spamops.deploy.rollout import card_or_production

    rollouts = _rollouts(args)
    split = rollouts.switch(card_or_production(rollouts.registry, args.version))
    _print_split(args, rollouts, split)
    return ExitCode.FAILURE if split.state.get("verdict") == "aborted" else ExitCode.OK


def cmd_shadow(args: argparse.Namespace) -> int:
    """Start a shadow (with ``--duration``: wait, report what it saw from Prometheus, stop it), stop it, or show it."""
    import time

    from spamops.deploy import shadow, traffic
    from spamops.deploy.rollout import card_or_production
    from spamops.errors import BadInputError, SpamopsError
    from spamops.prometheus import Prometheus

    rollouts = _rollouts(args)
    if args.stop:
        if args.version or args.duration is not None:
            raise BadInputError("rollout shadow --stop takes no VERSION and no --duration")
        split = rollouts.shadow_stop(args.reason or "stopped by hand")
        result = {"inference_service": rollouts.cluster.target.name, "stopped": True, "report": None}
    elif not args.version:  # the current shadow, if any
        if args.duration is not None:
            raise BadInputError("rollout shadow --duration: name the VERSION to shadow")
        split = rollouts.split()
        where = rollouts.cluster.target.where
        live = traffic.version_of(shadow.shadow_of(rollouts.cluster.read_isvc(), where))
        result = {"inference_service": rollouts.cluster.target.name, "stopped": live is None, "report": None}
        args.version = live
    else:
        if args.duration is not None and args.duration < 1:
            raise BadInputError(f"--duration {args.duration:g}: must be at least 1 second")
        card = card_or_production(rollouts.registry, args.version)
        split = rollouts.shadow_start(card)
        result = {"inference_service": rollouts.cluster.target.name, "stopped": False, "report": None}
        if args.duration is not None:
            print(f"shadowing {card.version} for {args.duration:g}s", file=sys.stderr, flush=True)
            time.sleep(args.duration)
            try:
                prom = Prometheus(args.prometheus or rollouts.settings.prometheus_url)
                found = shadow.report(prom, split.stable_version, card.version, f"{max(1, round(args.duration))}s")
            except SpamopsError as exc:  # no report: still remove the shadow, saying why, then fail
                rollouts.shadow_stop(f"after {args.duration:g}s, no report: {exc}")
                raise
            split = rollouts.shadow_stop(f"after {args.duration:g}s: {found.summary()}", found.to_json())
            result.update(stopped=True, report=found.to_json())
    result.update(primary_version=split.stable_version, shadow_version=None if result["stopped"] else args.version)
    if _as_json(args):
        print_json(result)
    else:
        report = result["report"]
        print(f"primary:  {split.stable_version}")
        print(f"shadow:   {'none' if result['stopped'] else args.version}")
        if report is not None:
            print(f"report:   {shadow.ShadowReport(**report).summary()}")
    return ExitCode.OK


def cmd_simple(args: argparse.Namespace) -> int:
    rollouts = _rollouts(args)
    action = args.rollout_command
    if action == "status":
        split = rollouts.split()
    elif action == "promote":
        split = rollouts.promote(args.reason or "promoted by hand")
    elif action == "abort":
        split = rollouts.abort(args.reason or "aborted by hand")
    else:
        split = rollouts.switch_back()
    _print_split(args, rollouts, split)
    return ExitCode.OK


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    common, as_json = parents["common"], parents["json"]
    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument("--isvc", metavar="NAME", help="InferenceService (default: rollout.inference_service)")
    cluster.add_argument("--namespace", metavar="NS", help="its namespace (default: rollout.namespace)")
    cluster.add_argument("--kubeconfig", metavar="FILE", help="kubeconfig (default: in-cluster, $KUBECONFIG)")
    cluster.add_argument("--context", metavar="NAME", help="kubeconfig context")
    cluster.add_argument(
        "--gitops",
        metavar="DIR",
        help="commit each step to the values file in this git work tree (default: rollout.gitops_dir)",
    )
    cluster.add_argument("--push", action="store_true", help="with --gitops: git push after each commit")
    shared = [common, cluster, as_json]
    rollout = add_group(sub, "rollout", help="traffic on the KServe InferenceService (canary, analysis, blue/green)")
    p = add_command(
        rollout,
        "start",
        parents=shared,
        help="route a share of traffic to a version (a canary)",
        example=["spamops rollout start --percent 10", "spamops rollout start spam_model_20251119_063257 -o json"],
    )
    p.add_argument("version", nargs="?", help="version to roll out (default: current production)")
    p.add_argument("--percent", type=int, help="traffic share for it (default: rollout.canary_percent)")
    p.set_defaults(func=cmd_start)
    p = add_command(
        rollout,
        "auto",
        parents=shared,
        help="analyse the canary step by step; promote or abort",
        example=["spamops rollout auto spam_model_20251119_063257", "spamops rollout auto --once -o json"],
    )
    p.add_argument("version", nargs="?", help="start a canary of this version first (default: drive the current one)")
    p.add_argument("--once", action="store_true", help="one check and its decision, then exit (CronJob/CI driver)")
    p.add_argument("--prometheus", metavar="URL", help="Prometheus URL (default: rollout.prometheus_url)")
    p.add_argument(
        "--interval", type=float, metavar="SECONDS", help="seconds between checks (default: rollout.analysis.interval)"
    )
    p.set_defaults(func=cmd_auto)
    p = add_command(
        rollout,
        "switch",
        parents=shared,
        help="blue/green: deploy a version at 0%%, wait for Ready, then 100%%",
        example="spamops rollout switch spam_model_20251119_063257 -o json",
    )
    p.add_argument("version", nargs="?", help="version to switch to (default: current production)")
    p.set_defaults(func=cmd_switch)
    p = add_command(
        rollout,
        "shadow",
        parents=shared,
        help="score all traffic with a second version off the response path (only the primary answers)",
        example=[
            "spamops rollout shadow spam_model_20251119_063257",
            "spamops rollout shadow spam_model_20251119_063257 --duration 3600 -o json",
            "spamops rollout shadow --stop",
        ],
    )
    p.add_argument("version", nargs="?", help="version to shadow (none: show the current shadow)")
    p.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="then wait this long, report the agreement from Prometheus and remove the shadow",
    )
    p.add_argument("--stop", action="store_true", help="remove the shadow from the predictor")
    p.add_argument("--reason", metavar="TEXT", help="with --stop: recorded in the Event and the rollout record")
    p.add_argument("--prometheus", metavar="URL", help="Prometheus URL (default: rollout.prometheus_url)")
    p.set_defaults(func=cmd_shadow)
    for name, text in (
        ("status", "stable and canary versions, weights, step and last verdict"),
        ("promote", "give the canary all traffic"),
        ("abort", "all traffic to stable; the registry pointer moves back if the canary was production"),
        ("switch-back", "blue/green: all traffic back to the previous version at once"),
    ):
        example = f"spamops rollout {name} --namespace spamops"
        if name in ("promote", "abort"):
            example += f" --reason '{name} by hand'"
        p = add_command(rollout, name, parents=shared, help=text, example=example)
        if name in ("promote", "abort"):
            p.add_argument("--reason", metavar="TEXT", help="recorded in the Event and the rollout record")
        p.set_defaults(func=cmd_simple)
