"""-o json of every `spamops rollout` command: one JSON document on stdout, against the real API server.

The other commands' -o json is checked in tests/cli/test_cli_output.py; these need an
InferenceService. Each verb runs after a fresh canary (the verb that takes --percent), so
every verb has something to act on, whatever the verbs are called.
"""

from __future__ import annotations

import json

from k8shelpers import Kube

from spamops.cli import commands, main


def _run(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_rollout_command_prints_one_json_document(clean: Kube, tmp_path, capsys):
    docs = [d for d in clean.helm_template() if d["kind"] in ("Namespace", "ServiceAccount", "InferenceService")]
    clean.apply(docs)
    store = tmp_path / "store"
    code, out, err = _run(capsys, "train", "--store", store, "--quiet", "-o", "json")
    assert code == 0, err
    json.loads(out)

    verbs = {name.split()[1]: parser for name, parser in commands() if name.startswith("rollout ")}
    (start,) = [v for v, p in verbs.items() if any("--percent" in a.option_strings for a in p._actions)]
    cluster = ["--store", store, "--kubeconfig", clean.kubeconfig]
    for verb in verbs:
        for switch in (["-o", "json"], ["--json"]):
            code, out, err = _run(capsys, "rollout", start, *cluster, "--percent", 20, "-o", "json")
            assert code == 0, err
            assert json.loads(out)["canary_percent"] == 20
            # auto checks once: without a controller the canary never gets Ready, and the loop
            # would wait out progress_deadline before aborting (exit 1, tested in test_rollout.py)
            once = ["--once"] if any("--once" in a.option_strings for a in verbs[verb]._actions) else []
            code, out, err = _run(capsys, "rollout", verb, *cluster, *once, *switch)
            assert code == 0, f"rollout {verb}: {err}"
            assert isinstance(json.loads(out), dict), f"rollout {verb} {switch[0]}"
