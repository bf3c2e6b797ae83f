"""-o json of every `spamops rollout` command: one JSON document on stdout, against the real API server.

The other commands' -o json is checked in tests/cli/test_cli_output.py; these need an
InferenceService. Verbs that begin something (start, switch, shadow) get a version that is not
the stable one; every other verb runs after a fresh canary (the verb that takes --percent).
"""

from __future__ import annotations

import json

import yaml
from k8shelpers import Kube, train_versions

from spamops.cli import commands, main


def _run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_rollout_command_prints_one_json_document(clean: Kube, tmp_path, capsys):
    docs = [d for d in clean.helm_template() if d["kind"] in ("Namespace", "ServiceAccount", "InferenceService")]
    clean.apply(docs)
    store, versions = train_versions(tmp_path, (42, 1))  # after promote or switch, the other one rolls out

    verbs = {name.split()[1]: parser for name, parser in commands() if name.startswith("rollout ")}
    (start,) = [v for v, p in verbs.items() if any("--percent" in a.option_strings for a in p._actions)]
    # No controller runs here, so nothing ever gets Ready: a short progress deadline makes the verbs
    # that wait for Ready (switch) abort in seconds instead of ten minutes (exit 1, still one document).
    config = tmp_path / "rollout.yaml"
    config.write_text(yaml.safe_dump({"rollout": {"analysis": {"progress_deadline": 2}}}))
    cluster = ["--store", store, "--config", config, "--kubeconfig", clean.kubeconfig]
    for verb in verbs:
        for switch in (["-o", "json"], ["--json"]):
            code, out, err = _run(capsys, "rollout", "status", *cluster, "-o", "json")
            assert code == 0, f"status before rollout {verb}: {err}"
            state = json.loads(out)
            if state.get("canary_version"):  # what the previous verb left in the spec
                # a shadow needs the stable version alone (an aborted canary stays in the spec at 0 %)
                assert _run(capsys, "rollout", "promote" if verb == "shadow" else "abort", *cluster)[0] == 0
                state = json.loads(_run(capsys, "rollout", "status", *cluster, "-o", "json")[1])
            version = next(v for v in versions if v != state.get("stable_version"))
            # start, switch and shadow begin something new from a version; the others act on a canary
            args = [version, "--percent", 20] if verb == start else [version]
            if verb not in (start, "switch", "shadow"):
                code, out, err = _run(capsys, "rollout", start, version, "--percent", 20, *cluster, "-o", "json")
                assert code == 0, f"before rollout {verb} {switch[0]}: {err}"
                assert json.loads(out)["canary_percent"] == 20
                args = []
            # auto checks once: without a controller the canary never gets Ready, and the loop
            # would wait out progress_deadline before aborting (exit 1, tested in test_rollout.py)
            once = ["--once"] if any("--once" in a.option_strings for a in verbs[verb]._actions) else []
            code, out, err = _run(capsys, "rollout", verb, *args, *cluster, *once, *switch)
            assert out.strip(), f"rollout {verb} {switch[0]} printed nothing (exit {code}): {err}"
            doc = json.loads(out)
            assert isinstance(doc, dict), f"rollout {verb} {switch[0]}"
            aborted = code == 1 and (doc.get("state") or {}).get("verdict") == "aborted"
            assert code == 0 or aborted, f"rollout {verb}: {err}"
            if verb == "shadow":
                assert _run(capsys, "rollout", "shadow", "--stop", *cluster)[0] == 0
