"""The pipeline's own rollout code, authenticated as the trainer's ServiceAccount.

A real token for system:serviceaccount:spamops:spamops-trainer (TokenRequest,
signed by the test API server) drives spamops.deploy.kserve against the
InferenceService the chart deploys: the Role is enough for what the code does,
and the predictor's account gets nothing.
"""

from __future__ import annotations

import pytest
from k8shelpers import NAMESPACE, Kube, token_kubeconfig

VERSION_URI = "s3://spamops/models/spam/spam_model_20251119_063257/"


@pytest.fixture
def deployed(clean: Kube) -> Kube:
    clean.apply(clean.helm_template())
    return clean


def test_trainer_token_can_run_a_canary_promote_and_rollback(deployed: Kube, tmp_path):
    from spamops.deploy import kserve as rollout

    target = rollout.Target(
        name="spam", namespace=NAMESPACE, kubeconfig=str(token_kubeconfig(deployed, "spamops-trainer", tmp_path / "kc"))
    )
    before = rollout.status(target)
    assert before.storage_uri == "s3://spamops/models/spam/bootstrap/" and before.canary_percent is None

    state = rollout.canary(target, VERSION_URI, 10)
    assert (state.storage_uri, state.canary_percent) == (VERSION_URI, 10)
    live = deployed.get(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "spam", "namespace": NAMESPACE},
        }
    )
    assert "spamops-rollout" in {m["manager"] for m in live["metadata"]["managedFields"]}
    assert live["spec"]["predictor"]["containers"][0]["name"] == "kserve-container"

    assert rollout.rollback(target).canary_percent == 0
    assert rollout.promote(target).canary_percent is None
    assert rollout.status(target).storage_uri == VERSION_URI


def test_predictor_token_cannot_read_the_inferenceservice(deployed: Kube, tmp_path):
    from spamops.deploy import kserve as rollout
    from spamops.errors import SpamopsError

    target = rollout.Target(
        name="spam",
        namespace=NAMESPACE,
        kubeconfig=str(token_kubeconfig(deployed, "spamops-predictor", tmp_path / "kc")),
    )
    with pytest.raises(SpamopsError, match="403"):
        rollout.status(target)
