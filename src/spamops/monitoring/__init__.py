"""Watching the model in production: data drift across the predictor replicas (``monitor``), concept
drift on the labelled inference log (``quality``, ``server``), rollout decisions as metrics
(``rollouts``) and the retraining triggers (``alert_receiver``, ``data_trigger``).
See docs/monitoring.md; its place among the layers: docs/architecture.md."""
