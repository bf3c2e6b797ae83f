"""The deploy side: the KServe InferenceService rendered from the chart, and rollouts on it (canary
with metrics analysis, blue/green, shadow, GitOps write-back), the Lease that serialises them and
the retraining Job trigger. See docs/rollout.md; its place among the layers: docs/architecture.md."""
