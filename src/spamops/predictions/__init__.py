"""Production's predictions read back: the inference log the predictor writes (``inference_log``)
and the feedback labels users upload (``feedback``), joined by prediction id.

Both the monitor (concept drift, ``spamops.monitoring``) and training (a ``labelled_log`` data
source, ``spamops.training.data``) read them, so they live below both (docs/architecture.md, "Layers").
The writer is the predictor's (``spamops.serving.inference_log``).
"""
