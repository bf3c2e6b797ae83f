"""``spamops monitor``: data drift of every served version, once (a report) or as a long-running exporter."""

from __future__ import annotations

import argparse
import sys
import time

from tabulate import tabulate

from spamops.cli.common import add_command, print_json, registry, settings
from spamops.errors import BadInputError, ExitCode, SpamopsError
from spamops.records import ModelCard


def _settings(args: argparse.Namespace):
    from spamops.monitoring.monitor import parse_duration
    from spamops.monitoring.prometheus import Prometheus

    try:
        window = parse_duration(args.window)
    except ValueError as exc:
        raise BadInputError(f"--window: {exc}") from None
    if args.min_samples < 1:
        raise BadInputError("--min-samples must be at least 1 (the fewest observations a verdict needs)")
    reg = registry(args)
    cards: dict[str, ModelCard] = {}

    def card_of(version: str) -> ModelCard:
        if version not in cards:
            cards[version] = reg.card(version)
        return cards[version]

    return Prometheus(args.prometheus or settings(args).rollout.prometheus_url, timeout=30), card_of, window


def _measure(args: argparse.Namespace, api, card_of, window: float):
    from spamops.monitoring.monitor import measure

    return measure(api, card_of, window_seconds=window, min_samples=args.min_samples, match=args.match or "")


def cmd_monitor(args: argparse.Namespace) -> int:
    api, card_of, window = _settings(args)
    if args.serve:
        return _serve(args, api, card_of, window)
    reports = _measure(args, api, card_of, window)
    if args.json:
        print_json({"window": args.window, "min_samples": args.min_samples, "versions": [r.to_json() for r in reports]})
        return ExitCode.OK
    if not reports:
        print(f"no predictions of any version in the last {args.window} at {api.url}")
    rows = []
    for r in reports:
        for f in r.features:
            verdict = "too few samples" if f.psi is None else f"{f.psi:.3f}"
            rows.append([r.model_version, f.feature, f.samples, verdict, _fmt(f.ks), _fmt(f.wasserstein_normed)])
        for problem in r.problems:
            print(f"warning: {problem}", file=sys.stderr)
    if rows:
        print(tabulate(rows, headers=["version", "feature", "samples", "psi", "ks", "wasserstein/std"]))
    return ExitCode.OK


def _serve(args: argparse.Namespace, api, card_of, window: float) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from spamops.monitoring.monitor import DriftCollector

    collector = DriftCollector()
    metrics = CollectorRegistry()
    metrics.register(collector)
    start_http_server(args.port, addr=args.bind, registry=metrics)
    print(f"monitor: /metrics on {args.bind}:{args.port}, a pass every {args.interval}s", file=sys.stderr)
    while True:
        try:
            collector.reports = _measure(args, api, card_of, window)
            collector.last_success = time.time()
        except SpamopsError as exc:  # Prometheus or the store away: keep serving the last values, retry
            collector.failures += 1
            print(f"monitor: pass failed: {exc}", file=sys.stderr)
        time.sleep(args.interval)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    from spamops.monitoring.monitor import DEFAULT_MIN_SAMPLES, DEFAULT_WINDOW

    p = add_command(
        sub,
        "monitor",
        parents=[parents["common"], parents["json"]],
        help="data drift of the served versions over all replicas (Prometheus), once or as an exporter",
        example=[
            "spamops monitor --prometheus http://prometheus:9090 --window 1h",
            "spamops monitor --serve --port 9108",
        ],
    )
    p.add_argument("--prometheus", metavar="URL", help="Prometheus URL (default: rollout.prometheus_url)")
    p.add_argument("--window", default=DEFAULT_WINDOW, help="how far back to count (default: %(default)s)")
    p.add_argument(
        "--min-samples",
        type=int,
        default=DEFAULT_MIN_SAMPLES,
        help="fewest observations in the window for a verdict; below it no value is exported (default: %(default)s)",
    )
    p.add_argument("--match", metavar="MATCHERS", help='extra label matchers, e.g. instance="10.0.0.5:8080"')
    p.add_argument("--serve", action="store_true", help="keep running: export the gauges on /metrics")
    p.add_argument("--port", type=int, default=9108, help="--serve: metrics port (default: %(default)s)")
    p.add_argument("--bind", default="0.0.0.0", help="--serve: address (default: %(default)s)")  # noqa: S104 - a pod
    p.add_argument(
        "--interval", type=float, default=60.0, help="--serve: seconds between passes (default: %(default)s)"
    )
    p.set_defaults(func=cmd_monitor)
