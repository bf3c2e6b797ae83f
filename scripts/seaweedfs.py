#!/usr/bin/env python3
"""Start and stop an embedded SeaweedFS S3 server on 127.0.0.1 for development (``make storage-up``).

    python scripts/seaweedfs.py up   [--dir .spamops/seaweedfs] [--port 8333] [--bucket spamops]
    python scripts/seaweedfs.py env  [--dir ...]     # print the exports of the running server (exit 1 if none)
    python scripts/seaweedfs.py down [--dir ...]

The server itself is :class:`spamops_dev.seaweedfs.SeaweedFS` (credentials, state
file, stop by pid); this is its command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spamops_dev.ports import port_free
from spamops_dev.seaweedfs import DEFAULT_BUCKET, DEFAULT_DIR, GRPC_OFFSET, SeaweedFS


def _exports(server: SeaweedFS) -> str:
    lines = [f"export {k}={v}" for k, v in server.env().items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "env", "status"])
    parser.add_argument("--dir", default=DEFAULT_DIR, help="data directory (default: %(default)s)")
    parser.add_argument("--port", type=int, default=None, help="S3 port (default: 8333 if free, else a free one)")
    parser.add_argument("--bucket", default=DEFAULT_BUCKET, help="bucket to create (default: %(default)s)")
    args = parser.parse_args(argv)
    data_dir = Path(args.dir).absolute()
    server = SeaweedFS.load(data_dir)

    if args.command == "up":
        if server is None:
            port = args.port or (8333 if port_free(8333) and port_free(8333 + GRPC_OFFSET) else None)
            server = SeaweedFS.create(data_dir, port, args.bucket)
            data_dir.mkdir(parents=True, exist_ok=True)
            server.save()
        if server.running():
            print(f"# SeaweedFS already running (pid {server.pid}) at {server.endpoint}", file=sys.stderr)
        else:
            server.start()
            print(f"# SeaweedFS S3 at {server.endpoint}, bucket {server.bucket}, pid {server.pid}", file=sys.stderr)
        print(f"# log: {data_dir / 'weed.log'}; stop with 'make storage-down'", file=sys.stderr)
        print(_exports(server))
        return 0
    if server is None:
        print(f"no SeaweedFS state in {data_dir}; nothing to do", file=sys.stderr)
        return 0 if args.command == "down" else 1
    if args.command == "env":
        if not server.running():  # its exports would point at nothing: refuse, so `eval` sets nothing
            print(
                f"no SeaweedFS running from {data_dir} (stopped); 'make storage-up' starts it again "
                "and prints the exports",
                file=sys.stderr,
            )
            return 1
        print(_exports(server))
        return 0
    if args.command == "status":
        state = f"running (pid {server.pid})" if server.running() else "stopped"
        print(f"SeaweedFS {state} at {server.endpoint}, bucket {server.bucket}")
        return 0 if server.running() else 1
    was = server.pid if server.running() else None
    server.stop()
    print(f"SeaweedFS stopped (pid {was})" if was else "SeaweedFS was not running", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
