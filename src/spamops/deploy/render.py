"""The InferenceService for a version, rendered by Helm from the chart (the one source of truth).

``helm template`` with the version's storage URI (``keepLiveModel: false``: a
render must not depend on the live cluster), then only what the chart cannot
know: the mode annotation, the Standard canary entry, and the version/sha256
labels and annotations that let ``kubectl get isvc -L`` and Argo CD show which
model serves.  GitOps write-back renders through here too, so what git holds is
what a direct rollout would have applied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from spamops.deploy import traffic
from spamops.errors import BadInputError
from spamops.records import ModelCard, ProductionPointer

HELM_ENV = "SPAMOPS_HELM"
VERSION_LABEL = "rollout.spamops.io/version"
SHA_ANNOTATION = "rollout.spamops.io/sha256"
SHADOW_ANNOTATION = "rollout.spamops.io/shadow-version"


def default_chart() -> Path:
    """The chart this package renders: the copy a wheel carries, else the checkout's ``helm/spamops``.

    A wheel (and so both images) ships ``spamops/deploy/chart/``, copied from
    ``helm/spamops`` at build time (setup.py); an editable install or a source
    checkout on ``PYTHONPATH`` has no copy and reads the chart where Argo CD
    and ``helm install`` read it.
    """
    packaged = resources.files("spamops.deploy") / "chart"
    if packaged.joinpath("Chart.yaml").is_file():
        return Path(str(packaged))  # an installed wheel is plain files on disk, which helm needs
    package = Path(str(resources.files("spamops")))
    if package.parent.name == "src":  # a checkout: <root>/src/spamops beside <root>/helm/spamops
        checkout = package.parent.parent / "helm" / "spamops"
        if (checkout / "Chart.yaml").is_file():
            return checkout
    raise BadInputError(
        f"no chart: {packaged} is missing (an install without the chart?) and {package} is not in a checkout; "
        "pass --chart DIR (a copy of helm/spamops)"
    )


def helm_binary() -> str:
    """``$SPAMOPS_HELM``, ``helm`` on PATH, or the pinned one ``scripts/envtest/build.sh helm`` caches."""
    explicit = os.environ.get(HELM_ENV)
    if explicit:
        return explicit
    found = shutil.which("helm")
    if found:
        return found
    cache = Path(os.environ.get("SPAMOPS_CACHE", Path.home() / ".cache" / "spamops")) / "envtest"
    for candidate in sorted(cache.glob("helm-*/helm"), reverse=True):
        return str(candidate)
    raise BadInputError(f"helm not found: install it, set {HELM_ENV}, or run 'scripts/envtest/build.sh helm'")


def chart_values(uri: str, percent: int | None, shadow_uri: str | None = None) -> dict[str, Any]:
    """The chart values that pin the predictor to ``uri`` (a Serverless canary share, a shadow version)."""
    predictor = {"storageUri": uri, "canaryTrafficPercent": percent, "keepLiveModel": False}
    if shadow_uri:
        predictor["shadowStorageUri"] = shadow_uri
    return {"predictor": predictor}


def check_storage_uri(chart: Path, field: str, record: ModelCard | ProductionPointer) -> None:
    """Refuse, naming the version and the fix, a storage URI the chart's schema would refuse for
    ``predictor.<field>`` (helm's own message names neither): KServe downloads ``s3://`` and a few
    other schemes, not the default local store's ``file://``."""
    schema = chart / "values.schema.json"
    if not schema.is_file():
        return
    predictor = json.loads(schema.read_text()).get("properties", {}).get("predictor", {})
    pattern = predictor.get("properties", {}).get(field, {}).get("pattern")
    if pattern and not re.search(pattern, record.storage_uri):
        raise BadInputError(
            f"{record.version}: storage URI {record.storage_uri} is not one the InferenceService can pull "
            f"(the chart's predictor.{field} must match {pattern}); render versions of an s3:// store "
            "(--store s3://BUCKET/PREFIX; 'make storage-up' starts one locally)"
        )


def helm_template(values: dict[str, Any], *, chart: Path | None = None, namespace: str = "spamops") -> dict[str, Any]:
    """The chart's InferenceService for ``values`` (``chart``: :func:`default_chart` unless given)."""
    chart = chart or default_chart()
    if not (chart / "Chart.yaml").is_file():
        raise BadInputError(f"chart {chart}: no Chart.yaml; pass the chart directory")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(values, handle)
    try:
        res = subprocess.run(
            [
                helm_binary(),
                "template",
                "spamops",
                str(chart),
                "-n",
                namespace,
                "-f",
                handle.name,
                "-s",
                "templates/inferenceservice.yaml",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.unlink(handle.name)
    if res.returncode != 0:
        raise BadInputError(
            f"chart {chart}: helm template failed: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}"
        )
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(res.stdout) if d]
    (doc,) = docs
    return doc


def render_isvc(
    card: ModelCard | ProductionPointer,
    *,
    mode: str = "serverless",
    canary: int | None = None,
    stable: ModelCard | ProductionPointer | None = None,
    shadow: ModelCard | ProductionPointer | None = None,
    chart: Path | None = None,
    namespace: str = "spamops",
) -> dict[str, Any]:
    """The InferenceService serving ``card``'s version.

    Without ``canary`` the version is the whole service.  With it, Serverless
    renders the version with ``canaryTrafficPercent`` (Knative keeps the
    previous revision); Standard renders ``stable`` (the production card) as the
    predictor and the version as a ``spec.canary[]`` entry.  With ``shadow``
    the predictor also scores every answered instance with that version
    (``SHADOW_STORAGE_URI``, the chart's ``predictor.shadowStorageUri``); only
    ``card``'s version answers.
    """
    if mode not in ("serverless", "standard"):
        raise BadInputError(f"--mode {mode}: must be serverless or standard")
    if canary is not None and not 0 <= canary <= 100:
        raise BadInputError(f"--canary {canary}: must be between 0 and 100")
    base = card
    if mode == "standard" and canary is not None:
        if stable is None:
            raise BadInputError("--canary in standard mode needs a stable version: nothing is in production yet")
        base = stable
    if shadow is not None and shadow.version == base.version:
        raise BadInputError(f"--shadow {shadow.version}: that version is the one serving; shadow another one")
    chart = chart or default_chart()
    check_storage_uri(chart, "storageUri", base)
    if canary is not None and mode == "standard":
        check_storage_uri(chart, "storageUri", card)
    if shadow is not None:
        check_storage_uri(chart, "shadowStorageUri", shadow)
    values = chart_values(
        base.storage_uri, canary if mode == "serverless" else None, shadow.storage_uri if shadow else None
    )
    # The chart places objects in .Values.namespace.name, not helm's -n: without this, --namespace was ignored.
    values["namespace"] = {"name": namespace}
    doc = helm_template(values, chart=chart, namespace=namespace)
    md = doc["metadata"]
    md.setdefault("annotations", {})[traffic.MODE_ANNOTATION] = "Standard" if mode == "standard" else "Serverless"
    md.setdefault("labels", {})[VERSION_LABEL] = base.version
    md["annotations"][SHA_ANNOTATION] = base.sha256
    if shadow is not None:
        md["annotations"][SHADOW_ANNOTATION] = shadow.version
    where = f"inferenceservice {namespace}/{md['name']}"
    if canary is not None:
        md["annotations"][traffic.CANARY_URI] = card.storage_uri
        md["annotations"][traffic.STABLE_URI] = stable.storage_uri if stable is not None else ""
        if mode == "standard":
            predictor = doc["spec"]["predictor"]
            doc["spec"]["canary"] = [
                {
                    "predictor": {
                        **{k: predictor[k] for k in traffic.CANARY_POD_FIELDS if k in predictor},
                        "name": traffic.dns_name(card.version),
                        "containers": traffic.with_storage_uri(predictor, card.storage_uri, where),
                    },
                    "trafficPercent": canary,
                }
            ]
    return doc
