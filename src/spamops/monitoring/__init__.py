"""Watching the model in production (planned: data and concept drift, alert rules, retraining
triggers). Empty until the monitoring work lands; see docs/architecture.md."""
