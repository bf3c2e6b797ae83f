"""``python -m spamops.serving --model_name spam --model_dir /mnt/models [kserve flags] [our flags]``.

Every ``kserve.model_server`` flag is accepted (KServe's own parser is the
parent of ours), so the container takes the same arguments as any KServe
custom predictor.  The process never exits because of a bad artifact: the
model stays registered but not ready (503 on readiness) and the log says why.
Only a ``--storage-uri`` (the local path: in the cluster KServe's storage
initializer pulls) that cannot be pulled exits, at once and naming the URI.

The listening address is taken first, before anything is pulled or loaded, so
a port in use or an address that is not this machine's is one line naming the
flag (exit 2) and no model is loaded (:mod:`spamops.serving.server`, which owns
start-up).  ``--workers N`` forks N processes after the model is verified and
its decision table built, so they share it (:mod:`spamops.serving.workers`).

Two defaults differ from stock KServe, both because at thousands of requests
per second per-request log lines cost a quarter of the throughput and the
mesh or ingress already logs requests: ``--enable_latency_logging`` is false,
and uvicorn's access log and KServe's per-request timing lines are off unless
``--request_logging true`` (or a ``--log_config_file``) asks for them.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from kserve import model_server
from kserve.utils.utils import strtobool

from spamops import names
from spamops.config import DEFAULT_MODEL_NAME
from spamops.errors import BadInputError, ExitCode, SpamopsError
from spamops.serving import inference_log
from spamops.serving.settings import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_SHADOW_QUEUE,
    DEFAULT_SHADOW_SAMPLE,
    DEFAULT_TABLE_MAX_CELLS,
    DEFAULT_TABLE_MAX_LENGTH,
    DEFAULT_TABLE_MAX_PUNCT,
    ServingSettings,
    ShadowSettings,
)

logger = logging.getLogger("kserve.spamops")

DEFAULT_MODEL_DIR = "/mnt/models"  # where KServe's storage initializer puts the model


def build_parser() -> argparse.ArgumentParser:
    """KServe's own parser as parent, so the container accepts every stock predictor flag, plus ours."""
    parser = argparse.ArgumentParser(
        prog="python -m spamops.serving",
        description="KServe predictor for the spamops SMS spam model (V1, V2, explain, metrics).",
        parents=[model_server.parser],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.set_defaults(model_name=DEFAULT_MODEL_NAME, enable_latency_logging=False)
    parser.add_argument(
        "--model_dir",
        "--model-dir",
        default=None,
        help=f"directory holding model.joblib and model-card.json (default {DEFAULT_MODEL_DIR}; "
        "with --storage-uri, a scratch directory removed at exit)",
    )
    parser.add_argument(
        "--bind",
        default="0.0.0.0",  # noqa: S104 - KServe's own address, for the pod network; make serve passes 127.0.0.1
        help="address the HTTP server listens on (KServe's 0.0.0.0 in a pod; 127.0.0.1 for local use)",
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
    parser.add_argument(
        "--table_max_cells",
        "--table-max-cells",
        type=int,
        default=DEFAULT_TABLE_MAX_CELLS,
        help="most cells in the decision table (the length axis is shortened to fit)",
    )
    parser.add_argument(
        "--request_logging",
        "--request-logging",
        type=strtobool,
        default=False,
        help="log one access line and KServe's timing lines per request",
    )
    shadow = parser.add_argument_group("shadow deployment (docs/monitoring.md)")
    shadow.add_argument(
        "--shadow_storage_uri",
        "--shadow-storage-uri",
        default=os.environ.get(names.SHADOW_STORAGE_URI_ENV) or None,
        help="also pull and verify this version and score every answered instance with it off the response "
        "path (default $SHADOW_STORAGE_URI); a bad shadow disables shadowing, the primary keeps serving",
    )
    shadow.add_argument(
        "--shadow_queue_size",
        "--shadow-queue-size",
        type=int,
        default=DEFAULT_SHADOW_QUEUE,
        help="answered batches waiting for the shadow; when full, new ones are dropped and counted",
    )
    shadow.add_argument(
        "--shadow_sample_size",
        "--shadow-sample-size",
        type=int,
        default=DEFAULT_SHADOW_SAMPLE,
        help="latest disagreements (features and both answers, no text) kept for GET /v1/models/<name>/shadow",
    )
    inference_log.add_arguments(parser)
    return parser


def settings_from(args: argparse.Namespace) -> ServingSettings:
    """Our limits from the parsed flags; ``ServingSettings`` raises ``ValueError`` on bad values."""
    return ServingSettings(
        max_batch=args.max_batch_size,
        max_body_bytes=args.max_body_bytes,
        table_max_length=args.table_max_length,
        table_max_punct=args.table_max_punct,
        table_max_cells=args.table_max_cells,
    )


def shadow_settings_from(args: argparse.Namespace) -> ShadowSettings:
    """The shadow's bounds from the parsed flags; ``ShadowSettings`` raises ``ValueError`` on bad values."""
    return ShadowSettings(
        queue_size=args.shadow_queue_size,
        sample_size=args.shadow_sample_size,
    )


def configure_logging(args: argparse.Namespace) -> None:
    """KServe's log format; per-request lines only with ``--request_logging``."""
    if not args.configure_logging:
        return
    from kserve.logging import KSERVE_LOG_CONFIG
    from kserve.logging import configure_logging as kserve_configure

    if args.log_config_file:
        kserve_configure(args.log_config_file)
        return
    config = copy.deepcopy(KSERVE_LOG_CONFIG)
    if not args.request_logging:
        config["loggers"]["kserve.trace"]["level"] = "WARNING"
        config["loggers"]["uvicorn.access"]["level"] = "WARNING"
    kserve_configure(config)


class PullFailed(SpamopsError):
    """``--storage-uri`` could not be pulled: the URI and the store's reason, with the store error's exit code."""

    def __init__(self, uri: str, cause: Exception) -> None:
        text = str(cause) if uri in str(cause) else f"{uri}: {type(cause).__name__}: {cause}"
        super().__init__(f"--storage-uri {text}")
        self.exit_code = getattr(cause, "exit_code", ExitCode.FAILURE)


@contextlib.contextmanager
def model_directory(args: argparse.Namespace) -> Iterator[Path]:
    """The directory to load: ``--model_dir``, or with ``--storage-uri`` the version pulled (verified) into it.

    Without ``--model_dir`` (or when it already holds files, which a fresh pull
    must never mix with) the pull goes to a scratch directory that is removed
    at exit.  A pull that fails raises: ``--storage-uri`` is the local path
    (in the cluster KServe's storage initializer pulls), where failing fast
    with the URI beats serving 503s forever.
    """
    if not args.storage_uri:
        yield Path(args.model_dir or DEFAULT_MODEL_DIR)
        return
    from spamops.serving import fetch

    model_dir = Path(args.model_dir) if args.model_dir else None
    if model_dir is not None and model_dir.exists() and not model_dir.is_dir():
        raise BadInputError(f"--model_dir {model_dir} is not a directory")
    scratch: Path | None = None
    if model_dir is None or (model_dir.exists() and any(model_dir.iterdir())):
        model_dir = scratch = Path(tempfile.mkdtemp(prefix="spamops-model-"))
    try:
        try:
            version = fetch.pull(args.storage_uri, model_dir)
        except Exception as exc:  # noqa: BLE001 - whatever the store says, the URI is what the user can fix
            raise PullFailed(args.storage_uri, exc) from None
        logger.info("pulled %s (version %s) into %s, checksums verified", args.storage_uri, version, model_dir)
        yield model_dir
    finally:
        if scratch is not None:  # our own scratch copy: nobody else will remove it
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, bind, (pull,) load and serve.

    Exit 2 on bad flags, an address that cannot be listened on (checked before
    anything is pulled or loaded) or a ``--storage-uri`` that names nothing, 1
    when the pull fails otherwise; never on a bad artifact in ``--model_dir``
    (see above).
    """
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
        shadow_settings = shadow_settings_from(args)
        log = inference_log.from_args(args)
        if args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
    except ValueError as exc:
        print(f"python -m spamops.serving: {exc}", file=sys.stderr)
        return 2
    except SpamopsError as exc:  # an inference log URI the store refuses
        print(f"python -m spamops.serving: --inference-log-uri {exc}", file=sys.stderr)
        return int(exc.exit_code)
    configure_logging(args)

    from spamops.serving import server as predictor_server
    from spamops.serving.model import SpamModel

    try:
        server = predictor_server.PredictorServer(args)
        listeners = predictor_server.bind(
            args.bind, server.http_port, args.workers, args.grpc_port if args.enable_grpc else None
        )
        with model_directory(args) as model_dir:
            model = SpamModel(args.model_name, model_dir, settings, log)
            model.load()  # a refused artifact leaves the model registered but not ready, saying why
            if args.shadow_storage_uri:
                from spamops.serving.shadow import load_shadow

                # A bad shadow is logged and disabled; it never makes the primary not ready.
                model.shadow = load_shadow(
                    model.name, model.version, args.shadow_storage_uri, settings, shadow_settings
                )
            return predictor_server.serve(server, model, listeners, settings)
    except SpamopsError as exc:
        print(f"python -m spamops.serving: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except predictor_server.KServeIncompatible as exc:
        print(f"python -m spamops.serving: {exc}", file=sys.stderr)
        return int(ExitCode.FAILURE)


if __name__ == "__main__":
    sys.exit(main())
