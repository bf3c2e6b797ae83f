"""The predictor image's HEALTHCHECK: exit 0 when the model server says it is ready.

Kubernetes ignores a Docker HEALTHCHECK (the InferenceService has a readinessProbe);
this is for ``docker run``, Compose and ``docker ps`` health.  The image has no curl,
so the check is a few lines of the standard library.  ``SPAMOPS_HEALTH_URL`` overrides
the URL when the server runs on another port.
"""

from __future__ import annotations

import os
import sys
import urllib.request

URL = os.environ.get("SPAMOPS_HEALTH_URL", "http://127.0.0.1:8080/v2/health/ready")


def main() -> int:
    try:
        with urllib.request.urlopen(URL, timeout=2) as reply:  # noqa: S310 - a fixed local http URL
            return 0 if reply.status == 200 else 1
    except OSError as err:
        print(f"not ready: {URL}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
