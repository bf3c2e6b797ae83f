"""Development and test support for spamops: the local stand-ins for a cluster's parts.

Not used by the application. Everything a test, a ``make`` target or a script
starts on this machine lives here once: loopback ports (:mod:`.ports`), child
processes (:mod:`.processes`), certificates (:mod:`.pki`), the cached binaries
(:mod:`.artifacts`), the control plane (:mod:`.controlplane`), the cluster with
controllers, KWOK and KServe (:mod:`.cluster`, :mod:`.kserve`), SeaweedFS
(:mod:`.seaweedfs`) and the monitoring daemons, Prometheus and Alertmanager
(:mod:`.daemon`, :mod:`.prometheus`, :mod:`.alertmanager`), and test artifacts such
as a deliberately slow model version (:mod:`.slow_model`). Its own distribution,
``spamops-dev`` (``dev/pyproject.toml``), installed editable by ``make install``: never
in the spamops wheel or the images, and never imported by spamops (an import-linter
contract). Everything it starts binds 127.0.0.1 and is stopped by PID.
"""
