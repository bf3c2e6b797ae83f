#!/usr/bin/env python3
"""Start/stop the test control plane (etcd + kube-apiserver) or the whole test cluster on loopback.

The machinery is :mod:`spamops_dev.controlplane` and :mod:`spamops_dev.cluster`;
this is the command line ``make envtest`` and ``make cluster-up`` run::

    controlplane.py start [--dir DIR] [--cluster]   # detached; prints the kubeconfig path
    controlplane.py stop  [--dir DIR]
    controlplane.py run   [--dir DIR] [--cluster]   # foreground until Ctrl-C
    controlplane.py paths                           # artifact paths, building them if needed

``--cluster`` adds kube-controller-manager, kube-scheduler, KWOK with fake nodes
and the KServe manager (webhooks registered) to the API server.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from pathlib import Path

from spamops_dev.artifacts import cache_root, ensure_artifacts
from spamops_dev.controlplane import ControlPlane, stop_detached


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


def _all_components() -> tuple[str, ...]:
    try:
        from spamops_dev.cluster import Cluster
    except ImportError:  # the plain control plane only
        return ControlPlane.components
    return Cluster.components


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("command", choices=["start", "stop", "run", "paths"])
    ap.add_argument("--dir", type=Path, default=None, help="state directory (default: <cache>/envtest/run)")
    ap.add_argument("--cluster", action="store_true", help="also controllers, KWOK nodes and the KServe manager")
    args = ap.parse_args(argv)
    if args.command == "paths":
        for key, path in ensure_artifacts().paths().items():
            print(f"{key}={path}")
        return 0
    d = (args.dir or cache_root() / "run").resolve()
    if args.command == "stop":
        stopped = stop_detached(d, _all_components())
        if stopped:
            names = ", ".join(f"{name} (pid {pid})" for name, pid in stopped)
            print(f"stopped {names}, started in {d}", file=sys.stderr)
        else:
            print(f"nothing to stop: no process started in {d} is running", file=sys.stderr)
        return 0
    stop_detached(d, _all_components())  # a previous detached one in the same directory
    shutil.rmtree(d, ignore_errors=True)
    if args.cluster:
        from spamops_dev.cluster import Cluster

        cp: ControlPlane = Cluster(workdir=d, detached=args.command == "start")
    else:
        cp = ControlPlane(workdir=d, detached=args.command == "start")
    try:
        cp.start()
    except BaseException:
        cp.stop()
        raise
    v = cp.artifacts.versions
    what = "cluster" if args.cluster else "control plane"
    print(
        f"{what} up in {cp.started_seconds:.1f}s: kube-apiserver {v['KUBERNETES_VERSION']}"
        f" at https://127.0.0.1:{cp.api_port}, etcd {v['ETCD_VERSION']}"
        + (f", KServe {v['KSERVE_VERSION']}, KWOK {v['KWOK_VERSION']}" if args.cluster else ""),
        file=sys.stderr,
    )
    print(f"export KUBECONFIG={cp.kubeconfig}", file=sys.stderr)
    print(f"kubectl: {cp.artifacts.kubectl}\nhelm:    {cp.artifacts.helm}\nlogs:    {d}/*.log", file=sys.stderr)
    if args.command == "start":
        print(f"stop with: {sys.executable} {Path(__file__)} stop --dir {d}", file=sys.stderr)
        print(cp.kubeconfig)
        return 0
    print(cp.kubeconfig, flush=True)
    print("Ctrl-C stops it.", file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        cp.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
