#!/usr/bin/env python3
"""Serving benchmark: our predictor against MLServer and against the framework's own ceiling.

Not a test: it prints tables.  Every number is a median (with [min-max]) of
alternating runs measured here, in this run, on this machine (ours, MLServer,
ceiling, ours, MLServer, ceiling, ... for each scenario), so background load
hits all three alike and the ratios are what to read, not the absolute rates.

Systems, all bound to 127.0.0.1, each at its best:

* ours: ``python -m spamops.serving --bind 127.0.0.1`` serving the model.
* MLServer 1.7.1 + mlserver-sklearn serving the same ``model.joblib``, in its
  own virtualenv (its pins clash with kserve's) created here under
  ``$SPAMOPS_CACHE`` (default ``~/.cache/spamops``), with
  ``parallel_workers: 0`` (inference in the server process; its default of 1
  sends every request to a second process over IPC), ``debug: false`` (its
  default logs a line per request), httptools (else uvicorn falls back to the
  slower h11 parser) and uvloop 0.21.
* ceiling: the same KServe server as ours (same entrypoint plumbing, same
  flags) with a model that returns a constant: the framework's own limit.

Pinning: on a machine with two or more CPUs the server runs on one CPU and
``wrk`` on another (``os.sched_setaffinity``), so the load generator does not
compete with the server it measures.

Load: ``wrk`` (apt-get install wrk) with a Lua body, one thread, on loopback.
Every system gets the same Open Inference Protocol request (MLServer speaks
only V2): FP32 ``[1, 2]`` features for single-instance runs, FP32 ``[100, 2]``
for batch runs; MLServer is asked for ``predict_proba`` so each system makes
one model call per request.  A run with any non-2xx answer aborts the bench.

Three more measurements:

* workers: ours with ``--workers 1`` and ``--workers 2`` at c=32, unpinned
  (two workers need both CPUs, so ``wrk`` shares them), alternating, with the
  CPU time of the client and of the server per request and the memory of each
  worker (RSS, and PSS/USS which count the copy-on-write pages they share);
* cold start: process start to ``/v2/health/ready`` answering 200, for the
  benchmark model and for a model fitted on ``--cold-start-rows`` rows
  resampled from the same data (fixed parameters), with the artifact
  verification and decision-table build times from the predictor's log;
* in process: one ``predict_proba`` call on one row (the model call alone) and
  our decision-table lookup.

With ``--inference-log`` only one comparison runs instead: ours with the inference log
off and on (written to a local store directory, default batch and flush settings),
pinned, alternating rounds of single c=8 and batch 100 c=8, printing req/s and p99 of
both and the on/off ratios.

Usage: python scripts/bench_serve.py [--rounds 5] [--duration 10] [--data CSV ...] [--model-dir DIR]
       python scripts/bench_serve.py --inference-log [--rounds 5] [--duration 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass, field
from pathlib import Path

from spamops.records import CARD_FILE, MODEL_FILE, FeatureStatistics, ModelCard, parse_card
from spamops.serving.inference_log import DEFAULT_BATCH_EVENTS, DEFAULT_FLUSH_SECONDS
from spamops_dev import processes
from spamops_dev.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("SPAMOPS_CACHE", Path.home() / ".cache" / "spamops"))
MLSERVER_VENV = CACHE / "bench-mlserver-venv"
HOST = "127.0.0.1"
CONCURRENCIES = (1, 8, 32)
BATCH = 100
BATCH_CONCURRENCY = 8
WORKERS_CONCURRENCY = 32
MLSERVER_SETTINGS = {"parallel_workers": 0, "debug": False}  # see the module docstring
_CPUS = sorted(os.sched_getaffinity(0))
# (server CPUs, client CPUs) when there are at least two, else no pinning
PINNING: tuple[set[int], set[int]] | None = ({_CPUS[0]}, {_CPUS[1]}) if len(_CPUS) >= 2 else None
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

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
from spamops.serving import server
from spamops.serving.__main__ import build_parser, configure_logging, settings_from

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
predictor = server.PredictorServer(args)
listeners = server.bind(args.bind, predictor.http_port, args.workers, args.grpc_port if args.enable_grpc else None)
sys.exit(server.serve(predictor, ConstantModel(args.model_name), listeners, settings_from(args)))
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (our forked workers, MLServer's children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def memory_mib(pid: int) -> dict[str, float]:
    """RSS, PSS (shared pages split among sharers) and USS (private pages) of one process, in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0]) / 1024
    return {
        "rss": values["Rss"],
        "pss": values["Pss"],
        "uss": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0),
    }


@dataclass
class Server:
    name: str
    cmd: list[str]
    workdir: Path
    port: int
    env: dict = field(default_factory=dict)
    cpus: set[int] | None = None
    proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> float:
        """Start and wait until ready; the seconds from process start to the first 200 on readiness."""
        logfile = (self.workdir / f"{self.name}.log").open("wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.workdir,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,  # its own process group: forked workers must be stopped too
        )
        if self.cpus:
            os.sched_setaffinity(self.proc.pid, self.cpus)  # inherited by its threads and children
        ready = f"http://{HOST}:{self.port}/v2/health/ready"
        try:
            processes.wait_ready(
                self.name, self.proc, lambda: processes.http_ok(ready), timeout, self.workdir / f"{self.name}.log", 0.02
            )
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise SystemExit(str(exc)) from None
        return time.perf_counter() - started

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

    def log_text(self) -> str:
        path = self.workdir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self) -> str:
        return "\n".join(self.log_text().splitlines()[-30:])


def mlserver_pins() -> list[str]:
    import joblib
    import numpy
    import sklearn

    return [
        "mlserver==1.7.1",
        "mlserver-sklearn==1.7.1",
        "uvloop==0.21.0",
        "httptools",
        f"scikit-learn=={sklearn.__version__}",
        f"numpy=={numpy.__version__}",
        f"joblib=={joblib.__version__}",
    ]


def ensure_mlserver_venv() -> Path:
    python = MLSERVER_VENV / "bin" / "python"
    stamp = MLSERVER_VENV / ".spamops-bench-ok"
    pins = mlserver_pins()
    if stamp.exists() and stamp.read_text() == "\n".join(pins):
        return python
    log(f"creating the MLServer virtualenv in {MLSERVER_VENV} (once) ...")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(MLSERVER_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins], check=True)
    stamp.write_text("\n".join(pins))
    return python


def mlserver_setup(python: Path) -> str:
    """What the MLServer peer runs with, checked in its own virtualenv rather than assumed."""
    probe = "import httptools, uvloop, mlserver; print(mlserver.__version__, uvloop.__version__)"
    versions = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    return (
        f"MLServer {versions[0]}: parallel_workers=0 (inference in the server process), debug=false "
        f"(no per-request log line), http parser httptools, event loop uvloop {versions[1]}"
    )


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


def resampled_model(data: list[str] | None, rows: int, base: ModelCard, dest: Path) -> Path:
    """A fitted pipeline on ``rows`` rows drawn (seeded, with replacement) from ``data``, with a card serving accepts.

    The training-scale question is how the predictor starts with a large fitted
    KNN (its table is scored against every stored row), not which parameters a
    grid search would pick: the benchmark model's parameters are reused, and its card
    (``base``) is copied with this model's version, checksums, size and statistics.
    """
    import hashlib

    import joblib
    import numpy as np

    from spamops.records import dump_record
    from spamops.training.card import feature_statistics
    from spamops.training.data import load_dataset
    from spamops.training.search import build_pipeline

    if data:
        dataset = load_dataset(data)
    else:
        from importlib.resources import files

        dataset = load_dataset(
            [str(p) for p in files("spamops.training").joinpath("demo").iterdir() if p.name.endswith(".csv")]
        )
    pick = np.random.default_rng(20261201).integers(0, len(dataset.y), rows)
    X, y = dataset.X[pick], dataset.y[pick]
    params = base.params
    pipeline = build_pipeline().set_params(**{f"knn__{k}": v for k, v in params.items()})
    started = time.perf_counter()
    pipeline.fit(X, y)
    fit_seconds = time.perf_counter() - started
    dest.mkdir(parents=True)
    joblib.dump(pipeline, dest / MODEL_FILE)
    digest = hashlib.sha256((dest / MODEL_FILE).read_bytes()).hexdigest()
    card = base.model_copy(
        update={
            "version": f"resampled_{rows}_rows",
            "sha256": digest,
            "files": {MODEL_FILE: digest},
            "training": base.training.model_copy(update={"train_rows": rows}),
            "feature_statistics": {
                name: FeatureStatistics.model_validate(stats) for name, stats in feature_statistics(X).items()
            },
        }
    )
    (dest / CARD_FILE).write_bytes(dump_record(card))
    log(f"fitted the {rows:,}-row model in {fit_seconds:.1f}s ({(dest / MODEL_FILE).stat().st_size / 2**20:.0f} MiB)")
    return dest


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
        json.dumps(
            {
                "host": HOST,
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                **MLSERVER_SETTINGS,
            }
        )
    )
    return repo


def v2_body(rows: list[list[int]], mlserver: bool) -> str:
    doc: dict = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [len(rows), 2], "data": rows}]}
    if mlserver:
        doc["outputs"] = [{"name": "predict_proba"}]
    return json.dumps(doc, separators=(",", ":"))


def run_wrk(url: str, body: str, concurrency: int, duration: int, work: Path, cpus: set[int] | None = None) -> dict:
    script = work / f"body-{abs(hash(body))}.lua"
    script.write_text(LUA.format(body=body))
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,  # noqa: PLW1509 - only sets affinity
    ).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    res = json.loads(line.removeprefix("BENCH_JSON "))
    if res["non2xx"] or res["socket_errors"]:
        raise SystemExit(
            f"{url}: {res['non2xx']} non-2xx answers, {res['socket_errors']} socket errors at c={concurrency}"
        )
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["client_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return res


def in_process(model_dir: Path, stats: dict[str, FeatureStatistics]) -> dict:
    """Per-call costs without HTTP (model call, table lookup, 100-row model batch); run before the rounds."""
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
    batch = np.array(random_rows(BATCH, stats), dtype=float)
    model_batch = timeit.timeit(lambda: artifact.pipeline.predict_proba(batch), number=200) / 200
    return {"model_call_s": model_call, "lookup_s": lookup, "model_batch_s": model_batch, "table_cells": table.cells}


def random_rows(n: int, stats: dict[str, FeatureStatistics]) -> list[list[int]]:
    rng = random.Random(4)
    top_l, top_p = int(stats["length"].max), int(stats["punct"].max)
    return [[rng.randint(1, top_l), rng.randint(0, top_p)] for _ in range(n)]


def fmt(value: float, kind: str) -> str:
    if kind == "ms":
        return f"{value / 1000:.2f}"
    if kind == "s":
        return f"{value:.2f}"
    return f"{value:,.0f}"


def spread(values: list[float], kind: str, scale: float = 1) -> str:
    """``median [min-max]`` of ``values``."""
    scaled = [v * scale for v in values]
    return f"{fmt(statistics.median(scaled), kind)} [{fmt(min(scaled), kind)}-{fmt(max(scaled), kind)}]"


def our_server(name: str, model_dir: Path, work: Path, *extra: str, cpus: set[int] | None = None) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "spamops.serving", "--model_dir", str(model_dir), "--http_port", str(port)]
    return Server(name, [*cmd, "--bind", HOST, "--enable_grpc", "false", *extra], work, port, cpus=cpus)


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown CPU",
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{len(_CPUS)} CPUs ({model}); load average at start {load}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (medians are reported)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of discarded load per system and scenario")
    parser.add_argument("--data", nargs="+", help="train the benchmark model on these CSVs (default: bundled demo)")
    parser.add_argument("--model-dir", help="use this model dir instead of training one")
    parser.add_argument("--skip-mlserver", action="store_true", help="only ours and the ceiling")
    parser.add_argument("--skip-workers", action="store_true", help="skip the 1 vs 2 workers comparison")
    parser.add_argument(
        "--cold-start-rows", type=int, default=1_000_000, help="rows of the large cold-start model (0: skip it)"
    )
    parser.add_argument("--cold-starts", type=int, default=3, help="starts per model for the cold-start times")
    parser.add_argument("--json", metavar="FILE", help="also write the raw results as JSON")
    parser.add_argument(
        "--inference-log", action="store_true", help="only compare ours with the inference log off and on"
    )
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
        print(f"# spamops serving benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"machine: {machine()}")
        server_cpus, client_cpus = PINNING or (None, None)
        print(
            f"pinning: server on CPU {sorted(server_cpus)}, wrk on CPU {sorted(client_cpus)}"
            if PINNING
            else "pinning: none (fewer than 2 CPUs)"
        )
        if args.inference_log:
            report = compare_inference_log(args, model_dir, stats, work, servers)
            if args.json:
                Path(args.json).write_text(json.dumps(report, indent=2, default=str))
            return 0
        inproc = in_process(model_dir, stats)  # seconds, and a failure here costs no rounds
        results = compare_peers(args, model_dir, stats, work, servers)
        medians = {key: summarise(runs) for key, runs in results["runs"].items()}
        print_table(results["scenarios"], medians, inproc, args, card, results.get("mlserver_setup"))
        report: dict = {"medians": {f"{k[0]}|{k[1]}": v for k, v in medians.items()}, "in_process": inproc}
        if not args.skip_workers:
            report["workers"] = compare_workers(args, model_dir, work, servers)
        report["cold_start"] = cold_starts(args, model_dir, card, work)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def compare_peers(args: argparse.Namespace, model_dir: Path, stats: dict, work: Path, servers: list[Server]) -> dict:
    """Ours, MLServer and the ceiling, pinned, in alternating rounds of every scenario."""
    server_cpus, client_cpus = PINNING or (None, None)
    peers = [our_server("ours", model_dir, work, cpus=server_cpus)]
    (work / "constant_server.py").write_text(CONSTANT_SERVER)
    ceiling_port = free_port()
    peers.append(
        Server(
            "ceiling",
            [sys.executable, str(work / "constant_server.py"), "--http_port", str(ceiling_port)]
            + ["--bind", HOST, "--enable_grpc", "false"],
            work,
            ceiling_port,
            cpus=server_cpus,
        )
    )
    setup = None
    if not args.skip_mlserver:
        ml_python = ensure_mlserver_venv()
        setup = mlserver_setup(ml_python)
        ml_port = free_port()
        repo = mlserver_repo(model_dir, work, ml_port)
        peers.append(
            Server(
                "mlserver",
                [str(ml_python), "-m", "mlserver.cli.main", "start", str(repo)],
                work,
                ml_port,
                cpus=server_cpus,
            )
        )
    servers.extend(peers)
    for s in peers:
        log(f"starting {s.name} on {HOST}:{s.port} ...")
        s.start()
    order = [s for name in ("ours", "mlserver", "ceiling") for s in peers if s.name == name]
    single = [[38, 2]]
    batch = random_rows(BATCH, stats)
    scenarios = [(f"single c={c}", single, c) for c in CONCURRENCIES] + [
        (f"batch {BATCH} c={BATCH_CONCURRENCY}", batch, BATCH_CONCURRENCY)
    ]
    runs: dict[tuple[str, str], list[dict]] = {}
    for _name, rows, conc in scenarios:  # warm-up, discarded
        for s in order:
            url = f"http://{HOST}:{s.port}/v2/models/spam/infer"
            run_wrk(url, v2_body(rows, s.name == "mlserver"), conc, args.warmup, work, client_cpus)
    for rnd in range(1, args.rounds + 1):
        for name, rows, conc in scenarios:
            for s in order:  # A B C A B C ...: alternating, so drift hits everyone
                url = f"http://{HOST}:{s.port}/v2/models/spam/infer"
                pids = process_tree(s.proc.pid)
                before = cpu_seconds(pids)
                res = run_wrk(url, v2_body(rows, s.name == "mlserver"), conc, args.duration, work, client_cpus)
                # CPU time per request: what the server spends, whatever share of the CPU it was given
                res["server_cpu_us"] = (cpu_seconds(pids) - before) / res["requests"] * 1e6
                runs.setdefault((name, s.name), []).append(res)
                log(
                    f"round {rnd} {name:>16} {s.name:>9}: {res['rps']:8.0f} req/s  p50 {res['p50_us'] / 1000:6.2f} ms"
                    f"  p99 {res['p99_us'] / 1000:7.2f} ms  load {os.getloadavg()[0]:.1f}"
                )
    for s in peers:
        s.stop()
    return {"scenarios": scenarios, "runs": runs, "mlserver_setup": setup}


def summarise(runs: list[dict]) -> dict:
    return {
        **{m: statistics.median(r[m] for r in runs) for m in ("rps", "p50_us", "p99_us", "server_cpu_us")},
        **{f"{m}_all": [r[m] for r in runs] for m in ("rps", "p50_us", "p99_us", "server_cpu_us")},
        # The tail is what background load disturbs most; the quietest round shows the undisturbed one.
        "p99_min_us": min(r["p99_us"] for r in runs),
    }


def compare_workers(args: argparse.Namespace, model_dir: Path, work: Path, servers: list[Server]) -> dict:
    """``--workers 1`` against ``--workers 2`` at c=32, unpinned, alternating; CPU per request and memory."""
    pair = [our_server(f"workers-{n}", model_dir, work, "--workers", str(n)) for n in (1, 2)]
    servers.extend(pair)
    for s in pair:
        s.start()
    body = v2_body([[38, 2]], False)
    runs: dict[str, list[dict]] = {s.name: [] for s in pair}
    for s in pair:
        run_wrk(f"http://{HOST}:{s.port}/v2/models/spam/infer", body, WORKERS_CONCURRENCY, args.warmup, work)
    for rnd in range(1, args.rounds + 1):
        for s in pair:
            pids = process_tree(s.proc.pid)
            before = cpu_seconds(pids)
            res = run_wrk(
                f"http://{HOST}:{s.port}/v2/models/spam/infer", body, WORKERS_CONCURRENCY, args.duration, work
            )
            res["server_cpu_s"] = cpu_seconds(pids) - before
            runs[s.name].append(res)
            log(f"round {rnd} {s.name}: {res['rps']:8.0f} req/s  load {os.getloadavg()[0]:.1f}")
    memory = {}
    for s in pair:
        tree = process_tree(s.proc.pid)
        workers = tree[1:] if len(tree) > 1 else tree  # with --workers 2 the parent only supervises
        memory[s.name] = {"workers": [memory_mib(pid) for pid in workers], "parent": memory_mib(tree[0])}
        s.stop()
    one, two = (statistics.median(r["rps"] for r in runs[s.name]) for s in pair)
    print()
    print(
        f"workers: ours --workers 1 vs 2, single c={WORKERS_CONCURRENCY}, {args.rounds} alternating rounds x "
        f"{args.duration} s, unpinned (wrk -t1 shares the {len(_CPUS)} CPUs)"
    )
    print("| workers | req/s median [min-max] | client CPU per request | server CPU per request | CPUs busy |")
    print("|---|---|---|---|---|")
    for s in pair:
        rs = runs[s.name]
        client = statistics.median(r["client_cpu_s"] / r["requests"] * 1e6 for r in rs)
        server = statistics.median(r["server_cpu_s"] / r["requests"] * 1e6 for r in rs)
        busy = statistics.median((r["client_cpu_s"] + r["server_cpu_s"]) / (r["duration_us"] / 1e6) for r in rs)
        print(
            f"| {s.name.split('-')[1]} | {spread([r['rps'] for r in rs], 'n')} | {client:.0f} us | {server:.0f} us "
            f"| {busy:.2f} |"
        )
    print(f"ratio 2 workers / 1 worker: {two / one:.2f}x")
    for name, mem in memory.items():
        per = "; ".join(
            f"RSS {m['rss']:.0f} MiB, PSS {m['pss']:.0f} MiB, USS {m['uss']:.0f} MiB" for m in mem["workers"]
        )
        print(f"memory {name}: {per}" + (f" (supervisor: RSS {mem['parent']['rss']:.0f} MiB)" if "2" in name else ""))
    return {"runs": runs, "memory": memory, "ratio": two / one}


def compare_inference_log(
    args: argparse.Namespace, model_dir: Path, stats: dict, work: Path, servers: list[Server]
) -> dict:
    """Ours with the inference log off and on, pinned, alternating; req/s and p99 and their ratios."""
    server_cpus, client_cpus = PINNING or (None, None)
    log_dir = work / "inference-log"
    pair = [
        our_server("log-off", model_dir, work, cpus=server_cpus),
        our_server("log-on", model_dir, work, "--inference-log-uri", str(log_dir), cpus=server_cpus),
    ]
    servers.extend(pair)
    for s in pair:
        s.start()
    scenarios = [("single c=8", [[38, 2]], 8), (f"batch {BATCH} c={BATCH_CONCURRENCY}", random_rows(BATCH, stats), 8)]
    runs: dict[tuple[str, str], list[dict]] = {}
    for _name, rows, conc in scenarios:
        for s in pair:
            run_wrk(f"http://{HOST}:{s.port}/v2/models/spam/infer", v2_body(rows, False), conc, args.warmup, work)
    for rnd in range(1, args.rounds + 1):
        for name, rows, conc in scenarios:
            for s in pair:
                url = f"http://{HOST}:{s.port}/v2/models/spam/infer"
                pids = process_tree(s.proc.pid)
                before = cpu_seconds(pids)
                res = run_wrk(url, v2_body(rows, False), conc, args.duration, work, client_cpus)
                res["server_cpu_us"] = (cpu_seconds(pids) - before) / res["requests"] * 1e6  # writer thread included
                runs.setdefault((name, s.name), []).append(res)
                log(f"round {rnd} {name} {s.name}: {res['rps']:8.0f} req/s  p99 {res['p99_us']} us")
    for s in pair:
        s.stop()  # the log-on server flushes what it still holds
    written = sum(len(p.read_bytes().splitlines()) for p in log_dir.rglob("*.jsonl")) // 2
    sent = sum(r["requests"] for (_, n), rs in runs.items() if n == "log-on" for r in rs)
    print()
    print(
        f"inference log: ours off vs on (local store, default batches: {DEFAULT_BATCH_EVENTS} events / "
        f"{DEFAULT_FLUSH_SECONDS:g} s), "
        f"{args.rounds} alternating rounds x {args.duration} s, pinned"
    )
    print(
        "| scenario | req/s off | req/s on | ratio on/off | p99 ms off | p99 ms on | ratio on/off "
        "| server CPU us/request off | on | ratio on/off |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    ratios = {}
    for name, _rows, _conc in scenarios:
        off, on = runs[(name, "log-off")], runs[(name, "log-on")]
        rps = statistics.median(r["rps"] for r in on) / statistics.median(r["rps"] for r in off)
        p99 = statistics.median(r["p99_us"] for r in on) / statistics.median(r["p99_us"] for r in off)
        cpu = statistics.median(r["server_cpu_us"] for r in on) / statistics.median(r["server_cpu_us"] for r in off)
        ratios[name] = {"rps": rps, "p99": p99, "server_cpu": cpu}
        print(
            f"| {name} | {spread([r['rps'] for r in off], 'n')} | {spread([r['rps'] for r in on], 'n')} | {rps:.2f}x "
            f"| {spread([r['p99_us'] for r in off], 'ms')} | {spread([r['p99_us'] for r in on], 'ms')} | {p99:.2f}x "
            f"| {spread([r['server_cpu_us'] for r in off], 'n')} | {spread([r['server_cpu_us'] for r in on], 'n')} "
            f"| {cpu:.2f}x |"
        )
    print(f"requests logged: {written} of {sent} measured (plus warm-up) sent to log-on")
    return {"runs": {f"{k[0]}|{k[1]}": v for k, v in runs.items()}, "ratios": ratios, "logged_requests": written}


def cold_starts(args: argparse.Namespace, model_dir: Path, card: ModelCard, work: Path) -> dict:
    """Process start to ready, for the benchmark model and a large resampled one, with the load steps broken out."""
    models = [(f"{card.training.train_rows:,}-row model", model_dir)]
    if args.cold_start_rows:
        big = resampled_model(args.data, args.cold_start_rows, card, work / "big-model")
        models.append((f"{args.cold_start_rows:,}-row model", big))
    pattern = re.compile(r"verified in ([0-9.]+)s.*built in ([0-9.]+)s")
    print()
    print(f"cold start: process start to /v2/health/ready = 200, {args.cold_starts} starts each, median [min-max]")
    print("| model | ready s | artifact verified + unpickled s | decision table s | table cells |")
    print("|---|---|---|---|---|")
    out = {}
    for label, directory in models:
        ready, verify, build, cells = [], [], [], None
        for i in range(args.cold_starts):
            server = our_server(f"cold-{len(out)}-{i}", directory, work)
            ready.append(server.start())
            match = pattern.search(server.log_text())
            server.stop()
            if match:
                verify.append(float(match.group(1)))
                build.append(float(match.group(2)))
            cells_match = re.search(r"\(([0-9]+) cells\)", server.log_text())
            cells = int(cells_match.group(1)) if cells_match else None
        print(
            f"| {label} | {spread(ready, 's')} | {spread(verify, 's') if verify else '-'} "
            f"| {spread(build, 's') if build else '-'} | {cells:,} |"
        )
        out[label] = {"ready_s": ready, "verify_s": verify, "table_s": build, "cells": cells}
    return out


def target_checks(scenarios, medians) -> list[str]:
    """The issues' targets, each with its measured ratio of medians and whether it was met in this run."""

    def ratio(name: str, metric: str, other: str) -> float:
        return medians[(name, "ours")][metric] / medians[(name, other)][metric]

    checks = []
    for name, rows, conc in scenarios:
        if len(rows) > 1:
            checks.append((f"{name}: instances/s >= 3x MLServer", ratio(name, "rps", "mlserver"), 3.0, True))
            checks.append((f"{name}: instances/s >= 0.95x ceiling", ratio(name, "rps", "ceiling"), 0.95, True))
            checks.append(
                (
                    f"{name}: CPU per request <= 1/0.95 of ceiling's",
                    ratio(name, "server_cpu_us", "ceiling"),
                    1 / 0.95,
                    False,
                )
            )
        elif conc in (8, 32):
            checks.append((f"{name}: req/s >= 3x MLServer", ratio(name, "rps", "mlserver"), 3.0, True))
            checks.append((f"{name}: p99 <= 1/3 of MLServer's", ratio(name, "p99_us", "mlserver"), 1 / 3, False))
            checks.append((f"{name}: req/s >= 0.95x ceiling", ratio(name, "rps", "ceiling"), 0.95, True))
            checks.append(
                (
                    f"{name}: CPU per request <= 1/0.95 of ceiling's",
                    ratio(name, "server_cpu_us", "ceiling"),
                    1 / 0.95,
                    False,
                )
            )
    return [
        f"{'met    ' if (value >= bound if at_least else value <= bound) else 'NOT met'} {label}: {value:.2f}x"
        for label, value, bound, at_least in checks
    ]


def print_table(scenarios, medians, inproc, args, card, mlserver_setup: str | None) -> None:
    have_ml = not args.skip_mlserver
    head = ["scenario", "metric", "ours", "MLServer", "ceiling", "ours/MLServer", "ours/ceiling"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, rows, _ in scenarios:
        per = len(rows)
        for metric, label, kind in (
            ("rps", "inst/s" if per > 1 else "req/s", "n"),
            ("p50_us", "p50 ms", "ms"),
            ("p99_us", "p99 ms", "ms"),
            ("server_cpu_us", "server CPU us/request", "n"),
        ):
            scale = per if metric == "rps" else 1
            ours = medians[(name, "ours")]
            ceiling = medians[(name, "ceiling")]
            ml = medians[(name, "mlserver")] if have_ml else None
            cells = [
                name,
                label,
                spread(ours[f"{metric}_all"], kind, scale),
                spread(ml[f"{metric}_all"], kind, scale) if ml else "-",
                spread(ceiling[f"{metric}_all"], kind, scale),
                f"{ours[metric] / ml[metric]:.2f}x" if ml else "-",
                f"{ours[metric] / ceiling[metric]:.2f}x",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    print()
    print(
        f"median [min-max] of {args.rounds} alternating rounds, {args.duration:g} s each; wrk -t1 on loopback, "
        f"V2 FP32 features; model {card.params}, {card.training.train_rows} training rows"
    )
    print(f"peers: ours and ceiling bound to {HOST}; {mlserver_setup or 'MLServer skipped'}")
    print("\n".join(lines))
    if have_ml:
        print()
        print("targets (ratios of medians):")
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
