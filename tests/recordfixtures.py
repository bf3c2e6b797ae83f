"""The committed records of earlier builds (tests/fixtures/records), and what reading them must give.

Each generation directory holds the records one build wrote (tests/fixtures/records/README.md):
a local store root under ``local/`` and an S3 store's keys under ``s3/<bucket>/``.  The checks here
are the same for both store kinds: tests/test_record_fixtures.py holds them, run on local stores
there and by tests/s3/test_s3_record_fixtures.py on a SeaweedFS bucket the fixture tree is uploaded to.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from spamops.records import CARD_FILE

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "records"
GENERATIONS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and (p / "versions.json").is_file())
MODEL = "spam"


def versions(generation: str, kind: str) -> dict[str, str]:
    """Which version id played which part in that store: ``first``, ``refused``, ``seed7``."""
    return json.loads((FIXTURES / generation / "versions.json").read_text())[kind]


def local_copy(generation: str, dest: Path) -> Path:
    """A writable copy of the generation's local store (tests never write into the repository)."""
    return Path(shutil.copytree(FIXTURES / generation / "local", dest))


def s3_objects(generation: str) -> dict[tuple[str, str], bytes]:
    """(bucket, key) -> bytes of the generation's S3 store, as written."""
    root = FIXTURES / generation / "s3"
    return {
        (path.relative_to(root).parts[0], "/".join(path.relative_to(root).parts[1:])): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def s3_store_uri(generation: str) -> str:
    (bucket, key), *_ = s3_objects(generation)
    return f"s3://{bucket}/{key.split('/')[0]}"


def stored_card(generation: str, kind: str, version: str) -> dict:
    """The card of ``version`` exactly as the old build wrote it."""
    root = FIXTURES / generation / kind
    (path,) = root.rglob(f"{MODEL}/{version}/{CARD_FILE}")
    return json.loads(path.read_text())
