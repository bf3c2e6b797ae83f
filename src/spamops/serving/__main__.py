"""``python -m spamops.serving --model_name spam --model_dir /mnt/models [kserve flags] [our flags]``.

Every ``kserve.model_server`` flag is accepted (KServe's own parser is the
parent of ours), so the container takes the same arguments as any KServe
custom predictor.  The process never exits because of a bad artifact: the
model stays registered but not ready (503 on readiness) and the log says why.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kserve import ModelServer, model_server

from spamops.serving.settings import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TABLE_MAX_LENGTH,
    DEFAULT_TABLE_MAX_PUNCT,
    ServingSettings,
)

logger = logging.getLogger("kserve.spamops")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spamops.serving",
        description="KServe predictor for the spamops SMS spam model (V1, V2, explain, metrics).",
        parents=[model_server.parser],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.set_defaults(model_name="spam")
    parser.add_argument(
        "--model_dir", "--model-dir", default="/mnt/models", help="directory holding model.joblib and model-card.json"
    )
    parser.add_argument(
        "--storage_uri",
        "--storage-uri",
        default=None,
        help="pull this version (file://, s3:// or a path; a model prefix means its production version) "
        "into --model_dir first, verifying checksums",
    )
    parser.add_argument(
        "--max_batch_size", "--max-batch-size", type=int, default=DEFAULT_MAX_BATCH, help="most instances per request"
    )
    parser.add_argument(
        "--max_body_bytes", "--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, help="largest request body"
    )
    parser.add_argument(
        "--table_max_length",
        "--table-max-length",
        type=int,
        default=DEFAULT_TABLE_MAX_LENGTH,
        help="cap of the decision table's length axis (it covers 0..training max)",
    )
    parser.add_argument(
        "--table_max_punct",
        "--table-max-punct",
        type=int,
        default=DEFAULT_TABLE_MAX_PUNCT,
        help="cap of the decision table's punct axis (it covers 0..training max)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = ServingSettings(
            max_batch=args.max_batch_size,
            max_body_bytes=args.max_body_bytes,
            table_max_length=args.table_max_length,
            table_max_punct=args.table_max_punct,
        )
    except ValueError as exc:
        print(f"python -m spamops.serving: {exc}", file=sys.stderr)
        return 2

    # Imported after parsing so that --help answers fast.
    import kserve.model_server as kserve_app
    from kserve.logging import configure_logging

    from spamops.serving import http
    from spamops.serving.model import SpamModel

    if args.configure_logging:
        configure_logging(args.log_config_file)
    model_dir = Path(args.model_dir)
    model = SpamModel(args.model_name, model_dir, settings)
    pull_failed = False
    if args.storage_uri:
        from spamops.serving import fetch

        if not model_dir.exists() or not any(model_dir.iterdir()):
            target = model_dir
        else:  # never mix a fresh pull into a directory that already holds files
            target = Path(tempfile.mkdtemp(prefix="spamops-model-"))
            model.model_dir = target
        try:
            version = fetch.pull(args.storage_uri, target)
            logger.info("pulled %s (version %s) into %s, checksums verified", args.storage_uri, version, target)
        except Exception as exc:  # noqa: BLE001 - any pull failure leaves the model not ready, with the reason
            model.fail("pull_failed", f"{args.storage_uri}: {exc}")
            pull_failed = True
    if not pull_failed:
        model.load()

    server = ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        max_threads=args.max_threads,
        max_asyncio_workers=args.max_asyncio_workers,
        enable_grpc=args.enable_grpc,
        enable_docs_url=args.enable_docs_url,
        enable_latency_logging=args.enable_latency_logging,
        access_log_format=args.access_log_format,
        event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
    )
    http.install(kserve_app.app, server.registered_models, settings.max_body_bytes)
    # Registered even when not ready: KServe would refuse to start without a ready model,
    # and a process that exits on a bad artifact crash-loops; a not-ready one says 503 and why.
    server.register_model(model)
    model.enable_latency_logging = args.enable_latency_logging
    server.start([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
