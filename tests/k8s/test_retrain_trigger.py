"""The retraining triggers against a real kube-apiserver: a Job from the chart's CronJob, exactly once.

Most tests run on the API server and etcd alone (no Job controller): a created Job
stays unfinished, which is what the dedupe test needs; to test the cooldown on its own
the test deletes the Job, the way the CronJob's history limit eventually would. The
end-to-end test runs on the test cluster instead, where the Job controller makes the
Job's pod and kube-scheduler places it on a KWOK node.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from k8shelpers import NAMESPACE, Kube, token_kubeconfig, wait_until

from spamops.cli import main
from spamops_dev.alertmanager import Alertmanager
from spamops_dev.daemon import free_port

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "src" / "spamops" / "training" / "demo" / "sms_demo.csv"
RULES = REPO / "helm" / "spamops" / "files" / "prometheus-rules.yaml"
pytestmark = pytest.mark.monitoring  # also k8s (tests/k8s/conftest.py): Alertmanager, Prometheus, API server


@pytest.fixture
def cronjob(clean: Kube) -> Kube:
    docs = [d for d in clean.helm_template() if d["kind"] in ("Namespace", "CronJob")]
    clean.apply(docs)
    return clean


E2E_NAMESPACE = "retrain-e2e"  # on the session's test cluster, apart from the chart installed in "spamops"


@pytest.fixture
def cluster_cronjob(cluster_kube: Kube) -> Kube:
    """The chart's CronJob and what its pods need (ServiceAccounts, ConfigMap) in a namespace of the test cluster."""
    kinds = ("Namespace", "ServiceAccount", "ConfigMap", "CronJob")
    docs = cluster_kube.helm_template(extra=("--set", f"namespace.name={E2E_NAMESPACE}"))
    cluster_kube.apply([d for d in docs if d["kind"] in kinds])
    yield cluster_kube
    cluster_kube.kubectl("delete", "namespace", E2E_NAMESPACE, "--wait=false", check=False)


def jobs(kube: Kube, namespace: str = NAMESPACE) -> list[dict]:
    return json.loads(kube.kubectl("get", "jobs", "-n", namespace, "-o", "json").stdout)["items"]


def job_pods(kube: Kube, job: str, namespace: str) -> list[dict]:
    out = kube.kubectl("get", "pods", "-n", namespace, "-l", f"job-name={job}", "-o", "json").stdout
    return json.loads(out)["items"]


def notification(alertname: str, status: str = "firing") -> dict:
    return {
        "version": "4",
        "status": status,
        "receiver": "spamops-retrain",
        "groupKey": f'{{}}:{{alertname="{alertname}"}}',
        "alerts": [{"status": status, "labels": {"alertname": alertname, "retrain": "true"}, "fingerprint": "abc123"}],
    }


class Trigger:
    """``spamops trigger serve`` as a process on loopback."""

    def __init__(self, kubeconfig: Path, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        cmd = [sys.executable, "-m", "spamops", "trigger", "serve", "--bind", "127.0.0.1", "--port", str(self.port)]
        self._log = open(log, "wb")  # noqa: SIM115
        self.log_path = log
        self.proc = subprocess.Popen(
            [*cmd, "--kubeconfig", str(kubeconfig), *extra], stdout=self._log, stderr=subprocess.STDOUT
        )
        assert wait_until(self._healthy, timeout=30), log.read_text()

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def post(self, doc: dict) -> tuple[int, dict]:
        req = urllib.request.Request(self.url, json.dumps(doc).encode(), {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


def test_alertmanager_alert_creates_one_job_then_dedupe_and_cooldown_survive_a_restart(cronjob: Kube, tmp_path):
    trigger = Trigger(cronjob.kubeconfig, tmp_path / "trigger.log", "--cooldown", "1h")
    am = Alertmanager(tmp_path / "am", trigger.url).start()
    try:
        am.post_alerts(
            [{"labels": {"alertname": "SpamopsFeatureDriftAlert", "retrain": "true", "severity": "warning"}}]
        )
        assert wait_until(lambda: jobs(cronjob), timeout=30), trigger.log_path.read_text()
        [job] = jobs(cronjob)
        assert job["metadata"]["labels"]["spamops.dev/trigger"] == "alert"
        assert "SpamopsFeatureDriftAlert" in job["metadata"]["annotations"]["spamops.dev/trigger-reason"]
        [owner] = job["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"]) == ("CronJob", "spamops-retrain")
        cron = json.loads(cronjob.kubectl("get", "cronjob", "spamops-retrain", "-n", NAMESPACE, "-o", "json").stdout)
        assert (
            job["spec"]["template"]["spec"]["containers"]
            == cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        )

        status, body = trigger.post(notification("SpamopsSpamRateAnomaly"))
        assert (status, body["outcome"]) == (200, "running"), body
        assert len(jobs(cronjob)) == 1
    finally:
        am.stop()
        trigger.stop()

    cronjob.kubectl("delete", "job", "-n", NAMESPACE, "--all")
    restarted = Trigger(cronjob.kubeconfig, tmp_path / "trigger-2.log", "--cooldown", "1h")
    try:
        status, body = restarted.post(notification("SpamopsFeatureDriftAlert"))
        assert (status, body["outcome"]) == (200, "cooldown"), body
        assert jobs(cronjob) == [], "the cooldown lives in the cluster: a restarted trigger remembers it"
        status, body = restarted.post(notification("SpamopsFeatureDriftAlert", status="resolved"))
        assert (status, body["outcome"]) == (200, "ignored")
        status, body = restarted.post({"alerts": "nope"})
        assert status == 400 and "version" in body["error"]
    finally:
        restarted.stop()

    after = Trigger(cronjob.kubeconfig, tmp_path / "trigger-3.log", "--cooldown", "1s")
    try:
        status, body = after.post(notification("SpamopsFeatureDriftAlert"))
        assert (status, body["outcome"]) == (200, "created"), body
        assert len(jobs(cronjob)) == 1
    finally:
        after.stop()


def test_unreachable_api_server_answers_503_so_alertmanager_retries(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{free_port()}"}}],
                "users": [{"name": "u", "user": {"token": "x"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )

    trigger = Trigger(kubeconfig, tmp_path / "trigger.log")
    try:
        status, body = trigger.post(notification("SpamopsFeatureDriftAlert"))
        assert status == 503 and "unreachable" in body["error"], body
    finally:
        trigger.stop()


def test_data_trigger_creates_a_job_only_when_a_source_changed(cronjob: Kube, tmp_path, capsys, monkeypatch):
    data = tmp_path / "data.csv"
    shutil.copy(DEMO, data)
    store = tmp_path / "store"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"store": str(store), "data": {"sources": [str(data)]}}))
    assert main(["train", "--config", str(config), "--quiet"]) == 0
    monkeypatch.setenv("KUBECONFIG", str(cronjob.kubeconfig))

    def run() -> dict:
        capsys.readouterr()
        assert main(["trigger", "data", "--config", str(config), "--json", "--cooldown", "1s"]) == 0
        return json.loads(capsys.readouterr().out)

    unchanged = run()
    assert (unchanged["outcome"], unchanged["changes"]) == ("unchanged", [])
    assert jobs(cronjob) == []

    with data.open("a") as fh:
        fh.write("spam,WINNER claim your free prize now call 0800\n")
    changed = run()
    assert changed["outcome"] == "created", changed
    assert str(data) in changed["changes"][0]
    [job] = jobs(cronjob)
    assert job["metadata"]["labels"]["spamops.dev/trigger"] == "data"
    assert job["metadata"]["name"] == changed["job"]


def test_end_to_end_drift_alert_from_prometheus_reaches_the_trigger_and_creates_one_job(
    cluster_cronjob: Kube, tmp_path
):
    """predictor -> Prometheus -> spamops monitor -> the shipped drift rule -> Alertmanager -> trigger -> Job -> pod.

    The rule is the shipped SpamopsFeatureDriftAlert with its ``for: 15m`` cut to 0 so the
    test does not wait a quarter of an hour; expression, labels and annotations are unchanged.
    On the test cluster the Job controller creates the Job's pod and kube-scheduler binds it
    to a KWOK node (KWOK stands in for the kubelet, which cannot run here).
    """
    cronjob, ns = cluster_cronjob, E2E_NAMESPACE
    from spamops.registry.store import open_store
    from spamops.registry.versions import Registry
    from spamops_dev.daemon import Daemon
    from spamops_dev.predictor import Predictor
    from spamops_dev.prometheus import Prometheus

    store = tmp_path / "store"
    assert main(["train", "--store", str(store), "--quiet"]) == 0
    registry = Registry(open_store(str(store)), "spam")
    registry.pull(registry.production().version, tmp_path / "model")
    shipped = yaml.safe_load(RULES.read_text())
    [rule] = [r for g in shipped["groups"] for r in g["rules"] if r.get("alert") == "SpamopsFeatureDriftAlert"]
    rule.pop("for")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "e2e", "rules": [rule]}]}))

    predictor = Predictor(["--model_dir", str(tmp_path / "model")], tmp_path / "predictor.log").start()
    trigger = Trigger(cronjob.kubeconfig, tmp_path / "trigger.log", "--cooldown", "1h", "--namespace", ns)
    am = Alertmanager(tmp_path / "am", trigger.url).start()
    monitor_port = free_port()
    prometheus = Prometheus(
        tmp_path / "prom",
        [f"127.0.0.1:{predictor.port}", f"127.0.0.1:{monitor_port}"],
        rule_files=[rules],
        alertmanager=am.address,
    ).start()
    monitor = Daemon(
        [
            *(sys.executable, "-m", "spamops", "monitor", "--serve", "--bind", "127.0.0.1"),
            *("--port", str(monitor_port), "--interval", "1", "--window", "30m", "--min-samples", "100"),
            *("--prometheus", prometheus.url, "--store", str(store)),
        ],
        tmp_path / "monitor.log",
        f"http://127.0.0.1:{monitor_port}/metrics",
        "monitor",
    )
    monitor.start()
    try:
        short = [[n % 9 + 1, 0] for n in range(400)]  # far shorter than any demo message
        for start in range(0, len(short), 50):
            assert (
                predictor.post_json("/v1/models/spam:predict", {"instances": short[start : start + 50]}).status == 200
            )
        assert wait_until(lambda: jobs(cronjob, ns), timeout=90), (
            f"no Job; firing: {prometheus.firing_alerts()}\n{trigger.log_path.read_text()}\n{monitor.log()}"
        )
        psi = prometheus.scalar('spamops_feature_drift_psi{feature="length"}')
        assert psi is not None and psi > 0.2
        [job] = jobs(cronjob, ns)
        assert "SpamopsFeatureDriftAlert" in job["metadata"]["annotations"]["spamops.dev/trigger-reason"]
        time.sleep(5)  # further evaluations and notifications of the still-firing alert
        assert len(jobs(cronjob, ns)) == 1, "one Job per alert, not one per evaluation"
        # The Job controller made its pod and kube-scheduler bound it to a KWOK node.
        placed = wait_until(
            lambda: [p for p in job_pods(cronjob, job["metadata"]["name"], ns) if p["spec"].get("nodeName")],
            timeout=90,
        )
        assert placed, f"no scheduled pod of {job['metadata']['name']}"
        (pod,) = placed
        assert pod["spec"]["nodeName"].startswith("kwok-node-")
        (owner,) = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"]) == ("Job", job["metadata"]["name"])
        assert pod["spec"]["serviceAccountName"] == "spamops-trainer"
    finally:
        for part in (monitor, prometheus, am):
            part.stop()
        trigger.stop()
        predictor.stop()


def test_the_charts_trigger_role_is_enough_to_retrain_and_no_more(clean: Kube, tmp_path):
    values = REPO / "helm" / "spamops" / "ci" / "monitoring-values.yaml"
    wanted = {("Namespace", "spamops"), ("CronJob", "spamops-retrain"), ("ServiceAccount", "spamops-trigger")}
    wanted |= {("Role", "spamops-trigger"), ("RoleBinding", "spamops-trigger")}
    clean.apply([d for d in clean.helm_template(values) if (d["kind"], d["metadata"]["name"]) in wanted])
    kubeconfig = token_kubeconfig(clean, "spamops-trigger", tmp_path / "trigger.kubeconfig")
    trigger = Trigger(kubeconfig, tmp_path / "trigger.log", "--cooldown", "1h")
    try:
        status, body = trigger.post(notification("SpamopsFeatureDriftAlert"))
        assert (status, body["outcome"]) == (200, "created"), (body, trigger.log_path.read_text())
    finally:
        trigger.stop()
    assert len(jobs(clean)) == 1

    def can(*args: str) -> bool:
        res = clean.kubectl(
            "auth",
            "can-i",
            *args,
            "-n",
            NAMESPACE,
            "--as",
            f"system:serviceaccount:{NAMESPACE}:spamops-trigger",
            check=False,
        )
        return res.stdout.strip() == "yes"

    assert can("create", "jobs.batch") and can("patch", "cronjobs.batch/spamops-retrain")
    for denied in (
        ("delete", "jobs.batch"),
        ("patch", "jobs.batch"),
        ("patch", "cronjobs.batch/other"),
        ("create", "cronjobs.batch"),
        ("get", "secrets"),
        ("create", "pods"),
        ("patch", "inferenceservices.serving.kserve.io"),
    ):
        assert not can(*denied), denied


@pytest.fixture
def seaweed_env(tmp_path, monkeypatch):
    """A real SeaweedFS S3 server on loopback, with the env the trainer's Secret gives a pod."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("spamops_seaweedfs_trigger", REPO / "scripts" / "seaweedfs.py")
    seaweedfs = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = seaweedfs
    spec.loader.exec_module(seaweedfs)
    server = seaweedfs.SeaweedFS.create(tmp_path / "seaweedfs", bucket="spamops")
    server.start()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_CA_BUNDLE", "S3_USE_HTTPS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    try:
        yield server
    finally:
        server.kill()


def test_data_trigger_sees_a_changed_object_in_the_bucket(cronjob: Kube, seaweed_env, tmp_path, capsys, monkeypatch):
    from spamops.registry.store import open_store

    data = open_store("s3://spamops/data")
    data.put("sms.csv", DEMO.read_bytes())
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump({"store": "s3://spamops/models", "data": {"sources": ["s3://spamops/data/sms.csv"]}})
    )
    assert main(["train", "--config", str(config), "--quiet"]) == 0
    monkeypatch.setenv("KUBECONFIG", str(cronjob.kubeconfig))

    def run() -> dict:
        capsys.readouterr()
        assert main(["trigger", "data", "--config", str(config), "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    assert run()["outcome"] == "unchanged"
    data.put("sms.csv", DEMO.read_bytes() + b"spam,URGENT you have won a prize call now\n")
    changed = run()
    assert changed["outcome"] == "created", changed
    assert "s3://spamops/data/sms.csv" in changed["changes"][0]
    assert [j["metadata"]["name"] for j in jobs(cronjob)] == [changed["job"]]
