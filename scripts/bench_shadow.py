#!/usr/bin/env python3
"""Shadow benchmark: predictor throughput and tail latency with the shadow and the inference log off and on.

Not a test: it prints a table.  Five predictors serve the same production
model, measured in alternating rounds (off, on, slow, log, both, off, ...) so
background load hits all alike; the ratios against *off* in the same run are
what to read, not the absolute rates:

* off: ``python -m spamops.serving`` with the model alone;
* on: the same with ``--shadow-storage-uri`` naming a second version (another
  seed, split and grid), default queue (256 batches);
* slow: a slow copy of that shadow (``spamops_dev.slow_model``: its model sleeps
  50 ms per scoring call and no decision table covers it, far slower than the
  traffic) with a 16-batch queue, so nearly all shadow work is dropped and counted
  while the primary answers;
* log: the model alone with the inference log on (``--inference-log-uri`` to a
  local directory, default batching), as the chart's ``monitoring.inferenceLog``
  sets it;
* both: the shadow of *on* and the inference log of *log* together, the full
  production-watching set of issue 12.

Load and pinning come from scripts/bench_serve.py: ``wrk`` with a Lua body, one
thread, on loopback; on two or more CPUs the server (and so its shadow thread,
as in a pod with one CPU) on one CPU and ``wrk`` on another.  After each run the
shadow's own counts (compared and dropped instances, from
``GET /v1/models/spam/shadow``) are read, to show whether it kept up, and the
server's CPU time per request (all its threads, from ``/proc``): on a busy
machine the CPU cost is steadier than the rate, which other load disturbs.

Usage: python scripts/bench_shadow.py [--rounds 3] [--duration 8] [--data CSV ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from bench_serve import (
    _CPUS,
    BATCH,
    HOST,
    cpu_seconds,
    machine,
    our_server,
    process_tree,
    random_rows,
    run_wrk,
    v2_body,
)
from spamops.registry.store import open_store
from spamops.registry.versions import Registry
from spamops.serving.inference_log import DEFAULT_FLUSH_SECONDS
from spamops_dev import slow_model

SCENARIOS = (("single", 1, 8), ("single", 1, 32), ("batch", BATCH, 8))  # (name, instances, concurrency)
SHADOWED = ("on", "slow", "both")  # the systems with a shadow model, whose counts are read
LOGGING = ("log", "both")  # the systems with the inference log on
SHADOW_CONFIG = {"train": {"seed": 7, "test_size": 0.3, "grid": {"n_neighbors": [1], "weights": ["uniform"], "p": [1]}}}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_two(work: Path, data: list[str] | None) -> tuple[Path, str, str, dict]:
    """A store with the production version and a different one to shadow: (store, primary, shadow, stats)."""
    from spamops.cli import main as spamops
    from spamops.registry.store import open_store
    from spamops.registry.versions import Registry

    store = work / "store"
    extra = ["--data", *data] if data else []
    config = work / "shadow.yaml"
    config.write_text(yaml.safe_dump(SHADOW_CONFIG))
    with contextlib.redirect_stdout(sys.stderr):
        if spamops(["train", "--store", str(store), "--quiet", *extra]) != 0:
            raise SystemExit("training the primary failed (its gate refused it?)")
        time.sleep(1.1)  # version ids are UTC seconds
        if spamops(
            ["train", "--store", str(store), "--config", str(config), "--no-promote", "--quiet", *extra]
        ) not in (0, 3):
            raise SystemExit("training the shadow failed")
    registry = Registry(open_store(str(store)), "spam")
    primary = registry.production().version
    (shadow,) = [v.version for v in registry.versions() if v.version != primary]
    registry.pull(primary, work / "model")
    return store, primary, shadow, registry.card(primary).feature_statistics


def in_process(work: Path, shadow_dir: Path, stats: dict) -> dict:
    """Per-batch costs without HTTP: the enqueue on the response path, and the shadow thread's work."""
    from spamops.serving.artifact import load_artifact
    from spamops.serving.lookup import DecisionTable, grid_bounds
    from spamops.serving.settings import ServingSettings

    serving = ServingSettings()
    costs = {}
    for label, directory in (("primary", work / "model"), ("shadow", shadow_dir)):
        artifact = load_artifact(directory)
        bounds = grid_bounds(
            artifact.feature_statistics, serving.table_max_length, serving.table_max_punct, serving.table_max_cells
        )
        costs[label] = (artifact, DecisionTable(artifact.pipeline, *bounds))
    (_, primary_table), (artifact, shadow_table) = costs["primary"], costs["shadow"]
    out = {}
    for n in (1, BATCH):
        out.update(_batch_costs(n, stats, primary_table, artifact, shadow_table))
    return out


def _batch_costs(n: int, stats: dict, primary_table, artifact, shadow_table) -> dict:
    import os
    import timeit

    from spamops.serving.settings import ShadowSettings
    from spamops.serving.shadow import Shadow

    rows = [tuple(r) for r in random_rows(n, stats)]
    scores = primary_table.score(rows)
    shadow = Shadow("spam", "p", "uri", ShadowSettings(queue_size=10**8), artifact=artifact, table=shadow_table)
    shadow._pid = os.getpid()  # as if its thread ran: the enqueue alone is measured
    number = 20000 if n == 1 else 2000

    def per_call(fn) -> float:
        return timeit.timeit(fn, number=number) / number * 1e6

    return {
        f"enqueue_{n}_us": per_call(lambda: shadow.submit(rows, scores)),
        f"shadow_work_{n}_us": per_call(lambda: shadow.compare_many([(rows, scores)])),
        f"shadow_work_{n}x64_us": per_call(lambda: shadow.compare_many([(rows, scores)] * 64)) / 64,
        f"primary_score_{n}_us": per_call(lambda: primary_table.score(rows)),
    }


def shadow_status(port: int) -> dict:
    with urllib.request.urlopen(f"http://{HOST}:{port}/v1/models/spam/shadow", timeout=10) as resp:  # noqa: S310
        return json.loads(resp.read())


def log_counts(port: int) -> tuple[float, float]:
    """(predictions written, predictions dropped) from the predictor's inference-log counters."""
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as resp:  # noqa: S310
        text = resp.read().decode()
    written = dropped = 0.0
    for line in text.splitlines():
        if line.startswith("spamops_inference_log_predictions_total"):
            written += float(line.rsplit(" ", 1)[1])
        elif line.startswith("spamops_inference_log_dropped_total"):
            dropped += float(line.rsplit(" ", 1)[1])
    return written, dropped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (medians are reported)")
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of discarded load per system and scenario")
    parser.add_argument("--data", nargs="+", help="training CSVs (default: the bundled demo sample)")
    args = parser.parse_args()

    server_cpus = {_CPUS[0]} if len(_CPUS) >= 2 else None
    client_cpus = set(_CPUS[1:]) if len(_CPUS) >= 2 else None
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp:
        work = Path(tmp)
        store, primary, shadow, stats = train_two(work, args.data)
        shadow_uri = f"{store}/spam/{shadow}/"
        slow = slow_model.store_slow_version(Registry(open_store(str(store)), "spam"), shadow, seconds=0.05)
        work_dir, shadow_dir = work, store / "spam" / shadow

        def log_uri(name: str) -> str:
            return (work / f"inference-log-{name}").as_uri()

        systems = {
            "off": our_server("off", work / "model", work, cpus=server_cpus),
            "on": our_server("on", work / "model", work, "--shadow-storage-uri", shadow_uri, cpus=server_cpus),
            "slow": our_server(
                "slow",
                work / "model",
                work,
                "--shadow-storage-uri",
                f"{store}/spam/{slow}/",
                "--shadow_queue_size",
                "16",
                cpus=server_cpus,
            ),
            "log": our_server("log", work / "model", work, "--inference-log-uri", log_uri("log"), cpus=server_cpus),
            "both": our_server(
                "both",
                work / "model",
                work,
                "--shadow-storage-uri",
                shadow_uri,
                "--inference-log-uri",
                log_uri("both"),
                cpus=server_cpus,
            ),
        }
        results: dict[tuple, dict[str, list[dict]]] = {}
        served = dict.fromkeys(systems, 0)  # instances answered, warm-up included, for the log's share
        logged: dict[str, tuple[float, float]] = {}
        try:
            for server in systems.values():
                server.start()
            for name in SHADOWED:
                status = shadow_status(systems[name].port)
                if not status["enabled"]:
                    raise SystemExit(f"{name}: shadow not enabled: {status['error']}")
            for scenario in SCENARIOS:
                label, n, concurrency = scenario
                body = v2_body(random_rows(n, stats), mlserver=False)
                results[scenario] = {name: [] for name in systems}
                for name, server in systems.items():
                    url = f"http://{HOST}:{server.port}/v2/models/spam/infer"
                    served[name] += run_wrk(url, body, concurrency, args.warmup, work, client_cpus)["requests"] * n
                for round_no in range(args.rounds):
                    for name, server in systems.items():
                        url = f"http://{HOST}:{server.port}/v2/models/spam/infer"
                        before = shadow_status(server.port)["instances"] if name in SHADOWED else None
                        cpu_before = cpu_seconds(process_tree(server.proc.pid))
                        res = run_wrk(url, body, concurrency, args.duration, work, client_cpus)
                        if name in SHADOWED:
                            time.sleep(0.1)  # the shadow's last poll belongs to this run
                        res["server_cpu_us"] = (
                            (cpu_seconds(process_tree(server.proc.pid)) - cpu_before) / res["requests"] * 1e6
                        )
                        if before is not None:
                            after = shadow_status(server.port)["instances"]
                            answered = res["requests"] * n
                            res["compared_share"] = (after["compared"] - before["compared"]) / answered
                            res["dropped_share"] = (after["dropped"] - before["dropped"]) / answered
                        results[scenario][name].append(res)
                        served[name] += res["requests"] * n
                        log(
                            f"{label} n={n} c={concurrency} round {round_no + 1} {name}: {res['rps']:,.0f} req/s, "
                            f"p99 {res['p99_us'] / 1000:.2f} ms, {res['server_cpu_us']:,.0f} CPU us/req"
                            + (f", compared {res['compared_share']:.1%}" if before is not None else "")
                        )
            time.sleep(DEFAULT_FLUSH_SECONDS + 1)  # the writer's last timed flush of what was queued
            logged = {name: log_counts(systems[name].port) for name in LOGGING}
        finally:
            for server in systems.values():
                server.stop()
        costs = in_process(work_dir, shadow_dir, stats)

    print(f"# Shadow benchmark ({machine()})")
    print(f"primary {primary}, shadow {shadow}; {args.rounds} rounds x {args.duration}s per system, medians")
    print()
    print(
        "| scenario | system | req/s | p99 ms | server CPU µs/req | req/s vs off | p99 vs off | CPU vs off "
        "| instances compared | dropped (counted) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (label, n, concurrency), by_name in results.items():
        off_rps = statistics.median(r["rps"] for r in by_name["off"])
        off_p99 = statistics.median(r["p99_us"] for r in by_name["off"])
        off_cpu = statistics.median(r["server_cpu_us"] for r in by_name["off"])
        for name, runs in by_name.items():
            rps = statistics.median(r["rps"] for r in runs)
            p99 = statistics.median(r["p99_us"] for r in runs)
            cpu = statistics.median(r["server_cpu_us"] for r in runs)
            compared = f"{statistics.median(r['compared_share'] for r in runs):.1%}" if name in SHADOWED else "-"
            dropped = f"{statistics.median(r['dropped_share'] for r in runs):.1%}" if name in SHADOWED else "-"
            print(
                f"| V2 {label} n={n} c={concurrency} | {name} | {rps:,.0f} | {p99 / 1000:.2f} | {cpu:,.0f} | "
                f"{rps / off_rps:.2f} | {p99 / off_p99:.2f} | {cpu / off_cpu:.2f} | {compared} | {dropped} |"
            )
    print()
    for name in LOGGING:
        written, dropped = logged[name]
        print(
            f"inference log ({name}): {written:,.0f} of {served[name]:,} answered predictions written, "
            f"{dropped:,.0f} dropped (counted)"
        )
    print()
    print("In process, per batch (no HTTP), microseconds:")
    print(
        "| instances | primary scoring | enqueue for the shadow (response path) "
        "| shadow thread: score + compare, one batch alone | the same, per batch of 64 taken together |"
    )
    print("|---|---|---|---|---|")
    for n in (1, BATCH):
        print(
            f"| {n} | {costs[f'primary_score_{n}_us']:.1f} | {costs[f'enqueue_{n}_us']:.1f} | "
            f"{costs[f'shadow_work_{n}_us']:.1f} | {costs[f'shadow_work_{n}x64_us']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
