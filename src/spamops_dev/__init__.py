"""Development and test support: real third-party daemons started on loopback for tests and ``make`` targets.

Nothing in ``spamops`` imports this package; it is installed with the project so tests,
scripts and benchmarks share one launcher per daemon.
"""
