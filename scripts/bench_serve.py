#!/usr/bin/env python3
"""Serving benchmark: our predictor against MLServer and against the framework's own ceiling.

Not a test: it prints a table.  Every number is a median of alternating runs
measured here, in this run, on this machine (ours, MLServer, ceiling, ours,
MLServer, ceiling, ... for each scenario), so background load hits all three
alike and the ratios are what to read, not the absolute rates.

Systems, all on 127.0.0.1 with their default settings unless noted:

* ours: ``python -m spamops.serving`` serving the model.
* MLServer 1.7.1 + mlserver-sklearn serving the same ``model.joblib``, in its
  own virtualenv (its pins clash with kserve's) created here under
  ``$SPAMOPS_CACHE`` (default ``~/.cache/spamops``), with uvloop 0.21 (its
  default parallel worker crashes with uvloop 0.23) and httptools (else uvicorn
  falls back to the slower h11 parser: we want the peer at its best).
* ceiling: the same KServe server as ours (same entrypoint plumbing, same
  flags) with a model that returns a constant: the framework's own limit.

Load: ``wrk`` (apt-get install wrk) with a Lua body, one thread, on loopback.
Every system gets the same Open Inference Protocol request (MLServer speaks
only V2): FP32 ``[1, 2]`` features for single-instance runs, FP32 ``[100, 2]``
for batch runs; MLServer is asked for ``predict_proba`` so each system makes
one model call per request.  A run with any non-2xx answer aborts the bench.

Also measured in-process: one ``predict_proba`` call on one row (the model call
alone) and our decision-table lookup.

Usage: python scripts/bench_serve.py [--rounds 3] [--duration 5] [--data CSV ...] [--model-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from spamops.records import CARD_FILE, MODEL_FILE, FeatureStatistics, parse_card

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SPAMOPS_CACHE", Path.home() / ".cache" / "spamops"))
MLSERVER_VENV = CACHE / "bench-mlserver-venv"
HOST = "127.0.0.1"
CONCURRENCIES = (1, 8, 32)
BATCH = 100
BATCH_CONCURRENCY = 8

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"non2xx\\":%d,\\"socket_errors\\":%d,"
    .. "\\"p50_us\\":%d,\\"p99_us\\":%d}}\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

CONSTANT_SERVER = """
import sys
from kserve import Model
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from spamops.serving.__main__ import build_parser, configure_logging, serve, settings_from

class ConstantModel(Model):
    '''Answers every request with a constant of the right size: the framework's own ceiling.'''

    def __init__(self, name):
        super().__init__(name)
        self.ready = True
        self.version = "constant"

    def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            n = payload.inputs[0].shape[0]
            return InferResponse(
                response_id=payload.id or "c", model_name=self.name, model_version="constant",
                infer_outputs=[InferOutput("label", [n], "BYTES", ["ham"] * n),
                               InferOutput("spam_probability", [n], "FP32", [0.0] * n)])
        n = len(payload["instances"])
        return {"predictions": [{"label": "ham", "spam_probability": 0.0, "model_version": "constant"}] * n}

args = build_parser().parse_args(sys.argv[1:])
configure_logging(args)
serve(ConstantModel(args.model_name), args, settings_from(args))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Server:
    name: str
    cmd: list[str]
    workdir: Path
    port: int
    env: dict = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> None:
        logfile = (self.workdir / f"{self.name}.log").open("wb")
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.workdir,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,  # its own process group: MLServer forks workers we must stop too
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/v2/health/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"{self.name} not ready within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session made the child its group leader
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=5)

    def log_tail(self) -> str:
        path = self.workdir / f"{self.name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-30:]) if path.exists() else ""


def ensure_mlserver_venv() -> Path:
    python = MLSERVER_VENV / "bin" / "python"
    stamp = MLSERVER_VENV / ".spamops-bench-ok"
    import joblib
    import numpy
    import sklearn

    pins = [
        "mlserver==1.7.1",
        "mlserver-sklearn==1.7.1",
        "uvloop==0.21.0",
        "httptools",
        f"scikit-learn=={sklearn.__version__}",
        f"numpy=={numpy.__version__}",
        f"joblib=={joblib.__version__}",
    ]
    if stamp.exists() and stamp.read_text() == "\n".join(pins):
        return python
    log(f"creating the MLServer virtualenv in {MLSERVER_VENV} (once) ...")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(MLSERVER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins], check=True)
    stamp.write_text("\n".join(pins))
    return python


def prepare_model(args: argparse.Namespace, work: Path) -> Path:
    if args.model_dir:
        return Path(args.model_dir).resolve()
    from spamops.cli import main as spamops
    from spamops.registry.store import open_store
    from spamops.registry.versions import Registry

    store = work / "store"
    train = ["train", "--store", str(store), "--quiet"] + (["--data", *args.data] if args.data else [])
    with contextlib.redirect_stdout(sys.stderr):
        code = spamops(train)
    if code != 0:
        raise SystemExit("training the benchmark model failed (its gate refused it?)")
    registry = Registry(open_store(str(store)), "spam")
    version = registry.production().version
    return registry.pull(version, work / "model")


def mlserver_repo(model_dir: Path, work: Path, port: int) -> Path:
    repo = work / "mlserver"
    (repo / "spam").mkdir(parents=True)
    shutil.copy(model_dir / MODEL_FILE, repo / "spam" / MODEL_FILE)
    card = parse_card((model_dir / CARD_FILE).read_bytes(), str(model_dir / CARD_FILE))
    (repo / "spam" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "spam",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": f"./{MODEL_FILE}", "version": card.version},
            }
        )
    )
    (repo / "settings.json").write_text(
        json.dumps({"host": HOST, "http_port": port, "grpc_port": free_port(), "metrics_port": free_port()})
    )
    return repo


def v2_body(rows: list[list[int]], mlserver: bool) -> str:
    doc: dict = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [len(rows), 2], "data": rows}]}
    if mlserver:
        doc["outputs"] = [{"name": "predict_proba"}]
    return json.dumps(doc, separators=(",", ":"))


def run_wrk(url: str, body: str, concurrency: int, duration: int, work: Path) -> dict:
    script = work / f"body-{abs(hash(body))}.lua"
    script.write_text(LUA.format(body=body))
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    res = json.loads(line.removeprefix("BENCH_JSON "))
    if res["non2xx"] or res["socket_errors"]:
        raise SystemExit(
            f"{url}: {res['non2xx']} non-2xx answers, {res['socket_errors']} socket errors at c={concurrency}"
        )
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    return res


def in_process(model_dir: Path) -> dict:
    import numpy as np

    from spamops.serving.artifact import load_artifact
    from spamops.serving.lookup import DecisionTable, grid_bounds
    from spamops.serving.settings import ServingSettings

    artifact = load_artifact(model_dir)
    row = np.array([[38.0, 2.0]])
    n = 2000
    model_call = timeit.timeit(lambda: artifact.pipeline.predict_proba(row), number=n) / n
    settings = ServingSettings()  # the bounds the predictor uses by default
    bounds = grid_bounds(
        artifact.feature_statistics,
        settings.table_max_length,
        settings.table_max_punct,
        settings.table_max_cells,
    )
    table = DecisionTable(artifact.pipeline, *bounds)
    lookup = timeit.timeit(lambda: table.score([(38, 2)]), number=n * 10) / (n * 10)
    batch = np.array(random_rows(BATCH, artifact.feature_statistics), dtype=float)
    model_batch = timeit.timeit(lambda: artifact.pipeline.predict_proba(batch), number=200) / 200
    return {"model_call_s": model_call, "lookup_s": lookup, "model_batch_s": model_batch, "table_cells": table.cells}


def random_rows(n: int, stats: dict[str, FeatureStatistics]) -> list[list[int]]:
    rng = random.Random(4)
    top_l, top_p = int(stats["length"].max), int(stats["punct"].max)
    return [[rng.randint(1, top_l), rng.randint(0, top_p)] for _ in range(n)]


def fmt(value: float, kind: str) -> str:
    if kind == "ms":
        return f"{value / 1000:.2f}"
    return f"{value:,.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians are reported)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of discarded load per system and scenario")
    parser.add_argument("--data", nargs="+", help="train the benchmark model on these CSVs (default: bundled demo)")
    parser.add_argument("--model-dir", help="use this model dir instead of training one")
    parser.add_argument("--skip-mlserver", action="store_true", help="only ours and the ceiling")
    parser.add_argument("--json", metavar="FILE", help="also write the raw medians as JSON")
    args = parser.parse_args()
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install -y wrk")

    work = Path(tempfile.mkdtemp(prefix="spamops-bench-"))
    servers: list[Server] = []
    try:
        model_dir = prepare_model(args, work)
        card = parse_card((model_dir / CARD_FILE).read_bytes(), str(model_dir / CARD_FILE))
        stats = card.feature_statistics
        log(f"model {card.version}: params {card.params}, {card.training.train_rows} training rows")

        ours_port, ceiling_port = free_port(), free_port()
        common = ["--enable_grpc", "false"]
        servers.append(
            Server(
                "ours",
                [
                    sys.executable,
                    "-m",
                    "spamops.serving",
                    "--model_dir",
                    str(model_dir),
                    "--http_port",
                    str(ours_port),
                    *common,
                ],
                work,
                ours_port,
            )
        )
        (work / "constant_server.py").write_text(CONSTANT_SERVER)
        servers.append(
            Server(
                "ceiling",
                [sys.executable, str(work / "constant_server.py"), "--http_port", str(ceiling_port), *common],
                work,
                ceiling_port,
            )
        )
        if not args.skip_mlserver:
            ml_python = ensure_mlserver_venv()
            ml_port = free_port()
            repo = mlserver_repo(model_dir, work, ml_port)
            servers.append(
                Server("mlserver", [str(ml_python), "-m", "mlserver.cli.main", "start", str(repo)], work, ml_port)
            )
        for s in servers:
            log(f"starting {s.name} on {HOST}:{s.port} ...")
            s.start()
        order = [s for name in ("ours", "mlserver", "ceiling") for s in servers if s.name == name]

        single = [[38, 2]]
        batch = random_rows(BATCH, stats)
        scenarios = [(f"single c={c}", single, c) for c in CONCURRENCIES] + [
            (f"batch {BATCH} c={BATCH_CONCURRENCY}", batch, BATCH_CONCURRENCY)
        ]
        results: dict[tuple[str, str], list[dict]] = {}
        for _name, rows, conc in scenarios:  # warm-up, discarded
            for s in order:
                url = f"http://{HOST}:{s.port}/v2/models/spam/infer"
                run_wrk(url, v2_body(rows, s.name == "mlserver"), conc, args.warmup, work)
        for rnd in range(1, args.rounds + 1):
            for name, rows, conc in scenarios:
                for s in order:  # A B C A B C ...: alternating, so drift hits everyone
                    url = f"http://{HOST}:{s.port}/v2/models/spam/infer"
                    res = run_wrk(url, v2_body(rows, s.name == "mlserver"), conc, args.duration, work)
                    results.setdefault((name, s.name), []).append(res)
                    log(
                        f"round {rnd} {name:>16} {s.name:>9}: {res['rps']:8.0f} req/s  p50 {res['p50_us'] / 1000:6.2f} ms"
                        f"  p99 {res['p99_us'] / 1000:7.2f} ms"
                    )
        for s in servers:
            s.stop()

        inproc = in_process(model_dir)
        medians = {
            key: {
                **{m: statistics.median(r[m] for r in runs) for m in ("rps", "p50_us", "p99_us")},
                # The tail is what background load disturbs most; the quietest round shows the undisturbed one.
                "p99_min_us": min(r["p99_us"] for r in runs),
            }
            for key, runs in results.items()
        }
        print_table(scenarios, medians, inproc, args, card)
        if args.json:
            Path(args.json).write_text(
                json.dumps(
                    {"medians": {f"{k[0]}|{k[1]}": v for k, v in medians.items()}, "in_process": inproc}, indent=2
                )
            )
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def target_checks(scenarios, medians) -> list[str]:
    """The issue's targets, each with its measured ratio and whether it was met in this run."""

    def ratio(name: str, metric: str, other: str) -> float:
        return medians[(name, "ours")][metric] / medians[(name, other)][metric]

    checks = []
    for name, rows, conc in scenarios:
        if len(rows) > 1:
            checks.append((f"{name}: instances/s >= 3x MLServer", ratio(name, "rps", "mlserver"), 3.0, True))
            checks.append((f"{name}: instances/s >= 0.8x ceiling", ratio(name, "rps", "ceiling"), 0.8, True))
        elif conc in (8, 32):
            checks.append((f"{name}: req/s >= 3x MLServer", ratio(name, "rps", "mlserver"), 3.0, True))
            checks.append(
                (f"{name}: p99 <= 1/3 of MLServer's (median)", ratio(name, "p99_us", "mlserver"), 1 / 3, False)
            )
            checks.append(
                (f"{name}: p99 <= 1/3 of MLServer's (quietest)", ratio(name, "p99_min_us", "mlserver"), 1 / 3, False)
            )
            checks.append((f"{name}: req/s >= 0.8x ceiling", ratio(name, "rps", "ceiling"), 0.8, True))
    return [
        f"{'met    ' if (value >= bound if at_least else value <= bound) else 'NOT met'} {label}: {value:.2f}x"
        for label, value, bound, at_least in checks
    ]


def print_table(scenarios, medians, inproc, args, card) -> None:
    have_ml = not args.skip_mlserver
    head = ["scenario", "metric", "ours", "MLServer", "ceiling", "ours/MLServer", "ours/ceiling"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows, _ in scenarios:
        per = len(rows)
        for metric, label, kind in (
            ("rps", "inst/s" if per > 1 else "req/s", "n"),
            ("p50_us", "p50 ms", "ms"),
            ("p99_us", "p99 ms", "ms"),
            ("p99_min_us", "p99 ms, quietest round", "ms"),
        ):
            scale = per if metric == "rps" else 1
            ours = medians[(name, "ours")][metric] * scale
            ceiling = medians[(name, "ceiling")][metric] * scale
            ml = medians[(name, "mlserver")][metric] * scale if have_ml else None
            cells = [
                name,
                label,
                fmt(ours, kind),
                fmt(ml, kind) if ml is not None else "-",
                fmt(ceiling, kind),
                f"{ours / ml:.2f}x" if ml else "-",
                f"{ours / ceiling:.2f}x",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    print()
    print(
        f"medians of {args.rounds} alternating rounds, {args.duration:g} s each; wrk -t1 on loopback, "
        f"V2 FP32 features; model {card.params}"
    )
    print("\n".join(lines))
    if have_ml:
        print()
        print("targets (from the issue):")
        for check in target_checks(scenarios, medians):
            print(f"  {check}")
    print()
    print(
        f"in-process: pipeline predict_proba, 1 row: {inproc['model_call_s'] * 1e3:.3f} ms "
        f"({1 / inproc['model_call_s']:,.0f} calls/s); {BATCH} rows: {inproc['model_batch_s'] * 1e3:.3f} ms; "
        f"decision-table lookup, 1 row: {inproc['lookup_s'] * 1e6:.2f} us "
        f"({1 / inproc['lookup_s']:,.0f} calls/s; {inproc['table_cells']} cells)"
    )


if __name__ == "__main__":
    sys.exit(main())
