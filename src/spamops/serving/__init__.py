"""The KServe predictor: the spam model behind the V1 and Open Inference (V2) protocols.

``python -m spamops.serving --model_name spam --model_dir /mnt/models`` starts it.
The modules are small on purpose: :mod:`.artifact` decides whether a model
directory may be trusted, :mod:`.lookup` answers predictions, :mod:`.inputs`
turns request bodies into features, :mod:`.explain` says why, :mod:`.metrics`
counts, :mod:`.model` ties them into a ``kserve.Model`` and :mod:`.http`
adds what KServe's stock server lacks (a body limit, 400s instead of 422/500,
readiness and metadata that know the model version).
"""
