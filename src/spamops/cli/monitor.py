"""``spamops monitor``: data drift of every served version, once (a report) or as a long-running exporter;
``spamops monitor feedback`` / ``quality``: ground-truth labels and the rolling quality they give."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from tabulate import tabulate

from spamops import names
from spamops.cli.common import add_command, print_json, registry, settings
from spamops.errors import BadInputError, ExitCode, SpamopsError
from spamops.records import ModelCard


def _settings(args: argparse.Namespace):
    from spamops.monitoring.monitor import parse_duration
    from spamops.prometheus import Prometheus

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
    if args.no_drift and not (args.inference_log or args.feedback):
        raise BadInputError("--no-drift leaves nothing to do without --inference-log and --feedback")
    if args.serve:
        return _serve(args, api, card_of, window)
    if args.no_drift or (args.inference_log and args.feedback and not args.json):
        if not args.no_drift:
            _drift_report(args, api, card_of, window)
        return cmd_quality(args)
    reports = _measure(args, api, card_of, window)
    if args.json:
        doc = {"window": args.window, "min_samples": args.min_samples, "versions": [r.to_json() for r in reports]}
        quality = _quality_monitor(args)
        if quality is not None:
            doc["quality"] = [q.to_json() for q in quality.run_pass()]
        print_json(doc)
        return ExitCode.OK
    return _print_drift(reports, api)


def _drift_report(args: argparse.Namespace, api, card_of, window: float) -> int:
    return _print_drift(_measure(args, api, card_of, window), api)


def _print_drift(reports, api) -> int:
    if not reports:
        print(f"no predictions of any version in the drift window at {api.url}")
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


def _quality_monitor(args: argparse.Namespace):
    """The quality side when both URIs are given; ``None`` when neither; an error when only one is."""
    from spamops.monitoring.monitor import parse_duration
    from spamops.monitoring.server import QualityMonitor

    if not args.inference_log and not args.feedback:
        return None
    if not args.inference_log or not args.feedback:
        missing = "--inference-log" if not args.inference_log else "--feedback"
        raise BadInputError(f"{missing} is needed too: quality joins the inference log with the feedback labels")
    try:
        window = parse_duration(args.quality_window)
    except ValueError as exc:
        raise BadInputError(f"--quality-window: {exc}") from None
    if args.min_labels < 1:
        raise BadInputError("--min-labels must be at least 1 (the fewest labelled predictions a value needs)")
    return QualityMonitor(args.inference_log, args.feedback, window_seconds=window, min_labels=args.min_labels)


def _serve(args: argparse.Namespace, api, card_of, window: float) -> int:
    from prometheus_client import CollectorRegistry

    from spamops.monitoring.monitor import DriftCollector
    from spamops.monitoring.rollouts import RolloutCollector
    from spamops.monitoring.server import serve_http

    collector = DriftCollector()
    rollouts = RolloutCollector(registry(args))
    quality = _quality_monitor(args)
    metrics = CollectorRegistry()
    metrics.register(collector)
    metrics.register(rollouts)
    if quality is not None:
        metrics.register(quality)
        quality.safe_pass()
    server = serve_http(metrics, quality, args.bind, args.port)
    extra = ", POST /feedback" if quality is not None else ""
    print(
        f"monitor: /metrics{extra} on {args.bind}:{server.port}, a pass every {args.interval}s",
        file=sys.stderr,
    )
    while True:
        if not args.no_drift:
            try:
                collector.reports = _measure(args, api, card_of, window)
                collector.last_success = time.time()
            except SpamopsError as exc:  # Prometheus or the store away: keep serving the last values, retry
                collector.failures += 1
                print(f"monitor: pass failed: {exc}", file=sys.stderr)
        try:
            rollouts.refresh()
        except SpamopsError as exc:  # the store away: keep the last counts, retry at the next pass
            rollouts.failures += 1
            print(f"monitor: reading the rollout records failed: {exc}", file=sys.stderr)
        if quality is not None:
            quality.safe_pass()
        time.sleep(args.interval)


def _quality_args(p: argparse.ArgumentParser) -> None:
    from spamops.monitoring.quality import DEFAULT_MIN_LABELS, DEFAULT_QUALITY_WINDOW

    p.add_argument(
        "--inference-log",
        metavar="URI",
        default=os.environ.get(names.INFERENCE_LOG_URI_ENV) or None,
        help="the predictors' inference log (path, file://, s3://; default $SPAMOPS_INFERENCE_LOG_URI)",
    )
    p.add_argument(
        "--feedback",
        metavar="URI",
        default=os.environ.get(names.FEEDBACK_URI_ENV) or None,
        help="where feedback labels are stored (default $SPAMOPS_FEEDBACK_URI)",
    )
    p.add_argument(
        "--quality-window",
        default=DEFAULT_QUALITY_WINDOW,
        help="quality over the predictions made this far back (default: %(default)s)",
    )
    p.add_argument(
        "--min-labels",
        type=int,
        default=DEFAULT_MIN_LABELS,
        help="fewest labelled predictions of a version for a quality value; below it none is exported "
        "(default: %(default)s)",
    )


def cmd_feedback(args: argparse.Namespace) -> int:
    from spamops.predictions.feedback import accept
    from spamops.predictions.inference_log import read_log

    if not args.inference_log or not args.feedback:
        raise BadInputError(
            "give --inference-log and --feedback (or $SPAMOPS_INFERENCE_LOG_URI, $SPAMOPS_FEEDBACK_URI)"
        )
    path = Path(args.file)
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else path.read_bytes()
    except OSError as exc:
        raise BadInputError(f"{args.file}: cannot read: {exc.strerror}") from None
    reader = read_log(args.inference_log)
    stored, count = accept(data, "text/csv", args.file, reader.predictions, args.feedback)
    if args.json:
        print_json({"stored": stored, "labels": count})
    else:
        print(f"stored {count} labels in {stored}")
    return ExitCode.OK


def cmd_quality(args: argparse.Namespace) -> int:
    quality = _quality_monitor(args)
    if quality is None:
        raise BadInputError(
            "give --inference-log and --feedback (or $SPAMOPS_INFERENCE_LOG_URI, $SPAMOPS_FEEDBACK_URI)"
        )
    reports = quality.run_pass()
    for problem in quality.problems:
        print(f"warning: {problem}", file=sys.stderr)
    if args.json:
        print_json(
            {"window": args.quality_window, "min_labels": args.min_labels, "versions": [r.to_json() for r in reports]}
        )
        return ExitCode.OK
    if not reports:
        print(f"no logged predictions in the last {args.quality_window} in {args.inference_log}")
        return ExitCode.OK
    rows = [
        [
            r.model_version,
            r.logged,
            r.labelled,
            _fmt(r.accuracy),
            _fmt(r.spam_recall),
            _fmt(r.spam_f1),
            _fmt((r.label_delay_seconds or {}).get(0.5)),
        ]
        for r in reports
    ]
    print(
        tabulate(rows, headers=["version", "logged", "labelled", "accuracy", "spam recall", "spam f1", "delay p50 s"])
    )
    return ExitCode.OK


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def register(sub: argparse._SubParsersAction, parents: dict[str, argparse.ArgumentParser]) -> None:
    from spamops.monitoring.monitor import DEFAULT_MIN_SAMPLES, DEFAULT_WINDOW

    p = add_command(
        sub,
        "monitor",
        help="data drift of the served versions over all replicas (Prometheus), once or as an exporter",
        example=[
            "spamops monitor --prometheus http://prometheus:9090 --store s3://spamops/models --window 1h",
            "spamops monitor --serve --inference-log s3://spamops/inference-log --feedback s3://spamops/feedback",
        ],
        parents=[parents["common"], parents["json"]],
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
    p.add_argument(
        "--no-drift",
        action="store_true",
        help="quality only (needs --inference-log and --feedback), no Prometheus queries",
    )
    _quality_args(p)
    p.set_defaults(func=cmd_monitor)
    nested = p.add_subparsers(dest="monitor_command", metavar="COMMAND", title="commands")
    f = add_command(
        nested,
        "feedback",
        help="upload true labels (id,label CSV) of logged predictions; all rows good or nothing stored",
        example="spamops monitor feedback labels.csv --inference-log s3://spamops/inference-log "
        "--feedback s3://spamops/feedback",
        parents=[parents["json"]],
    )
    f.add_argument("file", metavar="FILE", help="CSV with the header id,label ('-' reads stdin)")
    _quality_args(f)
    f.set_defaults(func=cmd_feedback)
    q = add_command(
        nested,
        "quality",
        help="rolling accuracy, spam recall and F1 of each version on its labelled predictions, once",
        example="spamops monitor quality --inference-log s3://spamops/inference-log --feedback s3://spamops/feedback",
        parents=[parents["json"]],
    )
    _quality_args(q)
    q.set_defaults(func=cmd_quality)
