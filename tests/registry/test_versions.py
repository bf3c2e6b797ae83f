"""Versions are immutable; the production pointer only moves to gated, intact versions."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from datetime import UTC, datetime

import pytest

from spamops.errors import ConflictError
from spamops.registry.store import LocalStore
from spamops.registry.versions import Registry


def _train(cli, store, *extra) -> dict:
    result = cli("train", "--store", store, "--json", "--quiet", "--force-new", *extra)
    assert result.code in (0, 3), result.err
    return result.json()


def _production(cli, store) -> str | None:
    listing = cli("models", "list", "--store", store, "--json").json()
    return listing["production"]["version"] if listing["production"] else None


@pytest.fixture
def noisy_csv(tmp_path):
    """Labels unrelated to features: a model trained on it must fail the gate."""
    import random

    rng = random.Random(7)
    rows = [f"{'spam' if rng.random() < 0.2 else 'ham'},{rng.randint(5, 200)},{rng.randint(0, 20)}" for _ in range(400)]
    path = tmp_path / "noisy.csv"
    path.write_text("label,length,punct\n" + "\n".join(rows) + "\n")
    return path


def test_a_crash_between_storing_and_promoting_leaves_production_on_the_previous_version(cli, store):
    first = _train(cli, store)["version"]
    crash = textwrap.dedent(
        f"""
        import os, sys
        from spamops.registry import versions as registry
        def crash(*args, **kwargs):
            os._exit(137)  # the process dies: no cleanup, no exception handling
        registry.Registry._move_pointer = crash
        from spamops.cli import main
        sys.exit(main(["train", "--store", {str(store)!r}, "--quiet", "--force-new"]))
        """
    )
    proc = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True, timeout=300)

    assert proc.returncode == 137
    assert _production(cli, store) == first
    versions = cli("models", "list", "--store", store, "--json").json()["versions"]
    assert len(versions) == 2 and versions[0]["status"] == "production" and versions[1]["status"] == "passed"
    assert json.loads((store / "spam" / "production.json").read_text())["version"] == first


def test_a_refused_version_needs_force_and_a_reason(cli, store, noisy_csv):
    refused = _train(cli, store, "--data", noisy_csv)
    assert refused["gate"]["passed"] is False
    assert _production(cli, store) is None

    denied = cli("promote", refused["version"], "--store", store)
    assert denied.code == 3
    assert "quality gate refused it" in denied.err
    no_reason = cli("promote", refused["version"], "--store", store, "--force")
    assert no_reason.code == 2 and "--reason" in no_reason.err
    assert _production(cli, store) is None

    forced = cli("promote", refused["version"], "--store", store, "--force", "--reason", "incident 42 hotfix")
    assert forced.code == 0
    pointer = json.loads((store / "spam" / "production.json").read_text())
    assert pointer["forced"] is True and pointer["reason"] == "incident 42 hotfix"


def test_promoting_a_forced_production_version_again_is_nothing_to_do_exit_0(cli, store, noisy_csv):
    """The README's exit-code table: "version already production" is 0, also for one that needed --force
    (a Job retried after the pointer moved must not fail as a gate refusal)."""
    refused = _train(cli, store, "--data", noisy_csv)["version"]
    assert cli("promote", refused, "--store", store, "--force", "--reason", "incident 42 hotfix").code == 0

    again = cli("promote", refused, "--store", store)
    assert (again.code, again.out.strip(), again.err) == (0, f"{refused} is already production", "")
    as_json = cli("promote", refused, "--store", store, "--json")
    assert as_json.code == 0 and as_json.json()["changed"] is False
    assert cli("promote", refused, "--store", store, "--force").code == 2  # --force without --reason stays bad input
    assert len(cli("models", "history", "--store", store, "--json").json()) == 1


def test_rollback_walks_back_through_earlier_productions(cli, store):
    v1 = _train(cli, store)["version"]
    v2 = _train(cli, store)["version"]
    assert _production(cli, store) == v2

    assert cli("rollback", "--store", store).code == 0
    assert _production(cli, store) == v1
    last = cli("rollback", "--store", store)
    assert last.code == 2 and "nothing to roll back to" in last.err

    again = cli("promote", v2, "--store", store)
    assert again.code == 0 and _production(cli, store) == v2
    assert cli("promote", v2, "--store", store).out.strip() == f"{v2} is already production"
    history = Registry(LocalStore(store), "spam").history()
    assert [(h.action, h.version) for h in history] == [
        ("promote", v1),
        ("promote", v2),
        ("rollback", v1),
        ("promote", v2),
    ]


def test_rollback_with_nothing_in_production_is_a_clear_error(cli, store):
    result = cli("rollback", "--store", store)
    assert result.code == 2
    assert "nothing in production" in result.err


def test_versions_created_in_the_same_second_get_distinct_ids(store):
    registry = Registry(LocalStore(store), "spam")
    moment = datetime(2025, 11, 19, 6, 32, 57, tzinfo=UTC)
    ids = [registry.reserve_version(moment, b"model") for _ in range(3)]
    assert ids == ["spam_model_20251119_063257", "spam_model_20251119_063257_2", "spam_model_20251119_063257_3"]


def test_an_id_whose_writer_gave_its_lease_back_is_still_taken(store):
    """A finished run removes its lease, and an earlier build claimed ids by model.joblib alone:
    either way the files there make the id taken."""
    local = LocalStore(store)
    registry = Registry(local, "spam")
    moment = datetime(2025, 11, 19, 6, 32, 57, tzinfo=UTC)
    local.put("spam/spam_model_20251119_063257/model.joblib", b"an earlier build's", if_absent=True)
    assert registry.reserve_version(moment) == "spam_model_20251119_063257_2"
    assert local.list("spam/spam_model_20251119_063257/") == ["spam/spam_model_20251119_063257/model.joblib"]


def test_stored_versions_are_immutable(store):
    local = LocalStore(store)
    local.put("spam/v1/model.joblib", b"one", if_absent=True)
    with pytest.raises(ConflictError, match="already exists and is immutable"):
        local.put("spam/v1/model.joblib", b"two", if_absent=True)
    assert local.get("spam/v1/model.joblib").data == b"one"


def test_a_tampered_artifact_is_never_pulled_or_promoted(cli, store, tmp_path):
    version = _train(cli, store, "--no-promote")["version"]
    (store / "spam" / version / "model.joblib").write_bytes(b"not the model that passed the gate")

    pulled = cli("models", "pull", version, tmp_path / "pulled", "--store", store)
    assert pulled.code == 1 and "checksum mismatch" in pulled.err
    promoted = cli("promote", version, "--store", store)
    assert promoted.code == 1 and "does not match the model card" in promoted.err
    assert _production(cli, store) is None


def test_concurrent_promotions_lose_no_update(cli, store):
    v1 = _train(cli, store, "--no-promote")["version"]
    v2 = _train(cli, store, "--no-promote")["version"]
    barrier = threading.Barrier(2)

    def promote(version):
        registry = Registry(LocalStore(store), "spam")
        barrier.wait()
        registry.promote(version)

    threads = [threading.Thread(target=promote, args=(v,)) for v in (v1, v2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    history = Registry(LocalStore(store), "spam").history()
    assert sorted(h.version for h in history) == sorted([v1, v2])
    final = _production(cli, store)
    assert final == history[-1].version
    assert history[-1].previous_version == history[0].version


def test_gate_can_be_rerun_against_todays_production(cli, store, noisy_csv):
    good = _train(cli, store)["version"]
    refused = _train(cli, store, "--data", noisy_csv)["version"]

    rerun_good = cli("gate", good, "--store", store, "--json")
    assert rerun_good.code == 0 and rerun_good.json()["passed"] is True
    rerun_refused = cli("gate", refused, "--store", store)
    assert rerun_refused.code == 3 and "gate: REFUSED" in rerun_refused.out


def test_models_show_of_an_unknown_version_names_it(cli, store):
    result = cli("models", "show", "spam_model_19990101_000000", "--store", store)
    assert result.code == 2
    assert "spam_model_19990101_000000" in result.err
