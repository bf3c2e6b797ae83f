"""The Helm chart and the kustomize tree say what the project promises.

These run helm/kubectl locally (no API server): one source of truth (the base
is the chart's rendering), schema-checked values, and the contract with the
trainer and the predictor written down as checks on the rendered objects.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import chart_training_schema
import pytest
import yaml
from k8shelpers import CHART, MANIFESTS, REPO, load_docs

CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


def helm(helm_bin: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([str(helm_bin), *args], capture_output=True, text=True, cwd=REPO, timeout=120)
    if check and res.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{res.stderr}")
    return res


def render(helm_bin: Path, *sets: str, values: Path | None = None) -> dict[tuple[str, str], dict]:
    args = ["template", "spamops", str(CHART), "--namespace", "spamops"]
    if values:
        args += ["-f", str(values)]
    for s in sets:
        args += ["--set", s]
    return {(d["kind"], d["metadata"]["name"]): d for d in load_docs(helm(helm_bin, *args).stdout)}


def _unknown_keys(values: dict, defaults: dict, prefix: str = "") -> list[str]:
    """Keys of a value set that values.yaml does not have (free-form maps such as nodeSelector, and
    training.config, which RunConfig checks, are not looked into)."""
    unknown = []
    for k, v in values.items():
        path = f"{prefix}{k}"
        if k not in defaults:
            unknown.append(path)
        elif isinstance(v, dict) and isinstance(defaults[k], dict) and defaults[k] and path != "training.config":
            unknown += _unknown_keys(v, defaults[k], f"{path}.")
    return unknown


def test_non_default_value_sets_each_change_the_rendering(helm_bin):
    """At least three value sets, each setting only keys values.yaml has, and each rendering
    objects that differ from the defaults and from every other set: none is a no-op copy."""
    assert len(CI_VALUES) >= 3, CI_VALUES
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    renderings = {"default": render(helm_bin)}
    for values in CI_VALUES:
        unknown = _unknown_keys(yaml.safe_load(values.read_text()), defaults)
        assert not unknown, f"{values.name} sets keys values.yaml does not have: {unknown}"
        renderings[values.name] = render(helm_bin, values=values)
    dumps = {name: yaml.safe_dump(objs) for name, objs in renderings.items()}
    assert len(set(dumps.values())) == len(dumps), "two value sets render the same objects"


def test_kustomize_base_is_the_chart_rendered_with_default_values(tmp_path, helm_bin):
    """No silent drift: manifests/base/spamops.yaml must be re-generated
    (make manifests) whenever the chart changes."""
    out = tmp_path / "spamops.yaml"
    subprocess.run(
        ["bash", str(REPO / "scripts/k8s/render-base.sh"), str(out)],
        check=True,
        env={**os.environ, "HELM": str(helm_bin)},
    )
    committed = (MANIFESTS / "base" / "spamops.yaml").read_text()
    assert out.read_text() == committed, "manifests/base is stale: run `make manifests`"


@pytest.mark.parametrize(
    "bad_set, complaint",
    [
        ("predictor.canaryTrafficPercent=150", "canaryTrafficPercent"),
        ("s3.endpoint=https://s3.example.com", "endpoint"),
        ("training.config.unknown_key=1", "unknown_key"),
        ("training.config.store=ftp://x", "store"),
        ("training.config.gate.min_baseline_margin=1.5", "min_baseline_margin"),
        ("training.config.gate.champion_tolerance=2", "champion_tolerance"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("networkPolicy.predictorPorts={70000}", "predictorPorts"),
        ("monitoring.inferenceLog.uri=http://logs.example.com", "uri"),
        ("monitoring.inferenceLog.batchEvents=1", "batchEvents"),
        ("monitoring.feedbackUri=ftp://x", "feedbackUri"),
        ("monitoring.monitor.minLabels=0", "minLabels"),
    ],
)
def test_values_schema_rejects_bad_values(helm_bin, bad_set, complaint):
    res = helm(helm_bin, "template", "x", str(CHART), "--set", bad_set, check=False)
    assert res.returncode != 0
    assert "values don't meet the specifications of the schema" in res.stderr
    assert complaint in res.stderr


def one_off_training_job(objs: dict) -> dict:
    (job,) = [o for (kind, name), o in objs.items() if kind == "Job" and name.startswith("spamops-train-")]
    return job


def _trainer_pod_specs(objs):
    job = one_off_training_job(objs)["spec"]
    cron = objs[("CronJob", "spamops-retrain")]["spec"]["jobTemplate"]["spec"]
    return [("Job", job), ("CronJob", cron)]


def test_training_runs_retry_crashes_but_not_refusals(helm_bin):
    """Exit 1 (crash, storage outage) retries within backoffLimit; exit 2 (bad
    input) and 3 (gate refused) fail the Job at once; evictions do not count;
    130/143 (stopped by SIGINT/SIGTERM before promoting) count like a crash."""
    objs = render(helm_bin)
    for kind, spec in _trainer_pod_specs(objs):
        assert spec["backoffLimit"] >= 1, kind
        rules = spec["podFailurePolicy"]["rules"]
        fail = [r for r in rules if r["action"] == "FailJob"]
        assert len(fail) == 1, kind
        assert fail[0]["onExitCodes"] == {"containerName": "trainer", "operator": "In", "values": [2, 3]}, kind
        assert any(r["action"] == "Ignore" and r["onPodConditions"][0]["type"] == "DisruptionTarget" for r in rules), (
            kind
        )
        stopped = {"containerName": "trainer", "operator": "In", "values": [130, 143]}
        (count,) = [r for r in rules if r.get("onExitCodes") == stopped]
        assert count["action"] == "Count", kind
        assert rules.index(count) > rules.index(fail[0]), kind
        assert spec["activeDeadlineSeconds"] > 0
        pod = spec["template"]["spec"]
        assert pod["restartPolicy"] == "Never"  # required by podFailurePolicy
    assert objs[("CronJob", "spamops-retrain")]["spec"]["concurrencyPolicy"] == "Forbid"


def test_only_the_one_off_job_has_a_ttl(helm_bin):
    """A TTL on the CronJob's Jobs would delete each run a day after it finished,
    before the history limits (the last 3 runs and their logs) ever mattered."""
    objs = render(helm_bin, "training.ttlSecondsAfterFinished=600")
    assert one_off_training_job(objs)["spec"]["ttlSecondsAfterFinished"] == 600
    cron = objs[("CronJob", "spamops-retrain")]["spec"]
    assert "ttlSecondsAfterFinished" not in cron["jobTemplate"]["spec"]
    assert cron["successfulJobsHistoryLimit"] == 3 and cron["failedJobsHistoryLimit"] == 3


def test_trainer_pod_contract(helm_bin):
    objs = render(helm_bin)
    for _kind, spec in _trainer_pod_specs(objs):
        pod = spec["template"]["spec"]
        assert pod["serviceAccountName"] == "spamops-trainer"
        assert pod["automountServiceAccountToken"] is True  # patches the InferenceService
        assert pod["securityContext"]["runAsNonRoot"] is True
        (c,) = pod["containers"]
        assert c["name"] == "trainer"
        assert c["image"] == "spamops/trainer:0.1.0"
        assert c["command"] == ["spamops", "train", "--config", "/etc/spamops/config.yaml"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["requests"] and c["resources"]["limits"]
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        vols = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in vols[mounts["/tmp"]], "scratch space for a read-only root"
        assert vols[mounts["/etc/spamops"]]["configMap"]["name"] == "spamops-training-config"
        env = {e["name"]: e for e in c["env"]}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "spamops-s3", "key": key}
        assert env["AWS_ENDPOINT_URL"]["value"] == "https://s3.amazonaws.com"
        # One endpoint variable with its scheme; no S3_ENDPOINT/S3_USE_HTTPS to keep in step.
        assert "S3_ENDPOINT" not in env and "S3_USE_HTTPS" not in env
        assert env["S3_VERIFY_SSL"]["value"] == "1"
        assert env["AWS_DEFAULT_REGION"]["value"] == "us-east-1"


def test_training_config_is_the_values_config_plus_the_rollout_target(helm_bin):
    objs = render(helm_bin)
    cfg = yaml.safe_load(objs[("ConfigMap", "spamops-training-config")]["data"]["config.yaml"])
    values = yaml.safe_load((CHART / "values.yaml").read_text())["training"]["config"]
    values["rollout"].update(inference_service="spam", namespace="spamops")
    assert cfg == values
    assert cfg["store"] == "s3://spamops/models"
    assert "gate" not in cfg, "gate thresholds come from spamops' own defaults, not a copy in the chart"
    assert cfg["rollout"] == {
        "enabled": True,
        "canary_percent": 10,
        "inference_service": "spam",
        "namespace": "spamops",
    }
    moved = render(helm_bin, "namespace.name=ml", "modelName=sms")
    cfg = yaml.safe_load(moved[("ConfigMap", "spamops-training-config")]["data"]["config.yaml"])
    assert (cfg["rollout"]["inference_service"], cfg["rollout"]["namespace"]) == ("sms", "ml")


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "default")
def test_training_config_is_accepted_by_the_trainer(helm_bin, tmp_path, values):
    """The rendered config.yaml loads with the trainer's own config models
    (extra keys forbidden): the chart schema and the trainer agree."""
    from spamops import config

    objs = render(helm_bin, values=values)
    path = tmp_path / "config.yaml"
    path.write_text(objs[("ConfigMap", "spamops-training-config")]["data"]["config.yaml"])
    run = config.load_config(path)
    assert run.rollout.inference_service == next(k[1] for k in objs if k[0] == "InferenceService")


def test_trainer_rejects_what_the_schema_would_let_through(tmp_path):
    """The check above can fail: a config with a key the trainer does not know
    is refused by load_config."""
    from spamops import config

    path = tmp_path / "config.yaml"
    path.write_text("model_name: spam\nstore: s3://spamops/models\nbogus: 1\n")
    with pytest.raises(config.BadInputError):
        config.load_config(path)


def test_standard_deployment_mode_renders_a_standard_inferenceservice(helm_bin):
    """Standard: KServe makes a Deployment + Service; Knative's tag routing does not apply."""
    isvc = render(helm_bin, "predictor.deploymentMode=Standard")[("InferenceService", "spam")]
    ann = isvc["metadata"]["annotations"]
    assert ann["serving.kserve.io/deploymentMode"] == "Standard"
    assert "serving.kserve.io/enable-tag-routing" not in ann
    bad = helm(helm_bin, "template", "x", str(CHART), "--set", "predictor.deploymentMode=RawDeployment", check=False)
    assert bad.returncode != 0 and "deploymentMode" in bad.stderr


def test_inferenceservice_contract(helm_bin):
    isvc = render(helm_bin)[("InferenceService", "spam")]
    ann = isvc["metadata"]["annotations"]
    # deploymentMode Serverless (the default), written as KServe's canonical "Knative".
    assert ann["serving.kserve.io/deploymentMode"] == "Knative"
    assert ann["serving.kserve.io/enable-tag-routing"] == "true"
    pred = isvc["spec"]["predictor"]
    assert pred["serviceAccountName"] == "spamops-predictor"
    assert "canaryTrafficPercent" not in pred
    (c,) = pred["containers"]
    assert c["name"] == "kserve-container"
    assert c["image"] == "spamops/predictor:0.1.0"
    assert c["command"] + c["args"] == [
        "python",
        "-m",
        "spamops.serving",
        "--model_name",
        "spam",
        "--model_dir",
        "/mnt/models",
    ]
    assert c["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]
    assert c["readinessProbe"]["httpGet"] == {"path": "/v1/models/spam", "port": 8080}
    assert {e["name"]: e["value"] for e in c["env"]} == {"STORAGE_URI": "s3://spamops/models/spam/bootstrap/"}


def test_canary_and_image_values_reach_the_inferenceservice(helm_bin):
    isvc = render(helm_bin, values=CHART / "ci" / "canary-values.yaml")[("InferenceService", "spam")]
    pred = isvc["spec"]["predictor"]
    assert pred["canaryTrafficPercent"] == 10
    c = pred["containers"][0]
    assert c["image"] == "registry.example.com/ml/spamops/predictor:0.2.0-rc.1"
    assert c["env"] == [{"name": "STORAGE_URI", "value": "s3://spamops/models/spam/spam_model_20251119_063257/"}]
    # 0 is a valid canary (roll back: keep the new storageUri, no traffic).
    zero = render(helm_bin, "predictor.canaryTrafficPercent=0")[("InferenceService", "spam")]
    assert zero["spec"]["predictor"]["canaryTrafficPercent"] == 0


def test_trainer_endpoint_scheme_follows_use_https(helm_bin):
    objs = render(helm_bin, values=CHART / "ci" / "dev-seaweedfs-values.yaml")
    for kind, spec in _trainer_pod_specs(objs):
        env = {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0]["env"]}
        assert env["AWS_ENDPOINT_URL"].startswith("http://"), kind


def test_s3_secret_and_predictor_service_account(helm_bin):
    objs = render(helm_bin)
    secret = objs[("Secret", "spamops-s3")]
    ann = secret["metadata"]["annotations"]
    assert ann["serving.kserve.io/s3-endpoint"] == "s3.amazonaws.com"
    assert ann["serving.kserve.io/s3-usehttps"] == "1"
    assert ann["serving.kserve.io/s3-verifyssl"] == "1"
    assert ann["serving.kserve.io/s3-region"] == "us-east-1"
    assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert set(secret["stringData"].values()) == {"CHANGE-ME"}, "placeholders only in git"
    sa = objs[("ServiceAccount", "spamops-predictor")]
    assert sa["automountServiceAccountToken"] is False
    assert sa["secrets"] == [{"name": "spamops-s3"}]
    assert ("RoleBinding", "spamops-predictor") not in objs
    dev = render(helm_bin, values=CHART / "ci" / "dev-seaweedfs-values.yaml")[("Secret", "spamops-s3")]
    assert dev["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "0"


def test_trainer_role_is_least_privilege(helm_bin):
    role = render(helm_bin)[("Role", "spamops-trainer")]
    assert role["rules"] == [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "resourceNames": ["spam"],
            "verbs": ["get", "patch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["spamops-rollout-spam"],
            "verbs": ["get", "update"],
        },
        {
            "apiGroups": ["gateway.networking.k8s.io"],
            "resources": ["httproutes"],
            "resourceNames": ["spam-spamops-canary"],
            "verbs": ["get", "patch"],
        },
    ]
    moved = render(helm_bin, "modelName=sms")[("Role", "spamops-trainer")]
    assert moved["rules"][0]["resourceNames"] == ["sms"], "the Role follows the InferenceService's name"


def test_sync_waves_order_prerequisites_before_workloads(helm_bin):
    objs = render(helm_bin)
    wave = {
        k: int(o["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for k, o in objs.items()
        if "argocd.argoproj.io/sync-wave" in (o["metadata"].get("annotations") or {})
    }
    isvc = wave[("InferenceService", "spam")]
    # The trainer patches the InferenceService: it must exist before a training
    # run gets there, so it is never in a later wave than the Job/CronJob. Nor
    # in an earlier one: Argo CD waits for a wave to be healthy, and the
    # InferenceService is healthy only once a training run wrote a model.
    assert wave[("CronJob", "spamops-retrain")] == isvc
    assert wave[("Job", one_off_training_job(objs)["metadata"]["name"])] == isvc
    for k in [
        ("Secret", "spamops-s3"),
        ("ServiceAccount", "spamops-predictor"),
        ("ServiceAccount", "spamops-trainer"),
        ("Role", "spamops-trainer"),
        ("RoleBinding", "spamops-trainer"),
        ("ConfigMap", "spamops-training-config"),
    ]:
        assert wave[k] < isvc, k
    assert wave[("Namespace", "spamops")] == min(wave.values())
    smoke = objs[("Job", "spamops-smoke-test")]["metadata"]["annotations"]
    assert smoke["argocd.argoproj.io/hook"] == "PostSync"
    assert smoke["helm.sh/hook"] == "test"


def test_one_off_job_name_follows_its_spec(helm_bin):
    """Job templates are immutable: a changed spec must get a new name (a new
    run) so that helm upgrade / kubectl apply do not fail; same spec, same name."""
    default = one_off_training_job(render(helm_bin))["metadata"]["name"]
    assert default == one_off_training_job(render(helm_bin))["metadata"]["name"]
    for change in ("image.tag=0.2.0", "training.backoffLimit=5", "s3.endpoint=minio:9000"):
        assert one_off_training_job(render(helm_bin, change))["metadata"]["name"] != default, change
    # The ConfigMap is mounted, not part of the Job spec: editing it starts no run.
    assert one_off_training_job(render(helm_bin, "training.config.train.seed=1"))["metadata"]["name"] == default


def test_minimal_values_render_only_the_inferenceservice_and_prerequisites(helm_bin):
    objs = render(helm_bin, values=CHART / "ci" / "minimal-values.yaml")
    assert sorted(k for k, _ in objs) == [
        "ConfigMap",
        "InferenceService",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "ServiceAccount",
    ]


def _kustomize(path: Path) -> dict[tuple[str, str], dict]:
    from spamops_dev.artifacts import ensure_artifacts

    kubectl = ensure_artifacts().kubectl
    out = subprocess.run([str(kubectl), "kustomize", str(path)], capture_output=True, text=True, check=True).stdout
    return {(d["kind"], d["metadata"]["name"]): d for d in load_docs(out)}


def test_dev_overlay_uses_in_cluster_seaweedfs():
    objs = _kustomize(MANIFESTS / "overlays" / "dev")
    assert ("Deployment", "seaweedfs") in objs and ("Service", "seaweedfs") in objs
    svc_ports = {p["port"] for p in objs[("Service", "seaweedfs")]["spec"]["ports"]}
    assert 8333 in svc_ports
    cron = objs[("CronJob", "spamops-retrain")]["spec"]
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["AWS_ENDPOINT_URL"] == "http://seaweedfs.spamops.svc.cluster.local:8333"
    assert "valueFrom" in {e["name"]: e for e in pod["containers"][0]["env"]}["AWS_SECRET_ACCESS_KEY"], (
        "credentials still come from the Secret"
    )
    assert pod["containers"][0]["resources"]["requests"]["cpu"] == "100m"
    ann = objs[("Secret", "spamops-s3")]["metadata"]["annotations"]
    assert ann["serving.kserve.io/s3-endpoint"] == "seaweedfs.spamops.svc.cluster.local:8333"
    assert ann["serving.kserve.io/s3-usehttps"] == "0"


def test_dev_overlay_trains_on_demand_from_the_cronjob():
    """A one-off Job applied with a still empty bucket fails at once (exit 2 ->
    FailJob): dev has none; runs are created from the suspended CronJob after
    the data is uploaded."""
    objs = _kustomize(MANIFESTS / "overlays" / "dev")
    assert not [k for k in objs if k[0] == "Job" and k[1].startswith("spamops-train-")]
    assert objs[("CronJob", "spamops-retrain")]["spec"]["suspend"] is True


def test_prod_overlay_ships_no_secret_and_no_one_off_job():
    objs = _kustomize(MANIFESTS / "overlays" / "prod")
    assert not [k for k in objs if k[0] == "Secret"], "real credentials are created out of band"
    assert not [k for k in objs if k[0] == "Job" and k[1].startswith("spamops-train-")]
    assert ("CronJob", "spamops-retrain") in objs
    assert objs[("InferenceService", "spam")]["spec"]["predictor"]["minReplicas"] >= 2


def test_chart_schema_of_the_training_config_is_generated_from_runconfig():
    """values.schema.json's training.config is RunConfig's JSON Schema (plus the cluster-only bounds),
    regenerated by `make chart-schema`; a model change without it fails here."""
    assert not chart_training_schema.stale(), "stale training.config schema: run `make chart-schema`"


def test_the_generated_schema_check_catches_a_hand_edit_and_a_model_change(monkeypatch):
    committed = chart_training_schema.current()
    loosened = json.loads(json.dumps(committed))
    del loosened["properties"]["gate"]["properties"]["min_accuracy"]["maximum"]
    assert chart_training_schema.stale(loosened)

    from spamops import config

    class Grown(config.RunConfig):
        extra_setting: int = 1

    monkeypatch.setattr(config, "RunConfig", Grown)
    assert chart_training_schema.stale(committed)
    assert "extra_setting" in chart_training_schema.generated()["properties"]


def test_a_renamed_setting_the_trainer_still_reads_is_accepted_by_the_chart_under_its_old_name(helm_bin, tmp_path):
    """spamops.config.RENAMED_SETTINGS: while the trainer reads the old name (with a warning), helm takes it too."""
    from spamops import config

    old, entry = "train.dask_connect_timeout_s", config.RENAMED_SETTINGS["train.dask_connect_timeout_s"]
    assert entry.read_by()
    objs = render(helm_bin, f"training.config.{old}=7")
    path = tmp_path / "config.yaml"
    path.write_text(objs[("ConfigMap", "spamops-training-config")]["data"]["config.yaml"])
    with pytest.warns(config.RenamedSettingWarning, match=f"{old} is now {entry.new}"):
        assert config.load_config(path).train.dask_connect_timeout_seconds == 7.0
    node = chart_training_schema.current()["properties"]["train"]["properties"]
    assert node["dask_connect_timeout_s"]["deprecated"] is True and "dask_connect_timeout_seconds" in node


def test_chart_annotation_names_the_kserve_version_the_tests_use():
    """Chart.yaml's spamops.io/kserve-version says which KServe the chart is
    tested against: the CRDs' version pinned in scripts/envtest/versions.env."""
    versions = dict(
        line.split("=", 1)
        for line in (REPO / "scripts/envtest/versions.env").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["annotations"]["spamops.io/kserve-version"] == versions["KSERVE_VERSION"]


def test_inference_log_and_feedback_values_configure_the_predictor_and_the_monitor(helm_bin, monkeypatch):
    """The chart's env and args, given to the real argument parsers, turn on what the values name."""
    import argparse

    from spamops.cli import build_parser
    from spamops.serving import inference_log

    objs = render(
        helm_bin,
        "monitoring.monitor.enabled=true",
        "monitoring.inferenceLog.uri=s3://spamops/inference-log",
        "monitoring.inferenceLog.batchEvents=200",
        "monitoring.feedbackUri=s3://spamops/feedback",
        "monitoring.monitor.minLabels=30",
        "predictor.shadowStorageUri=s3://spamops/models/spam/v2/",
    )
    (container,) = objs[("InferenceService", "spam")]["spec"]["predictor"]["containers"]
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), names  # shadow and log both on S3: the credentials once
    assert {"AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "SHADOW_STORAGE_URI"} <= set(names)
    plain = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    for name, value in plain.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser()
    parser.add_argument("--model_name", default="spam")
    inference_log.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.inference_log_uri, args.inference_log_batch_events) == ("s3://spamops/inference-log", 200)
    assert args.inference_log_flush_seconds == 10

    monitor = objs[("Deployment", "spamops-monitor")]["spec"]["template"]["spec"]["containers"][0]
    for e in monitor["env"]:
        if "value" in e:
            monkeypatch.setenv(e["name"], e["value"])
    parsed = build_parser().parse_args([*monitor["command"][1:], *monitor["args"]])
    assert (parsed.inference_log, parsed.feedback) == ("s3://spamops/inference-log", "s3://spamops/feedback")
    assert (parsed.min_labels, parsed.quality_window, parsed.serve) == (30, "7d", True)
    service = objs[("Service", "spamops-monitor")]
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9108, "targetPort": "metrics"}]

    off = render(helm_bin)[("InferenceService", "spam")]["spec"]["predictor"]["containers"][0]
    assert [e["name"] for e in off["env"]] == ["STORAGE_URI"]  # off by default: no log, no credentials
