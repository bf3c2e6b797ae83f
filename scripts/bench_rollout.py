"""Benchmark (not a test): the canary analysis loop's cost per check, and how fast a bad canary is cut off.

1. Overhead per check (six range-selector queries + the decision): two versions trained on the bundled demo data, two real
   predictor processes under steady traffic, real Prometheus (1 s scrape); the
   time of :func:`spamops.deploy.analysis.run_check`, against a baseline measured in the same run: one instant query
   (``up``) round trip.
2. Time to 0 %: on the test control plane (etcd + kube-apiserver, KServe CRD),
   the chart's InferenceService with a 10 % canary; from the moment a check
   has failed (``threshold`` 1) until the API server holds
   ``canaryTrafficPercent: 0`` (Serverless) - the abort itself: pointer check,
   patch, Event, store record - against a baseline GET of the InferenceService.

Usage: python scripts/bench_rollout.py [--checks 20] [--aborts 10] [--only checks|abort]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

from spamops.cli import main  # noqa: E402
from spamops.config import (  # noqa: E402
    AnalysisConfig,
    RolloutConfig,  # noqa: E402
    SuccessRateSource,
)
from spamops.deploy import judge  # noqa: E402
from spamops.deploy.analysis import Windows, run_check  # noqa: E402
from spamops.deploy.cluster import Cluster, Target  # noqa: E402
from spamops.deploy.rollout import Rollouts  # noqa: E402
from spamops.prometheus import Prometheus  # noqa: E402
from spamops.registry.store import open_store  # noqa: E402
from spamops.registry.versions import Registry  # noqa: E402
from spamops_dev import controlplane  # noqa: E402
from spamops_dev.daemon import Daemon, free_port  # noqa: E402
from spamops_dev.prometheus import Prometheus as PrometheusServer  # noqa: E402


def _train(store: Path, tmp: Path, seed: int) -> str:
    config = tmp / f"seed-{seed}.yaml"
    config.write_text(yaml.safe_dump({"store": str(store), "train": {"seed": seed}}))
    out = tmp / f"seed-{seed}.json"
    import contextlib

    with out.open("w") as handle, contextlib.redirect_stdout(handle):
        assert main(["train", "--config", str(config), "--quiet", "--json"]) == 0
    return json.loads(out.read_text())["version"]


def _predictor(model_dir: Path, log: Path) -> tuple[Daemon, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "spamops.serving",
        "--http_port",
        str(port),
        "--enable_grpc",
        "false",
        "--model_dir",
        str(model_dir),
    ]
    daemon = Daemon(cmd, log, f"{url}/v2/health/ready", "predictor")
    daemon.start(timeout=120)  # importing kserve takes long on a loaded machine
    return daemon, url


def _drive(urls: list[str], stop: threading.Event) -> None:
    body = json.dumps({"instances": [[40, 3], [150, 8], [12, 0], [90, 5]]}).encode()
    i = 0
    while not stop.is_set():
        req = urllib.request.Request(
            f"{urls[i % 2]}/v1/models/spam:predict", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10):
            pass
        i += 1
        stop.wait(0.02)


def bench_checks(tmp: Path, checks: int) -> tuple[float, float]:
    tmp.mkdir(parents=True)
    store = tmp / "store"
    stable, canary = _train(store, tmp, 42), _train(store, tmp, 1)
    registry = Registry(open_store(str(store)), "spam")
    daemons, urls = [], []
    try:
        for version in (stable, canary):
            daemon, url = _predictor(registry.pull(version, tmp / version), tmp / f"{version}.log")
            daemons.append(daemon)
            urls.append(url)
        stop = threading.Event()
        driver = threading.Thread(target=_drive, args=(urls, stop), daemon=True)
        driver.start()
        server = PrometheusServer(tmp / "prometheus", [u.removeprefix("http://") for u in urls]).start()
        daemons.append(server)
        server.wait_for_targets_up(2)
        time.sleep(12)
        prom = Prometheus(server.url)
        baseline, per_check, verdicts = [], [], []
        for _ in range(checks):
            started = time.perf_counter()
            prom.vector("up")
            baseline.append(time.perf_counter() - started)
            now = time.time()
            settings = judge.Settings.from_config(AnalysisConfig(min_requests=5, min_instances=5))
            check = run_check(prom, SuccessRateSource(), settings, stable, canary, Windows(now - 10, now - 10, now))
            per_check.append(check.seconds)
            verdicts.append(check.verdict.verdict)
        stop.set()
        print(f"check verdicts: {sorted(set(verdicts))}", file=sys.stderr)
        return statistics.median(baseline), statistics.median(per_check)
    finally:
        for daemon in reversed(daemons):
            daemon.stop()


def bench_abort(tmp: Path, aborts: int) -> tuple[float, float]:
    from types import SimpleNamespace

    cp = controlplane.ControlPlane()
    cp.start()
    try:
        helm = str(controlplane.ensure_artifacts().helm)
        import subprocess

        rendered = subprocess.run(
            [helm, "template", "spamops", str(REPO / "helm" / "spamops"), "-n", "spamops"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in ("Namespace", "InferenceService")]
        cp.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs), check=True)
        rollouts = Rollouts(Cluster(Target(kubeconfig=str(cp.kubeconfig))), RolloutConfig())
        baseline, to_zero = [], []
        for i in range(aborts):
            version = f"spam_model_bench_{i:03d}"
            # what start() reads of a card: its version and storage URI (no registry in this measurement)
            rollouts.start(SimpleNamespace(version=version, storage_uri=f"s3://spamops/models/spam/{version}/"), 10)
            started = time.perf_counter()
            rollouts.cluster.read_isvc()
            baseline.append(time.perf_counter() - started)
            state = rollouts.split().state
            started = time.perf_counter()  # the failing check's verdict is in: abort
            with rollouts.lease():
                rollouts._abort(state, "benchmark")
            to_zero.append(time.perf_counter() - started)
            assert rollouts.cluster.read_isvc()["spec"]["predictor"]["canaryTrafficPercent"] == 0
        return statistics.median(baseline), statistics.median(to_zero)
    finally:
        cp.stop()


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=20)
    parser.add_argument("--aborts", type=int, default=10)
    parser.add_argument("--only", choices=("checks", "abort"), help="run one of the two measurements")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "abort":
            q_base, q_check = bench_checks(Path(tmp) / "checks", args.checks)
            print(
                f"analysis check (12 queries + decision): median {q_check * 1000:.1f} ms = {q_check / q_base:.1f}x one query ({q_base * 1000:.1f} ms)"
            )
        if args.only != "checks":
            a_base, a_zero = bench_abort(Path(tmp) / "abort", args.aborts)
            print(
                f"failing check -> canary at 0 %:        median {a_zero * 1000:.1f} ms = {a_zero / a_base:.1f}x one GET of the isvc ({a_base * 1000:.1f} ms)"
            )
            print(
                "worst case from the first failing interval: + one interval (the check runs at the end of its window)"
            )


if __name__ == "__main__":
    main_()
