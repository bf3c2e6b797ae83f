"""Command line over spamops_dev.docker: a dockerd and a local registry for manual use (up/env/down)."""

import sys

from spamops_dev.docker import main

if __name__ == "__main__":
    sys.exit(main())
