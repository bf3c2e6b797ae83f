"""The KServe predictor: the spam model behind the V1 and Open Inference (V2) protocols.

``python -m spamops.serving --model_name spam --model_dir /mnt/models`` starts it
(:mod:`.__main__`).  The modules are small on purpose:

* :mod:`.artifact` decides whether a model directory may be trusted (sha256 before unpickling);
* :mod:`.lookup` answers predictions from a table precomputed with the pipeline itself;
* :mod:`.inputs` turns request bodies into features, or into a 400 naming the problem;
* :mod:`.explain` says why (percentile position, the neighbours that voted, a sentence);
* :mod:`.metrics` counts; :mod:`.model` ties all of it into a ``kserve.Model``;
* :mod:`.http` adds what KServe's stock server lacks (body limit, 400s instead of
  422/500, readiness and metadata that know the version, a lean V2 route);
* :mod:`.openapi` makes ``/openapi.json`` state the answers (400/404/503) and request bodies as validated;
* :mod:`.server` owns start-up: binds the address first, then loads the model, then serves
  through KServe's own server classes (subclassed, no global patch);
* :mod:`.workers` forks ``--workers`` sharing one loaded model and supervises them;
* :mod:`.fetch` pulls a version for ``--storage-uri``; :mod:`.settings` holds our limits;
* :mod:`.inference_log` writes every answered prediction to the store, off the response path;
* :mod:`.shadow` scores the same instances with a second verified version, off the response path.

docs/serving.md is the user documentation.
"""
