"""The deploy side: the KServe InferenceService rendered from the Helm chart (``render``) and the
rollout strategies on it (``rollout``): canary steps whose evidence ``analysis`` queries from
Prometheus and ``judge`` turns into a verdict, blue/green switch and shadow deployment (``shadow``)
on both KServe modes (``traffic``), patched through the API server (``cluster``, one rollout at a
time by a ``lease``) or committed to git for Argo CD (``gitops``), every decision recorded in the
store (``record``); and the training Job a retraining trigger creates from the CronJob
(``retrain``). See docs/rollout.md; its place among the layers: docs/architecture.md."""
