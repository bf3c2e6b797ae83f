"""The real KServe manager (controllers + admission webhooks) as a local process of the test cluster.

KServe runs out of cluster here: the manager reads the API server through a
kubeconfig, serves its webhooks over TLS with a certificate from the cluster's
CA, and the webhook configurations from KServe's own module
(``config/webhook/manifests.yaml``) are registered with ``clientConfig.url``
pointing at 127.0.0.1 instead of an in-cluster Service. Leader election is off
(one manager). KServe's manager has no flag for the webhook's bind address, so
that one port listens on all interfaces; the API server calls it on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from spamops_dev import pki

if TYPE_CHECKING:
    from spamops_dev.cluster import Cluster

NAMESPACE = "kserve"  # the manager's POD_NAMESPACE: where it reads inferenceservice-config
CONFIGMAP = "inferenceservice-config"

# What this test cluster changes in KServe's own ConfigMap, and why:
# there is no Istio and no ingress controller, so KServe must not wait for an
# ingress it cannot get (IngressReady would stay False) nor create VirtualServices.
INGRESS_OVERRIDES = {"disableIngressCreation": True, "disableIstioVirtualHost": True}


def configmap(source: Path) -> dict[str, Any]:
    """KServe's inferenceservice-config from its module, with the test cluster's overrides."""
    cm = yaml.safe_load(source.read_text())
    ingress = json.loads(cm["data"]["ingress"])
    ingress.update(INGRESS_OVERRIDES)
    cm["data"]["ingress"] = json.dumps(ingress, indent=2)
    cm["metadata"] = {"name": CONFIGMAP, "namespace": NAMESPACE}
    return cm


def webhook_configurations(source: Path, port: int, ca_bundle: bytes) -> list[dict[str, Any]]:
    """KServe's webhook configurations with each Service reference turned into a loopback URL."""
    docs = [d for d in yaml.safe_load_all(source.read_text()) if d]
    ca = base64.b64encode(ca_bundle).decode()
    for doc in docs:
        doc["metadata"].pop("creationTimestamp", None)
        for hook in doc.get("webhooks", []):
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca}
    return docs


def serving_cert(cluster: Cluster, tmpdir: Path) -> None:
    """The webhook serving certificate where controller-runtime looks by default ($TMPDIR/k8s-webhook-server/...)."""
    crt, key = pki.loopback_server(cluster.pki, "kserve-webhook", "kserve-webhook-server")
    certs = tmpdir / "k8s-webhook-server" / "serving-certs"
    certs.mkdir(parents=True, exist_ok=True)
    (certs / "tls.crt").write_bytes(crt.read_bytes())
    (certs / "tls.key").write_bytes(key.read_bytes())
