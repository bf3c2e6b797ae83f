"""Fixtures for the Kubernetes packaging tests.

A session-scoped real control plane (etcd + kube-apiserver on loopback, KServe
and Argo CD CRDs installed) from spamops_dev.controlplane. Missing binaries are
built on first use (scripts/envtest/build.sh): these tests never skip for want
of a cluster. Tests that use ``cluster``/``cluster_kube`` (marker ``cluster``)
get the whole test cluster from spamops_dev.cluster instead: controllers,
scheduler, KWOK nodes and the real KServe manager, once per session.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from k8shelpers import Kube, psa_warning, wait_until

from spamops_dev import controlplane
from spamops_dev.artifacts import ensure_artifacts
from spamops_dev.cluster import Cluster, log_tails

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "k8s: Kubernetes packaging checks against a real kube-apiserver (envtest); "
        "builds the control plane on first use",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.k8s)
            if "cluster" in getattr(item, "fixturenames", ()) or "cluster_kube" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failing test that used the cluster gets every component's log tail in its report
    (the full logs stay in the session's temporary directory, which pytest keeps)."""
    report = yield
    if report.failed and _CLUSTER and item.get_closest_marker("cluster"):
        report.sections.append(("test cluster logs", log_tails(_CLUSTER[0])))
    return report


_CLUSTER: list[Cluster] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (first time) the control plane before any test runs, so the build
    does not count against a single test's timeout."""
    if any(HERE in Path(str(item.fspath)).resolve().parents for item in session.items):
        ensure_artifacts()


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def control_plane():
    cp = controlplane.ControlPlane()
    try:
        cp.start()
        print(
            f"\nenvtest control plane started in {cp.started_seconds:.1f}s (kubeconfig {cp.kubeconfig})",
            file=sys.stderr,
        )
        yield cp
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """The whole test cluster (controllers, scheduler, KWOK nodes, the KServe manager), once per session.

    Its directory (logs of every component) is under pytest's basetemp, which
    outlives the session; a failing test's report also shows the log tails.
    """
    c = Cluster(workdir=tmp_path_factory.mktemp("cluster"), nodes=2)
    _CLUSTER.append(c)
    try:
        c.start()
        took = ", ".join(f"{k} {v:.1f}s" for k, v in c.component_seconds.items())
        print(f"\ntest cluster started in {c.started_seconds:.1f}s ({took}; logs in {c.dir})", file=sys.stderr)
        yield c
    finally:
        c.stop()
        _CLUSTER.remove(c)


def _prepared(k: Kube) -> Kube:
    # The chart's own Namespace (Pod Security labels), so that dry-runs of
    # namespaced objects are admitted - and warned about - as after a deploy.
    (ns,) = [d for d in k.helm_template() if d["kind"] == "Namespace"]
    k.apply([ns])
    k.ensure_namespace("argocd")
    # Pod Security admission sees the labels once its informer has them.
    assert wait_until(lambda: psa_warning(k), timeout=20), "Pod Security admission never warned"
    return k


@pytest.fixture(scope="session")
def kube(control_plane) -> Kube:
    """The API server alone: what is accepted, stored and authorized, nothing reconciled."""
    return _prepared(Kube(control_plane))


@pytest.fixture(scope="session")
def cluster_kube(cluster) -> Kube:
    """kubectl/helm bound to the test cluster, where the real controllers and KServe reconcile."""
    return _prepared(Kube(cluster))


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    """The pinned helm, for tests that need no cluster."""
    return ensure_artifacts().helm


@pytest.fixture
def clean(kube: Kube) -> Kube:
    kube.reset()
    yield kube
