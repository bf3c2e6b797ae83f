"""The deploy side: KServe InferenceService objects and rollout strategies (canary today; canary
analysis, blue/green and GitOps write-back land here)."""
