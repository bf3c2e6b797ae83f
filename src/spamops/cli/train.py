"""``spamops train``: one retraining run."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from spamops.cli.common import print_json, settings
from spamops.config import RunConfig
from spamops.errors import ExitCode


def cmd_train(args: argparse.Namespace) -> int:
    from spamops.training.pipeline import run_training

    cfg = settings(args)
    progress = None if args.quiet else sys.stderr
    outcome = run_training(cfg, progress=progress)
    rolled_out = _roll_out(cfg, outcome.promoted, progress) if outcome.promoted is not None else None
    if args.json:
        print_json(
            {
                "version": outcome.version,
                "storage_uri": outcome.version_uri,
                "gate": outcome.decision.to_json(),
                "promoted": outcome.promoted,
                "rollout": rolled_out,
                "sources": [
                    {k: src.get(k) for k in ("uri", "rows", "bad_rows", "ignored_columns")}
                    for src in outcome.card["data"]["sources"]
                ],
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


def _roll_out(cfg: RunConfig, promoted: dict, progress: TextIO | None) -> dict | None:
    """The deploy step after a promotion, when ``rollout.enabled``: a canary of the new version."""
    if not cfg.rollout.enabled:
        return None
    from spamops.deploy import kserve

    target = kserve.Target(name=cfg.rollout.inference_service, namespace=cfg.rollout.namespace)
    state = kserve.canary(target, promoted["storage_uri"], cfg.rollout.canary_percent)
    if progress is not None:
        print(
            f"canary: {cfg.rollout.canary_percent}% of {target.namespace}/{target.name} on {promoted['version']}",
            file=progress,
        )
    return state.to_json()


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "train", parents=[parents["common"], parents["json"]], help="ingest, retrain, evaluate, gate, store, promote"
    )
    p.add_argument("--data", nargs="+", metavar="CSV", help="data sources, combined in order (overrides the config)")
    p.add_argument("--no-promote", action="store_true", help="store and gate, but leave production alone")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_train)
