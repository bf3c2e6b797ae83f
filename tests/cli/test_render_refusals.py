"""`spamops render isvc` refuses what cannot become an InferenceService before it runs helm, saying
what is wrong and what to do (rendering itself runs helm: tests/k8s/test_rollout_standard.py)."""

from __future__ import annotations


def _train(cli, store, *extra) -> str:
    result = cli("train", "--store", store, "--json", "--quiet", "--force-new", *extra)
    assert result.code == 0, result.err
    return result.json()["version"]


def test_a_standard_canary_of_the_production_version_names_the_real_problem(cli, store):
    production = _train(cli, store)
    listed = cli("models", "list", "--store", store, "--json").json()
    assert listed["production"]["version"] == production

    for version in ([production], []):  # named, or the default (production)
        out = cli("render", "isvc", *version, "--canary", "10", "--mode", "standard", "--store", store)
        assert out.code == 2 and out.out == ""
        assert "nothing is in production" not in out.err
        assert f"{production} is production" in out.err and "name another VERSION" in out.err, out.err
        assert len(out.err.strip().splitlines()) == 1


def test_a_standard_canary_with_nothing_in_production_says_so(cli, store):
    version = _train(cli, store, "--no-promote")
    out = cli("render", "isvc", version, "--canary", "10", "--mode", "standard", "--store", store)
    assert out.code == 2 and "nothing is in production yet" in out.err


def test_a_version_on_the_default_local_store_is_refused_with_the_s3_hint(cli, store):
    """The chart only takes storage URIs KServe can download; helm's schema error named neither cause nor fix."""
    version = _train(cli, store)
    out = cli("render", "isvc", version, "--store", store)
    assert out.code == 2 and out.out == ""
    assert out.err.count("\n") == 1
    assert f"{version}: storage URI file://" in out.err
    assert "predictor.storageUri" in out.err and "--store s3://" in out.err, out.err
