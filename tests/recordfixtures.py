"""The committed records of earlier builds (tests/fixtures/records), and what reading them must give.

Each generation directory holds the records one build wrote (tests/fixtures/records/README.md):
a local store root under ``local/`` and an S3 store's keys under ``s3/<bucket>/``.  The checks here
are the same for both store kinds; tests/test_record_fixtures.py runs them on local stores and
tests/s3/test_s3_record_fixtures.py on a SeaweedFS bucket the fixture tree is uploaded to.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

from spamops.records import CARD_FILE
from spamops.registry.store import open_store
from spamops.registry.versions import Registry

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


# -- what every later build must read back ---------------------------------------
def assert_models_list(cli, store: str, ids: dict[str, str]) -> None:
    """Every version is listed with its verdict; the forced promotion is flagged with its reason."""
    result = cli("models", "list", "--store", store, "-o", "json")
    assert result.code == 0, result.err
    listing = result.json()
    assert listing["production"]["version"] == ids["first"]
    rows = {row["version"]: row for row in listing["versions"]}
    assert set(rows) == set(ids.values())
    assert rows[ids["first"]]["status"] == "production"
    assert rows[ids["seed7"]]["status"] == "passed"
    refused = rows[ids["refused"]]
    assert refused["status"] == "refused" and refused["forced"] is True
    assert refused["reason"].startswith("forced: fixture: promoted past its gate on purpose; accuracy ")
    table = cli("models", "list", "--store", store)
    assert table.code == 0 and all(v in table.out for v in ids.values())


def assert_models_show(cli, store: str, generation: str, kind: str, ids: dict[str, str]) -> None:
    """``models show -o json`` prints each card as it was written, embedded configuration included."""
    for version in ids.values():
        result = cli("models", "show", version, "--store", store, "-o", "json")
        assert result.code == 0, result.err
        assert result.json() == stored_card(generation, kind, version)
        table = cli("models", "show", version, "--store", store)
        assert table.code == 0 and "gate: " in table.out


def assert_history(cli, store: str, ids: dict[str, str]) -> None:
    """The pointer's five moves, oldest first: promote, forced promote, rollback, promote, the canary's rollback."""
    result = cli("models", "history", "--store", store, "-o", "json")
    assert result.code == 0, result.err
    moves = result.json()
    assert [(m["action"], m["version"], m["forced"]) for m in moves] == [
        ("promote", ids["first"], False),
        ("promote", ids["refused"], True),
        ("rollback", ids["first"], False),
        ("promote", ids["seed7"], False),
        ("rollback", ids["first"], False),
    ]
    assert moves[1]["reason"] == "fixture: promoted past its gate on purpose"
    assert moves[-1]["reason"].startswith("canary aborted: requests 60/110")
    assert moves[3]["lineage"] == [ids["first"]] and moves[-1]["lineage"] == []


def assert_rollout_records(store: str, ids: dict[str, str]) -> None:
    """The canary's and the shadow's entries, read by the rollout record reader and counted by the monitor."""
    from spamops.deploy.record import rollouts_of

    registry = Registry(open_store(store), MODEL)
    (canary,) = rollouts_of(registry, ids["seed7"])
    assert [(e.seq, e.action, e.weight) for e in canary] == [(0, "started", 10), (1, "advanced", 25), (2, "aborted", 0)]
    assert {e.stable_version for e in canary} == {ids["first"]}
    assert canary[1].check is not None and canary[1].check["verdict"] == "pass"
    assert canary[2].check is not None and canary[2].check["verdict"] == "fail"
    (shadow,) = rollouts_of(registry, ids["refused"])
    assert [e.action for e in shadow] == ["shadow-started", "shadow-stopped"]
    assert rollouts_of(registry, ids["first"]) == []
    seen, decisions = registry.rollout_decisions()
    assert seen == set(ids.values())
    assert decisions == Counter(
        {
            (ids["seed7"], "started"): 1,
            (ids["seed7"], "advanced"): 1,
            (ids["seed7"], "aborted"): 1,
            (ids["refused"], "shadow-started"): 1,
            (ids["refused"], "shadow-stopped"): 1,
        }
    )


def assert_snapshots(store: str, ids: dict[str, str]) -> None:
    """Every snapshot a card names is there, matches its sha256 and decodes to the rows the card counts."""
    from spamops.training import snapshots

    registry = Registry(open_store(store), MODEL)
    for version in ids.values():
        card = registry.card(version)
        for ref in (card.datasets.train, card.datasets.test):
            X, y = snapshots.decode(registry.dataset(ref.sha256), ref.uri)
            assert len(y) == X.shape[0] == ref.rows
        assert card.datasets.train.rows == card.training.train_rows
