"""The rollout code, authenticated as the trainer's ServiceAccount (the identity that runs rollouts).

A real token for system:serviceaccount:spamops:spamops-trainer (TokenRequest,
signed by the test API server) drives spamops.deploy against the
InferenceService the chart deploys - start (Lease, Event, patch), abort,
promote: the Role is enough for what the code does, and the predictor's
account gets nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from k8shelpers import NAMESPACE, Kube, token_kubeconfig

from spamops.config import RolloutConfig
from spamops.deploy.cluster import Cluster, Target
from spamops.deploy.rollout import Rollouts
from spamops.records import ProductionPointer

VERSION = "spam_model_20251119_063257"
CARD = ProductionPointer(
    model_name="spam",
    version=VERSION,
    storage_uri=f"s3://spamops/models/spam/{VERSION}/",
    sha256="0" * 64,
    promoted_at=datetime(2025, 11, 19, 6, 32, 57, tzinfo=UTC),
    previous_version=None,
    lineage=[],
    action="promote",
    forced=False,
    reason=None,
)


@pytest.fixture
def deployed(clean: Kube) -> Kube:
    clean.kubectl("delete", "-n", NAMESPACE, "leases.coordination.k8s.io,events", "--all", "--ignore-not-found")
    clean.apply(clean.helm_template())
    return clean


def test_trainer_token_can_start_abort_and_promote_a_canary(deployed: Kube, tmp_path):
    kubeconfig = str(token_kubeconfig(deployed, "spamops-trainer", tmp_path / "kc"))
    rollouts = Rollouts(Cluster(Target(name="spam", namespace=NAMESPACE, kubeconfig=kubeconfig)), RolloutConfig())
    before = rollouts.split()
    assert before.stable_uri == "s3://spamops/models/spam/bootstrap/" and before.canary_percent is None

    started = rollouts.start(CARD, 10)
    assert (started.canary_uri, started.canary_percent, started.stable_version) == (
        CARD.storage_uri,
        10,
        "bootstrap",
    )
    live = deployed.get(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "spam", "namespace": NAMESPACE},
        }
    )
    assert "spamops-rollout" in {m["manager"] for m in live["metadata"]["managedFields"]}
    assert live["spec"]["predictor"]["containers"][0]["name"] == "kserve-container"

    assert rollouts.abort("by the test").canary_percent == 0
    assert rollouts.promote().canary_percent is None
    assert rollouts.split().stable_uri == CARD.storage_uri


def test_predictor_token_cannot_read_the_inferenceservice(deployed: Kube, tmp_path):
    from spamops.errors import SpamopsError

    kubeconfig = str(token_kubeconfig(deployed, "spamops-predictor", tmp_path / "kc"))
    rollouts = Rollouts(Cluster(Target(name="spam", namespace=NAMESPACE, kubeconfig=kubeconfig)), RolloutConfig())
    with pytest.raises(SpamopsError, match="403"):
        rollouts.split()
