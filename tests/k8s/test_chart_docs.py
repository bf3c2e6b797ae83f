"""The chart documents itself from one source, and names and secures objects through its helpers.

values.yaml's `# --` comments are the only place a value is described: helm-docs renders them
into the chart README (scripts/k8s/chart-docs.sh, `make chart-docs`) and the schema carries the
same text. Object names come from the `spamops.fullname` helper, security contexts from the
pod/container helpers, and the overlays share one kustomize component for the removed Job.
"""

from __future__ import annotations

import json
import os
import subprocess

import chart_values_docs  # scripts/k8s is on pytest's pythonpath (pyproject.toml)
import pytest
import yaml
from k8shelpers import CHART, MANIFESTS, REPO, load_docs

CHART_DOCS = REPO / "scripts" / "k8s" / "chart-docs.sh"
COMPONENT = MANIFESTS / "components" / "no-one-off-training-job"


@pytest.fixture(scope="module")
def helm_docs() -> str:
    """The pinned helm-docs (built from its Go module and cached on first use, like helm)."""
    from spamops_dev.artifacts import ensure_artifacts

    return str(ensure_artifacts().helm_docs)


def test_chart_readme_is_what_helm_docs_generates(helm_docs):
    res = subprocess.run(
        ["bash", str(CHART_DOCS), "--dry-run"],
        capture_output=True,
        text=True,
        env={**os.environ, "HELM_DOCS": helm_docs},
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == (CHART / "README.md").read_text().strip(), "stale chart README: run `make chart-docs`"


def test_chart_readme_documents_every_value_with_its_comment():
    readme = (CHART / "README.md").read_text()
    comments = chart_values_docs.value_comments((CHART / "values.yaml").read_text())

    def leaves(tree, prefix=""):
        for k, v in tree.items():
            path = f"{prefix}{k}"
            if isinstance(v, dict) and v and path not in ("training.config",) and not path.endswith("resources"):
                yield from leaves(v, f"{path}.")
            else:
                yield path

    assert set(leaves(yaml.safe_load((CHART / "values.yaml").read_text()))) == set(comments)
    for key, text in comments.items():
        assert f"| {key} |" in readme, key
        assert text in readme, key


def test_schema_descriptions_are_the_values_comments():
    assert chart_values_docs.mismatches() == []


def test_the_description_check_catches_an_undocumented_or_edited_value():
    values = (CHART / "values.yaml").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    edited = values.replace("  # -- Image tag of both images.\n", "  # -- Image tag.\n")
    assert chart_values_docs.mismatches(edited, schema) == [
        "image.tag: schema description differs from its `# --` comment"
    ]
    undocumented = values.replace("  # -- Image tag of both images.\n", "")
    assert chart_values_docs.mismatches(undocumented, schema) == [
        "image.tag: undocumented (a `# --` comment in values.yaml; a group may have a schema description)"
    ]
    assert chart_values_docs.mismatches(values, {"properties": {}}) == [
        f"{key}: `# --` comment in values.yaml, no such schema property"
        for key in sorted(chart_values_docs.value_comments(values))
    ]


def test_schema_shares_definitions_instead_of_copies():
    schema = json.loads((CHART / "values.schema.json").read_text())
    text = json.dumps(schema["properties"])
    assert {"dnsLabel", "quantity", "resources", "nodeSelector", "tolerations"} <= set(schema["$defs"])
    for name in ("dnsLabel", "quantity", "resources", "nodeSelector", "tolerations"):
        assert f'"#/$defs/{name}"' in text, name
    # The copies the $defs replaced appear nowhere else (training.config mirrors RunConfig and is compared with it).
    outside_config = dict(schema["properties"])
    outside_config["training"] = {**schema["properties"]["training"]}
    outside_config["training"]["properties"] = {
        k: v for k, v in schema["properties"]["training"]["properties"].items() if k != "config"
    }
    assert "(m|k|Ki|M|Mi|G|Gi|T|Ti)" not in json.dumps(outside_config)
    assert json.dumps(outside_config).count("[-a-z0-9]*") == 1  # fullnameOverride's optional-name pattern


def _render(helm_bin, release: str = "spamops", *sets: str) -> list[dict]:
    args = [str(helm_bin), "template", release, str(CHART), "--namespace", "spamops"]
    for s in sets:
        args += ["--set", s]
    return load_docs(subprocess.run(args, capture_output=True, text=True, check=True, timeout=120).stdout)


# Objects named by a value, not by the release: the InferenceService (modelName: the trainer and
# KServe find it by that name), the Namespace and the S3 Secret (created out of band in prod).
NAMED_BY_VALUE = {"InferenceService", "Namespace", "Secret"}


@pytest.mark.parametrize(
    "release, sets, prefix",
    [("ml", (), "ml-spamops-"), ("spamops-prod", (), "spamops-prod-"), ("ml", ("fullnameOverride=sms",), "sms-")],
)
def test_object_names_come_from_the_fullname_helper(helm_bin, release, sets, prefix):
    docs = _render(helm_bin, release, *sets)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] not in NAMED_BY_VALUE}
    assert names and all(name.startswith(prefix) for _, name in names), sorted(names)
    refs = yaml.safe_dump_all(docs)
    assert "spamops-trainer" not in refs.replace(f"{prefix}trainer", ""), "a hard-coded name is left"
    (isvc,) = [d for d in docs if d["kind"] == "InferenceService"]
    assert isvc["spec"]["predictor"]["serviceAccountName"] == f"{prefix}predictor"


def _pod_specs(docs: list[dict]) -> dict[str, dict]:
    specs = {}
    for d in docs:
        if d["kind"] == "Job":
            specs[d["metadata"]["name"]] = d["spec"]["template"]["spec"]
        elif d["kind"] == "CronJob":
            specs[d["metadata"]["name"]] = d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif d["kind"] == "InferenceService":
            specs[d["metadata"]["name"]] = d["spec"]["predictor"]
    return specs


def test_every_pod_and_container_gets_the_security_context_helpers(helm_bin):
    specs = _pod_specs(_render(helm_bin))
    assert len(specs) == 4, sorted(specs)  # one-off Job, CronJob, smoke test, InferenceService
    pod_contexts = {json.dumps(spec["securityContext"], sort_keys=True) for spec in specs.values()}
    assert len(pod_contexts) == 1, pod_contexts
    assert json.loads(pod_contexts.pop()) == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for name, spec in specs.items():
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["runAsNonRoot"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            # Only the model server writes outside its volumes.
            assert sc["readOnlyRootFilesystem"] is (c["name"] != "kserve-container"), name


def test_overlays_remove_the_one_off_job_through_one_component():
    component = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    (patch,) = component["patches"]
    assert patch["target"]["kind"] == "Job" and "$patch: delete" in patch["patch"]
    overlays = sorted(p.parent for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml"))
    assert [o.name for o in overlays] == ["dev", "prod"]
    for overlay in overlays:
        k = yaml.safe_load((overlay / "kustomization.yaml").read_text())
        assert "../../components/no-one-off-training-job" in k.get("components", []), overlay.name
        own = [p for p in k.get("patches", []) if "kind: Job" in p.get("patch", "")]
        assert not own, f"{overlay.name} repeats the component's patch"
