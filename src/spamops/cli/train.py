"""``spamops train``: one retraining run."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from spamops.cli.common import add_command, print_json, settings
from spamops.config import RunConfig
from spamops.errors import ExitCode
from spamops.records import ProductionPointer
from spamops.training.gate import table


def cmd_train(args: argparse.Namespace) -> int:
    from spamops.registry.store import open_store

    cfg = settings(args)
    # Before importing the training stack (seconds of scikit-learn and matplotlib on a busy node):
    # an impossible store must fail at once, not after the imports, the ingest and the grid search.
    open_store(cfg.store).check_writable()
    from spamops.training.pipeline import run_training

    progress = None if args.quiet else sys.stderr
    outcome = run_training(cfg, progress=progress, force_new=args.force_new)
    if outcome.unchanged:
        return _unchanged(outcome, args.json)
    rolled_out = _roll_out(cfg, outcome.promoted, progress) if outcome.promoted is not None else None
    if args.json:
        print_json(
            {
                "version": outcome.version,
                "storage_uri": outcome.version_uri,
                "gate": outcome.decision.model_dump(mode="json"),
                "promoted": outcome.promoted.model_dump(mode="json") if outcome.promoted else None,
                "rollout": rolled_out,
                "unchanged": False,
                "sources": [
                    {k: src.model_dump(mode="json").get(k) for k in ("uri", "rows", "bad_rows", "ignored_columns")}
                    for src in outcome.card.data.sources
                ],
            }
        )
    else:
        print(table(outcome.decision))
        print(f"\nversion:  {outcome.version}\nstored:   {outcome.version_uri}")
        print(f"report:   {outcome.version_uri}report.md")
        if outcome.promoted:
            print(f"promoted: production is now {outcome.version}")
        elif outcome.decision.passed:
            print("promoted: no (promotion disabled)")
        else:
            print("promoted: no — production unchanged")
    return ExitCode.OK if outcome.decision.passed else ExitCode.GATE_REFUSED


def _unchanged(outcome, as_json: bool) -> int:
    """Nothing new to store: the same data, code and settings already made ``outcome.version``."""
    if as_json:
        print_json(
            {
                "version": outcome.version,
                "storage_uri": outcome.version_uri,
                "gate": outcome.decision.model_dump(mode="json"),
                "promoted": None,
                "rollout": None,
                "unchanged": True,
            }
        )
    else:
        print(
            f"unchanged: {outcome.version} was trained on the same data (fingerprint "
            f"{outcome.card.data.fingerprint[:19]}…), code version and settings; no new version stored "
            "(--force-new retrains anyway)"
        )
    return ExitCode.OK


def _roll_out(cfg: RunConfig, promoted: ProductionPointer, progress: TextIO | None) -> dict | None:
    """The deploy step after a promotion, when ``rollout.enabled``: a canary of the new version."""
    if not cfg.rollout.enabled:
        return None
    from spamops.deploy.cluster import Cluster, Target
    from spamops.deploy.rollout import Rollouts

    target = Target(name=cfg.rollout.inference_service, namespace=cfg.rollout.namespace)
    state = Rollouts(Cluster(target), cfg.rollout).start(promoted, cfg.rollout.canary_percent)
    if progress is not None:
        print(
            f"canary: {cfg.rollout.canary_percent}% of {target.namespace}/{target.name} on {promoted.version}",
            file=progress,
        )
    return state.to_json()


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "train",
        parents=[parents["common"], parents["json"]],
        help="ingest, retrain, evaluate, gate, store and promote one model version",
        example=["spamops train --data data/sms.csv", "spamops train --config run.yaml --no-promote -o json"],
    )
    p.add_argument("--data", nargs="+", metavar="CSV", help="data sources, combined in order (overrides the config)")
    p.add_argument("--no-promote", action="store_true", help="store and gate, but leave production alone")
    p.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    p.add_argument(
        "--force-new",
        action="store_true",
        help="train and store a new version even when one exists for the same data, code and settings",
    )
    p.set_defaults(func=cmd_train)
