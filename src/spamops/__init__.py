"""spamops: retrain, gate, version and serve an SMS spam classifier on Kubernetes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spamops")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+source"
