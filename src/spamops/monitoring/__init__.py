"""Watching the model in production: data drift of every served version against its card's
training reference, summed across the predictor replicas (``drift``, ``monitor``), concept drift
on the labelled inference log (``quality``), both exported by ``server``, rollout decisions as
metrics (``rollouts``) and the retraining triggers (``alert_receiver`` for Alertmanager webhooks,
``data_trigger`` for changed sources).
See docs/monitoring.md; its place among the layers: docs/architecture.md."""
