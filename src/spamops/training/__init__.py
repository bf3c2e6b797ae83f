"""The training side: ingest → features → train → evaluate → gate → card/report, driven by ``pipeline``.

Training ends at "promoted"; it never talks to Kubernetes (``spamops.deploy`` does, as a separate
step after a promotion). A test checks this package imports no Kubernetes client.
"""
