"""The control plane harness itself: pinned versions, the `make envtest` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from k8shelpers import REPO, Kube

from spamops_dev import artifacts, controlplane, ports, processes

SCRIPTS = REPO / "scripts" / "envtest"


def test_build_script_and_fixture_agree_on_every_artifact():
    """One place pins the versions: the bash build and the Python fixture
    derive the same cache paths from versions.env."""
    out = subprocess.run(
        ["bash", str(SCRIPTS / "build.sh"), "--print-env"], capture_output=True, text=True, check=True
    ).stdout
    built = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    arts = artifacts.Artifacts.from_versions()
    assert built == {key: str(path) for key, path in arts.paths().items()}
    v = artifacts.read_versions()
    keyed = {
        "KUBE_APISERVER": "KUBERNETES_VERSION",
        "KUBE_CONTROLLER_MANAGER": "KUBERNETES_VERSION",
        "KUBE_SCHEDULER": "KUBERNETES_VERSION",
        "KUBECTL": "KUBERNETES_VERSION",
        "ETCD": "ETCD_VERSION",
        "HELM": "HELM_VERSION",
        "HELM_DOCS": "HELM_DOCS_VERSION",
        "KWOK": "KWOK_VERSION",
        "KWOK_STAGES": "KWOK_VERSION",
        "KSERVE_MANAGER": "KSERVE_VERSION",
        "TRAEFIK": "TRAEFIK_VERSION",
        "KSERVE_CRDS": "KSERVE_VERSION",
        "KSERVE_CONFIG": "KSERVE_VERSION",
        "KSERVE_WEBHOOKS": "KSERVE_VERSION",
        "KNATIVE_CRDS": "KNATIVE_SERVING_VERSION",
        "KNATIVE_AUTOSCALER_CONFIG": "KNATIVE_SERVING_VERSION",
        "GATEWAY_API_CRDS": "GATEWAY_API_VERSION",
        "ARGOCD_CRDS": "ARGOCD_VERSION",
        "PROMETHEUS_OPERATOR_CRDS": "PROMETHEUS_OPERATOR_VERSION",
    }
    assert set(keyed) == set(built)
    for artifact, version in keyed.items():
        assert f"-{v[version]}/" in built[artifact] + "/", (artifact, built[artifact])
    for path in map(Path, built.values()):
        assert path.exists(), path


def test_build_script_builds_a_single_component():
    """`build.sh helm` (what lint-k8s and make manifests need) prints only helm."""
    out = subprocess.run(
        ["bash", str(SCRIPTS / "build.sh"), "--print-env", "helm"], capture_output=True, text=True, check=True
    ).stdout
    assert [line.split("=", 1)[0] for line in out.splitlines() if "=" in line] == ["HELM"]
    bad = subprocess.run(["bash", str(SCRIPTS / "build.sh"), "kube"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown argument" in bad.stderr


def _build_with_go(tmp_path, go_version: str | None) -> subprocess.CompletedProcess:
    """build.sh helm with an empty cache and a fake `go` (or none) in PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    if go_version:
        fake = bin_dir / "go"
        fake.write_text(f'#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo go{go_version} && exit 0\nexit 99\n')
        fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "SPAMOPS_CACHE": str(tmp_path / "cache")}
    return subprocess.run(["bash", str(SCRIPTS / "build.sh"), "helm"], capture_output=True, text=True, env=env)


def test_build_script_needs_go_of_the_pinned_version(tmp_path):
    """A clear error, before any download, when go is missing or older than
    GO_VERSION (versions.env, also the go line of the generated go.mod files)."""
    minimum = artifacts.read_versions()["GO_VERSION"]
    major, minor, _ = minimum.split(".")
    res = _build_with_go(tmp_path, None)
    assert res.returncode == 1 and "'go' is not in PATH" in res.stderr and minimum in res.stderr
    res = _build_with_go(tmp_path / "old", f"{major}.{int(minor) - 1}.9")
    assert res.returncode == 1 and "too old" in res.stderr and minimum in res.stderr
    # The check passes for the pinned version: the fake go then fails the download instead.
    res = _build_with_go(tmp_path / "new", minimum)
    assert "too old" not in res.stderr and "not in PATH" not in res.stderr


def test_running_versions_are_the_pinned_ones(kube: Kube):
    v = artifacts.read_versions()
    assert kube.server_version() == v["KUBERNETES_VERSION"]
    client = json.loads(kube.kubectl("version", "--client", "-o", "json").stdout)["clientVersion"]
    assert client["gitVersion"] == v["KUBERNETES_VERSION"]
    assert kube.helm("version", "--template", "{{.Version}}").stdout == v["HELM_VERSION"]
    etcd = subprocess.run([str(kube.cp.artifacts.etcd), "--version"], capture_output=True, text=True).stdout
    assert v["ETCD_VERSION"].lstrip("v") in etcd


def test_crds_are_established_and_rbac_is_enforced(kube: Kube):
    crds = kube.kubectl("get", "crd", "-o", "name").stdout.split()
    for name in (
        "inferenceservices.serving.kserve.io",
        "servingruntimes.serving.kserve.io",
        "inferencegraphs.serving.kserve.io",
        "services.serving.knative.dev",
        "revisions.serving.knative.dev",
        "httproutes.gateway.networking.k8s.io",
        "applications.argoproj.io",
        "appprojects.argoproj.io",
    ):
        assert f"customresourcedefinition.apiextensions.k8s.io/{name}" in crds
    denied = kube.kubectl("get", "pods", "-A", "--as=someone", check=False)
    assert denied.returncode != 0 and "Forbidden" in denied.stderr


def test_cli_start_prints_a_working_kubeconfig_and_stop_ends_the_processes(tmp_path):
    """What `make envtest` / `make envtest-stop` run."""
    state = tmp_path / "cp"
    cli = [sys.executable, str(SCRIPTS / "controlplane.py")]
    started = subprocess.run([*cli, "start", "--dir", str(state)], capture_output=True, text=True, timeout=300)
    try:
        assert started.returncode == 0, started.stderr
        kubeconfig = started.stdout.strip().splitlines()[-1]
        assert kubeconfig == str(state / "kubeconfig")
        assert "export KUBECONFIG=" in started.stderr
        arts = artifacts.Artifacts.from_versions()
        ns = subprocess.run(
            [str(arts.kubectl), "--kubeconfig", kubeconfig, "get", "namespace", "default", "-o", "name"],
            capture_output=True,
            text=True,
        )
        assert ns.stdout.strip() == "namespace/default", ns.stderr
        pids = [int((state / f"{n}.pid").read_text()) for n in ("kube-apiserver", "etcd")]
    finally:
        subprocess.run([*cli, "stop", "--dir", str(state)], capture_output=True, timeout=120)
    for pid in pids:
        assert not processes.alive(pid), f"process {pid} still running after stop"


def test_start_retries_when_a_port_is_taken_in_the_meantime(monkeypatch):
    """free_port() can race with other programs: a component that exits at once
    is restarted on new ports."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        real = ports.free_port
        handed = iter([port, port])  # etcd's client and peer ports, both busy
        monkeypatch.setattr(ports, "free_port", lambda: next(handed, None) or real())
        cp = controlplane.ControlPlane()
        try:
            cp.start()
            assert cp.etcd_port != port
            assert cp.restarts == {"etcd": 1}
            assert cp.kubectl("get", "namespace", "default", "-o", "name").stdout.strip() == "namespace/default"
        finally:
            cp.stop()


def test_cached_artifacts_of_another_build_revision_are_not_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("SPAMOPS_CACHE", str(tmp_path))
    arts = artifacts.Artifacts.from_versions()
    dirs = arts.stamped_dirs()
    assert not arts.complete()
    for d in dirs:
        d.mkdir(parents=True)
        (d / ".complete").write_text("revision=0\nbuilt_at=x\n")
    assert not arts.complete(), "a stamp of an older build recipe counts as missing"
    for d in dirs:
        (d / ".complete").write_text(f"revision={arts.versions['BUILD_REVISION']}\nbuilt_at=x\n")
    assert arts.complete()


def test_cluster_runs_the_pinned_controllers_and_kwok_nodes(cluster_kube: Kube):
    v = artifacts.read_versions()
    nodes = json.loads(cluster_kube.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    assert [n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes] == [f"kwok-{v['KWOK_VERSION'].lstrip('v')}"] * 2
    for binary in (cluster_kube.cp.artifacts.kube_controller_manager, cluster_kube.cp.artifacts.kube_scheduler):
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout
        assert v["KUBERNETES_VERSION"] in out
    hooks = json.loads(cluster_kube.kubectl("get", "validatingwebhookconfigurations", "-o", "json").stdout)["items"]
    urls = {h["clientConfig"]["url"] for c in hooks for h in c["webhooks"]}
    assert urls and all(u.startswith("https://127.0.0.1:") for u in urls), urls


@pytest.mark.cluster
def test_cli_cluster_up_prints_a_kubeconfig_and_down_ends_every_process(tmp_path):
    """What `make cluster-up` / `make cluster-down` run."""
    from spamops_dev.cluster import Cluster

    state = tmp_path / "cluster"
    cli = [sys.executable, str(SCRIPTS / "controlplane.py")]
    started = subprocess.run(
        [*cli, "start", "--cluster", "--dir", str(state)], capture_output=True, text=True, timeout=400
    )
    pids = []
    try:
        assert started.returncode == 0, started.stderr
        kubeconfig = started.stdout.strip().splitlines()[-1]
        assert "KServe" in started.stderr and "export KUBECONFIG=" in started.stderr
        pids = [int((state / f"{n}.pid").read_text()) for n in Cluster.components]
        arts = artifacts.Artifacts.from_versions()
        nodes = subprocess.run(
            [str(arts.kubectl), "--kubeconfig", kubeconfig, "get", "nodes", "-o", "name"],
            capture_output=True,
            text=True,
        )
        assert nodes.stdout.split() == ["node/kwok-node-0", "node/kwok-node-1"], nodes.stderr
    finally:
        subprocess.run([*cli, "stop", "--dir", str(state)], capture_output=True, timeout=120)
    for pid in pids:
        assert not processes.alive(pid), f"process {pid} still running after cluster-down"
    assert (state / "kserve-manager.log").stat().st_size > 0, "the logs stay for a look after the fact"


def _envtest_stop(run_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", "envtest-stop", f"ENVTEST_DIR={run_dir}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_envtest_stop_says_what_it_stopped_and_nothing_when_nothing_ran(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "kube-apiserver.pid").write_text("999999999\n")  # a pid file whose process is long gone
    idle = _envtest_stop(run_dir)
    assert idle.returncode == 0, idle.stderr
    assert idle.stderr.strip() == f"nothing to stop: no process started in {run_dir.resolve()} is running"
    assert not (run_dir / "kube-apiserver.pid").exists()

    etcd = tmp_path / "bin" / "etcd"  # a live process the harness recognises as its etcd
    etcd.parent.mkdir()
    etcd.symlink_to(Path("/bin/sleep") if Path("/bin/sleep").exists() else Path("/usr/bin/sleep"))
    proc = subprocess.Popen([str(etcd), "300"])
    try:
        (run_dir / "etcd.pid").write_text(f"{proc.pid}\n")
        stopped = _envtest_stop(run_dir)
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.stderr.strip() == f"stopped etcd (pid {proc.pid}), started in {run_dir.resolve()}"
        assert proc.wait(timeout=30) != 0  # it was signalled, not left running
    finally:
        if proc.poll() is None:
            proc.kill()
