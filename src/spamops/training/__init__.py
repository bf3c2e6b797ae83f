"""The training side: ingest → features → train → evaluate → gate → card/report, driven by ``pipeline``.

``data`` ingests and fingerprints the sources (``demo_data`` is the bundled sample, ``uci`` fetches
the public collection); ``train`` splits and searches (``search``: the grid search at the cost of
the distinct rows); ``evaluate`` scores the held-out rows; ``gate`` applies the rules, with
``champion`` scoring production on both versions' held-out rows (``snapshots``) and ``regate``
re-running a stored version's gate; ``card`` and ``report`` write what is stored with a version.

Training ends at "promoted"; it never talks to Kubernetes (``spamops.deploy`` does, as a separate
step after a promotion). A test checks this package imports no Kubernetes client.
"""
