"""Development and test support for spamops: the local stand-ins for a cluster's parts.

Not used by the application. Everything a test, a ``make`` target or a script
starts on this machine lives here once: loopback ports (:mod:`.ports`), child
processes (:mod:`.processes`), certificates (:mod:`.pki`), the cached binaries
(:mod:`.artifacts`), the control plane (:mod:`.controlplane`), the cluster with
controllers, KWOK and KServe (:mod:`.cluster`, :mod:`.kserve`), SeaweedFS
(:mod:`.seaweedfs`) and the monitoring daemons, Prometheus and Alertmanager
(:mod:`.daemon`, :mod:`.prometheus`, :mod:`.alertmanager`). It needs the project's
virtualenv (PyYAML, and spamops for the S3 region); everything it starts binds
127.0.0.1 and is stopped by PID.
"""
